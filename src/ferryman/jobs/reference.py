"""The job file's reference, generated from the models: JSON Schema and Markdown tables.

``docs/job.schema.json`` (for editor completion) and the tables in ``docs/jobs.md`` are made
from the same field descriptions that validation uses, so they cannot drift apart
(``scripts/gen_docs.py`` writes them; a test checks they are current).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from .model import ACTIONS, After, JobFile, Step
from .unattended import (
    EmailNotify,
    FileTrigger,
    Notification,
    Schedule,
    ServeSettings,
    WebhookNotify,
)

__all__ = ["job_schema", "job_schema_text", "reference_tables", "unattended_tables"]


def job_schema() -> dict[str, Any]:
    schema = JobFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ferryman job"
    return schema


def job_schema_text() -> str:
    return json.dumps(job_schema(), indent=2, sort_keys=True) + "\n"


def _default(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    if field.is_required():
        return "(required)"
    value = field.default
    if value is None or isinstance(value, BaseModel):
        return "-"
    if isinstance(value, list | dict) and not value:
        return "-"
    return f"`{getattr(value, 'value', value)}`"


def _table(model: type[BaseModel], skip: tuple[str, ...] = ()) -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key in skip:
            continue
        rows.append(f"| `{key}` | {_default(model, name)} | {field.description} |")
    return "\n".join(rows) + "\n"


def reference_tables() -> str:
    """Markdown: the job's keys, a step's common keys, then each action's keys."""
    parts = ["### Job\n", _table(JobFile), "\n### Every step\n", _table(Step, tuple(ACTIONS))]
    seen: dict[type[BaseModel], list[str]] = {}
    for action, model in ACTIONS.items():
        seen.setdefault(model, []).append(action)
    for model, actions in seen.items():
        names = ", ".join(f"`{a}`" for a in actions)
        doc = (model.__doc__ or "").strip().splitlines()[0]
        parts += [f"\n### {names}\n\n{doc}\n\n", _table(model)]
    parts += ["\n### `after` (of send and receive)\n\n", _table(After)]
    return "".join(parts)


def unattended_tables() -> str:
    """Markdown: the keys of ``serve:`` and ``notify:`` (docs/serve.md)."""
    parts = []
    for title, model in (
        ("`serve`", ServeSettings),
        ("`serve.schedules[]`", Schedule),
        ("`serve.triggers[]`", FileTrigger),
        ("`notify[]`", Notification),
        ("`notify[].email`", EmailNotify),
        ("`notify[].webhook`", WebhookNotify),
    ):
        doc = (model.__doc__ or "").strip().splitlines()[0]
        parts += [f"\n### {title}\n\n{doc}\n\n", _table(model)]
    return "".join(parts).lstrip("\n")
