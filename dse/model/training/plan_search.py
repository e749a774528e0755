"""§2.4 The plan search, bounded: the fastest plan that fits without evaluating every plan.

The exhaustive search (:func:`dse.model.training.step.evaluate_training` with
``exhaustive=True``) evaluates all ``n × k`` (design, plan) cells. This one evaluates only the
cells that could still win, and returns the same plan:

1. A lower bound of every cell's step time from a few numbers per plan and per design: the
   matmul, attention and memory-bound work of one micro-batch on one stage at the sustained
   rates and the *largest* efficiencies (no roofline), the kernel latencies, a hybrid's Mamba-2
   scans at their kernels' cycles and the MoE
   layers' host time beyond their experts' GEMMs (:func:`moe_host_lower_bound`), plus the
   tensor-parallel and pipeline traffic that no overlap can hide at the faster of the links
   and the MoE all-to-all's (:func:`moe_lower_bound`), times the layout's micro-batches plus the
   bubble; plus the exposed share of the step's data-parallel traffic
   (:func:`data_parallel_lower_bound`). The layout — data parallelism ``D`` and whether the
   plan runs at all — is the model's own (:func:`data_parallel_layout`): it depends only on the
   cluster and the plan. The plan part is a ``(J, k)`` matrix computed once per workload, the
   design part an ``(n, J)`` matrix. Cells that cannot run get an infinite bound; so do,
   memory first, cells whose lower bound of memory per chip (:func:`memory_bounds`, with the
   activations of the format the design runs) exceeds the design's HBM (numba books only).
2. Rounds. Per design, a threshold starts at :data:`FIRST_THRESHOLD` × its smallest bound;
   every cell whose bound is within the threshold is evaluated exactly (:func:`~dse.model.training.step.step_model`)
   on the gathered cells only. Once a plan that fits is known, the threshold becomes the best
   step time that fits; while none is known it doubles, at least to the next bound (numba
   books: it takes all plans left). A design is done when no cell with a bound ≤ its threshold
   is left. numba kernels (:mod:`dse.model.training._kernels`) keep these books, computing a
   plan's bound only where the bound of its block of plans of like layout enters a round's
   window (:class:`PlanGroups`); without numba, numpy does, with every bound. Fewer than
   :data:`MIN_CELLS` cells (``dse evaluate``'s one design) go to the exhaustive search, which
   is as fast there and imports no numba.
3. The choice: the fastest evaluated plan that fits, ties to the lower plan index, else the
   valid plan needing least memory — with the exhaustive search's own
   :func:`~dse.model.training.step._choose` on ``(n, k)`` matrices of the evaluated cells
   (numpy books), or folded cell by cell with the same tie rule (:func:`_kernels.update`).
   A design where nothing fits then evaluates every plan that runs, including those the
   memory bound skipped, for the least-memory fallback.

Designs with analog tiles add the arrays' time (``extra_s``, §2.9, ≥ 0) to every evaluated
cell's step time and to no bound, so the bounds stay lower bounds of what is compared. Their
cells whose weight writes the analog cells do not survive are not allowed, and the threshold is
the best step time of an allowed plan that fits. Which cells last is known from the designs and
plans alone (``StepExtra.allowed_plans``), so on a design with a plan that runs and lasts the
others get an infinite bound (numba books); a design without one counts every plan as allowed.
A design whose allowed plans all fail to fit evaluates every plan that runs and takes the
fastest that fits (``g_endurance`` > 0), as the exhaustive search's
:func:`~dse.model.training.step._choose` does.

Why it is exact: a skipped cell's bound exceeds the best step time that fits, so its step time
does too; every cell that ties with the best is evaluated (``≤``), so ``argmin`` breaks ties
by the lowest plan index as before; a design with no plan that fits evaluates every cell that
can run, so the least-memory fallback is the same. Bounds are scaled by ``1 − 1e-9`` against
rounding. The results are then computed at the chosen cells by the same code as the
exhaustive search, so every metric is identical, and no design's result depends on the
designs evaluated with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import ModuleType

import numpy as np

from dse.catalog.workloads import Workload, mixer_flops_per_token, ssd_flops_per_token
from dse.designs import Designs, FloatArray
from dse.model.plans import DUALPIPE, Plans
from dse.model.silicon import Silicon
from dse.model.training.collectives import (
    dispatch_network_copies,
    expert_gathered_bytes,
    hierarchical_experts,
    latent_gathers,
    moe_token_collectives,
    ring_bus_bytes,
    tensor_parallel_collectives,
)
from dse.model.training.compute import (
    EXPONENTIALS_PER_SCORE,
    OPERAND_BYTES,
    SSD_CYCLES_PER_TOKEN_CHANNEL,
    SSD_REFERENCE_UNIT_FLOPS,
    Recompute,
    attention_overheads,
    expert_gemms_time_s,
    flops_per_score,
    gemm_time_s,
    layer_linear_time_s,
    memory_bound_latency_s,
    moe_overhead_s,
    recompute_factors,
)
from dse.model.training.grid import MOE, Grid, build_grid, recomputed_layer_share
from dse.model.training.memory import (
    activations,
    elementwise_bytes,
    offload_share,
    zero_state_bytes,
)
from dse.model.training.parallelism import data_parallel_step, data_parallelism, shard_groups
from dse.model.training.schedule import (
    first_stage_layers_per_micro_batch,
    pipeline_bubble_slots,
)
from dse.model.training.step import (
    CHUNK_CELLS,
    MIN_CHUNK_DESIGNS,
    StepExtra,
    Training,
    _choose,
    chosen_results,
    compared_step_s,
    step_model,
)
from dse.settings import Settings

BOUND_MARGIN = 1e-9
"""Relative slack taken off every lower bound so that rounding never lets it pass the exact
step time it bounds."""
FIRST_THRESHOLD = 1.03
"""The first round evaluates the cells whose bound is within this factor of the design's
smallest bound. The bounds are within a few per cent of the step time at the best plan, so a
small factor finds it (or one close to it) with few cells; the next rounds widen the window
(WIDEN) up to the best step time found."""
GROWTH = 2.0
"""Factor by which the threshold of a design without a plan that fits grows per round."""
WIDEN = 1.1
"""Factor by which the window of a design with a plan that fits widens per round, up to that
plan's step time: the bounds are tight at the best plans, so a plan found early but far from
the best does not send every plan below it to be evaluated at once."""
GROWTH_ROUNDS = 4
"""Rounds after which a design still without a plan that fits takes every plan left (its
threshold then stands at FIRST_THRESHOLD · GROWTH³ ≈ 8× its smallest bound)."""
SEARCH_CHUNK_CELLS = 8_000_000
"""Design × plan cells whose bounds are held at once where the books are dense (``(n, k)``
matrices, 64 MB each: the numpy search, and the numba search with a time per cell, whose bounds
are all computed): larger chunks spread the evaluation's fixed cost per call over more designs
(Qwen3-30B-A3B: 22,000 designs/s at 2 M cells, 36,000 at 8 M, 41,000 at 16 M on one core)."""
COMPACT_CHUNK_CELLS = 32_000_000
"""Design × plan cells per chunk of the numba search's compact books (``_kernels.lower_bounds``),
which hold the bounds of the blocks expanded only (DeepSeek-V3: about 30 blocks of 387 per
design, 7 MB of pool for 32 M cells, with the blocks' least bounds and rows 16 MB more): four
times the dense chunk, for a quarter of the Python calls per design (one core, DeepSeek-V3
20,500 → 23,500 designs/s, Qwen3-30B-A3B 43,000 → 60,000)."""
MIN_PLANS = 8
"""Fewer candidate plans than this go to the exhaustive search (nothing to prune)."""
MIN_CELLS = 10_000
"""Fewer design × plan cells than this go to the exhaustive search too: for a handful of
designs (``dse evaluate``, ``dse compare``) it is as fast, and needs no numba import."""


@dataclass(frozen=True)
class PlanBounds:
    """The plan side of the lower bound, once per (workload, plans, settings).

    ``coefficients`` ``(J, k)``: seconds × design feature per micro-batch and stage, for the
    features of :func:`_design_features`. ``moe`` ``(k,)``: the exposed seconds × bandwidth of
    one token copy in the stage's MoE all-to-alls per micro-batch (:func:`moe_lower_bound`;
    ``experts_per_token`` ``k`` and ``route_max_domains`` too). ``layout`` ``(11, k)``: what §2.4's layout needs per
    plan, rows :data:`REPLICA` ``t·p·c``, :data:`TP`, :data:`BATCH_DP` ``⌊B/b⌋``,
    :data:`DP_STEP` (the expert groups' rounding), :data:`PINNED_DP` (0 unless ``pinned``),
    :data:`MICROBATCH` ``b``, :data:`CP`, :data:`EP_OVER_TP` ``e/t``, :data:`EP`, :data:`ETP`,
    and :data:`ZERO_STAGE`, which only groups the plans (:class:`PlanGroups`).
    ``slots`` ``(k,)``:
    bubble slots. ``data_parallel`` ``(7, k)``: bytes each rank moves (at ``(D−1)/D = 1``, over
    the achieved link fraction) in the step's ZeRO 0-2 collectives of the shared parameters and
    of the experts, times the share no overlap hides; per micro-batch, in FSDP's first layer
    gather or ZeRO-2's reduce-scatter of the shared gradients (the same share hidden); in all of
    FSDP's gathers and reduce-scatters of the shared parameters (the step is at least as long
    as they are, :func:`step_lower_bound`); in ZeRO-2's reduce-scatter of the experts'
    gradients; in all of FSDP's of the experts; and the number of FSDP's collectives per
    micro-batch and group, for their latency (``ring_latency_us``: NCCL's base latency and the
    faster hop's, §2.7). ``memory`` ``(7, k)``: the plan side of the memory lower bound
    (:func:`memory_bounds`). ``exp_per_attention_flop``: the softmax exponentials per attention
    FLOP of the workload (§2.6); ``sequences``: ``B``. ``moe_host`` ``(3, k)``: the MoE
    layers' host time on the stage per micro-batch (s) and their routed experts' GEMMs, in
    seconds × FLOP/s at unit efficiency and in kernel latency (s), both with the recompute the
    matmuls carry (:func:`moe_host_lower_bound`; 0 for dense models).
    """

    coefficients: FloatArray
    layout: FloatArray
    slots: FloatArray
    data_parallel: FloatArray
    memory: FloatArray
    exp_per_attention_flop: float
    ring_latency_us: tuple[float, float]
    sequences: float
    pinned: bool
    moe: FloatArray
    experts_per_token: float
    route_max_domains: float
    hierarchical_experts: float
    """The workload's experts with the ``hierarchical`` MoE dispatcher, else 0."""
    moe_host: FloatArray
    groups: PlanGroups | None = None
    """The plans grouped by layout for the numba books (:func:`group_plans`)."""

    @property
    def replica(self) -> FloatArray:
        """``t·p·c`` per plan."""
        return self.layout[REPLICA]

    @property
    def tp(self) -> FloatArray:
        """Tensor parallelism per plan."""
        return self.layout[TP]


REPLICA, TP, BATCH_DP, DP_STEP, PINNED_DP, MICROBATCH, CP, EP_OVER_TP, EP, ETP, ZERO_STAGE = range(
    11
)
"""Rows of :attr:`PlanBounds.layout`."""


@dataclass(frozen=True)
class PlanGroups:
    """The plans grouped by their layout (equal columns of :attr:`PlanBounds.layout`, the ZeRO
    stage among them), for the numba books (:mod:`dse.model.training._kernels`).

    Within a group every plan has the same data parallelism on a design, the same
    micro-batches and the same links, and its bound (:func:`step_lower_bound`) grows with each
    of its other rows but the routed experts' GEMM rows of ``moe_host``, where it falls. So the
    bound computed from the least of each row over the group (the most of those two) is at most
    every member's bound, rounding included (each operation rounds monotonically): a group
    whose bound exceeds a round's window holds no plan within it, and its plans' bounds are
    never computed. The ZeRO stage is in the layout because the least rows of a group would
    otherwise pair the memory of its ZeRO-3 plans with the step of its ZeRO-1 ones, a bound far
    below every member's where memory binds (DeepSeek-V3: about 38 blocks of 387 within the
    first round's window per design with one group per layout, 12 with the stage). ``order``
    ``(k,)``: the plan indices, group by group (ascending within a group); ``group_of``
    ``(k,)``: the group of each plan in that order; ``rows`` and ``least_rows``:
    :func:`kernel_rows` of the plans in that order and of the groups.
    """

    order: np.ndarray
    group_of: np.ndarray
    rows: FloatArray
    least_rows: FloatArray


def group_plans(bounds: PlanBounds) -> PlanGroups:
    """:class:`PlanGroups` of ``bounds``' plans."""
    _, group = np.unique(bounds.layout.T, axis=0, return_inverse=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(group.max() + 2))

    members = _per_plan(bounds, lambda rows: rows[..., order])
    groups = _per_plan(members, lambda rows: np.minimum.reduceat(rows, starts[:-1], axis=-1))
    # the experts' GEMM time lowers the MoE host term of the bound: the group takes its most
    groups = replace(
        groups,
        moe_host=np.vstack(
            [groups.moe_host[:1], np.maximum.reduceat(members.moe_host[1:], starts[:-1], axis=1)]
        ),
    )
    return PlanGroups(order, group[order], kernel_rows(members), kernel_rows(groups))


def _per_plan(bounds: PlanBounds, take: Callable[[FloatArray], FloatArray]) -> PlanBounds:
    """``bounds`` with ``take`` applied to each of its per-plan rows (the last axis)."""
    return replace(
        bounds,
        coefficients=take(bounds.coefficients),
        layout=take(bounds.layout),
        slots=take(bounds.slots),
        data_parallel=take(bounds.data_parallel),
        memory=take(bounds.memory),
        moe=take(bounds.moe),
        moe_host=take(bounds.moe_host),
    )


def kernel_rows(bounds: PlanBounds) -> FloatArray:
    """The plan rows of ``bounds`` as the numba kernels read them (``_kernels._fill``), block
    by block: ``(⌈k/KERNEL_BLOCK⌉, 38, KERNEL_BLOCK)``, the last plan repeated to fill the last
    block. One object, so that the loop over plans needs one check that its output overlaps no
    input, and vectorizes; block-major, so that a block's rows are one contiguous 10 kB the
    CPU streams from its caches (row-major, the 38 rows of a block lay 100 kB apart in
    DeepSeek-V3's 12,384 plans: three times slower per bound). Rows :data:`K_REPLICA` to :data:`K_EP_OVER_TP`
    the layout, :data:`K_INVERSE` four inverses (micro-batch, cp, ep, etp),
    :data:`K_DATA_PARALLEL` the seven data-parallel rows, then weight, expert state, micro-batches
    in flight, bubble slots and MoE bytes (:data:`K_STATE`), the six stage coefficients
    (:data:`K_STAGE`), the three MoE host rows (:data:`K_HOST`) and the fixed and stored
    activation bytes in the workload's format and in 16-bit (:data:`K_HELD`,
    :func:`memory_bounds`)."""
    lay, mem = bounds.layout, bounds.memory
    rows = np.vstack(
        [
            lay[[REPLICA, TP, BATCH_DP, DP_STEP, PINNED_DP, MICROBATCH, CP, EP, EP_OVER_TP]],
            1.0 / lay[[MICROBATCH, CP, EP, ETP]],
            bounds.data_parallel,
            mem[[1, 2, 4]],
            bounds.slots,
            bounds.moe,
            bounds.coefficients,
            bounds.moe_host,
            mem[[0, 3, 5, 6]],
        ]
    )
    k = rows.shape[1]
    padded = np.concatenate([rows, np.repeat(rows[:, -1:], _padded(k) - k, axis=1)], axis=1)
    blocks = aligned_empty((_padded(k) // KERNEL_BLOCK, rows.shape[0], KERNEL_BLOCK))
    blocks[:] = padded.reshape(rows.shape[0], -1, KERNEL_BLOCK).transpose(1, 0, 2)
    return blocks


def _padded(k: int) -> int:
    """``k`` rounded up to whole blocks of :data:`KERNEL_BLOCK`."""
    return -(-k // KERNEL_BLOCK) * KERNEL_BLOCK


def aligned_empty(shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """An empty C-contiguous array whose data start on a cache line (64 bytes): the kernels'
    vector loads then never straddle two lines, which halves their speed."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + ALIGNMENT, np.uint8)
    offset = -raw.ctypes.data % ALIGNMENT
    return raw[offset : offset + size].view(dtype).reshape(shape)


KERNEL_BLOCK = 32
"""Plans (in group order) whose bounds the kernels compute together: a whole number of their
vector loop's steps (8 lanes of AVX-512, unrolled 4 times), below which the loop runs scalar,
several times slower per plan. The plan rows are padded to whole blocks (the last plan
repeated), so that every block is computed whole."""
ALIGNMENT = 64
"""Bytes of a cache line, to which the kernels' rows and bounds are aligned."""


(K_REPLICA, K_TP, K_BATCH_DP, K_DP_STEP, K_PINNED_DP, K_MICROBATCH, K_CP, K_EP, K_EP_OVER_TP) = (
    range(9)
)
K_INVERSE, K_DATA_PARALLEL, K_STATE, K_STAGE, K_HOST, K_HELD = 9, 13, 20, 25, 31, 34
"""Rows of :func:`kernel_rows`."""


def plan_bounds(plans: Plans, w: Workload, s: Settings) -> PlanBounds:
    """The plan-only parts of the step-time lower bound (§2.3, §2.6, §2.7)."""
    coefficients, moe_b, moe_host = _stage_coefficients(plans, w, s)
    sequences = float(w.global_batch_sequences)
    bounds = PlanBounds(
        coefficients=np.maximum(coefficients, 0.0),
        layout=_layout(plans, sequences),
        slots=pipeline_bubble_slots(plans.pp, plans.virtual_stages, plans.schedule_code),
        data_parallel=_data_parallel_rows(plans, w, s),
        ring_latency_us=(
            s.collective_latency_us,
            min(s.scale_up_hop_latency_us, s.scale_out_hop_latency_us),
        ),
        memory=memory_bounds(plans, w, s),
        exp_per_attention_flop=EXPONENTIALS_PER_SCORE / flops_per_score(w),
        sequences=sequences,
        pinned=bool(plans.dp.any()),
        moe=moe_b,
        experts_per_token=float(w.experts_per_token) if w.is_moe else 0.0,
        route_max_domains=float(w.route_max_domains or 0),
        hierarchical_experts=hierarchical_experts(w),
        moe_host=moe_host,
    )
    return replace(bounds, groups=group_plans(bounds))


def _stage_coefficients(
    plans: Plans, w: Workload, s: Settings
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(6, k)`` per-micro-batch stage work that a design's features scale — GEMM FLOPs,
    attention FLOPs, memory-bound bytes, link bytes no overlap hides, kernel latency, a hybrid's
    Mamba-2 scan cycles (compute.ssd_time_s: at least its kernels' cycles) — the
    MoE all-to-all's bytes per achieved link fraction, ``(k,)``, and the MoE layers' host time
    with their experts' GEMMs, ``(3, k)`` (:func:`_moe_host_rows`). The slowest stage (§2.7) is
    at least a stage of ⌈L/p⌉ layers and at least the last stage (DualPipe: the mean of the
    two, its rank running the first and the last stage in turn); each plan takes the one of
    the two with more GEMM FLOPs."""
    tp, pp, ep, cp = plans.tp, plans.pp, plans.ep, plans.context_parallel
    etp = plans.expert_tensor_parallel
    tokens_mb = plans.microbatch * float(w.seq_len) / cp
    redo = recompute_factors(plans.recompute, w, plans.recomputed_share)
    redone = recomputed_layer_share(plans.recompute, plans.recomputed_share)
    # FLOPs of the linear layers and the logits: the GEMM roofline at unit rate and efficiency,
    # infinite bandwidth and no kernel latency.
    no_latency = replace(s, gemm_kernel_latency_us=0.0)
    unit, unbounded = np.ones_like(tp), np.full_like(tp, np.inf)
    layer_flops = layer_linear_time_s(w, tokens_mb, tp, ep, unit, unbounded, 1.0, no_latency, etp)
    # The logits' GEMMs the digital units run, as compute.compute counts them (§2.9: one of
    # three on a design whose analog tiles run the forward and input-gradient GEMMs).
    logits_gemms = w.digital_linear_gemms
    logits_flops = logits_gemms * gemm_time_s(
        tokens_mb, w.vocab_size / tp, float(w.d_model), unit, unbounded,
        OPERAND_BYTES["bf16"], 1.0, no_latency,
    )  # fmt: skip
    # Kernel latency of those GEMMs: the same roofline at infinite rate and bandwidth.
    layer_latency_s = redo.matmul * layer_linear_time_s(
        w, tokens_mb, tp, ep, unbounded, unbounded, 1.0, s, etp
    )
    logits_latency_s = logits_gemms * gemm_time_s(
        tokens_mb, w.vocab_size / tp, float(w.d_model), unbounded, unbounded,
        OPERAND_BYTES["bf16"], 1.0, s,
    )  # fmt: skip
    # the last stage: ⌊L/p⌋ layers, the output layer and M modules of a layer and the output
    # layer each; DualPipe's rank: the mean of it and a stage of ⌈L/p⌉ layers
    longest, shortest = np.ceil(w.layers / pp), np.floor(w.layers / pp)
    modules = float(w.mtp_layers)
    dual = plans.schedule_code == DUALPIPE
    last_layers = np.where(dual, 0.5 * (longest + shortest + modules), shortest + modules)
    last_logits = np.where(dual, 0.5, 1.0) * (1.0 + modules)
    last = last_layers * layer_flops * redo.matmul + last_logits * logits_flops
    last_stage = last >= longest * layer_flops * redo.matmul
    layers_per_stage = np.where(last_stage, last_layers, longest)
    logits_share = np.where(last_stage, last_logits, 0.0)
    # §2.6 the MoE layers' host time shows only beyond the experts' GEMM time, which depends on
    # the design: no bound from it (0 bounds it)
    attention_per_token, ssd_per_token = mixer_flops_per_token(w)
    attention_flops = 0.5 * tokens_mb * attention_per_token / w.layers * layers_per_stage / tp
    # §2.11 a hybrid's Mamba-2 scans: at least their kernels' cycles (compute.ssd_time_s)
    ssd_positions = tokens_mb * ssd_per_token / w.layers * layers_per_stage / tp
    ssd_cycles = (
        ssd_positions / ssd_flops_per_token(w) * w.mamba_inner * SSD_CYCLES_PER_TOKEN_CHANNEL
        if ssd_per_token
        else np.zeros_like(tp)
    )
    # the less of the two formats a design may run: never more than the step's own bytes
    memory_bytes = layers_per_stage * np.minimum(
        elementwise_bytes(w, tokens_mb, tp, s, low_precision=True),
        elementwise_bytes(w, tokens_mb, tp, s, low_precision=False),
    )
    # Link bytes no overlap hides: TP collectives beyond the overlapped fraction, pipeline p2p.
    message_b = tokens_mb * w.d_model * 2.0
    tp_bytes = _tensor_parallel_bytes(plans, w, s, tokens_mb, layers_per_stage, redone)
    pp_bytes = np.where(pp > 1, 2.0 * plans.virtual_stages * message_b / tp, 0.0)
    pp_bytes = pp_bytes * np.where(plans.virtual_stages > 1, paid_share(1.0, s), 1.0)
    # the lesser of the matmuls' and exponentials' overheads: a lower bound of both (§2.6)
    attention_overhead_factor = np.minimum(*attention_overheads(w, cp, s.attention_overhead_tokens))
    coefficients = np.stack(
        [
            layers_per_stage * layer_flops * redo.matmul + logits_share * logits_flops,
            attention_flops * redo.attention * attention_overhead_factor,
            memory_bytes * redo.other,
            tp_bytes * paid_share(s.tp_overlap, s) + pp_bytes,
            layers_per_stage * (layer_latency_s + memory_bound_latency_s(w, s) * redo.other)
            + logits_share * logits_latency_s,
            ssd_cycles * redo.attention,
        ]
    )
    # the all-to-all of at most a full stage's layers: what the model's communication counts
    moe_layers = np.minimum(layers_per_stage, longest)
    moe_b = _moe_link_bytes(plans, w, s, tokens_mb, moe_layers, redone)
    return coefficients, moe_b, _moe_host_rows(plans, w, s, tokens_mb, layers_per_stage, redo)


def _moe_host_rows(
    plans: Plans,
    w: Workload,
    s: Settings,
    tokens_mb: FloatArray,
    layers_per_stage: FloatArray,
    redo: Recompute,
) -> FloatArray:
    """``(3, k)`` the plan side of :func:`moe_host_lower_bound` for a stage of
    ``layers_per_stage`` layers per micro-batch: the MoE layers' host time ``H`` (s,
    :func:`~dse.model.training.compute.moe_overhead_s`, with the recompute that repeats it, at
    most the matmuls' under ``moe`` recompute) and the routed experts' GEMMs ``E`` that the GPU
    runs meanwhile (the digital passes of
    :func:`~dse.model.training.compute.expert_gemms_time_s`, with the matmuls' recompute), as
    seconds at unit rate and efficiency and as kernel latency (s); zeros for dense models."""
    tp, ep, etp = plans.tp, plans.ep, plans.expert_tensor_parallel
    if not w.is_moe:
        return np.zeros((3, tp.shape[0]))
    unit, unbounded = np.ones_like(tp), np.full_like(tp, np.inf)
    no_latency = replace(s, gemm_kernel_latency_us=0.0)
    flops = expert_gemms_time_s(w, tokens_mb, tp, ep, unit, unbounded, 1.0, no_latency, etp)
    latency = expert_gemms_time_s(w, tokens_mb, tp, ep, unbounded, unbounded, 1.0, s, etp)
    moe_layers = layers_per_stage * (w.layers - w.dense_layers) / w.layers
    passes = moe_layers * w.digital_linear_gemms * redo.matmul
    host_redo = np.where(plans.recompute == MOE, redo.matmul, redo.other)
    host = moe_overhead_s(w, layers_per_stage, ep, s) * host_redo
    return np.stack([host, passes * flops, passes * latency])


def _tensor_parallel_bytes(
    plans: Plans,
    w: Workload,
    s: Settings,
    tokens_mb: FloatArray,
    layers_per_stage: FloatArray,
    redone: FloatArray | float,
) -> FloatArray:
    """§2.7 Bytes each rank sends per micro-batch on a stage in the tensor-parallel collectives
    (with MLA's latent gathers) and, with expert tensor parallelism, in the ``etp`` ranks'
    gathers and reduce-scatters of the tokens, over the achieved link fraction; ``(k,)``."""
    tp = plans.tp
    message_b = tokens_mb * w.d_model * 2.0
    tp_collectives = tensor_parallel_collectives(w, redone) * layers_per_stage
    tp_bytes = tp_collectives * ring_bus_bytes(message_b, tp, s)
    latent_width, latent_tensors = latent_gathers(w)
    if latent_tensors:  # §2.7 MLA's latents, gathered before attention
        latent_b = tokens_mb * latent_width * 2.0
        tp_bytes = tp_bytes + (2.0 + redone) * layers_per_stage * ring_bus_bytes(latent_b, tp, s)
    tp_bytes = np.where(tp > 1, tp_bytes, 0.0)
    if not w.is_moe:
        return tp_bytes
    etp = plans.expert_tensor_parallel
    gathered_b = expert_gathered_bytes(w, tokens_mb, tp, etp)
    count = moe_token_collectives(w, layers_per_stage, redone)
    return tp_bytes + np.where(etp > 1, count * ring_bus_bytes(gathered_b, etp, s), 0.0)


def paid_share(overlap: FloatArray | float, s: Settings) -> FloatArray | float:
    """§2.7 The least share of a collective's time a step pays with a fraction ``overlap`` of it
    hidden: the rest shows, and what hides slows the compute by ``overlap_slowdown``
    (``(1 − o) + κ·o``; at least that, since no more than ``o`` hides)."""
    return (1.0 - overlap) + s.overlap_slowdown * overlap


def _moe_link_bytes(
    plans: Plans,
    w: Workload,
    s: Settings,
    tokens_mb: FloatArray,
    layers_per_stage: FloatArray,
    redone: FloatArray | float,
) -> FloatArray:
    """§2.7 MoE all-to-all per micro-batch: count × the bytes of one token over the achieved
    link fraction, per token copy (the copies per link depend on ep and the design's domain,
    moe_lower_bound), less the overlapped share; ``(k,)``, 0 for dense models."""
    if not w.is_moe:
        return np.zeros_like(plans.tp)
    count = moe_token_collectives(w, layers_per_stage, redone)
    element_b = 1.75 if w.precision in ("fp8", "fp4") else 2.0
    one_b = tokens_mb / plans.tp * w.routed_dim * element_b / s.collective_efficiency
    hidden = np.where(plans.dualpipe, 1.0, s.moe_comm_overlap)
    return count * one_b * paid_share(hidden, s)


def _data_parallel_rows(plans: Plans, w: Workload, s: Settings) -> FloatArray:
    """``(7, k)`` data-parallel bytes per step that the step pays for (§2.7), in the rows
    lower_bounds reads: shared gradients, expert gradients, first gather per micro-batch,
    FSDP's bytes of the shared parameters per micro-batch, ZeRO-2's expert gradients per
    micro-batch, FSDP's bytes of the experts per micro-batch; and FSDP's collectives per
    micro-batch and group (each pays a ring's latency).

    ZeRO-1 reduce-scatters and all-gathers each gradient once per step, the shared parameters
    over the D·c ranks that hold them, the experts over their expert_dp ranks: the step pays
    at least (1 − o_dp) + κ·o_dp of them (:func:`paid_share`), without latency. FSDP prefetches
    its gathers and reduce-scatters behind the layers' compute: at least the first layer's
    gather of each micro-batch shows, and the step lasts at least as long as all of them.
    ZeRO-2 reduce-scatters each micro-batch's gradients (rows 2 and 4, scaled by the
    micro-batches) and all-gathers the weights once (rows 0 and 1)."""
    tp, pp, ep = plans.tp, plans.pp, plans.ep * plans.expert_tensor_parallel
    layers_per_stage = np.ceil(w.layers / pp)
    shared_params = (w.total_params - w.expert_params) / (tp * pp)
    expert_params = w.expert_params / (pp * ep)
    fsdp, zero2 = plans.zero_stage == 3, plans.zero_stage == 2
    grad_b = s.grad_reduce_bytes_per_param
    per_param_b = (2.0 * s.weight_bytes_per_param + grad_b) / s.collective_efficiency
    first_gather_b = (shared_params + expert_params) * s.weight_bytes_per_param / layers_per_stage
    paid = paid_share(s.dp_overlap, s) / s.collective_efficiency
    shared_b = paid * shared_params * grad_b
    expert_b = paid * expert_params * grad_b if w.is_moe else np.zeros_like(tp)
    # ZeRO-0's all-reduce moves the bytes of a reduce-scatter and an all-gather by ring or
    # tree, but only one such share through switches that reduce (§2.7): bounded by one.
    once = np.where(zero2 | (plans.zero_stage == 0), 1.0, 2.0)
    rows = np.stack(
        [
            np.where(fsdp, 0.0, once * shared_b),
            np.where(fsdp, 0.0, once * expert_b),
            np.where(
                fsdp, first_gather_b / s.collective_efficiency, np.where(zero2, shared_b, 0.0)
            ),
            np.where(fsdp, shared_params * per_param_b, 0.0),
            np.where(zero2, expert_b, 0.0),
            np.where(fsdp, expert_params * per_param_b, 0.0) if w.is_moe else np.zeros_like(tp),
            # each layer's weights gathered forward and backward, its gradients reduce-scattered
            np.where(fsdp, 3.0 * layers_per_stage, 0.0),
        ]
    )
    # Hybrid sharding (a pinned dp_shard) moves these collectives onto a smaller group, maybe
    # on faster links: no data-parallel bound for those plans (0 bounds every time).
    return np.where(plans.hybrid_sharded, 0.0, rows)


def _layout(plans: Plans, sequences: float) -> FloatArray:
    """``(11, k)`` the plan's layout rows (the indices REPLICA … ETP that lower_bounds reads,
    and ZERO_STAGE, which only groups the plans); the expert groups span ``ep·etp`` ranks, the
    all-to-all ``ep``."""
    tp, ep, mb, cp = plans.tp, plans.ep, plans.microbatch, plans.context_parallel
    expert_ranks = ep * plans.expert_tensor_parallel
    return np.stack(
        [
            tp * plans.pp * cp,
            tp,
            np.floor(sequences / mb),
            data_parallel_step(expert_ranks, tp, cp, plans.dp_shard),
            plans.dp + 0.0,
            mb + 0.0,
            cp + 0.0,
            expert_ranks / tp,
            ep + 0.0,
            plans.expert_tensor_parallel + 0.0,
            plans.zero_stage + 0.0,
        ]
    )


def memory_bounds(plans: Plans, w: Workload, s: Settings) -> FloatArray:
    """§2.1, §2.5 The plan side of a lower bound of the memory per chip, ``(7, k)``.

    With the layout's ``D`` (:func:`data_parallel_layout`), ``m = B/(D·b)`` micro-batches and
    the expert shards' ``D_e = max(t·c·D/e, 1)``::

        M ≥ fixed + weight/(c·D) + expert/D_e + min(cap, m)·stored

    Rows: fixed, weight, expert, stored (activation bytes per micro-batch in flight), cap (most
    micro-batches in flight), for a design that runs the workload's format (fp8/fp4 or 16-bit,
    :attr:`~dse.model.training.grid.Grid.low_precision`); then fixed and stored for one that
    runs an fp8/fp4 workload in 16-bit.
    """
    tp, pp, mb = plans.tp, plans.pp, plans.microbatch
    ep = plans.ep * plans.expert_tensor_parallel  # the ranks one copy of the experts spans
    vp, cp, rc = plans.virtual_stages, plans.context_parallel, plans.recompute
    zero, dual = plans.zero_stage, plans.dualpipe
    layers_per_stage = np.ceil(w.layers / pp)
    experts = w.expert_params
    shared = (w.total_params - experts) / (tp * pp)
    local_experts = experts / (pp * ep)
    params_chip = shared + local_experts
    replicated, per_shard, two_layers = zero_state_bytes(zero, s)
    fixed = params_chip * replicated + params_chip / layers_per_stage * two_layers
    weight, expert = per_shard * shared, per_shard * local_experts
    if plans.dp_shard is not None:
        # §2.1 hybrid sharding: the states sharded over the plan's own group, whatever D is
        # (the same rule as memory._static; no layout where dp_shard does not divide D runs)
        hsdp = plans.hybrid_sharded
        inf = np.full_like(tp, np.inf)
        shard_dp, expert_shard = shard_groups(plans.dp_shard, tp, cp, ep, inf, inf)
        sharded = shared / shard_dp + local_experts / expert_shard
        fixed = fixed + np.where(hsdp, per_shard * sharded, 0.0)
        weight, expert = np.where(hsdp, 0.0, weight), np.where(hsdp, 0.0, expert)
    fixed = fixed + np.where(dual, params_chip * s.weight_bytes_per_param, 0.0)
    # Activations (§2.5), as memory.memory computes them, in the workload's format and in 16-bit.
    in_flight = first_stage_layers_per_micro_batch(w.layers, w.mtp_layers, pp, vp, dual)
    share = offload_share(plans.offloaded_layers, layers_per_stage)
    low, sixteen = (
        activations(
            w,
            mb * float(w.seq_len) / cp,
            tp,
            rc,
            low_precision,
            share,
            plans.recomputed_share,
            s.logits_bytes_per_element,
            s.offload_expert_inputs,
        )
        for low_precision in (True, False)
    )
    cap = np.where(dual, pp + 1.0, pp)
    return np.stack(
        [
            fixed + low.once_b,
            weight,
            expert,
            in_flight * low.kept_b,
            cap,
            fixed + sixteen.once_b,
            in_flight * sixteen.kept_b,
        ]
    )


def _design_features(g: Grid, s: Settings, exp_per_flop: float) -> FloatArray:
    """``(n, J)`` design side of the bound: seconds per FLOP of matmuls and of attention at the
    largest efficiency, per HBM byte, per byte on the faster link; 1 (for the kernel
    latencies); seconds per cycle of the compute units that run a Mamba-2 scan
    (compute.ssd_time_s)."""
    gemm_eff = np.minimum(s.gemm_efficiency_max * g.family_scale, 1.0)
    attention_eff = np.minimum(s.attention_efficiency * g.attention_scale, 1.0)
    cycle_rate = np.maximum(g.unit_cycle_rate, g.attention_rate / SSD_REFERENCE_UNIT_FLOPS)
    return np.hstack(
        [
            1.0 / (gemm_eff * g.gemm_rate),
            # §2.6 per attention FLOP: score matmuls and their softmax exponentials
            1.0 / (attention_eff * g.score_rate) + exp_per_flop / g.exp_rate,
            1.0 / g.hbm_b_s,
            1.0 / np.maximum(g.up_b_s, g.out_b_s),
            np.ones_like(g.chips),
            1.0 / np.broadcast_to(cycle_rate, g.chips.shape),
        ]
    )


def data_parallel_layout(g: Grid, bounds: PlanBounds) -> tuple[np.ndarray, FloatArray]:
    """``(n, k)``: whether each cell's layout is valid, and its data parallelism ``D`` (at
    least 1), as :func:`~dse.model.training.parallelism.layout` computes them (§2.4) from the
    cluster and the plan alone."""
    lay = bounds.layout
    return data_parallelism(
        g,
        lay[REPLICA],
        lay[BATCH_DP],
        lay[DP_STEP],
        lay[PINNED_DP] if bounds.pinned else None,
        lay[MICROBATCH],
        lay[TP],
        bounds.sequences,
    )


def moe_lower_bound(g: Grid, bounds: PlanBounds) -> FloatArray:
    """``(n, k)`` the exposed MoE all-to-all time (s) of one micro-batch on one stage beyond the
    overlapped fraction (§2.7, :func:`~dse.model.training.collectives.all_to_all_time_s`): of
    a token's ``k·(e − 1)/e`` copies to other ranks, those beyond the design's scale-up domain
    (:func:`~dse.model.training.collectives.dispatch_network_copies`) cross the scale-out
    network, the others the scale-up links, both at once. The ``ep`` ranks of an expert group
    are ``etp`` apart in rank order, so ``S/etp`` of them share a domain."""
    if not bounds.experts_per_token:
        return np.zeros((g.chips.shape[0], bounds.moe.shape[0]))
    ep = bounds.layout[EP]
    experts = bounds.experts_per_token
    domain = np.maximum(g.domain / bounds.layout[ETP], 1.0)
    remote = dispatch_network_copies(
        experts, bounds.hierarchical_experts, bounds.route_max_domains, ep, domain
    )
    local = np.maximum(experts * (ep - 1.0) / ep - remote, 0.0)
    return bounds.moe * np.maximum(local / g.up_b_s, remote / g.out_b_s)


def moe_host_lower_bound(features: FloatArray, bounds: PlanBounds) -> FloatArray:
    """``(n, k)`` the MoE layers' host time (s) that one micro-batch on one stage shows at
    least beyond the bound's GEMM time (§2.6,
    :func:`~dse.model.training.compute.moe_host_exposed_s`): the stage's GEMMs and host time
    take ``T_other + max(E, H)``, of which the GEMM rows of the bound hold at most
    ``T_other + E_lb``, so ``max(H − E_lb, 0)`` may be added, with
    ``E_lb = E_FLOPs/(η·R) + E_latency`` of the design's ``features`` (:func:`_design_features`,
    the matmuls' seconds per FLOP first)."""
    host, flops, latency = bounds.moe_host
    return np.maximum(host - (features[:, :1] * flops + latency), 0.0)


def step_lower_bound(g: Grid, bounds: PlanBounds, s: Settings) -> FloatArray:
    """``(n, k)`` lower bounds of the step time (s); infinite where the plan cannot run."""
    valid, dp = data_parallel_layout(g, bounds)
    features = _design_features(g, s, bounds.exp_per_attention_flop)
    stage = features @ bounds.coefficients
    stage += moe_lower_bound(g, bounds) + moe_host_lower_bound(features, bounds)
    microbatches = bounds.sequences / (dp * bounds.layout[MICROBATCH])
    stage *= microbatches + bounds.slots
    first, fsdp = data_parallel_lower_bound(g, bounds, dp, microbatches)
    stage = np.maximum(stage, fsdp) + first
    stage *= 1.0 - BOUND_MARGIN
    stage[~valid] = np.inf
    return stage


def data_parallel_lower_bound(
    g: Grid, bounds: PlanBounds, dp: FloatArray, microbatches: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``(n, k)`` lower bounds (s) of a step's data-parallel traffic (§2.7) at data parallelism
    ``dp`` and ``microbatches`` (:func:`data_parallel_layout`), each ``(G − 1)/G`` of the bytes
    over the data-parallel bandwidth of §2.7 (the scale-up links where the ``t·D·c`` ranks share
    a domain, else the lesser of them and the scale-out links of the ``clip(S/t, 1, D·c)`` ranks
    per domain): what is exposed (ZeRO 0-2's reductions of the shared parameters over ``D·c``
    ranks and of the experts over ``D_e = max(t·c·D/e, 1)`` beyond the overlap, ZeRO-2's once
    per micro-batch, or FSDP's first layer gather of each micro-batch), and all of FSDP's
    gathers and reduce-scatters, which the step lasts at least as long as (0 for ZeRO 0-2).
    The experts' ranks are ``e·e_t`` apart where the shared parameters' are ``t`` apart: their
    ZeRO 0-2 and FSDP traffic is bounded over their own tier and group (FSDP's layer
    collectives are the sum of the two kinds', §2.7)."""
    lay, (shared, expert, first, fsdp, expert_each, expert_fsdp, collectives) = (
        bounds.layout,
        bounds.data_parallel,
    )
    weight_dp = dp * lay[CP]
    expert_dp = np.maximum(weight_dp / lay[EP_OVER_TP], 1.0)
    expert_share = 1.0 - 1.0 / expert_dp
    ring_share = 1.0 - 1.0 / weight_dp
    bandwidth = _tier_bandwidth(g, lay[TP], weight_dp)
    expert_bandwidth = bandwidth  # a dense workload: one tier, tight
    if bounds.experts_per_token > 0.0:
        expert_bandwidth = _tier_bandwidth(g, lay[EP] * lay[ETP], expert_dp)
    exposed = (shared + microbatches * first) * ring_share / bandwidth + (
        expert + microbatches * expert_each
    ) * expert_share / expert_bandwidth
    fsdp_s = fsdp * ring_share / bandwidth + expert_fsdp * expert_share / expert_bandwidth
    latency_s = _ring_latency_lower_bound(weight_dp, bounds.ring_latency_us)
    if bounds.experts_per_token > 0.0:
        latency_s = latency_s + _ring_latency_lower_bound(expert_dp, bounds.ring_latency_us)
    fsdp_s = fsdp_s + collectives * g.latency_scale * latency_s
    return exposed, microbatches * fsdp_s


def _ring_latency_lower_bound(group: FloatArray, latency_us: tuple[float, float]) -> FloatArray:
    """§2.7 At least the latency (s) of one ring collective over ``group`` ranks
    (:func:`~dse.model.training.collectives.ring_latency_s`): the base latency and ``group − 1``
    hops at the faster hop's latency; 0 for one rank."""
    base_us, hop_us = latency_us
    return np.where(group > 1.0, (base_us + (group - 1.0) * hop_us) * 1e-6, 0.0)


def _tier_bandwidth(g: Grid, stride: FloatArray, group: FloatArray) -> FloatArray:
    """§2.7 At least the bandwidth (bytes/s) of a collective group of ``group`` ranks ``stride``
    apart: the scale-up links where they share a domain, else the lesser of them and the
    scale-out links of the ``clip(S/stride, 1, group)`` ranks per domain (the pods' uplinks
    and a pipeline-inner placement only slow it)."""
    per_domain = np.clip(g.domain / stride, 1.0, group)
    return np.where(
        stride * group <= g.domain, g.up_b_s, np.minimum(g.up_b_s, g.out_b_s * per_domain)
    )


def search_chunk(
    designs: Designs,
    silicon: Silicon,
    w: Workload,
    plans: Plans,
    s: Settings,
    rows: slice,
    bounds: PlanBounds,
    extra_s: StepExtra | None = None,
) -> Training:
    """The bounded search of ``designs[rows]`` (module docstring) and the results at the
    chosen plans; ``extra_s`` (≥ 0) is added to the step times compared, never to a bound."""
    g = build_grid(designs, silicon, w.precision, plans, s, rows, w.attention_precision)
    kernels = _compiled_kernels()
    if kernels is not None:
        chosen, any_fit = _search_compiled(g, w, s, bounds, kernels, extra_s)
        return chosen_results(designs, silicon, w, s, g, chosen, any_fit)
    lb = step_lower_bound(g, bounds, s)
    n, k = lb.shape
    step = np.full((n, k), np.inf)
    over = np.full((n, k), np.inf)
    fits = np.zeros((n, k), bool)
    allowed = np.ones((n, k), bool)
    valid = np.zeros((n, k), bool)
    done = np.isinf(lb)  # evaluated, or cannot run
    threshold = np.min(lb, axis=1) * FIRST_THRESHOLD
    piece = max(CHUNK_CELLS, 1)
    while True:
        design, plan = np.nonzero((lb <= threshold[:, None]) & ~done)
        if design.size == 0:
            break
        done[design, plan] = True
        for a in range(0, design.size, piece):
            d, p = design[a : a + piece], plan[a : a + piece]
            c = g.cells(d, p)
            m = step_model(c, w, s)
            step[d, p], allowed[d, p] = compared_step_s(m, c, rows.start + d, extra_s)
            fits[d, p] = m.fits
            valid[d, p] = m.lay.valid
            over[d, p] = m.over
        best = np.min(np.where(fits & allowed, step, np.inf), axis=1)
        pending = np.min(np.where(done, np.inf, lb), axis=1)
        widened = np.minimum(best, np.maximum(threshold * WIDEN, pending))
        threshold = np.where(np.isfinite(best), widened, np.maximum(threshold * GROWTH, pending))
    chosen, any_fit = _choose(step, fits, valid, over, allowed)
    return chosen_results(designs, silicon, w, s, g, chosen, any_fit)


_SCRATCH = threading.local()


def _scratch(
    size: int, name: str = "bounds", dtype: type = np.float64, first: int = SEARCH_CHUNK_CELLS
) -> np.ndarray:
    """A buffer of at least ``size`` (and at first ``first``) elements aligned to a cache line
    (:func:`aligned_empty`), kept per thread between chunks and calls under ``name``."""
    buffer: np.ndarray | None = getattr(_SCRATCH, name, None)
    if buffer is None or buffer.size < size:
        buffer = aligned_empty((max(size, first),), dtype)
        setattr(_SCRATCH, name, buffer)
    return buffer[:size]


def search_chunk_designs(plans: int, extra_s: StepExtra | None = None) -> int:
    """Designs per chunk of the bounded search over ``plans`` candidate plans: the numba
    search's compact books hold :data:`COMPACT_CHUNK_CELLS` cells, the dense books
    :data:`SEARCH_CHUNK_CELLS`."""
    compact = extra_s is None and _compiled_kernels() is not None
    cells = COMPACT_CHUNK_CELLS if compact else SEARCH_CHUNK_CELLS
    return max(MIN_CHUNK_DESIGNS, cells // max(plans, 1))


def _compiled_kernels() -> ModuleType | None:
    """The numba kernels, or None where numba is not installed."""
    try:
        from dse.model.training import _kernels
    except ImportError:  # pragma: no cover - numba is a dependency; the numpy path remains
        return None
    return _kernels


def kernel_designs(g: Grid, s: Settings, bounds: PlanBounds) -> tuple:
    """The design side of the numba kernels' bounds, one entry per design of ``g``: the
    features (:func:`_design_features`), chips, the scale-up domain, the seconds per byte of
    its scale-up and scale-out links, the HBM bytes, whether it runs the workload's low-precision
    format, the family's collective latency scale."""

    def column(values: FloatArray | np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(values, g.chips.shape)[:, 0])

    return (
        _design_features(g, s, bounds.exp_per_attention_flop),
        column(g.chips),
        column(g.domain),
        1.0 / column(g.up_b_s),
        1.0 / column(g.out_b_s),
        column(g.capacity_b),
        column(g.low_precision),
        column(g.latency_scale),
    )


def _kernel_consts(g: Grid, bounds: PlanBounds) -> tuple:
    """The scalars of the numba kernels' bounds (``_kernels._fill``)."""
    return (
        g.tp_searched,
        bounds.pinned,
        bounds.experts_per_token,
        bounds.route_max_domains,
        bounds.sequences,
        1.0 - BOUND_MARGIN,
        bounds.ring_latency_us,
    )


def _groups(bounds: PlanBounds) -> PlanGroups:
    """The plan groups of ``bounds`` (:func:`plan_bounds` makes them; bounds made otherwise
    group here)."""
    return bounds.groups if bounds.groups is not None else group_plans(bounds)


def compiled_lower_bounds(
    g: Grid, s: Settings, bounds: PlanBounds, kernels: ModuleType, out: FloatArray
) -> FloatArray:
    """Every bound of the numba kernels for the designs of ``g`` into ``out`` ``(n, k)``, plans
    in their own order: the bounds of :func:`step_lower_bound`, also infinite where the memory
    bound exceeds the HBM. The search itself computes only the bounds it needs."""
    groups = _groups(bounds)
    n, k = out.shape
    permuted = aligned_empty((n, _padded(k)))
    blocks = _padded(k) // KERNEL_BLOCK
    kernels.all_bounds(
        kernel_designs(g, s, bounds),
        groups.rows,
        k,
        _kernel_consts(g, bounds),
        bounds.hierarchical_experts or None,
        permuted.reshape(n * blocks, KERNEL_BLOCK),
        np.empty((n, blocks)),
        np.empty((n, blocks), np.int64),
        np.zeros(1, np.int64),
    )
    out[:, groups.order] = permuted[:, :k]
    return out


def _runnable_cells(g: Grid, bounds: PlanBounds, lost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (design, plan) cell of the designs ``lost`` whose plan runs on its cluster: one
    replica fits in the chips and, where tp is searched, tp within the scale-up domain."""
    runs = bounds.replica[None, :] <= g.chips[lost]
    if g.tp_searched:
        runs &= bounds.tp[None, :] <= np.maximum(g.domain[lost], 1.0)
    rows, plan = np.nonzero(runs)
    return lost[rows], plan


def open_books(
    g: Grid, s: Settings, bounds: PlanBounds, kernels: ModuleType
) -> tuple[tuple, FloatArray]:
    """The numba books of the bounds for the designs of ``g`` (``_kernels.lower_bounds``):
    the arguments of ``_kernels.select`` but the window — the design and plan rows, the plan
    order, the scalars, the pool of expanded blocks' bounds (plans in group order, padded to
    whole blocks), each block's least bound, its row in the pool (−1: not expanded) and the
    pool's rows taken — and the first round's threshold ``(n,)``. The buffers are this
    thread's scratch, reused by the next chunk."""
    groups = _groups(bounds)
    n, blocks = g.chips.shape[0], _padded(bounds.tp.shape[0]) // KERNEL_BLOCK
    per_block = COMPACT_CHUNK_CELLS // KERNEL_BLOCK
    pool = _scratch(n * blocks * KERNEL_BLOCK, first=COMPACT_CHUNK_CELLS)
    least = _scratch(n * blocks, "least", first=per_block).reshape(n, blocks)
    slot = _scratch(n * blocks, "slot", np.int64, per_block).reshape(n, blocks)
    used = np.zeros(1, np.int64)
    design_rows, consts = kernel_designs(g, s, bounds), _kernel_consts(g, bounds)
    hierarchical = bounds.hierarchical_experts or None
    group_bounds = _scratch(groups.least_rows.shape[0] * KERNEL_BLOCK, "groups", first=0)
    pool = pool.reshape(n * blocks, KERNEL_BLOCK)
    high = kernels.lower_bounds(
        design_rows, groups.rows, groups.least_rows, groups.group_of, consts, hierarchical,
        FIRST_THRESHOLD, pool, least, slot, used, group_bounds.reshape(-1, KERNEL_BLOCK),
    )  # fmt: skip
    books = (design_rows, groups.rows, groups.order, consts, hierarchical, pool, least, slot, used)
    return books, high


def _search_compiled(
    g: Grid,
    w: Workload,
    s: Settings,
    bounds: PlanBounds,
    kernels: ModuleType,
    extra_s: StepExtra | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The rounds of :func:`search_chunk` with the books kept by numba: round ``r`` evaluates
    the cells with ``low < bound <= high``, so no cell is evaluated twice and no ``(n, k)``
    mask is built (but the cells that last, with ``extra_s``); a plan's bound is computed only
    where its group's is within a round's window (:class:`PlanGroups`). Returns the chosen plan
    per design and whether it fits."""
    n, k = g.chips.shape[0], bounds.tp.shape[0]
    books, high = open_books(g, s, bounds, kernels)
    design_rows, rows, order, consts, hierarchical, pool, least, slot, used = books
    # Books of the fastest allowed plan that fits (best), of the fastest that fits whether
    # allowed or not (fit; the same books without ``extra_s``), of the least memory.
    best_s = np.full(n, np.inf)
    best_plan = np.full(n, k, np.int64)
    fit_s, fit_plan = (best_s, best_plan) if extra_s is None else (best_s.copy(), best_plan.copy())
    least_over = np.full(n, np.inf)
    least_plan = np.zeros(n, np.int64)
    # §2.9 A design with a plan that runs and lasts searches only such plans (the others' bounds
    # become infinite); one without has no plan to prefer and counts all as allowed.
    free = np.ones(n, bool)
    if extra_s is not None:
        kernels.all_bounds(design_rows, rows, k, consts, hierarchical, pool, least, slot, used)
        lb = pool.reshape(n, -1)
        index = np.arange(g.rows.start, g.rows.start + n)[:, None]
        lasts = np.broadcast_to(extra_s.allowed_plans(index, g), (n, k))[:, order]
        cells = lb[:, :k]
        free = ~np.any(lasts & np.isfinite(cells), axis=1)
        skipped = ~lasts & ~free[:, None]
        if skipped.any():
            cells[skipped] = np.inf
            least[:] = np.minimum.reduceat(cells, np.arange(0, k, KERNEL_BLOCK), axis=1)
        high = np.min(cells, axis=1) * FIRST_THRESHOLD
    design, plan = kernels.select(*books, np.full(n, -np.inf), high)
    piece = max(CHUNK_CELLS, 1)

    def fold(design: np.ndarray, plan: np.ndarray) -> None:
        for a in range(0, design.size, piece):
            d, p = design[a : a + piece], plan[a : a + piece]
            c = g.cells(d, p)
            m = step_model(c, w, s)
            step, allowed = compared_step_s(m, c, g.rows.start + d, extra_s)
            step, fits, valid, over = (
                np.ascontiguousarray(np.broadcast_to(v, d.shape))
                for v in (step, m.fits, m.lay.valid, m.over)
            )
            if extra_s is not None:
                # Folding the same cells into the least-memory books twice changes nothing.
                kernels.update(
                    d, p, step, fits, valid, over, fit_s, fit_plan, least_over, least_plan
                )
                fits = np.ascontiguousarray(fits & (np.broadcast_to(allowed, d.shape) | free[d]))
            kernels.update(d, p, step, fits, valid, over, best_s, best_plan, least_over, least_plan)

    rounds = 0
    while True:
        if design.size:
            fold(design, plan)
        # A design with a plan that fits widens its window by WIDEN per round up to that plan's
        # step (each round's better plans narrow it); one without grows it by GROWTH (the plans
        # that fit are rarely far above the fastest bound: more recompute, more stages) and
        # after GROWTH_ROUNDS takes every plan left.
        rounds += 1
        waiting = ~np.isfinite(best_s)
        grown = high * GROWTH if rounds < GROWTH_ROUNDS else np.full_like(high, np.inf)
        low, high = high, np.where(waiting, grown, np.minimum(best_s, high * WIDEN))
        if not np.any(high > low):
            break
        design, plan = kernels.select(*books, low, high)
    # No allowed plan fits: the fallbacks (the fastest plan that fits, else the least memory)
    # need every plan that runs, including those the bounds skipped.
    lost = np.flatnonzero(~np.isfinite(best_s))
    if lost.size:
        fold(*_runnable_cells(g, bounds, lost))
    any_fit = np.isfinite(fit_s)
    fallback = np.where(any_fit, fit_plan, least_plan)
    return np.where(np.isfinite(best_s), best_plan, fallback), any_fit
