"""E-mail over SMTP (stdlib ``smtplib``): STARTTLS or implicit TLS with verified certificates,
optional login with a password from an environment variable or a file.

Errors leave as the project's tree: a server that cannot be reached or answers 4xx is
retriable (:class:`~ferryman.errors.ConnectError`), a refused login is an
:class:`~ferryman.errors.AuthenticationError`, a refused certificate a
:class:`~ferryman.errors.TLSError`; none of them carries the password.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from ..errors import AuthenticationError, ConfigError, ConnectError, FerrymanError, TLSError
from ..jobs.unattended import EmailNotify
from ..secrets import password_from
from .message import Message

__all__ = ["describe_email", "send_email"]

_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def describe_email(config: EmailNotify) -> str:
    return f"e-mail to {', '.join(config.to)} via {config.host}"


def _context(config: EmailNotify, base: Path) -> ssl.SSLContext:
    cafile = str(base / config.ca_file) if config.ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _email(config: EmailNotify, message: Message) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = config.from_
    mail["To"] = ", ".join(config.to)
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain="ferryman")
    mail.set_content(message.text)
    return mail


def _exchange(config: EmailNotify, message: Message, base: Path, password: str | None) -> None:
    port = config.port or _PORTS[config.security]
    context = _context(config, base) if config.security != "none" else None
    client: smtplib.SMTP
    if config.security == "tls":
        client = smtplib.SMTP_SSL(config.host, port, timeout=config.timeout, context=context)
    else:
        client = smtplib.SMTP(config.host, port, timeout=config.timeout)
    with client:
        client.ehlo()
        if config.security == "starttls":
            if not client.has_extn("starttls"):
                raise TLSError(
                    f"SMTP server {config.host}:{port} does not offer STARTTLS",
                    hint="use security: tls (port 465) if it speaks TLS from the start; "
                    "security: none sends in clear text",
                )
            client.starttls(context=context)
            client.ehlo()
        if config.user:
            client.login(config.user, password or "")
        client.send_message(_email(config, message))


def send_email(config: EmailNotify, message: Message, base: Path) -> None:
    """Send ``message`` once (the dispatcher retries); raises a FerrymanError on failure.
    ``base``: the directory relative paths (ca_file, password_file) are read from."""
    password = None
    if config.user:
        password = password_from(
            config.password_env, base / config.password_file if config.password_file else None
        )
    where = f"SMTP server {config.host}"
    try:
        _exchange(config, message, base, password)
    except FerrymanError:
        raise
    except smtplib.SMTPAuthenticationError as err:
        raise AuthenticationError(
            f"{where} refused the login of {config.user} ({err.smtp_code})",
            hint="check the user and the password in password_env/password_file",
        ) from None
    except smtplib.SMTPRecipientsRefused as err:
        refused = ", ".join(sorted(err.recipients))
        raise ConfigError(f"{where} refused the recipients {refused}") from None
    except smtplib.SMTPResponseException as err:
        reply = err.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        raise ConnectError(
            f"{where} answered {err.smtp_code} {text}".strip(),
            retriable=400 <= err.smtp_code < 500,
            hint="the server refused the message; see its reply",
        ) from None
    except ssl.SSLCertVerificationError as err:
        raise TLSError(
            f"{where}: certificate not trusted ({err.verify_message})",
            hint="give the CA that signed it with ca_file:",
        ) from None
    except ssl.SSLError as err:
        raise TLSError(f"{where}: TLS failed ({err.reason or err})") from None
    except (smtplib.SMTPException, OSError) as err:
        raise ConnectError(
            f"{where} (port {config.port or _PORTS[config.security]}): {type(err).__name__}: {err}",
            hint="check host, port and security: (starttls on 587, tls on 465)",
        ) from None
