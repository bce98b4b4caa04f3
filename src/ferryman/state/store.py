"""The state store: one SQLite file with run history and the only-new ledger."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from .db import Database
from .effects import EffectsStore
from .history import History
from .ledger import LedgerStore
from .schedules import ScheduleStore
from .schema import MIGRATIONS, Migration

__all__ = ["StateStore"]


class StateStore(History, LedgerStore, EffectsStore, ScheduleStore):
    """An open state file (see :mod:`ferryman.state`).

    Opening creates the file (``0600``) and its missing directories (``0700``), switches it to
    WAL, migrates its schema forward, and marks runs that a dead process of this host left
    ``running`` as ``interrupted``. Use it as a context manager, or call :meth:`close`.

    One store may be shared by the threads of a process (one connection behind one lock);
    several processes may open the same file at once.

    Raises :class:`~ferryman.errors.ConfigError` for a file that is not a ferryman state file,
    is damaged, comes from a newer ferryman, or cannot be written.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 10.0,
        migrations: tuple[Migration, ...] = MIGRATIONS,
    ) -> None:
        self._db = Database(Path(path), busy_timeout=busy_timeout, migrations=migrations)
        try:
            self.interrupted: list[int] = self.mark_interrupted()
        except BaseException:
            self._db.close()
            raise

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def schema_version(self) -> int:
        return self._db.version

    def close(self) -> None:
        """Close the file; the store cannot be used afterwards. Closing twice is harmless."""
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({str(self.path)!r})"
