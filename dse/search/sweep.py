"""Sweeps: evaluate a whole space (grid) or a sample of it (random, Latin hypercube), streamed.

Design points are generated and evaluated in chunks of index rows, so memory stays bounded
however large the space: a grid chunk is a range of mixed-radix indices, a random chunk a range
of the seeded sample sequence (the same rows whatever the chunk size or number of processes).
Only the running Pareto set (objectives and row numbers; whole rows with ``pareto_only``) is
kept across chunks. Without ``pareto_only`` every row goes to a temporary Parquet spool beside
the output and is copied into the output once the final front is known, with its ``pareto``
mark.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog.workloads import Workload
from dse.errors import InputError
from dse.export import Columns, ResultsWriter, Spool, results_columns
from dse.pareto import ParetoFront, nondominated
from dse.search.problem import Problem
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
        raise InputError("--method", "", f"one of {list(METHODS)}", method)
    if method == "grid":
        if samples is not None:
            raise InputError(
                "--samples",
                "",
                "no --samples with --method grid (it evaluates every point)",
                samples,
            )
        return problem.space.size
    if samples is None or samples < 1:
        raise InputError("--samples", "", "a whole number >= 1", samples)
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
    progress: bool = False,
) -> SweepSummary:
    """Evaluate the sweep and write the results file ``out`` (atomically; see module doc)."""
    started = time.perf_counter()
    total = sweep_total(problem, method, samples)
    if chunk_size < 1:
        raise InputError("--chunk-size", "", "a whole number >= 1", chunk_size)
    if jobs < 1:
        raise InputError("--jobs", "", "a whole number >= 1", jobs)
    lhs = None
    if method == "lhs":
        lhs = problem.space.latin_hypercube(total, seed).astype(np.int32)
    plan = _Plan(method, total, seed, lhs)
    front = ParetoFront(len(problem.space.objectives))
    feasible = 0
    meta = {**meta, "method": method, "seed": seed, "samples": total}
    with ResultsWriter(out, meta) as writer:
        spool = None if pareto_only else Spool(out)
        try:
            with _progress_bar(total, progress) as bar:
                for chunk in _chunks(problem, plan, chunk_size, jobs, pareto_only):
                    if spool is None:
                        front.update(chunk.F, chunk.ids, chunk.feasible, payload=chunk.columns)
                    else:
                        front.update(chunk.F, chunk.ids, chunk.feasible)
                        spool.write(chunk.columns)
                    feasible += chunk.n_feasible
                    bar.update(chunk.evaluated)
            if spool is None:
                rows = front.sorted_payload()
                rows["pareto"] = np.ones(len(front), dtype=bool)
                writer.write(rows)
            else:
                on_front = np.sort(front.ids)
                offset = 0
                for batch in spool.batches(chunk_size):
                    n = len(batch["pareto"])
                    batch["pareto"] = np.isin(offset + np.arange(n), on_front)
                    writer.write(batch)
                    offset += n
        finally:
            if spool is not None:
                spool.discard()
        writer.close(feasible=feasible, pareto=len(front), pareto_only=pareto_only)
    return SweepSummary(
        out, total, writer.rows, feasible, len(front), time.perf_counter() - started
    )


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


def _chunks(
    problem: Problem, plan: _Plan, chunk_size: int, jobs: int, pareto_only: bool
) -> Iterator[_Chunk]:
    """Evaluated chunks in row order, in this process or in a pool of ``jobs`` processes.

    At most ``2 × jobs`` chunks are in flight, so memory stays bounded.
    """
    ranges = [(s, min(s + chunk_size, plan.total)) for s in range(0, plan.total, chunk_size)]
    if jobs == 1 or len(ranges) == 1:
        for start, stop in ranges:
            yield _evaluate_range(problem, plan, start, stop, pareto_only)
        return
    recipe = (problem.space.path, problem.space.sha256, problem.workload, problem.describe())
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(recipe, plan),
    ) as pool:
        queue = iter(ranges)
        pending: list[Future[_Chunk]] = [
            pool.submit(_worker, start, stop, pareto_only)
            for start, stop in itertools.islice(queue, 2 * jobs)
        ]
        while pending:
            done = pending.pop(0).result()
            for start, stop in itertools.islice(queue, 1):
                pending.append(pool.submit(_worker, start, stop, pareto_only))
            yield done


_STATE: dict[str, Any] = {}


def _init_worker(recipe: tuple[Path, str, Workload, dict[str, Any]], plan: _Plan) -> None:
    path, sha256, workload, described = recipe
    space = load_space(path)
    if space.sha256 != sha256:
        raise InputError(path, "", "the space file unchanged during the sweep", "a new version")
    settings = load_settings().with_overrides(**described["settings"])
    _STATE["problem"] = Problem(space, workload, settings)
    _STATE["plan"] = plan


def _worker(start: int, stop: int, pareto_only: bool) -> _Chunk:
    return _evaluate_range(_STATE["problem"], _STATE["plan"], start, stop, pareto_only)
