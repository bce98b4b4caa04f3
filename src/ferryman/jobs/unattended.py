"""The job file's keys for running unattended: ``serve:`` (schedules, file-arrival triggers)
and ``notify:`` (e-mail and webhooks on failure, success, no files).

Kept apart from :mod:`.model` (which only adds the two top-level keys) so that the steps'
models and these grow independently. docs/serve.md is the prose; its reference tables are
generated from these descriptions.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ..serve.cron import CronError, CronExpression
from ..yamlfile import position

__all__ = [
    "EVENTS",
    "TRIGGER_KEYS",
    "EmailNotify",
    "FileTrigger",
    "Notification",
    "Schedule",
    "ServeSettings",
    "WebhookNotify",
    "unattended_problems",
]

#: what a notification can be sent for
EVENTS = ("failure", "success", "no_files")
#: what expressions read of ``trigger`` (``{{ trigger.files }}``)
TRIGGER_KEYS = ("kind", "files", "count", "time", "schedule", "path")


def _seconds(value: Any) -> Any:
    if isinstance(value, str) and re.match(r"^\s*\d+(\.\d+)?\s*[a-z]+\s*$", value, re.I):
        raise ValueError(f"takes a number of seconds, not {value.strip()!r}")
    return value


Seconds = Annotated[float, BeforeValidator(_seconds)]


def _list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )


class Schedule(_Model):
    """One cron schedule of a job."""

    cron: str = Field(
        description="When: a cron expression (minute hour day month weekday; six fields put "
        "seconds first), or @hourly, @daily, @weekly, @monthly, @yearly."
    )
    timezone: str | None = Field(
        None,
        description="IANA time zone of the cron times (Europe/Berlin); default: the zone of "
        "the machine serve runs on ($TZ or /etc/localtime).",
    )
    until: datetime | date | None = Field(
        None,
        description="Last date (or date and time) the schedule fires; a date includes that "
        "whole day in the schedule's zone.",
    )
    variables: dict[str, str] = Field(
        {}, description="Values for the job's variables in runs of this schedule (as --var)."
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            CronExpression.parse(value)
        except CronError as err:
            raise ValueError(f"{err} (docs/serve.md#schedules)") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{value!r} is not a known time zone: write an IANA name such as "
                    "Europe/Berlin, America/New_York or UTC"
                ) from None
        return value

    @property
    def expression(self) -> CronExpression:
        return CronExpression.parse(self.cron)

    @property
    def key(self) -> str:
        """What identifies the schedule in the state file (its catch-up mark)."""
        return f"{self.cron.strip()}@{self.timezone or 'local'}"


class FileTrigger(_Model):
    """Run the job when files arrive (on a connection of the job, or a local directory)."""

    path: str = Field(
        description="A glob of the files to watch: CONNECTION:/dir/*.csv, a URL, or a local "
        "path relative to the job file (inbox/*.csv)."
    )
    min_count: int = Field(1, ge=1, le=100_000, description="How many new files are enough.")
    stable_for: Seconds = Field(
        10, ge=0, le=3600, description="Seconds a file's size and time must stay the same."
    )
    poll: Seconds = Field(
        30, ge=0.2, le=86400, description="Seconds between listings (local: inotify wakes early)."
    )
    retry_failed_after: Seconds = Field(
        600,
        ge=0,
        le=7 * 86400,
        description="Seconds before files whose run failed trigger again (unchanged files).",
    )


class ServeSettings(_Model):
    """When `ferryman serve` runs the job."""

    schedules: list[Schedule] = Field([], description="Cron schedules (several allowed).")
    triggers: list[FileTrigger] = Field([], description="File-arrival triggers.")
    catch_up: Literal["none", "latest", "all"] = Field(
        "latest",
        description="Schedule times missed while serve was down: none, the latest once, or all "
        "(each a run, oldest first).",
    )
    if_running: Literal["skip", "queue"] = Field(
        "skip",
        description="When a schedule fires while the job still runs: skip that time, or queue "
        "one run for when it ends.",
    )
    enabled: bool = Field(True, description="false: serve loads the job but never starts it.")


class EmailNotify(_Model):
    """E-mail over SMTP."""

    to: Annotated[list[str], BeforeValidator(_list)] = Field(
        min_length=1, description="Recipients."
    )
    from_: str = Field(alias="from", description="Sender address.")
    host: str = Field(description="SMTP server.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Default 587 (starttls), 465 (tls) or 25 (none)."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls, tls (implicit, from the first byte) or none."
    )
    user: str | None = Field(None, description="Log in as this user (needs a password).")
    password_env: str | None = Field(None, description="Environment variable with the password.")
    password_file: Path | None = Field(None, description="File whose first line is the password.")
    ca_file: Path | None = Field(None, description="CA certificates to verify the server with.")
    timeout: Seconds = Field(30, gt=0, le=600, description="Seconds per SMTP exchange.")

    @model_validator(mode="after")
    def _secure(self) -> Self:
        if self.user and not (self.password_env or self.password_file):
            raise ValueError("user needs password_env or password_file")
        if self.user and self.security == "none":
            raise ValueError("security: none would send the password in clear text")
        return self


class WebhookNotify(_Model):
    """A JSON POST of the run summary."""

    url: str = Field(description="http:// or https:// URL.")
    headers: dict[str, str] = Field({}, description="Extra request headers.")
    headers_env: dict[str, str] = Field(
        {},
        description="Headers whose value is read from an environment variable (a token): "
        "{Authorization: HOOK_TOKEN}; masked everywhere.",
    )
    timeout: Seconds = Field(10, gt=0, le=300, description="Seconds per attempt.")
    retries: int = Field(3, ge=0, le=20, description="Retries with back-off after a failure.")
    ca_file: Path | None = Field(None, description="CA certificates to verify the server with.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value, re.I):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


class Notification(_Model):
    """Who is told, and when."""

    on: Annotated[list[Literal["failure", "success", "no_files"]], BeforeValidator(_list)] = Field(
        ["failure"],
        description="failure (also interrupted), success (every succeeded run), no_files (a "
        "succeeded run that moved no file).",
    )
    email: EmailNotify | None = Field(None, description="Send an e-mail.")
    webhook: WebhookNotify | None = Field(None, description="POST JSON to a URL.")

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("a notification needs exactly one of email: or webhook:")
        return self

    @property
    def target(self) -> EmailNotify | WebhookNotify:
        found = self.email or self.webhook
        assert found is not None
        return found


_NAMED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_-]*):(?P<path>.*)$", re.S)


def unattended_problems(path: Path, data: Any, files: list[str], databases: list[str]) -> list[str]:
    """Trigger paths that name no file-server connection of the job, at file:line:column."""
    serve = data.get("serve") if isinstance(data, dict) else None
    triggers = serve.get("triggers") if isinstance(serve, dict) else None
    problems: list[str] = []
    for index, trigger in enumerate(triggers if isinstance(triggers, list) else []):
        value = trigger.get("path") if isinstance(trigger, dict) else None
        match = _NAMED.match(value) if isinstance(value, str) and "://" not in value else None
        if match is None or len(match["name"]) < 2 or match["name"] in files:
            continue
        if match["name"] in databases:
            message = f"{match['name']!r} is a database connection; a trigger watches files"
        elif match["path"].startswith(("/", "~")):
            known = ", ".join(sorted(files)) or "none"
            message = f"no connection named {match['name']!r} (known: {known})"
        else:
            continue
        loc: list[str | int] = ["serve", "triggers", index, "path"]
        line_col = position(data, loc)
        where = f"{path}:{line_col[0]}:{line_col[1]}" if line_col else str(path)
        problems.append(f"{where}: serve.triggers.{index}.path: {message}")
    return problems
