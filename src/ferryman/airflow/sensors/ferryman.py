"""``FerrymanFileSensor``: wait for files on a ferryman connection or the local disk."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from ...errors import ConfigError, FerrymanError
from ..hooks.ferryman import FerrymanHook
from ..triggers.ferryman import FerrymanTrigger
from ..watch import FileWatch, WatchSpec

__all__ = ["FerrymanFileSensor", "FerrymanSensorError"]


class FerrymanSensorError(AirflowException):
    """The wait failed in a way waiting will not mend (login refused, untrusted certificate)."""


class FerrymanFileSensor(BaseSensorOperator):
    """Wait until ``path`` (a glob such as ``/outbound/*.csv``, or a directory: its files)
    has at least ``min_count`` files whose size and time stayed the same for ``stable_for``
    seconds, modified after ``newer_than`` (an age such as ``2h`` or an ISO date; fixed when
    the task starts) and matching ``include``/``exclude``.

    ``ferryman_conn_id`` names a ferryman (or ``ftp``/``sftp``) connection; None watches the
    worker's local disk. With ``deferrable=True`` the wait runs in the triggerer
    (:class:`FerrymanTrigger`) and frees the worker slot. Returns (XCom) the files found:
    ``[{"path", "size", "mtime"}]``."""

    template_fields: Sequence[str] = (
        "path",
        "ferryman_conn_id",
        "newer_than",
        "include",
        "exclude",
    )

    def __init__(
        self,
        *,
        path: str,
        ferryman_conn_id: str | None = None,
        newer_than: str | None = None,
        min_count: int = 1,
        stable_for: float = 0.0,
        recursive: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.ferryman_conn_id = ferryman_conn_id
        self.newer_than = newer_than
        self.min_count = min_count
        self.stable_for = stable_for
        self.recursive = recursive
        self.include = list(include)
        self.exclude = list(exclude)
        self.deferrable = deferrable
        if stable_for > 0 and self.mode == "reschedule":
            raise ConfigError(
                "stable_for needs the sensor to keep watching: mode='reschedule' forgets "
                "between pokes what it saw",
                hint="use mode='poke' or deferrable=True",
            )
        self._watch: FileWatch | None = None

    def _spec(self) -> WatchSpec:
        return WatchSpec(
            path=self.path,
            newer_than=self.newer_than,
            min_count=self.min_count,
            stable_for=float(self.stable_for),
            recursive=self.recursive,
            include=tuple(self.include),
            exclude=tuple(self.exclude),
        ).resolved()

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            finally:
                if self._watch is not None:
                    self._watch.close()
        trigger = FerrymanTrigger(
            spec=self._spec().to_json(),
            ferryman_conn_id=self.ferryman_conn_id,
            poll_interval=float(self.poke_interval),
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        if self._watch is None:
            settings = None
            if self.ferryman_conn_id is not None:
                settings = FerrymanHook(self.ferryman_conn_id).get_settings()
            self._watch = FileWatch(self._spec(), settings)
        try:
            files, _ = self._watch.check()
        except FerrymanError as err:
            if err.retriable:
                self.log.warning("ferryman sensor: %s; trying again at the next poke", err)
                return False
            raise
        if files is None:
            return False
        self.log.info("%d file(s) ready at %s", len(files), self.path)
        return PokeReturnValue(is_done=True, xcom_value=files)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if event.get("status") != "success":
            hint = f" -- {event['hint']}" if event.get("hint") else ""
            raise FerrymanSensorError(f"{event.get('message')}{hint}")
        files = event["files"]
        self.log.info("%d file(s) ready at %s", len(files), self.path)
        return files
