"""SSH client authentication: password, a private key (with its passphrase), the agent.

What is offered, in this order (as ssh does): public keys, then keyboard-interactive and
password with the password from :func:`ferryman.secrets.resolve_credentials` (when there is
one). The keys are ``private_key`` alone when it is given (like ``IdentitiesOnly``), else the
ssh-agent's keys (``use_agent`` and ``SSH_AUTH_SOCK``) and the unencrypted ``~/.ssh/id_*``.
No secret (password, passphrase, key material) ever reaches a message or the transcript.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from ...connection import SftpConnection
from ...errors import AuthenticationError, ConfigError
from ...secrets import Credentials, resolve_credentials
from ...wirelog import register_secret

__all__ = ["AuthPlan", "auth_plan", "login_refused"]

#: the order methods are tried in; GSSAPI and host-based authentication are not used
PREFERRED_AUTH = "publickey,keyboard-interactive,password"


@dataclass(frozen=True)
class AuthPlan:
    """What a connection will offer; ``describe()`` names it without any secret."""

    credentials: Credentials
    client_keys: Sequence[asyncssh.SSHKeyPair] | None  #: None: the agent and ~/.ssh/id_*
    key_source: str
    agent_path: str | None
    password: str | None = field(repr=False)

    def describe(self) -> str:
        parts = [self.key_source]
        if self.agent_path is not None and self.client_keys is None:
            parts.insert(0, "ssh-agent keys")
        if self.password is not None:
            parts.append(f"password ({self.credentials.source})")
        return ", ".join(parts)


def _passphrase(conn: SftpConnection) -> str | None:
    if conn.private_key_passphrase_env:
        value = os.environ.get(conn.private_key_passphrase_env)
        if value is None:
            raise ConfigError(
                f"environment variable {conn.private_key_passphrase_env} "
                "(private_key_passphrase_env) is not set",
                hint=f"export {conn.private_key_passphrase_env}=... before running",
            )
        return value
    if conn.private_key_passphrase_file:
        path = conn.private_key_passphrase_file.expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ConfigError(
                f"cannot read private_key_passphrase_file {path}: {err.strerror}",
                hint="check the path and that this user may read it",
            ) from None
        return lines[0] if lines else ""
    return None


def _is_encrypted(path: Path) -> bool:
    """Whether the key file is protected by a passphrase (PEM, PKCS#8 or OpenSSH format)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    if "ENCRYPTED" in text[:200]:  # "Proc-Type: 4,ENCRYPTED" or "BEGIN ENCRYPTED PRIVATE KEY"
        return True
    if "BEGIN OPENSSH PRIVATE KEY" not in text:
        return False
    body = "".join(line for line in text.splitlines() if line and "-----" not in line)
    try:
        raw = base64.b64decode(body)
    except ValueError:
        return False
    magic = b"openssh-key-v1\0"  # then the cipher's name, "none" when not encrypted
    return raw.startswith(magic) and raw[len(magic) + 4 : len(magic) + 8] != b"none"


def _load_private_key(conn: SftpConnection) -> Sequence[asyncssh.SSHKeyPair]:
    assert conn.private_key is not None
    path = conn.private_key.expanduser()
    passphrase = _passphrase(conn)
    if passphrase:
        register_secret(passphrase)
    source = (
        f"private_key_passphrase_env {conn.private_key_passphrase_env}"
        if conn.private_key_passphrase_env
        else f"private_key_passphrase_file {conn.private_key_passphrase_file}"
    )
    try:
        return asyncssh.load_keypairs([str(path)], passphrase=passphrase)
    except OSError as err:
        raise ConfigError(
            f"cannot read private_key {path}: {err.strerror}",
            hint="check the path and that this user may read the key file",
        ) from None
    except asyncssh.KeyEncryptionError as err:
        if "bcrypt" in str(err):
            raise ConfigError(
                f"private_key {path} is an OpenSSH key protected by a passphrase, which needs "
                "the bcrypt package",
                hint="install it (pip install 'asyncssh[bcrypt]'), or convert the key to PEM "
                "(ssh-keygen -p -m PEM -f KEYFILE)",
            ) from None
        raise ConfigError(
            f"cannot decrypt private_key {path}: wrong passphrase (from {source})",
            hint="check the passphrase that private_key_passphrase_env/_file gives",
        ) from None
    except asyncssh.KeyImportError as err:
        text = str(err)
        if "Passphrase must be specified" in text:
            raise ConfigError(
                f"private_key {path} is protected by a passphrase, and none was given",
                hint="set private_key_passphrase_env (an environment variable's name) or "
                "private_key_passphrase_file",
            ) from None
        if passphrase is not None and _is_encrypted(path):
            # a wrong passphrase mostly fails to decrypt, but now and then decrypts to bytes
            # that only fail to parse: either way, the passphrase is what to check
            raise ConfigError(
                f"cannot decrypt private_key {path}: wrong passphrase (from {source})",
                hint="check the passphrase that private_key_passphrase_env/_file gives",
            ) from None
        raise ConfigError(
            f"private_key {path} is not a private key ferryman can read ({text})",
            hint="give the private key file (OpenSSH, PEM or PKCS#8), not the .pub file",
        ) from None


def _default_keys() -> str:
    """What ``~/.ssh/id_*`` offers, as said in messages: only keys that are there."""
    ssh = Path.home() / ".ssh"
    if not ssh.is_dir():
        return "no key file (there is no ~/.ssh)"
    names = sorted(p.name for p in ssh.glob("id_*") if p.suffix != ".pub" and p.is_file())
    if not names:
        return "no key file (~/.ssh has no id_* key)"
    return f"~/.ssh keys ({', '.join(names)})"


def auth_plan(conn: SftpConnection) -> AuthPlan:
    """Resolve the password and load the keys; raises ConfigError for a bad key file."""
    creds = resolve_credentials(conn)
    password = creds.password if creds.source != "none" else None
    if password:
        register_secret(password)
    if conn.private_key is not None:
        keys: Sequence[asyncssh.SSHKeyPair] | None = _load_private_key(conn)
        key_source = f"private_key {conn.private_key}"
        agent = None
    else:
        keys = None
        key_source = _default_keys()
        agent = os.environ.get("SSH_AUTH_SOCK") or None if conn.use_agent else None
    return AuthPlan(creds, keys, key_source, agent, password)


def login_refused(where: str, plan: AuthPlan, offered: Sequence[str] | None) -> AuthenticationError:
    """The error for a refused login: what the server offers, what ferryman tried."""
    user = plan.credentials.user
    shown = ",".join(offered) if offered else "(could not be learned)"
    message = (
        f"login as {user} on {where} refused: the server offers {shown}; ferryman offered "
        f"{plan.describe()}"
    )
    offered_set = set(offered or ())
    if plan.password is None and offered_set & {"password", "keyboard-interactive"}:
        hint = (
            "no password was given: pass one (--password-env NAME, --password-file, "
            "password_env:) or a key the server accepts (private_key:)"
        )
    elif offered is not None and offered_set == {"publickey"}:
        hint = "the server accepts only keys: give private_key: (and check authorized_keys)"
    else:
        hint = "check the user name and the password or key (and whether this user may log in)"
    return AuthenticationError(message, hint=hint)
