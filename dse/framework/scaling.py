"""The cost of scale: compute-optimal training of models from 1e9 to 1e13 parameters on one chip.

The paper's core: C = C0·P·T with C0 ≈ 6 and T ≈ 20·P, so C ≈ 120·P²; a Mixture of Experts
divides it by K. For each model size ``P`` (log-spaced), :func:`cost_of_scale` builds a
parameter-count-only workload (the catalog's standard shape, ``tokens = 20·P``), then either
finds the smallest cluster that trains it within a deadline or times it on a given cluster,
and reports FLOPs, chips, time, power, energy and cost.

The deadline search is vectorized: all cluster sizes of a log-spaced grid go through one
:func:`~dse.model.evaluate.evaluate` call per model size, then one more call refines between the
last size that misses the deadline and the first that meets it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dse.catalog._schema import check
from dse.catalog.chips import Chip
from dse.catalog.workloads import (
    CHINCHILLA_TOKENS_PER_PARAM,
    STANDARD_HEAD_DIM,
    WORKLOAD_SCHEMA,
    Workload,
    build_workload,
    standard_shape,
    training_flops,
)
from dse.designs import Designs, from_chips
from dse.errors import InputError
from dse.framework.moe import mixture_of_experts
from dse.model.evaluate import Metrics, evaluate
from dse.model.plans import candidate_plans
from dse.settings import Settings, load_settings

FLOPS_PER_PARAM_PER_TOKEN = 6.0
"""C0: 2 forward + 4 backward FLOPs per parameter per token (Kaplan et al. 2020)."""
PAPER_FLOPS_PER_PARAM_SQUARED = FLOPS_PER_PARAM_PER_TOKEN * CHINCHILLA_TOKENS_PER_PARAM
"""C ≈ 120·P² for compute-optimal training (Faraboschi et al. 2024, arXiv:2404.08811)."""
SEQ_LEN = 4096
"""Sequence length of the parameter-count-only workloads (as workloads/dense-*.toml)."""
BATCH_TOKENS_COEFFICIENT, BATCH_TOKENS_EXPONENT = 0.292, 0.3271
"""[P/E] Compute-optimal global batch B = 0.292·C^0.3271 tokens (DeepSeek LLM, arXiv:2401.02954,
fitted up to ~3e20 FLOPs, extrapolated here). A fixed batch would cap data parallelism and
leave the largest models bubble-bound whatever the cluster size."""
HEADS_MULTIPLE = 8
"""Attention heads rounded to a multiple of 8, so tensor parallelism up to 8 divides them."""
DEFAULT_DAYS = 90.0
DEFAULT_MAX_POWER_MW = 100.0
"""[E] a large AI datacentre campus today (tens to ~150 MW); the scaling table flags sizes above."""
MAX_CLUSTER_CHIPS = 2**27
"""Largest cluster the deadline search tries (~134M chips): far past any real one."""
FASTEST_TOLERANCE = 0.05
"""Where the deadline cannot be met: report the smallest cluster within 5% of the fastest."""
GRID_POINTS_PER_OCTAVE = 4
REFINE_POINTS = 64


@dataclass(frozen=True)
class ScalingRow:
    """One model size on one cluster. Counts are plain numbers; ``meets_deadline`` is None when
    the cluster size was given rather than searched."""

    total_params: float
    active_params: float
    moe_k: float
    tokens: float
    training_flops: float
    paper_flops: float
    flops_over_120p2: float
    num_chips: int
    training_days: float
    meets_deadline: bool | None
    cluster_power_mw: float
    within_power: bool
    energy_mwh: float
    cost_usd: float
    capex_usd: float
    mfu: float
    feasible: bool

    def record(self) -> dict[str, object]:
        return asdict(self)


def model_sizes(start: float, stop: float, points: int) -> np.ndarray:
    """``points`` parameter counts log-spaced from ``start`` to ``stop``, shape ``(points,)``."""
    if not start > 0:
        raise InputError.for_argument("start", "a parameter count > 0", start)
    if not stop >= start:
        raise InputError.for_argument("stop", f"a parameter count >= `start` ({start:g})", stop)
    if points < 1:
        raise InputError.for_argument("points", "a whole number >= 1", points)
    return np.geomspace(start, stop, points)


def compute_optimal_batch_tokens(flops: float) -> float:
    """Global batch (tokens) for a run of ``flops`` FLOPs, at least one sequence."""
    return max(BATCH_TOKENS_COEFFICIENT * flops**BATCH_TOKENS_EXPONENT, float(SEQ_LEN))


def parameter_shape(total_params: float) -> dict[str, int]:
    """The catalog's standard shape (d = 128·L, GELU MLP of 4·d) with the heads rounded to a
    multiple of :data:`HEADS_MULTIPLE` (the standard shape has as many heads as layers)."""
    shape = standard_shape(total_params)
    heads = max(round(shape["heads"] / HEADS_MULTIPLE), 1) * HEADS_MULTIPLE
    d_model = heads * STANDARD_HEAD_DIM
    return {**shape, "heads": heads, "d_model": d_model, "ffn_dim": 4 * d_model}


def parameter_workload(
    total_params: float, moe_k: float = 1.0, precision: str = "bf16"
) -> Workload:
    """A compute-optimal workload given by its parameter count alone.

    Dense (``moe_k == 1``): :func:`parameter_shape` for ``total_params``, counts set to P,
    tokens = 20·P, the compute-optimal batch for C = 120·P². MoE: the shape of a dense model
    with P/K parameters (width and depth follow the active count), its MLPs split into experts
    by :func:`~dse.framework.moe.mixture_of_experts` so that total = P and active = P/K
    exactly; tokens = 20·P (total) and the batch for C = 120·P²/K, as in C_MoE ≈ 120·P²/K.
    """
    if not moe_k >= 1.0:
        raise InputError.for_argument("moe_k", "K = total / active parameters >= 1", moe_k)
    flops = PAPER_FLOPS_PER_PARAM_SQUARED * total_params**2 / moe_k
    name = f"{total_params:.3g} parameters" + (f", MoE K={moe_k:g}" if moe_k > 1 else "")
    raw = {
        "name": name,
        "source": "parameter count only: standard shape, T = 20 x P (Hoffmann et al. 2022)",
        "model": {**parameter_shape(total_params / moe_k), "total_params": total_params / moe_k},
        "training": {
            "seq_len": SEQ_LEN,
            "global_batch_tokens": compute_optimal_batch_tokens(flops),
            "precision": precision,
        },
    }
    dense = build_workload(f"params-{total_params:.3g}", check(raw, WORKLOAD_SCHEMA, name), name)
    if moe_k == 1.0:
        return dense
    moe = mixture_of_experts(dense, moe_k, total_params, source="moe_k")
    return moe.with_changes(tokens=CHINCHILLA_TOKENS_PER_PARAM * float(total_params))


def cluster_grid(scale_up_domain: int, max_chips: int = MAX_CLUSTER_CHIPS) -> np.ndarray:
    """Cluster sizes to try, ascending: powers of two up to one scale-up domain, then
    whole domains log-spaced at :data:`GRID_POINTS_PER_OCTAVE` per doubling."""
    domain = max(int(scale_up_domain), 1)
    octaves = np.log2(max_chips)
    sizes = np.exp2(np.arange(0.0, octaves + 1e-9, 1.0 / GRID_POINTS_PER_OCTAVE))
    whole = np.where(sizes < domain, np.round(sizes), np.round(sizes / domain) * domain)
    return np.unique(whole.astype(np.int64))


def _on_clusters(chip: Chip, num_chips: np.ndarray) -> Designs:
    """One chip on each cluster size, shape ``(len(num_chips),)``, without a per-point loop."""
    one = from_chips([chip], 1)
    index = np.zeros(len(num_chips), dtype=np.int64)
    return one.take(index).replace(num_chips=num_chips.astype(np.float64))


def _smallest_meeting(metrics: Metrics, days: float) -> int | None:
    ok = metrics.feasible & (metrics.columns["training_days"] <= days)
    return int(np.argmax(ok)) if ok.any() else None


def chips_for_deadline(
    chip: Chip, workload: Workload, days: float, settings: Settings
) -> tuple[int, Metrics, int, bool]:
    """The smallest cluster of ``chip`` that trains ``workload`` within ``days``.

    Returns ``(num_chips, metrics, index, met)``: ``metrics`` of the last evaluate call and the
    chosen design's ``index`` in it. Where no cluster up to :data:`MAX_CLUSTER_CHIPS` meets the
    deadline, ``met`` is False and the cluster is the smallest within
    :data:`FASTEST_TOLERANCE` of the fastest time (past it, chips buy almost nothing).
    """
    plans = candidate_plans(workload, max_tp=chip.scale_up_domain)
    grid = cluster_grid(chip.scale_up_domain)
    metrics = evaluate(_on_clusters(chip, grid), workload, settings, plans)
    first = _smallest_meeting(metrics, days)
    if first is None:
        times = np.where(metrics.feasible, metrics.columns["training_days"], np.inf)
        if not np.isfinite(times).any():
            times = metrics.columns["training_days"]
        best = int(np.argmax(times <= np.min(times) * (1.0 + FASTEST_TOLERANCE)))
        return int(grid[best]), metrics, best, False
    if first == 0:
        return int(grid[0]), metrics, 0, True
    step = chip.scale_up_domain if grid[first - 1] >= chip.scale_up_domain else 1
    fine = np.unique(np.linspace(grid[first - 1], grid[first], REFINE_POINTS) // step * step)
    fine = fine[(fine > grid[first - 1]) & (fine <= grid[first])].astype(np.int64)
    refined = evaluate(_on_clusters(chip, fine), workload, settings, plans)
    index = _smallest_meeting(refined, days)
    if index is None:  # not monotone in cluster size: keep the grid's point
        return int(grid[first]), metrics, first, True
    return int(fine[index]), refined, index, True


def cost_of_scale(
    chip: Chip,
    sizes: np.ndarray,
    *,
    days: float | None = None,
    num_chips: int | None = None,
    max_power_mw: float = DEFAULT_MAX_POWER_MW,
    moe_k: float = 1.0,
    precision: str = "bf16",
    settings: Settings | None = None,
) -> list[ScalingRow]:
    """One :class:`ScalingRow` per model size: on ``num_chips`` when given, else on the
    smallest cluster that finishes within ``days`` (default :data:`DEFAULT_DAYS`)."""
    if days is not None and num_chips is not None:
        raise InputError.for_argument("days", "either `days` or `num_chips`, not both", days)
    if days is not None and not days > 0:
        raise InputError.for_argument("days", "a number of days > 0", days)
    if num_chips is not None and num_chips < 1:
        raise InputError.for_argument("num_chips", "a whole number >= 1", num_chips)
    if not max_power_mw > 0:
        raise InputError.for_argument("max_power_mw", "a power in MW > 0", max_power_mw)
    settings = settings or load_settings()
    deadline = DEFAULT_DAYS if days is None and num_chips is None else days
    rows = []
    for params in sizes:  # one evaluate call (many cluster sizes) per model size
        workload = parameter_workload(float(params), moe_k, precision)
        if deadline is None:
            assert num_chips is not None
            metrics = evaluate(_on_clusters(chip, np.array([num_chips])), workload, settings)
            chips, index, met = num_chips, 0, None
        else:
            chips, metrics, index, found = chips_for_deadline(chip, workload, deadline, settings)
            met = found
        rows.append(_row(workload, chips, metrics, index, met, max_power_mw))
    return rows


def _row(
    w: Workload, chips: int, m: Metrics, i: int, met: bool | None, max_power_mw: float
) -> ScalingRow:
    flops = training_flops(w)
    paper = PAPER_FLOPS_PER_PARAM_SQUARED * w.total_params**2
    power = float(m.columns["cluster_power_mw"][i])
    return ScalingRow(
        total_params=w.total_params,
        active_params=w.active_params,
        moe_k=w.moe_k,
        tokens=w.tokens,
        training_flops=flops,
        paper_flops=paper / w.moe_k,
        flops_over_120p2=flops / paper,
        num_chips=int(chips),
        training_days=float(m.columns["training_days"][i]),
        meets_deadline=met,
        cluster_power_mw=power,
        within_power=power <= max_power_mw,
        energy_mwh=float(m.columns["energy_mwh"][i]),
        cost_usd=float(m.columns["cost_usd"][i]),
        capex_usd=float(m.columns["capex_usd"][i]),
        mfu=float(m.columns["mfu"][i]),
        feasible=bool(m.feasible[i]),
    )
