"""The table of the lat-* workloads: per link, medians, ratios, round trips per file and the
relay's CPU (so that a figure is known not to be limited by the relay itself)."""

from __future__ import annotations

import statistics

from benchmarks.measure import Measurement
from benchmarks.report import CaseResult, VariantResult

__all__ = ["latency_table", "round_trips_per_file"]


def round_trips_per_file(run: Measurement, files: int) -> float | None:
    """(turns + connections) / files: each connection's handshake is one round trip, each
    turn (a request after a response) another."""
    if run.relay_turns is None or run.relay_connections is None:
        return None
    return (run.relay_turns + run.relay_connections) / max(1, files)


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _seconds(variant: VariantResult) -> str:
    median = variant.median_seconds
    if median is not None:
        return f"{median:.3f}"
    timeouts = [run for run in variant.runs if run.status == "timeout"]
    if timeouts:
        return f"> {max(run.seconds for run in timeouts):.0f} (timeout)"
    return "-"


def latency_table(cases: list[CaseResult]) -> str:
    """Markdown: one row per variant, case after case (ratio = tool s / ferryman s)."""
    head = (
        "| workload | proto | link | tool | median s | throughput | ratio vs ref "
        "| round trips/file | conns | relay CPU s | CPU s | status |"
    )
    lines = [head, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case in cases:
        name, link = case.workload.name, case.link
        if case.skipped:
            cells = " - |" * 8
            lines.append(f"| {name} | {case.protocol} | {link} |{cells} {case.skipped} |")
            continue
        files = case.workload.files(case.sizes)
        for variant in case.variants:
            label = variant.label
            if label == case.workload.reference:
                label = f"**{label}** (ref)"
            ok = variant.ok_runs
            rate = case.throughput(variant.label)
            trips = _median([round_trips_per_file(run, files) for run in ok])
            conns = _median([run.relay_connections for run in ok])
            relay_cpu = _median([run.relay_cpu_seconds for run in ok])
            status = variant.unavailable if variant.unavailable else variant.status
            lines.append(
                f"| {name} | {case.protocol} | {link} | {label} | {_seconds(variant)} "
                f"| {f'{rate:,.1f} {case.workload.unit}' if rate else '-'} "
                f"| {_fmt(case.ratio_median(variant.label))} | {_fmt(trips, 1)} "
                f"| {_fmt(conns, 0)} | {_fmt(relay_cpu)} | {_fmt(variant.median_cpu_seconds)} "
                f"| {status} |"
            )
    return "\n".join(lines)
