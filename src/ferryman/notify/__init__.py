"""Notifications about runs: e-mail over SMTP and JSON webhooks, for ``run`` and ``serve``.

:mod:`.message` turns a run summary into what is sent (never a secret), :mod:`.email` and
:mod:`.webhook` send it (retried with back-off, bounded in time), :mod:`.dispatch` does the
sending on a worker thread with a bounded queue so a run never waits for it, and reads the
global notifications file. docs/serve.md#notifications describes the job-file keys.
"""

from __future__ import annotations

from .dispatch import Notifier, global_notifications, notifications_path
from .message import Message, event_of, message_for

__all__ = [
    "Message",
    "Notifier",
    "event_of",
    "global_notifications",
    "message_for",
    "notifications_path",
]
