"""Files opened through the filesystem: streamed ranged reads, and writes published whole.

Reading keeps one server stream open and continues it while reads are sequential, so reading
a file from start to end is one RETR (or one SFTP read pipeline) however the caller slices
it; a read elsewhere (pyarrow seeking to a Parquet footer) ends that stream and opens one at
the new offset (FTP ``REST``, SFTP offsets). fsspec's read-ahead cache sits in front.

Writing goes to a temporary name beside the target (``NAME.<tag>.ferryman-part``, as every
ferryman copy does), is verified when the file is closed (the size the server reports; its
hash where it offers one) and only then renamed into place. An exception inside the ``with``
block, or a failed verification, removes the temporary file and leaves the final name as it
was. With ``autocommit=False`` (fsspec transactions) the rename waits for :meth:`commit`.
"""

from __future__ import annotations

import secrets
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile

from ..backends.base import Backend
from ..errors import FerrymanError
from ..retry import with_retries
from ..transfer.copy import Digest, discard, hash_side, partial_name, publish, verify_landed
from .errors import FileExists, translated
from .pool import Loan

if TYPE_CHECKING:
    from .filesystem import FerrymanFileSystem

__all__ = ["FerrymanFile"]

#: bytes asked of the stream at a time while filling a range
_CHUNK = 1 << 20


class FerrymanFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec is untyped
    """A file of a :class:`FerrymanFileSystem` opened ``rb``, ``wb`` or ``xb``."""

    fs: FerrymanFileSystem

    def __init__(self, fs: FerrymanFileSystem, path: str, mode: str = "rb", **kwargs: Any):
        self._loan: Loan | None = None
        self._reader_at = 0
        self._part: str | None = None
        self._digest: Digest | None = None
        self._hashing: tuple[str, Backend] | None = None
        self._uploaded = False
        if mode not in ("rb", "wb", "xb"):
            raise ValueError(f"mode {mode!r} is not supported: use 'rb', 'wb' or 'xb'")
        super().__init__(fs, path, mode, **kwargs)

    # -- connection --------------------------------------------------------------------------

    def _lent(self) -> Loan:
        if self._loan is None:
            self._loan = self.fs.pool.lend()
        return self._loan

    def _give_back(self) -> None:
        loan, self._loan = self._loan, None
        if loan is not None:
            self.fs.pool.settle(loan)

    # -- reading -----------------------------------------------------------------------------

    def _drop_reader(self) -> None:
        loan = self._loan
        reader = loan.reader if loan is not None else None
        if loan is not None and reader is not None:
            loan.reader = None
            reader.abort()

    def _fetch_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if start >= end:
            return b""
        wanted = end - start
        chunks: list[bytes] = []  # joined once: no zero-filled buffer, no second copy
        got = 0

        def fill() -> None:
            nonlocal got
            loan = self._lent()
            if loan.reader is None or self._reader_at != start + got:
                self._drop_reader()
                loan.reader = loan.backend.open_read(self.path, start + got)
                self._reader_at = start + got
            try:
                while got < wanted:
                    chunk = loan.reader.read(min(wanted - got, _CHUNK))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
                    self._reader_at += len(chunk)
            except FerrymanError:
                self._drop_reader()  # a retry opens a stream at the byte that did not arrive
                raise

        with translated():
            with_retries(fill, self.fs.pool.policy, f"reading {self.path}")
            if self._reader_at >= self.size:
                self._finish_reader()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _finish_reader(self) -> None:
        """At the end of the file: close the stream so the server's final reply is read and
        the connection is clean for the next caller (an early stop aborts instead)."""
        loan = self._loan
        reader = loan.reader if loan is not None else None
        if loan is None or reader is None:
            return
        loan.reader = None
        if reader.read(1):  # the file grew while it was read: that is the caller's business
            reader.abort()
            return
        try:
            reader.close()
        except FerrymanError:
            pass  # the bytes asked for arrived in full; the connection reconnects if it broke

    # -- writing -----------------------------------------------------------------------------

    def _initiate_upload(self) -> None:
        loan = self._lent()
        self._part = partial_name(self.path, secrets.token_hex(4))
        with translated():
            self._hashing = hash_side(None, loan.backend)
            self._digest = Digest(self._hashing[0]) if self._hashing else None
            self.fs.ensure_parent(loan.backend, self.path)
            loan.writer = loan.backend.open_write(self._part)

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getbuffer()
        loan = self._loan
        assert loan is not None and loan.writer is not None and self._part is not None
        writer = loan.writer
        with translated():
            try:
                if len(data):
                    writer.write(data)
                    if self._digest is not None:
                        self._digest.update(data)
                if not final:
                    return True
                loan.writer = None
                writer.close()
                sent = (self.offset or 0) + len(data)
                verify_landed(
                    loan.backend,
                    self._part,
                    self.path,
                    sent,
                    writer.landed_size,
                    self._hashing,
                    self._digest,
                )
            except BaseException:
                self._abandon()
                raise
            finally:
                del data  # the buffer may be replaced only once its view is released
        self._uploaded = True
        if self.autocommit:
            self.commit()
        return True

    def commit(self) -> None:
        """Rename the verified temporary file into place (fsspec: end of a transaction)."""
        if not self._uploaded or self._part is None:
            return
        backend = self._lent().backend
        with translated():
            try:
                if self.mode == "xb" and self.fs.exists(self.path):
                    raise FileExists(f"{self.path} appeared while it was being written")
                publish(backend, self._part, self.path, replace=True)
            except BaseException:
                self._abandon()
                raise
        self._part = None
        self._give_back()
        self.fs.invalidate_cache(self.path)

    def discard(self) -> None:
        """Throw the written data away: nothing appears under the final name."""
        self._abandon()

    def _abandon(self) -> None:
        loan = self._loan
        if loan is not None and loan.writer is not None:
            writer, loan.writer = loan.writer, None
            writer.abort()
        part, self._part = self._part, None
        if part is not None and loan is not None:
            discard(loan.backend, part)
        self._give_back()

    # -- life cycle --------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            if self.mode == "rb":
                self._drop_reader()
            if self.mode == "rb" or self.autocommit:
                self._give_back()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None or self.mode == "rb":
            self.close()
            return
        # an exception inside the ``with`` block: publish nothing (fsspec would commit)
        self._abandon()
        self.closed = True

    def __del__(self) -> None:
        if not self.closed and self.mode != "rb":
            self._abandon()  # never published: garbage collected without close()
            self.closed = True
        super().__del__()
