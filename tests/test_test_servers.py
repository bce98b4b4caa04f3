"""Tests of the test servers themselves: real vsftpd and the scripted-dialogue server.

The client here is the stdlib ``ftplib``; these tests pin down how vsftpd 3.0.3 behaves (TLS
versions, ``require_ssl_reuse``) so that ferryman's own FTP tests can rely on it.
"""

from __future__ import annotations

import ftplib
import io
import os
import pathlib
import pwd
import socket
import ssl
from typing import Any

import pytest

from tests.servers import vsftpd as vsftpd_fixtures
from tests.servers.scripted import (
    CLOSE,
    Rule,
    ScriptedFtpServer,
    epsv,
    multiline,
    pasv,
    pasv_reply,
    transfer_in,
    transfer_out,
)
from tests.servers.vsftpd import TEST_PASSWORD, TEST_USER, Vsftpd, VsftpdUnavailableError, Workdir

# The fixtures, bound under their names so that pytest finds them in this module (a plain
# `from ... import vsftpd_plain` would be shadowed by the test arguments: ruff F811).
vsftpd_explicit = vsftpd_fixtures.vsftpd_explicit
vsftpd_explicit_tls12 = vsftpd_fixtures.vsftpd_explicit_tls12
vsftpd_implicit = vsftpd_fixtures.vsftpd_implicit
vsftpd_plain = vsftpd_fixtures.vsftpd_plain
vsftpd_pki = vsftpd_fixtures.vsftpd_pki
vsftpd_root = vsftpd_fixtures.vsftpd_root
vsftpd_workdir = vsftpd_fixtures.vsftpd_workdir

TIMEOUT = 10
BANNER = "220 (vsFTPd 3.0.3)"
REUSE_REQUIRED = "522 SSL connection failed: session reuse required"


# ---------------------------------------------------------------------------------------------
# ftplib clients


def client_context(server: Vsftpd, max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    assert server.pki is not None
    ctx = ssl.create_default_context(cafile=str(server.pki.ca_cert))
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session."""

    data_tls: list[tuple[str | None, bool]]  # (TLS version, session reused) per data connection

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, Any]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            assert isinstance(self.sock, ssl.SSLSocket)
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session
            )
            self.__dict__.setdefault("data_tls", []).append((conn.version(), conn.session_reused))
        return conn, size


class ImplicitFTP_TLS(ReusingFTP_TLS):
    """Implicit FTPS: TLS from the first byte of the control connection."""

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: tuple[str, int] | None = None,
    ) -> str:
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((host, port), self.timeout)
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def tls_login(
    server: Vsftpd, cls: type[ftplib.FTP_TLS], max_version: ssl.TLSVersion | None = None
) -> ftplib.FTP_TLS:
    ftp = cls(context=client_context(server, max_version), timeout=TIMEOUT)
    try:
        ftp.connect(server.host, server.port)
        ftp.login(server.user, server.password)  # AUTH TLS first (explicit)
        ftp.prot_p()
    except BaseException:
        ftp.close()
        raise
    return ftp


# ---------------------------------------------------------------------------------------------
# vsftpd


@pytest.mark.vsftpd
def test_plain_round_trip(vsftpd_plain: Vsftpd, vsftpd_workdir: Workdir) -> None:
    server = vsftpd_plain
    assert (server.mode, server.pki, server.user, server.password) == (
        "none",
        None,
        TEST_USER,
        TEST_PASSWORD,
    )
    vsftpd_workdir.write("sub/given.txt", b"from the test\n")
    with ftplib.FTP() as ftp:
        assert ftp.connect(server.host, server.port, timeout=TIMEOUT) == BANNER
        assert ftp.login(server.user, server.password) == "230 Login successful."
        assert ftp.pwd() == "/"  # chrooted to the root
        ftp.cwd(vsftpd_workdir.path)
        payload = bytes(range(256)) * 1000
        assert ftp.storbinary("STOR up.bin", io.BytesIO(payload)).startswith("226")
        assert sorted(ftp.nlst()) == ["sub", "up.bin"]
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
        assert any(line.endswith(" up.bin") and line.startswith("-rw-r--r--") for line in lines)
        got = io.BytesIO()
        assert ftp.retrbinary("RETR up.bin", got.write).startswith("226")
        assert got.getvalue() == payload
        got = io.BytesIO()
        ftp.retrbinary("RETR sub/given.txt", got.write)
        assert got.getvalue() == b"from the test\n"
        ftp.delete("sub/given.txt")
        assert ftp.quit() == "221 Goodbye."
    local = vsftpd_workdir.local / "up.bin"
    assert local.read_bytes() == payload
    assert local.stat().st_uid == pwd.getpwnam(TEST_USER).pw_uid
    assert not (vsftpd_workdir.local / "sub" / "given.txt").exists()


@pytest.mark.vsftpd
def test_plain_wrong_password(vsftpd_plain: Vsftpd) -> None:
    with ftplib.FTP() as ftp:
        ftp.connect(vsftpd_plain.host, vsftpd_plain.port, timeout=TIMEOUT)
        with pytest.raises(ftplib.error_perm, match=r"^530 Login incorrect\.$"):
            ftp.login(vsftpd_plain.user, "wrong")


@pytest.mark.vsftpd
def test_workdirs_are_fresh_and_shared_between_servers(
    vsftpd_workdir: Workdir, vsftpd_plain: Vsftpd, vsftpd_explicit: Vsftpd
) -> None:
    assert list(vsftpd_workdir.local.iterdir()) == []
    assert vsftpd_workdir.local.parent == vsftpd_plain.root == vsftpd_explicit.root
    assert vsftpd_workdir.path == "/" + vsftpd_workdir.local.name
    assert vsftpd_plain.port != vsftpd_explicit.port


@pytest.mark.vsftpd
def test_explicit_refuses_login_without_tls(vsftpd_explicit: Vsftpd) -> None:
    with ftplib.FTP() as ftp:
        assert ftp.connect(vsftpd_explicit.host, vsftpd_explicit.port, timeout=TIMEOUT) == BANNER
        with pytest.raises(ftplib.error_perm) as info:
            ftp.login(vsftpd_explicit.user, vsftpd_explicit.password)
        assert str(info.value) == "530 Non-anonymous sessions must use encryption."
        with pytest.raises(EOFError):  # and vsftpd hangs up
            ftp.voidcmd("NOOP")


@pytest.mark.vsftpd
def test_explicit_login_negotiates_tls13(vsftpd_explicit: Vsftpd) -> None:
    server = vsftpd_explicit
    assert server.mode == "explicit" and server.scheme == "ftpes"
    ftp = ftplib.FTP_TLS(context=client_context(server), timeout=TIMEOUT)
    with ftp:
        assert ftp.connect(server.host, server.port) == BANNER
        assert ftp.auth() == "234 Proceed with negotiation."
        assert isinstance(ftp.sock, ssl.SSLSocket)
        assert ftp.sock.version() == "TLSv1.3"
        assert ftp.login(server.user, server.password) == "230 Login successful."
        assert ftp.prot_p() == "200 PROT now Private."
        assert server.pki is not None
        der = ftp.sock.getpeercert(binary_form=True)
        assert der is not None
        from ferryman.fingerprints import sha256_fingerprint

        assert sha256_fingerprint(der) == server.pki.server_fingerprint
        ftp.quit()


@pytest.mark.vsftpd
@pytest.mark.parametrize(
    ("max_version", "expected"),
    [(None, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")],
    ids=["tls13", "tls12"],
)
def test_explicit_data_without_session_reuse_gets_522(
    vsftpd_explicit: Vsftpd, max_version: ssl.TLSVersion | None, expected: str
) -> None:
    ftp = tls_login(vsftpd_explicit, ftplib.FTP_TLS, max_version)
    with ftp:
        assert isinstance(ftp.sock, ssl.SSLSocket)
        assert ftp.sock.version() == expected
        lines: list[str] = []
        with pytest.raises(ftplib.error_perm) as info:
            ftp.retrlines("NLST", lines.append)
        assert str(info.value) == REUSE_REQUIRED
        assert lines == []
        # vsftpd ends the whole session after the 522: the control connection is closed.
        with pytest.raises(EOFError):
            ftp.voidcmd("NOOP")


@pytest.mark.vsftpd
@pytest.mark.parametrize(
    ("max_version", "expected"),
    [(None, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")],
    ids=["tls13", "tls12"],
)
def test_explicit_data_with_session_reuse_round_trip(
    vsftpd_explicit: Vsftpd,
    vsftpd_workdir: Workdir,
    max_version: ssl.TLSVersion | None,
    expected: str,
) -> None:
    ftp = tls_login(vsftpd_explicit, ReusingFTP_TLS, max_version)
    with ftp:
        assert isinstance(ftp, ReusingFTP_TLS)
        ftp.cwd(vsftpd_workdir.path)
        payload = os.urandom(300_000)
        assert ftp.storbinary("STOR data.bin", io.BytesIO(payload)) == "226 Transfer complete."
        assert ftp.nlst() == ["data.bin"]
        got = io.BytesIO()
        assert ftp.retrbinary("RETR data.bin", got.write) == "226 Transfer complete."
        assert got.getvalue() == payload
        assert ftp.voidcmd("NOOP") == "200 NOOP ok."
        assert ftp.data_tls == [(expected, True)] * 3
        ftp.quit()
    assert (vsftpd_workdir.local / "data.bin").read_bytes() == payload
    log = vsftpd_explicit.log_text()
    assert f'"SSL version: {expected}, SSL cipher: ' in log
    assert "reused, no cert" in log


@pytest.mark.vsftpd
def test_tls12_only_variant(vsftpd_explicit_tls12: Vsftpd) -> None:
    server = vsftpd_explicit_tls12
    assert server.tls_max_version == "1.2"
    ftp = tls_login(server, ReusingFTP_TLS)
    with ftp:
        assert isinstance(ftp.sock, ssl.SSLSocket)
        assert ftp.sock.version() == "TLSv1.2"
        assert isinstance(ftp.nlst(), list)
        ftp.quit()
    ctx = client_context(server)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with ftplib.FTP_TLS(context=ctx, timeout=TIMEOUT) as ftp13:
        ftp13.connect(server.host, server.port)
        with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|protocol version"):
            ftp13.auth()


@pytest.mark.vsftpd
def test_implicit_banner_after_tls_handshake(vsftpd_implicit: Vsftpd) -> None:
    server = vsftpd_implicit
    assert server.mode == "implicit" and server.scheme == "ftps"
    with (
        socket.create_connection((server.host, server.port), timeout=TIMEOUT) as raw,
        client_context(server).wrap_socket(raw, server_hostname=server.host) as tls,
    ):
        assert tls.version() == "TLSv1.3"
        assert tls.recv(1024) == (BANNER + "\r\n").encode()


@pytest.mark.vsftpd
def test_implicit_round_trip_with_session_reuse(
    vsftpd_implicit: Vsftpd, vsftpd_workdir: Workdir
) -> None:
    vsftpd_workdir.write("hello.txt", b"hello implicit\n")
    ftp = tls_login(vsftpd_implicit, ImplicitFTP_TLS)
    with ftp:
        assert ftp.welcome == BANNER
        got = io.BytesIO()
        ftp.retrbinary(f"RETR {vsftpd_workdir.path}/hello.txt", got.write)
        assert got.getvalue() == b"hello implicit\n"
        ftp.quit()


@pytest.mark.vsftpd
def test_implicit_does_not_speak_plain_ftp(vsftpd_implicit: Vsftpd) -> None:
    with socket.create_connection((vsftpd_implicit.host, vsftpd_implicit.port), timeout=2) as sock:
        sock.sendall(b"USER x\r\n")
        try:
            data = sock.recv(1024)
        except (TimeoutError, ConnectionResetError):
            data = b""
        assert not data.startswith(b"220")


def test_missing_vsftpd_names_the_install_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vsftpd_fixtures, "VSFTPD_BINARY", pathlib.Path("/nonexistent/vsftpd"))
    with pytest.raises(VsftpdUnavailableError) as info:
        vsftpd_fixtures.check_prerequisites()
    assert "/nonexistent/vsftpd is not installed" in str(info.value)
    assert "scripts/install-test-servers.sh" in str(info.value)


@pytest.mark.vsftpd
def test_start_failure_reports_vsftpd_output(vsftpd_root: pathlib.Path) -> None:
    server = Vsftpd("plain", root=vsftpd_root, extra_config={"no_such_option": "YES"})
    with pytest.raises(VsftpdUnavailableError, match=r"exited with status") as info:
        server.start()
    assert "500 OOPS: unrecognised variable in config file: no_such_option" in str(info.value)
    assert server.pid is None


# ---------------------------------------------------------------------------------------------
# scripted server


def test_scripted_pasv_with_foreign_address() -> None:
    # ftplib must not trust the advertised address (stdlib default since 3.9): it connects to
    # the control connection's peer; nothing ever connects to 10.1.2.3.
    assert ftplib.FTP.trust_server_pasv_ipv4_address is False  # type: ignore[attr-defined]
    rules = {
        "PASV": pasv(advertise="10.1.2.3"),
        "LIST": transfer_out(b"-rw-r--r-- 1 u g 3 Jan 01 00:00 a.txt\r\n"),
    }
    with ScriptedFtpServer(rules) as server, ftplib.FTP() as ftp:
        assert ftp.connect(server.host, server.port, timeout=TIMEOUT).startswith("220")
        ftp.login("anonymous", "x")
        reply = ftp.sendcmd("PASV")
        host, port = ftplib.parse227(reply)
        assert host == "10.1.2.3"
        assert reply == pasv_reply("10.1.2.3", port)
        lines: list[str] = []
        assert ftp.retrlines("LIST", lines.append) == "226 Transfer complete."
        assert lines == ["-rw-r--r-- 1 u g 3 Jan 01 00:00 a.txt"]
        ftp.quit()
    assert server.commands == [
        "USER anonymous",
        "PASS x",
        "PASV",
        "TYPE A",
        "PASV",
        "LIST",
        "QUIT",
    ]


def test_scripted_multiline_feat() -> None:
    feat = multiline("211", ["Features:", " MLST type*;size*;", " UTF8"], "End")
    assert feat == "211-Features:\r\n MLST type*;size*;\r\n UTF8\r\n211 End"
    with ScriptedFtpServer({"FEAT": feat}) as server, ftplib.FTP() as ftp:
        ftp.connect(server.host, server.port, timeout=TIMEOUT)
        assert ftp.sendcmd("FEAT") == "211-Features:\n MLST type*;size*;\n UTF8\n211 End"
        ftp.quit()
    assert server.commands == ["FEAT", "QUIT"]


def test_scripted_epsv_upload_sequences_and_defaults() -> None:
    rules: list[tuple[str, Rule]] = [
        ("EPSV", epsv()),
        ("STOR", transfer_in()),
        ("MDTM", "550 not yet"),
        ("MDTM", "213 20240102030405"),
        ("SITE", "500 not understood"),
    ]
    with ScriptedFtpServer(rules) as server, ftplib.FTP() as ftp:
        ftp.connect(server.host, server.port, timeout=TIMEOUT)
        ftp.login("u", "p")
        assert ftp.pwd() == "/"
        ftp.af = socket.AF_INET6  # makes ftplib use EPSV
        assert ftp.storbinary("STOR f.bin", io.BytesIO(b"uploaded")).startswith("226")
        with pytest.raises(ftplib.error_perm, match=r"^550 not yet$"):
            ftp.sendcmd("MDTM f.bin")
        assert ftp.sendcmd("MDTM f.bin") == "213 20240102030405"
        assert ftp.sendcmd("MDTM f.bin") == "213 20240102030405"  # the last rule repeats
        with pytest.raises(ftplib.error_perm, match=r"^500 not understood$"):
            ftp.sendcmd("SITE CHMOD 600 f.bin")
        with pytest.raises(ftplib.error_perm, match=r"^502 "):
            ftp.sendcmd("XCRC f.bin")
        ftp.quit()
    assert server.uploads == [("f.bin", b"uploaded")]
    assert server.commands[:6] == ["USER u", "PASS p", "PWD", "TYPE I", "EPSV", "STOR f.bin"]


def test_scripted_callable_rules_state_bytes_and_close() -> None:
    def site(srv: ScriptedFtpServer, arg: str) -> str | None:
        srv.state["site"] = arg
        srv.reply("200-first")
        return "200 second"

    rules: dict[str, Rule | list[Rule]] = {
        "SITE": site,
        "NOOP": [b"200 raw bytes reply\n", CLOSE],
    }
    with ScriptedFtpServer(rules, banner="220-hello\n220 there", connections=2) as server:
        with ftplib.FTP() as ftp:
            assert ftp.connect(server.host, server.port, timeout=TIMEOUT) == "220-hello\n220 there"
            assert ftp.sendcmd("SITE X y") == "200-first\n200 second"
            assert ftp.sendcmd("NOOP") == "200 raw bytes reply"
            with pytest.raises(EOFError):
                ftp.sendcmd("NOOP")
        with ftplib.FTP() as ftp:  # a second, sequential connection
            ftp.connect(server.host, server.port, timeout=TIMEOUT)
            ftp.quit()
    assert server.state == {"site": "X y"}
    assert server.connections_accepted == 2
    assert server.commands == ["SITE X y", "NOOP", "NOOP", "QUIT"]


def test_scripted_rule_errors_fail_the_test() -> None:
    def broken(_srv: ScriptedFtpServer, _arg: str) -> str:
        raise ValueError("bug in the script")

    server = ScriptedFtpServer({"STAT": broken})
    with pytest.raises(AssertionError, match="bug in the script"), server, ftplib.FTP() as ftp:
        ftp.connect(server.host, server.port, timeout=TIMEOUT)
        with pytest.raises(ftplib.error_temp, match=r"^451 "):
            ftp.sendcmd("STAT")
        ftp.quit()
