"""``FerrymanHook``: the SFTP/FTP hook operations Airflow users know, on ferryman's backends.

One hook class per connection type (Airflow ties a type to one hook class): they differ only
in ``conn_type`` and ``hook_name``; any of them reads any ferryman, ``ftp`` or ``sftp``
connection (:mod:`ferryman.airflow.connection`). The connection form's fields are declared in
:func:`ferryman.airflow.get_provider_info` (Airflow 3.2+ reads them from there).
"""

from __future__ import annotations

import posixpath
from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from ...backends import open_backend
from ...backends.base import Backend, Entry
from ...backends.local import LocalBackend
from ...connection import Connection, login_relative
from ...errors import FerrymanError, NotFoundError
from ...retry import RetryPolicy
from ...transfer import IfExists, Summary, TransferOptions, transfer
from ...transfer.engine import ensure_directory
from ..connection import ferryman_connection

__all__ = [
    "FerrymanFtpHook",
    "FerrymanFtpesHook",
    "FerrymanFtpsHook",
    "FerrymanHook",
    "FerrymanSftpHook",
]


def _remote(backend: Backend, path: str) -> str:
    """``/~/x`` (as in URLs) or ``~/x``: below the login directory; other paths unchanged."""
    return backend.login_path(login_relative(path))


def _entry_dict(entry: Entry) -> dict[str, Any]:
    data = entry.to_dict()
    if entry.mtime is not None:
        data["modify"] = entry.mtime.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    return data


class FerrymanHook(BaseHook):
    """Reach an FTP, FTPS or SFTP server through ferryman.

    ``with FerrymanHook("partner") as hook:`` keeps one connection for several operations;
    without ``with`` each call connects (and :meth:`close_conn` ends it)."""

    conn_name_attr = "ferryman_conn_id"
    default_conn_name = "ferryman_default"
    conn_type = "ferryman_ftpes"
    hook_name = "ferryman FTPS (explicit TLS)"

    def __init__(self, ferryman_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ferryman_conn_id = ferryman_conn_id
        self._backend: Backend | None = None

    # --- the connection ------------------------------------------------------------------

    def get_settings(self) -> Connection:
        """The validated ferryman connection for the Airflow connection (secrets from
        Airflow's connections and secrets backends; the password is masked in ferryman's
        output from here on)."""
        conn = self.get_connection(self.ferryman_conn_id)
        return ferryman_connection(conn)

    def get_conn(self) -> Backend:
        """The connected backend (ferryman's list/stat/open/rename interface)."""
        if self._backend is None:
            self._backend = open_backend(self.get_settings())
        return self._backend

    def close_conn(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            backend.close()

    def __enter__(self) -> FerrymanHook:
        self.get_conn()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close_conn()

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: ferryman's diagnosis (``ferryman test``), one line per
        check; the first failure's message and hint when one fails."""
        from ...cli.diagnose import diagnose  # noqa: PLC0415 - the diagnosis loads click

        try:
            settings = self.get_settings()
            if settings.protocol == "sftp":
                from ...cli.diagnose_sftp import diagnose_sftp  # noqa: PLC0415 - asyncssh

                checks = diagnose_sftp(settings)
            else:
                checks = diagnose(settings)
        except FerrymanError as err:
            return False, str(err)
        lines = [f"{'ok' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in checks]
        failed = next((c for c in checks if not c.ok), None)
        if failed is not None and failed.hint:
            lines.append(f"hint: {failed.hint}")
        return failed is None, "\n".join(lines)

    def diagnose(self) -> list[dict[str, Any]]:
        """The checks of :meth:`test_connection` as data."""
        from ...cli.diagnose import diagnose  # noqa: PLC0415

        settings = self.get_settings()
        if settings.protocol == "sftp":
            from ...cli.diagnose_sftp import diagnose_sftp  # noqa: PLC0415

            return [asdict(c) for c in diagnose_sftp(settings)]
        return [asdict(c) for c in diagnose(settings)]

    # --- what SFTPHook and FTPHook offer ---------------------------------------------------

    def _call(self, action: Any) -> Any:
        """Run ``action(backend)`` on the open connection, or on one made for this call."""
        if self._backend is not None:
            return action(self._backend)
        with open_backend(self.get_settings()) as backend:
            return action(backend)

    def describe_directory(self, path: str) -> dict[str, dict[str, Any]]:
        """name -> size, type, modify (YYYYMMDDHHMMSS, UTC), permissions of each entry."""
        entries: list[Entry] = self._call(lambda b: b.list(_remote(b, path)))
        return {e.name: _entry_dict(e) for e in entries}

    def list_directory(self, path: str) -> list[str]:
        """The names in ``path``, sorted."""
        return sorted(self.describe_directory(path))

    def stat(self, path: str) -> dict[str, Any]:
        entry: Entry = self._call(lambda b: b.stat(_remote(b, path)))
        return _entry_dict(entry)

    def path_exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except NotFoundError:
            return False
        return True

    exists = path_exists

    def isdir(self, path: str) -> bool:
        try:
            return bool(self.stat(path)["type"] == "dir")
        except NotFoundError:
            return False

    def isfile(self, path: str) -> bool:
        try:
            return bool(self.stat(path)["type"] == "file")
        except NotFoundError:
            return False

    def get_mod_time(self, path: str) -> str:
        """Modification time as ``YYYYMMDDHHMMSS`` (UTC), as SFTPHook returns it."""
        modify = self.stat(path).get("modify")
        if modify is None:
            raise FerrymanError(f"the server gives no modification time for {path}")
        return str(modify)

    def get_size(self, path: str) -> int | None:
        size = self.stat(path).get("size")
        return size if isinstance(size, int) else None

    def create_directory(self, path: str) -> None:
        """Make ``path`` and its missing parents (no error when it exists)."""
        self._call(lambda b: ensure_directory(b, _remote(b, path)))

    def delete_file(self, path: str) -> None:
        self._call(lambda b: b.remove(_remote(b, path)))

    def delete_directory(self, path: str, include_files: bool = False) -> None:
        """Remove a directory; with ``include_files`` everything below it first."""

        def remove(backend: Backend, directory: str) -> None:
            if include_files:
                for entry in backend.list(directory):
                    child = posixpath.join(directory, entry.name)
                    if entry.is_dir:
                        remove(backend, child)
                    else:
                        backend.remove(child)
            backend.rmdir(directory)

        self._call(lambda b: remove(b, _remote(b, path)))

    def rename(self, source: str, target: str) -> None:
        self._call(lambda b: b.rename(_remote(b, source), _remote(b, target)))

    def _options(self, settings: Connection | None, if_exists: str | IfExists) -> TransferOptions:
        retry = RetryPolicy(settings.retries, settings.retry_delay) if settings else RetryPolicy()
        return TransferOptions(if_exists=IfExists(if_exists), retry=retry)

    def _checked(self, summary: Summary) -> Summary:
        failed = summary.failures[0] if summary.failures else summary.refusal()
        if failed is not None:
            raise failed
        return summary

    def retrieve_file(
        self, remote_full_path: str, local_full_path: str, *, if_exists: str = "overwrite"
    ) -> Summary:
        """Download one file, through a temporary name, verified (and resumed on retry)."""
        return self._transfer(remote_full_path, local_full_path, download=True, if_exists=if_exists)

    def store_file(
        self, remote_full_path: str, local_full_path: str, *, if_exists: str = "overwrite"
    ) -> Summary:
        """Upload one file; it appears under its name only when complete and verified."""
        return self._transfer(
            local_full_path, remote_full_path, download=False, if_exists=if_exists
        )

    def retrieve_directory(
        self, remote_full_path: str, local_full_path: str, *, if_exists: str = "overwrite"
    ) -> Summary:
        return self._transfer(
            remote_full_path, local_full_path, download=True, if_exists=if_exists, recursive=True
        )

    def store_directory(
        self, remote_full_path: str, local_full_path: str, *, if_exists: str = "overwrite"
    ) -> Summary:
        return self._transfer(
            local_full_path, remote_full_path, download=False, if_exists=if_exists, recursive=True
        )

    def _transfer(
        self, source: str, target: str, *, download: bool, if_exists: str, recursive: bool = False
    ) -> Summary:
        settings = self.get_settings()
        local = LocalBackend()

        def run(remote: Backend) -> Summary:
            src, dst = (remote, local) if download else (local, remote)
            src_path = _remote(remote, source) if download else str(Path(source))
            dst_path = str(Path(target)) if download else _remote(remote, target)
            if recursive:
                dst_path = dst_path.rstrip("/") + "/"
            options = self._options(settings, if_exists)
            return transfer(src, src_path, dst, dst_path, options, recursive=recursive)

        return self._checked(self._call(run))


class FerrymanFtpHook(FerrymanHook):
    conn_type = "ferryman_ftp"
    hook_name = "ferryman FTP (plain)"


class FerrymanFtpesHook(FerrymanHook):
    conn_type = "ferryman_ftpes"
    hook_name = "ferryman FTPS (explicit TLS)"


class FerrymanFtpsHook(FerrymanHook):
    conn_type = "ferryman_ftps"
    hook_name = "ferryman FTPS (implicit TLS)"


class FerrymanSftpHook(FerrymanHook):
    conn_type = "ferryman_sftp"
    hook_name = "ferryman SFTP"
