"""Results: per-variant summaries (medians, throughput, peak memory, ratios), the table, JSON."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from benchmarks.environment import Protocol, Sizes
from benchmarks.measure import Measurement
from benchmarks.workloads import Workload

__all__ = ["CaseResult", "VariantResult", "failure_notes", "markdown_table", "results_to_dict"]


@dataclass
class VariantResult:
    """Every round of one variant in one case; ``runs[i]`` is round ``i``."""

    label: str
    tool: str
    runs: list[Measurement] = field(default_factory=list)
    unavailable: str | None = None

    @property
    def ok_runs(self) -> list[Measurement]:
        return [run for run in self.runs if run.ok]

    @property
    def median_seconds(self) -> float | None:
        ok = self.ok_runs
        return statistics.median(run.seconds for run in ok) if ok else None

    @property
    def median_cpu_seconds(self) -> float | None:
        ok = self.ok_runs
        return statistics.median(run.cpu_seconds for run in ok) if ok else None

    @property
    def median_server_cpu_seconds(self) -> float | None:
        known = [
            run.server_cpu_seconds for run in self.ok_runs if run.server_cpu_seconds is not None
        ]
        return statistics.median(known) if known else None

    @property
    def peak_rss_mib(self) -> float | None:
        ok = self.ok_runs
        return max(run.max_rss_kib for run in ok) / 1024 if ok else None

    @property
    def status(self) -> str:
        if self.unavailable:
            return "unavailable"
        bad = [run for run in self.runs if not run.ok]
        if not bad:
            return "ok"
        kinds = sorted({run.status for run in bad})
        return f"{'/'.join(kinds)} {len(bad)}/{len(self.runs)}"


@dataclass
class CaseResult:
    """One workload over one protocol."""

    workload: Workload
    protocol: Protocol
    sizes: Sizes
    variants: list[VariantResult] = field(default_factory=list)
    skipped: str | None = None
    link: str = ""  #: behind the latency relay: its delay (and cap), else empty

    def variant(self, label: str) -> VariantResult | None:
        return next((v for v in self.variants if v.label == label), None)

    def ratios(self, label: str) -> list[float | None]:
        """Per round: this variant's seconds / the reference's seconds (both must be ok)."""
        mine, reference = self.variant(label), self.variant(self.workload.reference)
        if mine is None or reference is None:
            return []
        return [
            a.seconds / b.seconds if a.ok and b.ok and b.seconds > 0 else None
            for a, b in zip(mine.runs, reference.runs, strict=False)
        ]

    def ratio_median(self, label: str) -> float | None:
        values = [r for r in self.ratios(label) if r is not None]
        return statistics.median(values) if values else None

    def throughput(self, label: str) -> float | None:
        found = self.variant(label)
        median = found.median_seconds if found else None
        return self.workload.amount(self.sizes) / median if median else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(cases: list[CaseResult]) -> str:
    """The results as a Markdown table (ratios: variant seconds / reference seconds)."""
    head = (
        "| workload | proto | tool | median s | throughput | CPU s | server CPU s | peak RSS MiB "
        "| ratio vs ref (median) | ratio per round | status |"
    )
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for case in cases:
        name = case.workload.name
        if case.skipped:
            cells = " - |" * 8
            lines.append(f"| {name} | {case.protocol} |{cells} {case.skipped} |")
            continue
        for variant in case.variants:
            label = variant.label
            if label == case.workload.reference:
                label = f"**{label}** (ref)"
            rate = case.throughput(variant.label)
            rate_text = f"{rate:,.0f} {case.workload.unit}" if rate else "-"
            rounds = " ".join(_fmt(r) for r in case.ratios(variant.label)) or "-"
            status = variant.unavailable if variant.unavailable else variant.status
            lines.append(
                f"| {name} | {case.protocol} | {label} | {_fmt(variant.median_seconds, 3)} "
                f"| {rate_text} | {_fmt(variant.median_cpu_seconds)} "
                f"| {_fmt(variant.median_server_cpu_seconds)} "
                f"| {_fmt(variant.peak_rss_mib, 1)} "
                f"| {_fmt(case.ratio_median(variant.label))} | {rounds} | {status} |"
            )
    return "\n".join(lines)


def failure_notes(cases: list[CaseResult]) -> list[str]:
    """One line per failed, timed-out or wrong run, with the tail of what it said."""
    notes = []
    for case in cases:
        for variant in case.variants:
            for index, run in enumerate(variant.runs):
                if not run.ok:
                    detail = " ".join(run.detail.split())[-400:]
                    notes.append(
                        f"{case.workload.name} {case.protocol} {variant.label} round {index + 1}: "
                        f"{run.status} (exit {run.exit_code}): {detail}"
                    )
    return notes


def results_to_dict(cases: list[CaseResult]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for case in cases:
        entry: dict[str, object] = {
            "workload": case.workload.name,
            "protocol": case.protocol,
            "link": case.link,
            "measures": case.workload.measures,
            "reference": case.workload.reference,
            "unit": case.workload.unit,
            "amount_per_run": case.workload.amount(case.sizes),
            "skipped": case.skipped,
            "variants": [],
        }
        for variant in case.variants:
            entry["variants"].append(  # type: ignore[attr-defined]
                {
                    "label": variant.label,
                    "tool": variant.tool,
                    "status": variant.status,
                    "unavailable": variant.unavailable,
                    "median_seconds": variant.median_seconds,
                    "throughput": case.throughput(variant.label),
                    "median_cpu_seconds": variant.median_cpu_seconds,
                    "median_server_cpu_seconds": variant.median_server_cpu_seconds,
                    "peak_rss_mib": variant.peak_rss_mib,
                    "ratio_per_round": case.ratios(variant.label),
                    "ratio_median": case.ratio_median(variant.label),
                    "runs": [run.to_dict() for run in variant.runs],
                }
            )
        out.append(entry)
    return out
