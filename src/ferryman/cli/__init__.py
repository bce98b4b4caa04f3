"""The ``ferryman`` command: stable exit codes, one readable line per error."""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import click

from .. import __version__
from ..errors import ExitCode, FerrymanError
from .commands import COMMANDS
from .options import GLOBAL_OPTIONS, global_options
from .output import print_error

__all__ = ["EXIT_CODE_LABELS", "cli", "exit_codes_help", "main"]

#: what ``--help`` calls each exit code (docs/cli.md has the long form)
EXIT_CODE_LABELS = {
    ExitCode.OK: "ok",
    ExitCode.FAILURE: "other failure",
    ExitCode.USAGE: "usage/config",
    ExitCode.CONNECTION: "connection/time-out",
    ExitCode.AUTHENTICATION: "authentication",
    ExitCode.TLS: "TLS/cert/host key",
    ExitCode.NOT_FOUND: "not found",
    ExitCode.TRANSFER: "transfer failed",
    ExitCode.VERIFICATION: "verification failed",
    ExitCode.LOAD: "database load/export failed",
    ExitCode.LOCKED: "job already running (locked)",
    ExitCode.PGP: "OpenPGP key/passphrase",
}


def exit_codes_help(rows: int = 4) -> str:
    """The exit codes in aligned columns, filled top to bottom (``\\b``: click keeps it)."""
    cells = [f"{int(code):>2} {label}" for code, label in EXIT_CODE_LABELS.items()]
    columns = [cells[i : i + rows] for i in range(0, len(cells), rows)]
    widths = [max(len(cell) for cell in column) for column in columns]
    lines = []
    for row in range(rows):
        parts = [
            column[row].ljust(width)
            for column, width in zip(columns, widths, strict=True)
            if row < len(column)
        ]
        lines.append("  " + "   ".join(parts).rstrip())
    return "\b\nExit codes:\n" + "\n".join(lines) + "\n"


EXIT_CODES_HELP = exit_codes_help()


#: commands imported only when used: the job runner (jinja2, SQLite state) and the
#: diagnosis would otherwise slow every transfer command's start
_LAZY = {
    "test": ("ferryman.cli.diagnose", "test_command"),
    "run": ("ferryman.cli.jobs", "run"),
    "validate": ("ferryman.cli.jobs", "validate"),
    "history": ("ferryman.cli.jobs", "history"),
    "show": ("ferryman.cli.jobs", "show"),
    "schema": ("ferryman.cli.jobs", "schema"),
    "serve": ("ferryman.cli.serve", "serve"),
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, attr = _LAZY[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    @staticmethod
    def _json_wanted(ctx: click.Context) -> bool:
        """--json was given and the command has not printed its object yet."""
        meta = ctx.meta
        return bool(meta.get("ferryman.json")) and not meta.get("ferryman.json_emitted")

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FerrymanError as err:
            print_error(err, self._json_wanted(ctx))
            ctx.exit(int(err.exit_code))
        except OSError as err:  # local disk trouble outside a backend (workdir, --log file)
            where = f" ({err.filename})" if err.filename else ""
            failure = FerrymanError(
                f"{err.strerror or err}{where}", hint="check that the path exists and is writable"
            )
            print_error(failure, self._json_wanted(ctx))  # --json prints its object even so
            ctx.exit(int(ExitCode.FAILURE))
        except KeyboardInterrupt:
            click.echo("ferryman: interrupted", err=True)
            ctx.exit(130)


@click.group(
    cls=_Group, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="ferryman")
def cli(**values: Any) -> None:
    """Move files between FTP, FTPS and SFTP servers and the local disk, unattended.

    URLs: ftp:// (plain), ftpes:// (explicit TLS, port 21), ftps:// (implicit TLS, port 990),
    sftp:// (SSH, port 22), or NAME:PATH for a connection from the connections file.

    The options below go before the command or after it: `ferryman -v get URL` is
    `ferryman get -v URL`.
    """
    global_options(click.get_current_context(), values)


for _option in GLOBAL_OPTIONS:  # each appends its parameter
    cli = _option(cli)


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console entry point."""
    try:
        cli.main(prog_name="ferryman", standalone_mode=True)
    except SystemExit as done:
        code = done.code
        if code is not None and not isinstance(code, int):
            code = int(ExitCode.USAGE)
        sys.exit(code)
    finally:
        # The process is about to end: its objects are freed as the interpreter shuts down,
        # and the cyclic collector need not walk them all once more first. That walk cost
        # 55-90 ms of every command's exit (issue 19); everything ferryman opened is closed.
        gc.freeze()
