"""Benchmark ferryman against curl, lftp, stdlib ftplib and OpenSSH sftp on loopback servers.

    python benchmarks/run.py [--quick] [--only WORKLOAD...] [--rounds N] [--json FILE]
    python benchmarks/run.py --latency 0 25 75 [--only lat-small-get ...] [--small-count N]

Starts vsftpd (plain FTP, and explicit FTPS with require_ssl_reuse) and, for the sftp-*
workloads, OpenSSH sshd on free loopback ports; generates the data; runs every workload for
ferryman and its peers alternately, round after round; checks each result; prints a table
of medians, throughput, peak memory and ratios, and the issue's targets. With ``--latency``,
only the lat-* workloads run, once per one-way delay, behind benchmarks/relay.py (see
benchmarks/latency.py). Needs root and what scripts/install-test-servers.sh installs. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers.vsftpd import TEST_PASSWORD, VsftpdUnavailableError

from benchmarks.environment import (
    FULL,
    QUICK,
    BenchDirs,
    Endpoint,
    Protocol,
    Sizes,
    make_base,
    note_deletion,
    preflight,
    prepare_data,
    sftp_pending_reason,
    start_servers,
    wait_after_deletions,
)
from benchmarks.fsspec_peers import FSSPEC_SCRIPT
from benchmarks.latency import Link, RelayProcess, latency_servers
from benchmarks.latency_report import latency_table
from benchmarks.latency_workloads import LATENCY_WORKLOADS
from benchmarks.machine import machine_info
from benchmarks.measure import (
    Measurement,
    ServerCpu,
    rss_floor_kib,
    run_measured,
    wrapper_name,
)
from benchmarks.peers import FTPLIB_SCRIPT, Ferryman, Task, ToolContext, Variant
from benchmarks.report import (
    CaseResult,
    VariantResult,
    failure_notes,
    markdown_table,
    results_to_dict,
)
from benchmarks.targets import evaluate
from benchmarks.workloads import WORKLOADS, Workload, prepare_run, workload_names

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 round (<2 min)")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="WORKLOAD",
        choices=[*_ALL_NAMES, CSV_LOAD],
        help=f"only these: {', '.join([*_ALL_NAMES, CSV_LOAD])}",
    )
    parser.add_argument(
        "--protocol",
        nargs="+",
        choices=PROTOCOLS,
        help="only these (ftps-noreuse: explicit FTPS without require_ssl_reuse, fs-* only)",
    )
    parser.add_argument("--rounds", type=int, help="rounds per workload (default 3, quick 1)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("--workdir", type=Path, help="keep data here (reused between runs)")
    parser.add_argument("--timeout", type=float, help="per tool run, s (default 900, quick 120)")
    parser.add_argument(
        "--latency",
        nargs="+",
        type=float,
        metavar="MS",
        help="run the lat-* workloads behind a relay with these one-way delays (0 25 75)",
    )
    parser.add_argument("--small-count", type=int, metavar="N", help="small files per run")
    parser.add_argument(
        "--variants",
        nargs="+",
        metavar="REGEX",
        help="only variants whose label matches one of these (the reference always runs)",
    )
    return parser


_ALL_NAMES = [*workload_names(), *(w.name for w in LATENCY_WORKLOADS)]
CSV_LOAD = "csv-load"
PROTOCOLS = ["ftp", "ftps", "ftps-noreuse", "sftp"]


def _csv_load(quick: bool, rounds: int) -> None:
    """The database workload: ferryman's load_csv/export_query against a stdlib csv +
    executemany loop (benchmarks/load_csv.py, in-process on both sides: no network)."""
    rows = 100_000 if quick else 1_000_000
    script = Path(__file__).resolve().parent / "load_csv.py"
    _say(f"{CSV_LOAD}: {rows:,} rows, {rounds} round(s)")
    done = subprocess.run(
        [sys.executable, str(script), "--rows", str(rows), "--rounds", str(rounds)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"\n## {CSV_LOAD}\n\n{done.stdout.rstrip()}")
    if done.returncode != 0:
        print(f"{CSV_LOAD} failed: {done.stderr.strip()[-500:]}")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


class Runner:
    def __init__(self, dirs: BenchDirs, ctx: ToolContext, sizes: Sizes, timeout: float) -> None:
        self.dirs, self.ctx, self.sizes, self.timeout = dirs, ctx, sizes, timeout
        self.done = 0
        self.total = 0
        self._meters: dict[int, ServerCpu | None] = {}
        self.relay: RelayProcess | None = None  #: behind the latency relay: counted per run

    def _server_meter(self, endpoint: Endpoint) -> ServerCpu | None:
        pid = endpoint.server_pid
        if pid is None:
            return None
        if pid not in self._meters:
            self._meters[pid] = ServerCpu.attach(pid)
        return self._meters[pid]

    def detach_meters(self) -> None:
        for meter in self._meters.values():
            if meter is not None:
                meter.detach()
        self._meters.clear()

    def one(
        self, workload: Workload, endpoint: Endpoint, variant: Variant, round_index: int
    ) -> Measurement:
        run_id = f"{workload.name}-{endpoint.protocol}-{_slug(variant.label)}-r{round_index + 1}"
        prepared = prepare_run(workload, endpoint, self.dirs, self.sizes, run_id)
        invocation = variant.build(prepared.task, self.ctx)
        os.sync()  # the previous run's written data goes to disk before this one starts
        meter = self._server_meter(endpoint)
        server_before = meter.seconds() if meter is not None else None
        stdout = self.dirs.logs / f"{run_id}.out"
        relay_before = self.relay.counts() if self.relay is not None else None
        result = run_measured(
            invocation.argv,
            env=invocation.env,
            cwd=self.dirs.home,
            stdout_path=stdout,
            stderr_path=self.dirs.logs / f"{run_id}.err",
            timeout=self.timeout,
        )
        if self.relay is not None and relay_before is not None:
            time.sleep(0.05 + 2 * self.relay.link.delay_ms / 1000)  # the last bytes relayed
            moved = self.relay.counts() - relay_before
            result.relay_cpu_seconds = moved.cpu_seconds
            result.relay_connections = moved.connections
            result.relay_turns = moved.turns
        if meter is not None and server_before is not None:
            server_after = meter.seconds()
            if server_after is not None:
                result.server_cpu_seconds = server_after - server_before
        if result.ok:
            problem = prepared.check(invocation, stdout)
            if problem:
                result.status, result.detail = "wrong", problem
        prepared.cleanup()
        self.done += 1
        relayed = ""
        if result.relay_cpu_seconds is not None:
            trips = ((result.relay_turns or 0) + (result.relay_connections or 0)) / max(
                1, workload.files(self.sizes)
            )
            relayed = (
                f", relay CPU {result.relay_cpu_seconds:.2f} s, {result.relay_connections} "
                f"conn, {trips:.1f} round trips/file"
            )
        _say(
            f"[{self.done}/{self.total}] {workload.name} {endpoint.protocol} {variant.label} "
            f"round {round_index + 1}: {result.seconds:.3f} s, CPU {result.cpu_seconds:.2f} s, "
            f"{result.max_rss_kib / 1024:.1f} MiB{relayed}, {result.status}"
            + (f" ({' '.join(result.detail.split())[-200:]})" if result.detail else "")
        )
        return result

    def case(
        self,
        workload: Workload,
        protocol: Protocol,
        endpoint: Endpoint,
        rounds: int,
        link: str = "",
    ) -> CaseResult:
        case = CaseResult(workload, protocol, self.sizes, link=link)
        runnable: list[Variant] = []
        for variant in _variants(workload, protocol):
            reason = variant.unavailable()
            case.variants.append(VariantResult(variant.label, variant.tool, unavailable=reason))
            if reason is None:
                runnable.append(variant)
        by_label = {v.label: v for v in case.variants}
        for round_index in range(rounds):
            shift = round_index % max(1, len(runnable))
            for variant in runnable[shift:] + runnable[:shift]:  # alternate; rotate the order
                result = self.one(workload, endpoint, variant, round_index)
                by_label[variant.label].runs.append(result)
        return case


#: ``--variants``: label patterns; None runs every variant
_LABEL_PATTERNS: list[re.Pattern[str]] | None = None


def _variants(workload: Workload, protocol: Protocol) -> list[Variant]:
    return [
        v
        for v in workload.variants
        if protocol in v.protocols
        and workload.kind in v.kinds
        and (
            _LABEL_PATTERNS is None
            or v.label == workload.reference
            or any(p.search(v.label) for p in _LABEL_PATTERNS)
        )
    ]


def _warm_up(ctx: ToolContext, endpoints: dict[str, Endpoint]) -> None:
    """Fill the byte-code cache and the page cache: one unmeasured listing per server."""
    for endpoint in endpoints.values():
        task = Task("list", endpoint, "data", ctx.dirs.local, f"warm-up-{endpoint.protocol}")
        invocation = Ferryman("warm-up").build(task, ctx)
        subprocess.run(invocation.argv, env=invocation.env, capture_output=True, check=False)
    for argv in (
        [ctx.python, str(FTPLIB_SCRIPT), "--help"],
        [ctx.python, str(FSSPEC_SCRIPT), "--warm-up"],  # imports every fsspec implementation
    ):
        subprocess.run(argv, env=ctx.env(python=True), capture_output=True, check=False)


def _print_summary(cases: list[CaseResult], sizes: Sizes, quick: bool, rounds: int) -> None:
    print()
    print(
        f"sizes: big file {sizes.big_bytes // 2**20} MiB, {sizes.small_count} x "
        f"{sizes.small_bytes // 1024} KiB files, {sizes.listing_count} entries; "
        f"rounds {rounds}{' (--quick)' if quick else ''}"
    )
    print("ratio = tool seconds / reference (ferryman) seconds, same round; >1: ferryman faster")
    print()
    latency = any(c.link for c in cases)
    print(latency_table(cases) if latency else markdown_table(cases))
    notes = failure_notes(cases)
    if notes:
        print("\nfailed runs:")
        for note in notes:
            print(f"- {note}")
    verdicts = evaluate(cases)
    if verdicts:
        print(f"\ntargets{' (quick sizes: indicative only)' if quick else ''}:")
        for target, verdict in verdicts:
            print(f"- {target.description}: {verdict}")


def _runnable(cases_wanted: list[tuple[Workload, Protocol]], protocols: Iterable[str]) -> int:
    wanted = set(protocols)
    return sum(
        len([v for v in _variants(w, p) if v.unavailable() is None])
        for w, p in cases_wanted
        if p in wanted
    )


def _run_loopback(
    runner: Runner,
    cases_wanted: list[tuple[Workload, Protocol]],
    rounds: int,
    problems: dict[str, str],
    protocols: set[Protocol],
) -> list[CaseResult]:
    cases: list[CaseResult] = []
    with start_servers(runner.dirs, protocols, problems) as endpoints:
        _warm_up(runner.ctx, endpoints)
        runner.total = rounds * _runnable(cases_wanted, endpoints)
        for workload, protocol in cases_wanted:
            if protocol not in endpoints:
                reason = problems.get(protocol, "server not started")
                cases.append(CaseResult(workload, protocol, runner.sizes, skipped=reason))
                continue
            cases.append(runner.case(workload, protocol, endpoints[protocol], rounds))
        runner.detach_meters()
    return cases


def _run_link(
    runner: Runner,
    group: list[tuple[Workload, Protocol]],
    link: Link,
    rounds: int,
    problems: dict[str, str],
    protocols: set[Protocol],
) -> list[CaseResult]:
    cases: list[CaseResult] = []
    with latency_servers(runner.dirs, protocols, problems, link) as (endpoints, relay):
        _warm_up(runner.ctx, endpoints)
        runner.relay = relay
        try:
            for workload, protocol in group:
                if protocol not in endpoints:
                    reason = problems.get(protocol, "server not started")
                    cases.append(CaseResult(workload, protocol, runner.sizes, reason, link.label))
                    continue
                endpoint = endpoints[protocol]
                cases.append(runner.case(workload, protocol, endpoint, rounds, link.label))
        finally:
            runner.relay = None
            runner.detach_meters()
    return cases


def _run_latency(
    runner: Runner,
    cases_wanted: list[tuple[Workload, Protocol]],
    delays: list[float],
    rounds: int,
    problems: dict[str, str],
) -> list[CaseResult]:
    """Every case once per delay (and per cap), each link with fresh servers and relay."""
    cases: list[CaseResult] = []
    rates = sorted({w.rate or 0.0 for w, _p in cases_wanted})
    runner.total = len(delays) * rounds * _runnable(cases_wanted, PROTOCOLS)
    for delay in delays:
        for rate in rates:
            link = Link(delay, rate or None)
            group = [(w, p) for w, p in cases_wanted if (w.rate or 0.0) == rate]
            protocols: set[Protocol] = {p for _w, p in group if p not in problems}
            _say(f"link: {link.label}")
            try:
                cases += _run_link(runner, group, link, rounds, problems, protocols)
            except RuntimeError as exc:  # the relay did not start, no PASV ports were free
                _say(f"{link.label}: {exc}")
                cases += [CaseResult(w, p, runner.sizes, str(exc), link.label) for w, p in group]
    return cases


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    global _LABEL_PATTERNS  # noqa: PLW0603 (one run per process: set once from argv)
    try:
        _LABEL_PATTERNS = [re.compile(text) for text in args.variants] if args.variants else None
    except re.error as exc:
        _say(f"--variants: {exc.pattern!r} is not a regular expression: {exc}")
        return 2
    sizes = QUICK if args.quick else FULL
    if args.small_count:
        sizes = replace(sizes, small_count=args.small_count)
    rounds = args.rounds or (1 if args.quick else 3)
    timeout = args.timeout or (120.0 if args.quick else 900.0)
    every = (*WORKLOADS, *LATENCY_WORKLOADS)
    workloads = [
        w
        for w in every
        if (not args.only or w.name in args.only) and w.latency == bool(args.latency)
    ]
    wanted = set(args.protocol or PROTOCOLS)
    cases_wanted = [(w, p) for w in workloads for p in w.protocols if p in wanted]
    if missing := preflight(p for _w, p in cases_wanted):
        _say(missing)
        return 2
    if (not args.only and not args.latency) or (args.only and CSV_LOAD in args.only):
        _csv_load(args.quick, rounds)
    if args.only and not workloads:
        return 0
    problems: dict[str, str] = {}
    if reason := sftp_pending_reason():
        problems["sftp"] = reason
    protocols: set[Protocol] = {p for _w, p in cases_wanted if p not in problems}
    machine = machine_info()
    _say(f"machine: {json.dumps(machine)}")
    base, temporary = make_base(args.workdir)
    cases: list[CaseResult] = []
    dirs: BenchDirs | None = None
    try:
        dirs = BenchDirs.create(base)
        dirs.empty_trash()  # left by an interrupted run
        machine["rss_wrapper"] = wrapper_name()
        machine["rss_floor_mib"] = round(rss_floor_kib(dirs.logs) / 1024, 1)
        _say(f"peak RSS by {machine['rss_wrapper']}, floor {machine['rss_floor_mib']} MiB")
        started = time.monotonic()
        prepare_data(dirs, sizes, {w.data_set for w, p in cases_wanted if p in protocols})
        _say(f"data ready in {base} ({time.monotonic() - started:.1f} s)")
        if any(w.dataset == "small" for w, _p in cases_wanted):  # only creating many files
            wait_after_deletions(_say)  # is slowed down by recent deletions
        ctx = ToolContext(dirs, TEST_PASSWORD)
        runner = Runner(dirs, ctx, sizes, timeout)
        if args.latency:
            cases = _run_latency(runner, cases_wanted, args.latency, rounds, problems)
        else:
            cases = _run_loopback(runner, cases_wanted, rounds, problems, protocols)
    except VsftpdUnavailableError as exc:
        _say(f"benchmark: vsftpd unavailable: {exc}")
        return 2
    finally:
        if temporary:
            shutil.rmtree(base, ignore_errors=True)
            note_deletion()
        elif dirs is not None:
            dirs.empty_trash()
    _print_summary(cases, sizes, args.quick, rounds)
    if args.json:
        document = {
            "machine": machine,
            "settings": {"quick": args.quick, "rounds": rounds, "sizes": asdict(sizes)},
            "cases": results_to_dict(cases),
            "targets": {t.description: verdict for t, verdict in evaluate(cases)},
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    ferryman_failed = any(
        not run.ok for c in cases for v in c.variants if v.tool == "ferryman" for run in v.runs
    )
    return 1 if ferryman_failed else 0


if __name__ == "__main__":
    sys.exit(main())
