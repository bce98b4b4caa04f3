"""FTP and FTPS (explicit and implicit) on stdlib ftplib, subclassed."""

from __future__ import annotations

from .backend import FtpBackend

__all__ = ["FtpBackend"]
