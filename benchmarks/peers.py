"""The tools measured, and how each one is told to do a task.

A :class:`Variant` is one way of running one tool (``ferryman -P8``, ``lftp mirror -P8``...).
Given a :class:`Task` (what to move, where, over which server) it builds an
:class:`Invocation`: the argv and environment of one process. Credentials never appear on a
command line (process lists are world-readable): ferryman and the ftplib script read the
password from an environment variable, curl from a netrc file, lftp from its script file
(both mode 0600 in the secrets directory); SFTP logs in with the server's test key.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchmarks.environment import BenchDirs, Endpoint, Protocol

__all__ = [
    "PASSWORD_ENV",
    "Curl",
    "Ferryman",
    "Ftplib",
    "Invocation",
    "Kind",
    "Lftp",
    "OpensshSftp",
    "Task",
    "ToolContext",
    "Variant",
]

#: ``read-file``: a file read to its end through ``fs.open`` (the fsspec workloads only)
Kind = Literal["get-file", "put-file", "get-dir", "put-dir", "list", "read-file"]
PASSWORD_ENV = "FERRYMAN_BENCH_PASSWORD"  # noqa: S105 (a variable name)
FTP_PROTOCOLS: frozenset[Protocol] = frozenset({"ftp", "ftps"})
ALL_KINDS: frozenset[Kind] = frozenset({"get-file", "put-file", "get-dir", "put-dir", "list"})
FTPLIB_SCRIPT = Path(__file__).with_name("ftplib_client.py")


@dataclass(frozen=True)
class Task:
    """One transfer. ``remote`` is relative to the data root (a file, or the directory to
    list, download from or upload into). ``local`` is the download destination (the file for
    ``get-file``, the directory for ``get-dir``) or the upload source (file or directory)."""

    kind: Kind
    endpoint: Endpoint
    remote: str
    local: Path
    run_id: str


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str]
    listing: Literal["lines", "json"] | None = None  # how stdout lists entries ("list")


@dataclass
class ToolContext:
    """What every tool run shares: directories, the password, the Python tools."""

    dirs: BenchDirs
    password: str
    python: str = sys.executable
    _written: set[str] = field(default_factory=set)

    def env(self, *, python: bool = False, password: bool = False) -> dict[str, str]:
        """A clean environment: no agent socket, an empty HOME, the C.UTF-8 locale."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        env |= {"HOME": str(self.dirs.home), "TERM": "dumb"}
        if python:  # byte code cached as an installed package has it (not in src/)
            env["PYTHONPYCACHEPREFIX"] = str(self.dirs.pycache)
        if password:
            env[PASSWORD_ENV] = self.password
        return env

    def secret_file(self, name: str, text: str) -> Path:
        """A file only we can read, in the secrets directory."""
        path = self.dirs.secrets / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path

    def netrc(self, endpoint: Endpoint) -> Path:
        text = f"machine {endpoint.host} login {endpoint.user} password {self.password}\n"
        return self.secret_file("netrc", text)


class Variant:
    """One tool, run one way. Subclasses set the attributes and implement :meth:`build`."""

    tool: str = ""
    executable: str = ""
    protocols: frozenset[Protocol] = FTP_PROTOCOLS
    kinds: frozenset[Kind] = ALL_KINDS

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label!r}>"

    def unavailable(self) -> str | None:
        """Why this tool cannot run here (``None`` when it can)."""
        if self.executable and shutil.which(self.executable) is None:
            return f"{self.executable} is not installed"
        return None

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        raise NotImplementedError


def _ferryman_argv0() -> list[str]:
    """The console script next to this Python (not a pyenv shim, which adds a process)."""
    script = Path(sys.executable).with_name("ferryman")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ferryman"]


class Ferryman(Variant):
    tool = "ferryman"
    protocols = frozenset({"ftp", "ftps", "sftp"})

    def __init__(self, label: str, *, parallel: int | None = None, json: bool = False) -> None:
        super().__init__(label)
        self.parallel = parallel
        self.json = json

    def unavailable(self) -> str | None:
        if _ferryman_argv0()[0] != sys.executable or importlib.util.find_spec("ferryman"):
            return None
        return "ferryman is not installed (pip install -e .)"

    def _target(self, task: Task, ctx: ToolContext, path: str) -> tuple[str, list[str]]:
        end = task.endpoint
        if end.protocol == "sftp":
            conns = ctx.secret_file(
                "ferryman-connections.yaml",
                f"bench:\n  url: sftp://{end.user}@{end.host}:{end.port}/\n"
                f"  private_key: {end.key_file}\n  known_hosts: {end.known_hosts}\n",
            )
            return f"bench:{path}", ["--connections", str(conns)]
        options = ["--password-env", PASSWORD_ENV]
        if end.ca_file is not None:
            options += ["--ca-file", str(end.ca_file)]
        return f"{end.ferryman_scheme}://{end.user}@{end.host}:{end.port}{path}", options

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        remote = task.endpoint.path(task.remote)
        parallel = ["--parallel", str(self.parallel)] if self.parallel else []
        if task.kind == "get-file":
            url, options = self._target(task, ctx, remote)
            args = ["get", url, f"{task.local.parent}/"]
        elif task.kind == "put-file":
            url, options = self._target(task, ctx, remote + "/")
            args = ["put", str(task.local), url]
        elif task.kind == "get-dir":
            url, options = self._target(task, ctx, remote)
            args = ["get", "-r", url, str(task.local), *parallel]
        elif task.kind == "put-dir":
            url, options = self._target(task, ctx, remote + "/")
            args = ["put", "-r", str(task.local), url, *parallel]
        else:
            url, options = self._target(task, ctx, remote + "/")
            args = ["ls", url, *(["--json"] if self.json else [])]
        env = ctx.env(python=True, password=task.endpoint.protocol != "sftp")
        listing: Literal["lines", "json"] = "json" if self.json else "lines"
        return Invocation([*_ferryman_argv0(), *args, *options], env, listing)


class Curl(Variant):
    tool = "curl"
    executable = "curl"
    kinds = frozenset({"get-file", "put-file", "list"})

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        end = task.endpoint
        argv = ["curl", "-q", "--silent", "--show-error", "--netrc-file", str(ctx.netrc(end))]
        if end.ca_file is not None:
            argv += ["--ssl-reqd", "--cacert", str(end.ca_file)]
        base = f"ftp://{end.host}:{end.port}{end.path(task.remote)}"
        if task.kind == "get-file":
            argv += ["--output", str(task.local), base]
        elif task.kind == "put-file":
            argv += ["--upload-file", str(task.local), f"{base}/{task.local.name}"]
        else:
            argv += ["--list-only", f"{base}/"]
        return Invocation(argv, ctx.env(), "lines")


class Lftp(Variant):
    tool = "lftp"
    executable = "lftp"

    def __init__(self, label: str, *, parallel: int = 1) -> None:
        super().__init__(label)
        self.parallel = parallel

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        end = task.endpoint
        remote = end.path(task.remote)
        lines = [
            "set cmd:fail-exit yes",
            "set net:max-retries 2",
            "set net:reconnect-interval-base 1",
            "set net:timeout 60",
        ]
        if end.ca_file is not None:
            lines += [
                "set ftp:ssl-force true",
                "set ftp:ssl-protect-data true",
                f'set ssl:ca-file "{end.ca_file}"',
            ]
        else:
            lines.append("set ftp:ssl-allow false")
        lines.append(f'open -u "{end.user},{ctx.password}" -p {end.port} ftp://{end.host}')
        mirror = f"mirror --parallel={self.parallel}"
        command = {
            "get-file": f'get "{remote}" -o "{task.local}"',
            "put-file": f'put "{task.local}" -o "{remote}/{task.local.name}"',
            "get-dir": f'{mirror} "{remote}" "{task.local}"',
            "put-dir": f'{mirror} -R "{task.local}" "{remote}"',
            "list": f'cls -1 "{remote}/"',
        }[task.kind]
        script = ctx.secret_file(f"lftp-{task.run_id}.lftp", "\n".join([*lines, command, ""]))
        return Invocation(["lftp", "--norc", "-f", str(script)], ctx.env(), "lines")


class Ftplib(Variant):
    tool = "ftplib"
    kinds = frozenset({"get-file", "put-file", "get-dir", "put-dir"})

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        end = task.endpoint
        argv = [ctx.python, str(FTPLIB_SCRIPT), "--host", end.host, "--port", str(end.port)]
        argv += ["--user", end.user, "--password-env", PASSWORD_ENV]
        if end.ca_file is not None:
            argv += ["--tls", "--ca-file", str(end.ca_file)]
        remote = end.path(task.remote)
        operands = {
            "get-file": [remote, str(task.local)],
            "put-file": [str(task.local), f"{remote}/{task.local.name}"],
            "get-dir": [remote, str(task.local)],
            "put-dir": [str(task.local), remote],
        }[task.kind]
        argv += [task.kind.replace("-file", ""), *operands]
        return Invocation(argv, ctx.env(python=True, password=True))


class OpensshSftp(Variant):
    tool = "openssh-sftp"
    executable = "sftp"
    protocols = frozenset({"sftp"})
    kinds = frozenset({"get-file", "put-file", "get-dir", "put-dir"})

    def __init__(self, label: str, *, requests: int = 64) -> None:
        super().__init__(label)
        self.requests = requests

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        end = task.endpoint
        remote = end.path(task.remote)
        # unquoted: sftp expands globs only outside quotes (paths have no blanks, see
        # BenchDirs.create)
        command = {
            "get-file": f"get {remote} {task.local}",
            "put-file": f"put {task.local} {remote}/{task.local.name}",
            "get-dir": f"get {remote}/* {task.local}/",
            "put-dir": f"put {task.local}/* {remote}/",
        }[task.kind]
        batch = ctx.dirs.secrets / f"sftp-{task.run_id}.batch"
        batch.write_text(command + "\n")
        argv = ["sftp", "-q", "-F", "/dev/null", "-b", str(batch), "-R", str(self.requests)]
        argv += ["-P", str(end.port), "-i", str(end.key_file)]
        for option in (
            f"UserKnownHostsFile={end.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
        ):
            argv += ["-o", option]
        return Invocation([*argv, f"{end.user}@{end.host}"], ctx.env())
