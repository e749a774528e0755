"""Sweeps: evaluate a whole space (grid) or a sample of it (random, Latin hypercube), streamed.

Design points are generated and evaluated in chunks of index rows, so memory stays bounded
however large the space: a grid chunk is a range of mixed-radix indices, a random chunk a range
of the seeded sample sequence (the same rows whatever the chunk size or executor). Chunks run
on an executor (:mod:`dse.search.executors`: in this process, a process pool or Dask); each
returns its rows, or with ``pareto_only`` only its feasible Pareto set. Each completed chunk
is recorded as a part file and in a manifest beside the output (:mod:`dse.search.resume`), so
an interrupted sweep resumes; the driver merges the chunk fronts in range order and, once the
final front is known, writes the output atomically (every row with its ``pareto`` mark, or the
front alone) and removes the records."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog.workloads import Workload
from dse.errors import InputError
from dse.export import AtomicFile, Columns, ResultsWriter, check_suffix, results_columns
from dse.files import OutputLock
from dse.pareto import ParetoFront, nondominated
from dse.search.executors import Executor, executor_for, tune_malloc
from dse.search.problem import Problem
from dse.search.resume import Manifest
from dse.settings import load_settings
from dse.space import IntArray, load_space

METHODS = ("grid", "random", "lhs")
DEFAULT_CHUNK_SIZE = 16_384


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep did: rows written, designs evaluated, feasible ones, front size, seconds."""

    path: Path
    evaluated: int
    rows: int
    feasible: int
    pareto: int
    seconds: float


@dataclass(frozen=True)
class _Plan:
    """How to produce the index rows of a sweep: ``total`` rows by ``method``."""

    method: str
    total: int
    seed: int
    lhs: np.ndarray | None = None  # (total, d) level indices, int32 to halve the memory

    def rows(self, problem: Problem, start: int, stop: int) -> IntArray:
        if self.method == "grid":
            return problem.space.grid(start, stop)
        if self.method == "random":
            return problem.space.random(start, stop, self.seed)
        assert self.lhs is not None
        return self.lhs[start:stop].astype(np.int64)


def sweep_total(problem: Problem, method: str, samples: int | None) -> int:
    """Number of design points a sweep evaluates (the grid size for ``grid``)."""
    if method not in METHODS:
        raise InputError.for_argument("method", f"one of {list(METHODS)}", method)
    if method == "grid":
        if samples is not None:
            raise InputError.for_argument(
                "samples",
                "no `samples` with method 'grid' (it evaluates every point)",
                samples,
            )
        return problem.space.size
    if samples is None or samples < 1:
        raise InputError.for_argument("samples", "a whole number >= 1", samples)
    return samples


def run_sweep(
    problem: Problem,
    out: Path,
    meta: dict[str, Any],
    *,
    method: str = "random",
    samples: int | None = None,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    pareto_only: bool = False,
    jobs: int = 1,
    executor: Executor | None = None,
    restart: bool = False,
    progress: bool = False,
) -> SweepSummary:
    """Evaluate the sweep and write the results file ``out`` (atomically; see module doc).

    Chunks run on ``executor`` (default: in this process, or a pool of ``jobs`` processes).
    Completed chunks are recorded beside ``out`` (see :mod:`dse.search.resume`), so the same
    call after an interruption resumes; ``restart`` discards an earlier run's records.
    """
    started = time.perf_counter()
    total = sweep_total(problem, method, samples)
    if chunk_size < 1:
        raise InputError.for_argument("chunk_size", "a whole number >= 1", chunk_size)
    if jobs < 1:
        raise InputError.for_argument("jobs", "a whole number >= 1", jobs)
    check_suffix(out)
    AtomicFile(out).discard()  # fails early, with a clear error, where out is not writable
    lhs = None
    if method == "lhs":
        lhs = problem.space.latin_hypercube(total, seed).astype(np.int32)
    plan = _Plan(method, total, seed, lhs)
    ranges = [(s, min(s + chunk_size, total)) for s in range(0, total, chunk_size)]
    meta = {**meta, "method": method, "seed": seed, "samples": total}
    fingerprint = {
        "problem": problem.fingerprint(),
        "space_sha256": problem.space.sha256,
        "workload": problem.workload.id,
        "method": method,
        "seed": seed,
        "samples": total,
        "chunk_size": chunk_size,
        "pareto_only": pareto_only,
    }
    with OutputLock(out):
        manifest = Manifest(out, fingerprint, restart=restart)
        front, feasible = _evaluate_chunks(
            problem, manifest, plan, ranges, pareto_only, jobs, executor, progress
        )
        rows = _write_output(out, meta, manifest, front, ranges, feasible, pareto_only)
        manifest.remove()
    return SweepSummary(out, total, rows, feasible, len(front), time.perf_counter() - started)


def _evaluate_chunks(
    problem: Problem,
    manifest: Manifest,
    plan: _Plan,
    ranges: list[tuple[int, int]],
    pareto_only: bool,
    jobs: int,
    executor: Executor | None,
    progress: bool,
) -> tuple[ParetoFront, int]:
    """Evaluate the chunks the manifest lacks, record each; the front and feasible count."""
    k = len(problem.space.objectives)
    front = ParetoFront(k)
    feasible = 0
    own = executor is None
    runner = executor or executor_for(jobs=jobs)
    try:
        todo = [r for r in ranges if r[0] not in manifest.done]
        recipe = (
            Path(problem.space.path).resolve(),
            problem.space.sha256,
            problem.workload,
            problem.describe(),
        )
        job = _Job(recipe, plan, pareto_only, problem if runner.name == "inprocess" else None)
        results = runner.map(_task, job, todo)
        with _progress_bar(plan.total, progress) as bar:
            for start, stop in ranges:
                if start in manifest.done:
                    columns = manifest.read(start)
                    n_feasible = manifest.done[start]["feasible"]
                else:
                    chunk = next(results)
                    columns, n_feasible = _with_keys(chunk), chunk.n_feasible
                    manifest.add(start, stop, n_feasible, columns)
                F, ids, ok, rows = _split_keys(columns, k)
                front.update(F, ids, ok, payload=rows if pareto_only else None)
                feasible += n_feasible
                bar.update(stop - start)
    finally:
        if own:
            runner.close()
    return front, feasible


def _write_output(
    out: Path,
    meta: dict[str, Any],
    manifest: Manifest,
    front: ParetoFront,
    ranges: list[tuple[int, int]],
    feasible: int,
    pareto_only: bool,
) -> int:
    """Write the results file from the recorded chunks (atomically); the rows written."""
    k = front.F.shape[1]
    with ResultsWriter(out, meta) as writer:
        if pareto_only:
            rows = front.sorted_payload()
            if not rows:
                rows = _split_keys(manifest.read(0), k)[3] if ranges else {}
                rows = {name: column[:0] for name, column in rows.items()}
            rows["pareto"] = np.ones(len(front), dtype=bool)
            writer.write(rows)
        else:
            on_front = np.sort(front.ids)
            for start, _ in ranges:
                _, ids, _, rows = _split_keys(manifest.read(start), k)
                rows["pareto"] = np.isin(ids, on_front)
                writer.write(rows)
        writer.close(feasible=feasible, pareto=len(front), pareto_only=pareto_only)
    return writer.rows


_ID, _FEASIBLE, _F = "__id", "__feasible", "__f"


def _with_keys(chunk: _Chunk) -> Columns:
    """A chunk's kept rows with their global row ids, objectives and feasibility attached."""
    columns = dict(chunk.columns)
    columns[_ID] = chunk.ids
    columns[_FEASIBLE] = np.asarray(chunk.feasible, dtype=bool)
    for i in range(chunk.F.shape[1]):
        columns[f"{_F}{i}"] = np.asarray(chunk.F[:, i], dtype=np.float64)
    return columns


def _split_keys(columns: Columns, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Columns]:
    """Undo :func:`_with_keys`: ``F``, ``ids``, ``feasible`` and the results columns."""
    F = np.column_stack([columns[f"{_F}{i}"] for i in range(k)]) if k else np.empty((0, 0))
    rows = {name: column for name, column in columns.items() if not name.startswith("__")}
    return F.reshape(-1, k), columns[_ID], columns[_FEASIBLE], rows


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *args: object) -> None:
        pass


def _progress_bar(total: int, show: bool) -> Any:
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="design", unit_scale=True, file=sys.stderr, dynamic_ncols=True)


@dataclass(frozen=True)
class _Chunk:
    """One evaluated chunk: ``evaluated`` rows, of which the arrays hold all or (with
    ``pareto_only``) only the chunk's non-dominated feasible ones, with their global ``ids``."""

    evaluated: int
    ids: np.ndarray
    columns: Columns
    F: np.ndarray
    feasible: np.ndarray
    n_feasible: int


def _evaluate_range(
    problem: Problem, plan: _Plan, start: int, stop: int, pareto_only: bool
) -> _Chunk:
    """Evaluate rows ``start .. stop-1`` in one model call."""
    evaluation = problem.evaluate(plan.rows(problem, start, stop))
    columns = results_columns(evaluation)
    n_feasible = int(np.count_nonzero(evaluation.feasible))
    ids = start + np.arange(stop - start, dtype=np.int64)
    if not pareto_only:
        return _Chunk(stop - start, ids, columns, evaluation.F, evaluation.feasible, n_feasible)
    keep = nondominated(evaluation.F, evaluation.feasible)
    kept = {name: column[keep] for name, column in columns.items()}
    return _Chunk(
        stop - start, ids[keep], kept, evaluation.F[keep], evaluation.feasible[keep], n_feasible
    )


@dataclass(frozen=True)
class _Job:
    """What every chunk task needs: how to rebuild the problem, the plan, what to keep."""

    recipe: tuple[Path, str, Workload, dict[str, Any]]
    plan: _Plan
    pareto_only: bool
    problem: Problem | None = None  # given in this process; rebuilt (once) elsewhere


_PROBLEMS: dict[str, Problem] = {}


def _task(job: _Job, item: tuple[int, int]) -> _Chunk:
    """Evaluate one chunk (a task run by an executor, possibly in another process)."""
    start, stop = item
    return _evaluate_range(_problem_of(job), job.plan, start, stop, job.pareto_only)


def _problem_of(job: _Job) -> Problem:
    if job.problem is not None:
        return job.problem
    tune_malloc()
    path, sha256, workload, described = job.recipe
    key = json.dumps(described, sort_keys=True, default=str)
    if key not in _PROBLEMS:
        space = load_space(path)
        if space.sha256 != sha256:
            raise InputError(path, "", "the space file unchanged during the sweep", "a new version")
        settings = load_settings().with_overrides(**described["settings"])
        _PROBLEMS[key] = Problem(space, workload, settings)
    return _PROBLEMS[key]
