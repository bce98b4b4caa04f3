"""The issue's performance targets, checked against one run's results.

Ratio targets compare medians of per-round ratios (peer seconds / ferryman seconds, the
ferryman variant being the workload's reference). Memory targets compare the peak RSS of the
ferryman runs (the largest process of the tree, in MB = 10^6 bytes, as the issue states it).
The issue's sizes are the full ones (1 GiB, 2000 files, 100 000 entries): after ``--quick``
the verdicts are indicative only.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.environment import Protocol
from benchmarks.report import CaseResult
from benchmarks.workloads import WORKLOADS

__all__ = ["TARGETS", "Target", "evaluate"]


@dataclass(frozen=True)
class Target:
    """``variant`` of ``workload`` over ``protocol``: a ratio of at least ``min_ratio`` (or
    above it, when ``strict``), or a peak RSS below ``max_rss_mb``."""

    description: str
    workload: str
    protocol: Protocol
    variant: str
    min_ratio: float | None = None
    strict: bool = False
    max_rss_mb: float | None = None


def _rss(what: str, workload: str, protocol: Protocol, variant: str) -> Target:
    return Target(f"{what} peak RSS <150 MB", workload, protocol, variant, max_rss_mb=150)


def _targets() -> tuple[Target, ...]:
    found: list[Target] = []
    for workload, mirror in (
        ("small-download", "lftp mirror --parallel=8"),
        ("small-upload", "lftp mirror -R --parallel=8"),
    ):
        found += [
            Target(f"{workload} FTPS >=10x {mirror}", workload, "ftps", mirror, 10.0),
            Target(f"{workload} FTPS >=3x ftplib loop", workload, "ftps", "ftplib loop", 3.0),
            Target(f"{workload} FTP faster than {mirror}", workload, "ftp", mirror, 1.0, True),
        ]
    ftp_protocols: tuple[Protocol, ...] = ("ftp", "ftps")
    for workload in ("big-download", "big-upload"):
        for protocol in ftp_protocols:
            found.append(
                Target(f"{workload} {protocol} >=0.9x curl", workload, protocol, "curl", 0.9)
            )
            found.append(_rss(f"{workload} {protocol} ferryman", workload, protocol, "ferryman"))
    for protocol in ftp_protocols:
        for label in ("ferryman ls", "ferryman ls --json"):
            found.append(_rss(f"big-listing {protocol} {label}", "big-listing", protocol, label))
    for workload in ("sftp-big-download", "sftp-big-upload"):
        found.append(Target(f"{workload} >=1.2x OpenSSH sftp", workload, "sftp", "sftp -R 64", 1.2))
    for workload in ("sftp-small-download", "sftp-small-upload"):
        peer = "sftp -b -R 64"
        found.append(Target(f"{workload} at least as fast as {peer}", workload, "sftp", peer, 1.0))
    return tuple(found + _fsspec_targets())


def _fsspec_targets() -> list[Target]:
    """Issue 14: ferryman's filesystem ahead of every other fsspec filesystem (each at its
    default and its parallel settings), on the same server."""
    found = []
    for workload in WORKLOADS:
        if not workload.name.startswith("fs-"):
            continue
        for variant in workload.variants:
            if variant.tool == "ferryman":
                continue
            for protocol in workload.protocols:
                if protocol in variant.protocols:
                    description = f"{workload.name} {protocol} ahead of {variant.label}"
                    found.append(
                        Target(description, workload.name, protocol, variant.label, 1.0, True)
                    )
    return found


TARGETS = _targets()


def _verdict(target: Target, case: CaseResult) -> str:
    if target.max_rss_mb is not None:
        found = case.variant(target.variant)
        peak = found.peak_rss_mib if found else None
        if peak is None:
            return "not measured"
        megabytes = peak * 1024 * 1024 / 1e6
        if megabytes < target.max_rss_mb:
            return f"met: {megabytes:.0f} MB"
        return f"MISSED by {megabytes - target.max_rss_mb:.0f} MB: {megabytes:.0f} MB"
    ratio = case.ratio_median(target.variant)
    wanted = target.min_ratio or 0.0
    if ratio is None:
        peer, reference = case.variant(target.variant), case.variant(case.workload.reference)
        if peer and peer.runs and not peer.ok_runs and reference and reference.ok_runs:
            return f"no ratio: {target.variant} failed every run, ferryman did not"
        return "not measured"
    met = ratio > wanted if target.strict else ratio >= wanted
    if met:
        return f"met: {ratio:.2f}x"
    return f"MISSED: {ratio:.2f}x, {ratio / wanted:.0%} of the {wanted:g}x target"


def evaluate(cases: list[CaseResult]) -> list[tuple[Target, str]]:
    """Each target with its verdict (``met: ...``, ``MISSED ...`` or ``not measured``)."""
    by_key = {(c.workload.name, c.protocol): c for c in cases if not c.skipped}
    verdicts = []
    for target in TARGETS:
        case = by_key.get((target.workload, target.protocol))
        if case is not None:
            verdicts.append((target, _verdict(target, case)))
    return verdicts
