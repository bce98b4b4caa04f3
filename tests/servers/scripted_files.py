"""A tiny in-memory file system for :class:`~tests.servers.scripted.ScriptedFtpServer`
dialogues: the rules that make a scripted server hold, list, serve and store files, so that a
test can script only the quirk it is about (a refused command) and run whole commands (get,
put, ls, sync) against it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import cast

from tests.servers.scripted import Reply, Rule, ScriptedFtpServer

__all__ = ["file_rules"]


def file_rules(files: dict[str, bytes]) -> dict[str, Rule]:
    """Rules for a tiny in-memory file system in ``files`` (absolute path -> content, changed
    in place by uploads, renames and deletions; directories are the paths' parents): LIST
    (UNIX ``ls -l``), MLSD, MLST, RETR, STOR and APPE (after ``REST n``, at byte n), SIZE, MDTM,
    HASH (SHA-256), XSHA256, MFMT (accepted, not kept), DELE, RNFR/RNTO, MKD, CWD. Everything
    else is left to :data:`DEFAULT_RULES` or the test's own rules, which go on top:
    ``{**file_rules(files), "MLST": "500 Unknown command."}``."""

    def norm(arg: str) -> str:
        path = arg if arg.startswith("/") else "/" + arg
        return path.rstrip("/") or "/"

    def dirs() -> set[str]:
        found = {"/"}
        for path in files:
            while (path := path.rsplit("/", 1)[0] or "/") != "/":
                found.add(path)
        return found

    def listing(server: ScriptedFtpServer, arg: str) -> Reply:
        where = norm(arg)
        lines = []
        children: dict[str, int | None] = {}
        for path, data in files.items():
            parent, _, name = path.rpartition("/")
            if (parent or "/") == where and name != ".dir":
                children[name] = len(data)
        for path in dirs():
            parent, _, name = path.rpartition("/")
            if path != "/" and (parent or "/") == where:
                children[name] = None
        for name, size in sorted(children.items()):
            kind, shown = ("d", 4096) if size is None else ("-", size)
            lines.append(f"{kind}rw-r--r--    1 ftp      ftp {shown:>12} Jan  2  2024 {name}")
        if where not in dirs():
            return "450 No such directory."
        server.reply("150 Here comes the directory listing.")
        server.send_data("".join(f"{line}\r\n" for line in lines).encode())
        return "226 Directory send OK."

    def rest(server: ScriptedFtpServer, arg: str) -> Reply:
        server.state["rest"] = int(arg)
        return f"350 Restart position accepted ({arg})."

    def retr(server: ScriptedFtpServer, arg: str) -> Reply:
        offset = int(cast(int, server.state.pop("rest", 0)))
        if norm(arg) not in files:
            return "550 Failed to open file."
        server.reply("150 Opening BINARY mode data connection.")
        server.send_data(files[norm(arg)][offset:])
        return "226 Transfer complete."

    def store(append: bool) -> Callable[[ScriptedFtpServer, str], Reply]:
        def rule(server: ScriptedFtpServer, arg: str) -> Reply:
            offset = cast(int | None, server.state.pop("rest", None))
            server.reply("150 Ok to send data.")
            data = server.receive_data()
            server.uploads.append((arg, data))
            old = files.get(norm(arg), b"")
            if append:
                files[norm(arg)] = old + data
            else:
                files[norm(arg)] = (old[:offset] if offset else b"") + data
            return "226 Transfer complete."

        return rule

    def size(_server: ScriptedFtpServer, arg: str) -> Reply:
        data = files.get(norm(arg))
        return "550 Could not get file size." if data is None else f"213 {len(data)}"

    def dele(_server: ScriptedFtpServer, arg: str) -> Reply:
        return (
            "250 Delete operation successful."
            if files.pop(norm(arg), None) is not None
            else ("550 Delete operation failed.")
        )

    def rnfr(server: ScriptedFtpServer, arg: str) -> Reply:
        if norm(arg) not in files:
            return "550 RNFR command failed."
        server.state["rnfr"] = norm(arg)
        return "350 Ready for RNTO."

    def rnto(server: ScriptedFtpServer, arg: str) -> Reply:
        source = cast(str, server.state.pop("rnfr"))
        files[norm(arg)] = files.pop(source)
        return "250 Rename successful."

    def mkd(_server: ScriptedFtpServer, arg: str) -> Reply:
        files[norm(arg) + "/.dir"] = b""
        return f'257 "{norm(arg)}" created'

    def cwd(_server: ScriptedFtpServer, arg: str) -> Reply:
        ok = norm(arg) in dirs()
        return "250 Directory successfully changed." if ok else "550 Failed to change directory."

    stamp = "20240102030405"  # every file's modification time, as MLST/MLSD/MDTM show it

    def facts(path: str) -> str | None:
        if path in files:
            return f"type=file;size={len(files[path])};modify={stamp};"
        return "type=dir;" if path in dirs() else None

    def mlst(_server: ScriptedFtpServer, arg: str) -> Reply:
        found = facts(norm(arg))
        if found is None:
            return "550 No such file or directory."
        return f"250-Listing {arg}\r\n {found} {norm(arg)}\r\n250 End"

    def mlsd(server: ScriptedFtpServer, arg: str) -> Reply:
        where = norm(arg)
        if where not in dirs():
            return "550 No such directory."
        names = {p.rpartition("/")[2] for p in [*files, *dirs()] if p != "/"}
        lines = [
            f"{found} {name}"
            for name in sorted(names)
            if name != ".dir" and (found := facts(f"{where.rstrip('/')}/{name}")) is not None
        ]
        server.reply("150 Here comes the directory listing.")
        server.send_data("".join(f"{line}\r\n" for line in lines).encode())
        return "226 Directory send OK."

    def mdtm(_server: ScriptedFtpServer, arg: str) -> Reply:
        return f"213 {stamp}" if norm(arg) in files else "550 No such file."

    def sha256(arg: str) -> str | None:
        data = files.get(norm(arg))
        return None if data is None else hashlib.sha256(data).hexdigest()

    def hash_(_server: ScriptedFtpServer, arg: str) -> Reply:
        digest = sha256(arg)
        size = len(files.get(norm(arg), b""))
        return "550 No such file." if digest is None else f"213 SHA-256 0-{size} {digest} {arg}"

    def xsha256(_server: ScriptedFtpServer, arg: str) -> Reply:
        digest = sha256(arg)
        return "550 No such file." if digest is None else f"250 {digest}"

    def mfmt(_server: ScriptedFtpServer, arg: str) -> Reply:
        when, _, path = arg.partition(" ")
        return f"213 Modify={when}; {path}" if norm(path) in files else "550 No such file."

    return {
        "MLST": mlst,
        "MLSD": mlsd,
        "MDTM": mdtm,
        "HASH": hash_,
        "XSHA256": xsha256,
        "MFMT": mfmt,
        "LIST": listing,
        "REST": rest,
        "RETR": retr,
        "STOR": store(append=False),
        "APPE": store(append=True),
        "SIZE": size,
        "DELE": dele,
        "RNFR": rnfr,
        "RNTO": rnto,
        "MKD": mkd,
        "CWD": cwd,
    }
