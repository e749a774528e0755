"""The whole model on an array of designs: silicon → training → economics → metrics and G.

This is the one function the commands and the search engines call. It returns
:class:`Metrics`: equal-length metric columns, the constraint matrix ``G`` (``G <= 0`` is
feasible) and the ``feasible`` mask.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dse.catalog.technology import Technology, load_technology
from dse.catalog.workloads import Workload
from dse.designs import Designs, FloatArray
from dse.model.economics import Economics, evaluate_economics
from dse.model.plans import PLACEMENTS, RECOMPUTE, SCHEDULES, Plans, candidate_plans
from dse.model.silicon import Silicon, TechArrays, evaluate_silicon
from dse.model.training import Training, evaluate_training, precision_flop_s
from dse.model.training.analog import (
    analog_training,
    array_step_extra,
    digital_view,
    merge,
)
from dse.model.training.grid import take, usable_memory_b
from dse.settings import Settings, load_settings
from dse.units import GIGA, SECONDS_PER_DAY, SECONDS_PER_HOUR

METRICS = (
    "training_days",
    "chip_hours",
    "energy_mwh",
    "cost_usd",
    "capex_usd",
    "mfu",
    "hfu",
    "step_time_s",
    "avg_chip_power_w",
    "cluster_power_mw",
    "memory_per_chip_gb",
    "peak_tflop_s",
    "hbm_bandwidth_tb_s",
    "hbm_capacity_gb",
    "die_area_mm2",
    "silicon_area_mm2",
    "die_yield",
    "unit_cost_usd",
    "unit_price_usd",
)
PLAN_COLUMNS = (
    "tp",
    "pp",
    "vp",
    "cp",
    "dp",
    "dp_shard",
    "ep",
    "etp",
    "microbatch",
    "recompute",
    "zero_stage",
    "schedule",
    "placement",
    "offload_layers",
    "recompute_layers",
)
"""The plan columns of a results file; ``recompute``, ``schedule`` and ``placement`` as codes
into :data:`~dse.model.plans.RECOMPUTE`, :data:`~dse.model.plans.SCHEDULES` and
:data:`~dse.model.plans.PLACEMENTS`; ``dp_shard`` the data-parallel ranks the ZeRO states are
sharded over (``dp`` unless hybrid sharding pins it); ``etp`` the ranks each routed expert is
split over (1 unless pinned)."""


@dataclass(frozen=True)
class Metrics:
    """Results for ``n`` designs: ``columns`` maps a metric name to an array of shape ``(n,)``;
    ``constraints`` maps ``g_*`` names to arrays (``<= 0`` feasible); ``feasible`` is their
    conjunction. ``plan`` holds the chosen plan's columns (recompute as its index into
    :data:`RECOMPUTE`)."""

    columns: dict[str, FloatArray]
    plan: dict[str, np.ndarray]
    constraints: dict[str, FloatArray]
    feasible: np.ndarray
    silicon: Silicon
    training: Training
    economics: Economics

    def __len__(self) -> int:
        return int(self.feasible.shape[0])

    @property
    def G(self) -> FloatArray:  # noqa: N802 (pymoo's name for the constraint matrix)
        """Constraint matrix of shape ``(n, m)``, columns in ``constraints`` order."""
        return (
            np.column_stack(list(self.constraints.values()))
            if self.constraints
            else np.zeros((len(self), 0))
        )

    def with_constraints(self, extra: dict[str, FloatArray]) -> Metrics:
        """A copy with more ``g_*`` columns (e.g. a design space's limits on metrics) and
        ``feasible`` recomputed over all of them."""
        constraints = {**self.constraints, **extra}
        G = np.column_stack(list(constraints.values()))
        feasible = np.all(G <= 0.0, axis=1) & np.all(np.isfinite(G), axis=1)
        return replace(self, constraints=constraints, feasible=feasible)

    def record(self, i: int) -> dict[str, object]:
        """Design ``i`` as a plain record: metrics, ``plan`` object, constraints, ``feasible``."""
        out: dict[str, object] = {name: float(values[i]) for name, values in self.columns.items()}
        coded = ("recompute", "schedule", "placement")
        plan: dict[str, object] = {
            name: int(values[i]) for name, values in self.plan.items() if name not in coded
        }
        plan["recompute"] = RECOMPUTE[int(self.plan["recompute"][i])]
        plan["schedule"] = SCHEDULES[int(self.plan["schedule"][i])]
        plan["placement"] = PLACEMENTS[int(self.plan["placement"][i])]
        out["plan"] = plan
        out["feasible"] = bool(self.feasible[i])
        out["constraints"] = {name: float(values[i]) for name, values in self.constraints.items()}
        return out


def evaluate(
    designs: Designs,
    workload: Workload,
    settings: Settings | None = None,
    plans: Plans | None = None,
    extra_constraints: dict[str, FloatArray] | None = None,
    technology: Technology | TechArrays | None = None,
    *,
    exhaustive: bool = False,
) -> Metrics:
    """Evaluate every design on its cluster for ``workload``; plans searched unless given.

    ``technology`` replaces the shipped technology tables (e.g. a lever that changes energy per
    FLOP), or tables laid out per design; the default is
    :func:`~dse.catalog.technology.load_technology`. Settings may hold arrays of shape ``(n,)``
    (one value per design, as ``dse sensitivity`` and ``dse robust`` draw them). ``exhaustive``
    evaluates every plan for every design instead of the bounded search (same results; the
    reference in the tests).
    """
    settings = settings or load_settings()
    if plans is None:
        max_tp = int(np.max(designs.scale_up_domain)) if len(designs) else 8
        plans = candidate_plans(workload, max_tp=max(max_tp, 1))
    silicon = evaluate_silicon(designs, technology)
    training = _training(designs, silicon, workload, plans, settings, exhaustive)
    tables = technology if isinstance(technology, Technology) else load_technology()
    training, analog_constraints = analog_training(
        designs, silicon, training, plans, workload, settings, tables
    )
    economics = evaluate_economics(designs, silicon, training, settings)
    columns = _metric_columns(designs, silicon, training, economics, workload.precision)
    plan = _chosen_plans(plans, training, workload)
    constraints = dict(silicon.constraints)
    usable_gb = (
        usable_memory_b(training.memory_capacity_gb, settings, designs.memory_reserve_fraction)
        / GIGA
    )
    over = training.memory_per_chip_gb / usable_gb - 1.0
    # No plan at all can run (e.g. fewer chips than one model replica needs): infeasible too.
    constraints["g_memory"] = np.where(training.fits, over, np.maximum(over, 1e-6))
    constraints.update(analog_constraints)
    constraints.update(extra_constraints or {})
    G = np.column_stack(list(constraints.values()))
    feasible = np.all(G <= 0.0, axis=1) & np.all(np.isfinite(G), axis=1)
    return Metrics(columns, plan, constraints, feasible, silicon, training, economics)


def _metric_columns(
    designs: Designs,
    silicon: Silicon,
    training: Training,
    economics: Economics,
    precision: str,
) -> dict[str, FloatArray]:
    """The metric columns of :class:`Metrics`, each ``(n,)``."""
    # The training format's peak, or the 16-bit one where the format is missing or slower.
    peak = precision_flop_s(silicon, precision)[2]
    return {
        "training_days": training.training_time_s / SECONDS_PER_DAY,
        "chip_hours": training.training_time_s / SECONDS_PER_HOUR * designs.num_chips,
        "energy_mwh": economics.energy_mwh,
        "cost_usd": economics.cost_usd,
        "capex_usd": economics.capex_usd,
        "mfu": training.mfu,
        "hfu": training.hfu,
        "step_time_s": training.step_time_s,
        "avg_chip_power_w": training.avg_chip_power_w,
        "cluster_power_mw": economics.cluster_power_mw,
        "memory_per_chip_gb": training.memory_per_chip_gb,
        "peak_tflop_s": (peak + silicon.analog.peak_flop_s) / 1e12,
        "hbm_bandwidth_tb_s": silicon.hbm_bandwidth_tb_s,
        "hbm_capacity_gb": silicon.hbm_capacity_gb,
        "die_area_mm2": silicon.die_area_mm2,
        "silicon_area_mm2": silicon.silicon_area_mm2,
        "die_yield": silicon.die_yield,
        "unit_cost_usd": silicon.unit_cost_usd,
        "unit_price_usd": economics.unit_price_usd,
    }


def _chosen_plans(plans: Plans, training: Training, workload: Workload) -> dict[str, np.ndarray]:
    """The plan columns of :class:`Metrics`: each design's chosen plan, ``(n,)`` integers
    (recompute, schedule and placement as indices into their tuples)."""
    index = training.plan_index
    return {
        "tp": plans.tp[index].astype(np.int64),
        "pp": plans.pp[index].astype(np.int64),
        "dp": training.dp.astype(np.int64),
        "dp_shard": np.where(
            plans.hybrid_sharded[index],
            plans.dp_shard[index] if plans.dp_shard is not None else 0.0,
            training.dp,
        ).astype(np.int64),
        "ep": plans.ep[index].astype(np.int64),
        "etp": plans.expert_tensor_parallel[index].astype(np.int64),
        "microbatch": plans.microbatch[index].astype(np.int64),
        "recompute": plans.recompute[index].astype(np.int64),
        "zero_stage": plans.zero_stage[index].astype(np.int64),
        "vp": plans.virtual_stages[index].astype(np.int64),
        "cp": plans.context_parallel[index].astype(np.int64),
        "schedule": plans.schedule_code[index].astype(np.int64),
        "placement": plans.pipeline_inner[index].astype(np.int64),
        "offload_layers": plans.offloaded_layers[index].astype(np.int64),
        "recompute_layers": np.rint(
            plans.recomputed_share[index] * np.ceil(workload.layers / plans.pp[index])
        ).astype(np.int64),
    }


def _training(
    designs: Designs,
    silicon: Silicon,
    workload: Workload,
    plans: Plans,
    settings: Settings,
    exhaustive: bool,
) -> Training:
    """The plan search (§2); designs with analog tiles search theirs on the digital view of the
    workload (§2.9), each group vectorized."""
    analog = silicon.analog.present
    if not analog.any():
        return evaluate_training(designs, silicon, workload, plans, settings, exhaustive=exhaustive)
    parts = []
    for rows, view in ((~analog, workload), (analog, digital_view(workload))):
        index = np.flatnonzero(rows)
        if index.size:
            part_silicon = take(silicon, index)
            part_settings = settings.at_rows(index)  # type: ignore[arg-type]
            part = evaluate_training(
                designs.take(index),
                part_silicon,
                view,
                plans,
                part_settings,
                exhaustive=exhaustive,
                # The arrays' time and rewrites weigh in the plan choice (§2.9).
                extra_s=array_step_extra(part_silicon, workload, part_settings)
                if view is not workload
                else None,
            )
            parts.append((index, part))
    return merge(parts, len(designs))


SILICON_LIMITS = ("g_die_area", "g_power_density", "g_tdp_headroom")
"""Constraints on building the chip itself (§1.8), as opposed to running the workload."""


def infeasibility_reasons(metrics: Metrics, i: int, skip: tuple[str, ...] = ()) -> list[str]:
    """Human-readable reasons why design ``i`` is infeasible (empty when it is feasible);
    constraints named in ``skip`` are left out."""
    text = {
        "g_die_area": "a die exceeds the reticle limit",
        "g_power_density": "TDP per mm² of silicon exceeds the cooling limit",
        "g_tdp_headroom": "static and memory power alone exceed the TDP",
        "g_memory": "no parallelism plan fits the model in HBM on these chips",
        "g_endurance": "the run's weight writes exceed the analog cells' endurance",
        "g_precision": "the analog cells' effective bits are below what training tolerates",
    }
    if metrics.silicon.hbm_capacity_gb[i] <= 0:
        text["g_memory"] = (
            "no parallelism plan fits the model in on-chip memory on these chips (no HBM:"
            " SRAM and the analog arrays' weights)"
        )
    return [
        text.get(name, f"{name} > 0")
        for name, values in metrics.constraints.items()
        if name not in skip and not values[i] <= 0
    ]
