"""Paths relative to the login directory (issue 12, item 2): ``/~/`` in URLs, ``NAME:~/``.

URL paths are absolute; on vsftpd without chroot and OpenSSH without chroot a partner's files
are below the login directory, whose absolute path a user should not need to know. The cases
that matter run against the real servers: a vsftpd with ``chroot_local_user=NO`` (its login
directory is the FTP root's absolute path on disk) and OpenSSH (the test user's home).
"""

from __future__ import annotations

import json
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from ferryman.backends import Backend, open_backend
from ferryman.backends.base import login_hint, resolve_login_path, usable_login_directory
from ferryman.backends.ftp import FtpBackend
from ferryman.backends.ftp.session import parse_pwd
from ferryman.backends.sftp import SftpBackend
from ferryman.cli import cli
from ferryman.connection import FtpConnection, SftpConnection, parse_url
from ferryman.connections_file import resolve_target
from ferryman.errors import ConfigError, ExitCode, NotFoundError
from ferryman.jobs.context import RunContext
from ferryman.jobs.loader import load_job
from ferryman.jobs.run import run_job
from ferryman.wirelog import configure_logging
from tests.servers.scripted import ScriptedFtpServer
from tests.servers.sshd import RemoteDir, Sshd
from tests.servers.vsftpd import Vsftpd, Workdir, make_ftp_root

FAST = ["--retries", "0", "--timeout", "10"]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    configure_logging(0, None)


# -- URLs and NAME:PATH ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("ftpes://orders@h/~/outbound/*.csv", "~/outbound/*.csv"),
        ("sftp://etl@h/~/in/", "~/in/"),
        ("ftp://h/~", "~"),
        ("ftp://h/~/", "~/"),
        ("ftp://h/~/a%20b/x.csv", "~/a b/x.csv"),
        ("ftp://h/outbound/", "/outbound/"),  # still absolute
        ("ftp://h/%7E/x", "/~/x"),  # a directory really named "~" at the root
        ("ftp://h/~orders/x", "/~orders/x"),  # only WinSCP's /~/ is the login directory
        ("ftp://h/a/~/x", "/a/~/x"),
    ],
)
def test_url_paths(url: str, path: str) -> None:
    assert parse_url(url).path == path


def test_describe_shows_the_url_form() -> None:
    assert parse_url("ftp://u@h/~/out/").describe() == "ftp://u@h:21/~/out/"


def _connections_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "connections.yaml"
    path.write_text(f"partner:\n  url: {url}\n  use_netrc: false\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("partner:~/outbound/", "~/outbound/"),
        ("partner:/~/outbound/", "~/outbound/"),  # as in a URL
        ("partner:outbound/", "outbound/"),  # relative already, as before
        ("partner:/outbound/", "/outbound/"),
        ("partner:~", "~"),
    ],
)
def test_named_connection_paths(tmp_path: Path, spec: str, path: str) -> None:
    assert resolve_target(spec, _connections_file(tmp_path, "ftp://h/")).path == path


def test_a_connections_file_url_may_end_in_the_login_directory(tmp_path: Path) -> None:
    assert resolve_target("partner:x", _connections_file(tmp_path, "ftp://h/~/")).path == "x"
    with pytest.raises(ConfigError, match="may not name a path"):
        resolve_target("partner:x", _connections_file(tmp_path, "ftp://h/~/out/"))


# -- resolving, the PWD reply, the hint ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "home", "resolved"),
    [
        ("~/out/a.csv", "/home/orders", "/home/orders/out/a.csv"),
        ("~", "/home/orders", "/home/orders"),
        ("~/", "/home/orders", "/home/orders/"),
        ("~/out", "/", "/out"),
        ("~/out/*.csv", None, "out/*.csv"),  # unknown: relative to where the session starts
        ("~", None, "."),
        ("/abs/x", "/home/orders", "/abs/x"),
        ("rel/x", "/home/orders", "rel/x"),
        ("~orders/x", "/home/orders", "~orders/x"),
    ],
)
def test_resolve_login_path(path: str, home: str | None, resolved: str) -> None:
    assert resolve_login_path(path, home) == resolved


@pytest.mark.parametrize(
    ("reply", "directory"),
    [
        ('257 "/home/orders" is the current directory', "/home/orders"),
        ('257 "/a ""quoted"" dir" created', '/a "quoted" dir'),  # RFC 959 doubled quotes
        ('257 "/with space/"', "/with space/"),
        ('257 "/cut short', None),
        ("257 /unquoted is cwd", None),
        ('550 "/x" no', None),
        ('257 ""', ""),
    ],
)
def test_parse_pwd(reply: str, directory: str | None) -> None:
    assert parse_pwd(reply) == directory


@pytest.mark.parametrize(
    ("text", "usable"),
    [
        ("/home/orders", "/home/orders"),
        ("/home/orders/", "/home/orders"),
        ("/", "/"),
        ("", None),
        ("relative/dir", None),
        ("DISK$USER:[ORDERS]", None),  # VMS
        ("C:/ftp", None),
        ("/a\x00b", None),
        ("/a\x1b[31mred", None),  # terminal escapes from a hostile server
        ("/" + "x" * 5000, None),
    ],
)
def test_usable_login_directory(text: str, usable: str | None) -> None:
    assert usable_login_directory(text) == usable


def test_login_hint() -> None:
    hint = login_hint("/outbound/x.csv", "/home/orders")
    assert hint == "the login directory is /home/orders; did you mean /~/outbound/x.csv?"
    assert login_hint("/outbound/x.csv", "/") is None  # chroot: nothing to add
    assert login_hint("/outbound/x.csv", None) is None
    assert login_hint("outbound/x.csv", "/home/orders") is None  # relative: below it already
    assert login_hint("/home/orders/out/x.csv", "/home/orders") is None


def _scripted(server: ScriptedFtpServer) -> FtpBackend:
    conn = FtpConnection(
        host=server.host,
        port=server.port,
        user="bob",
        password=SecretStr("pw"),
        timeout=5,
        retries=0,
        use_netrc=False,
        use_keyring=False,
    )
    return FtpBackend(conn)


@pytest.mark.parametrize(
    "pwd_reply",
    [
        '257 "/evil\x01dir" is cwd',  # a control character
        "257 /home/bob is cwd",  # unquoted
        "550 PWD not allowed",
        '257 "relative" is cwd',
    ],
)
def test_an_odd_pwd_reply_leaves_tilde_paths_relative(pwd_reply: str) -> None:
    rules = {"PWD": pwd_reply, "DELE": "250 Deleted.", "MKD": '257 "x" created'}
    with ScriptedFtpServer(rules) as server, _scripted(server) as ftp:
        ftp.connect()
        ftp.remove("~/out/a.csv")
        assert ftp.find_login_directory() is None
        ftp.mkdir("~/out/new")
    sent = server.commands
    assert sent.count("PWD") == 1  # asked once, not again for each path
    assert "DELE out/a.csv" in sent and "MKD out/new" in sent


def test_pwd_is_asked_only_when_a_path_needs_it() -> None:
    rules = {"PWD": '257 "/home/bob" is cwd', "DELE": "250 Deleted."}
    with ScriptedFtpServer(rules) as server, _scripted(server) as ftp:
        ftp.connect()
        ftp.remove("/abs/a.csv")
        assert "PWD" not in server.commands  # no extra round trip per connection
        ftp.remove("~/b.csv")
        ftp.remove("~/c.csv")
    assert server.commands.count("PWD") == 1
    assert server.commands[-3:] == ["DELE /home/bob/b.csv", "DELE /home/bob/c.csv", "QUIT"]


# -- vsftpd without chroot -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vsftpd_home() -> Iterator[Vsftpd]:
    """An explicit-FTPS vsftpd with ``chroot_local_user=NO``: PWD after login names the FTP
    root's absolute path on disk, as vsftpd does for local users on most installations."""
    base = Path(tempfile.mkdtemp(prefix="ferryman-login-dir-"))
    base.chmod(0o755)
    server = Vsftpd(
        "explicit", root=make_ftp_root(base / "home"), extra_config={"chroot_local_user": "NO"}
    )
    try:
        server.start()
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"vsftpd without chroot did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def home_dir(vsftpd_home: Vsftpd, request: pytest.FixtureRequest) -> Iterator[Workdir]:
    """A fresh directory below the login directory, with ``outbound/`` files."""
    name = request.node.name.replace("[", "_").replace("]", "")[:50]
    work = Workdir(local=make_ftp_root(vsftpd_home.root / name), path=f"{vsftpd_home.root}/{name}")
    work.write("outbound/a.csv", b"id\n1\n")
    work.write("outbound/b.csv", b"id\n2\n")
    work.write("outbound/notes.txt", b"x")
    yield work
    shutil.rmtree(work.local, ignore_errors=True)


def ftp_url(server: Vsftpd, path: str) -> str:
    return f"ftpes://{server.user}@{server.host}:{server.port}{path}"


def ftp_cli(server: Vsftpd, *args: str | Path, connections: Path | None = None) -> Result:
    assert server.pki is not None
    common = ["--ca-file", str(server.pki.ca_cert), "--password-env", "VSFTPD_PW", *FAST]
    env = {"VSFTPD_PW": server.password, "FERRYMAN_CONNECTIONS": str(connections or "/nonexistent")}
    result = CliRunner().invoke(cli, [*(str(a) for a in args), *common], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.stderr}"
    return result


def names(result: Result) -> list[str]:
    return [line.split()[-1] for line in result.stdout.splitlines()]


def test_ftp_backend_finds_the_login_directory(vsftpd_home: Vsftpd, home_dir: Workdir) -> None:
    assert vsftpd_home.pki is not None
    target = parse_url(
        ftp_url(vsftpd_home, f"/~/{home_dir.local.name}/outbound/"),
        password=vsftpd_home.password,
        ca_file=vsftpd_home.pki.ca_cert,
        use_netrc=False,
    )
    with open_backend(target.connection) as ftp:
        assert ftp.find_login_directory() == str(vsftpd_home.root)
        assert [e.name for e in ftp.list(target.path)] == ["a.csv", "b.csv", "notes.txt"]
        assert ftp.stat("~").is_dir
        with ftp.sibling() as other:  # a pool's next connection knows it without a PWD
            assert other.login_directory == str(vsftpd_home.root)
            assert other.stat(f"~/{home_dir.local.name}/outbound/b.csv").size == 5


def test_cli_commands_with_login_relative_urls(
    vsftpd_home: Vsftpd, home_dir: Workdir, tmp_path: Path
) -> None:
    base = f"/~/{home_dir.local.name}"
    listed = ok(ftp_cli(vsftpd_home, "ls", ftp_url(vsftpd_home, f"{base}/outbound/*.csv")))
    assert names(listed) == ["a.csv", "b.csv"]

    inbox = tmp_path / "inbox"
    ok(ftp_cli(vsftpd_home, "get", ftp_url(vsftpd_home, f"{base}/outbound/*.csv"), f"{inbox}/"))
    assert sorted(p.name for p in inbox.iterdir()) == ["a.csv", "b.csv"]

    report = tmp_path / "report.csv"
    report.write_bytes(b"total\n3\n")
    ok(ftp_cli(vsftpd_home, "mkdir", ftp_url(vsftpd_home, f"{base}/in")))
    ok(ftp_cli(vsftpd_home, "put", report, ftp_url(vsftpd_home, f"{base}/in/")))
    assert (home_dir.local / "in/report.csv").read_bytes() == b"total\n3\n"

    ok(ftp_cli(vsftpd_home, "mv", ftp_url(vsftpd_home, f"{base}/in/report.csv"), "done.csv"))
    # a new path below the login directory, in both forms
    moved = f"{base[1:]}/in/moved.csv"  # ~/NAME/in/moved.csv
    ok(ftp_cli(vsftpd_home, "mv", ftp_url(vsftpd_home, f"{base}/in/done.csv"), moved))
    ok(ftp_cli(vsftpd_home, "mv", ftp_url(vsftpd_home, f"/{moved}"), f"{base}/in/done.csv"))
    assert [p.name for p in (home_dir.local / "in").iterdir()] == ["done.csv"]
    ok(ftp_cli(vsftpd_home, "rm", ftp_url(vsftpd_home, f"{base}/in/done.csv")))
    assert list((home_dir.local / "in").iterdir()) == []

    synced = tmp_path / "synced"
    ok(ftp_cli(vsftpd_home, "sync", ftp_url(vsftpd_home, f"{base}/outbound"), synced))
    assert sorted(p.name for p in synced.iterdir()) == ["a.csv", "b.csv", "notes.txt"]


def test_named_connection_forms_side_by_side(
    vsftpd_home: Vsftpd, home_dir: Workdir, tmp_path: Path
) -> None:
    assert vsftpd_home.pki is not None
    connections = tmp_path / "connections.yaml"
    connections.write_text(
        "partner:\n"
        f"  url: {ftp_url(vsftpd_home, '/')}\n"
        f"  ca_file: {vsftpd_home.pki.ca_cert}\n"
        "  use_netrc: false\n",
        encoding="utf-8",
    )
    rel = f"{home_dir.local.name}/outbound/*.csv"
    for spec in (f"partner:~/{rel}", f"partner:{rel}", f"partner:/~/{rel}"):
        result = ok(ftp_cli(vsftpd_home, "ls", spec, connections=connections))
        assert names(result) == ["a.csv", "b.csv"], spec
    got = tmp_path / "got"
    ok(ftp_cli(vsftpd_home, "get", f"partner:~/{rel}", f"{got}/", connections=connections))
    assert sorted(p.name for p in got.iterdir()) == ["a.csv", "b.csv"]


def test_not_found_on_an_absolute_path_names_the_login_directory(
    vsftpd_home: Vsftpd, home_dir: Workdir, tmp_path: Path
) -> None:
    rel = f"{home_dir.local.name}/outbound"
    result = ftp_cli(vsftpd_home, "ls", ftp_url(vsftpd_home, f"/{rel}/"))
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    expected = f"the login directory is {vsftpd_home.root}; did you mean /~/{rel}/?"
    assert expected in result.stderr

    got = ftp_cli(vsftpd_home, "get", ftp_url(vsftpd_home, f"/{rel}/a.csv"), f"{tmp_path}/")
    assert got.exit_code == ExitCode.NOT_FOUND, got.output
    assert f"did you mean /~/{rel}/a.csv?" in got.stderr

    as_json = ftp_cli(vsftpd_home, "ls", ftp_url(vsftpd_home, f"/{rel}/"), "--json")
    doc = json.loads(as_json.stdout)
    assert doc["exit_code"] == ExitCode.NOT_FOUND
    assert f"the login directory is {vsftpd_home.root}" in doc["hint"]

    # the path written in full below the login directory: found, no hint needed
    full = ok(ftp_cli(vsftpd_home, "ls", ftp_url(vsftpd_home, f"{home_dir.path}/outbound/")))
    assert names(full) == ["a.csv", "b.csv", "notes.txt"]


def test_ferryman_test_prints_the_login_directory(vsftpd_home: Vsftpd) -> None:
    result = ok(ftp_cli(vsftpd_home, "test", ftp_url(vsftpd_home, "")))
    assert f"login directory {vsftpd_home.root}" in result.stdout
    doc = json.loads(ok(ftp_cli(vsftpd_home, "test", ftp_url(vsftpd_home, ""), "--json")).stdout)
    [check] = [c for c in doc["checks"] if c["name"] == "login"]
    assert check["data"] == {"login_directory": str(vsftpd_home.root)}


def test_a_job_names_paths_below_the_login_directory(
    vsftpd_home: Vsftpd, home_dir: Workdir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert vsftpd_home.pki is not None
    monkeypatch.setenv("VSFTPD_PW", vsftpd_home.password)
    monkeypatch.setenv("FERRYMAN_STATE", str(tmp_path / "state.db"))
    home_dir.mkdir("inbound")
    rel = home_dir.local.name
    job = tmp_path / "job.yaml"
    job.write_text(
        f"""\
name: login-dir
state: {tmp_path / "state.db"}
connections:
  partner:
    url: {ftp_url(vsftpd_home, "/")}
    password_env: VSFTPD_PW
    ca_file: {vsftpd_home.pki.ca_cert}
    timeout: 5
    retries: 0
steps:
  - name: fetch
    receive:
      from: "partner:~/{rel}/outbound/*.csv"
      to: inbox/
      after: {{move_to: "/~/{rel}/archive/"}}  # /~/ as in URLs
  - name: publish
    send:
      from: inbox/a.csv
      to: "partner:/~/{rel}/inbound/"
""",
        encoding="utf-8",
    )
    report = run_job(job, None)
    assert report.exit_code == 0, [(s.name, str(s.error)) for s in report.steps]
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["a.csv", "b.csv"]
    assert (home_dir.local / "inbound/a.csv").read_bytes() == b"id\n1\n"
    archived = sorted(p.name for p in (home_dir.local / "archive").iterdir())
    assert archived == ["a.csv", "b.csv"]  # the source action names ~/ too


def test_chrooted_vsftpd_login_directory_is_the_root(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir
) -> None:
    assert vsftpd_explicit.pki is not None
    vsftpd_workdir.write("x.csv", b"1")
    conn = parse_url(
        ftp_url(vsftpd_explicit, "/"),
        password=vsftpd_explicit.password,
        ca_file=vsftpd_explicit.pki.ca_cert,
        use_netrc=False,
    ).connection
    with open_backend(conn) as ftp:
        assert ftp.find_login_directory() == "/"
        assert ftp.stat(f"~{vsftpd_workdir.ftp_path('x.csv')}").size == 1
        with pytest.raises(NotFoundError) as caught:
            ftp.stat("/no/such.csv")
        assert "login directory" not in (caught.value.hint or "")


# -- OpenSSH -------------------------------------------------------------------------------------


@pytest.fixture
def ssh_home(sshd: Sshd, request: pytest.FixtureRequest) -> Iterator[RemoteDir]:
    """A fresh directory in the test user's home (the SFTP login directory)."""
    home = Path(pwd.getpwnam(sshd.user).pw_dir)
    local = Path(tempfile.mkdtemp(prefix=f"{request.node.name[:40]}-", dir=home))
    local.chmod(0o755)
    shutil.chown(local, sshd.user)
    work = RemoteDir(local=local, path=str(local))
    work.write("out/a.csv", b"id\n1\n")
    work.write("out/b.csv", b"id\n2\n")
    yield work
    shutil.rmtree(local, ignore_errors=True)


def sftp_url(sshd: Sshd, path: str) -> str:
    return f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{path}"


def sftp_cli(sshd: Sshd, tmp_path: Path, *args: str | Path) -> Result:
    pin = ["--fingerprint", sshd.fingerprints["ssh-ed25519"]]
    env = {
        "FM_PW": sshd.password,
        "HOME": str(tmp_path),
        "SSH_AUTH_SOCK": None,
        "FERRYMAN_CONNECTIONS": "/nonexistent",
    }
    argv = [*(str(a) for a in args), "--password-env", "FM_PW", *pin, *FAST]
    result = CliRunner().invoke(cli, argv, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _sftp_backend(sshd: Sshd) -> Backend:
    conn = SftpConnection(
        host=sshd.host,
        port=sshd.port,
        user=sshd.user,
        password=SecretStr(sshd.password),
        fingerprint=sshd.fingerprints["ssh-ed25519"],
        timeout=10,
        retries=0,
        use_netrc=False,
        use_keyring=False,
        use_agent=False,
    )
    return SftpBackend(conn)


def test_sftp_backend_finds_the_login_directory(sshd: Sshd, ssh_home: RemoteDir) -> None:
    home, name = str(ssh_home.local.parent), ssh_home.local.name
    with _sftp_backend(sshd).connect() as sftp:
        assert sftp.find_login_directory() == home
        assert [e.name for e in sftp.list(f"~/{ssh_home.local.name}/out")] == ["a.csv", "b.csv"]
        with pytest.raises(NotFoundError) as caught:
            sftp.stat(f"/{ssh_home.local.name}/out/a.csv")
        assert caught.value.hint is not None
        assert f"the login directory is {home}; did you mean /~/" in caught.value.hint
        with sftp.sibling().connect() as other:  # shares the SSH connection and the answer
            assert other.find_login_directory() == home
        # an OPEN is answered while the caller goes on: its "not found" gets the hint too
        with pytest.raises(NotFoundError) as caught, sftp.open_read(f"/{name}/out/b.csv") as r:
            r.read()
        assert f"did you mean /~/{name}/out/b.csv?" in (caught.value.hint or "")


def test_sftp_cli_with_login_relative_urls(sshd: Sshd, ssh_home: RemoteDir, tmp_path: Path) -> None:
    base = f"/~/{ssh_home.local.name}"
    listed = ok(sftp_cli(sshd, tmp_path, "ls", sftp_url(sshd, f"{base}/out/*.csv")))
    assert names(listed) == ["a.csv", "b.csv"]
    inbox = tmp_path / "inbox"
    ok(sftp_cli(sshd, tmp_path, "get", sftp_url(sshd, f"{base}/out/*.csv"), f"{inbox}/"))
    assert sorted(p.name for p in inbox.iterdir()) == ["a.csv", "b.csv"]
    ok(sftp_cli(sshd, tmp_path, "put", inbox / "a.csv", sftp_url(sshd, f"{base}/in.csv")))
    assert (ssh_home.local / "in.csv").read_bytes() == b"id\n1\n"

    missing = sftp_cli(sshd, tmp_path, "ls", sftp_url(sshd, f"/{ssh_home.local.name}/out/"))
    assert missing.exit_code == ExitCode.NOT_FOUND, missing.output
    home = ssh_home.local.parent
    expected = f"the login directory is {home}; did you mean /~/{ssh_home.local.name}/out/?"
    assert expected in missing.stderr


def test_sftp_ferryman_test_prints_the_login_directory(
    sshd: Sshd, ssh_home: RemoteDir, tmp_path: Path
) -> None:
    result = ok(sftp_cli(sshd, tmp_path, "test", sftp_url(sshd, "")))
    assert f"login directory {ssh_home.local.parent}" in result.stdout


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("partner:~/outbound/*.csv", "~/outbound/*.csv"),
        ("partner:/~/outbound/*.csv", "~/outbound/*.csv"),
        ("partner:outbound/*.csv", "outbound/*.csv"),
        ("partner:/outbound/*.csv", "/outbound/*.csv"),
        ("partner:", "."),
        ("ftpes://orders@h/~/outbound/*.csv", "~/outbound/*.csv"),
    ],
)
def test_job_endpoints(tmp_path: Path, spec: str, path: str) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: endpoints\n"
        "connections:\n"
        "  partner: {url: 'ftp://orders@h/', use_netrc: false}\n"
        "steps:\n"
        "  - name: look\n"
        "    list: {path: 'partner:/'}\n",
        encoding="utf-8",
    )
    endpoint = RunContext(load_job(job)).endpoint(spec)
    assert endpoint.remote and endpoint.path == path


def test_get_archives_below_the_login_directory_with_move_source_to(
    vsftpd_home: Vsftpd, home_dir: Workdir, tmp_path: Path
) -> None:
    base = f"/~/{home_dir.local.name}"
    source = ftp_url(vsftpd_home, f"{base}/outbound/*.csv")
    inbox = tmp_path / "inbox"
    ok(ftp_cli(vsftpd_home, "get", source, f"{inbox}/", "--move-source-to", f"{base}/done/"))
    assert sorted(p.name for p in inbox.iterdir()) == ["a.csv", "b.csv"]
    assert sorted(p.name for p in (home_dir.local / "done").iterdir()) == ["a.csv", "b.csv"]
