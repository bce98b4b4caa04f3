"""The connection manager: URLs, validation, secret sources, connections files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from ferryman.connection import FtpConnection, SftpConnection, TLSMode, parse_url, redact_url
from ferryman.connections_file import load_connections, resolve_target
from ferryman.errors import ConfigError, ExitCode
from ferryman.secrets import resolve_credentials

FP = "AB:" * 31 + "CD"


@pytest.mark.parametrize(
    ("url", "tls", "port"),
    [
        ("ftp://h.example/", TLSMode.NONE, 21),
        ("ftpes://h.example/", TLSMode.EXPLICIT, 21),
        ("ftps://h.example/", TLSMode.IMPLICIT, 990),
        ("FTPES://h.example:2121/x", TLSMode.EXPLICIT, 2121),
    ],
)
def test_scheme_sets_tls_mode_and_default_port(url: str, tls: TLSMode, port: int) -> None:
    conn = parse_url(url).connection
    assert (conn.tls, conn.port) == (tls, port)


def test_url_user_password_and_path_are_percent_decoded() -> None:
    target = parse_url("ftpes://us%40er:p%3Ass%2Fw@h.example/out%20box/a%23b.csv")
    assert target.connection.user == "us@er"
    assert target.connection.password is not None
    assert target.connection.password.get_secret_value() == "p:ss/w"
    assert target.path == "/out box/a#b.csv"


def test_defaults_follow_ssis_and_secure_choices() -> None:
    conn = parse_url("ftp://h/").connection
    assert conn.user is None  # -> netrc login or anonymous at connect time
    assert conn.timeout == 60 and conn.retries == 5 and conn.passive
    assert conn.verify and conn.use_epsv and conn.use_mlsd and conn.encoding == "utf-8"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("h.example/x", "is not a URL"),
        ("http://h/", "unknown scheme 'http'"),
        ("ftp://h:99999/", "not a valid URL"),
        ("ftp:///x", "names no host"),
        ("ftp://h/a.csv?x", "'?' or '#'"),
        ("ftp://h/a%0aDELE%20b", "contains a LF"),
        ("sftps://h/", "unknown scheme 'sftps'"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(url)
    assert words in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_secrets_never_in_repr_str_or_errors() -> None:
    conn = parse_url("ftpes://u:hunter22@h/").connection
    for text in (repr(conn), str(conn), conn.describe()):
        assert "hunter22" not in text
    with pytest.raises(ConfigError) as info:
        parse_url("ftpes://u:hunter22@h/", timeout=-1)
    assert "hunter22" not in str(info.value)
    assert redact_url("ftp://u:hunter22@h/p") == "ftp://u:****@h/p"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"tls": "sometimes"}, "tls: Input should be 'none', 'explicit' or 'implicit'"),
        ({"timeout": 0}, "timeout: Input should be greater than 0"),
        ({"retries": -1}, "retries: Input should be greater than or equal to 0"),
        ({"port": 70000}, "port: Input should be less than or equal to 65535"),
        ({"colour": "red"}, "colour: unknown setting"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"ca_file": "x.pem"}, "ca_file only apply to TLS"),
        ({"tls": "explicit", "verify": False}, "pin the certificate with fingerprint"),
        ({"tls": "explicit", "fingerprint": "12:34"}, "not a SHA-256 fingerprint"),
        ({"password": "a", "password_env": "B"}, "give one password source"),
        ({"active_port_range": [6000, 5000]}, "low <= high"),
    ],
)
def test_invalid_settings_name_the_field(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url("ftp://h/", **fields)
    assert words in str(info.value)


def test_fingerprint_is_normalized_and_insecure_turns_off_verify() -> None:
    conn = parse_url("ftpes://h/", fingerprint=FP.lower().replace(":", "")).connection
    assert conn.fingerprint == FP
    assert not parse_url("ftpes://h/", insecure=True).connection.verify


def test_password_sources_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FM_PW", "from-env")
    secret = tmp_path / "pw"
    secret.write_text("from-file\nignored\n")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine h.example login bob password from-netrc\n")
    netrc.chmod(0o600)
    base = {"host": "h.example", "netrc_file": netrc, "use_keyring": False}
    assert (
        resolve_credentials(FtpConnection(**base, user="bob", password=SecretStr("p"))).password
        == "p"
    )
    assert (
        resolve_credentials(FtpConnection(**base, user="bob", password_env="FM_PW")).password
        == "from-env"
    )
    assert (
        resolve_credentials(FtpConnection(**base, user="bob", password_file=secret)).password
        == "from-file"
    )
    from_netrc = resolve_credentials(FtpConnection(**base))
    assert (from_netrc.user, from_netrc.password, from_netrc.source) == (
        "bob",
        "from-netrc",
        "netrc",
    )
    other = resolve_credentials(FtpConnection(**base, user="carol"))
    assert (other.password, other.source) == ("", "none")
    anon = resolve_credentials(FtpConnection(host="x.example", netrc_file=netrc, use_keyring=False))
    assert (anon.user, anon.password, anon.anonymous) == ("anonymous", "ferryman@", True)


def test_missing_password_sources_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FM_MISSING", raising=False)
    with pytest.raises(ConfigError, match=r"FM_MISSING .* is not set"):
        resolve_credentials(FtpConnection(host="h", user="u", password_env="FM_MISSING"))
    with pytest.raises(ConfigError, match="cannot read password_file"):
        resolve_credentials(FtpConnection(host="h", user="u", password_file=tmp_path / "none"))


def test_connections_file_resolves_names_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    file = tmp_path / "connections.yaml"
    file.write_text(
        "partner:\n"
        "  url: ftpes://orders@ftp.partner.example/\n"
        "  password_env: PARTNER_PW\n"
        "  ca_file: certs/partner.pem\n"
        "  timeout: 30\n"
        "anon:\n"
        "  host: mirror.example\n"
    )
    known = load_connections(file)
    assert known["partner"].ca_file == (tmp_path / "certs/partner.pem").resolve()
    assert known["partner"].user == "orders" and known["partner"].timeout == 30
    target = resolve_target("partner:/outbound/*.csv", file, retries=1)
    assert target.path == "/outbound/*.csv" and target.connection.retries == 1
    assert resolve_target("anon", file).connection.host == "mirror.example"
    with pytest.raises(ConfigError, match=r"no connection named 'nope'") as info:
        resolve_target("nope:/x", file)
    assert "anon, partner" in str(info.value)


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("a:\n  host: h\n  tiemout: 3\n", ":3:3:", "tiemout: unknown setting"),
        ("a:\n  host: h\n  port: many\n", ":3:3:", "port: Input should be a valid integer"),
        ("a:\n  host: h\na:\n  host: g\n", ":3:1:", "duplicate key"),
        ("a:\n  host: [h\n", ":3:1:", "expected ',' or ']'"),
    ],
)
def test_connections_file_errors_have_line_and_column(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_connections(file)
    assert f"{file}{where}" in str(info.value)
    assert words in str(info.value)


def test_bad_override_of_a_named_connection_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("plain:\n  host: h\n")
    with pytest.raises(ConfigError, match="ca_file only apply to TLS"):
        resolve_target("plain:/x", file, ca_file=tmp_path / "ca.pem")


def test_sftp_urls_build_sftp_connections_with_ssh_defaults() -> None:
    target = parse_url("sftp://etl:p%40ss@sftp.bank.example/incoming/a%20b.csv")
    conn = target.connection
    assert isinstance(conn, SftpConnection)
    assert (conn.protocol, conn.host, conn.port, conn.user) == (
        "sftp",
        "sftp.bank.example",
        22,
        "etl",
    )
    assert conn.password is not None and conn.password.get_secret_value() == "p@ss"
    assert target.path == "/incoming/a b.csv"
    assert conn.describe() == "sftp://etl@sftp.bank.example:22"
    assert not conn.insecure and not conn.accept_new_host_key and conn.known_hosts is None
    assert parse_url("sftp://h:2222/").connection.port == 2222
    assert "p@ss" not in repr(conn)


@pytest.mark.parametrize(
    "given",
    [
        "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
        "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
    ],
)
def test_ssh_fingerprints_are_normalized_as_openssh_prints_them(given: str) -> None:
    conn = parse_url("sftp://h/", fingerprint=given).connection
    assert conn.fingerprint == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"fingerprint": "AB:CD:EF"}, "not an SSH host key fingerprint"),
        ({"fingerprint": "SHA256:short"}, "not an SSH host key fingerprint"),
        ({"private_key_passphrase_env": "X"}, "passphrase needs private_key"),
        ({"tls": "explicit"}, "tls: unknown setting"),
        ({"passive": False}, "passive: unknown setting"),
        ({"password": "a", "password_env": "B"}, "one password source"),
    ],
)
def test_bad_sftp_settings_say_what_is_wrong(overrides: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url("sftp://h/", **overrides)
    assert words in str(info.value)


def test_connections_file_holds_sftp_entries_with_paths_relative_to_it(tmp_path: Path) -> None:
    file = tmp_path / "connections.yaml"
    file.write_text(
        "bank:\n"
        "  url: sftp://etl@sftp.bank.example:2022\n"
        "  private_key: keys/id_ed25519\n"
        "  known_hosts: keys/known_hosts\n"
        "broken:\n"
        "  protocol: scp\n"
        "  host: h\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_connections(file)
    assert f"{file}:6:3" in str(info.value) and "'ftp' or 'sftp'" in str(info.value)
    file.write_text(file.read_text(encoding="utf-8").split("broken:")[0], encoding="utf-8")
    bank = load_connections(file)["bank"]
    assert isinstance(bank, SftpConnection) and bank.port == 2022
    assert bank.private_key == tmp_path / "keys/id_ed25519"
    assert bank.known_hosts == tmp_path / "keys/known_hosts"
