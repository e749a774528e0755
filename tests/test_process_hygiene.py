"""Process hygiene (issue 16): a SIGKILLed ``dse`` leaves none of its worker processes behind,
and the same command afterwards finishes the run exactly: a sweep resumes from its manifest,
an optuna study's trials of killed workers are failed and retried, and the study ends with
exactly the requested COMPLETE trials."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from dse.export import read_results
from dse.lifeline import die_with_parent
from tests.test_distributed import POSTGRES
from tests.test_resume import chunks_done, command
from tests.test_sweep import SMALL

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads process trees from /proc"
)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                parents.setdefault(stat[0], []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    return {pid for pid in pids if (stat := _stat(pid)) is not None and stat[1] != "Z"}


def wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


def test_die_with_parent_exits_when_the_parent_is_already_gone() -> None:
    code = "from dse.lifeline import die_with_parent; die_with_parent(1); print('alive')"
    parent = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert parent.returncode == 1 and "alive" not in parent.stdout
    die_with_parent()  # this process's parent is alive: nothing happens


@pytest.mark.parametrize("parallel", [["--jobs", "2"], ["--workers", "2"]], ids=["jobs", "dask"])
def test_killed_parallel_sweep_leaves_no_process_and_resumes_exactly(
    small: Path, tmp_path: Path, parallel: list[str]
) -> None:
    whole = tmp_path / "whole.parquet"
    subprocess.run(command(small, whole), check=True)
    out = tmp_path / "out.parquet"
    proc = subprocess.Popen(command(small, out, *parallel), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while chunks_done(out) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    workers = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 3 <= chunks_done(out) < 120, "the sweep should be stopped mid-way"
    assert len(workers) >= 2, "the sweep should have started its worker processes"
    assert not wait_gone(workers, 5.0), "worker processes outlived the killed sweep"
    subprocess.run(command(small, out, *parallel), check=True)
    pd.testing.assert_frame_equal(read_results(whole)[0], read_results(out)[0])
    assert not out.with_name("out.parquet.parts").exists()


def test_killed_cross_validation_leaves_no_worker_behind() -> None:
    """``dse validate --cross-validate`` predicts the calibration grid on a process pool; killing
    the command (SIGKILL: no cleanup runs) takes its workers with it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dse", "validate", "--cross-validate", "family"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        workers = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(workers) >= 2, "the cross-validation should have started its worker processes"
    assert not wait_gone(workers, 5.0), "worker processes outlived the killed cross-validation"


STUDIES = [
    "sqlite",
    "journal",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(
            not POSTGRES, reason="no PostgreSQL server (DSE_TEST_POSTGRES_URL is unset)"
        ),
    ),
]


@functools.cache
def _storage(url: str) -> object:
    """One storage per URL: opening a PostgreSQL storage takes long enough that a search could
    finish between two polls if every poll opened its own."""
    from dse.search.shared_study import open_storage

    return open_storage(url)


def study_counts(url: str, name: str) -> dict[str, int]:
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=_storage(url))
    except KeyError:
        return {}
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


EVALS = 40  # enough that the search cannot finish between the third COMPLETE trial and the kill


@pytest.mark.parametrize("kind", STUDIES)
def test_killed_optuna_workers_trials_are_retried_to_the_exact_total(
    small: Path, tmp_path: Path, kind: str
) -> None:
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'study.db'}",
        "journal": f"journal://{tmp_path / 'study.log'}",
    }.get(kind, str(POSTGRES))
    name = f"killed-{uuid.uuid4().hex[:8]}"
    search = [sys.executable, "-m", "dse", "search", str(small), "--workload", "llama3.1-70b",
              "--engine", "optuna", "--storage", url, "--study", name, "--evals", str(EVALS),
              "--pop-size", "8", "--batch-size", "2", "--workers", "2",
              "--out", str(tmp_path / "out.csv"), "--quiet"]  # fmt: skip
    env = {**os.environ, "DSE_HEARTBEAT_S": "1", "DSE_GRACE_S": "3"}
    proc = subprocess.Popen(search, start_new_session=True, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while study_counts(url, name).get("COMPLETE", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    group = descendants(proc.pid) | {proc.pid}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not wait_gone(group, 5.0)
    killed = study_counts(url, name)
    assert killed.get("COMPLETE", 0) < EVALS, "the search should be stopped mid-way"
    rerun = subprocess.run(search, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    final = study_counts(url, name)
    assert final.get("COMPLETE") == EVALS
    assert not final.get("RUNNING") and not final.get("WAITING")
    assert len(read_results(tmp_path / "out.csv")[0]) == EVALS


def test_a_zombie_worker_counts_as_dead() -> None:
    """A killed worker nobody has reaped yet (a container's init may never reap it) must not
    keep its trials RUNNING: dse's liveness check treats a zombie as gone."""
    from dse.search.shared_study import _alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.05)
    assert not _alive(child.pid)
    child.wait()
    assert _alive(os.getpid())
