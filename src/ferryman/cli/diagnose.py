"""``ferryman test``: the SSIS "Test Connection", grown into a diagnosis.

Each step is a :class:`Check` with what was seen and, on failure, a hint that says what to do.
The steps stop at the first failure that makes the next ones meaningless.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import asdict, dataclass, field

import click

from ..backends.base import usable_login_directory
from ..backends.ftp.hashes import hash_support
from ..backends.ftp.pipelining import PipeliningRefusedError
from ..backends.ftp.quirks import ServerQuirks, refused_command
from ..backends.ftp.session import FtpSession, parse_epsv, parse_pasv, parse_pwd
from ..backends.ftp.tls import describe_tls, probe_fingerprint
from ..backends.ftp.translate import FTP_REFUSED_HINT, translate
from ..backends.neterrors import translate_network_error
from ..connection import Connection, FtpConnection, TLSMode
from ..errors import CertificateError, ExitCode, FerrymanError, TimeoutError
from ..secrets import login_credentials
from ..terminal import safe_text
from ..wirelog import WireLog, register_secret
from .options import CommonOptions, common_options
from .output import emit_json, say

__all__ = ["Check", "diagnose", "tcp_check", "test_command"]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    hint: str | None = None
    exit_code: int = 0
    data: dict[str, object] = field(default_factory=dict)
    #: passed, but worth knowing (e.g. commands advertised but refused)
    note: bool = False


def _failed(name: str, err: FerrymanError, hint: str | None = None) -> Check:
    return Check(name, False, err.message, hint or err.hint, int(err.exit_code))


def tcp_check(conn: Connection, refused_hint: str) -> Check:
    """Does the port answer at all (FTP and SFTP alike)?"""
    started = time.monotonic()
    try:
        with socket.create_connection(
            (conn.host, conn.port), timeout=conn.effective_connect_timeout
        ) as sock:
            peer = sock.getpeername()
    except OSError as err:
        error = translate_network_error(err, "connect", conn.describe(), refused_hint=refused_hint)
        assert error is not None  # every OSError is a network error
        return _failed("tcp", error)
    ms = (time.monotonic() - started) * 1000
    return Check("tcp", True, f"connected to {peer[0]}:{peer[1]} in {ms:.1f} ms")


def _open_hint(conn: FtpConnection, err: BaseException, error: FerrymanError) -> str | None:
    if conn.tls is TLSMode.IMPLICIT and isinstance(err, ssl.SSLError):
        return (
            "this port does not start with TLS; if it sends a plain 220 banner, use "
            "ftpes:// (explicit TLS) or ftp:// instead of ftps://"
        )
    if conn.tls is not TLSMode.IMPLICIT and isinstance(error, TimeoutError):
        return "no banner arrived; the port may expect implicit TLS: try ftps:// (usually port 990)"
    if isinstance(error, CertificateError):
        fingerprint = probe_fingerprint(conn)
        if fingerprint:
            return (
                f"the server's certificate has SHA-256 fingerprint {fingerprint}; if you "
                f"trust it, pass --fingerprint {fingerprint}, or its CA with --ca-file"
            )
    return error.hint


def _data_check(session: FtpSession, mode: str) -> Check:
    """One LIST over a data connection opened with EPSV or PASV (forced)."""
    name = f"data-{mode.lower()}"
    peer = session.control.getpeername()[0]
    note = ""
    try:
        reply = session.command(mode)
        if mode == "EPSV":
            port = parse_epsv(reply)
        else:
            advertised, port = parse_pasv(reply)
            if advertised != peer:
                note = f"; the server advertised {advertised}, ignored for {peer}"
        sock = session.dial(peer, port)
        try:
            session.start_transfer("LIST", None)
            if session.conn.tls is not TLSMode.NONE:
                sock = session.wrap_data(sock)
            size = 0
            while chunk := sock.recv(65536):
                size += len(chunk)
        except BaseException:
            sock.close()
            raise
        session.finish_data(sock, upload=False)
    except Exception as err:
        error = translate(err, f"LIST via {mode}", session.conn.describe())
        if mode == "EPSV" and refused_command(error):
            # advertised but refused is a finding, not a failure: ferryman falls back to PASV
            session.quirks.refuse("EPSV", error.reply_text or "", session.wire, then="PASV")
            return Check(name, True, f"EPSV refused ({error.reply_text}); PASV is used", note=True)
        hint = error.hint
        if isinstance(err, OSError) and mode == "PASV":
            hint = "the PASV port is unreachable: a firewall or NAT blocks it; try --active"
        return _failed(name, error, hint)
    detail = f"LIST over {mode} ok ({size} bytes){note}"
    data: dict[str, object] = {}
    if session.data_sessions_resumed:
        resumed = session.data_sessions_resumed[-1]
        data["tls_session_resumed"] = resumed
        detail += ", TLS session " + ("resumed" if resumed else "NOT resumed")
    return Check(name, True, detail, data=data)


def _login_directory(session: FtpSession) -> tuple[str, str | None]:
    """PWD after login, for the ``login`` line: the login directory, which ``/~/`` in a URL
    names. Worth showing because URL paths are absolute: without chroot a partner's
    ``/outbound`` is often ``/home/orders/outbound``. A refusal or an odd reply is no failure
    (``/~/x`` is then sent as the relative ``x``)."""
    try:
        reply = session.command("PWD")
    except FerrymanError as err:
        return f"login directory unknown (PWD: {err.reply_text or err.message})", None
    home = usable_login_directory(parse_pwd(reply))
    if home is None:
        return f"login directory unknown (PWD: {reply[:200]!r})", None
    return f"login directory {home} (/~/PATH names paths below it)", home


#: a name no server holds: a probe of a command that takes a path meets "not found" (an
#: answer: the command works) and can never touch a real file
_PROBE_NAME = ".ferryman-probe-no-such-file"


def _refusal_check(session: FtpSession) -> Check:
    """Try each optional command FEAT advertised, and report those the server refuses all
    the same (gateways that forward FEAT, per-user limits): a finding, not a failure, since
    ferryman works around each one; but worth knowing before a transfer depends on it."""
    features = session.features
    probes: list[tuple[str, str]] = []
    if "MLST" in features:
        probes.append(("MLST", "MLST"))
    for command in ("SIZE", "MDTM"):
        if command in features:
            probes.append((command, f"{command} {_PROBE_NAME}"))
    if "MFMT" in features:
        probes.append(("MFMT", f"MFMT 20000101000000 {_PROBE_NAME}"))
    support = hash_support(features)
    if support.hash_names:
        probes.append(("HASH", f"HASH {_PROBE_NAME}"))
    probes += [(command, f"{command} {_PROBE_NAME}") for command in support.x_commands.values()]
    if "STREAM" in features.get("REST", "").upper():
        probes.append(("REST", "REST 0"))
    for command, line in probes:
        if session.quirks.refused(command):
            continue
        try:
            session.command(line)
        except FerrymanError as err:
            if refused_command(err):
                session.quirks.refuse(command, err.reply_text or err.message, then="worked around")
        except Exception as err:
            return _failed("refusals", translate(err, line, session.conn.describe()))
    found = session.quirks.findings()
    if not found:
        return Check("refusals", True, "every advertised command is answered")
    listed = ", ".join(f"{command} ({reply})" for command, reply in found.items())
    return Check(
        "refusals", True, f"advertised but refused: {listed}", data={"refused": found}, note=True
    )


_PIPELINING_REFUSED = Check(
    "pipelining",
    True,
    "the server dropped commands sent without waiting for the reply; ferryman sends it one "
    "command at a time (slower on a link with latency)",
    note=True,
)


def _open_again(session: FtpSession) -> None:
    """Greeting and TLS of a second session, any failure as the project's error."""
    try:
        session.open()
    except FerrymanError:
        raise
    except Exception as err:
        raise translate(err, "greeting and TLS", session.conn.describe()) from None


def diagnose(conn: FtpConnection) -> list[Check]:
    checks = [tcp_check(conn, FTP_REFUSED_HINT)]
    if not checks[0].ok:
        return checks
    session = FtpSession(conn, WireLog(conn.describe()), quirks=ServerQuirks())
    try:
        try:
            banner = session.open()
        except Exception as err:
            error = translate(err, "greeting and TLS", conn.describe())
            checks.append(_failed("greeting", error, _open_hint(conn, err, error)))
            return checks
        checks.append(Check("greeting", True, banner.replace("\n", " | ")))
        if isinstance(session.sock, ssl.SSLSocket):
            info = describe_tls(session.sock)
            checks.append(Check("tls", True, info.summary(), data=asdict(info)))
        try:
            creds = login_credentials(conn)  # no password anywhere: said without an empty PASS
            if not creds.anonymous:
                register_secret(creds.password)
            try:
                session.login_with(creds.user, creds.password)
            except PipeliningRefusedError:  # out of step: again, one command at a time
                session.close()
                session = FtpSession(conn, session.wire, quirks=session.quirks)
                _open_again(session)
                session.login_with(creds.user, creds.password)
                checks.append(_PIPELINING_REFUSED)
        except FerrymanError as err:
            checks.append(_failed("login", err))
            return checks
        where, home = _login_directory(session)
        detail = f"logged in as {creds.user} ({creds.source}); {where}"
        checks.append(Check("login", True, detail, data={"login_directory": home}))
        feats = ", ".join(f"{k} {v}".strip() for k, v in session.features.items()) or "(none)"
        checks.append(Check("features", True, feats, data={"features": session.features}))
        if conn.use_epsv:
            checks.append(_data_check(session, "EPSV"))
        checks.append(_data_check(session, "PASV"))
        checks.append(_refusal_check(session))
    finally:
        session.quit_quietly()
    return checks


@click.command("test")
@click.argument("target")
@common_options
def test_command(target: str, opts: CommonOptions) -> None:
    """Test a connection and diagnose what fails (TARGET: URL or connection NAME)."""
    spec = target if "://" in target or ":" in target else target + ":"
    conn = opts.target(spec).connection
    if conn.protocol == "sftp":
        from .diagnose_sftp import diagnose_sftp  # noqa: PLC0415 - loads asyncssh only for SFTP

        checks = diagnose_sftp(conn)
    else:
        checks = diagnose(conn)
    failed = next((c for c in checks if not c.ok), None)
    if opts.json:
        emit_json(
            {"ok": failed is None, "target": conn.describe(), "checks": [asdict(c) for c in checks]}
        )
    else:
        # replies and banners are the server's text: shown, never obeyed (say escapes them)
        say(f"Testing {conn.describe()}")
        for check in checks:
            mark = ("note" if check.note else "ok  ") if check.ok else "FAIL"
            say(f"  {mark} {check.name:<10} {safe_text(check.detail)}")
            if check.hint and not check.ok:
                say(f"       hint: {safe_text(check.hint)}")
    if failed is not None:
        raise SystemExit(failed.exit_code or int(ExitCode.FAILURE))
