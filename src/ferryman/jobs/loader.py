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
from ..limits import MAX_FOREACH_DEPTH
from ..yamlfile import load_yaml, position
from .checks import reference_problems
from .model import JobFile
from .unattended import unattended_problems

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
    #: ``variables.NAME`` and ``step NAME`` -> ``FILE:LINE:COLUMN`` of its key
    positions: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> Path:
        """Relative local paths in the job are relative to the job file's directory."""
        return self.path.parent

    def at(self, what: str) -> str:
        """``what`` (``variables.x``, ``step fetch``) with its place in the job file in front,
        for errors only the run can find (a value known from ``--var`` or an earlier step)."""
        where = self.positions.get(what)
        return f"{where}: {what}" if where else what


def _positions(path: Path, data: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    variables = data.get("variables")
    if isinstance(variables, dict):
        for name in variables:
            found[f"variables.{name}"] = _where(path, data, ("variables", name))

    def steps(items: Any, loc: tuple[str | int, ...]) -> None:
        if not isinstance(items, list):
            return
        for index, step in enumerate(items):
            if isinstance(step, dict) and isinstance(step.get("name"), str):
                found.setdefault(f"step {step['name']}", _where(path, data, (*loc, index)))
                nested = step.get("foreach")
                if isinstance(nested, dict):
                    steps(nested.get("steps"), (*loc, index, "foreach", "steps"))

    steps(data.get("steps"), ("steps",))
    return found


def _where(path: Path, data: Any, loc: tuple[str | int, ...]) -> str:
    line_col = position(data, list(loc))
    return f"{path}:{line_col[0]}:{line_col[1]}" if line_col else str(path)


def _schema_errors(path: Path, data: Any, err: ValidationError) -> list[str]:
    lines = []
    items = [
        (tuple(p for p in item["loc"] if isinstance(p, int) or not _is_union_tag(p)), item)
        for item in err.errors()
    ]
    for loc, item in items:
        if item["type"].endswith("_type") and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other, _ in items
        ):
            continue  # a union member that got further (run: {argv: ...}) says it better
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


def _positioned_problems(path: Path, data: Any) -> list[str]:
    """What JobFile's model validator checks (unique step names, env names), at positions."""
    problems: list[str] = []
    seen: set[str] = set()

    def walk(steps: Any, loc: tuple[str | int, ...], depth: int = 0) -> None:
        for index, step in enumerate(steps if isinstance(steps, list) else []):
            if not isinstance(step, dict):
                continue
            name, here = step.get("name"), (*loc, index, "name")
            if isinstance(name, str):
                if name in seen:
                    problems.append(
                        f"{_where(path, data, here)}: {'.'.join(map(str, here))}: two steps "
                        f"are named {name!r}; step names must be unique"
                    )
                seen.add(name)
            if isinstance(step.get("foreach"), dict):
                if depth + 1 > MAX_FOREACH_DEPTH:
                    here = (*loc, index, "foreach")
                    problems.append(
                        f"{_where(path, data, here)}: {'.'.join(map(str, here))}: foreach "
                        f"nested more than {MAX_FOREACH_DEPTH} deep (docs/jobs.md#limits)"
                    )
                    continue
                walk(step["foreach"].get("steps"), (*loc, index, "foreach", "steps"), depth + 1)

    walk(data.get("steps"), ("steps",))
    env = data.get("env")
    for index, name in enumerate(env if isinstance(env, list) else []):
        if isinstance(name, str) and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            where = _where(path, data, ("env", index))
            problems.append(f"{where}: env.{index}: {name!r} is not an environment variable name")
    return problems


def load_job(path: Path) -> LoadedJob:
    """Parse and validate the job file at ``path``; raise ConfigError listing every problem."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a job file is a mapping with name:, connections:, steps:")
    problems = _positioned_problems(path, data)
    job: JobFile | None = None
    try:
        job = JobFile.model_validate(data)
    except ValidationError as err:
        found = _schema_errors(path, data, err)
        if problems:  # the model validator's unpositioned "(job)" lines, said better above
            found = [p for p in found if ": (job): " not in p]
        problems = [*found, *problems]
    base = path.resolve().parent
    databases: dict[str, DatabaseConnection] = {}
    raw_connections = data.get("connections") or {}
    if not isinstance(raw_connections, dict):
        raw_connections = {}  # the schema errors above say what is wrong
    for name, entry in raw_connections.items():
        database = _database(str(name), entry)
        if database is None:
            continue
        extra = sorted(set(entry) - {"url"})
        if extra:
            where = _where(path, data, ("connections", name, extra[0]))
            problems.append(f"{where}: database connection {name!r} takes only url, not {extra[0]}")
        url = _resolve_sqlite(database.url, base)
        databases[str(name)] = DatabaseConnection(database.name, url)
    skip = {*databases, *(k for k, v in raw_connections.items() if not isinstance(v, dict))}
    connections = connections_from_mapping(raw_connections, path, skip=skip, problems=problems)
    files = [str(name) for name in raw_connections if str(name) not in databases]
    problems += reference_problems(path, data, files, databases)
    problems += unattended_problems(path, data, files, sorted(databases))
    if problems or job is None:
        raise ConfigError(
            "\n".join(problems),
            hint="docs/jobs.md describes every key; `ferryman validate` lists all problems",
        )
    return LoadedJob(path.resolve(), job, connections, databases, _positions(path, data))
