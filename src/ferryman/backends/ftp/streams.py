"""Data-connection streams of the FTP backend: large blocks, tolerant TLS shutdown.

Success is judged by the server's final 2xx reply plus the byte count, never by a clean EOF
alone: Python reports a truncated TLS stream as an ordinary EOF (ragged EOFs are suppressed,
because IIS and others close data connections without a close_notify).
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import TYPE_CHECKING

from ...errors import FerrymanError, TransferError
from ...errors import TimeoutError as FerrymanTimeout
from ..base import ReadStream, WriteStream

if TYPE_CHECKING:
    from .backend import FtpBackend

__all__ = ["FtpReadStream", "FtpWriteStream", "end_data_stream"]


def end_data_stream(sock: socket.socket) -> None:
    """Send our TLS close_notify and TCP FIN on a finished data connection, never blocking.

    - close_notify first, without waiting for the peer's: IIS never sends one, and vsftpd
      withholds its 226 until it has ours, even after a download (checklist item 4).
    - Then a TCP half-close after a download too, not only after an upload: vsftpd ends a data
      connection with ``SO_LINGER`` + ``close()``, which returns only once its FIN is ACKed, and
      sends the 226 after that. A Linux receiver in CLOSE_WAIT delays that ACK (delayed-ACK
      timer, 40 ms) hoping to piggyback it on its own FIN; waiting for the 226 before sending
      ours therefore cost 40 ms per file (vsftpd ``ftpdataio.c``; RFC 1122 4.2.3.2 delayed ACK).
    """
    if isinstance(sock, ssl.SSLSocket):
        timeout = sock.gettimeout()
        try:
            sock.settimeout(0.0)
            sock.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass  # SSLWantReadError: ours is sent, theirs not awaited
        finally:
            try:
                sock.settimeout(timeout)
            except OSError:
                pass
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # already reset or closed by the peer: the reply tells what happened


class _FtpStream:
    def __init__(self, backend: FtpBackend, sock: socket.socket, what: str) -> None:
        self.backend = backend
        self.sock: socket.socket | None = sock
        self.what = what
        self.bytes_transferred = 0
        self.started = time.monotonic()
        self.reply: str | None = None

    def _fail(self, err: BaseException) -> FerrymanError:
        self._drop_data()
        self.backend.invalidate()
        if isinstance(err, ssl.SSLError) and not isinstance(err, ssl.SSLCertVerificationError):
            # The handshake succeeded when the stream opened: a TLS error now means the data
            # connection broke (an EOF without close_notify after a 426, a reset), not a TLS
            # misconfiguration -- retriable, and resumable from the bytes that arrived.
            return TransferError(
                f"{self.what}: the data connection to {self.backend.describe()} broke "
                f"({err.reason or type(err).__name__}) after {self.bytes_transferred} bytes",
                hint="the server or network dropped the transfer; run again to resume, "
                "or allow more retries",
                retriable=True,
            )
        if isinstance(err, TimeoutError):  # the builtin: the data socket's idle time-out
            return FerrymanTimeout(
                f"{self.what}: {self.backend.describe()} did not answer in time (the data "
                f"connection was idle for {self.backend.conn.effective_data_timeout:g} s)",
                hint="the server or network is slow or stuck; raise --timeout if this is expected",
            )
        return self.backend.translate(err, self.what)

    def _drop_data(self) -> None:
        if self.sock is not None:
            sock, self.sock = self.sock, None
            try:
                sock.close()
            except OSError:
                pass

    def _finish(self, upload: bool, size_path: str | None = None) -> int | None:
        """End the data connection and check the final reply; with ``size_path``, the size of
        that file on the server when the session could learn it with the reply."""
        sock, self.sock = self.sock, None
        if sock is None:
            return None
        landed = None
        try:
            session = self.backend.session_or_raise()
            if size_path is None:
                self.reply = session.finish_data(sock, upload=upload)
            else:
                self.reply, landed = session.finish_upload(sock, size_path)
        except Exception as err:
            raise self._fail(err) from err
        finally:
            self.backend.busy = False
        seconds = max(time.monotonic() - self.started, 1e-6)
        self.backend.wire.note(
            "%s: %d bytes in %.3f s (%.1f MB/s)",
            self.what,
            self.bytes_transferred,
            seconds,
            self.bytes_transferred / seconds / 1e6,
        )
        return landed

    def abort(self) -> None:
        """Drop the data connection; keep the session if the server answers promptly."""
        if self.sock is None and not self.backend.busy:
            return
        self._drop_data()
        session = self.backend.session
        self.backend.busy = False
        if session is None:
            return
        if session.probe_pending:  # two replies owed (prepared.py): start afresh instead
            self.backend.invalidate()
            return
        try:
            session.control.settimeout(min(5.0, self.backend.conn.timeout))
            session.getresp()
            session.control.settimeout(self.backend.conn.timeout)
        except Exception:
            self.backend.invalidate()


class FtpReadStream(_FtpStream, ReadStream):
    """A download; ``expected_size`` is what the 150 reply announced (None: nothing)."""

    def __init__(
        self,
        backend: FtpBackend,
        sock: socket.socket,
        what: str,
        expected_size: int | None,
        offset: int = 0,
    ) -> None:
        super().__init__(backend, sock, what)
        self.expected_size = expected_size
        self.offset = offset
        self.eof = False

    def readinto(self, buffer: memoryview) -> int:
        if self.sock is None:
            return 0
        try:
            n = self.sock.recv_into(buffer)
        except Exception as err:
            raise self._fail(err) from err
        if n == 0:
            self.eof = True
        self.bytes_transferred += n
        return n

    def read(self, size: int = 1 << 20) -> bytes:
        """What arrived, up to ``size`` bytes, as the socket returns it: no zero-filled buffer
        and no second copy (the fsspec file reads this way)."""
        if self.sock is None:
            return b""
        try:
            data = self.sock.recv(size)
        except Exception as err:
            raise self._fail(err) from err
        if not data:
            self.eof = True
        self.bytes_transferred += len(data)
        return data

    def close(self) -> None:
        if not self.eof:
            self.abort()  # the reader stopped early on purpose: nothing to check
            return
        self._finish(upload=False)
        expected = self.expected_size
        if expected is None:
            return
        # after REST, vsftpd announces the whole file's size, other servers what remains
        allowed = {expected, expected - self.offset} if self.offset else {expected}
        if self.bytes_transferred not in allowed:
            raise TransferError(
                f"{self.what}: received {self.bytes_transferred} bytes"
                + (f" from offset {self.offset}" if self.offset else "")
                + f", but the server announced {expected}",
                hint="the data connection ended early; run again to resume, or allow more retries",
            )


class FtpWriteStream(_FtpStream, WriteStream):
    """An upload at ``offset``; ``size_path`` (the file written, in binary) lets the session
    ask the landed size together with the final reply (``landed_size``, see
    ``finish_upload``)."""

    def __init__(
        self,
        backend: FtpBackend,
        sock: socket.socket,
        what: str,
        size_path: str | None = None,
        offset: int = 0,
    ) -> None:
        super().__init__(backend, sock, what)
        self.size_path = size_path
        self.offset = offset

    def write(self, data: bytes | memoryview) -> None:
        if self.sock is None:
            raise TransferError(f"{self.what}: the data connection is closed")
        try:
            self.sock.sendall(data)
        except Exception as err:
            raise self._fail(err) from err
        self.bytes_transferred += len(data)

    def close(self) -> None:
        landed = self._finish(upload=True, size_path=self.size_path)
        if landed is not None and landed != self.offset + self.bytes_transferred:
            # answered after the 226, yet perhaps measured before the last bytes were written
            # (a server whose control and data connections run apart): not asked so again,
            # and the caller asks now; only a fresh answer can fail the verification
            session = self.backend.session
            if session is not None:
                session.facts.size_after_226 = False
            landed = None
        if landed is not None:
            self.landed_size = landed
