"""The paper's framework as code: the cost of scale (C ≈ 120·P²) and the roadmap of levers.

Faraboschi et al. 2024 (arXiv:2404.08811) state training compute C = 6·P·T with T = 20·P, a
Mixture of Experts dividing it by K, and levers that each aim to halve the cost. Here every
figure is computed through the model: :func:`cost_of_scale` sizes clusters for compute-optimal
models, :func:`run_roadmap` applies the levers of a TOML file (``dse/levers.toml``) cumulatively.
"""

from __future__ import annotations

from dse.framework.levers import Change, Lever, Levers, apply_lever, load_levers
from dse.framework.moe import mixture_of_experts
from dse.framework.roadmap import Roadmap, Step, baseline_state, run_roadmap
from dse.framework.scaling import ScalingRow, cost_of_scale, model_sizes, parameter_workload
from dse.framework.state import Outcome, State, run

__all__ = [
    "Change",
    "Lever",
    "Levers",
    "Outcome",
    "Roadmap",
    "ScalingRow",
    "State",
    "Step",
    "apply_lever",
    "baseline_state",
    "cost_of_scale",
    "load_levers",
    "mixture_of_experts",
    "model_sizes",
    "parameter_workload",
    "run",
    "run_roadmap",
]
