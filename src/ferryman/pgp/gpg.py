"""Running ``gpg``: a key ring of the job's own, the passphrase on a pipe, the status on another.

Why a module of our own around the ``gpg`` command line rather than python-gnupg: ferryman
needs gpg in the middle of a stream (it reads a pipe the transfer feeds, or its output is
what the upload sends) with a time-out on every wait, and a verdict built from the status
lines alone (:mod:`ferryman.pgp.status`); python-gnupg runs whole files through temporary
threads and reports by scraping stderr, and adds a dependency for some 200 lines of code.

Every run is ``gpg --batch --no-tty --homedir HOME --status-fd N --pinentry-mode loopback``:
never a prompt (a missing passphrase is an error, not a hang), never the user's personal key
ring unless the settings name it. The passphrase goes through a pipe (``--passphrase-fd``),
never argv or the environment, so no process list shows it. ``--trust-model always``: the
job's key ring *is* the trust decision (import only keys you mean to use, and pin senders
with ``signed_by``); keys are never fetched from the network (``--auto-key-locate local``,
``--no-auto-key-retrieve``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.base import ReadStream
from ..errors import ConfigError, PgpError, TimeoutError
from ..transfer.transform import TransformedStream
from .status import GpgStatus

__all__ = ["GpgProcess", "GpgReadStream", "Keyring"]

log = logging.getLogger("ferryman.pgp")

_STDERR_KEEP = 16 * 1024  #: bytes of gpg's own messages kept for the log
_CHUNK = 256 * 1024


def _write_all(fd: int, data: memoryview) -> None:
    while len(data):
        written = os.write(fd, data)
        data = data[written:]


_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _widen(fd: int) -> None:
    """A 1 MiB pipe instead of 64 KiB (Linux): fewer switches between gpg and the copy.
    Best effort: a system that refuses keeps the default."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)


class _Collector(threading.Thread):
    """Reads a pipe to its end on a thread of its own (gpg blocks when one fills)."""

    def __init__(self, fd: int, keep: int | None = None) -> None:
        super().__init__(name="ferryman-gpg-pipe", daemon=True)
        self.fd, self.keep, self.data = fd, keep, bytearray()

    def run(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                self.data += chunk
                if self.keep is not None and len(self.data) > self.keep:
                    del self.data[: len(self.data) - self.keep]
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)


@dataclass(frozen=True)
class Keyring:
    """A gpg key ring and how to run gpg on it. ``home`` None: gpg's default (``$GNUPGHOME``
    or ``~/.gnupg``). ``timeout``: seconds gpg may go without progress."""

    home: Path | None = None
    program: str = "gpg"
    passphrase: str | None = field(default=None, repr=False)
    timeout: float = 600.0

    def argv(self, args: Sequence[str], status_fd: int, passphrase_fd: int | None) -> list[str]:
        argv = [self.program, "--batch", "--no-tty", "--no-greeting"]
        if self.home is not None:
            argv += ["--homedir", str(self.home)]
        argv += ["--status-fd", str(status_fd), "--pinentry-mode", "loopback"]
        if passphrase_fd is not None:
            argv += ["--passphrase-fd", str(passphrase_fd)]
        argv += ["--trust-model", "always", "--auto-key-locate", "local", "--no-auto-key-retrieve"]
        return [*argv, *args]

    def prepare(self) -> None:
        """Make the home directory (owner only, as gpg wants it) when it is missing."""
        if self.home is not None and not self.home.exists():
            self.home.mkdir(mode=0o700, parents=True)

    def start(self, args: Sequence[str], *, stdin: int | None, stdout: int | None) -> GpgProcess:
        return GpgProcess(self, args, stdin=stdin, stdout=stdout)

    def run(self, args: Sequence[str], what: str, data: bytes = b"") -> GpgStatus:
        """Run gpg to its end with ``data`` on its standard input (imports, detached
        verification, key listings); its output is discarded."""
        process = self.start(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        try:
            assert process.popen.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                _write_all(process.popen.stdin.fileno(), memoryview(data))
            process.popen.stdin.close()
            return process.finish(what)
        except BaseException:
            process.kill()
            raise

    def read_through(
        self,
        args: Sequence[str],
        source: ReadStream,
        what: str,
        check: Callable[[GpgStatus], str],
    ) -> GpgReadStream:
        """gpg with ``source`` on its input; read its output from the stream returned (it
        owns ``source`` from now on, also when gpg cannot start)."""
        try:
            return GpgReadStream(self, args, source, what, check)
        except BaseException:
            source.abort()
            raise


class GpgProcess:
    """One running gpg: its status and stderr collected on threads, every wait bounded."""

    def __init__(
        self, keyring: Keyring, args: Sequence[str], *, stdin: int | None, stdout: int | None
    ) -> None:
        self.keyring = keyring
        status_r, status_w = os.pipe()
        pass_fds = [status_w]
        pass_r: int | None = None
        if keyring.passphrase is not None:
            pass_r, pass_w = os.pipe()
            _write_all(pass_w, memoryview(keyring.passphrase.encode("utf-8") + b"\n"))
            os.close(pass_w)  # a pipe buffer holds far more than a passphrase
            pass_fds.append(pass_r)
        argv = keyring.argv(args, status_w, pass_r)
        env = {**os.environ, "LC_ALL": "C"}  # gpg's own messages in one language, for the log
        try:
            self.popen = subprocess.Popen(  # argv holds paths and options, never a secret
                argv,
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.PIPE,
                pass_fds=pass_fds,
                bufsize=0,
                env=env,
            )
        except FileNotFoundError:
            os.close(status_r)
            raise ConfigError(
                f"the OpenPGP program {keyring.program!r} is not installed",
                hint="install GnuPG (Debian: apt-get install gpg) or set pgp: program",
            ) from None
        finally:
            for fd in pass_fds:
                os.close(fd)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                _widen(stream.fileno())
        assert self.popen.stderr is not None
        self._status = _Collector(status_r)
        self._stderr = _Collector(os.dup(self.popen.stderr.fileno()), keep=_STDERR_KEEP)
        self.popen.stderr.close()
        self._status.start()
        self._stderr.start()

    def finish(self, what: str) -> GpgStatus:
        """Wait (bounded) for gpg to end; its status lines and exit status."""
        try:
            code = self.popen.wait(timeout=self.keyring.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(
                f"{what}: gpg did not finish within {self.keyring.timeout:g} s and was killed",
                hint="raise pgp: timeout, or find out why gpg hangs (its agent?)",
                retriable=False,
            ) from None
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._status.join(timeout=self.keyring.timeout)
        self._stderr.join(timeout=5)
        messages = self._stderr.data.decode("utf-8", "replace").strip()
        if messages:
            log.debug("%s: gpg says: %s", what, messages)
        return GpgStatus.parse(self._status.data.decode("utf-8", "replace"), code)

    @property
    def messages(self) -> str:
        return self._stderr.data.decode("utf-8", "replace").strip()

    def kill(self) -> None:
        """End gpg (ours, by its process); never raises."""
        if self.popen.poll() is None:
            with contextlib.suppress(OSError):
                self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class GpgReadStream(TransformedStream):
    """gpg's output as a read stream, its input fed from ``source`` by a thread.

    ``close()`` is where the verdict is given: the source's own close (a transfer's checks),
    then gpg's exit and status (``check``, which raises or returns what it verified). A copy
    closes its streams before it publishes, so nothing gpg refuses is ever published.
    """

    def __init__(
        self,
        keyring: Keyring,
        args: Sequence[str],
        source: ReadStream,
        what: str,
        check: Callable[[GpgStatus], str],
    ) -> None:
        self.source, self.what, self.check = source, what, check
        self.source_bytes = 0
        self.verified = ""
        self.status: GpgStatus | None = None
        self._error: BaseException | None = None
        self._broken = False  #: gpg stopped reading its input (its status says why)
        self._stop = threading.Event()
        self._timeout = keyring.timeout
        self.process = keyring.start(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.process.popen.stdout is not None
        self._out = self.process.popen.stdout
        self._feeder = threading.Thread(target=self._feed, name="ferryman-gpg-feed", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        stdin = self.process.popen.stdin
        assert stdin is not None
        buffer = memoryview(bytearray(_CHUNK))
        try:
            while not self._stop.is_set():
                n = self.source.readinto(buffer)
                if not n:
                    break
                _write_all(stdin.fileno(), buffer[:n])
                self.source_bytes += n
        except (BrokenPipeError, ConnectionResetError):
            self._broken = True
        except BaseException as err:  # the transfer's error, told by close()
            self._error = err
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` as far as gpg's output allows (it writes a few KiB at a time):
        the copy then writes big chunks (one SFTP request per 256 KiB, not per 8 KiB)."""
        filled, fd = 0, self._out.fileno()
        while filled < len(buffer):
            ready, _, _ = select.select([fd], [], [], self._timeout)
            if not ready:
                self.abort()
                raise TimeoutError(
                    f"{self.what}: gpg gave no output for {self._timeout:g} s",
                    hint="the source stalled or gpg hangs; raise pgp: timeout, or run again",
                )
            n = os.readv(fd, [buffer[filled:]])
            if not n:
                break
            filled += n
        self.bytes_transferred += filled
        return filled

    def close(self) -> None:
        self._feeder.join(timeout=self._timeout)
        if self._feeder.is_alive():
            self.abort()
            raise TimeoutError(f"{self.what}: the source gave no data for {self._timeout:g} s")
        if self._error is not None:
            self.process.kill()
            self.source.abort()
            raise self._error
        try:
            if self._broken:
                self.source.abort()  # gpg stopped reading: nothing more of the source counts
            else:
                self.source.close()  # the transfer's own checks (FTP's 226, SFTP's close)
        except BaseException:
            self.process.kill()
            raise
        self.status = self.process.finish(self.what)
        self.verified = self.check(self.status)
        if self._broken:  # gpg said all is well, yet left input unread: never trust that
            raise PgpError(
                f"{self.what}: gpg stopped reading before the end of the data",
                hint="the file holds more than one OpenPGP message or trailing data; "
                "check it with gpg directly",
            )

    def abort(self) -> None:
        self._stop.set()
        self.process.kill()  # the feeder's next write fails; it stops
        self._feeder.join(timeout=self._timeout)
        if not self._feeder.is_alive():
            self.source.abort()
