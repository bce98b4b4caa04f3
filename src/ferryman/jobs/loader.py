"""Reading a job file: YAML with positions, the schema, connections; every error at file:line:col.

``validate`` collects every schema error (not just the first) so one run of
``ferryman validate`` shows all of them, each with its line and column and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..connection import Connection
from ..connections_file import connections_from_mapping
from ..errors import ConfigError
from ..yamlfile import load_yaml, position
from .model import JobFile

__all__ = ["DATABASE_SCHEMES", "DatabaseConnection", "LoadedJob", "load_job"]

#: URL schemes that name a database connection rather than a file server
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class DatabaseConnection:
    """A database a job loads into or exports from (``sqlite:///warehouse.db``)."""

    name: str
    url: str

    def describe(self) -> str:
        return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:****@", self.url)


@dataclass
class LoadedJob:
    path: Path
    job: JobFile
    connections: dict[str, Connection] = field(default_factory=dict)
    databases: dict[str, DatabaseConnection] = field(default_factory=dict)

    @property
    def base(self) -> Path:
        """Relative local paths in the job are relative to the job file's directory."""
        return self.path.parent


def _where(path: Path, data: Any, loc: tuple[str | int, ...]) -> str:
    line_col = position(data, list(loc))
    return f"{path}:{line_col[0]}:{line_col[1]}" if line_col else str(path)


def _schema_errors(path: Path, data: Any, err: ValidationError) -> list[str]:
    lines = []
    for item in err.errors():
        loc = tuple(p for p in item["loc"] if isinstance(p, int) or not _is_union_tag(p))
        shown = ".".join(str(p) for p in loc) or "(job)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key; docs/jobs.md lists the allowed ones"
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{_where(path, data, loc)}: {shown}: {message}")
    return list(dict.fromkeys(lines))


def _is_union_tag(part: str | int) -> bool:
    """pydantic names union members in error locations (``list[str]``, ``RunAction``)."""
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _database(name: str, entry: Any) -> DatabaseConnection | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        return None
    match = _SCHEME.match(entry["url"])
    scheme = match["scheme"].lower().split("+")[0] if match else ""
    if scheme not in DATABASE_SCHEMES:
        return None
    return DatabaseConnection(name, entry["url"])


def _resolve_sqlite(url: str, base: Path) -> str:
    """``sqlite:///warehouse.db`` is relative to the job file (``sqlite:////abs`` is not)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def load_job(path: Path) -> LoadedJob:
    """Parse and validate the job file at ``path``; raise ConfigError listing every problem."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a job file is a mapping with name:, connections:, steps:")
    try:
        job = JobFile.model_validate(data)
    except ValidationError as err:
        problems = _schema_errors(path, data, err)
        raise ConfigError(
            "\n".join(problems) if len(problems) > 1 else problems[0],
            hint="docs/jobs.md describes every key; `ferryman validate` lists all problems",
        ) from None
    loaded = LoadedJob(path=path.resolve(), job=job)
    raw_connections = data.get("connections") or {}
    for name, entry in raw_connections.items():
        database = _database(str(name), entry)
        if database is None:
            continue
        extra = sorted(set(entry) - {"url"})
        if extra:
            where = _where(path, data, ("connections", name, extra[0]))
            raise ConfigError(
                f"{where}: database connection {name!r} takes only url, not {extra[0]}"
            )
        url = _resolve_sqlite(database.url, loaded.base)
        loaded.databases[str(name)] = DatabaseConnection(database.name, url)
    loaded.connections = connections_from_mapping(raw_connections, path, skip=loaded.databases)
    return loaded
