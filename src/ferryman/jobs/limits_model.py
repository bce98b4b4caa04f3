"""Job-file values of the bandwidth keys (``segments``, ``segment_min_size``, ``bwlimit``,
``bwlimit_per_file``): checked when the file is loaded, so a bad rate is reported at its line
and column; kept as written (``10M``) and turned into numbers by :func:`limit_options`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator

from ..errors import ConfigError
from ..transfer.filters import parse_size
from ..transfer.segments import DEFAULT_SEGMENT_MIN_SIZE, MAX_SEGMENTS, parse_segments
from ..transfer.throttle import parse_rate

__all__ = ["Rate", "SegmentCount", "Size", "limit_options"]


def _checked(parse: Any) -> Any:
    def check(value: Any) -> Any:
        try:
            parse(value)
        except ConfigError as err:
            raise ValueError(f"{err.message}; {err.hint}" if err.hint else err.message) from None
        return value

    return check


def _whole_or_auto(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # coerce_numbers_to_str made a number a string
    if isinstance(value, int) and not 1 <= value <= MAX_SEGMENTS:
        raise ValueError(f"takes 1 (one stream) to {MAX_SEGMENTS} segments, or auto")
    return value


#: bytes per second: 10M, 512k, 1.5MiB
Rate = Annotated[str, AfterValidator(_checked(parse_rate))]
#: 1 to MAX_SEGMENTS, or auto
SegmentCount = Annotated[int | Literal["auto"], BeforeValidator(_whole_or_auto)]
#: bytes: 64MiB, 100M
Size = Annotated[str, AfterValidator(_checked(parse_size))]


def limit_options(
    segments: int | str = "auto",
    segment_min_size: str | None = None,
    bwlimit: str | None = None,
    bwlimit_per_file: str | None = None,
) -> dict[str, Any]:
    """The ``TransferOptions`` keywords of a step's bandwidth keys."""
    return {
        "segments": parse_segments(segments),
        "segment_min_size": (
            parse_size(segment_min_size) if segment_min_size else DEFAULT_SEGMENT_MIN_SIZE
        ),
        "bwlimit": parse_rate(bwlimit) if bwlimit else None,
        "bwlimit_per_file": parse_rate(bwlimit_per_file) if bwlimit_per_file else None,
    }
