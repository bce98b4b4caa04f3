"""Sending notifications off the run's path: one worker thread, a bounded queue.

:meth:`Notifier.notify` only enqueues (it never waits; a full queue drops the notification
and says so in the log), the worker sends with retries and back-off (``ferryman.retry``), and
logs each outcome on ``ferryman.notify``: sent, or failed with the error and its hint.
:meth:`Notifier.close` waits a bounded time for what is queued (``ferryman run`` before it
exits; ``serve`` when it stops), then gives up on the rest.

Global notifications (for every job) come from a YAML file with a ``notify:`` list, the same
keys as a job's: ``--notify FILE``, else ``$FERRYMAN_NOTIFY``, else
``$XDG_CONFIG_HOME/ferryman/notify.yaml`` when it exists.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import ConfigError, FerrymanError
from ..jobs.unattended import EmailNotify, Notification, WebhookNotify
from ..retry import RetryPolicy, with_retries
from ..yamlfile import load_yaml, position
from .email import describe_email, send_email
from .message import Message, message_for
from .webhook import describe_webhook, post_webhook

__all__ = ["Notifier", "global_notifications", "notifications_path"]

log = logging.getLogger("ferryman.notify")

ENV_VAR = "FERRYMAN_NOTIFY"
_QUEUE_SIZE = 256


@dataclass(frozen=True)
class _Work:
    target: EmailNotify | WebhookNotify
    base: Path
    message: Message
    about: str  #: "job X run N (failure)"


def _describe(target: EmailNotify | WebhookNotify) -> str:
    return describe_email(target) if isinstance(target, EmailNotify) else describe_webhook(target)


class Notifier:
    """The notification worker; see the module docstring. Thread-safe."""

    def __init__(self, queue_size: int = _QUEUE_SIZE) -> None:
        self._queue: queue.Queue[_Work | None] = queue.Queue(queue_size)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def notify(
        self, notifications: Iterable[tuple[Notification, Path]], summary: dict[str, Any]
    ) -> int:
        """Queue the notifications whose ``on`` matches the run's event; returns how many."""
        message = message_for(summary)
        wanted = {message.event, "success"} if message.event == "no_files" else {message.event}
        about = f"job {summary.get('job')} run {summary.get('run_id')} ({message.event})"
        queued = 0
        for notification, base in notifications:
            if not wanted & set(notification.on):
                continue
            work = _Work(notification.target, base, message, about)
            try:
                self._queue.put_nowait(work)
            except queue.Full:
                self.dropped += 1
                log.warning(
                    "notification dropped (queue full): %s for %s", _describe(work.target), about
                )
                continue
            queued += 1
            self._start()
        return queued

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            work = self._queue.get()
            try:
                if work is None:
                    return
                self._send(work)
            finally:
                self._queue.task_done()

    def _send(self, work: _Work) -> None:
        target = work.target
        where = _describe(target)
        if self._stopping.is_set():
            self.failed += 1
            log.warning("notification not sent (stopping): %s for %s", where, work.about)
            return
        retries = target.retries if isinstance(target, WebhookNotify) else 2
        policy = RetryPolicy(retries=retries, delay=1.0, max_delay=30.0, max_total=300.0)

        def once() -> None:
            if isinstance(target, EmailNotify):
                send_email(target, work.message, work.base)
            else:
                post_webhook(target, work.message, work.base)

        try:
            with_retries(once, policy, f"notification {where}", sleep=self._sleep)
        except FerrymanError as err:
            self.failed += 1
            log.warning("notification failed: %s for %s: %s", where, work.about, err)
            return
        except Exception as err:  # a bug must not end the worker: the next one still goes
            self.failed += 1
            log.error("notification failed: %s for %s: %s", where, work.about, type(err).__name__)
            return
        self.sent += 1
        log.info("notification sent: %s for %s", where, work.about)

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise FerrymanError("notification given up: ferryman is stopping")

    def close(self, timeout: float = 30.0) -> bool:
        """Wait up to ``timeout`` seconds for the queue to be sent; True when it was."""
        thread = self._thread
        if thread is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        done = not self._queue.unfinished_tasks
        self._stopping.set()  # retries waiting in back-off give up at once
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        thread.join(max(0.0, min(5.0, deadline - time.monotonic())) or 0.1)
        if not done:
            log.warning("notifications still unsent after %g s were given up", timeout)
        return done


def notifications_path(given: Path | None = None) -> Path | None:
    """The global notifications file: ``given``, ``$FERRYMAN_NOTIFY``, or the XDG one if it
    exists (None: no global notifications)."""
    if given is not None:
        return given
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    default = config / "ferryman" / "notify.yaml"
    return default if default.is_file() else None


_LIST = TypeAdapter(list[Notification])


def global_notifications(path: Path | None) -> list[tuple[Notification, Path]]:
    """The notifications of the global file (see :func:`notifications_path`), each with the
    directory its relative paths are read from; ConfigError at file:line:column."""
    if path is None:
        return []
    data = load_yaml(path)
    items = data.get("notify") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ConfigError(
            f"{path}: a notifications file holds a list under notify:",
            hint="docs/serve.md#notifications shows one",
        )
    try:
        found = _LIST.validate_python(items)
    except ValidationError as err:
        lines = []
        for item in err.errors():
            loc = ["notify", *item["loc"]]
            line_col = position(data, loc)
            where = f"{path}:{line_col[0]}:{line_col[1]}" if line_col else str(path)
            shown = ".".join(str(p) for p in loc)
            lines.append(f"{where}: {shown}: {item['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines), hint="docs/serve.md#notifications") from None
    base = path.resolve().parent
    return [(n, base) for n in found]
