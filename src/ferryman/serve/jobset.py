"""The job files ``serve`` runs: found in directories and given files, each validated.

A file that does not validate is reported (every problem at file:line:column, as ``ferryman
validate`` shows it) and left out; the others run. Two files of one job name: the second is
reported and left out (history, ledger and lock are per job name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import FerrymanError
from ..jobs.loader import LoadedJob, load_job

__all__ = ["JobEntry", "Problem", "find_job_files", "load_jobs", "signature"]

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class JobEntry:
    loaded: LoadedJob
    stamp: tuple[int, int]  #: (mtime_ns, size) of the file when it was read

    @property
    def name(self) -> str:
        return self.loaded.job.name

    @property
    def path(self) -> Path:
        return self.loaded.path


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str  #: may span lines: one problem per line, each at file:line:column
    hint: str | None = None


def find_job_files(sources: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Job files: each ``*.yaml``/``*.yml`` of a directory (not below it), and given files."""
    files: list[Path] = []
    problems: list[Problem] = []
    for source in sources:
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        elif source.is_file():
            files.append(source)
        else:
            problems.append(Problem(source, f"{source}: no such job file or directory"))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, problems


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, -1)
    return (info.st_mtime_ns, info.st_size)


def signature(sources: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """What changes when a job file is added, removed or edited (for reloading on change)."""
    files, _ = find_job_files(sources)
    return tuple((str(p), *_stamp(p)) for p in files)


def load_jobs(sources: Iterable[Path]) -> tuple[dict[str, JobEntry], list[Problem]]:
    """Every valid job of ``sources`` by name, and the problems of the others."""
    files, problems = find_job_files(sources)
    jobs: dict[str, JobEntry] = {}
    for path in files:
        stamp = _stamp(path)
        try:
            loaded = load_job(path)
        except FerrymanError as err:
            problems.append(Problem(path, err.message, err.hint))
            continue
        except (OSError, ValueError) as err:
            problems.append(Problem(path, f"{path}: {err}"))
            continue
        name = loaded.job.name
        if name in jobs:
            problems.append(
                Problem(
                    path,
                    f"{path}: job name {name!r} is already used by {jobs[name].path}; left out",
                    "give each job file its own name: (history, ledger and lock are per name)",
                )
            )
            continue
        jobs[name] = JobEntry(loaded, stamp)
    return jobs, problems
