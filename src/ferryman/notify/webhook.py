"""Webhooks: the run summary as a JSON POST (stdlib ``urllib``), with a time-out per attempt.

A webhook URL often holds its token in the path (chat services' incoming hooks), so it is
only ever shown as ``scheme://host:port/...``; header values read from the environment are
registered as secrets. A 5xx, a 429 or a network failure is retriable; another 4xx is not.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from .. import __version__
from ..errors import ConnectError, FerrymanError, RemoteError, TLSError
from ..jobs.unattended import WebhookNotify
from ..secrets import password_from
from .message import Message

__all__ = ["describe_webhook", "post_webhook"]


def describe_webhook(config: WebhookNotify) -> str:
    """``webhook https://host:port/...``: never the path, query or user of the URL."""
    parts = urlsplit(config.url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"webhook {parts.scheme}://{host}{port}/..."


def _headers(config: WebhookNotify) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"ferryman/{__version__}",
        **config.headers,
    }
    for name, variable in config.headers_env.items():
        headers[name] = password_from(env=variable) or ""
    return headers


def post_webhook(config: WebhookNotify, message: Message, base: Path) -> None:
    """POST ``message.payload`` once (the dispatcher retries); a FerrymanError on failure."""
    body = json.dumps(message.payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked: http or https
        config.url, data=body, headers=_headers(config), method="POST"
    )
    context = None
    if config.url.lower().startswith("https"):
        cafile = str(base / config.ca_file) if config.ca_file else None
        context = ssl.create_default_context(cafile=cafile)
    where = describe_webhook(config)
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=config.timeout, context=context
        ) as response:
            response.read(65536)
    except urllib.error.HTTPError as err:
        retriable = err.code >= 500 or err.code in (408, 429)
        raise RemoteError(
            f"{where} answered HTTP {err.code} {err.reason}",
            retriable=retriable,
            hint="the receiver refused the notification"
            + ("; it is retried" if retriable else "; check the URL and headers"),
        ) from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise TLSError(
                f"{where}: certificate not trusted ({reason.verify_message})",
                hint="give the CA that signed it with ca_file:",
            ) from None
        raise ConnectError(f"{where} not reached: {reason}", hint="is the receiver up?") from None
    except (TimeoutError, OSError) as err:
        raise ConnectError(
            f"{where}: no answer within {config.timeout:g} s ({type(err).__name__})"
            if isinstance(err, TimeoutError)
            else f"{where}: {err}",
            hint="is the receiver up? raise timeout: if it is slow",
        ) from None
    except FerrymanError:
        raise
