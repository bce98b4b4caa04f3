"""The database steps: ``load`` (CSV/TSV files into a table) and ``export`` (a query to CSV).

Each file's load is one transaction (``ferryman.loads``): a bad row fails that file with
``FILE:LINE`` and leaves nothing of it in the table. The step loads its files in order and
stops at the first failing one, so the files before it stay loaded and the failing one is
named in the error.

Exactly once: a file an only-new step took (or any file, with ``once: true``) is loaded with
a marker committed in the same transaction (``ferryman.loads.markers``), so the re-run after
a crash skips the files that were loaded before it, and says so.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..crashpoints import crash_point
from ..errors import ConfigError, FerrymanError
from ..loads import LoadMode, export_query, load_csv
from ..loads.markers import LoadMarker, content_key, ledger_file_key
from .context import RunContext
from .file_steps import StepOutcome
from .model import ExportAction, LoadAction

__all__ = ["DATA_STEPS"]

log = logging.getLogger("ferryman.jobs")


def _files(ctx: RunContext, files: str | list[str]) -> list[Path]:
    """The files a load names: a list, or a glob relative to the job file."""
    if isinstance(files, list):
        return [ctx.local_path(f) for f in files]
    pattern = str(ctx.local_path(files))
    if glob.has_magic(pattern):
        return [Path(p) for p in sorted(glob.glob(pattern))]
    return [Path(pattern)]


def _markers(ctx: RunContext, action: LoadAction, files: list[Path]) -> list[LoadMarker | None]:
    """Each file's load marker: by the ledger's identity for a file an only-new step took,
    by content for the others when ``once: true``; none with ``once: false``."""
    if action.once is False:
        return [None] * len(files)
    taken = {Path(r.target).resolve(): r for r in ctx.pending if r.target}
    markers: list[LoadMarker | None] = []
    for path in files:
        record = taken.get(path.resolve())
        if record is not None:
            identity = ledger_file_key(record.connection, record.path, record.size, record.mtime)
        elif action.once:
            identity = content_key(path)
        else:
            markers.append(None)
            continue
        markers.append(LoadMarker(ctx.name, ctx.step, identity, ctx.run_id))
    return markers


def load_step(ctx: RunContext, action: LoadAction) -> StepOutcome:
    database_name, sep, table = action.into.partition(":")
    if not sep or not table:
        raise ConfigError(
            f"load into {action.into!r}: write DATABASE:TABLE", hint="e.g. into: warehouse:orders"
        )
    database = ctx.database(database_name)
    fmt = action.format
    files = _files(ctx, action.files)
    result: dict[str, Any] = {"files": [], "rows": 0, "tables": [table], "already_loaded": []}
    if ctx.dry_run:
        result["files"] = [str(f) for f in files]
        return StepOutcome(result)
    mode = LoadMode(action.mode)
    markers = _markers(ctx, action, files)
    for index, (path, marker) in enumerate(zip(files, markers, strict=True)):
        # replace: the first file replaces the table's rows, the others add to them
        this_mode = LoadMode.APPEND if mode is LoadMode.REPLACE and index > 0 else mode
        try:
            loaded = load_csv(
                database.url, table, path, fmt, mode=this_mode, key=action.key, marker=marker
            )
        except FerrymanError as err:
            not_loaded = {str(p) for p in files[index:]}  # only_new takes them again
            ctx.pending = [r for r in ctx.pending if r.target not in not_loaded]
            return StepOutcome(result, err)
        crash_point("load-committed")
        if loaded.already is not None:
            log.info("%s: %s; not loaded again", path, loaded.already.describe())
            result["already_loaded"].append(str(path))
            continue
        result["files"].append(str(path))
        result["rows"] += loaded.rows
    return StepOutcome(result)


def export_step(ctx: RunContext, action: ExportAction) -> StepOutcome:
    database = ctx.database(action.from_)
    fmt = action.format
    target = ctx.local_path(action.to)
    if ctx.dry_run:
        return StepOutcome({"file": str(target), "rows": None})
    target.parent.mkdir(parents=True, exist_ok=True)
    exported = export_query(database.url, action.query, target, fmt)
    return StepOutcome({"file": str(target), "rows": exported.rows})


DATA_STEPS: dict[str, Callable[[RunContext, Any], StepOutcome]] = {
    "load": load_step,
    "export": export_step,
}
