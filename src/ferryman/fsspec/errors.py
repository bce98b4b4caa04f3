"""ferryman's errors as the built-in exceptions fsspec users catch.

fsspec code (pandas, pyarrow, dask, Airflow) catches ``FileNotFoundError``,
``FileExistsError``, ``PermissionError``, ``IsADirectoryError``, ``NotADirectoryError``;
ferryman code catches :class:`ferryman.errors.NotFoundError` and the rest of its tree. Errors
leave the filesystem as classes that are both (``FileNotFound`` is a ``NotFoundError`` and a
``FileNotFoundError``), with the message, hint and server reply of the original, so either
style of handling works. The translation happens once, at this boundary.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import (
    ConnectError,
    FerrymanError,
    NotFoundError,
    PermissionDeniedError,
    RemoteError,
    TargetExistsError,
    TimeoutError,
)

__all__ = [
    "ConnectionProblem",
    "FileExists",
    "FileNotFound",
    "IsADirectory",
    "NotADirectory",
    "PermissionDenied",
    "TimedOut",
    "as_builtin",
    "translated",
]


class FileNotFound(NotFoundError, FileNotFoundError):
    """A file or directory does not exist (``NotFoundError`` and ``FileNotFoundError``)."""


class FileExists(TargetExistsError, FileExistsError):
    """The target exists and may not be replaced (``mode="create"``, ``"xb"``, ``mkdir``)."""


class PermissionDenied(PermissionDeniedError, PermissionError):
    """The server denied access."""


class IsADirectory(RemoteError, IsADirectoryError):
    """A file operation was given a directory."""


class NotADirectory(RemoteError, NotADirectoryError):
    """A directory operation was given a file."""


class ConnectionProblem(ConnectError, ConnectionError):
    """The server could not be reached, or the connection dropped."""


class TimedOut(TimeoutError, builtins.TimeoutError):
    """A wait ran past its time-out."""


#: most specific first: a ferryman TimeoutError is also a ConnectError
_DUALS: tuple[tuple[type[FerrymanError], type[FerrymanError]], ...] = (
    (NotFoundError, FileNotFound),
    (TargetExistsError, FileExists),
    (PermissionDeniedError, PermissionDenied),
    (TimeoutError, TimedOut),
    (ConnectError, ConnectionProblem),
)


def as_builtin(err: FerrymanError) -> FerrymanError:
    """``err`` as the class that is also the matching built-in exception (itself if it is
    one already, or if none matches)."""
    if isinstance(err, OSError):
        return err
    for ferryman_class, dual in _DUALS:
        if isinstance(err, ferryman_class):
            twin = dual.__new__(dual, err.message)
            OSError.__init__(twin, err.message)
            twin.__dict__.update(err.__dict__)
            return twin
    return err


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise a FerrymanError from the block as :func:`as_builtin` makes it."""
    try:
        yield
    except FerrymanError as err:
        twin = as_builtin(err)
        if twin is err:
            raise
        raise twin from err
