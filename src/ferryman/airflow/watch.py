"""One file watch, as the sensor (poke mode) and the trigger (deferrable) run it; no Airflow.

A watch lists a glob (or a directory's files) on a ferryman connection or the local disk
through :func:`ferryman.transfer.arrivals.list_arrivals`, keeps the files its filters accept,
and is satisfied once at least ``min_count`` of them kept their size and time for
``stable_for`` seconds (:class:`ferryman.transfer.arrivals.Stability`, as ``ferryman serve``'s
triggers). Its settings are plain JSON values, so a trigger can carry them through a
triggerer restart.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ..backends import open_backend
from ..backends.base import Backend
from ..backends.local import LocalBackend
from ..connection import Connection
from ..errors import ConfigError, FerrymanError
from ..transfer import Filters, parse_age_or_time
from ..transfer.arrivals import Stability, list_arrivals

__all__ = ["FileWatch", "WatchSpec"]


@dataclass(frozen=True)
class WatchSpec:
    """What to wait for; every field is JSON (``newer_than`` an ISO instant once resolved)."""

    path: str
    newer_than: str | None = None
    min_count: int = 1
    stable_for: float = 0.0
    recursive: bool = False
    include: tuple[str, ...] = field(default_factory=tuple)
    exclude: tuple[str, ...] = field(default_factory=tuple)

    def resolved(self) -> WatchSpec:
        """``newer_than="2h"`` fixed to the instant it means now, so that a restarted trigger
        (or a later poke) still compares with the same instant."""
        if self.newer_than is None:
            return self
        when = parse_age_or_time(self.newer_than).isoformat()
        return WatchSpec(**{**asdict(self), "newer_than": when})

    def filters(self) -> Filters:
        newer = datetime.fromisoformat(self.newer_than) if self.newer_than else None
        return Filters(include=self.include, exclude=self.exclude, newer_than=newer)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["include"], data["exclude"] = list(self.include), list(self.exclude)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WatchSpec:
        data = dict(data)
        data["include"] = tuple(data.get("include") or ())
        data["exclude"] = tuple(data.get("exclude") or ())
        return cls(**data)


class FileWatch:
    """Poll with :meth:`check`; :meth:`close` ends the connection it keeps between polls."""

    def __init__(self, spec: WatchSpec, settings: Connection | None) -> None:
        if spec.min_count < 1:
            raise ConfigError(f"min_count must be at least 1, not {spec.min_count}")
        self.spec = spec.resolved()
        self.settings = settings
        self.stability = Stability(spec.stable_for)
        self._filters = self.spec.filters()
        self._backend: Backend | None = None

    def _open(self) -> Backend:
        if self._backend is None:
            self._backend = LocalBackend() if self.settings is None else open_backend(self.settings)
        return self._backend

    def check(self) -> tuple[list[dict[str, Any]] | None, float]:
        """List once. The stable files (path, size, mtime), when there are enough; else
        None and the seconds until a file still settling could be stable (0: none is)."""
        backend = self._open()
        try:
            listed = list_arrivals(
                backend, self.spec.path, filters=self._filters, recursive=self.spec.recursive
            )
        except FerrymanError:
            self.close()  # the next poll connects afresh
            raise
        stable, settling = self.stability.update(listed, time.monotonic())
        if len(stable) < self.spec.min_count:
            return None, settling
        files = []
        for path in sorted(stable):
            size, mtime = listed[path]
            files.append({"path": path, "size": size, "mtime": mtime and mtime.isoformat()})
        return files, 0.0

    def close(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except FerrymanError:
                pass  # closing a dropped connection: nothing left to end
