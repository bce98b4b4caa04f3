"""The stdlib-ftplib peer: what a careful script on ``ftplib`` alone does.

``ftplib.FTP_TLS`` does not resume the control connection's TLS session on data connections
(CPython issue 63699), which servers with ``require_ssl_reuse`` refuse; the subclass here
does, as every such script has to. Transfers use a 256 KiB block; many files go one after
the other on one connection (NLST, then RETR/STOR each).

    python benchmarks/ftplib_client.py --port P [--tls --ca-file CA] get REMOTE LOCAL_FILE
    ... put LOCAL_FILE REMOTE | get-dir REMOTE_DIR LOCAL_DIR | put-dir LOCAL_DIR REMOTE_DIR

The password is read from the environment variable named by ``--password-env``.
"""

from __future__ import annotations

import argparse
import ftplib
import os
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["BLOCK_SIZE", "ReusingFtpTls", "connect", "main"]

BLOCK_SIZE = 256 * 1024


class ReusingFtpTls(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session."""

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            session = self.sock.session  # type: ignore[union-attr]
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


def connect(args: argparse.Namespace) -> ftplib.FTP:
    password = os.environ[args.password_env]
    ftp: ftplib.FTP
    if args.tls:
        context = ssl.create_default_context(cafile=args.ca_file)
        ftp = ReusingFtpTls(context=context, timeout=60)
    else:
        ftp = ftplib.FTP(timeout=60)
    ftp.connect(args.host, args.port)
    ftp.login(args.user, password)
    if isinstance(ftp, ftplib.FTP_TLS):
        ftp.prot_p()
    return ftp


def get_file(ftp: ftplib.FTP, remote: str, local: Path) -> None:
    with local.open("wb") as out:
        ftp.retrbinary(f"RETR {remote}", out.write, BLOCK_SIZE)


def put_file(ftp: ftplib.FTP, local: Path, remote: str) -> None:
    with local.open("rb") as source:
        ftp.storbinary(f"STOR {remote}", source, BLOCK_SIZE)


def get_dir(ftp: ftplib.FTP, remote_dir: str, local_dir: Path) -> None:
    ftp.cwd(remote_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    for name in ftp.nlst():
        get_file(ftp, name, local_dir / Path(name).name)


def put_dir(ftp: ftplib.FTP, local_dir: Path, remote_dir: str) -> None:
    ftp.cwd(remote_dir)
    for path in sorted(local_dir.iterdir()):
        if path.is_file():
            put_file(ftp, path, path.name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="ferrytest")
    parser.add_argument("--password-env", default="FERRYMAN_BENCH_PASSWORD")
    parser.add_argument("--tls", action="store_true", help="explicit FTPS (AUTH TLS, PROT P)")
    parser.add_argument("--ca-file")
    parser.add_argument("operation", choices=["get", "put", "get-dir", "put-dir"])
    parser.add_argument("source")
    parser.add_argument("target")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    actions: dict[str, Callable[[ftplib.FTP], None]] = {
        "get": lambda ftp: get_file(ftp, args.source, Path(args.target)),
        "put": lambda ftp: put_file(ftp, Path(args.source), args.target),
        "get-dir": lambda ftp: get_dir(ftp, args.source, Path(args.target)),
        "put-dir": lambda ftp: put_dir(ftp, Path(args.source), args.target),
    }
    try:
        ftp = connect(args)
        actions[args.operation](ftp)
        ftp.quit()
    except ftplib.all_errors as exc:
        print(f"ftplib_client: {args.operation}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
