"""``FerrymanTrigger``: the deferrable file sensor's wait, in Airflow's triggerer.

The listing runs in a worker thread (``asyncio.to_thread``): ferryman's FTP backend is
blocking, and its SFTP backend drives asyncssh on a loop of its own; either way the
triggerer's event loop never blocks. Everything the trigger needs is in :meth:`serialize`
(plain JSON), so a restarted triggerer resumes the wait; what it had seen settling starts
over (a stability check never passes on a file it did not watch for the whole time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from ...errors import FerrymanError
from ..connection import ferryman_connection
from ..watch import FileWatch, WatchSpec

__all__ = ["FerrymanTrigger"]

log = logging.getLogger("ferryman.airflow")


class FerrymanTrigger(BaseTrigger):
    """Fire once ``spec`` is met on ``ferryman_conn_id`` (None: the local disk).

    Events: ``{"status": "success", "files": [{path, size, mtime}, ...]}``, or
    ``{"status": "error", "message", "hint", "exit_code"}`` for a failure that waiting will
    not mend (a wrong password, an untrusted certificate); retriable failures (a dropped
    connection, a time-out) are logged and the next poll tries again."""

    def __init__(
        self,
        spec: dict[str, Any],
        ferryman_conn_id: str | None = None,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.spec = WatchSpec.from_json(spec)
        self.ferryman_conn_id = ferryman_conn_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "spec": self.spec.to_json(),
                "ferryman_conn_id": self.ferryman_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            settings = None
            if self.ferryman_conn_id is not None:
                conn = await BaseHook.aget_connection(self.ferryman_conn_id)
                settings = ferryman_connection(conn)
            watch = FileWatch(self.spec, settings)
        except FerrymanError as err:
            yield TriggerEvent(_error(err))
            return
        try:
            while True:
                try:
                    files, settling = await asyncio.to_thread(watch.check)
                except FerrymanError as err:
                    if not err.retriable:
                        yield TriggerEvent(_error(err))
                        return
                    log.warning("ferryman trigger: %s; trying again", err)
                    files, settling = None, 0.0
                if files is not None:
                    yield TriggerEvent({"status": "success", "files": files})
                    return
                wait = min(self.poll_interval, settling + 0.05) if settling else self.poll_interval
                await asyncio.sleep(wait)
        finally:
            await asyncio.to_thread(watch.close)


def _error(err: FerrymanError) -> dict[str, Any]:
    return {
        "status": "error",
        "message": err.message,
        "hint": err.hint,
        "exit_code": int(err.exit_code),
    }
