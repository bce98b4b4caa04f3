"""compress/extract (gzip, zip) as job steps and as functions: round trips, files made by the
system's own tools read back, hostile zip member names refusing the whole archive (nothing
written outside the destination, or at all), damaged archives publishing nothing."""

from __future__ import annotations

import gzip
import subprocess
import zipfile
from pathlib import Path

import pytest

from ferryman.archives import ArchiveError, extract_file, gzip_file
from ferryman.errors import ExitCode, ProtocolError, TargetExistsError
from ferryman.jobs.run import RunReport, run_job
from ferryman.transfer import PARTIAL_SUFFIX

DATA = b"id,name\n1,a\n2,b\n" * 1000


def run(tmp_path: Path, steps: str) -> RunReport:
    job = tmp_path / "job.yaml"
    job.write_text(f"name: archive-test\nstate: state.db\nsteps:\n{steps}")
    return run_job(job)


def files(tmp_path: Path) -> list[Path]:
    (tmp_path / "out").mkdir()
    made = []
    for name in ("a.csv", "b.csv"):
        path = tmp_path / "out" / name
        path.write_bytes(DATA + name.encode())
        made.append(path)
    return made


def test_gzip_round_trip_as_steps(tmp_path: Path) -> None:
    a, b = files(tmp_path)
    report = run(
        tmp_path,
        "  - name: pack\n    compress: {files: out/*.csv, to: packed/, level: 9}\n"
        "  - name: unpack\n    extract: {files: '{{ steps.pack.files }}', to: unpacked/}\n",
    )
    assert report.exit_code == 0, [str(s.error) for s in report.steps]
    packed = tmp_path / "packed" / "a.csv.gz"
    assert gzip.decompress(packed.read_bytes()) == a.read_bytes()  # any gzip reader reads it
    assert (tmp_path / "unpacked" / "b.csv").read_bytes() == b.read_bytes()
    assert report.steps[1].result["files"] == [
        str(tmp_path / "unpacked" / "a.csv"),
        str(tmp_path / "unpacked" / "b.csv"),
    ]


def test_zip_round_trip_and_system_unzip_reads_it(tmp_path: Path) -> None:
    a, b = files(tmp_path)
    report = run(
        tmp_path,
        "  - name: pack\n    compress: {files: out/*.csv, format: zip, archive: batch.zip}\n"
        "  - name: unpack\n    extract: {files: batch.zip, to: unpacked/}\n",
    )
    assert report.exit_code == 0, [str(s.error) for s in report.steps]
    with zipfile.ZipFile(tmp_path / "batch.zip") as zf:
        assert zf.testzip() is None
        assert zf.read("a.csv") == a.read_bytes()
    assert (tmp_path / "unpacked" / "b.csv").read_bytes() == b.read_bytes()


def test_system_gzip_is_extracted(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_bytes(DATA)
    subprocess.run(["gzip", "-k", str(source)], check=True, timeout=30)
    made = extract_file(tmp_path / "x.csv.gz", tmp_path / "x")
    assert made == [tmp_path / "x" / "x.csv"] and made[0].read_bytes() == DATA


def test_zip_format_needs_an_archive(tmp_path: Path) -> None:
    from ferryman.errors import ConfigError

    with pytest.raises(ConfigError, match=r"give archive: FILE\.zip"):
        run(tmp_path, "  - name: pack\n    compress: {files: a, format: zip}\n")


@pytest.mark.parametrize(
    "hostile",
    ["../escape.txt", "/etc/evil.txt", "dir/../../escape.txt", "C:/evil.txt", "a\\..\\b.txt"],
)
def test_hostile_member_refuses_the_whole_archive(tmp_path: Path, hostile: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good.txt", b"fine")
        zf.writestr(hostile, b"evil")
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(ProtocolError, match="refusing member"):
        extract_file(archive, dest)
    assert list(dest.iterdir()) == []  # not even the good member
    assert not (tmp_path / "deep" / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_hostile_member_fails_the_step(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../../evil.txt", b"evil")
    report = run(tmp_path, "  - name: unpack\n    extract: {files: evil.zip, to: dest/}\n")
    assert report.exit_code == ExitCode.TRANSFER
    assert "refusing member" in str(report.steps[0].error)


def test_member_through_a_symlink_out_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(tmp_path)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("link/escape.txt", b"evil")
    with pytest.raises(ProtocolError):
        extract_file(archive, dest)
    assert not (tmp_path / "escape.txt").exists()


def test_damaged_archives_publish_nothing(tmp_path: Path) -> None:
    good = tmp_path / "x.csv"
    good.write_bytes(DATA)
    gzip_file(good, tmp_path / "x.csv.gz")
    raw = bytearray((tmp_path / "x.csv.gz").read_bytes())
    (tmp_path / "cut.csv.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ArchiveError, match="damaged"):
        extract_file(tmp_path / "cut.csv.gz", tmp_path / "out")
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("b.csv", DATA)
    raw = bytearray(archive.read_bytes())
    raw[raw.index(DATA[:20]) + 5] ^= 0x01  # stored data: the CRC check fails
    archive.write_bytes(raw)
    with pytest.raises(ArchiveError, match="damaged"):
        extract_file(archive, tmp_path / "out")
    (tmp_path / "not.zip").write_bytes(b"plain text")
    with pytest.raises(ArchiveError, match="not a zip"):
        extract_file(tmp_path / "not.zip", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(PARTIAL_SUFFIX)]


def test_existing_file_is_not_replaced_unless_asked(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_bytes(DATA)
    gzip_file(source, tmp_path / "x.csv.gz")
    with pytest.raises(TargetExistsError):
        gzip_file(source, tmp_path / "x.csv.gz")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.csv").write_text("kept")
    with pytest.raises(TargetExistsError):
        extract_file(tmp_path / "x.csv.gz", tmp_path / "out")
    assert (tmp_path / "out" / "x.csv").read_text() == "kept"
    extract_file(tmp_path / "x.csv.gz", tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "x.csv").read_bytes() == DATA
