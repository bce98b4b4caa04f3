"""The option tables of docs/cli.md, generated from the click commands (scripts/gen_docs.py)."""

from __future__ import annotations

import click

from .options import common_options

__all__ = ["common_options_table", "global_options_table"]


def _names(option: click.Option) -> str:
    if option.secondary_opts:  # --passive/--active
        return " / ".join(f"`{name}`" for name in [*option.opts, *option.secondary_opts])
    names = [f"`{name}`" for name in option.opts]
    if option.metavar:
        names[-1] = names[-1][:-1] + f" {option.metavar}`"
    return ", ".join(names)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def common_options_table() -> str:
    """Markdown: the options every remote command takes, as ``--help`` describes them."""

    @click.command()
    @common_options
    def probe(**_: object) -> None:
        """Only its options are read."""

    rows = ["| option | meaning |", "|---|---|"]
    for param in probe.params:
        if isinstance(param, click.Option):
            rows.append(_row([_names(param), param.help or ""]))
    return "\n".join(rows) + "\n"


def global_options_table() -> str:
    """Markdown: the options that may come before the command, and the commands taking each."""
    from . import cli  # noqa: PLC0415 - the package imports this module's neighbours first

    ctx = click.Context(cli)
    commands = [c for name in cli.list_commands(ctx) if (c := cli.get_command(ctx, name))]
    rows = ["| option | meaning | taken by |", "|---|---|---|"]
    for param in cli.params:
        if not isinstance(param, click.Option) or param.name in ("help", "version"):
            continue
        takers = [f"`{c.name}`" for c in commands if param.name in {p.name for p in c.params}]
        rows.append(_row([_names(param), param.help or "", ", ".join(takers)]))
    return "\n".join(rows) + "\n"
