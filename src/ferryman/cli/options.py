"""Options every remote command shares, and turning them into a connected backend."""

from __future__ import annotations

import functools
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import SecretStr, ValidationError

from ..backends import Backend, backend_for
from ..connection import Connection, RemoteTarget
from ..connections_file import resolve_target
from ..errors import ConfigError, ConnectError
from ..retry import RetryPolicy, with_retries
from ..secrets import resolve_credentials
from ..wirelog import configure_logging

__all__ = [
    "GLOBAL_OPTIONS",
    "CommonOptions",
    "common_options",
    "global_options",
    "open_remote",
    "retrying",
    "unreachable",
]

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
    #: ``--retries`` given on the command line: then a refused first connection is retried too
    retries_given: bool = False

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
        """The connection and path ``spec`` names, with the options applied: a bad URL is
        reported as the URL's fault, a bad option value as that option's."""
        target = resolve_target(spec, self.connections)
        given = {k: v for k, v in self.overrides().items() if v is not None}
        conn = _with_options(target.connection, given) if given else target.connection
        return RemoteTarget(self._ask_password(conn), target.path)

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


#: connection field -> the command-line option that sets it
_OPTION_OF = {
    "timeout": "--timeout",
    "retries": "--retries",
    "passive": "--passive/--active",
    "ca_file": "--ca-file",
    "fingerprint": "--fingerprint",
    "insecure": "--insecure",
    "password_env": "--password-env",
    "password_file": "--password-file",
    "known_hosts": "--known-hosts",
    "private_key": "--private-key",
}


def _with_options(conn: Connection, given: dict[str, object]) -> Connection:
    """``conn`` with the command-line options ``given`` (connection fields) applied."""
    merged = {**conn.model_dump(exclude_unset=True), **given}
    try:
        result = type(conn).model_validate(merged)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            field = ".".join(str(p) for p in item["loc"])
            msg = str(item["msg"]).removeprefix("Value error, ")
            if field:
                problems.append(f"{_OPTION_OF.get(field, field)}: {msg}")
                continue
            for name in given:  # a check of several settings: name the options it speaks of
                msg = re.sub(rf"\b{name}\b", _OPTION_OF.get(name, name), msg)
            problems.append(msg)
        raise ConfigError(
            f"invalid option for {conn.describe()}: " + "; ".join(problems),
            hint="fix or drop the option; `ferryman COMMAND --help` describes each",
        ) from None
    return result


_PATH = click.Path(path_type=Path, dir_okay=False)
_CONNECTIONS_HELP = "Connections file (YAML) for NAME:PATH targets [$FERRYMAN_CONNECTIONS]."
_TIMEOUT_HELP = "Time-out in seconds for every wait (connect, reply, data idle) [60]."
_VERBOSE_HELP = "Print the protocol transcript to stderr."
_GLOBAL_VERBOSE_HELP = "Print the protocol transcript (run, demo: and the run log) to stderr."
_LOG_HELP = "Write the full protocol transcript to this file."
_JSON_HELP = "Machine-readable JSON on stdout (errors too)."

_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--connections",
        type=_PATH,
        metavar="PATH",
        envvar="FERRYMAN_CONNECTIONS",
        help=_CONNECTIONS_HELP,
    ),
    click.option("--timeout", type=click.FloatRange(min=0.1), metavar="S", help=_TIMEOUT_HELP),
    click.option(
        "--retries",
        type=click.IntRange(0, 100),
        metavar="N",
        help="Retries of retriable failures (4xx, 421, 425, 426, time-outs, resets) with "
        "exponential back-off and jitter [5]; given here, a refused first connection is "
        "retried too.",
    ),
    click.option(
        "--passive/--active",
        default=None,
        help="FTP data connection mode: passive (default: EPSV, then PASV) or active.",
    ),
    click.option(
        "--ca-file", type=_PATH, metavar="PEM", help="Trust the CA certificates in this PEM file."
    ),
    click.option(
        "--fingerprint",
        metavar="FP",
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
        type=_PATH,
        metavar="FILE",
        help="SFTP: verify the host key against this known_hosts file [~/.ssh/known_hosts].",
    ),
    click.option(
        "--private-key",
        type=_PATH,
        metavar="FILE",
        help="SFTP: log in with this private key file [the agent's and ~/.ssh/id_* keys].",
    ),
    click.option("--password-env", metavar="NAME", help="Read the password from $NAME."),
    click.option(
        "--password-file",
        type=_PATH,
        metavar="PATH",
        help="Read the password from the first line of this file.",
    ),
    click.option("-v", "--verbose", count=True, help=_VERBOSE_HELP),
    click.option("--log", type=_PATH, metavar="FILE", help=_LOG_HELP),
    click.option("--json", "json_output", is_flag=True, help=_JSON_HELP),
]


#: the options accepted before the sub-command too (``ferryman -v get URL``), as in git and
#: rclone; each is the sub-command's option of the same name
GLOBAL_OPTIONS: list[Callable[[F], F]] = [
    click.option("-v", "--verbose", count=True, help=_GLOBAL_VERBOSE_HELP),
    click.option("--log", type=_PATH, metavar="FILE", help=_LOG_HELP),
    click.option("--json", "json_output", is_flag=True, help=_JSON_HELP),
    click.option("--connections", type=_PATH, metavar="PATH", help=_CONNECTIONS_HELP),
    click.option("--timeout", type=click.FloatRange(min=0.1), metavar="S", help=_TIMEOUT_HELP),
]

_GLOBAL_FLAGS = {
    "verbose": "-v",
    "log": "--log",
    "json_output": "--json",
    "connections": "--connections",
    "timeout": "--timeout",
}
_ENVIRONMENT = click.core.ParameterSource.ENVIRONMENT


def _given_before(ctx: click.Context) -> dict[str, Any]:
    given = ctx.find_root().meta.get("ferryman.global", {})
    return dict(given) if isinstance(given, dict) else {}


def global_options(ctx: click.Context, values: dict[str, Any]) -> None:
    """Hand the options given before the sub-command to it, as its own option's default.

    A sub-command without such an option is a usage error naming both."""
    given = {k: v for k, v in values.items() if v not in (None, False, 0)}
    ctx.meta["ferryman.global"] = given
    name = ctx.invoked_subcommand
    if not given or name is None or not isinstance(ctx.command, click.Group):
        return
    command = ctx.command.get_command(ctx, name)
    if command is None:
        return  # click says "No such command"
    accepted = {p.name for p in command.params}
    for key in given:
        if key not in accepted:
            raise click.UsageError(
                f"{_GLOBAL_FLAGS[key]} does not apply to `ferryman {name}`; "
                f"`ferryman {name} --help` lists its options",
                ctx,
            )
    ctx.default_map = {**(ctx.default_map or {}), name: given}


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
        ctx = click.get_current_context()
        before = _given_before(ctx)
        source = ctx.get_parameter_source
        if source("verbose") is click.core.ParameterSource.COMMANDLINE:
            values["verbose"] += int(before.get("verbose") or 0)  # ferryman -v get -v: both
        if before.get("connections") and source("connections") is _ENVIRONMENT:
            values["connections"] = before["connections"]  # the command line beats the env
        retries_given = source("retries") is click.core.ParameterSource.COMMANDLINE
        opts = CommonOptions(**values, json=kwargs.pop("json_output"), retries_given=retries_given)
        ctx.meta["ferryman.json"] = opts.json
        configure_logging(opts.verbose, opts.log)
        return func(*args, opts=opts, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def retrying(conn: Connection, what: str, action: Callable[[], T]) -> T:
    """Run ``action`` under the connection's retry policy."""
    policy = RetryPolicy(retries=conn.retries, delay=conn.retry_delay)
    return with_retries(action, policy, what)


def unreachable(err: BaseException) -> bool:
    """Whether ``err`` is a refused connection or a host name that does not resolve."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def open_remote(target: RemoteTarget, *, retry_refused: bool = False) -> Iterator[Backend]:
    """A connected backend for ``target``, closed afterwards.

    Connecting is retried under the connection's policy, except that a first attempt refused
    or naming a host that does not resolve fails at once (a person is waiting; a wrong port or
    a server that is down does not heal in seconds) unless ``retry_refused`` (``--retries``
    given on the command line)."""
    backend = backend_for(target.connection)
    attempts = 0

    def connect() -> None:
        nonlocal attempts
        attempts += 1
        try:
            backend.connect()
        except ConnectError as err:
            if attempts == 1 and not retry_refused and unreachable(err):
                err.retriable = False
            raise

    try:
        retrying(target.connection, f"connecting to {backend.describe()}", connect)
        yield backend
    finally:
        backend.close()
