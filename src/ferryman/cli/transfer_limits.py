"""``--segments`` and ``--bwlimit``: the options of get, put and sync that shape a transfer's
bandwidth (``transfer.segments``, ``transfer.throttle``), with their parsing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import ConfigError
from ..transfer.filters import parse_size
from ..transfer.segments import DEFAULT_SEGMENT_MIN_SIZE, MAX_SEGMENTS, parse_segments
from ..transfer.throttle import parse_rate

__all__ = ["LIMIT_OPTIONS"]

F = TypeVar("F", bound=Callable[..., Any])


def _parsed(parse: Callable[[str], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback: the value parsed, a ConfigError as the option's bad value."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(str(value))
        except ConfigError as err:
            raise click.BadParameter(
                f"{err.message}; {err.hint}" if err.hint else err.message
            ) from None

    return callback


LIMIT_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--segments",
        default="auto",
        show_default=True,
        metavar="N|auto",
        callback=_parsed(parse_segments),
        help="Copy each file of at least --segment-min-size in N parallel segments over "
        f"N connections (2-{MAX_SEGMENTS}; 1: one stream; auto: 8, or 4 for SFTP downloads, "
        "when the server's round trip is long), for links that cap each connection. "
        "Downloads to the local disk, and uploads from it to SFTP.",
    ),
    click.option(
        "--segment-min-size",
        default=f"{DEFAULT_SEGMENT_MIN_SIZE // 2**20}MiB",
        show_default=True,
        metavar="SIZE",
        callback=_parsed(parse_size),
        help="Smallest file --segments splits.",
    ),
    click.option(
        "--bwlimit",
        metavar="RATE",
        callback=_parsed(parse_rate),
        help="Most bytes per second for all transfers together (10M, 512k, 1.5MiB; "
        "k/M/G = 1000s, Ki/Mi/Gi = 1024s).",
    ),
    click.option(
        "--bwlimit-per-file",
        metavar="RATE",
        callback=_parsed(parse_rate),
        help="Most bytes per second for each transfer (file) on its own.",
    ),
]
