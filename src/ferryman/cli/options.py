"""Options every remote command shares, and turning them into a connected backend."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import SecretStr

from ..backends import Backend, backend_for
from ..connection import Connection, RemoteTarget
from ..connections_file import resolve_target
from ..retry import RetryPolicy, with_retries
from ..secrets import resolve_credentials
from ..wirelog import configure_logging

__all__ = ["CommonOptions", "common_options", "open_remote", "retrying"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass(frozen=True)
class CommonOptions:
    connections: Path | None
    timeout: float | None
    retries: int | None
    passive: bool | None
    ca_file: Path | None
    fingerprint: str | None
    insecure: bool
    password_env: str | None
    password_file: Path | None
    known_hosts: Path | None
    private_key: Path | None
    verbose: int
    log: Path | None
    json: bool

    def overrides(self) -> dict[str, object]:
        return {
            "timeout": self.timeout,
            "retries": self.retries,
            "passive": self.passive,
            "ca_file": self.ca_file,
            "fingerprint": self.fingerprint,
            "insecure": self.insecure or None,
            "password_env": self.password_env,
            "password_file": self.password_file,
            "known_hosts": self.known_hosts,
            "private_key": self.private_key,
        }

    def target(self, spec: str) -> RemoteTarget:
        target = resolve_target(spec, self.connections, **self.overrides())
        return RemoteTarget(self._ask_password(target.connection), target.path)

    def _ask_password(self, conn: Connection) -> Connection:
        """Prompt (hidden) for a missing FTP password when a person is at the terminal.

        SFTP does not ask up front: keys and the agent may log in without one.
        """
        if not sys.stdin.isatty() or self.json or conn.protocol != "ftp":
            return conn
        creds = resolve_credentials(conn)
        if creds.source != "none":
            return conn
        secret = click.prompt(f"Password for {conn.describe(creds.user)}", hide_input=True)
        return conn.model_copy(update={"password": SecretStr(secret)})


_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--connections",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="FERRYMAN_CONNECTIONS",
        help="Connections file (YAML) for NAME:PATH targets.",
    ),
    click.option("--timeout", type=click.FloatRange(min=0.1), help="Time-out in seconds [60]."),
    click.option(
        "--retries", type=click.IntRange(0, 100), help="Retries of retriable failures [5]."
    ),
    click.option(
        "--passive/--active", default=None, help="Passive (default) or active FTP data mode."
    ),
    click.option(
        "--ca-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Trust the CA certificates in this PEM file.",
    ),
    click.option(
        "--fingerprint",
        help="Trust exactly this certificate (FTPS: SHA-256 AB:CD:...) or SSH host key "
        "(SFTP: SHA256:... as ssh-keygen -l prints it).",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help="Accept any certificate or SSH host key (warns on every connection).",
    ),
    click.option(
        "--known-hosts",
        type=click.Path(path_type=Path, dir_okay=False),
        help="SFTP: verify the host key against this known_hosts file.",
    ),
    click.option(
        "--private-key",
        type=click.Path(path_type=Path, dir_okay=False),
        help="SFTP: log in with this private key file.",
    ),
    click.option("--password-env", metavar="NAME", help="Read the password from $NAME."),
    click.option(
        "--password-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Read the password from the first line of this file.",
    ),
    click.option("-v", "--verbose", count=True, help="Print the protocol transcript to stderr."),
    click.option(
        "--log",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write the full protocol transcript to this file.",
    ),
    click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout."),
]


def common_options(func: F) -> F:
    """Add the shared options; the command receives them as ``opts: CommonOptions``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        names = (
            "connections",
            "timeout",
            "retries",
            "passive",
            "ca_file",
            "fingerprint",
            "insecure",
            "password_env",
            "password_file",
            "known_hosts",
            "private_key",
            "verbose",
            "log",
        )
        values = {name: kwargs.pop(name) for name in names}
        opts = CommonOptions(**values, json=kwargs.pop("json_output"))
        click.get_current_context().meta["ferryman.json"] = opts.json
        configure_logging(opts.verbose, opts.log)
        return func(*args, opts=opts, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def retrying(conn: Connection, what: str, action: Callable[[], T]) -> T:
    """Run ``action`` under the connection's retry policy."""
    policy = RetryPolicy(retries=conn.retries, delay=conn.retry_delay)
    return with_retries(action, policy, what)


@contextmanager
def open_remote(target: RemoteTarget) -> Iterator[Backend]:
    """A connected backend for ``target`` (connecting is retried), closed afterwards."""
    backend = backend_for(target.connection)
    try:
        retrying(
            target.connection,
            f"connecting to {backend.describe()}",
            backend.connect,
        )
        yield backend
    finally:
        backend.close()
