"""ASCII mode (TYPE A): line-end conversion at chunk boundaries, and real transfers.

pyftpdlib converts for real in TYPE A: it sends its line ends as CRLF and stores CRLF it
receives as LF. So a local CRLF file uploaded in ASCII mode arrives with LF line ends, and a
server file with mixed line ends arrives with LF only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.ftp.ascii import crlf_to_lf, lf_to_crlf
from ferryman.backends.local import LocalBackend
from ferryman.transfer import TransferOptions, copy_file, transfer
from tests.conftest import PASSWORD, Served, ServerFactory
from tests.test_cli import restore_logging, run  # noqa: F401 - restore_logging: a fixture

TEXT = b"id,name\nline one\nline two\n"


def _convert(chunks: list[bytes], convert: object) -> bytes:
    out, state = b"", False
    for chunk in chunks:
        piece, state = convert(chunk, state)  # type: ignore[operator]
        out += piece
    if convert is crlf_to_lf and state:
        out += b"\r"
    return out


@pytest.mark.parametrize("cut", range(1, 12))
def test_crlf_becomes_lf_wherever_the_chunks_split(cut: int) -> None:
    wire = b"a\r\nb\r\n\r\nc\rd\r\n"
    assert _convert([wire[:cut], wire[cut:]], crlf_to_lf) == b"a\nb\n\nc\rd\n"


@pytest.mark.parametrize("cut", range(1, 10))
def test_lf_becomes_crlf_once_wherever_the_chunks_split(cut: int) -> None:
    text = b"a\nb\r\n\nc\r"
    assert _convert([text[:cut], text[cut:]], lf_to_crlf) == b"a\r\nb\r\n\r\nc\r"


def test_a_lone_cr_at_the_very_end_is_kept() -> None:
    assert _convert([b"x\r"], crlf_to_lf) == b"x\r"


@pytest.fixture
def served(ftp_server: ServerFactory) -> Served:
    served = ftp_server("explicit")
    (served.root / "out").mkdir()
    (served.root / "out/unix.txt").write_bytes(TEXT)
    return served


@pytest.mark.usefixtures("restore_logging")
def test_ascii_upload_sends_type_a_and_the_server_stores_its_own_line_ends(
    served: Served, tmp_path: Path
) -> None:
    local = tmp_path / "dos.txt"
    local.write_bytes(b"one\r\ntwo\r\n")
    result = run(served, "put", local, served.url("/out/"), "--ascii", "-v")
    assert result.exit_code == 0, result.output
    assert "> TYPE A" in result.stderr
    assert (served.root / "out/dos.txt").read_bytes() == b"one\ntwo\n"  # pyftpdlib: CRLF -> LF
    binary = run(served, "put", local, served.url("/out/bin.txt"))
    assert binary.exit_code == 0, binary.output
    assert (served.root / "out/bin.txt").read_bytes() == b"one\r\ntwo\r\n"  # untouched


def test_ascii_download_converts_and_binary_after_it_is_exact(
    served: Served, tmp_path: Path
) -> None:
    (served.root / "out/cr.txt").write_bytes(b"a\r\nb\n")  # pyftpdlib sends a\r\nb\r\n
    conn = served.connection()
    with FtpBackend(conn) as ftp, LocalBackend() as disk:
        text = copy_file(ftp, "/out/cr.txt", disk, str(tmp_path / "t.txt"), ascii=True)
        assert text.verified == "ascii"
        assert (tmp_path / "t.txt").read_bytes() == b"a\nb\n"  # both line ends now LF
        raw = copy_file(ftp, "/out/unix.txt", disk, str(tmp_path / "u.txt"))  # back to TYPE I
        assert raw.verified == "size" and (tmp_path / "u.txt").read_bytes() == TEXT


def test_ascii_mode_through_the_engine_reports_ascii_verification(
    served: Served, tmp_path: Path
) -> None:
    conn = served.connection(password=SecretStr(PASSWORD))
    with FtpBackend(conn) as ftp, LocalBackend() as disk:
        summary = transfer(
            ftp, "/out/*.txt", disk, str(tmp_path / "in") + "/", TransferOptions(ascii=True)
        )
    [outcome] = summary.files
    assert outcome.status == "copied" and outcome.verified == "ascii"
    assert (tmp_path / "in/unix.txt").read_bytes() == TEXT
    assert json.loads(json.dumps(summary.to_dict()))["files"][0]["verified"] == "ascii"
