"""What the steps of one run share: the job, connections, expressions, results, the ledger.

Local paths in a job are relative to the job file's directory; remote ones are
``CONNECTION:PATH`` (a connection of the job) or a URL.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..backends import Backend, backend_for
from ..backends.local import LocalBackend
from ..connection import Connection, login_relative, parse_url
from ..errors import ConfigError
from ..redact import register_secret
from ..retry import RetryPolicy, with_retries
from ..state import PendingSourceAction, Publication
from .expressions import Expressions
from .loader import DatabaseConnection, LoadedJob

__all__ = ["Endpoint", "Ledger", "LedgerRecord", "RunContext", "Trigger"]

_NAMED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_-]*):(?P<path>.*)$", re.S)


@dataclass(frozen=True)
class LedgerRecord:
    """A remote file taken by ``only_new``: path, size and time identify it."""

    connection: str  #: secret-free connection key, e.g. ``ftpes://orders@host:21``
    path: str
    size: int | None
    mtime: datetime | None
    target: str | None = None  #: where the copy landed (a failed load of it un-takes it)


@dataclass(frozen=True)
class Trigger:
    """What started a run; expressions read it as ``trigger`` (``{{ trigger.files }}``).

    ``kind`` is ``manual`` (``ferryman run``), ``schedule``, ``catch_up`` (a time missed while
    ``serve`` was down), ``files`` (a file-arrival trigger) or ``now`` (run now, from serve's
    API). The ``files`` of a file-arrival trigger enter the only-new ledger when the run
    succeeds, like those an ``only_new`` step takes, so they do not trigger again.
    """

    kind: str = "manual"
    time: str = ""  #: when it fired (UTC ISO 8601)
    schedule: str | None = None  #: the cron expression of a schedule
    path: str | None = None  #: the watched glob of a file-arrival trigger
    files: tuple[LedgerRecord, ...] = ()

    def scope(self) -> dict[str, Any]:
        paths = [f.path for f in self.files]
        return {
            "kind": self.kind,
            "files": paths,
            "count": len(paths),
            "time": self.time,
            "schedule": self.schedule,
            "path": self.path,
        }

    def to_dict(self) -> dict[str, Any]:
        files = [
            [f.connection, f.path, f.size, f.mtime.isoformat() if f.mtime else None]
            for f in self.files
        ]
        return {**self.scope(), "files": files}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trigger:
        files = tuple(
            LedgerRecord(str(c), str(p), s, datetime.fromisoformat(m) if m else None)
            for c, p, s, m in data.get("files", [])
        )
        return cls(
            str(data.get("kind", "manual")),
            str(data.get("time", "")),
            data.get("schedule"),
            data.get("path"),
            files,
        )


class Ledger(Protocol):
    """The state file (``ferryman.state.StateStore``) as the runner needs it: the only-new
    ledger and the journal of effects (``ferryman.state.effects``)."""

    def filter_new(
        self, job: str, connection: str, entries: list[tuple[str, int | None, datetime | None]]
    ) -> list[tuple[str, int | None, datetime | None]]: ...

    def commit_taken(
        self,
        job: str,
        taken: Mapping[str, Iterable[tuple[str, int | None, datetime | str | None]]],
        actions: Iterable[PendingSourceAction],
        run_id: int | None,
    ) -> None: ...

    def pending_source_actions(self, job: str) -> list[PendingSourceAction]: ...

    def source_actions_done(self, job: str, actions: Iterable[PendingSourceAction]) -> None: ...

    def intend_publications(
        self, job: str, connection: str, entries: Iterable[tuple[str, int, str]], run_id: int | None
    ) -> None: ...

    def publications(
        self, job: str, connection: str, paths: Sequence[str]
    ) -> dict[str, Publication]: ...


@dataclass(frozen=True)
class Endpoint:
    """One side of a step: a connection (None: the local disk) and a path on it."""

    connection: Connection | None
    path: str

    @property
    def remote(self) -> bool:
        return self.connection is not None

    @property
    def key(self) -> str:
        return self.connection.describe() if self.connection else "local"


@dataclass
class RunContext:
    loaded: LoadedJob
    run_id: int = 0
    dry_run: bool = False
    #: values (secrets among them) are left out of the repr
    variables: dict[str, Any] = field(default_factory=dict, repr=False)
    results: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    items: dict[str, Any] = field(default_factory=dict, repr=False)  #: foreach items by name
    ledger: Ledger | None = None
    #: only-new records taken in this run, committed when the run succeeds
    pending: list[LedgerRecord] = field(default_factory=list)
    #: after: of only-new transfers (endpoint, options, items), done when the run succeeds
    deferred: list[tuple[Endpoint, Any, list[Any]]] = field(default_factory=list)
    #: the step running now (load markers and upload records name it)
    step: str = ""
    trigger: Trigger = field(default_factory=Trigger)
    #: set (by ``serve`` stopping) to start no further step: the run ends interrupted
    stop: threading.Event | None = None
    expressions: Expressions = field(default_factory=Expressions)
    #: the job's OpenPGP key ring (``ferryman.pgp.Keyring``), made when a step first needs it
    keyring: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.loaded.job.name

    def scope(self) -> dict[str, Any]:
        """What expressions see. Every ``env`` value is registered as a secret: masked
        wherever ferryman writes text (:mod:`ferryman.redact`)."""
        allowed = {n: os.environ[n] for n in self.loaded.job.env if n in os.environ}
        for value in allowed.values():
            register_secret(value)
        return {
            **self.variables,
            "vars": dict(self.variables),
            "env": allowed,
            "steps": self.results,
            "job": {"name": self.name, "run_id": self.run_id, "dir": str(self.loaded.base)},
            "trigger": self.trigger.scope(),
            **self.items,
        }

    def render(self, value: Any, where: str) -> Any:
        return self.expressions.render(value, self.scope(), where)

    def local_path(self, path: str) -> Path:
        return self.loaded.base / Path(path).expanduser()

    def endpoint(self, spec: str, *, remote: bool | None = None) -> Endpoint:
        """``NAME:PATH`` of a job connection, a URL, or a local path (``remote`` forces)."""
        if "://" in spec and remote is not False:
            target = parse_url(spec)
            return Endpoint(target.connection, target.path or ".")
        match = _NAMED.match(spec)
        if match and match["name"] in self.loaded.connections and remote is not False:
            # NAME:~/dir (and NAME:/~/dir, as in URLs) is below the login directory, which
            # the backend resolves; NAME:dir is relative to it already
            path = login_relative(match["path"]) or "."
            return Endpoint(self.loaded.connections[match["name"]], path)
        if remote:
            known = ", ".join(sorted(self.loaded.connections)) or "(none)"
            raise ConfigError(
                f"{spec!r} does not name a remote place",
                hint=f"write CONNECTION:PATH with a connection of this job ({known}) or a URL",
            )
        if match and match["name"] in self.loaded.databases:
            raise ConfigError(f"{spec!r} names a database connection where files are expected")
        return Endpoint(None, str(self.local_path(spec)))

    def database(self, name: str) -> DatabaseConnection:
        found = self.loaded.databases.get(name)
        if found is None:
            known = ", ".join(sorted(self.loaded.databases)) or "(none)"
            raise ConfigError(
                f"no database connection named {name!r}",
                hint=f"add it under connections: with url: sqlite:///FILE.db (known: {known})",
            )
        return found

    @contextmanager
    def backend(self, endpoint: Endpoint) -> Iterator[Backend]:
        """A connected backend for ``endpoint`` (connecting is retried), closed afterwards."""
        if endpoint.connection is None:
            yield LocalBackend()
            return
        conn = endpoint.connection
        backend = backend_for(conn)
        try:
            policy = RetryPolicy(retries=conn.retries, delay=conn.retry_delay)
            with_retries(backend.connect, policy, f"connecting to {backend.describe()}")
            yield backend
        finally:
            backend.close()
