"""``ferryman demo``: an embedded FTPS server on loopback, and a sample transfer against it.

It shows the secure defaults at work: explicit TLS with a verified certificate (the demo's
own CA), TLS session reuse on every data connection, temporary names and verified sizes, and
the protocol transcript written to a log file with the password masked.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from .backends.ftp import FtpBackend
from .backends.local import LocalBackend
from .connection import FtpConnection, TLSMode
from .embedded import EmbeddedServer
from .transfer.copy import CopyResult, copy_file

__all__ = ["DemoReport", "run_demo"]

SAMPLE_DAYS = ("2026-11-20", "2026-11-21", "2026-11-22")


@dataclass
class DemoReport:
    server: str
    workdir: Path
    listed: list[str] = field(default_factory=list)
    downloaded: list[CopyResult] = field(default_factory=list)
    uploaded: list[CopyResult] = field(default_factory=list)
    rows: int = 0
    sessions_resumed: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "workdir": str(self.workdir),
            "listed": self.listed,
            "downloaded": [r.to_dict() for r in self.downloaded],
            "uploaded": [r.to_dict() for r in self.uploaded],
            "rows": self.rows,
            "tls_sessions_resumed": self.sessions_resumed,
        }


def _write_samples(root: Path) -> None:
    outbound = root / "outbound"
    (root / "inbound").mkdir(parents=True, exist_ok=True)
    outbound.mkdir(parents=True, exist_ok=True)
    for n, day in enumerate(SAMPLE_DAYS):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["order_id", "day", "customer", "amount"])
        for i in range(1, 101):
            writer.writerow([n * 1000 + i, day, f"customer-{i % 17}", f"{(i * 7.31):.2f}"])
        (outbound / f"orders_{day}.csv").write_text(buffer.getvalue(), encoding="utf-8")


def run_demo(workdir: Path) -> DemoReport:
    """Run the sample transfer in ``workdir``; the server lives only for this call."""
    root, inbox = workdir / "server", workdir / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    _write_samples(root)
    password = secrets.token_urlsafe(16)
    with EmbeddedServer(root, tls="explicit", user="demo", password=password) as server:
        assert server.pki is not None
        conn = FtpConnection(
            host=server.host,
            port=server.port,
            user="demo",
            password=SecretStr(password),
            tls=TLSMode.EXPLICIT,
            ca_file=server.pki.ca_cert,
            retries=0,
        )
        report = DemoReport(server=conn.describe(), workdir=workdir)
        with FtpBackend(conn) as remote, LocalBackend() as disk:
            remote.connect()
            entries = [e for e in remote.list("/outbound") if e.is_file]
            report.listed = sorted(e.name for e in entries)
            for entry in sorted(entries, key=lambda e: e.name):
                result = copy_file(
                    remote,
                    f"/outbound/{entry.name}",
                    disk,
                    str(inbox / entry.name),
                    replace=True,
                    source_entry=entry,
                )
                report.downloaded.append(result)
            report.rows = sum(
                sum(1 for _ in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
                for path in sorted(inbox.glob("orders_*.csv"))
            )
            summary = workdir / "report.csv"
            summary.write_text(f"files,rows\n{len(report.downloaded)},{report.rows}\n")
            report.uploaded.append(
                copy_file(disk, str(summary), remote, "/inbound/report.csv", replace=True)
            )
            session = remote.session
            report.sessions_resumed = bool(
                session and session.data_sessions_resumed and all(session.data_sessions_resumed)
            )
    return report
