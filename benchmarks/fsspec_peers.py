"""The fsspec filesystems measured by the ``fs-*`` workloads, as :class:`~.peers.Variant` s.

Each run is one ``benchmarks/fsspec_client.py`` process: a filesystem made from storage
options, then ``fs.get`` of a directory or ``fs.open`` read to the end. The password reaches
the FTP ones through the environment (``--password-env``), as for the other Python peers;
SFTP logs in with the launcher's test key (ferryman and sshfs check the host key against the
launcher's known-hosts file, fsspec's paramiko-based ``sftp`` cannot be given one).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from benchmarks.environment import Protocol
from benchmarks.peers import PASSWORD_ENV, Invocation, Kind, Task, ToolContext, Variant

__all__ = ["FSSPEC_SCRIPT", "FsspecClient", "Impl"]

FSSPEC_SCRIPT = Path(__file__).with_name("fsspec_client.py")
Impl = Literal["ferryman", "sshfs", "paramiko", "fsspec-ftp"]

_TOOLS: dict[Impl, str] = {
    "ferryman": "ferryman",
    "sshfs": "sshfs",
    "paramiko": "fsspec-sftp",
    "fsspec-ftp": "fsspec-ftp",
}
#: what each implementation imports (its variant is unavailable without it)
_MODULES: dict[Impl, tuple[str, ...]] = {
    "ferryman": ("fsspec", "ferryman.fsspec"),
    "sshfs": ("fsspec", "sshfs"),
    "paramiko": ("fsspec", "paramiko"),
    "fsspec-ftp": ("fsspec",),
}
_OPERATIONS: dict[Kind, str] = {
    "get-dir": "get-dir",
    "put-dir": "put-dir",
    "get-file": "get-file",
    "put-file": "put-file",
    "read-file": "read",
}


class FsspecClient(Variant):
    """One fsspec implementation, with storage options (``fs_options``) and keywords of the
    ``fs.get``/``fs.open`` call (``call_options``), as ``KEY=VALUE`` texts."""

    kinds = frozenset({"get-dir", "read-file"})

    def __init__(
        self,
        label: str,
        impl: Impl,
        protocols: frozenset[Protocol],
        *,
        fs_options: tuple[str, ...] = (),
        call_options: tuple[str, ...] = (),
        prefetch: bool = False,
        glob: bool = False,
        gather: bool = False,
        kinds: frozenset[Kind] | None = None,
    ) -> None:
        super().__init__(label)
        if kinds is not None:
            self.kinds = kinds
        self.impl = impl
        self.tool = _TOOLS[impl]
        self.protocols = protocols
        self.fs_options = fs_options
        self.call_options = call_options
        self.prefetch = prefetch
        self.glob = glob
        self.gather = gather

    def unavailable(self) -> str | None:
        for module in _MODULES[self.impl]:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed"
        return None

    def build(self, task: Task, ctx: ToolContext) -> Invocation:
        end = task.endpoint
        argv = [ctx.python, str(FSSPEC_SCRIPT), "--impl", self.impl, "--protocol", end.protocol]
        argv += ["--host", end.host, "--port", str(end.port), "--user", end.user]
        if end.protocol == "sftp":
            argv += ["--key-file", str(end.key_file), "--known-hosts", str(end.known_hosts)]
        else:
            argv += ["--password-env", PASSWORD_ENV]
        if end.ca_file is not None:
            argv += ["--ca-file", str(end.ca_file)]
        for option in self.fs_options:
            argv += ["--fs-option", option]
        for option in self.call_options:
            argv += ["--call-option", option]
        if self.prefetch:
            argv.append("--prefetch")
        if self.glob and task.kind in ("get-dir", "put-dir"):
            argv.append("--glob")
        if self.gather and task.kind in ("get-dir", "put-dir"):
            argv.append("--gather")
        remote = end.path(task.remote)
        if task.kind == "put-file":  # the task names the directory to upload into
            remote = f"{remote}/{task.local.name}"
        argv += [_OPERATIONS[task.kind], remote]
        if task.kind != "read-file":
            argv.append(str(task.local))
        env = ctx.env(python=True, password=end.protocol != "sftp")
        return Invocation(argv, env)
