"""Robust fronts: how often each design of a results file stays non-dominated when the
uncertain constants are drawn jointly.

The rows are re-evaluated under ``samples`` joint draws of every uncertain constant (the same
draw for all rows of one draw, as one world): all draws × rows in one vectorized model call
per :data:`~dse.uncertainty.perturb.ROWS_PER_CALL` rows. The plan is searched again in each
draw, as a designer would. ``p_pareto`` is the share of draws in which a row is feasible and no
other feasible row dominates it; ``p_feasible`` the share in which it is feasible; the
objectives' quantiles over the draws come as ``<objective>_p10`` / ``_p50`` / ``_p90``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.catalog.technology import load_technology
from dse.designs import Designs
from dse.errors import InputError
from dse.parameters import CATEGORICAL, RESULTS, choices
from dse.pareto import nondominated
from dse.search.problem import Problem
from dse.space import Objective
from dse.uncertainty.constants import uncertain_constants
from dse.uncertainty.perturb import evaluate_drawn
from dse.uncertainty.sensitivity import base_chip, space_scope

if TYPE_CHECKING:
    import pandas as pd

QUANTILES = (0.1, 0.5, 0.9)
"""Quantiles of each objective over the draws: columns ``<objective>_p10``, ``_p50``, ``_p90``."""


def designs_of(frame: pd.DataFrame, job: Problem, source: str | Path) -> Designs:
    """The designs of a results table's rows: its design columns (categoricals by id), the
    parameters a results file leaves out from the space (a given ``unit_price_usd`` from the
    metric of that name)."""
    technology = load_technology()
    space = job.space
    n = len(frame)
    columns: dict[str, Any] = {}
    for name in Designs.names():
        if name in RESULTS:
            if name not in frame:
                raise InputError(source, name, "a design parameter column", "no such column")
            values = frame[name].to_numpy()
            if name in CATEGORICAL:
                ids = choices(name, technology)
                unknown = sorted({str(v) for v in values} - set(ids))
                if unknown:
                    raise InputError(source, name, f"one of {ids}", unknown[0])
                values = np.array([ids.index(str(v)) for v in values], dtype=np.int64)
            columns[name] = values
        elif name in set(space.names) | space.fixed and name in frame:
            columns[name] = frame[name].to_numpy(dtype=np.float64)
        else:
            columns[name] = np.full(n, space.base[name])
    try:
        return Designs.from_columns(columns)
    except (TypeError, ValueError) as error:
        raise InputError(source, "", "numeric design parameter columns", str(error)) from None


def run_robust(
    frame: pd.DataFrame,
    job: Problem,
    objectives: Sequence[Objective],
    *,
    samples: int,
    seed: int,
    scale: float = 1.0,
    uncertainty: Path | None = None,
    source: str | Path = "df",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``frame`` with ``p_pareto``, ``p_feasible`` and the objectives' quantiles over
    ``samples`` joint draws of the constants (spreads times ``scale``), and a summary."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InputError.for_argument("samples", "a whole number >= 1", samples)
    designs = designs_of(frame, job, source)
    nodes, memories, families = space_scope(job.space)
    nodes |= {list(load_technology().nodes)[int(c)] for c in np.unique(designs.node)}
    memories |= {
        list(load_technology().memories)[int(c)] for c in np.unique(designs.hbm_generation)
    }
    constants = uncertain_constants(
        nodes=nodes,
        memories=memories,
        families=families,
        settings=job.settings,
        scale=scale,
        path=uncertainty,
    )
    n = len(designs)
    rng = np.random.default_rng(seed)
    # One world per draw: the same constants for every row of it (draw-major layout).
    draws = {u.name: np.repeat(u.draw(rng, samples), n) for u in constants}
    tiled = designs.take(np.tile(np.arange(n), samples))
    outcome = evaluate_drawn(
        tiled,
        draws,
        job.workload,
        job.settings,
        job.plans,
        objectives,
        job.space,
        base_chip(job.space),
    )
    k = len(objectives)
    F = outcome.F.reshape(samples, n, k)
    feasible = outcome.feasible.reshape(samples, n)
    on_front = np.zeros((samples, n), dtype=bool)
    for d in range(samples):  # one Pareto filter per world, over all rows at once
        on_front[d] = nondominated(F[d], feasible[d])
    out = frame.copy()
    out["p_pareto"] = on_front.mean(axis=0)
    out["p_feasible"] = feasible.mean(axis=0)
    for objective in objectives:
        values = outcome.columns[objective.name].reshape(samples, n)
        for q in QUANTILES:
            out[f"{objective.name}_p{round(q * 100):02d}"] = np.quantile(values, q, axis=0)
    summary = {
        "rows": n,
        "samples": samples,
        "seed": seed,
        "spread_scale": scale,
        "constants": len(constants),
        "evaluations": n * samples,
        "p_pareto_min": float(out["p_pareto"].min()) if n else float("nan"),
        "p_pareto_median": float(out["p_pareto"].median()) if n else float("nan"),
        "p_pareto_max": float(out["p_pareto"].max()) if n else float("nan"),
        "always_on_front": int((out["p_pareto"] == 1.0).sum()),
    }
    return out, summary


def robust_meta(meta: Mapping[str, Any], summary: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Provenance of a robust file: its input's, plus what the draws were."""
    return {**meta, "robust_of": source, "robust": dict(summary)}
