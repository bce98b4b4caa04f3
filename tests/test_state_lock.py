"""The per-job lock: exclusive across processes and threads, free again after a crash."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ferryman.errors import ConfigError, ExitCode, JobLockedError
from ferryman.state import job_lock, lock_path, safe_job_name

_HOLD_LOCK = """
import sys
from pathlib import Path
from ferryman.state import job_lock

with job_lock(Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes stdin, or kills us
print("released", flush=True)
"""


class Holder:
    """A child process holding a job's lock until told to let go (or killed)."""

    def __init__(self, state: Path, job: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(state), job],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line == "locked\n", f"the child did not take the lock: {line!r}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        rest = self.process.stdout.read()
        self.process.wait()
        self.process.stdout.close()
        return rest

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        self.process.wait()
        self.process.stdout.close()


def test_a_second_run_of_a_job_is_refused_while_another_process_holds_it(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.db"
    holder = Holder(state, "nightly")
    try:
        with pytest.raises(JobLockedError) as caught, job_lock(state, "nightly"):
            pytest.fail("two runs of one job at once")
        error = caught.value
        assert error.exit_code == ExitCode.LOCKED and int(error.exit_code) == 10
        assert f"process {holder.pid} on {socket.gethostname()}" in error.message
        assert "'nightly' is already running" in error.message and "since 20" in error.message
        assert error.hint is not None and f"kill {holder.pid}" in error.hint
        assert "wait" in error.hint
        with job_lock(state, "other-job"):  # other jobs are not held up
            pass
    finally:
        assert holder.release() == "released\n"
    with job_lock(state, "nightly") as lock:  # released by the holder: free
        assert lock.owner.pid == os.getpid()


def test_the_lock_of_a_killed_process_is_free_again(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    holder = Holder(state, "nightly")
    holder.kill()
    assert holder.process.returncode == -signal.SIGKILL
    stale = json.loads(lock_path(state, "nightly").read_text())  # it never cleaned up
    assert stale["pid"] == holder.pid
    with job_lock(state, "nightly") as lock:
        assert lock.owner.pid == os.getpid()
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_the_lock_file_names_its_holder(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with job_lock(state, "nightly") as lock:
        assert lock.path == tmp_path / "state.db.locks" / "nightly.lock"
        held = json.loads(lock.path.read_text())
        assert held == lock.owner.to_dict()
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        assert held["job"] == "nightly"
    assert lock.path.read_text() == ""  # nobody holds it
    assert lock.path.exists()  # kept on purpose: see ferryman.state.lock


def test_the_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with job_lock(state, "nightly"):
        with pytest.raises(JobLockedError), job_lock(state, "nightly"):
            pytest.fail("nested lock taken")
    with job_lock(state, "nightly"):
        pass


def test_of_two_threads_exactly_one_gets_the_lock(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    both_tried = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            with job_lock(state, "nightly"):
                outcomes.append("locked")
                both_tried.wait()  # hold it until the other thread has tried
        except JobLockedError:
            outcomes.append("refused")
            both_tried.wait()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["locked", "refused"]


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/abs/path", "a/b", "..", ".hidden", "nul\0byte", "x" * 300, "zürich"],
)
def test_job_names_are_sanitized_for_file_names(tmp_path: Path, name: str) -> None:
    state = tmp_path / "state.db"
    path = lock_path(state, name)
    assert path.parent == tmp_path / "state.db.locks"
    assert path.name == safe_job_name(name) + ".lock"
    assert not path.name.startswith(".") and len(path.name) < 120
    assert set(path.stem) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    with job_lock(state, name) as lock:
        assert lock.path == path and path.exists()


def test_different_names_never_share_a_lock(tmp_path: Path) -> None:
    names = ["a/b", "a_b", "a b", "a.b", "A_B", "x" * 300, "x" * 301]
    assert len({safe_job_name(n) for n in names}) == len(names)
    assert safe_job_name("nightly-orders_2") == "nightly-orders_2"  # plain names stay readable
    state = tmp_path / "state.db"
    with job_lock(state, "a/b"), job_lock(state, "a_b"):
        pass


def test_a_job_without_a_name_cannot_be_locked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError), job_lock(tmp_path / "state.db", ""):
        pytest.fail("locked a nameless job")
