"""Fuzzing URLs and connections files (issue 13): every input ends in a documented exit code
and one readable error line, never a traceback or an "unexpected" error.

Hypothesis generates the inputs (bounded: ~200 examples each, no deadline). The CLI cases run
``ferryman ls`` through click's CliRunner with ``--retries 0 --timeout 1`` and can only ever
contact loopback: every generated host is ``127.0.0.1``/``[::1]`` on a closed port, a name
under ``.invalid`` (RFC 2606: never resolves) or a name the URL parser refuses.
"""

from __future__ import annotations

import json
import socket
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ferryman.cli import cli
from ferryman.connection import parse_url
from ferryman.connections_file import load_connections
from ferryman.errors import ConfigError, ExitCode

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
DOCUMENTED = {int(code) for code in ExitCode}
#: what ``ferryman ls`` may end with when nothing can be reached: bad input, no connection,
#: no login, no TLS, not found
LS_CODES = {2, 3, 4, 5, 6}

TEXT = st.characters(codec="utf-8")
#: user names and passwords that cannot end the authority part early (and so move the host)
USERINFO = st.characters(codec="utf-8", exclude_characters="/?#\\")
#: host labels: valid, too long, empty, or with characters no host name has
LABEL = st.text(st.sampled_from("abz09-_%ü. :[]\n\x01"), max_size=70)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("fuzz-home")
    yield {
        "HOME": str(home),
        "FERRYMAN_CONNECTIONS": str(home / "no-connections.yaml"),
        "FERRYMAN_STATE": str(home / "state.db"),
        "NO_COLOR": "1",
    }


def one_line(text: str | None) -> None:
    assert text is None or ("\n" not in text and "\r" not in text), text


def assert_one_error(result: Result, codes: set[int]) -> None:
    """A documented exit code, one ``ferryman: error:`` line (and perhaps a hint), no
    traceback, no "unexpected" error, no raw control characters."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code in codes & DOCUMENTED, (result.exit_code, result.stderr)
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("ferryman: error: ")]
    assert len(errors) == 1, result.stderr
    assert all(line.startswith("ferryman: ") for line in lines), result.stderr
    assert "Traceback" not in result.output and "unexpected" not in result.stderr, result.stderr
    assert not any(unicodedata.category(c) == "Cc" for c in "".join(lines)), result.stderr


# --- the URL parser ----------------------------------------------------------------------------


def check_parse(url: str) -> None:
    try:
        parse_url(url)
    except ConfigError as err:
        assert err.exit_code == ExitCode.USAGE
        assert err.message
        one_line(err.message)
        one_line(err.hint)


@FUZZ
@given(st.text(TEXT, max_size=80))
def test_parse_url_any_text(url: str) -> None:
    check_parse(url)


@st.composite
def urls(
    draw: st.DrawFn,
    hosts: st.SearchStrategy[str] | None = None,
    ports: st.SearchStrategy[str | None] | None = None,
) -> str:
    scheme = draw(st.sampled_from(["ftp", "ftpes", "ftps", "sftp", "SFTP", "http", ""]))
    user = draw(st.none() | st.text(USERINFO, max_size=12))
    password = draw(st.none() | st.text(USERINFO, max_size=8))
    if hosts is None:
        hosts = st.lists(LABEL, min_size=1, max_size=5).map(".".join)
    host = draw(hosts)
    port = draw(ports if ports is not None else st.none() | st.text("0123456789x-", max_size=6))
    path = draw(st.text(TEXT, max_size=20))
    url = f"{scheme}://" if scheme else ""
    if user is not None:
        url += user + (f":{password}" if password is not None else "") + "@"
    url += host + (f":{port}" if port is not None else "") + "/" + path
    return url


@FUZZ
@given(urls())
def test_parse_url_structured(url: str) -> None:
    check_parse(url)


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("a" * 300 + ".example", "is 308 characters long (at most 253)"),
        ("a" * 64 + ".example", "has a label of 64 characters (at most 63)"),
        (".".join(["a" * 60] * 5), "is 304 characters long (at most 253)"),
        ("a..b.example", "has an empty label"),
        (".example", "has an empty label"),
        ("a%41.example", "may contain only letters, digits"),
    ],
)
def test_bad_host_names_are_url_errors(host: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_url(f"ftp://user@{host}/dir/")
    message = caught.value.message
    assert message.startswith("invalid URL 'ftp://user@") and ": host name '" in message
    assert problem in message and len(message) < 250
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    "host", ["a" * 63 + ".example", ".".join(["a" * 63] * 3) + ".abcdefghi", "example.com."]
)
def test_long_but_valid_host_names(host: str) -> None:
    assert parse_url(f"ftp://{host}/").connection.host == host


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sftp://g%C2%92@h.example/", "contains the control character '\\x92'"),
        ("sftp://%F1%93%90%BF@h.example/", "which SSH does not allow in user names"),
        ("ftp://a%0D%0APASS%20x@h.example/", "contains the control character '\\r'"),
    ],
)
def test_bad_user_names_are_url_errors(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_url(url)
    assert caught.value.message.startswith("invalid URL '") and problem in caught.value.message
    assert "(settings)" not in caught.value.message


def test_cli_host_label_of_300_characters(cli_env: dict[str, str]) -> None:
    """Was: 'unexpected UnicodeError ... (label too long)' and exit 7."""
    url = "ftp://" + "a" * 300 + ".invalid/"
    result = CliRunner().invoke(cli, ["ls", "--retries", "0", "--timeout", "1", url], env=cli_env)
    assert_one_error(result, {int(ExitCode.USAGE)})
    assert "host name 'aaa" in result.stderr and "at most 253" in result.stderr


# --- the CLI: any URL that can only reach loopback ----------------------------------------------


PORT = closed_port()
SAFE_HOSTS = st.one_of(
    st.sampled_from([f"127.0.0.1:{PORT}", f"[::1]:{PORT}", "[zz::1]", "a" * 64 + ".invalid"]),
    st.lists(LABEL, min_size=1, max_size=4).map(lambda labels: ".".join(labels) + ".invalid"),
)


@FUZZ
@given(url=urls(SAFE_HOSTS, st.none()))
def test_cli_ls_any_url(url: str, cli_env: dict[str, str]) -> None:
    args = ["ls", "--retries", "0", "--timeout", "1", "--", url]
    result = CliRunner().invoke(cli, args, env=cli_env)
    event(f"exit code {result.exit_code}")
    assert_one_error(result, LS_CODES)


# --- connections files ----------------------------------------------------------------------


KEYS = st.sampled_from(
    [
        "url",
        "host",
        "port",
        "user",
        "password",
        "password_env",
        "password_file",
        "protocol",
        "tls",
        "timeout",
        "retries",
        "encoding",
        "ca_file",
        "known_hosts",
        "passive",
        "bogus",
        "chunk_size",
        "fingerprint",
        "use_netrc",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**20),
    st.floats(),
    st.text(TEXT, max_size=30),
    st.sampled_from(
        [
            "ftp://h.invalid/",
            f"sftp://u@127.0.0.1:{PORT}/",
            "ftpes://a..b.invalid/",
            "ftp://" + "a" * 70 + ".invalid/",
            "ftp://h.invalid/some/path",
            "ftp",
            "sftp",
            "explicit",
            "implicit",
            "utf-8",
            "1e999",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
ENTRIES = st.dictionaries(KEYS, VALUES, max_size=5)
DOCUMENTS = st.dictionaries(st.text(TEXT, max_size=8), ENTRIES | VALUES, max_size=4) | VALUES


def check_load(path: Path) -> None:
    try:
        found = load_connections(path)
    except ConfigError as err:
        assert err.exit_code == ExitCode.USAGE
        assert err.message
        one_line(err.message)
        one_line(err.hint)
    else:
        assert isinstance(found, dict)


@FUZZ
@given(document=DOCUMENTS)
def test_connections_file_any_document(document: Any, tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    check_load(path)


@FUZZ
@given(text=st.text(TEXT, max_size=200))
def test_connections_file_any_text(text: str, tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(text, encoding="utf-8")
    check_load(path)


def test_connections_file_control_character_is_one_line(tmp_path: Path) -> None:
    """The YAML reader's error spans two lines; the loader makes it one."""
    path = tmp_path / "connections.yaml"
    path.write_text("partner:\n  url: ftp://h.invalid/\x03\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_connections(path)
    one_line(caught.value.message)
    assert str(path) in caught.value.message and "#x0003" in caught.value.message


SAFE_URLS = st.sampled_from(
    [
        f"ftp://u@127.0.0.1:{PORT}/",
        f"ftpes://127.0.0.1:{PORT}/",
        f"sftp://u@[::1]:{PORT}/",
        "ftps://nowhere.invalid/",
        "ftp://a..b.invalid/",
        "ftp://" + "a" * 64 + ".invalid/",
        f"ftp://127.0.0.1:{PORT}/a/path",
    ]
)
SAFE_ENTRIES = st.fixed_dictionaries(
    {"url": SAFE_URLS},
    optional={
        "user": st.text(TEXT, max_size=10),
        "password_env": st.text(TEXT, max_size=10),
        "protocol": st.sampled_from(["ftp", "sftp", "http"]) | st.integers(),
        "timeout": st.floats() | st.integers(-5, 10**6),
        "port": st.integers(-5, 70000),
        "tls": st.text(TEXT, max_size=8),
        "encoding": st.text(TEXT, max_size=8),
        "bogus": VALUES,
    },
)


@FUZZ
@given(
    name=st.from_regex(r"\A[a-z][a-z0-9_]{0,8}\Z"),
    entry=SAFE_ENTRIES,
    path=st.text(TEXT, max_size=15),
)
def test_cli_ls_named_connection(
    name: str, entry: dict[str, Any], path: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    if "127.0.0.1" in entry["url"] or "[::1]" in entry["url"]:
        entry.pop("port", None)  # loopback only ever on the closed port of the URL
    file = tmp_path / "connections.yaml"
    file.write_text(json.dumps({name: entry}), encoding="utf-8")
    args = ["ls", "--retries", "0", "--timeout", "1", "--connections", str(file), "--"]
    result = CliRunner().invoke(cli, [*args, f"{name}:{path}"], env=cli_env)
    event(f"exit code {result.exit_code}")
    assert_one_error(result, LS_CODES)
