"""``ferryman mv`` onto an existing file over a real ProFTPD (``AllowOverwrite off``), whose
RNTO refuses to replace: refused without ``--overwrite``, replaced with it (issue 12)."""

from __future__ import annotations

from click.testing import CliRunner

from ferryman.cli import cli
from ferryman.errors import ExitCode
from tests.servers.proftpd import Proftpd, proftpd_plain, proftpd_root, proftpd_workdir
from tests.servers.vsftpd import Workdir

__all__ = ["proftpd_plain", "proftpd_root", "proftpd_workdir"]


def test_mv_onto_a_file_over_proftpd(proftpd_plain: Proftpd, proftpd_workdir: Workdir) -> None:
    work = proftpd_workdir
    work.write("a.csv", b"new")
    work.write("b.csv", b"old")
    base = f"ftp://{proftpd_plain.user}@127.0.0.1:{proftpd_plain.port}{work.path}"
    opts = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "10"]
    env = {"FM_PW": proftpd_plain.password}
    runner = CliRunner()
    refused = runner.invoke(cli, ["mv", f"{base}/a.csv", "b.csv", *opts], env=env)
    assert refused.exit_code == ExitCode.TRANSFER, refused.output
    assert "b.csv exists" in refused.stderr and "--overwrite" in refused.stderr
    assert (work.local / "b.csv").read_text() == "old"
    done = runner.invoke(cli, ["mv", f"{base}/a.csv", "b.csv", "--overwrite", *opts], env=env)
    assert done.exit_code == 0, done.output
    assert (work.local / "b.csv").read_text() == "new" and not (work.local / "a.csv").exists()
