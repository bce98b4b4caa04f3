"""The SHA-256 of a local file, read in chunks (memory stays flat whatever its size).

Stdlib only, so the job runner can use it without loading the database code."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_of_file"]

_CHUNK = 1024 * 1024


def sha256_of_file(path: Path) -> tuple[int, str]:
    """``(size, hex digest)`` of the bytes of ``path``."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
