"""A search problem: a space, a workload and the model settings; index rows in, metrics out.

Every search method (sweep, pymoo, optuna) calls :meth:`Problem.evaluate` on a whole batch of
index rows at once: one vectorized model call per batch, never a Python loop per design.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.catalog.workloads import Workload
from dse.designs import Designs, FloatArray
from dse.model.evaluate import Metrics, evaluate
from dse.model.plans import Plans, candidate_plans
from dse.settings import Settings, load_settings
from dse.space import IntArray, Space, index_rows, objective_matrix

INFEASIBLE_G = 1e6
"""Stand-in for a non-finite constraint value handed to an optimizer (still ``> 0``)."""


@dataclass(frozen=True)
class Evaluation:
    """A batch of ``n`` evaluated design points.

    ``X`` (n, d) level indices; ``F`` (n, k) objectives to minimize (maximized ones negated);
    ``G`` (n, m) constraints, ``<= 0`` feasible, model constraints then the space's; ``feasible``
    (n,) their conjunction (and finite objectives). ``moe``: the workload is a Mixture of
    Experts (its prediction intervals are those of MoE runs); ``plan_searched``: each design's
    plan was the search's, not a pinned one (its intervals are those of searched plans);
    ``new_family``: the designs are of a family no published run calibrated
    (:attr:`~dse.space.Space.new_family`; their intervals are those of a family left out);
    ``hybrid``: the workload is a hybrid Mamba-2 model (its intervals are those of such runs).
    """

    X: IntArray
    designs: Designs
    metrics: Metrics
    F: FloatArray
    G: FloatArray
    feasible: np.ndarray
    moe: bool
    plan_searched: bool = True
    new_family: bool = False
    hybrid: bool = False

    def __len__(self) -> int:
        return int(self.X.shape[0])


class Problem:
    """``space`` × ``workload`` under ``settings``; the plan candidates are fixed once.

    The candidate plans are computed for the largest scale-up domain in the space, so a design's
    result does not depend on which other designs share its batch.
    """

    def __init__(self, space: Space, workload: Workload, settings: Settings | None = None):
        self.space = space
        self.workload = workload
        self.settings = settings or load_settings()
        max_domain = float(space.base["scale_up_domain"])
        for dim in space.dimensions:
            if dim.name == "scale_up_domain":
                max_domain = float(np.max(dim.values))
        self.plans: Plans = candidate_plans(workload, max_tp=max(int(max_domain), 1))

    @property
    def n_var(self) -> int:
        return len(self.space.dimensions)

    def evaluate(self, X: np.ndarray) -> Evaluation:
        """Evaluate index rows of shape ``(n, d)`` in one model call."""
        X = index_rows(X, self.n_var)
        designs = self.space.decode(X)
        metrics = evaluate(designs, self.workload, self.settings, self.plans)
        metrics = metrics.with_constraints(self.space.constraint_values(metrics))
        F = objective_matrix(metrics.columns, self.space.objectives)
        feasible = metrics.feasible & np.all(np.isfinite(F), axis=1)
        return Evaluation(
            X,
            designs,
            metrics,
            F,
            metrics.G,
            feasible,
            self.workload.is_moe,
            len(self.plans) > 1,
            self.space.new_family,
            self.workload.is_hybrid,
        )

    def fingerprint(self) -> str:
        """A hash of everything that decides the results: space file, workload, settings."""
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """Provenance of the problem: space, its hash, workload, objectives, settings changes."""
        defaults = load_settings()
        changed = {
            name: getattr(self.settings, name)
            for name in Settings.names()
            if getattr(self.settings, name) != getattr(defaults, name)
        }
        w = self.workload
        return {
            "space": str(self.space.path),
            "space_id": self.space.id,
            "space_sha256": self.space.sha256,
            "workload": w.id,
            "precision": w.precision,
            "tokens": w.tokens,
            "objectives": [{"name": o.name, "maximize": o.maximize} for o in self.space.objectives],
            "settings": changed,
        }


def finite_constraints(G: FloatArray) -> FloatArray:
    """``G`` with non-finite entries replaced by :data:`INFEASIBLE_G` (optimizers need numbers)."""
    return np.where(np.isfinite(G), G, INFEASIBLE_G)


def finite_objectives(F: FloatArray) -> FloatArray:
    """``F`` with non-finite entries replaced by a huge finite value (only on infeasible rows)."""
    return np.where(np.isfinite(F), F, np.finfo(np.float64).max / 1e6)
