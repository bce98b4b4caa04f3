"""ferryman: file-transfer automation for ETL (FTP, FTPS, SFTP, local disk)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
