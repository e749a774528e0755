"""The model against published training runs (``dse validate``; docs/model.md §4).

Runs live in ``dse/validation_runs.toml`` with their sources. Every run is evaluated with the
same defaults; only facts of the run (cluster size, batch, a power cap, a published plan) are
inputs. Full runs' wall-clock figures include failures, so the model's goodput applies to
them; projections and throughput benchmarks are steady-state and are compared at goodput 1.
"""

from __future__ import annotations

import difflib
import inspect
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog._schema import Field, Table, check
from dse.catalog.chips import load_chip
from dse.catalog.workloads import (
    ATTENTION_BACKWARDS,
    ATTENTION_BLOCKS_FIELD,
    ATTENTION_KERNELS,
    ATTENTION_PRECISIONS,
    COMPILERS,
    CONTEXT_PARALLEL,
    EMBEDDINGS,
    EXPERT_BIAS_ADDS,
    FP8_CASTS,
    MOE_DISPATCHERS,
    MOE_PERMUTATIONS,
    PRECISIONS,
    Workload,
    attention_block_sizes,
    load_workload,
    training_flops,
)
from dse.designs import Designs, from_chips
from dse.errors import InputError
from dse.files import read_toml
from dse.intervals import ARCHITECTURES, architecture
from dse.model.economics import ENERGY_SCOPES, cluster_power_w
from dse.model.evaluate import Metrics, evaluate
from dse.model.plans import PLACEMENTS, RECOMPUTE, SCHEDULES, Plans, candidate_plans
from dse.model.silicon import evaluate_silicon
from dse.model.training.grid import build_grid, usable_memory_b
from dse.model.training.step import compute_parts_s
from dse.parameters import IN_CHIP_FILES
from dse.settings import Settings, load_settings
from dse.units import GB_PER_GIB, GIGA, SECONDS_PER_DAY, SECONDS_PER_HOUR, WH_PER_MWH

RUNS_PATH = Path(__file__).with_name("validation_runs.toml")
REPORTED = (
    "training_days",
    "chip_hours",
    "mfu",
    "energy_mwh",
    "avg_power_w_per_chip",
    "step_time_s",
    "tokens_per_s_per_chip",
)
CONFIDENCE = ("high", "medium", "low")
PLAN_KEYS = (
    "tp", "pp", "cp", "vp", "ep", "etp", "dp", "dp_shard", "microbatch", "zero_stage",
    "recompute_layers",
)  # fmt: skip
"""Plan facts a run may record. Those :func:`candidate_plans` cannot pin yet are kept as facts
and left to the search."""
STATE_FORMATS = (
    "weight_bytes_per_param",
    "grad_bytes_per_param",
    "optimizer_bytes_per_param",
    "grad_reduce_bytes_per_param",
    "logits_bytes_per_element",
)
"""Settings that are facts of a run's configuration: the bytes its framework keeps per parameter
for weights, main gradients and optimizer state, reduces gradients in (§2.1) and holds per logit
(§2.5). A run records them under ``[run.settings]`` where its published configuration departs
from the defaults."""
RUN_FLAGS = ("sharded_weight_copy", "offload_expert_inputs")
"""On/off settings that are facts of a run's framework, recorded under ``[run.settings]``:
``sharded_weight_copy = false`` where its ZeRO-3 keeps only the fp32 master shard and casts it
as it is gathered (PyTorch FSDP's mixed precision, JAX's fp32 parameters; §2.1);
``offload_expert_inputs = true`` where it keeps the routed experts' inputs in host memory
(Megatron-Core's fine-grained activation offloading of ``expert_fc1``; §2.5)."""
POWER_METRICS = ("energy_mwh", "avg_power_w_per_chip")
"""Figures of power rather than time, compared in the scope the run states (``energy_scope``,
:data:`ENERGY_SCOPES`; §4) and left out of the calibration of time."""
RUN_FACILITY = ("pue",)
"""Facts of the run's data centre, recorded under ``[run.settings]`` where its report states
them: its power usage effectiveness (§3.1)."""
RUN_OVERLAPS = ("dp_overlap", "moe_comm_overlap")
"""Overlaps a run's published configuration fixes (§2.7), recorded under ``[run.settings]``, the
calibrated default applying to runs that do not say: ``dp_overlap = 1`` where its stack issues
the data-parallel reduce-scatter and all-gather bucket by bucket behind compute (Megatron-Core's
``overlap_grad_reduce`` and ``overlap_param_gather``); ``moe_comm_overlap = 0`` where it turns
the expert all-to-all's overlap off (Megatron-Bridge's ``moe_a2a_overlap = False``)."""

_OPTIONAL_POSITIVE = Field(required=False, positive=True)
RUN_SCHEMA = Table(
    {
        "id": Field("str"),
        "label": Field("str"),
        "workload": Field("str"),
        "chip": Field("str"),
        "num_chips": Field("int", positive=True),
        "run_type": Field("str", choices=("full_run", "projection", "throughput")),
        "source": Field("str"),
        "quote": Field("str", required=False, default=""),
        "confidence": Field("str", required=False, choices=CONFIDENCE),
        "family": Field("str", required=False),
        "notes": Field("str", required=False, default=""),
        "energy_scope": Field("str", required=False, choices=ENERGY_SCOPES, default="facility"),
        "workload_overrides": Table(
            {
                "global_batch_tokens": _OPTIONAL_POSITIVE,
                "tokens": _OPTIONAL_POSITIVE,
                "seq_len": Field("int", required=False, positive=True),
                "precision": Field("str", required=False, choices=PRECISIONS),
                "attention": Field("str", required=False, choices=ATTENTION_KERNELS),
                "dropout": Field("number", required=False, minimum=0.0, maximum=0.99),
                "fp8_casts": Field("str", required=False, choices=FP8_CASTS),
                "attention_precision": Field("str", required=False, choices=ATTENTION_PRECISIONS),
                "expert_bias_add": Field("str", required=False, choices=EXPERT_BIAS_ADDS),
                "moe_permutation": Field("str", required=False, choices=MOE_PERMUTATIONS),
                "embedding": Field("str", required=False, choices=EMBEDDINGS),
                "attention_blocks": ATTENTION_BLOCKS_FIELD,
                "attention_backward": Field("str", required=False, choices=ATTENTION_BACKWARDS),
                "context_parallel": Field("str", required=False, choices=CONTEXT_PARALLEL),
                "compiler": Field("str", required=False, choices=COMPILERS),
                "moe_dispatcher": Field("str", required=False, choices=MOE_DISPATCHERS),
                "repeat_kv": Field("bool", required=False),
                "sequence_parallel": Field("bool", required=False),
                "mtp_layers": Field("int", required=False, minimum=0, maximum=100),
            },
            required=False,
        ),
        "chip_overrides": Table(
            {  # any number a chip file gives, within its declared bounds
                p.name: Field(
                    "int" if p.whole else "number", required=False, minimum=p.low, maximum=p.high
                )
                for p in IN_CHIP_FILES
                if not p.categorical
            },
            required=False,
        ),
        "settings": Table(
            {
                **{
                    k: Field("number", required=False, minimum=0.5, maximum=32.0)
                    for k in STATE_FORMATS
                },
                **{
                    k: Field("number", required=False, minimum=0.0, maximum=1.0)
                    for k in RUN_OVERLAPS
                },
                **{k: Field("bool", required=False) for k in RUN_FLAGS},
                **{
                    k: Field("number", required=False, minimum=1.0, maximum=3.0)
                    for k in RUN_FACILITY
                },
            },
            required=False,
        ),
        "plan": Table(
            {
                **{k: Field("int", required=False, positive=True) for k in PLAN_KEYS},
                "zero_stage": Field("int", required=False, minimum=0, maximum=3),
                "offload_layers": Field("int", required=False, minimum=0),
                "recompute": Field("str", required=False, choices=RECOMPUTE),
                "schedule": Field("str", required=False, choices=SCHEDULES),
                "placement": Field("str", required=False, choices=PLACEMENTS),
            },
            required=False,
        ),
        "reported": Table({key: _OPTIONAL_POSITIVE for key in REPORTED}),
        "memory": Table({"peak_allocated_gib": _OPTIONAL_POSITIVE}, required=False),
    }
)


@dataclass(frozen=True)
class Comparison:
    """One published figure against the model's prediction; ``error`` = predicted / reported − 1."""

    run: str
    model: str
    metric: str
    predicted: float
    reported: float
    run_type: str
    source: str
    family: str = "unknown"
    moe: bool = False
    hybrid: bool = False
    """Whether the workload is a hybrid Mamba-2 model (its own interval band, dse/intervals.py)."""
    rule: float = float("nan")
    """What "6·N·T at 40 % of the 16-bit peak" predicts for this figure (NaN for energy)."""
    plan_published: bool = False
    """Whether the run publishes (part of) its plan, which the model pins."""
    fits: bool = True
    """Whether the plan the model runs fits in memory."""

    @property
    def error(self) -> float:
        return self.predicted / self.reported - 1.0

    @property
    def architecture(self) -> str:
        """The kind of model (:data:`dse.intervals.ARCHITECTURES`): dense, MoE or hybrid
        Mamba-2, the grouping of the prediction intervals."""
        return architecture(self.moe, self.hybrid)

    @property
    def rule_error(self) -> float:
        return self.rule / self.reported - 1.0


def load_runs(path: Path = RUNS_PATH) -> list[dict[str, Any]]:
    """The published runs, validated."""
    data = read_toml(path)
    runs = [check(run, RUN_SCHEMA, path, f"run[{i}]") for i, run in enumerate(data.get("run", []))]
    for i, run in enumerate(runs):  # §2.6 a kernel's blocks, the backward ones filled in
        facts = run["workload_overrides"]
        if facts["attention_blocks"] is not None:
            key = f"run[{i}].workload_overrides.attention_blocks"
            facts["attention_blocks"] = attention_block_sizes(facts["attention_blocks"], path, key)
    return runs


def evaluate_run(
    run: dict[str, Any], settings: Settings, family_scales: Mapping[str, float] | None = None
) -> tuple[Metrics, Designs, Workload]:
    """The model's result for one published run: its workload with the run's facts, its chip
    with the cluster's facts, its published plan pinned, goodput 1 unless it is a full run.
    ``family_scales`` replaces the ``gemm_efficiency_scale`` of chip families
    (chips/technology/families.toml) for calibration."""
    designs, workload, plans, run_settings = run_inputs(run, settings, family_scales)
    return evaluate(designs, workload, run_settings, plans), designs, workload


def run_inputs(
    run: dict[str, Any], settings: Settings, family_scales: Mapping[str, float] | None = None
) -> tuple[Designs, Workload, Plans, Settings]:
    """What :func:`evaluate_run` evaluates for one published run: the cluster (one design),
    the workload with the run's facts, the candidate plans with its published plan pinned,
    and the settings with the run's own."""
    workload = load_workload(run["workload"])
    overrides = {k: v for k, v in run["workload_overrides"].items() if v is not None}
    for key in ("global_batch_tokens", "tokens"):
        if key in overrides:
            overrides[key] = float(overrides[key])
    if "attention" in overrides:
        overrides["attention_kernel"] = overrides.pop("attention")
    if overrides:
        workload = workload.with_changes(**overrides)
    chip = load_chip(run["chip"])
    designs = from_chips([chip], run["num_chips"])
    chip_facts = {k: v for k, v in run["chip_overrides"].items() if v is not None}
    if chip_facts:
        designs = designs.replace(**chip_facts)
    if family_scales and chip.family in family_scales:
        designs = designs.replace(gemm_efficiency_scale=family_scales[chip.family])
    plans = candidate_plans(
        workload, max_tp=chip.scale_up_domain, **pinnable(run["plan"], workload)
    )
    run_settings = settings.with_overrides(str(RUNS_PATH), **_run_settings(run))
    if run["run_type"] != "full_run":
        run_settings = replace(run_settings, goodput=1.0)
    return designs, workload, plans, run_settings


def _run_settings(run: dict[str, Any]) -> dict[str, float | bool]:
    """The settings the run's published configuration fixes (:data:`STATE_FORMATS`,
    :data:`RUN_OVERLAPS`, :data:`RUN_FLAGS`, :data:`RUN_FACILITY`) that it records."""
    return {
        k: v if k in RUN_FLAGS else float(v) for k, v in run["settings"].items() if v is not None
    }


def compare_run(
    run: dict[str, Any], settings: Settings, family_scales: Mapping[str, float] | None = None
) -> list[Comparison]:
    """Evaluate one run (:func:`evaluate_run`) and compare each reported figure."""
    designs, workload, plans, run_settings = run_inputs(run, settings, family_scales)
    metrics = evaluate(designs, workload, run_settings, plans)
    return _comparisons(run, metrics, designs, workload, run_settings)


def _comparisons(
    run: dict[str, Any],
    metrics: Metrics,
    designs: Designs,
    workload: Workload,
    settings: Settings,
) -> list[Comparison]:
    """Each reported figure of ``run`` beside the model's result for it (``settings``: the
    run's, as :func:`run_inputs` gives them)."""
    chip = load_chip(run["chip"])
    rule_ratio = _rule_ratio(metrics, designs, workload)
    out = []
    for metric in REPORTED:
        reported = run["reported"][metric]
        if reported is None:
            continue
        if metric == "tokens_per_s_per_chip":
            step = float(metrics.columns["step_time_s"][0])
            predicted = workload.global_batch_tokens / step / run["num_chips"]
        elif metric in POWER_METRICS:
            predicted = _power_prediction(metric, run, metrics, designs, settings)
        else:
            predicted = float(metrics.columns[metric][0])
        out.append(
            Comparison(
                run=run["id"],
                model=run["label"],
                metric=metric,
                predicted=predicted,
                reported=float(reported),
                run_type=run["run_type"],
                source=run["source"],
                family=chip.family,
                moe=workload.is_moe,
                hybrid=workload.is_hybrid,
                rule=_rule_prediction(metric, predicted, rule_ratio),
                plan_published=any(v is not None for v in run["plan"].values()),
                fits=bool(metrics.training.fits[0]),
            )
        )
    return out


def _power_prediction(
    metric: str, run: dict[str, Any], metrics: Metrics, designs: Designs, settings: Settings
) -> float:
    """§4 The model's energy (MWh) or mean power per chip (W) in the run's ``energy_scope``."""
    scope = run["energy_scope"]
    power_w = float(cluster_power_w(designs, metrics.silicon, metrics.training, settings, scope)[0])
    if metric == "avg_power_w_per_chip":
        return power_w / run["num_chips"]
    hours = float(metrics.training.training_time_s[0]) / SECONDS_PER_HOUR
    return power_w * hours / WH_PER_MWH


RULE_MFU = 0.4
"""The one-line baseline: model FLOPs 6·N·T (plus attention) at 40 % of the 16-bit peak."""


def _rule_ratio(metrics: Metrics, designs: Designs, workload: Workload) -> float:
    """Rule time over model time for this run (time figures scale by it, throughputs by its
    inverse): the run's model FLOPs at 40 % of the 16-bit peak of every chip of the cluster."""
    silicon = evaluate_silicon(designs)
    peak16 = float(silicon.sixteen_bit_peak_flop_s[0])
    rule_s = training_flops(workload) / (RULE_MFU * peak16 * float(designs.num_chips[0]))
    model_s = float(metrics.columns["training_days"][0]) * SECONDS_PER_DAY
    return rule_s / model_s if model_s > 0 else float("nan")


def _rule_prediction(metric: str, predicted: float, ratio: float) -> float:
    if metric in ("training_days", "chip_hours", "step_time_s"):
        return predicted * ratio
    if metric == "tokens_per_s_per_chip":
        return predicted / ratio
    if metric == "mfu":
        return RULE_MFU
    return float("nan")


def pinnable(plan: dict[str, Any], workload: Workload | None = None) -> dict[str, Any]:
    """The published plan facts the model can pin; the others (e.g. a ``vp`` over a custom
    uneven layer layout) are recorded in the run but left to the plan search."""
    accepted = set(inspect.signature(candidate_plans).parameters)
    pinned = {k: v for k, v in plan.items() if v is not None and k in accepted}
    vp, pp = pinned.get("vp"), pinned.get("pp", 1)
    if workload is not None and vp is not None and vp > 1:
        per_stage = math.ceil(workload.layers / pp)
        if pp <= 1 or per_stage % vp:
            del pinned["vp"]
    return pinned


def explain_run(run_id: str, settings: Settings) -> dict[str, Any]:
    """One published run traced: its source and quote, the facts the model is given (workload
    and cluster overrides, the published plan), the plan the model runs, its step-time
    breakdown and memory, and every published figure beside the prediction (what ``dse
    validate`` shows for one run)."""
    from dse.evaluation import memory_breakdown, step_breakdown

    runs = {run["id"]: run for run in load_runs()}
    if run_id not in runs:
        close = difflib.get_close_matches(run_id, runs, n=3)
        hint = f" (closest: {', '.join(close)})" if close else ""
        raise InputError(
            RUNS_PATH, "run", f"a run id (the run column of dse validate){hint}", run_id
        )
    run = runs[run_id]
    designs, workload, plans, run_settings = run_inputs(run, settings)
    metrics = evaluate(designs, workload, run_settings, plans)
    record = metrics.record(0)
    figures = {
        c.metric: {"predicted": c.predicted, "reported": c.reported, "error": c.error}
        for c in _comparisons(run, metrics, designs, workload, run_settings)
    }
    return {
        "run": run_id,
        "label": run["label"],
        "source": run["source"],
        "quote": run["quote"],
        "chip": run["chip"],
        "num_chips": run["num_chips"],
        "workload": run["workload"],
        "run_type": run["run_type"],
        "facts": {
            **{k: v for k, v in run["workload_overrides"].items() if v is not None},
            **{k: v for k, v in run["chip_overrides"].items() if v is not None},
            **_run_settings(run),
        },
        "published_plan": {k: v for k, v in run["plan"].items() if v is not None},
        "plan": record["plan"],
        "fits": bool(metrics.training.fits[0]),
        "memory_per_chip_gb": record["memory_per_chip_gb"],
        "memory_gb": memory_breakdown(metrics, 0),
        "usable_memory_gb": float(
            usable_memory_b(
                metrics.training.memory_capacity_gb[0],
                settings,
                designs.memory_reserve_fraction[0],
            )
            / GIGA
        ),
        "step_time_s": record["step_time_s"],
        "mfu": record["mfu"],
        "breakdown_s": step_breakdown(metrics, 0),
        "compute_per_microbatch_s": _compute_parts(
            designs, workload, plans, run_settings, int(metrics.training.plan_index[0])
        ),
        "figures": figures,
        "global_batch_tokens": workload.global_batch_tokens,
    }


def _compute_parts(
    designs: Designs, workload: Workload, plans: Plans, settings: Settings, plan: int
) -> dict[str, float]:
    """One micro-batch's compute on one stage at the chosen ``plan`` (an index into ``plans``)
    split into the terms of docs/model.md §2.6 (s; :func:`compute_parts_s`)."""
    silicon = evaluate_silicon(designs)
    grid = build_grid(
        designs,
        silicon,
        workload.precision,
        plans,
        settings,
        slice(0, 1),
        workload.attention_precision,
    )
    cell = grid.cells(np.zeros(1, int), np.array([plan]))
    return {k: float(v[0]) for k, v in compute_parts_s(cell, workload, settings).items()}


def validate(
    settings: Settings | None = None,
    path: Path = RUNS_PATH,
    family_scales: Mapping[str, float] | None = None,
) -> list[Comparison]:
    """Every published figure of every run against the model, with one set of defaults."""
    settings = settings or load_settings()
    return [row for run in load_runs(path) for row in compare_run(run, settings, family_scales)]


def searched_plan_pairs(
    settings: Settings | None = None, path: Path = RUNS_PATH
) -> list[tuple[Comparison, Comparison]]:
    """Every figure of every steady-state run that publishes a plan, evaluated twice: with the
    published plan pinned and with every plan key left to the search (the run's other facts
    kept), as ``(pinned, searched)`` (docs/model.md §4, "Plans left to the search")."""
    settings = settings or load_settings()
    pairs: list[tuple[Comparison, Comparison]] = []
    for run in load_runs(path):
        if run["run_type"] != "throughput" or all(v is None for v in run["plan"].values()):
            continue
        free = {**run, "plan": dict.fromkeys(run["plan"])}
        pairs += zip(compare_run(run, settings), compare_run(free, settings), strict=True)
    return pairs


def median_abs_error(rows: list[Comparison]) -> float:
    """Median of |predicted / reported − 1| over all rows."""
    return statistics.median(abs(r.error) for r in rows) if rows else float("nan")


PLAN_TOLERANCE = 0.15
"""The training-model issue's target: a run's published plan, pinned, lands within ±15 % of its
published step time or throughput."""


@dataclass(frozen=True)
class PublishedPlans:
    """§4 The steady-state time figures (not full runs, not power) of the runs that publish
    their plan, with it pinned: how many, how many lie within ±``tolerance``, their median
    |error|, and the runs whose pinned plan does not fit in memory."""

    figures: int
    within: int
    tolerance: float
    median_abs_error: float
    not_fitting: tuple[str, ...]


def published_plans(rows: list[Comparison], tolerance: float = PLAN_TOLERANCE) -> PublishedPlans:
    """§4 :class:`PublishedPlans` of ``rows`` (:func:`validate`)."""
    pinned = [
        r
        for r in rows
        if r.plan_published and r.run_type != "full_run" and r.metric not in POWER_METRICS
    ]
    errors = [abs(r.error) for r in pinned]
    return PublishedPlans(
        figures=len(pinned),
        within=sum(e <= tolerance for e in errors),
        tolerance=tolerance,
        median_abs_error=statistics.median(errors) if errors else float("nan"),
        not_fitting=tuple(sorted({r.run for r in pinned if not r.fits})),
    )


@dataclass(frozen=True)
class MemoryCheck:
    """§4 A run's peak memory per chip in the model (its pinned plan's weights, gradients,
    optimizer state and activations, §2.1 and §2.5) beside the peak its log reports
    (``torch.cuda.max_memory_allocated``: tensors only, no allocator cache, CUDA context or
    communication buffers); both in GB (10⁹ bytes)."""

    run: str
    predicted_gb: float
    logged_gb: float

    @property
    def error(self) -> float:
        return self.predicted_gb / self.logged_gb - 1.0


def logged_memory(settings: Settings | None = None, path: Path = RUNS_PATH) -> list[MemoryCheck]:
    """§4 :class:`MemoryCheck` of every run whose ``[run.memory]`` records a logged peak."""
    settings = settings or load_settings()
    checks = []
    for run in load_runs(path):
        logged = run["memory"]["peak_allocated_gib"]  # torch max_memory_allocated() / 2**30
        if logged is None:
            continue
        metrics = evaluate_run(run, settings)[0]
        predicted = float(metrics.columns["memory_per_chip_gb"][0])
        checks.append(MemoryCheck(run["id"], predicted, float(logged) * GB_PER_GIB))
    return checks


def memory_median_abs_error(checks: list[MemoryCheck]) -> float:
    """Median |predicted / logged − 1| of the logged peak memories (NaN when none)."""
    return statistics.median(abs(m.error) for m in checks) if checks else float("nan")


def rule_median_abs_error(rows: list[Comparison]) -> float:
    """Median |error| of the 40 %-of-peak rule over the rows it predicts (not energy)."""
    errors = [abs(r.rule_error) for r in rows if r.rule == r.rule]
    return statistics.median(errors) if errors else float("nan")


def by_architecture(rows: list[Comparison]) -> dict[str, dict[str, float]]:
    """Per kind of model (:attr:`Comparison.architecture`, in :data:`dse.intervals.ARCHITECTURES`
    order, kinds without a figure left out): its figures, their median |error| and the 40 %
    rule's, so that one pooled median does not hide where the model is weakest."""
    out: dict[str, dict[str, float]] = {}
    for kind in ARCHITECTURES:
        kept = [r for r in rows if r.architecture == kind]
        if kept:
            out[kind] = {
                "figures": len(kept),
                "median_abs_error": median_abs_error(kept),
                "rule_median_abs_error": rule_median_abs_error(kept),
            }
    return out
