"""``dse search``: run an engine, keep every evaluated design, mark the Pareto set, write."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.errors import InputError
from dse.export import Columns, ResultsWriter, concat_columns, results_columns
from dse.pareto import nondominated
from dse.search.problem import Evaluation, Problem
from dse.search.registry import Engine
from dse.space import objective_matrix


@dataclass(frozen=True)
class SearchSummary:
    """What a search did: rows written (every evaluated design), feasible ones, front size."""

    path: Path
    rows: int
    feasible: int
    pareto: int
    seconds: float
    details: dict[str, Any]


def run_search(
    problem: Problem,
    engine: Engine,
    out: Path,
    meta: dict[str, Any],
    *,
    evals: int,
    seed: int,
    progress: bool = False,
) -> SearchSummary:
    """Run ``engine`` for ``evals`` evaluations and write every evaluated design to ``out``."""
    if evals < 1:
        raise InputError.for_argument("evals", "a whole number >= 1", evals)
    started = time.perf_counter()
    parts: list[Columns] = []
    bar = _bar(evals, progress)

    def record(evaluation: Evaluation) -> None:
        parts.append(results_columns(evaluation))
        if bar is not None:
            bar.update(len(evaluation))

    meta = {**meta, "engine": engine.name, "seed": seed, "evals": evals}
    with ResultsWriter(out, meta) as writer:
        try:
            details = engine.run(problem, evals, seed, record)
        finally:
            if bar is not None:
                bar.close()
        columns = concat_columns(parts)
        F = objective_matrix(columns, problem.space.objectives)
        columns["pareto"] = nondominated(F, columns["feasible"])
        writer.write(columns)
        feasible = int(columns["feasible"].sum())
        pareto = int(columns["pareto"].sum())
        writer.close(**details, feasible=feasible, pareto=pareto)
    return SearchSummary(out, writer.rows, feasible, pareto, time.perf_counter() - started, details)


def _bar(total: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="design", file=sys.stderr, dynamic_ncols=True)
