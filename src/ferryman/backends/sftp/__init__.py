"""SFTP on asyncssh, behind a synchronous facade (one private event-loop thread)."""

from __future__ import annotations

import logging

from .backend import SftpBackend

# asyncssh logs every connection step at INFO (user names, addresses) to the root logger;
# ferryman writes its own transcript, so asyncssh says only what goes wrong, unless the
# application configured its logger itself.
if logging.getLogger("asyncssh").level == logging.NOTSET:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)

__all__ = ["SftpBackend"]
