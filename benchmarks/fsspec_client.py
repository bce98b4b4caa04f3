"""The fsspec client of the fs-* workloads: one filesystem implementation, one operation.

What a program using fsspec does (pandas, pyarrow, dask, a script): make a filesystem from
storage options, then either ``fs.get(remote_dir + "/", local_dir, recursive=True)`` (every
file of a directory to the local disk) or ``fs.open(path, "rb")`` read in 4 MiB pieces to the
end. The implementations (``--impl``):

- ``ferryman``: ferryman's filesystems (``ferryman+sftp``, ``ferryman+ftp``, ``ftpes``),
  host key and certificate verified;
- ``sshfs``: ``sshfs.SSHFileSystem`` (asyncssh), host key checked against ``--known-hosts``;
- ``paramiko``: fsspec's own ``sftp`` (``SFTPFileSystem``, paramiko), which cannot be given a
  known-hosts file: it accepts any host key (its default ``host_key_policy="auto_add"``);
- ``fsspec-ftp``: fsspec's own ``ftp`` (``FTPFileSystem``, stdlib ``ftplib``), ``tls=True``
  for FTPS; it takes no CA file and ``ftplib.FTP_TLS`` then verifies no certificate.

``--fs-option K=V`` adds a storage option (``parallel=8``, ``max_sessions=18``,
``block_size=4194304``), ``--call-option K=V`` a keyword of ``fs.get`` / ``fs.open``
(``batch_size=8``); values are read as int, then true/false, else kept as text.
``--glob`` makes ``get-dir`` ``fs.get(dir + "/*", local + "/")`` (``put-dir``:
``fs.put(local + "/*", dir + "/")``); ``get-file``/``put-file`` are ``fs.get``/``fs.put`` of
one file (``REMOTE LOCAL``, both full paths, as for the other operations);
``--gather`` (async filesystems such as sshfs) makes ``get-dir``/``put-dir`` one ``_ls`` (or a
local listing), then every file in flight at once: ``asyncio.gather`` of ``fs._get_file`` /
``fs._put_file``, run through ``fsspec.asyn.sync(fs.loop, ...)`` (``fs.get(dir/*)`` goes one
file at a time whatever its ``batch_size``); ``--prefetch`` calls paramiko's
``SFTPFile.prefetch()`` after opening (its documented way to pipeline reads). The password
comes from the environment variable named by ``--password-env``, never from argv; SFTP logs
in with ``--key-file``.

    python benchmarks/fsspec_client.py --impl ferryman --protocol ftps --port P \\
        --ca-file CA get-dir /data/small LOCAL_DIR
    python benchmarks/fsspec_client.py --impl sshfs --protocol sftp --port P \\
        --key-file KEY --known-hosts KH read /abs/data/big.bin

``get-dir`` prints the number of files in the local directory afterwards; ``read`` prints
one JSON line: bytes read and the SHA-256 of the first and last MiB (the harness compares
them with the source; hashing the whole GiB would add a second of CPU to every tool).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from typing import Any

__all__ = ["READ_SIZE", "SAMPLE", "main"]

READ_SIZE = 4 * 2**20  #: bytes asked for per f.read() of the read operation
SAMPLE = 2**20  #: bytes at each end of the file whose hash is printed


def _value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _pairs(items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"fsspec_client: {item!r}: an option is KEY=VALUE")
        options[key] = _value(value)
    return options


def _password(args: argparse.Namespace) -> str:
    try:
        return os.environ[args.password_env]
    except KeyError:
        raise SystemExit(
            f"fsspec_client: the environment variable {args.password_env} (the password) is not set"
        ) from None


def make_filesystem(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The filesystem ``args.impl`` makes for ``args.protocol`` (imports only what it needs)."""
    import fsspec  # noqa: PLC0415 (the start-up of each implementation counts, not ours)

    host, port, user = args.host, args.port, args.user
    if args.impl == "ferryman":
        if args.protocol == "sftp":
            return fsspec.filesystem(
                "ferryman+sftp",
                host=host,
                port=port,
                user=user,
                private_key=args.key_file,
                known_hosts=args.known_hosts,
                **options,
            )
        name = "ftpes" if args.protocol.startswith("ftps") else "ferryman+ftp"
        tls = {"ca_file": args.ca_file} if args.protocol.startswith("ftps") else {}
        return fsspec.filesystem(
            name, host=host, port=port, user=user, password_env=args.password_env, **tls, **options
        )
    if args.impl == "sshfs":
        from sshfs import SSHFileSystem  # noqa: PLC0415

        return SSHFileSystem(
            host,
            port=port,
            username=user,
            client_keys=[args.key_file],
            known_hosts=args.known_hosts,
            **options,
        )
    if args.impl == "paramiko":
        # by class, not by name: with sshfs installed, fsspec's "sftp" is sshfs (entry point)
        from fsspec.implementations.sftp import SFTPFileSystem  # noqa: PLC0415

        return SFTPFileSystem(
            host,
            port=port,
            username=user,
            key_filename=args.key_file,
            look_for_keys=False,
            allow_agent=False,
            **options,
        )
    tls = {"tls": True} if args.protocol.startswith("ftps") else {}
    return fsspec.filesystem(
        "ftp", host=host, port=port, username=user, password=_password(args), **tls, **options
    )


def get_dir(fs: Any, remote: str, local: str, call: dict[str, Any], glob: bool) -> int:
    """Every file of ``remote`` into ``local``: ``fs.get(remote + "/", local,
    recursive=True)`` (fsspec's rule: a trailing ``/`` copies the directory's contents), or
    with ``glob`` ``fs.get(remote + "/*", local + "/")`` (the files of a flat directory, for
    sshfs, whose recursive get fails on the directory itself). Returns the files now in
    ``local``."""
    if glob:
        fs.get(remote.rstrip("/") + "/*", local.rstrip("/") + "/", **call)
    else:
        fs.get(remote.rstrip("/") + "/", local, recursive=True, **call)
    return sum(len(files) for _root, _dirs, files in os.walk(local))


def put_dir(fs: Any, local: str, remote: str, call: dict[str, Any], glob: bool) -> int:
    """Every file of ``local`` into the existing ``remote``: ``fs.put(local + "/", remote,
    recursive=True)``, or with ``glob`` ``fs.put(local + "/*", remote + "/")``. Returns the
    number of files put (as listed in ``local``)."""
    if glob:
        fs.put(local.rstrip("/") + "/*", remote.rstrip("/") + "/", **call)
    else:
        fs.put(local.rstrip("/") + "/", remote, recursive=True, **call)
    return sum(len(files) for _root, _dirs, files in os.walk(local))


async def _gather_get(fs: Any, remote: str, local: str) -> None:
    names = await fs._ls(remote.rstrip("/"), detail=False)
    os.makedirs(local, exist_ok=True)
    await asyncio.gather(
        *(fs._get_file(name, os.path.join(local, name.rsplit("/", 1)[-1])) for name in names)
    )


async def _gather_put(fs: Any, local: str, remote: str) -> None:
    with os.scandir(local) as entries:
        names = [entry.name for entry in entries if entry.is_file()]
    base = remote.rstrip("/")
    await asyncio.gather(
        *(fs._put_file(os.path.join(local, name), f"{base}/{name}") for name in names)
    )


def gather_dir(fs: Any, operation: str, remote: str, local: str) -> int:
    """``get-dir``/``put-dir`` with every file in flight at once (an async filesystem's own
    coroutines, ``asyncio.gather``); returns the files in ``local``."""
    from fsspec.asyn import sync  # noqa: PLC0415

    if operation == "get-dir":
        sync(fs.loop, _gather_get, fs, remote, local)
    else:
        sync(fs.loop, _gather_put, fs, local, remote)
    return sum(len(files) for _root, _dirs, files in os.walk(local))


def read(fs: Any, remote: str, call: dict[str, Any], prefetch: bool) -> dict[str, Any]:
    total = 0
    head = bytearray()
    previous = last = b""
    with fs.open(remote, "rb", **call) as f:
        if prefetch:
            f.prefetch()
        while chunk := f.read(READ_SIZE):
            total += len(chunk)
            if len(head) < SAMPLE:
                head += chunk[: SAMPLE - len(head)]
            previous, last = last, chunk
    tail = (previous + last)[-SAMPLE:]
    return {
        "bytes": total,
        "head_sha256": hashlib.sha256(head).hexdigest(),
        "tail_sha256": hashlib.sha256(tail).hexdigest(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", choices=["ferryman", "sshfs", "paramiko", "fsspec-ftp"])
    parser.add_argument("--protocol", choices=["ftp", "ftps", "ftps-noreuse", "sftp"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--user", default="ferrytest")
    parser.add_argument("--password-env", default="FERRYMAN_BENCH_PASSWORD")
    parser.add_argument("--ca-file")
    parser.add_argument("--key-file")
    parser.add_argument("--known-hosts")
    parser.add_argument("--fs-option", action="append", default=[], metavar="K=V")
    parser.add_argument("--call-option", action="append", default=[], metavar="K=V")
    parser.add_argument("--prefetch", action="store_true", help="paramiko: f.prefetch()")
    parser.add_argument("--glob", action="store_true", help="get-dir as fs.get(dir/*, local/)")
    parser.add_argument(
        "--gather", action="store_true", help="get-dir/put-dir: every file in flight (async fs)"
    )
    parser.add_argument(
        "--warm-up", action="store_true", help="import every implementation, then exit"
    )
    parser.add_argument(
        "operation", nargs="?", choices=["get-dir", "put-dir", "get-file", "put-file", "read"]
    )
    parser.add_argument("remote", nargs="?")
    parser.add_argument("local", nargs="?")
    return parser


def _warm_up() -> None:
    """Import what every implementation imports (fills the byte-code cache)."""
    import fsspec  # noqa: PLC0415

    fsspec.get_filesystem_class("ftpes")
    fsspec.get_filesystem_class("ferryman+sftp")
    fsspec.get_filesystem_class("ftp")
    for module in ("sshfs", "paramiko", "fsspec.implementations.sftp"):
        try:
            __import__(module)
        except ImportError:
            pass  # that variant reports itself unavailable


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.warm_up:
        _warm_up()
        return 0
    if not (args.impl and args.protocol and args.port and args.operation and args.remote):
        raise SystemExit("fsspec_client: --impl, --protocol, --port, an operation and a path")
    if args.operation != "read" and not args.local:
        raise SystemExit(f"fsspec_client: {args.operation} needs a local path")
    call = _pairs(args.call_option)
    try:
        fs = make_filesystem(args, _pairs(args.fs_option))
        if args.gather and args.operation in ("get-dir", "put-dir"):
            print(gather_dir(fs, args.operation, args.remote, args.local))
        elif args.operation == "get-dir":
            print(get_dir(fs, args.remote, args.local, call, args.glob))
        elif args.operation == "put-dir":
            print(put_dir(fs, args.local, args.remote, call, args.glob))
        elif args.operation == "get-file":
            fs.get(args.remote, args.local, **call)
        elif args.operation == "put-file":
            fs.put(args.local, args.remote, **call)
        else:
            print(json.dumps(read(fs, args.remote, call, args.prefetch)))
    except Exception as exc:  # a peer's failure is reported, whatever its type
        text = " ".join(str(exc).split()) or "(no message)"
        print(
            f"fsspec_client: {args.impl} {args.protocol} {args.operation}: "
            f"{type(exc).__module__}.{type(exc).__qualname__}: {text}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
