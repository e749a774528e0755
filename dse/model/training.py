"""The training model: a workload on ``n`` clusters of designed chips (docs/model.md §2).

Everything is evaluated on a grid of shape ``(n, k)``: designs along the first axis (arrays of
shape ``(n, 1)``), candidate plans along the second (``(1, k)``). The plan search keeps the
plans that fit in memory and picks the fastest per design. Designs are processed in chunks so
that the grid stays small however many designs there are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.catalog.workloads import Workload, flops_per_token
from dse.designs import Designs, FloatArray
from dse.model.plans import Plans
from dse.model.silicon import Silicon
from dse.settings import Settings
from dse.units import BITS_PER_BYTE, GIGA, PICO, TERA

FULL, SELECTIVE, NONE = 2, 1, 0
OPERAND_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}
"""Bytes per GEMM operand element in each training precision."""
CHUNK_CELLS = 40_000
"""Design × plan cells evaluated at once: small enough that the temporaries stay in the CPU's
caches (~2x faster than 400k cells on this project's machines), large enough to amortize
Python overhead; also bounds the plan search's memory."""


@dataclass(frozen=True)
class Training:
    """Per-design results at the chosen plan; every array has shape ``(n,)``.

    Times in seconds unless the name says otherwise; memory in GB (1e9 bytes); FLOPs per step
    count the whole cluster. ``plan_index`` points into the candidate :class:`Plans`; designs
    with no plan that fits get the plan that needs the least memory and ``fits = False``.
    """

    plan_index: np.ndarray
    dp: FloatArray
    chips_used: FloatArray
    microbatches: FloatArray
    step_time_s: FloatArray
    compute_time_s: FloatArray
    tp_comm_time_s: FloatArray
    pp_comm_time_s: FloatArray
    moe_comm_time_s: FloatArray
    cp_comm_time_s: FloatArray
    dp_exposed_time_s: FloatArray
    optimizer_time_s: FloatArray
    bubble_fraction: FloatArray
    memory_per_chip_gb: FloatArray
    memory_capacity_gb: FloatArray
    model_flops_per_step: FloatArray
    hardware_flops_per_step: FloatArray
    steps: FloatArray
    training_time_s: FloatArray
    mfu: FloatArray
    hfu: FloatArray
    fits: np.ndarray
    avg_chip_power_w: FloatArray


def precision_flop_s(silicon: Silicon, precision: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """§2.3 Sustained matmul rate (FLOP/s) in the training precision, the 16-bit rate used for
    attention, and the nominal peak used for MFU; all shape ``(n,)``.

    16-bit training uses bf16 or, on chips without it, fp16. fp8/fp4 training runs the linear
    layers in that format where the chip has it and falls back to 16-bit where it has not.
    """
    # A design whose TDP cannot even feed its static power sustains no clock at all; 1 FLOP/s
    # keeps its times finite (and huge) rather than infinite.
    sixteen = np.maximum(silicon.sustained_flop_s("bf16"), silicon.sustained_flop_s("fp16"))
    sixteen = np.maximum(sixteen, 1.0)
    sixteen_peak = np.maximum(silicon.peak_flop_s["bf16"], silicon.peak_flop_s["fp16"])
    if precision == "bf16":
        return sixteen, sixteen, sixteen_peak
    low = silicon.sustained_flop_s(precision)
    low_peak = silicon.peak_flop_s[precision]
    return np.where(low > 0, low, sixteen), sixteen, np.where(low_peak > 0, low_peak, sixteen_peak)


def _executed_format(
    silicon: Silicon, precision: str, rows: slice
) -> tuple[FloatArray, FloatArray]:
    """§3.1 Energy per FLOP (pJ) and sustained/nominal clock ratio of the format that matmuls in
    ``precision`` actually run in on each chip (the 16-bit format where the chip lacks it)."""
    sixteen = np.where(silicon.peak_flop_s["bf16"][rows] > 0, 0, 1)  # 0: bf16, 1: fp16
    candidates = [precision, "bf16", "fp16"] if precision != "bf16" else ["bf16", "fp16"]
    energy = {f: silicon.energy_pj_per_flop[f][rows] for f in candidates}
    clock = {f: silicon.sustained_clock_ghz[f][rows] / silicon.clock_ghz[rows] for f in candidates}
    fallback_energy = np.where(sixteen == 0, energy["bf16"], energy["fp16"])
    fallback_clock = np.where(sixteen == 0, clock["bf16"], clock["fp16"])
    if precision == "bf16":
        return fallback_energy, fallback_clock
    has = silicon.peak_flop_s[precision][rows] > 0
    return np.where(has, energy[precision], fallback_energy), np.where(
        has, clock[precision], fallback_clock
    )


def _full_dynamic_power(
    silicon: Silicon, precision: str, rows: slice, clock_ratio: FloatArray, exponent: float
) -> FloatArray:
    """§3.1 Tensor power at full load in the executed format and the sustained clock (W)."""
    sixteen = np.where(
        silicon.peak_flop_s["bf16"][rows] > 0,
        silicon.compute_power_peak_w["bf16"][rows],
        silicon.compute_power_peak_w["fp16"][rows],
    )
    nominal = sixteen
    if precision != "bf16":
        own = silicon.compute_power_peak_w[precision][rows]
        nominal = np.where(own > 0, own, sixteen)
    return nominal * clock_ratio**exponent


def gemm_time_s(
    m: FloatArray | float,
    n: FloatArray | float,
    k: FloatArray | float,
    rate: FloatArray,
    hbm_b_s: FloatArray,
    operand_bytes: float,
    efficiency: FloatArray | float,
    settings: Settings,
    groups: FloatArray | float = 1.0,
) -> FloatArray:
    """§2.3 Time (s) of ``groups`` GEMMs C[m, n] = A[m, k]·B[k, n] run as one kernel: a roofline,
    the larger of the FLOPs at the large-GEMM ``efficiency`` η and the bytes at HBM bandwidth, plus
    a fixed kernel latency t₀ (launch, pipeline fill and drain).

    ``operand_bytes`` per element of A and B (C is written in 16-bit). A grouped GEMM (MoE
    experts) reads every group's weights once, so few tokens per expert make it memory-bound.
    Fitted to 686 cuBLAS GEMMs on an H200 (data/measurements/h200/gemm.csv): median |error| 10 %.
    """
    flops = 2.0 * groups * m * n * k
    bytes_ = groups * (operand_bytes * (m * k + k * n) + 2.0 * m * n)
    compute = flops / (efficiency * rate)
    return np.maximum(compute, bytes_ / hbm_b_s) + settings.gemm_kernel_latency_us * 1e-6


def layer_linear_time_s(
    w: Workload,
    tokens: FloatArray | float,
    tp: FloatArray,
    ep: FloatArray,
    rate: FloatArray,
    hbm_b_s: FloatArray,
    efficiency: FloatArray | float,
    settings: Settings,
) -> FloatArray:
    """§2.3 Forward and backward time (s) of one layer's linear layers on one tensor-parallel
    rank, averaged over dense and MoE layers: each linear runs three GEMMs of equal size
    (forward Y = X·Wᵀ, input gradient dY·W, weight gradient dYᵀ·X)."""
    d, hd = float(w.d_model), float(w.head_dim)
    ob = OPERAND_BYTES.get(w.precision, 2.0)

    def linear(k_in: object, n_out: object, groups: object = 1.0, m: object = tokens) -> FloatArray:
        return gemm_time_s(m, n_out, k_in, rate, hbm_b_s, ob, efficiency, settings, groups)  # type: ignore[arg-type]

    up_width = (w.ffn_matrices - 1.0) / tp
    attention = linear(d, (w.heads + 2.0 * w.kv_heads) * hd / tp) + linear(w.heads * hd / tp, d)
    dense_mlp = linear(d, up_width * w.ffn_dim) + linear(w.ffn_dim / tp, d)
    if not w.is_moe:
        return 3.0 * (attention + dense_mlp)
    # Expert tensor parallelism 1: each rank routes its tokens/tp (sequence-parallel) tokens;
    # the ep ranks' local experts see ep·(tokens/tp)·k/E tokens each, at full expert width.
    expert_tokens = tokens / tp * w.experts_per_token * ep / w.experts
    local_experts = w.experts / ep
    expert_up = (w.ffn_matrices - 1.0) * w.moe_ffn_dim
    moe_mlp = (
        linear(d, w.experts, m=tokens / tp)  # router
        + linear(d, expert_up, local_experts, expert_tokens)
        + linear(w.moe_ffn_dim, d, local_experts, expert_tokens)
    )
    if w.shared_experts:
        shared = w.shared_experts * w.moe_ffn_dim
        moe_mlp = moe_mlp + linear(d, up_width * shared) + linear(shared / tp, d)
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    return 3.0 * (attention + (1.0 - moe_fraction) * dense_mlp + moe_fraction * moe_mlp)


def _ring_time(
    bytes_: FloatArray, group: FloatArray, bandwidth_b_s: FloatArray, settings: Settings
) -> FloatArray:
    """Time of a ring all-gather or reduce-scatter of ``bytes_`` (the full buffer) over ``group``."""
    return (group - 1.0) / group * bytes_ / (bandwidth_b_s * settings.collective_efficiency)


def overlapped(
    comm_s: FloatArray, compute_s: FloatArray, overlap: FloatArray | float
) -> FloatArray:
    """§2.7 Exposed time of communication overlapped with compute: a fraction ``overlap`` is
    hidden, but never more than the compute it hides behind."""
    return np.maximum(comm_s * (1.0 - overlap), comm_s - compute_s)


def pipeline_bubble_slots(pp: FloatArray, vp: FloatArray, dual: np.ndarray) -> FloatArray:
    """§2.7 Idle stage slots per step: (p − 1)/v for (interleaved) 1F1B; for DualPipe
    (p/2 − 1)·(F&B + B − 3W)/(F + B) ≈ (p/2 − 1)·2/3 with B = 2F and W = F (DeepSeek-V3
    report, Sec. 3.2.1, Table 2)."""
    return np.where(dual, np.maximum(pp / 2.0 - 1.0, 0.0) * 2.0 / 3.0, (pp - 1.0) / vp)


def interleaved_in_flight(pp: FloatArray, vp: FloatArray) -> FloatArray:
    """§2.5 Extra in-flight activations of the interleaved 1F1B schedule, relative to plain
    1F1B: 1 + (p − 1)/(p·v) for v > 1 (Narayanan et al. 2021, Sec. 2.2)."""
    return np.where(vp > 1, 1.0 + (pp - 1.0) / (pp * vp), 1.0)


def all_to_all_time_s(
    w: Workload,
    tokens: FloatArray | float,
    ep: FloatArray,
    domain: FloatArray,
    up_b_s: FloatArray,
    out_b_s: FloatArray,
    settings: Settings,
) -> FloatArray:
    """§2.7 One MoE dispatch or combine all-to-all of ``tokens`` tokens per rank (s).

    Each token goes to ``k`` experts spread evenly over the ``ep`` ranks of its expert group,
    which is contiguous in rank order: copies for ranks in the own scale-up domain travel on
    it, the others on the scale-out network, both at once. Node-limited routing
    (``route_max_domains`` = M, DeepSeek-V3) sends a token to at most M other domains once each
    and forwards it inside them on the scale-up links. fp8 training dispatches in fp8 and
    combines in 16-bit (1.5 bytes per element on average, forward and backward together
    1.75); 16-bit training moves 2 bytes.
    """
    k = float(w.experts_per_token)
    element_b = 1.75 if w.precision in ("fp8", "fp4") else 2.0
    in_domain = np.minimum(ep, domain)
    remote = k * (ep - in_domain) / ep
    if w.route_max_domains:
        remote = np.minimum(remote, float(w.route_max_domains))
    local = k * (ep - 1.0) / ep - remote  # own domain, plus copies forwarded in remote ones
    token_b = tokens * w.d_model * element_b
    scale_up = token_b * np.maximum(local, 0.0) / up_b_s
    scale_out = token_b * remote / out_b_s
    return np.maximum(scale_up, scale_out) / settings.collective_efficiency


def context_parallel_time_s(
    w: Workload,
    tokens: FloatArray | float,
    tp: FloatArray,
    cp: FloatArray,
    domain: FloatArray,
    up_b_s: FloatArray,
    out_b_s: FloatArray,
    settings: Settings,
) -> FloatArray:
    """§2.7 Ring-attention K/V exchange of one layer, forward and backward (s).

    Each of the ``cp`` ranks passes its K and V chunk (``tokens`` tokens, KV heads / tp) around
    the ring, cp − 1 hops forward; the backward pass moves K, V and their gradients, twice the
    forward bytes (Megatron-Core context parallelism; Liu et al. 2023, Ring Attention). The cp
    group follows tp in rank order, so it stays on the scale-up links while tp·cp fits there.
    """
    kv_b = 2.0 * tokens * w.kv_heads * w.head_dim / tp * 2.0
    bandwidth = np.where(tp * cp <= domain, up_b_s, out_b_s)
    return 3.0 * (cp - 1.0) * kv_b / (bandwidth * settings.collective_efficiency)


def evaluate_training(
    designs: Designs, silicon: Silicon, workload: Workload, plans: Plans, settings: Settings
) -> Training:
    """Search the plans for every design and return the results at the fastest plan that fits."""
    n = len(designs)
    chunk = max(1, CHUNK_CELLS // max(len(plans), 1))
    parts = [
        _evaluate_chunk(
            designs, silicon, workload, plans, settings, slice(start, min(start + chunk, n))
        )
        for start in range(0, n, chunk)
    ]
    if not parts:
        parts = [_evaluate_chunk(designs, silicon, workload, plans, settings, slice(0, 0))]
    return Training(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in Training.__dataclass_fields__
        }
    )


def _evaluate_chunk(
    designs: Designs, silicon: Silicon, w: Workload, plans: Plans, settings: Settings, rows: slice
) -> Training:
    def col(array: np.ndarray) -> FloatArray:
        return array[rows][:, None]

    s = settings
    # ---- plan axis (1, k) -------------------------------------------------------------------
    tp, pp, ep, mb = (
        plans.tp[None, :],
        plans.pp[None, :],
        plans.ep[None, :],
        plans.microbatch[None, :],
    )
    rc = plans.recompute[None, :]
    fsdp = plans.zero_stage[None, :] == 3
    vp = plans.virtual_stages[None, :]
    cp = plans.context_parallel[None, :]
    dual = plans.dual_pipe[None, :] > 0
    # ---- design axis (n, 1) -----------------------------------------------------------------
    chips = col(designs.num_chips)
    domain = col(designs.scale_up_domain)
    up_b_s = col(designs.scale_up_bandwidth_gb_s) * GIGA / 2.0  # per direction
    out_b_s = col(designs.scale_out_bandwidth_gb_s) * GIGA
    hbm_b_s = col(silicon.hbm_bandwidth_tb_s) * TERA * s.hbm_efficiency
    capacity_b = col(silicon.hbm_capacity_gb) * GIGA * (1.0 - s.memory_reserve_fraction)
    gemm_rate, attention_rate, peak_rate = (col(r) for r in precision_flop_s(silicon, w.precision))

    # ---- §2.4 data parallelism and micro-batches ----------------------------------------------
    sequences = w.global_batch_sequences
    model_parallel = tp * pp  # ranks that split the weights
    replica = model_parallel * cp  # ranks that hold one copy of the model and its batch slice
    dp_max = np.floor(chips / replica)
    dp_batch = np.floor(sequences / mb)  # replicas beyond this would have no micro-batch to run
    dp = (
        np.minimum(dp_max, dp_batch)
        if not plans.dp.any()
        else np.broadcast_to(plans.dp[None, :], dp_max.shape)
    )
    # §2.4 MoE parallel folding: expert groups of ep ranks tile the tp·cp·dp ranks of a stage
    # (expert tensor parallelism 1), so tp·cp·dp must be a multiple of ep.
    dp_step = np.maximum(ep / (tp * cp), 1.0)
    dp = np.where(dp >= dp_step, np.floor(dp / dp_step) * dp_step, 0.0)
    valid = (dp >= 1.0) & (dp * replica <= chips) & (dp * mb <= sequences)
    if plans.tp_searched:
        valid &= tp <= np.maximum(domain, 1.0)
    dp_safe = np.maximum(dp, 1.0)
    weight_dp = dp_safe * cp  # context-parallel ranks hold the same weights: they reduce too
    microbatches = sequences / (dp_safe * mb)
    layers_per_stage = np.ceil(w.layers / pp)

    # ---- §2.1 parameters on one chip ---------------------------------------------------------
    expert_params = w.expert_params
    shared_params = w.total_params - expert_params
    expert_dp = np.maximum(tp * weight_dp / ep, 1.0)  # replicas of each expert shard
    params_chip = shared_params / model_parallel + expert_params / (pp * ep)
    optimizer_shards_shared = weight_dp if s.distributed_optimizer else 1.0
    optimizer_shards_expert = expert_dp if s.distributed_optimizer else 1.0
    optimizer_b = s.optimizer_bytes_per_param * (
        shared_params / model_parallel / optimizer_shards_shared
        + expert_params / (pp * ep) / optimizer_shards_expert
    )
    replicated_b = params_chip * (s.weight_bytes_per_param + s.grad_bytes_per_param) + optimizer_b
    # ZeRO-3 / FSDP: everything sharded over the data-parallel ranks, two layers gathered at a time.
    per_state_b = s.weight_bytes_per_param + s.grad_bytes_per_param + s.optimizer_bytes_per_param
    gathered_b = 2.0 * params_chip / layers_per_stage * s.weight_bytes_per_param
    sharded_params = (
        shared_params / model_parallel / weight_dp + expert_params / (pp * ep) / expert_dp
    )
    sharded_b = sharded_params * per_state_b + gathered_b
    static_b = np.where(fsdp, sharded_b, replicated_b)
    # DualPipe keeps two copies of the stage's weights (DeepSeek-V3 report, Table 2).
    static_b = static_b + np.where(dual, params_chip * s.weight_bytes_per_param, 0.0)
    # The optimizer step reads and writes every state of the parameters this rank updates.
    optimizer_params = (
        shared_params / model_parallel / optimizer_shards_shared
        + expert_params / (pp * ep) / optimizer_shards_expert
    )
    updated_params = np.where(fsdp, sharded_params, optimizer_params)

    # ---- §2.5 activations of one micro-batch in one layer (bytes, 16-bit, sequence-parallel) --
    d, hd, seq = float(w.d_model), float(w.head_dim), float(w.seq_len)
    tokens_mb = mb * seq / cp  # tokens of one micro-batch on one rank
    attention_linear = 2 * d + 2 * w.heads * hd + 4 * w.kv_heads * hd + 2 * w.heads * hd + d
    mlp_width = 6.0 if w.ffn_kind == "swiglu" else 4.0
    if w.is_moe:
        moe_fraction = (w.layers - w.dense_layers) / w.layers
        routed = (w.experts_per_token + w.shared_experts) * mlp_width * w.moe_ffn_dim
        mlp = 3 * d + (1 - moe_fraction) * mlp_width * w.ffn_dim + moe_fraction * routed
    else:
        moe_fraction = 0.0
        mlp = 3 * d + mlp_width * w.ffn_dim
    per_token_layer = attention_linear + mlp + 4 * d
    layer_b = tokens_mb * per_token_layer / tp
    scores_b = 5.0 * w.heads * seq * tokens_mb / tp
    kept_layer_b = np.where(
        rc == NONE, layer_b + scores_b, np.where(rc == SELECTIVE, layer_b, 2.0 * tokens_mb * d / tp)
    )
    in_flight = np.where(
        dual,
        np.minimum(pp + 1.0, microbatches),  # DualPipe: PP + 1 micro-batches (Table 2)
        np.minimum(pp, microbatches) * interleaved_in_flight(pp, vp),
    )
    logits_b = 4.0 * tokens_mb * w.vocab_size / tp
    working_b = np.where(rc == FULL, layer_b, 0.0)
    activation_b = in_flight * layers_per_stage * kept_layer_b + working_b + logits_b
    memory_b = static_b + activation_b
    fits = valid & (memory_b <= capacity_b)

    # ---- §2.2/§2.6 FLOPs and compute time of one micro-batch on one stage --------------------
    matmul_per_token, attention_per_token = flops_per_token(w)
    attention_layer_per_token = attention_per_token / w.layers
    stage_attention = tokens_mb * attention_layer_per_token * layers_per_stage / tp
    recompute_factor = np.where(rc == FULL, 4.0 / 3.0, 1.0)
    attention_recompute = np.where(rc == NONE, 1.0, 4.0 / 3.0)

    # §2.3 the measured efficiencies, times the design's family scale, never above peak
    family = col(designs.gemm_efficiency_scale)
    gemm_eff = np.minimum(s.gemm_efficiency_max * family, 1.0)
    attention_eff = np.minimum(s.attention_efficiency * family, 1.0)
    matmul_time = layers_per_stage * layer_linear_time_s(
        w, tokens_mb, tp, ep, gemm_rate, hbm_b_s, gemm_eff, s
    )
    # Causal attention computes half the score matrix; the model-FLOP convention counts it all.
    attention_time = 0.5 * stage_attention / (attention_eff * attention_rate)
    logits_time = 3.0 * gemm_time_s(
        tokens_mb, w.vocab_size / tp, d, gemm_rate, hbm_b_s, OPERAND_BYTES["bf16"], gemm_eff, s
    )
    memory_time = s.elementwise_bytes_per_activation_byte * layers_per_stage * layer_b / hbm_b_s
    compute_mb = (
        matmul_time * recompute_factor
        + attention_time * attention_recompute
        + memory_time * recompute_factor
        + logits_time
    )

    # ---- §2.7 communication of one micro-batch on one stage -----------------------------------
    tp_b_s = np.where(tp <= domain, up_b_s, out_b_s)
    activation_msg = tokens_mb * d * 2.0
    tp_collectives = np.where(rc == FULL, 12.0, 8.0) * layers_per_stage
    tp_all = np.where(tp > 1, tp_collectives * _ring_time(activation_msg, tp, tp_b_s, s), 0.0)
    tp_comm = overlapped(tp_all, matmul_time * recompute_factor, s.tp_overlap)
    # §2.7 rank order tp, (ep within) dp, pp (Megatron-Core's default): pipeline neighbours are
    # tp·dp ranks apart, so they share a scale-up domain only when the whole job does.
    pp_b_s = np.where(replica * dp_safe <= domain, up_b_s, out_b_s)
    pp_comm = np.where(pp > 1, 2.0 * vp * activation_msg / tp / pp_b_s, 0.0)
    if w.is_moe:
        a2a_count = np.where(rc == FULL, 6.0, 4.0) * layers_per_stage * moe_fraction
        moe_all = a2a_count * all_to_all_time_s(w, tokens_mb / tp, ep, domain, up_b_s, out_b_s, s)
        # DualPipe overlaps one micro-batch's all-to-all with another's compute in full.
        moe_comm = overlapped(moe_all, compute_mb, np.where(dual, 1.0, s.moe_comm_overlap))
    else:
        moe_comm = np.zeros_like(pp_comm)
    cp_comm: FloatArray | float = 0.0
    if np.any(cp > 1):
        cp_comm = overlapped(
            layers_per_stage
            * context_parallel_time_s(w, tokens_mb, tp, cp, domain, up_b_s, out_b_s, s),
            attention_time * attention_recompute,
            1.0,
        )
    stage_mb = compute_mb + tp_comm + pp_comm + moe_comm + cp_comm
    bubble_slots = pipeline_bubble_slots(pp, vp, dual)
    pipeline = (microbatches + bubble_slots) * stage_mb

    # ---- §2.7 data-parallel gradient reduction, partly hidden behind the backward pass -------
    # Ranks of one data-parallel group that share a scale-up domain reduce there first and then
    # cross the scale-out network over their own NICs in parallel (hierarchical collectives).
    dp_per_domain = np.clip(domain / tp, 1.0, weight_dp)
    dp_b_s = np.where(tp * weight_dp <= domain, up_b_s, np.minimum(up_b_s, out_b_s * dp_per_domain))
    shared_grad = shared_params / model_parallel * s.grad_reduce_bytes_per_param
    expert_grad = expert_params / (pp * ep) * s.grad_reduce_bytes_per_param
    dp_comm = 2.0 * _ring_time(shared_grad, weight_dp, dp_b_s, s)
    if w.is_moe:
        dp_comm = dp_comm + 2.0 * _ring_time(expert_grad, expert_dp, dp_b_s, s)
    # FSDP gathers the weights for every micro-batch's forward and backward pass and
    # reduce-scatters gradients once per micro-batch, all prefetched behind compute.
    weights_b = params_chip * s.weight_bytes_per_param
    grads_b = params_chip * s.grad_reduce_bytes_per_param
    fsdp_comm = 2.0 * microbatches * _ring_time(
        weights_b, weight_dp, dp_b_s, s
    ) + microbatches * _ring_time(grads_b, weight_dp, dp_b_s, s)
    hidden_behind = np.where(fsdp, pipeline, pipeline * 2.0 / 3.0)
    dp_comm = np.where(fsdp, fsdp_comm, dp_comm)
    dp_exposed = np.maximum(dp_comm * (1.0 - s.dp_overlap), dp_comm - hidden_behind)
    optimizer_time = 2.0 * updated_params * per_state_b / hbm_b_s
    step = pipeline + dp_exposed + optimizer_time

    # ---- §2.4 choose the fastest plan that fits; else the one that needs the least memory ----
    over = memory_b / capacity_b
    score = np.where(fits, step, np.inf)
    best_fit = np.argmin(score, axis=1)
    least_over = np.argmin(np.where(valid, over, np.inf), axis=1)
    any_fit = (
        np.isfinite(np.min(score, axis=1)) if score.shape[1] else np.zeros(score.shape[0], bool)
    )
    best = np.where(any_fit, best_fit, least_over)

    def pick(grid: np.ndarray) -> np.ndarray:
        full = np.broadcast_to(grid, step.shape)
        return np.take_along_axis(full, best[:, None], axis=1)[:, 0]

    chosen_mb = pick(microbatches)
    chosen_slots = pick(np.broadcast_to(bubble_slots, step.shape))
    chips_used = pick(dp_safe * replica)
    tokens_step = sequences * seq
    model_flops_step = tokens_step * (matmul_per_token + attention_per_token)
    hardware_per_token = matmul_per_token * pick(recompute_factor) + attention_per_token * pick(
        attention_recompute
    )
    step_s = pick(step)
    steps = w.tokens / tokens_step
    train_s = steps * step_s / s.goodput
    peak = pick(peak_rate)
    mfu = model_flops_step / (step_s * chips_used * peak)
    hfu = tokens_step * hardware_per_token / (step_s * chips_used * peak)

    # ---- §3.1 average chip power over a step ---------------------------------------------------
    # Executed FLOPs per chip: matmuls in the training format, causal attention (half the score
    # matrix) in 16-bit; each at its format's energy, scaled by the DVFS state of its clock.
    matmul_flops_chip = tokens_step * matmul_per_token * pick(recompute_factor) / chips_used
    attention_flops_chip = (
        0.5 * tokens_step * attention_per_token * pick(attention_recompute) / chips_used
    )
    matmul_pj, matmul_clock = _executed_format(silicon, w.precision, rows)
    attention_pj, attention_clock = _executed_format(silicon, "bf16", rows)
    exponent = silicon.dvfs_exponent - 1.0
    compute_w = (
        (
            matmul_flops_chip * matmul_pj * matmul_clock**exponent
            + attention_flops_chip * attention_pj * attention_clock**exponent
        )
        * PICO
        / step_s
    )
    hbm_bytes = s.elementwise_bytes_per_activation_byte * pick(
        layer_b * layers_per_stage
    ) * chosen_mb + 2.0 * pick(static_b)
    hbm_w = hbm_bytes * BITS_PER_BYTE * silicon.hbm_energy_pj_per_bit[rows] * PICO / step_s
    # A busy chip burns part of its full-load dynamic power even when it issues no tensor FLOPs
    # (clock tree, control, SRAM and data movement, memory-bound kernels): a fraction of the
    # dynamic power at the sustained clock for the time it is not doing tensor math.
    full_dynamic_w = _full_dynamic_power(silicon, w.precision, rows, matmul_clock, exponent + 1.0)
    tensor_busy = np.clip(compute_w / np.maximum(full_dynamic_w, 1e-9), 0.0, 1.0)
    busy_w = s.active_idle_power_fraction * (1.0 - tensor_busy) * full_dynamic_w
    avg_power = np.minimum(
        silicon.static_power_w[rows] + compute_w + busy_w + hbm_w, designs.tdp_w[rows]
    )

    return Training(
        plan_index=best,
        dp=pick(dp_safe),
        chips_used=chips_used,
        microbatches=chosen_mb,
        step_time_s=step_s,
        compute_time_s=(chosen_mb + chosen_slots) * pick(compute_mb),
        tp_comm_time_s=chosen_mb * pick(tp_comm),
        pp_comm_time_s=chosen_mb * pick(pp_comm),
        moe_comm_time_s=chosen_mb * pick(moe_comm),
        cp_comm_time_s=chosen_mb * pick(np.asarray(cp_comm)),
        dp_exposed_time_s=pick(dp_exposed),
        optimizer_time_s=pick(optimizer_time),
        bubble_fraction=chosen_slots / (chosen_mb + chosen_slots),
        memory_per_chip_gb=pick(memory_b) / GIGA,
        memory_capacity_gb=silicon.hbm_capacity_gb[rows],
        model_flops_per_step=np.full(step_s.shape, model_flops_step),
        hardware_flops_per_step=tokens_step * hardware_per_token,
        steps=np.full(step_s.shape, steps),
        training_time_s=train_s,
        mfu=mfu,
        hfu=hfu,
        fits=any_fit,
        avg_chip_power_w=avg_power,
    )
