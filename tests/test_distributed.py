"""Sweeps on Dask distributed (a local cluster and a command-line ``dask scheduler`` +
``dask worker``) give exactly the in-process results, also when a worker is killed mid-sweep;
``dse worker`` processes sharing one optuna study add exactly the requested trials."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dse.catalog.workloads import load_workload
from dse.export import provenance, read_results
from dse.search.executors import Dask, Task
from dse.search.problem import Problem
from dse.search.sweep import run_sweep
from dse.settings import load_settings
from dse.space import load_space
from tests.test_sweep import SMALL

SWEEP = ["--workload", "llama3.1-70b", "--samples", "1200", "--seed", "3", "--chunk-size", "100"]


@pytest.fixture(scope="module")
def space_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("space") / "small.toml"
    path.write_text(SMALL)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A command-line Dask cluster on 127.0.0.1: ``dask scheduler`` and ``dask worker`` (two
    worker processes of one thread each), started as subprocesses and torn down after."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    dask = [sys.executable, "-m", "dask"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            **quiet,  # type: ignore[call-overload]
        )
    ]
    try:
        worker = ["worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"]
        procs.append(
            subprocess.Popen([*dask, *worker, "--host", "127.0.0.1"], **quiet)  # type: ignore[call-overload]
        )
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in procs:  # each in its own process group: the worker's children go too
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def sweep(dse: Callable[..., Any], space: Path, out: Path, *extra: str) -> pd.DataFrame:
    result = dse("sweep", space, *SWEEP, "--out", out, "--quiet", *extra)
    assert result.code == 0, result.err
    frame, _ = read_results(out)
    assert not out.with_name(out.name + ".manifest.json").exists()
    assert not out.with_name(out.name + ".parts").exists()
    return frame


def test_local_cluster_gives_the_in_process_front(
    dse: Callable[..., Any], space_file: Path, tmp_path: Path
) -> None:
    alone = sweep(dse, space_file, tmp_path / "a.parquet", "--pareto-only")
    cluster = sweep(dse, space_file, tmp_path / "b.parquet", "--pareto-only", "--workers", "2")
    assert len(alone) > 1
    pd.testing.assert_frame_equal(alone, cluster)


def test_command_line_cluster_gives_the_in_process_results(
    dse: Callable[..., Any], space_file: Path, tmp_path: Path, scheduler: str
) -> None:
    for extra in (["--pareto-only"], []):
        alone = sweep(dse, space_file, tmp_path / "a.parquet", *extra)
        jobs = sweep(dse, space_file, tmp_path / "j.parquet", *extra, "--jobs", "2")
        remote = sweep(dse, space_file, tmp_path / "b.parquet", *extra, "--scheduler", scheduler)
        pd.testing.assert_frame_equal(alone, remote)
        pd.testing.assert_frame_equal(alone, jobs)
    assert len(alone) == 1200 and alone["pareto"].sum() > 1


class KillOneWorker(Dask):
    """A local Dask cluster that SIGKILLs one of its worker processes after the first chunk."""

    def map(self, task: Task, shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        for n, result in enumerate(super().map(task, shared, items)):
            if n == 0:
                pids = self.client.run(os.getpid)
                os.kill(next(iter(pids.values())), signal.SIGKILL)
                self.killed = True
            yield result


def test_sweep_survives_a_killed_dask_worker(space_file: Path, tmp_path: Path) -> None:
    problem = Problem(load_space(space_file), load_workload("llama3.1-70b"), load_settings())
    meta = provenance(**problem.describe())
    kwargs: dict[str, Any] = {"method": "random", "samples": 3000, "seed": 5, "chunk_size": 100}
    alone = run_sweep(problem, tmp_path / "a.parquet", meta, **kwargs)
    with KillOneWorker(workers=2) as executor:
        started = time.perf_counter()
        killed = run_sweep(problem, tmp_path / "b.parquet", meta, executor=executor, **kwargs)
        assert executor.killed and time.perf_counter() - started < 60
    assert (killed.evaluated, killed.rows, killed.feasible, killed.pareto) == (
        alone.evaluated,
        alone.rows,
        alone.feasible,
        alone.pareto,
    )
    pd.testing.assert_frame_equal(
        read_results(tmp_path / "a.parquet")[0], read_results(tmp_path / "b.parquet")[0]
    )


def _scaled_square(shared: int, item: int) -> int:
    return shared * item * item


class LoseTheSharedObject(Dask):
    """A local Dask cluster that loses the scattered shared object after the first result, as
    when the worker holding it is killed (Dask cannot recompute scattered data)."""

    def map(self, task: Task, shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        scattered: list[Any] = []
        scatter = self.client.scatter

        def recording(*args: Any, **kwargs: Any) -> Any:
            scattered.append(scatter(*args, **kwargs))
            return scattered[-1]

        self.client.scatter = recording  # type: ignore[method-assign]
        for n, result in enumerate(super().map(task, shared, items)):
            if n == 0:
                self.client.cancel(scattered[0])
            yield result
        self.rescattered = len(scattered) - 1


def test_a_lost_shared_object_is_sent_again() -> None:
    executor = LoseTheSharedObject(workers=2)
    try:
        results = list(executor.map(_scaled_square, 3, range(20)))
    finally:
        executor.close()
    assert results == [3 * i * i for i in range(20)]
    assert executor.rescattered == 1


POSTGRES = os.environ.get("DSE_TEST_POSTGRES_URL")
STORAGES = [
    "journal",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(
            not POSTGRES, reason="no PostgreSQL server (DSE_TEST_POSTGRES_URL is unset)"
        ),
    ),
]


def storage_url(kind: str, tmp_path: Path) -> str:
    return f"journal://{tmp_path / 'study.log'}" if kind == "journal" else str(POSTGRES)


def start_study(dse: Callable[..., Any], space: Path, url: str, name: str, tmp: Path) -> None:
    result = dse("search", space, "--workload", "llama3.1-70b", "--engine", "optuna",
                 "--storage", url, "--study", name, "--evals", "8", "--pop-size", "8",
                 "--batch-size", "4", "--out", tmp / "start.csv", "--quiet")  # fmt: skip
    assert result.code == 0, result.err


def trials(url: str, name: str) -> list[Any]:
    import optuna

    from dse.search.shared_study import open_storage

    return list(optuna.load_study(study_name=name, storage=open_storage(url)).trials)


def check_exact(url: str, name: str, total: int) -> None:
    from optuna.trial import TrialState

    held = trials(url, name)
    numbers = [t.number for t in held]
    assert len(numbers) == len(set(numbers))
    complete = [t for t in held if t.state == TrialState.COMPLETE]
    assert len(complete) == total
    assert not [t for t in held if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for t in held:  # every other trial is a claim past the total or a retried dead one
        assert (
            t.state == TrialState.COMPLETE
            or t.user_attrs.get("dse_excess")
            or (t.state == TrialState.FAIL)
        )


@pytest.mark.parametrize("kind", STORAGES)
def test_two_workers_fill_one_study_exactly(
    dse: Callable[..., Any], space_file: Path, tmp_path: Path, kind: str
) -> None:
    url, name = storage_url(kind, tmp_path), f"shared-{uuid.uuid4().hex}"
    start_study(dse, space_file, url, name, tmp_path)
    worker = [sys.executable, "-m", "dse", "worker", "--storage", url, "--study", name]
    procs = [
        subprocess.Popen([*worker, "--total", "60", "--seed", str(i)], stdout=subprocess.PIPE)
        for i in range(2)
    ]
    added = [proc.communicate(timeout=120)[0].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert all("added" in text for text in added)
    check_exact(url, name, 60)


def test_search_with_workers_writes_every_trial(
    dse: Callable[..., Any], space_file: Path, tmp_path: Path
) -> None:
    url, name = storage_url("journal", tmp_path), "with-workers"
    out = tmp_path / "out.csv"
    result = dse("search", space_file, "--workload", "llama3.1-70b", "--engine", "optuna",
                 "--storage", url, "--study", name, "--evals", "40", "--pop-size", "8",
                 "--workers", "2", "--out", out, "--quiet")  # fmt: skip
    assert result.code == 0, result.err
    check_exact(url, name, 40)
    assert len(read_results(out)[0]) == 40


def test_dead_workers_running_trial_is_retried_not_lost(
    dse: Callable[..., Any], space_file: Path, tmp_path: Path
) -> None:
    import optuna
    from optuna.trial import TrialState

    from dse.search.shared_study import WORKER_ATTR, open_storage

    url, name = storage_url("journal", tmp_path), "dead-worker"
    start_study(dse, space_file, url, name, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    orphan = study.ask()  # a trial its worker started and never finished: killed
    orphan.suggest_int("compute_units", 96, 160, step=32)  # as dse suggests it
    orphan.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{dead.pid}")
    subprocess.run([sys.executable, "-m", "dse", "worker", "--storage", url, "--study", name,
                    "--total", "20"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    held = {t.number: t for t in trials(url, name)}
    assert held[orphan.number].state == TrialState.FAIL
    retried = [t for t in held.values() if t.user_attrs.get("dse_retry_of") == orphan.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params["compute_units"] == orphan.params["compute_units"]
    check_exact(url, name, 20)


@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server (DSE_TEST_POSTGRES_URL is unset)")
def test_stale_trial_in_postgres_is_retried_by_heartbeat(
    dse: Callable[..., Any], space_file: Path, tmp_path: Path
) -> None:
    import optuna
    from optuna.trial import TrialState

    from dse.search.shared_study import open_storage

    url, name = str(POSTGRES), f"stale-{uuid.uuid4().hex}"
    start_study(dse, space_file, url, name, tmp_path)
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    orphan = study.ask()  # its worker beat once, then was killed
    orphan.suggest_int("compute_units", 96, 160, step=32)  # as dse suggests it
    storage.record_heartbeat(orphan._trial_id)
    time.sleep(2.5)
    env = {**os.environ, "DSE_HEARTBEAT_S": "1", "DSE_GRACE_S": "2"}
    subprocess.run([sys.executable, "-m", "dse", "worker", "--storage", url, "--study", name,
                    "--total", "20"], check=True, stdout=subprocess.DEVNULL, env=env)  # fmt: skip
    held = {t.number: t for t in trials(url, name)}
    assert held[orphan.number].state == TrialState.FAIL
    # Retried by optuna's heartbeat (failed_trial) or by dse's check for trials that no live
    # worker owns (dse_retry_of), whichever sees it first: once, with the same parameters.
    retried = [
        t
        for t in held.values()
        if orphan.number in (t.system_attrs.get("failed_trial"), t.user_attrs.get("dse_retry_of"))
    ]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params["compute_units"] == orphan.params["compute_units"]
    check_exact(url, name, 20)
