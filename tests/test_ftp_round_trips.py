"""Round trips per file of ``get -r`` and ``put -r`` over explicit FTPS (issue 19), counted on
real servers so that a regression is caught: vsftpd (``require_ssl_reuse=YES``; commands from
its protocol log), pyftpdlib (commands from its session log) and ProFTPD (turns only: its log
here has no commands).

A *turn* is a burst of bytes the client sends on a control connection after the server said
something (:class:`~tests.servers.turns.TurnCounter`, a relay in front of the server): what
costs a round trip on a link with latency. Each figure is per file: the difference between a
run of 2N files and one of N, divided by N, so connection set-up and listings cancel out.

Per file, before issue 19: get 2 commands in 2 turns (EPSV, RETR); put 5 commands in 5 turns
(EPSV, STOR, SIZE, RNFR, RNTO). Then: get 2 commands in 1 turn (EPSV + RETR); put 5 commands in
3 turns (EPSV + STOR; SIZE sent behind the end of the data, answered with the 226, or asked
after it where the server answers during the transfer; RNFR + RNTO once verified).

Second pass: the next file's EPSV is sent before its transfer is due (prepared.py), so the
data connection no longer waits a round trip for the 229: *waits for a 229* counts, from
ferryman's transcript, the data connections opened right after a 229 arrived (the client had
been waiting for it). Uploads: EPSV rides with RNFR + RNTO (every server). Downloads: behind
the end of the data, on vsftpd only (it reads commands only once a transfer ended; pyftpdlib
and ProFTPD answer them during one, so there it keeps EPSV + RETR in one send).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.ftp.pipelining import host_facts
from ferryman.cli import cli
from ferryman.connection import FtpConnection
from ferryman.errors import RemoteError
from tests.servers.ftp_connection import connection
from tests.servers.proftpd import Proftpd
from tests.servers.turns import TurnCounter
from tests.servers.vsftpd import Vsftpd, Workdir

from .conftest import PASSWORD, ServerFactory

pytestmark = pytest.mark.timeout(120)

N = 10  #: files in the smaller run (>= the engine's threshold for one listing per directory)
_VSFTPD_COMMAND = re.compile(r'FTP command: Client "[^"]+", "([^"]*)"')
_PYFTPDLIB_COMMAND = re.compile(r"<- (\S+)")


@dataclass
class Counts:
    commands: collections.Counter[str]
    turns: int
    waits_229: int = 0


@dataclass
class PerFile:
    get: dict[str, float]
    get_turns: float
    put: dict[str, float]
    put_turns: float
    get_waits_229: float = 0.0
    put_waits_229: float = 0.0


_TRANSCRIPT = re.compile(r"\[(c\d+)\] ([<>*]) (.*)")


def waits_for_229(transcript: str) -> int:
    """Data connections opened right after a 229 arrived on their control connection."""
    last: dict[str, str] = {}
    waits = 0
    for conn, kind, text in _TRANSCRIPT.findall(transcript):
        if kind == "*" and re.match(r"data \S+ -> ", text):
            waits += last.get(conn, "").startswith("< 229")
        if kind in "<>" or text.startswith("data "):
            last[conn] = f"{kind} {text}"
    return waits


class _Lines(logging.Handler):
    """pyftpdlib's session log lines (``ferryman.embedded`` at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def pyftpdlib_lines() -> Iterator[_Lines]:
    handler, logger = _Lines(), logging.getLogger("ferryman.embedded")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def cli_run(
    *args: str | Path, password: str, ca_file: Path | None, log: Path | None = None
) -> None:
    extra = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "10", "-P", "1"]
    if log is not None:
        extra += ["--log", str(log)]
    if ca_file is not None:
        extra += ["--ca-file", str(ca_file)]
    result = CliRunner().invoke(cli, [*map(str, args), *extra], env={"FM_PW": password})
    assert result.exit_code == 0, result.output + result.stderr


def write_files(directory: Path, count: int, chown: Callable[[Path], None] | None = None) -> None:
    directory.mkdir(parents=True)
    for i in range(count):
        path = directory / f"f{i:03}.bin"
        path.write_bytes(os.urandom(4096))
        if chown is not None:
            chown(path)
    if chown is not None:
        chown(directory)


def per_file(
    measure: Callable[[str, int], tuple[Counts, Counts]],
) -> PerFile:
    """Per-file commands and turns: (run of 2N files - run of N files) / N, after a first run
    that let ferryman learn the server (pipelining, EPSV, whether it reads commands during a
    transfer: 2 files, so that one transfer follows another): the two runs then start alike."""
    measure("warm-up", 2)
    small, big = measure("small", N), measure("big", 2 * N)

    def diff(a: Counts, b: Counts) -> tuple[dict[str, float], float]:
        verbs = {v: (b.commands[v] - a.commands[v]) / N for v in b.commands | a.commands}
        return {v: n for v, n in verbs.items() if n}, (b.turns - a.turns) / N

    get, get_turns = diff(small[0], big[0])
    put, put_turns = diff(small[1], big[1])
    get_waits = (big[0].waits_229 - small[0].waits_229) / N
    put_waits = (big[1].waits_229 - small[1].waits_229) / N
    return PerFile(get, get_turns, put, put_turns, get_waits, put_waits)


def measure_on(
    relay: TurnCounter,
    url: str,
    source: str,
    target: Path,
    commands: Callable[[], list[str]],
    password: str,
    ca_file: Path | None,
    upload: str,
) -> tuple[Counts, Counts]:
    """get -r of ``source`` into ``target``, then put -r of it to ``upload``."""
    counts = []
    for args in (("get", url + source, target, "-r"), ("put", target, url + upload, "-r")):
        before, turns = len(commands()), relay.client_turns()
        log = target.with_name(f"{target.name}-{args[0]}.log")
        cli_run(*args, password=password, ca_file=ca_file, log=log)
        verbs = collections.Counter(line.split()[0].upper() for line in commands()[before:])
        waits = waits_for_229(log.read_text())
        counts.append(Counts(verbs, relay.client_turns() - turns, waits))
    return counts[0], counts[1]


@dataclass(frozen=True)
class _Site:
    """Where a server's files are, as the test writes them and as the server names them."""

    user: str
    password: str
    ca_file: Path | None
    local: Path  #: the directory the server names as ``remote("")``
    remote: Callable[[str], str]  #: the server's path of a name below it
    chown: Callable[[Path], None] | None = None


def per_file_on(
    relay: TurnCounter, site: _Site, commands: Callable[[], list[str]], tmp_path: Path
) -> PerFile:
    """:func:`per_file` of get -r and put -r through ``relay`` to ``site``."""
    url = f"ftpes://{site.user}@{relay.host}:{relay.port}"

    def measure(name: str, count: int) -> tuple[Counts, Counts]:
        write_files(site.local / name, count, site.chown)
        return measure_on(
            relay,
            url,
            site.remote(name),
            tmp_path / name,
            commands,
            site.password,
            site.ca_file,
            site.remote(f"up-{name}") + "/",
        )

    return per_file(measure)


def near(found: float, expected: float) -> bool:
    """Within one file's worth of ``expected``: where a server answers a SIZE sent behind the
    data during the transfer, the one file where ferryman learns it costs one more SIZE and
    turn, in the run of N or of 2N files."""
    return abs(found - expected) <= 1 / N + 1e-9


EXPECTED_GET = {"EPSV": 1.0, "RETR": 1.0}
EXPECTED_PUT = {"EPSV": 1.0, "STOR": 1.0, "SIZE": 1.0, "RNFR": 1.0, "RNTO": 1.0}


@pytest.mark.vsftpd
def test_vsftpd_commands_and_turns_per_file(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir, tmp_path: Path
) -> None:
    from tests.servers.vsftpd import _chown_to_test_user

    server = vsftpd_explicit
    assert server.pki is not None

    def commands() -> list[str]:
        return _VSFTPD_COMMAND.findall(server.log_text())

    site = _Site(
        server.user,
        server.password,
        server.pki.ca_cert,
        vsftpd_workdir.local,
        vsftpd_workdir.ftp_path,
        _chown_to_test_user,
    )
    with TurnCounter(server.host, server.port) as relay:
        found = per_file_on(relay, site, commands, tmp_path)
    assert found.get == EXPECTED_GET
    # was 2, then 1 (EPSV + RETR): now the EPSV goes behind the end of the data, answered
    # with the 226, and the RETR with the connect: 2 turns, of which only the RETR waits
    assert found.get_turns == 2.0
    assert found.get_waits_229 == 0.0  # was 1: the connect waited for the 229
    assert found.put == EXPECTED_PUT
    assert found.put_turns == 3.0  # was 5: STOR; SIZE behind the data; RNFR + RNTO + EPSV
    assert found.put_waits_229 == 0.0  # was 1
    assert sorted(p.name for p in (vsftpd_workdir.local / "up-big").iterdir()) == sorted(
        p.name for p in (tmp_path / "big").iterdir()
    )
    assert "No SSL session reuse" not in server.log_text()


def test_pyftpdlib_commands_and_turns_per_file(
    ftp_server: ServerFactory, pyftpdlib_lines: _Lines, tmp_path: Path
) -> None:
    served = ftp_server("explicit")
    server = served.server
    assert server.pki is not None

    def commands() -> list[str]:
        return [
            m.group(1) for line in pyftpdlib_lines.lines if (m := _PYFTPDLIB_COMMAND.search(line))
        ]

    site = _Site(server.user, PASSWORD, server.pki.ca_cert, served.root, lambda name: f"/{name}")
    with TurnCounter(server.host, server.port) as relay:
        found = per_file_on(relay, site, commands, tmp_path)
    assert found.get == EXPECTED_GET
    assert found.get_turns == 1.0
    # pyftpdlib answers commands during a transfer: no EPSV behind a download (its EPSV
    # would cut the transfer), so the connect still waits for the 229
    assert found.get_waits_229 == 1.0
    assert found.put_waits_229 == 0.0  # was 1: EPSV rides with RNFR + RNTO
    # pyftpdlib answers a SIZE sent behind the data during the transfer at times: that
    # answer is ignored and SIZE asked after the 226 (once one more SIZE and turn, in either run)
    assert found.put.keys() == EXPECTED_PUT.keys()
    assert all(near(found.put[v], n) for v, n in EXPECTED_PUT.items()), found.put
    assert near(found.put_turns, 3.0), found.put_turns
    assert sorted(p.name for p in (served.root / "up-big").iterdir()) == sorted(
        p.name for p in (tmp_path / "big").iterdir()
    )


def _proftpd_site(server: Proftpd, workdir: Workdir) -> _Site:
    from tests.servers.vsftpd import _chown_to_test_user

    assert server.pki is not None
    return _Site(
        server.user,
        server.password,
        server.pki.ca_cert,
        workdir.local,
        workdir.ftp_path,
        _chown_to_test_user,
    )


def test_proftpd_turns_per_file(
    proftpd_explicit: Proftpd, proftpd_workdir: Workdir, tmp_path: Path
) -> None:
    site = _proftpd_site(proftpd_explicit, proftpd_workdir)
    with TurnCounter("127.0.0.1", proftpd_explicit.port) as relay:
        # ProFTPD buffers a NOOP sent with EPSV + RETR and answers it after the 226, or at
        # times during the transfer: pinned here to "nothing behind a download", so that the
        # runs compare alike (the other case is the next test)
        host_facts("127.0.0.1", relay.port).commands_after_transfer = False
        found = per_file_on(relay, site, list, tmp_path)
    assert found.get_turns == 1.0
    assert near(found.put_turns, 3.0), found.put_turns
    assert found.get_waits_229 == 1.0  # EPSV + RETR in one send, as before
    assert found.put_waits_229 == 0.0  # was 1: EPSV rides with RNFR + RNTO
    assert len(list((proftpd_workdir.local / "up-big").iterdir())) == 2 * N


def test_proftpd_with_the_next_epsv_behind_a_download(
    proftpd_explicit: Proftpd, proftpd_workdir: Workdir, tmp_path: Path
) -> None:
    site = _proftpd_site(proftpd_explicit, proftpd_workdir)
    write_files(site.local / "behind", 2 * N, site.chown)
    with TurnCounter("127.0.0.1", proftpd_explicit.port) as relay:
        facts = host_facts("127.0.0.1", relay.port)
        facts.commands_after_transfer = True  # as its NOOP probe usually finds
        log = tmp_path / "get.log"
        url = f"ftpes://{site.user}@{relay.host}:{relay.port}"
        cli_run(
            "get",
            url + site.remote("behind"),
            tmp_path / "got",
            "-r",
            password=site.password,
            ca_file=site.ca_file,
            log=log,
        )
    # each EPSV behind a transfer was answered after the 226 (a port prepared, used by the
    # next RETR) or during the transfer with a 450 (refused, harmless: read in step, and the
    # next transfer asks anew); never carried out during one
    transcript = log.read_text()
    assert waits_for_229(transcript) <= 2 * N
    assert facts.commands_after_transfer is True
    for path in (site.local / "behind").iterdir():
        assert (tmp_path / "got" / path.name).read_bytes() == path.read_bytes()


def _refusals_fail_at_once(conn: FtpConnection, directory: str) -> None:
    """Once EPSV is pipelined with the transfer command and the data connection's TLS
    handshake overlaps the wait for the 150, a refused RETR/STOR (nobody will answer the
    handshake) must fail at once with the server's reason, and the session stay usable."""
    path = f"{directory.rstrip('/')}/a.txt"
    with FtpBackend(conn) as ftp:
        with ftp.open_write(path) as stream:  # the first: EPSV alone, then pipelined
            stream.write(b"hello")
        for attempt in (lambda: ftp.open_read("/nope/x"), lambda: ftp.open_write("/nope/x")):
            started = time.monotonic()
            with pytest.raises(RemoteError) as info:
                attempt()
            assert time.monotonic() - started < 2
            assert info.value.reply_code in (550, 553)
            with ftp.open_read(path) as stream:
                assert stream.read() == b"hello"
        assert ftp.session is not None and all(ftp.session.data_sessions_resumed)


@pytest.mark.vsftpd
def test_vsftpd_refused_transfers_fail_at_once(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir
) -> None:
    _refusals_fail_at_once(connection(vsftpd_explicit), vsftpd_workdir.ftp_path())


def test_proftpd_refused_transfers_fail_at_once(
    proftpd_explicit: Proftpd, proftpd_workdir: Workdir
) -> None:
    _refusals_fail_at_once(connection(proftpd_explicit), proftpd_workdir.ftp_path())


def test_pyftpdlib_refused_transfers_fail_at_once(ftp_server: ServerFactory) -> None:
    _refusals_fail_at_once(ftp_server("explicit").connection(), "/")
