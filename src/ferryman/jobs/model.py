"""The job file ("package") as pydantic models: the schema, the docs and ``--help`` in one.

String values may hold ``{{ expressions }}`` (see ``jobs.expressions``); they are rendered
when the step runs, so a step can use what earlier steps produced. Numbers and switches are
literal. Every model refuses unknown keys, so a typo is an error with its line and column;
a scalar where a list or mapping belongs (``format: csv``, ``key: id``, ``timeout: 2h``,
``run: "prog arg"``) gets a message that says what to write instead.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..limits import MAX_FOREACH_DEPTH
from ..loads import CsvFormat
from ..pgp.settings import PgpSettings
from ..transfer import IfExists
from ..transfer.inflight import MAX_PARALLEL
from .limits_model import Rate, SegmentCount, Size
from .pgp_model import (
    CompressAction,
    DecryptAction,
    DecryptOnReceive,
    EncryptAction,
    EncryptOnSend,
    ExtractAction,
    SignAction,
    VerifyAction,
)
from .unattended import Notification, ServeSettings

__all__ = [
    "ACTIONS",
    "After",
    "DeleteAction",
    "ExportAction",
    "ForeachAction",
    "JobFile",
    "ListAction",
    "LoadAction",
    "PathAction",
    "RenameAction",
    "RunAction",
    "Step",
    "SyncAction",
    "Throughput",
    "TransferAction",
    "WaitForAction",
]

_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"
Name = Annotated[str, Field(pattern=_NAME, max_length=100)]


# --- what to write instead: the likely guess of a scalar where a list or mapping belongs --------


def _flow(value: Any) -> str:
    """``value`` as YAML flow text (JSON is YAML): what to write in the job file."""
    return json.dumps(value, ensure_ascii=False)


_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|sec|m|min|h|d)\s*$", re.I)


def _seconds(value: Any) -> Any:
    """``timeout: 2h`` is a likely guess; say the number of seconds to write."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match["n"]) * _UNITS[match["unit"].lower()]
        shown = int(seconds) if seconds.is_integer() else seconds
        raise ValueError(f"takes a number of seconds: write {shown} for {value.strip()}")
    return value


def _list_of(what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str | int | float):
            raise ValueError(f"takes a list of {what}: write [{_flow(value)}]")
        return value

    return BeforeValidator(check)


def _connection_entry(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(f"takes the connection's settings: write {{url: {_flow(value)}}}")
    return value


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # an unclosed quote
        return command.split()


def _argv(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            f"takes a program and its arguments as a list (no shell): write {_flow(_words(value))}"
        )
    return value


def _variables(value: Any) -> Any:
    if isinstance(value, list):
        raise ValueError('takes a mapping of names to values: write {day: "{{ today() }}"}')
    return value


def _steps(value: Any) -> Any:
    if isinstance(value, dict):
        raise ValueError(
            "takes a list of steps, each starting with '- name: NAME' (in order), "
            "not a mapping of names to steps"
        )
    return value


def _csv_format(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("tsv", "tab"):
        raise ValueError('takes CSV options: write {format: tsv} (or {delimiter: "\\t"})')
    if isinstance(value, str | int | float | list):
        raise ValueError("takes CSV options such as {delimiter: ';'}; CSV is the default")
    return value


Seconds = Annotated[float, Field(gt=0, le=7 * 86400), BeforeValidator(_seconds)]
CsvOptions = Annotated[CsvFormat, BeforeValidator(_csv_format)]
Globs = Annotated[list[str], _list_of("globs")]
StepList = Annotated[list["Step"], BeforeValidator(_steps)]
#: files in flight: a number, or "auto" (chosen from the measured round trip, issue 19)
Parallel = Annotated[int, Field(ge=1, le=MAX_PARALLEL)] | Literal["auto"]

#: what each action takes, for a step that gives it a scalar (``delete_local: inbox/*.tmp``)
_ACTION_SHAPE = {
    "send": "{from: LOCAL, to: CONNECTION:PATH}",
    "receive": "{from: CONNECTION:PATH, to: LOCAL}",
    "sync": "{from: ..., to: ...}",
    "rename": "{from: OLD, to: NEW}",
    "load": "{files: ..., into: DATABASE:TABLE}",
    "export": "{query: SELECT ..., from: DATABASE, to: FILE.csv}",
    "encrypt": "{files: ..., recipients: [FINGERPRINT]}",
    "decrypt": "{files: ...}",
    "sign": "{files: ..., key: FINGERPRINT}",
    "verify": "{files: ..., signed_by: [FINGERPRINT]}",
    "compress": "{files: ..., format: gzip}",
    "extract": "{files: ..., to: DIR}",
    "foreach": "{items: ..., steps: [...]}",
}


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )


class After(_Model):
    """What happens to each source file after its copy is verified."""

    delete: bool = Field(False, description="Delete the source file.")
    move_to: str | None = Field(
        None, description="Move the source file into this directory (an archive)."
    )

    @model_validator(mode="before")
    @classmethod
    def _not_a_word(cls, data: Any) -> Any:
        if data in ("delete", "remove"):
            raise ValueError("takes a mapping: write {delete: true}")
        if isinstance(data, str):
            raise ValueError(
                f"takes a mapping: write {{move_to: {_flow(data)}}} to archive, or {{delete: true}}"
            )
        return data

    @model_validator(mode="after")
    def _one(self) -> Self:
        if self.delete and self.move_to:
            raise ValueError("give delete or move_to, not both")
        return self


class Filtering(_Model):
    """Which files a step takes."""

    recursive: bool = Field(False, description="Take a directory's contents, all levels.")
    include: Globs = Field([], description="Take only files matching one of these globs.")
    exclude: Globs = Field([], description="Leave out files matching these globs.")
    newer_than: str | None = Field(
        None, description="Only files modified after this age or date (2h, 2026-11-01)."
    )
    older_than: str | None = Field(None, description="Only files modified before this.")
    min_size: str | None = Field(None, description="Only files at least this big (10K, 5M).")
    max_size: str | None = Field(None, description="Only files at most this big.")


class Throughput(_Model):
    """Files in flight and bandwidth: the keys send, receive and sync share (issue 19)."""

    parallel: Parallel = Field(
        "auto",
        description="Files in flight at once (1-256), or auto: 4 on a short round trip, "
        "more as the measured round trip grows.",
    )
    segments: SegmentCount = Field(
        "auto",
        description="Copy each file of at least segment_min_size in this many parallel "
        "segments (1: one stream; auto: 8, or 4 for SFTP downloads, when the round trip is "
        "long): downloads to the local disk, and uploads from it to SFTP.",
    )
    segment_min_size: Size | None = Field(
        None, description="Smallest file that segments splits (default 64MiB)."
    )
    bwlimit: Rate | None = Field(
        None, description="Most bytes per second for all files of the step together (10M, 1.5MiB)."
    )
    bwlimit_per_file: Rate | None = Field(
        None, description="Most bytes per second for each file on its own."
    )


class TransferAction(Filtering, Throughput):
    """``send`` (local to remote) and ``receive`` (remote to local)."""

    from_: str = Field(
        alias="from",
        description="What to copy: a file, a glob (dir/*.csv) or a directory with "
        "recursive; remote as CONNECTION:PATH or a URL.",
    )
    to: str = Field(description="Where to: a directory (ending in /) or a file name.")
    if_exists: IfExists | None = Field(
        None,
        description="When the destination has the file: fail, skip, overwrite, newer, "
        "different, resume. Default: fail, or overwrite with only_new.",
    )
    only_new: bool = Field(
        False,
        description="Take each file once: files recorded in the ledger (same path, size and "
        "time) are left out; a file enters the ledger when the run succeeds.",
    )
    verify_hash: bool = Field(
        True, description="Also verify by a server-side hash when the server offers one."
    )
    preserve_mtime: bool = Field(False, description="Give copies the source's time.")
    stable_for: Annotated[float, BeforeValidator(_seconds)] = Field(
        0, ge=0, le=3600, description="Skip files whose size or time changes within this."
    )
    after: After = Field(After(), description="What happens to sources after the copy.")
    ascii: bool = Field(
        False, description="FTP ASCII mode (TYPE A): convert line ends of text files."
    )
    require_files: bool = Field(
        False, description="Fail the step when no file matches (otherwise it succeeds empty)."
    )
    encrypt: EncryptOnSend | None = Field(
        None, description="send: encrypt with gpg while uploading (NAME.gpg); docs/pgp.md."
    )
    decrypt: DecryptOnReceive | None = Field(
        None, description="receive: decrypt with gpg while downloading; docs/pgp.md."
    )


class SyncAction(Filtering, Throughput):
    """Mirror a directory in either direction."""

    recursive: Literal[True] = Field(
        True, description="Always true: a sync mirrors the whole tree, all levels."
    )
    from_: str = Field(alias="from", description="Source directory (local or remote).")
    to: str = Field(description="Destination directory (local or remote).")
    if_exists: IfExists = Field(IfExists.DIFFERENT, description="Which files to copy again.")
    delete: bool = Field(False, description="Delete destination files the source lacks.")
    max_delete: int = Field(50, ge=0, le=100, description="Most deletions, in % of files.")
    force: bool = Field(False, description="Delete even beyond max_delete.")


class PathAction(_Model):
    """``mkdir_*`` and ``rmdir_*``: one directory."""

    path: str = Field(description="The directory; remote as CONNECTION:PATH or a URL.")


class DeleteAction(_Model):
    """``delete_remote`` and ``delete_local``: files by name or glob."""

    path: str = Field(description="A file or a glob in the last part (dir/*.tmp).")
    missing_ok: bool = Field(True, description="Succeed when nothing matches.")


class RenameAction(_Model):
    """Rename or move a file or directory on one side."""

    from_: str = Field(alias="from", description="The file or directory (remote or local).")
    to: str = Field(
        description="The new path on the same side (absolute, or relative to "
        "the old one's directory)."
    )


class ListAction(Filtering):
    """List files; later steps use ``steps.NAME.files`` and ``steps.NAME.entries``."""

    path: str = Field(description="A directory or glob, remote or local.")
    only_new: bool = Field(False, description="Leave out files the ledger has.")


class WaitForAction(_Model):
    """A sensor: wait until files matching a pattern exist and are stable."""

    path: str = Field(description="A glob, remote or local (partner:/out/*.csv).")
    min_count: int = Field(1, ge=1, description="How many matching files are enough.")
    stable_for: Annotated[float, BeforeValidator(_seconds)] = Field(
        10, ge=0, le=3600, description="Seconds their sizes and times must stay the same."
    )
    timeout: Seconds = Field(3600, description="Give up (the step fails) after this long.")
    poll: Seconds = Field(30, description="Seconds between looks.")


class LoadAction(_Model):
    """Load files (CSV/TSV, xlsx, fixed-width, JSON Lines, Parquet; .gz/.zip) into a
    database table, one transaction per file."""

    files: str | list[str] = Field(
        description="Files to load: a list, a glob, or an expression such as "
        "'{{ steps.fetch.files }}'."
    )
    into: str = Field(description="DATABASE_CONNECTION:TABLE, e.g. warehouse:orders.")
    format: CsvOptions = Field(
        CsvFormat(),
        description="File format: csv (default), tsv, xlsx, fixed, jsonl, parquet; delimiter, "
        "header, encoding, null_strings, column_types, sheet, widths, compression ... "
        "(docs/loads.md).",
    )
    mode: Literal["append", "replace", "upsert"] = Field(
        "append", description="append, replace (in one transaction) or upsert on key."
    )
    key: Annotated[list[str], _list_of("columns")] = Field(
        [], description="Key columns for upsert."
    )
    once: bool | None = Field(
        None,
        description="Load each file exactly once, across crashes and re-runs: a marker in the "
        "target database, committed with the rows, makes a re-run skip it. Default: the files "
        "an only_new step took; true: every file (known by name, size and SHA-256); false: "
        "never.",
    )


class ExportAction(_Model):
    """A query's result to a file (CSV/TSV, JSON Lines, Parquet), streamed, published whole."""

    query: str = Field(description="The SELECT to run.")
    from_: str = Field(alias="from", description="The database connection's name.")
    to: str = Field(description="The file to write.")
    format: CsvOptions = Field(
        CsvFormat(), description="File format: csv (default), tsv, jsonl, parquet (docs/loads.md)."
    )


class RunAction(_Model):
    """Run a program: an argv list, never through a shell."""

    argv: Annotated[list[str], BeforeValidator(_argv)] = Field(
        min_length=1, description="Program and arguments."
    )
    cwd: str | None = Field(None, description="Working directory.")
    timeout: Seconds = Field(3600, description="Kill the program after this long.")


class ForeachAction(_Model):
    """Repeat nested steps for each item of a list (files of an earlier step, values...)."""

    items: str | list[Any] = Field(description="A list or an expression giving one.")
    as_: Name = Field("item", alias="as", description="Name of the current item in expressions.")
    steps: StepList = Field(min_length=1, description="The steps to repeat.")


ACTIONS: dict[str, type[BaseModel]] = {
    "send": TransferAction,
    "receive": TransferAction,
    "delete_remote": DeleteAction,
    "delete_local": DeleteAction,
    "mkdir_remote": PathAction,
    "mkdir_local": PathAction,
    "rmdir_remote": PathAction,
    "rmdir_local": PathAction,
    "rename": RenameAction,
    "list": ListAction,
    "sync": SyncAction,
    "wait_for": WaitForAction,
    "load": LoadAction,
    "export": ExportAction,
    "run": RunAction,
    "foreach": ForeachAction,
    "encrypt": EncryptAction,
    "decrypt": DecryptAction,
    "sign": SignAction,
    "verify": VerifyAction,
    "compress": CompressAction,
    "extract": ExtractAction,
}


class Step(_Model):
    """One step: a name, when it runs, and exactly one action."""

    name: Name = Field(description="Unique name; later steps read steps.NAME.*.")
    when: Literal["success", "failure", "always"] = Field(
        "success",
        description="Run after everything so far succeeded (success), after an unhandled "
        "failure (failure), or regardless (always).",
    )
    if_: str | None = Field(
        None, alias="if", description="An expression; the step is skipped when it is false."
    )
    continue_on_error: bool = Field(
        False, description="A failure of this step is recorded but does not fail the job."
    )
    retries: int = Field(0, ge=0, le=100, description="Retries of the whole step on failure.")
    retry_delay: Annotated[float, BeforeValidator(_seconds)] = Field(
        10, ge=0, le=3600, description="Seconds between step retries."
    )
    send: TransferAction | None = Field(None, description="Upload local files.")
    receive: TransferAction | None = Field(None, description="Download remote files.")
    delete_remote: DeleteAction | None = Field(None, description="Delete remote files.")
    delete_local: DeleteAction | None = Field(None, description="Delete local files.")
    mkdir_remote: PathAction | None = Field(None, description="Create a remote directory.")
    mkdir_local: PathAction | None = Field(None, description="Create a local directory.")
    rmdir_remote: PathAction | None = Field(None, description="Remove a remote directory.")
    rmdir_local: PathAction | None = Field(None, description="Remove a local directory.")
    rename: RenameAction | None = Field(None, description="Rename a file or directory.")
    list_: ListAction | None = Field(None, alias="list", description="List files.")
    sync: SyncAction | None = Field(None, description="Mirror a directory.")
    wait_for: WaitForAction | None = Field(None, description="Wait for files.")
    load: LoadAction | None = Field(None, description="Load files into a table.")
    export: ExportAction | None = Field(None, description="Export a query to CSV.")
    run: list[str] | RunAction | None = Field(
        None, description="Run a program (argv list, no shell)."
    )
    foreach: ForeachAction | None = Field(None, description="Repeat steps per item.")
    encrypt: EncryptAction | None = Field(None, description="Encrypt files (OpenPGP).")
    decrypt: DecryptAction | None = Field(None, description="Decrypt files (OpenPGP).")
    sign: SignAction | None = Field(None, description="Sign files (OpenPGP).")
    verify: VerifyAction | None = Field(None, description="Verify signatures (OpenPGP).")
    compress: CompressAction | None = Field(None, description="Compress files (gzip, zip).")
    extract: ExtractAction | None = Field(None, description="Extract archives (gzip, zip).")

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise ValueError(
                f"a step is a mapping with a name and one action: write "
                f"{{name: {_flow(data)}, ACTION: ...}} (docs/jobs.md lists the actions)"
            )
        return data

    @field_validator(*("list_" if a == "list" else a for a in ACTIONS), mode="before")
    @classmethod
    def _action_shape(cls, value: Any, info: ValidationInfo) -> Any:
        action = "list" if info.field_name == "list_" else str(info.field_name)
        if action == "run":
            return _argv(value)
        if isinstance(value, str | int | float | list):
            shape = _ACTION_SHAPE.get(action) or f"{{path: {_flow(value)}}}"
            raise ValueError(f"takes settings, not a single value: write {shape}")
        return value

    @field_validator("if_", mode="before")
    @classmethod
    def _if_expression(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(
                'takes an expression such as "{{ steps.fetch.count > 0 }}"; '
                + ("leave if: out to always run" if value else "to never run, remove the step")
            )
        return value

    @model_validator(mode="after")
    def _exactly_one_action(self) -> Self:
        given = [name for name in ACTIONS if getattr(self, _attr(name)) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ValueError(
                f"a step needs exactly one action ({', '.join(ACTIONS)}), this one has {what}"
            )
        return self

    @property
    def action_name(self) -> str:
        return next(name for name in ACTIONS if getattr(self, _attr(name)) is not None)

    @property
    def action(self) -> BaseModel:
        value = getattr(self, _attr(self.action_name))
        if isinstance(value, list):
            return RunAction(argv=value)
        return value  # type: ignore[no-any-return]


def _attr(action: str) -> str:
    return "list_" if action == "list" else action


class JobFile(_Model):
    """A job ("package"): connections, variables, steps."""

    name: Name = Field(description="The job's name: history, ledger and lock are per name.")
    description: str | None = Field(None, description="What the job is for.")
    connections: dict[Name, Annotated[dict[str, Any], BeforeValidator(_connection_entry)]] = Field(
        {},
        description="Named connections: url plus any connection setting "
        "(docs/connections.md), or a database url (sqlite:///warehouse.db).",
    )
    variables: Annotated[dict[Name, Any], BeforeValidator(_variables)] = Field(
        {}, description="Values for expressions; may use expressions themselves, in order."
    )
    env: Annotated[list[str], _list_of("environment variable names")] = Field(
        [],
        description="Environment variables expressions may read as env.NAME "
        "(nothing else of the environment is visible).",
    )
    state: Path | None = Field(
        None,
        description="SQLite state file (history, ledger); default $FERRYMAN_STATE or "
        "~/.local/share/ferryman/state.db.",
    )
    steps: StepList = Field(min_length=1, description="The steps, in order.")
    serve: ServeSettings | None = Field(
        None,
        description="When `ferryman serve` runs the job: cron schedules, file-arrival "
        "triggers (docs/serve.md).",
    )
    notify: list[Notification] = Field(
        [],
        description="E-mails and webhooks on failure, success or no files, for `run` and "
        "`serve` (docs/serve.md#notifications).",
    )
    pgp: PgpSettings | None = Field(
        None,
        description="OpenPGP keys: the job's own key ring (gnupg_home), the passphrase's "
        "source, keys to import (docs/pgp.md).",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for step in _all_steps(self.steps):
            if step.name in seen:
                raise ValueError(f"two steps are named {step.name!r}; step names must be unique")
            seen.add(step.name)
        for name in self.env:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"env: {name!r} is not an environment variable name")
        if _foreach_depth(self.steps) > MAX_FOREACH_DEPTH:
            raise ValueError(f"foreach nested more than {MAX_FOREACH_DEPTH} deep")
        return self


def _foreach_depth(steps: list[Step]) -> int:
    """How deep foreach steps nest in ``steps`` (0: none)."""
    inner = [_foreach_depth(s.foreach.steps) for s in steps if s.foreach is not None]
    return 1 + max(inner) if inner else 0


def _all_steps(steps: list[Step]) -> list[Step]:
    found = []
    for step in steps:
        found.append(step)
        if step.foreach is not None:
            found.extend(_all_steps(step.foreach.steps))
    return found


ForeachAction.model_rebuild()
Step.model_rebuild()
