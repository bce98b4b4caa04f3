"""Bytes changed on the way: a copy may read its source through a transform (encrypt,
decrypt), so nothing but the transformed bytes is ever written on either side.

A transform wraps the source's read stream in another one. What the copy writes is the
transform's output; what it verifies changes accordingly: the bytes *read* must match the
source's size (``source_bytes``), the bytes *written* must match what landed, a server-side
hash is compared only on the destination (it hashes the output), and the transform's own
checks (gpg's status: integrity, signatures) happen when its stream is closed, before the
copy publishes. A transformed copy never resumes: its output need not be the same twice
(encryption uses a fresh session key each time).
"""

from __future__ import annotations

import abc

from ..backends.base import ReadStream

__all__ = ["StreamTransform", "TransformedStream"]


class TransformedStream(ReadStream):
    """The output of a transform; ``close()`` raises when the transform's checks fail."""

    #: bytes read from the source so far
    source_bytes: int = 0
    #: what the transform checked, for the copy's ``verified`` (after ``close()``)
    verified: str = ""


class StreamTransform(abc.ABC):
    """Changes the bytes between source and destination; one object serves every file."""

    @abc.abstractmethod
    def wrap(self, reader: ReadStream, source: str) -> TransformedStream:
        """The transformed stream of ``reader`` (the open source file ``source``); it owns
        ``reader`` from now on (closes or aborts it)."""

    def target_name(self, name: str) -> str:
        """The destination name for a file called ``name`` at the source (``x.csv`` ->
        ``x.csv.gpg``), for files copied into a directory under their own names."""
        return name
