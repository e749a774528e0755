"""The model's inputs that levers transform (:class:`State`) and one run of the model on them.

A :class:`State` is one design on its cluster, one workload, the settings and (optionally) a
modified copy of the technology tables. :func:`run` evaluates it through the model and keeps
what the roadmap reports: the headline metrics and their additive parts (time by component,
energy by consumer, cost by kind), so that a step's note can say which part did not shrink.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from dse.catalog.technology import Technology
from dse.catalog.workloads import Workload
from dse.designs import Designs
from dse.model.evaluate import evaluate
from dse.model.plans import PLACEMENTS, RECOMPUTE, SCHEDULES, candidate_plans
from dse.settings import Settings
from dse.units import SECONDS_PER_DAY, SECONDS_PER_HOUR, WH_PER_MWH


@dataclass(frozen=True)
class State:
    """Inputs of one model run: ``designs`` holds one design (n = 1) on its cluster.

    ``technology`` is None for the shipped tables; a lever that scales a technology value (e.g.
    energy per FLOP for analog compute) sets a modified copy.
    """

    workload: Workload
    designs: Designs
    settings: Settings
    technology: Technology | None = None


@dataclass(frozen=True)
class Outcome:
    """One run's metrics (scalars) and their additive parts.

    ``time_days`` splits ``training_days`` (compute, pipeline bubble, communication, optimizer,
    failures and restarts); ``energy_mwh_parts`` splits ``energy_mwh`` by consumer (chip compute
    and memory, chip static, host and network; each with its share of the facility overhead,
    PUE); ``cost_usd_parts`` splits ``cost_usd`` (hardware amortized over the run,
    electricity). Each mapping sums to its total.
    """

    training_days: float
    energy_mwh: float
    cost_usd: float
    capex_usd: float
    cluster_power_mw: float
    mfu: float
    feasible: bool
    plan: dict[str, object]
    time_days: MappingProxyType[str, float] = field(repr=False)
    energy_mwh_parts: MappingProxyType[str, float] = field(repr=False)
    cost_usd_parts: MappingProxyType[str, float] = field(repr=False)

    def record(self) -> dict[str, object]:
        """The outcome as a plain record (the parts as nested objects)."""
        return {
            "cost_usd": self.cost_usd,
            "energy_mwh": self.energy_mwh,
            "training_days": self.training_days,
            "capex_usd": self.capex_usd,
            "cluster_power_mw": self.cluster_power_mw,
            "mfu": self.mfu,
            "feasible": self.feasible,
            "plan": self.plan,
            "time_days": dict(self.time_days),
            "energy_mwh_parts": dict(self.energy_mwh_parts),
            "cost_usd_parts": dict(self.cost_usd_parts),
        }


def run(state: State) -> Outcome:
    """Evaluate ``state`` through the model (best parallelism plan searched) and split it up.

    A modified technology (``state.technology``) is passed to the model in place of the shipped
    tables.
    """
    designs, workload, settings = state.designs, state.workload, state.settings
    plans = candidate_plans(workload, max_tp=max(int(np.max(designs.scale_up_domain)), 1))
    metrics = evaluate(designs, workload, settings, plans, technology=state.technology)
    silicon, training, economics = metrics.silicon, metrics.training, metrics.economics
    feasible = bool(metrics.feasible[0])
    index = int(training.plan_index[0])

    steps = float(training.steps[0])
    # The pipeline runs (microbatches + (pp − 1)/vp) stage slots; the extra ones are the bubble.
    bubble = float(training.bubble_fraction[0])
    comm = {
        "tensor-parallel comm": float(training.tp_comm_time_s[0]),
        "pipeline comm": float(training.pp_comm_time_s[0]),
        "expert all-to-all": float(training.moe_comm_time_s[0]),
        "context-parallel comm": float(training.cp_comm_time_s[0]),
    }
    compute_s = float(training.compute_time_s[0])
    pipeline_s = compute_s + sum(comm.values()) / (1.0 - bubble)
    productive = {"compute": compute_s * (1.0 - bubble), "pipeline bubble": bubble * pipeline_s}
    productive.update(comm)
    productive["data-parallel comm"] = float(training.dp_exposed_time_s[0])
    productive["optimizer step"] = float(training.optimizer_time_s[0])
    days_per_step_s = steps / SECONDS_PER_DAY
    time_days = {name: seconds * days_per_step_s for name, seconds in productive.items()}
    training_days = float(training.training_time_s[0]) / SECONDS_PER_DAY
    time_days["failures and restarts"] = max(training_days - sum(time_days.values()), 0.0)

    hours = float(training.training_time_s[0]) / SECONDS_PER_HOUR
    chips, used = float(designs.num_chips[0]), float(training.chips_used[0])
    static_w = float(silicon.static_power_w[0])
    it_w = {
        "chip compute and memory": used * (float(training.avg_chip_power_w[0]) - static_w),
        "chip static": chips * static_w,
        "host and network": chips * settings.host_power_w_per_chip,
    }
    mwh_per_w = settings.pue * hours / WH_PER_MWH  # each consumer with its share of cooling
    energy = {name: watts * mwh_per_w for name, watts in it_w.items()}

    plan: dict[str, object] = {
        "tp": int(plans.tp[index]),
        "pp": int(plans.pp[index]),
        "vp": int(plans.virtual_stages[index]),
        "cp": int(plans.context_parallel[index]),
        "schedule": SCHEDULES[int(plans.schedule_code[index])],
        "placement": PLACEMENTS[int(plans.pipeline_inner[index])],
        "dp": int(training.dp[0]),
        "dp_shard": plans.describe(index)["dp_shard"] or int(training.dp[0]),
        "ep": int(plans.ep[index]),
        "etp": int(plans.expert_tensor_parallel[index]),
        "microbatch": int(plans.microbatch[index]),
        "recompute": RECOMPUTE[int(plans.recompute[index])],
        "zero_stage": int(plans.zero_stage[index]),
        "offload_layers": int(plans.offloaded_layers[index]),
        "recompute_layers": plans.describe(index)["recompute_layers"],
    }
    return Outcome(
        training_days=training_days,
        energy_mwh=float(economics.energy_mwh[0]),
        cost_usd=float(economics.cost_usd[0]),
        capex_usd=float(economics.capex_usd[0]),
        cluster_power_mw=float(economics.cluster_power_mw[0]),
        mfu=float(training.mfu[0]),
        feasible=feasible,
        plan=plan,
        time_days=MappingProxyType(time_days),
        energy_mwh_parts=MappingProxyType(energy),
        cost_usd_parts=MappingProxyType(
            {
                "hardware": float(economics.hardware_cost_usd[0]),
                "electricity": float(economics.electricity_cost_usd[0]),
            }
        ),
    )
