"""The peers added for the latency workloads: rclone, ``lftp pget``, ``ferryman get
--segments``.

rclone is configured entirely through ``RCLONE_CONFIG_BENCH_*`` environment variables (its
documented way to define a remote without a config file); the FTP password is passed
obscured (``rclone obscure -``, reading it from stdin) in the environment, never in argv.
FTPS is explicit TLS with ``disable_tls13`` (rclone's documented switch for servers whose
TLS 1.3 it does not get along with; vsftpd's ``require_ssl_reuse`` is one, issue 19). rclone's
FTP backend does not apply ``--ca-cert``: the test CA reaches it as ``SSL_CERT_FILE`` (where
Go looks for trusted roots), so the certificate is verified all the same. SFTP logs in with
``key_file`` and checks the host key against ``known_hosts_file``.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from benchmarks.peers import (
    Ferryman,
    Invocation,
    Kind,
    Lftp,
    Task,
    ToolContext,
    Variant,
    _ferryman_argv0,
)

__all__ = ["FerrymanSegments", "LftpPget", "Rclone"]

_REMOTE = "RCLONE_CONFIG_BENCH_"


@functools.cache
def _obscured(password: str) -> str:
    done = subprocess.run(
        ["rclone", "obscure", "-"],
        input=password,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


class Rclone(Variant):
    tool = "rclone"
    executable = "rclone"
    protocols = frozenset({"ftp", "ftps", "sftp"})
    kinds = frozenset({"get-file", "put-file", "get-dir", "put-dir"})

    def __init__(self, label: str, *options: str) -> None:
        super().__init__(label)
        self.options = options

    def _env(self, task: Task, ctx: ToolContext) -> dict[str, str]:
        end = task.endpoint
        env = ctx.env()
        env["RCLONE_CONFIG"] = str(ctx.dirs.home / "rclone.conf")  # empty: all from the env
        settings = {"HOST": end.host, "PORT": str(end.port), "USER": end.user}
        if end.protocol == "sftp":
            settings |= {
                "TYPE": "sftp",
                "KEY_FILE": str(end.key_file),
                "KNOWN_HOSTS_FILE": str(end.known_hosts),
            }
        else:
            settings |= {"TYPE": "ftp", "PASS": _obscured(ctx.password)}
            if end.ca_file is not None:
                settings |= {"EXPLICIT_TLS": "true", "DISABLE_TLS13": "true"}
                # rclone's FTP backend ignores --ca-cert; Go reads its trusted roots from
                # SSL_CERT_FILE, so the certificate is still verified, against the test CA
                env["SSL_CERT_FILE"] = str(end.ca_file)
        env |= {_REMOTE + key: value for key, value in settings.items()}
        return env

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        (ctx.dirs.home / "rclone.conf").touch()
        end = task.endpoint
        remote = "bench:" + end.path(task.remote)
        operands = {
            "get-file": ["copyto", remote, str(task.local)],
            "put-file": ["copyto", str(task.local), f"{remote}/{task.local.name}"],
            "get-dir": ["copy", remote, str(task.local)],
            "put-dir": ["copy", str(task.local), remote],
        }[task.kind]
        argv = ["rclone", *operands, *self.options]
        return Invocation(argv, self._env(task, ctx))


class LftpPget(Lftp):
    """``lftp pget -n N``: one file over N connections (lftp's segmented download)."""

    kinds = frozenset({"get-file"})

    def __init__(self, label: str, *, segments: int) -> None:
        super().__init__(label)
        self.segments = segments

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        invocation = super().build(task, ctx)
        script = Path(invocation.argv[-1])
        lines = script.read_text().splitlines()
        lines[-1] = f'pget -n {self.segments} "{task.endpoint.path(task.remote)}" -o "{task.local}"'
        ctx.secret_file(script.name, "\n".join([*lines, ""]))
        return invocation


@functools.cache
def _ferryman_get_help() -> str:
    done = subprocess.run(
        [*_ferryman_argv0(), "get", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout


class FerrymanSegments(Ferryman):
    """``ferryman get|put --segments N`` (unavailable while ferryman has no such option)."""

    kinds: frozenset[Kind] = frozenset({"get-file", "put-file"})

    def __init__(self, label: str, *, segments: int) -> None:
        super().__init__(label)
        self.segments = segments

    def unavailable(self) -> str | None:
        if reason := super().unavailable():
            return reason
        if "--segments" not in _ferryman_get_help():
            return "this ferryman has no `get --segments` yet"
        return None

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        invocation = super().build(task, ctx)
        argv = [*invocation.argv, "--segments", str(self.segments)]
        return Invocation(argv, invocation.env, invocation.listing)
