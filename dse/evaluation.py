"""Evaluate one catalog chip on one cluster and report it as a record (``dse evaluate``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dse import intervals
from dse.catalog.chips import Chip, load_chip
from dse.catalog.technology import load_technology
from dse.catalog.workloads import Workload, training_flops
from dse.designs import from_chips
from dse.errors import InputError
from dse.intervals import INTERVAL_METRICS
from dse.model.evaluate import SILICON_LIMITS, Metrics, evaluate, infeasibility_reasons
from dse.model.plans import candidate_plans
from dse.model.training.memory import MEMORY_PARTS
from dse.settings import Settings


def prediction_intervals(
    record: dict[str, Any],
    moe: bool,
    searched: bool = True,
    new_family: bool = False,
    hybrid: bool = False,
) -> dict[str, list[float]]:
    """80 % intervals (docs/model.md §4) of one record's metrics, ``metric → [low, high]``;
    the same computation as a results row's ``<metric>_low``/``_high`` columns. ``searched``:
    the plan was left to the search (wider and slower steady-state bands than a pinned plan's);
    ``new_family``: the chip's family calibrated no published run (the errors of a family left
    out); ``moe``, ``hybrid``: the workload is a Mixture of Experts, a hybrid Mamba-2 model
    (the errors of such runs)."""
    columns = {metric: np.array([float(record[metric])]) for metric in INTERVAL_METRICS}
    bands = intervals.prediction_intervals(
        columns, moe=moe, searched=searched, new_family=new_family, hybrid=hybrid
    )
    return {metric: [float(low[0]), float(high[0])] for metric, (low, high) in bands.items()}


def evaluate_one(
    chip_name: str | Path | Chip,
    workload: Workload,
    num_chips: int,
    settings: Settings,
    pinned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """All metrics of ``workload`` on ``num_chips`` of one chip, at the best (or pinned) plan."""
    chip = chip_name if isinstance(chip_name, Chip) else load_chip(chip_name)
    pinned = dict(pinned or {})
    _check_pinned_replicas(pinned, num_chips)
    plans = candidate_plans(workload, max_tp=chip.scale_up_domain, **pinned)
    metrics = evaluate(from_chips([chip], num_chips), workload, settings, plans)
    record = metrics.record(0)
    plan = record["plan"]
    assert isinstance(plan, dict)
    out: dict[str, Any] = {
        "feasible": record["feasible"],
        "reasons": infeasibility_reasons(metrics, 0),
        "notes": [],
        "chip": chip.id,
        "workload": workload.id,
        "num_chips": num_chips,
        "idle_chips": idle_chips(num_chips, plan),
        "precision": workload.precision,
        "tokens": workload.tokens,
        "training_flops": training_flops(workload),
    }
    out.update(record)
    out["breakdown_s"] = step_breakdown(metrics, 0)
    out["memory_gb"] = memory_breakdown(metrics, 0)
    new_family = not load_technology().calibrated(chip.family)
    out["interval"] = prediction_intervals(
        out,
        workload.is_moe,
        searched=len(plans) > 1,
        new_family=new_family,
        hybrid=workload.is_hybrid,
    )
    out["interval_level"] = intervals.INTERVAL_LEVEL
    out["interval_basis"] = intervals.interval_basis(new_family)
    out["interval_architecture"] = intervals.architecture(workload.is_moe, workload.is_hybrid)
    if "peak_tflop_s" in chip.published:
        # A shipped product is buildable by definition: a silicon limit it appears to break is
        # an error of the silicon model's estimate, reported as a note, not a design violation.
        broken = [name for name in SILICON_LIMITS if not metrics.constraints[name][0] <= 0]
        out["notes"] = [_SILICON_NOTE.format(limit=name, chip=chip.name) for name in broken]
        out["reasons"] = infeasibility_reasons(metrics, 0, skip=SILICON_LIMITS)
        out["feasible"] = not out["reasons"]
    return out


def step_breakdown(metrics: Metrics, i: int) -> dict[str, float]:
    """Design ``i``'s training step split into its parts (s; the bubble as a fraction):
    compute, each kind of communication that is exposed, the optimizer (docs/model.md §2.8)."""
    training = metrics.training
    return {
        "compute": float(training.compute_time_s[i]),
        "tensor_parallel": float(training.tp_comm_time_s[i]),
        "pipeline_p2p": float(training.pp_comm_time_s[i]),
        "expert_all_to_all": float(training.moe_comm_time_s[i]),
        "context_parallel": float(training.cp_comm_time_s[i]),
        "host_offload": float(training.host_offload_time_s[i]),
        "data_parallel_exposed": float(training.dp_exposed_time_s[i]),
        "optimizer": float(training.optimizer_time_s[i]),
        "bubble_fraction": float(training.bubble_fraction[i]),
    }


def memory_breakdown(metrics: Metrics, i: int) -> dict[str, float]:
    """Design ``i``'s memory per chip (GB) at its chosen plan by kind: weights, gradients,
    optimizer state, kept activations, logits and the working set; they sum to
    ``memory_per_chip_gb`` (docs/model.md §2.1, §2.5)."""
    training = metrics.training
    return {kind: float(getattr(training, f"memory_{kind}_gb")[i]) for kind in MEMORY_PARTS}


def idle_chips(num_chips: int, plan: dict[str, Any]) -> int:
    """Chips of the cluster that the plan leaves unused: ``num_chips − tp·pp·cp·dp`` (chips;
    expert parallelism folds into the data-parallel ranks)."""
    return int(num_chips - plan["tp"] * plan["pp"] * plan.get("cp", 1) * plan["dp"])


def _check_pinned_replicas(pinned: Mapping[str, Any], num_chips: int) -> None:
    """One line where the pinned parallel degrees need more chips than the cluster has: one
    model replica takes ``tp·pp·cp`` chips, a pinned ``dp`` that many times over, and each
    pipeline stage needs at least ``ep·etp`` ranks for its experts."""
    degrees = {key: pinned.get(key) or 1 for key in ("tp", "pp", "cp")}
    replica = math.prod(degrees.values())
    product = " x ".join(degrees)
    dp = pinned.get("dp")
    if dp is not None and dp * replica > num_chips:
        raise InputError.for_argument(
            "dp", f"dp x {product} <= `num_chips` ({num_chips})", dp * replica
        )
    if replica > num_chips:
        first = next(key for key in degrees if pinned.get(key))
        raise InputError.for_argument(
            first, f"{product} <= `num_chips` ({num_chips}): one model replica", replica
        )
    ep, etp = pinned.get("ep") or 1, pinned.get("etp") or 1
    if ep * etp * degrees["pp"] > num_chips:
        names = "ep x etp x pp" if etp > 1 else "ep x pp"
        raise InputError.for_argument(
            "ep" if pinned.get("ep") else "etp",
            f"{names} <= `num_chips` ({num_chips}): the expert ranks of one pipeline stage",
            ep * etp * degrees["pp"],
        )


_SILICON_NOTE = (
    "{limit} > 0 by the model's estimate, but {chip} is a shipped product (published datasheet), "
    "so the silicon limits are not enforced for it"
)


def plain(value: Any) -> Any:
    """Numpy scalars and arrays → plain Python values that JSON understands; NaN → None."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
