"""A local file made by ferryman (decrypted, signed, compressed, extracted): written under a
temporary name beside its target and published whole, or not at all.

The temporary is ``NAME.<random>.ferryman-part`` (:data:`ferryman.transfer.PARTIAL_SUFFIX`,
so listings never take it), created exclusively. Publishing renames it into place; without
``overwrite`` the rename is a hard link, which fails when the target exists -- no window in
which another file could be replaced -- and the temporary is then removed.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import Self

from .backends.local import LocalWriteStream, translate_os_error
from .errors import TargetExistsError
from .transfer.copy import partial_name

__all__ = ["LocalOutput"]


class LocalOutput:
    """``with LocalOutput(target) as out: out.stream.write(...)``; published when the block
    ends without an exception (call :meth:`publish` earlier to know it happened), removed
    when it raises."""

    def __init__(self, target: Path, *, overwrite: bool = False, mode: int = 0o666) -> None:
        self.target = target
        self.overwrite = overwrite
        if not overwrite and target.exists():
            raise TargetExistsError(
                f"{target} already exists",
                hint="remove it, or set overwrite: true to replace it",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        self.part = Path(partial_name(str(target), secrets.token_hex(4)))
        try:
            fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except OSError as err:
            raise translate_os_error(err, "create", str(self.part)) from err
        self.stream = LocalWriteStream(io.FileIO(fd, "wb"), str(self.part))
        self.published = False

    def publish(self) -> None:
        """Close the temporary and move it under the target's name."""
        if self.published:
            return
        self.stream.close()
        try:
            if self.overwrite:
                os.replace(self.part, self.target)
            else:
                self._link()
        except OSError as err:
            where = str(self.target)
            raise translate_os_error(err, "publish", str(self.part), target=where) from err
        self.published = True

    def _link(self) -> None:
        try:
            os.link(self.part, self.target)
        except FileExistsError:
            raise TargetExistsError(
                f"{self.target} already exists (made meanwhile by someone else)",
                hint="remove it, or set overwrite: true to replace it",
            ) from None
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if self.target.exists():  # a file system without hard links: check, then rename
                raise TargetExistsError(f"{self.target} already exists") from None
            os.rename(self.part, self.target)
            return
        os.unlink(self.part)

    def discard(self) -> None:
        """Remove the temporary; never raises."""
        self.stream.abort()
        with contextlib.suppress(OSError):
            os.unlink(self.part)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()
            return
        try:
            self.publish()
        except BaseException:
            self.discard()
            raise
