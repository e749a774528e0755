"""Global sensitivity of a space's objectives to its dimensions and the uncertain constants.

Sobol indices (Saltelli sampling, Jansen estimators, bootstrap confidence intervals) or Morris
elementary effects, both from SALib. Every factor is a coordinate of the unit cube: a dimension
maps onto its levels in equal-width bins (as a sweep's random sampling does), an uncertain
constant through its inverse CDF (dse/uncertainty/constants.py). All samples run through the
model in one vectorized call per :data:`~dse.uncertainty.perturb.ROWS_PER_CALL` rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.catalog.chips import Chip, load_chip
from dse.catalog.technology import load_technology
from dse.errors import InputError
from dse.search.problem import Problem
from dse.space import Objective, Space
from dse.uncertainty._choices import METHODS, SCALES
from dse.uncertainty.constants import Uncertain, uncertain_constants
from dse.uncertainty.perturb import Outcome, evaluate_drawn

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METHODS", "SCALES", "run_sensitivity", "sensitivity_record"]

CONFIDENCE_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 100
MORRIS_LEVELS = 4
SEED_ZERO_BOOTSTRAP = 2**31 - 1
"""The bootstrap seed of Sobol's intervals at ``seed=0`` (SALib would leave them unseeded)."""


@dataclass(frozen=True)
class Factor:
    """One input of the analysis: a dimension of the space or an uncertain constant."""

    name: str
    kind: str  # "design", "tech" or "settings"
    describe: str


def space_scope(space: Space) -> tuple[set[str], set[str], set[str]]:
    """The node ids, HBM generations and architecture family whose constants can change the
    space's designs: those its designs can take, and its base chip's (whose TDP anchors the
    designs' energy per FLOP). The family set is empty where the space sets
    ``gemm_efficiency_scale`` itself."""
    technology = load_technology()
    node_ids, memory_ids = list(technology.nodes), list(technology.memories)
    base = load_chip(space.base_chip)

    def reachable(name: str, ids: list[str]) -> set[str]:
        for dim in space.dimensions:
            if dim.name == name:
                return {ids[int(code)] for code in dim.values}
        return {ids[int(space.base[name])]}

    family: set[str] = set()
    if "gemm_efficiency_scale" not in set(space.names) | space.fixed:
        family = {base.family}
    nodes = reachable("node", node_ids) | {base.node}
    memories = reachable("hbm_generation", memory_ids) | {base.hbm_generation}
    return nodes, memories, family


def space_constants(
    job: Problem, scale: float = 1.0, uncertainty: Path | None = None
) -> tuple[Uncertain, ...]:
    """The uncertain constants that can change the designs of ``job``'s space (from the
    ``uncertainty`` file, default the shipped one)."""
    nodes, memories, families = space_scope(job.space)
    return uncertain_constants(
        nodes=nodes,
        memories=memories,
        families=families,
        settings=job.settings,
        scale=scale,
        path=uncertainty,
    )


def base_chip(space: Space) -> Chip:
    """The catalog chip the space's designs derive from."""
    return load_chip(space.base_chip)


def run_sensitivity(
    job: Problem,
    *,
    samples: int,
    seed: int,
    method: str = "sobol",
    scale: str = "log",
    constants: bool = True,
    uncertainty: Path | None = None,
) -> pd.DataFrame:
    """Indices of each objective of ``job`` to each factor, one row per (objective, factor).

    Sobol columns: ``first_order``, ``first_order_conf``, ``total``, ``total_conf`` (half-widths
    of the 95 % bootstrap intervals); Morris: ``mu_star``, ``mu_star_conf``, ``sigma``.
    ``scale="log"`` analyses log10 of each objective (they span orders of magnitude), else the
    values. ``constants=False`` leaves the uncertain constants out; ``uncertainty`` is a file
    of distributions in place of the shipped chips/technology/uncertainty.toml. The frame's
    ``attrs["dse_sensitivity"]`` holds the run's figures (evaluations, seconds, feasible share).
    """
    import pandas as pd

    _check_options(method, scale, samples)
    space = job.space
    uncertain = space_constants(job, uncertainty=uncertainty) if constants else ()
    uncertain = tuple(u for u in uncertain if not u.certain)
    factors = [Factor(dim.name, "design", f"{dim.levels} levels") for dim in space.dimensions]
    factors += [Factor(u.name, u.kind, u.describe()) for u in uncertain]
    if len(factors) < 2:
        raise InputError(space.path, "dimensions", "at least two factors to analyse", len(factors))
    problem = {
        "num_vars": len(factors),
        "names": [f.name for f in factors],
        "bounds": [[0.0, 1.0]] * len(factors),
    }
    started = time.perf_counter()
    U = _sample(problem, method, samples, seed)
    d = len(space.dimensions)
    designs = space.decode(space.from_unit(U[:, :d]))
    draws = {u.name: u.from_unit(U[:, d + j]) for j, u in enumerate(uncertain)}
    outcome = evaluate_drawn(
        designs,
        draws,
        job.workload,
        job.settings,
        job.plans,
        space.objectives,
        space,
        base_chip(space),
    )
    rows: list[dict[str, Any]] = []
    for objective in space.objectives:
        y = _analysed_values(outcome, objective, scale)
        columns = _indices(problem, method, U, y, seed)
        rows.extend(
            {
                "objective": objective.name,
                "factor": factor.name,
                "kind": factor.kind,
                "distribution": factor.describe,
                **{k: float(v[i]) for k, v in columns.items()},
            }
            for i, factor in enumerate(factors)
        )
    frame = pd.DataFrame(rows)
    frame.attrs["dse_sensitivity"] = {
        "method": method,
        "scale": scale,
        "samples": samples,
        "seed": seed,
        "factor_count": len(factors),
        "design_factors": d,
        "constant_factors": len(uncertain),
        "evaluations": int(U.shape[0]),
        "feasible_share": float(np.mean(outcome.feasible)),
        "not_running_share": float(1.0 - np.mean(outcome.runs)),
        "seconds": round(time.perf_counter() - started, 2),
        "confidence_level": CONFIDENCE_LEVEL,
    }
    return frame


def _check_options(method: str, scale: str, samples: int) -> None:
    """One line for a method, scale or sample count :func:`run_sensitivity` cannot use."""
    if method not in METHODS:
        raise InputError.for_argument("method", f"one of {list(METHODS)}", method)
    if scale not in SCALES:
        raise InputError.for_argument("scale", f"one of {list(SCALES)}", scale)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise InputError.for_argument("samples", "a whole number >= 2", samples)
    if method == "sobol" and samples & (samples - 1):
        raise InputError.for_argument("samples", "a power of two for sobol (e.g. 512)", samples)


def _sample(problem: dict[str, Any], method: str, samples: int, seed: int) -> np.ndarray:
    """SALib's sample of the unit cube, ``(evaluations, factors)``: Saltelli's scheme for
    Sobol (no second order), Morris trajectories otherwise."""
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    if method == "sobol":
        return sobol_sample.sample(problem, samples, calc_second_order=False, seed=seed)
    return morris_sample.sample(problem, samples, num_levels=MORRIS_LEVELS, seed=seed)


def _analysed_values(outcome: Outcome, objective: Objective, scale: str) -> np.ndarray:
    """One objective's values as analysed, ``(evaluations,)``: log10 on the log scale, and
    designs that cannot run count as the worst design that runs."""
    y = np.asarray(outcome.columns[objective.name], dtype=np.float64)
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log10(y)
    # Designs that cannot run at all (static and memory power above the TDP: a clock near
    # zero, times of 10^15 days) and non-numbers count as the worst design that runs;
    # left as they are, a handful of them would hold all the variance.
    usable = np.isfinite(y) & outcome.runs
    kept = y[usable] if usable.any() else np.zeros(1)
    return np.where(usable, y, np.min(kept) if objective.maximize else np.max(kept))


def _indices(
    problem: dict[str, Any], method: str, U: np.ndarray, y: np.ndarray, seed: int
) -> dict[str, np.ndarray]:
    """SALib's indices of ``y`` per factor, with their bootstrap half-widths."""
    from SALib.analyze import morris as morris_analyze
    from SALib.analyze import sobol as sobol_analyze

    if method == "sobol":
        # SALib's Sobol analysis reads a seed of 0 as none (``if seed:``) and bootstraps from
        # numpy's global state: seed 0 bootstraps with SEED_ZERO_BOOTSTRAP, so that it repeats
        # too (and every other seed keeps its intervals).
        result = sobol_analyze.analyze(
            problem,
            y,
            calc_second_order=False,
            num_resamples=BOOTSTRAP_RESAMPLES,
            conf_level=CONFIDENCE_LEVEL,
            seed=seed or SEED_ZERO_BOOTSTRAP,
        )
        return {
            "first_order": result["S1"],
            "first_order_conf": result["S1_conf"],
            "total": result["ST"],
            "total_conf": result["ST_conf"],
        }
    result = morris_analyze.analyze(
        problem,
        U,
        y,
        num_resamples=BOOTSTRAP_RESAMPLES,
        conf_level=CONFIDENCE_LEVEL,
        num_levels=MORRIS_LEVELS,
        seed=seed,
    )
    return {
        "mu_star": result["mu_star"],
        "mu_star_conf": result["mu_star_conf"],
        "sigma": result["sigma"],
    }


def sensitivity_record(frame: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON of ``dse sensitivity``: ``{"objectives": {name: {"first_order": {factor: x},
    "total": {factor: x}, ...}}}`` plus the run's figures (DESIGN.md, additions)."""
    measures = [
        c for c in frame.columns if c not in ("objective", "factor", "kind", "distribution")
    ]
    objectives: dict[str, Any] = {}
    for name, part in frame.groupby("objective", sort=False):
        objectives[str(name)] = {
            measure: dict(zip(part["factor"], part[measure].astype(float), strict=True))
            for measure in measures
        }
    factors = frame.drop_duplicates("factor")
    return {
        "objectives": objectives,
        "factors": {
            str(f): {"kind": str(k), "distribution": str(d)}
            for f, k, d in zip(
                factors["factor"], factors["kind"], factors["distribution"], strict=True
            )
        },
        # Wall time aside, so that the same seed prints the same record byte for byte.
        **{k: v for k, v in meta.items() if k != "seconds"},
    }
