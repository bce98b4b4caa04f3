"""Notification receivers on loopback for the tests: a real SMTP server (aiosmtpd, with
STARTTLS or implicit TLS from the test PKI and a password login) and a stdlib HTTP server
that records webhook POSTs (and can answer 500 a number of times first).

aiosmtpd is a pinned test dependency (pyproject's ``test`` extra); a missing one FAILS.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ferryman.certs import PkiFiles
from tests.servers.processes import HOST, free_port

__all__ = ["Hook", "Smtp", "smtp_server", "webhook_receiver"]

SMTP_USER = "notifier"
SMTP_PASSWORD = "smtp-Pw-only-for-tests"  # TEST-ONLY


@dataclass
class Smtp:
    port: int
    messages: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, smtp: Smtp) -> None:
        self.smtp = smtp

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.smtp.messages.append(envelope.content)
        return "250 OK"


@contextmanager
def smtp_server(pki: PkiFiles, mode: str) -> Iterator[Smtp]:
    """aiosmtpd on a free loopback port: ``starttls`` (STARTTLS required, login required) or
    ``tls`` (implicit TLS, no login)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    smtp = Smtp(free_port())

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
        if ok:
            smtp.logins.append(data.login.decode())
        return AuthResult(success=ok)

    if mode == "starttls":
        controller = Controller(
            _Handler(smtp),
            hostname=HOST,
            port=smtp.port,
            tls_context=context,
            require_starttls=True,
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=True,
        )
    else:
        controller = Controller(_Handler(smtp), hostname=HOST, port=smtp.port, ssl_context=context)
    controller.start()
    try:
        yield smtp
    finally:
        controller.stop()


@dataclass
class Hook:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    fail_first: int = 0  #: answer 500 to this many requests first
    attempts: int = 0


@contextmanager
def webhook_receiver(fail_first: int = 0) -> Iterator[Hook]:
    """An HTTP server on a free loopback port recording the JSON it is sent."""
    hook = Hook("", fail_first=fail_first)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                hook.attempts += 1
                failing = hook.attempts <= hook.fail_first
                if not failing:
                    hook.bodies.append(json.loads(body))
                    hook.headers.append(dict(self.headers))
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    hook.url = f"http://{HOST}:{server.server_address[1]}/hooks/T0KEN-in-path"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
