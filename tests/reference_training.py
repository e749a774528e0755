"""A readable scalar reference of the training and economics models (docs/model.md §2–§3).

One design, one plan at a time, in plain ``math``; the plan search is an explicit loop. The
vectorized model must agree with it on random designs and plans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from dse.catalog.workloads import Workload, flops_per_token
from dse.settings import Settings


@dataclass
class Chip:
    """What the training model needs to know about one design (from the silicon model)."""

    num_chips: float
    domain: float
    scale_up_gb_s: float
    scale_out_gb_s: float
    hbm_tb_s: float
    hbm_gb: float
    gemm_flop_s: float  # sustained, training precision
    attention_flop_s: float  # sustained, 16-bit
    score_flop_s: float  # attention's score matmuls: 16-bit, or FP8 attention's rate
    exp_per_s: float  # sustained exponentials (special-function units)
    unit_cycles_per_s: float  # sustained compute-unit cycles (SMs × clock)
    peak_flop_s: float  # nominal, training precision
    family_scale: float = 1.0  # the family's gemm_efficiency_scale
    attention_scale: float = math.nan  # the family's measured attention scale; NaN: family_scale
    hbm_scale: float = 1.0  # the family's hbm_efficiency_scale: its kernels' share of the HBM
    flash2_ratio: float = 1.0  # FlashAttention-2's attention efficiency over the measured kernel's
    link_share: float = 1.0  # the family's collective_efficiency_scale: share of the links reached
    latency_scale: float = 1.0  # the family's collective_latency_scale: its latencies over NCCL's
    host_gb_s: float = 64.0  # host link, each direction
    pod_chips: float = 1e7  # chips in one non-blocking pod of the scale-out fabric
    oversubscription: float = 1.0  # the fabric's uplinks above a pod: 1/r of the pod's NICs
    in_network: bool = False  # switches that reduce (SHARP)
    mesh: bool = False  # scale-up domain of direct links, an equal share of the bandwidth per peer
    matrix_unit: float = 0.0  # side of a systolic array (TPU MXU); 0: none
    attention_fixed: float = 0.0  # the chip's measured fixed keys a query of its attention kernel
    memory_reserve: float = math.nan  # the family runtime's share of the HBM; NaN: the settings'


@dataclass
class Plan:
    tp: int
    pp: int
    ep: int
    microbatch: int
    recompute: str
    zero_stage: int
    vp: int = 1
    cp: int = 1
    dualpipe: int = 0
    zero_bubble: int = 0  # ZB-H1
    placement: str = "tp-cp-ep-dp-pp"
    dp_shard: int = 0  # hybrid sharding: ZeRO states sharded over dp_shard ranks; 0: all of dp
    etp: int = 1  # expert tensor parallelism: each routed expert split over etp ranks


def ring(
    bytes_: float,
    group: float,
    bandwidth: float,
    s: Settings,
    domains: float = 1.0,
    messages: float = 1.0,
) -> float:
    """``messages`` ring collectives moving ``bytes_`` over ``group`` ranks in ``domains`` domains:
    NCCL's base latency and one hop per step (domains - 1 of them across the network) each."""
    latency = 0.0
    if group > 1:
        out_steps = min(max(domains - 1, 0), group - 1)
        latency = (
            s.collective_latency_us
            + (group - 1 - out_steps) * s.scale_up_hop_latency_us
            + out_steps * s.scale_out_hop_latency_us
        ) * 1e-6
    return messages * latency + (group - 1) / group * bytes_ / (bandwidth * s.collective_efficiency)


def all_reduce_s(
    bytes_: float,
    group: float,
    bandwidth: float,
    s: Settings,
    domains: float = 1.0,
    messages: float = 1.0,
    in_network: bool = False,
) -> float:
    """NCCL's faster all-reduce: a ring (reduce-scatter + all-gather) or a double binary tree,
    2·((ranks per domain − 1) + ⌊log₂ domains⌋) levels deep, moving twice the bytes at 0.92 of
    the ring's bus bandwidth; across domains with switches that reduce, also the bytes once
    with the latency of a scale-up step each way (if a domain holds several ranks) and one
    network traversal."""
    if group <= 1:
        return 0.0
    ring_s = 2 * ring(bytes_, group, bandwidth, s, domains, messages)
    spans = max(domains, 1.0)
    levels = 2 * (max(group / spans - 1, 0) + math.floor(math.log2(spans)))
    tree_s = messages * levels * s.tree_level_latency_us * 1e-6
    tree_s += 2 * bytes_ / (0.92 * bandwidth * s.collective_efficiency)  # NCCL: busBw * .92
    best = min(ring_s, tree_s)
    if in_network and spans > 1:
        up_steps = 2 if group / spans > 1 else 0
        latency = (
            s.collective_latency_us
            + up_steps * s.scale_up_hop_latency_us
            + s.scale_out_hop_latency_us
        )
        switched = messages * latency * 1e-6 + bytes_ / (s.collective_efficiency * bandwidth)
        best = min(best, switched)
    return best


def pod_out(chip: Chip, span: float, members_per_pod: float) -> float:
    """Scale-out bytes/s per rank of rings spanning ``span`` chips with ``members_per_pod``
    consecutive members in a pod: they leave the pod on one link in ``members_per_pod``, over
    uplinks worth 1/r of the pod's NICs."""
    out = chip.scale_out_gb_s * 1e9 * chip.link_share
    if span <= chip.pod_chips:
        return out
    return out / max(chip.oversubscription / members_per_pod, 1)


def buckets(params: float, dp: float) -> float:
    """Megatron-Core's gradient buckets: max(40M, 1M x dp) parameters each."""
    return max(math.ceil(params / max(40e6, 1e6 * dp)), 1)


OPERAND_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}


def filled(width: float, chip: Chip) -> float:
    """Share of a systolic array's side that a matmul dimension of ``width`` keeps busy."""
    if not chip.matrix_unit:
        return 1.0
    return width / (chip.matrix_unit * math.ceil(width / chip.matrix_unit))


def gemm(
    m: float,
    n: float,
    k: float,
    chip: Chip,
    ob: float,
    s: Settings,
    groups: float = 1,
    grouped: bool = False,
) -> float:
    """Roofline time of ``groups`` GEMMs (m × k)·(k × n) as one kernel; on a systolic array the
    weight tile k × n fills only part of it where k or n is not a multiple of its side, and a
    ``grouped`` GEMM (the routed experts) takes its byte time on top of its FLOP time."""
    flops = 2 * groups * m * n * k
    bytes_ = groups * (ob * (m * k + k * n) + 2 * m * n)
    hbm = chip.hbm_tb_s * 1e12 * s.hbm_efficiency * chip.hbm_scale
    efficiency = min(s.gemm_efficiency_max * chip.family_scale, 1.0)
    efficiency *= filled(k, chip) * filled(n, chip)
    compute, memory = flops / (efficiency * chip.gemm_flop_s), bytes_ / hbm
    roofline = compute + memory if grouped and chip.matrix_unit else max(compute, memory)
    return roofline + s.gemm_kernel_latency_us * 1e-6


def routed_experts(chip: Chip, w: Workload, tokens: float, plan: Plan, s: Settings) -> float:
    """Forward + backward time of one MoE layer's routed experts (grouped GEMMs) on one rank."""
    ob = OPERAND_BYTES.get(w.precision, 2.0)
    # each local expert's tokens gathered over its etp ranks, at 1/etp of the width
    per_expert = tokens / plan.tp * w.experts_per_token * plan.ep * plan.etp / w.experts
    local = w.experts / plan.ep
    width = w.moe_ffn_dim / plan.etp
    io = w.moe_latent_dim or w.d_model  # a latent MoE's experts read and write the latent
    up = gemm(per_expert, (w.ffn_matrices - 1) * width, io, chip, ob, s, local, grouped=True)
    return 3 * (up + gemm(per_expert, io, width, chip, ob, s, local, grouped=True))


def linears(chip: Chip, w: Workload, tokens: float, plan: Plan, s: Settings) -> float:
    """Forward + backward time of one layer's linear layers, averaged over dense and MoE layers."""
    d, hd, tp = w.d_model, w.head_dim, plan.tp
    ob = OPERAND_BYTES.get(w.precision, 2.0)
    up = (w.ffn_matrices - 1) / tp
    kv_per_rank = max(w.kv_heads / tp, 1)  # beyond tp = H_kv each rank projects a copy
    attention = gemm(tokens, (w.heads / tp + 2 * kv_per_rank) * hd, d, chip, ob, s) + gemm(
        tokens, d, w.heads * hd / tp, chip, ob, s
    )
    if w.kv_lora_rank:  # MLA: latents down on the rank's own tokens, heads up, o row-parallel
        rope, qk = w.qk_rope_head_dim, hd + w.qk_rope_head_dim
        if w.q_lora_rank:
            q = gemm(tokens / tp, w.q_lora_rank, d, chip, ob, s)
            q += gemm(tokens, w.heads * qk / tp, w.q_lora_rank, chip, ob, s)
        else:
            q = gemm(tokens, w.heads * qk / tp, d, chip, ob, s)
        kv = gemm(tokens / tp, w.kv_lora_rank + rope, d, chip, ob, s)
        kv += gemm(tokens, w.heads * 2 * hd / tp, w.kv_lora_rank, chip, ob, s)
        attention = q + kv + gemm(tokens, d, w.heads * hd / tp, chip, ob, s)
    if w.is_hybrid:  # a share of attention blocks and of Mamba blocks (in- and out-projection)
        mamba = gemm(tokens, w.mamba_in_width / tp, d, chip, ob, s)
        mamba += gemm(tokens, d, w.mamba_inner / tp, chip, ob, s)
        attention = w.attention_share * attention + w.mamba_share * mamba
    dense = gemm(tokens, up * w.ffn_dim, d, chip, ob, s) + gemm(
        tokens, d, w.ffn_dim / tp, chip, ob, s
    )
    if not w.is_moe:
        return 3 * (attention + dense)
    moe = (
        gemm(tokens / tp, w.experts, d, chip, ob, s) + routed_experts(chip, w, tokens, plan, s) / 3
    )
    if w.moe_latent_dim:  # the routed tokens down to the latent and back, on the rank's tokens
        moe += gemm(tokens / tp, w.moe_latent_dim, d, chip, ob, s)
        moe += gemm(tokens / tp, d, w.moe_latent_dim, chip, ob, s)
    if w.shared_experts:
        width = w.shared_experts * w.moe_ffn_dim
        moe += gemm(tokens, up * width, d, chip, ob, s) + gemm(tokens, d, width / tp, chip, ob, s)
    f = (w.layers - w.dense_layers) / w.layers
    return 3 * (attention + (1 - f) * dense + f * moe)


def visited_keys(seq: float, window: float, block_q: float, block_kv: float) -> float:
    """Keys per query a block-sparse causal kernel computes: every key block that holds a key
    of some query of the query block, in full (a loop over the query blocks)."""
    total, start = 0.0, 0.0
    while start < seq:
        end = min(start + block_q, seq)
        first = max(start - window + 1, 0) // block_kv
        last = (end - 1) // block_kv
        total += (end - start) * (min((last + 1) * block_kv, seq) - first * block_kv)
        start = end
    return total / seq


def blocked_scores(
    w: Workload, plan: Plan, seq: float, scores: tuple[float, float, float], counted: float
) -> tuple[float, float]:
    """Scores computed by a fused kernel in blocks or with a split backward, weighted for the
    matmuls (over the fused kernel's 7 a score) and for the exponentials (one a score and
    pass): forward QKᵀ, PV and one exponential; fused backward 5 matmuls and 1; split, dK/dV
    4 and 1, dQ 3 and 1. ``scores``: the full and windowed layers' causal scores and the
    chip's fixed cost in scores; ``counted``: what a fused kernel without blocks computes."""
    local = seq / plan.cp
    window = min(w.sliding_window, local) if w.window_layers else local
    blocks = w.attention_blocks
    weights = {"fused": ((2, 1), (5, 1), (0, 0)), "split": ((2, 1), (4, 1), (3, 1))}
    matmuls = exponentials = 0.0
    for n, (m, e) in enumerate(weights[w.attention_backward]):
        count = counted
        if blocks:
            bq, bk = blocks[2 * n], blocks[2 * n + 1]
            count = scores[0] * visited_keys(local, local, bq, bk) / (local / 2) + scores[2]
            count += (
                scores[1] * visited_keys(local, window, bq, bk) / (window - window**2 / 2 / local)
            )
        matmuls += m / 7 * count
        exponentials += e * count
    return matmuls, exponentials


def step(chip: Chip, w: Workload, plan: Plan, s: Settings) -> dict[str, float] | None:
    """Step time and memory of one plan; None when the plan cannot run at all."""
    k = chip.latency_scale  # the family's collective library: every latency k times NCCL's
    s = replace(
        s,
        collective_latency_us=k * s.collective_latency_us,
        scale_up_hop_latency_us=k * s.scale_up_hop_latency_us,
        scale_out_hop_latency_us=k * s.scale_out_hop_latency_us,
        tree_level_latency_us=k * s.tree_level_latency_us,
    )
    sequences = w.global_batch_sequences
    mp = plan.tp * plan.pp
    replica = mp * plan.cp
    dp = min(math.floor(chip.num_chips / replica), math.floor(sequences / plan.microbatch))
    fold = max(plan.ep * plan.etp / (plan.tp * plan.cp), 1)  # ep·etp ranks tile tp·cp·dp
    if plan.dp_shard:  # and the sharding groups tile dp
        fold = math.lcm(int(fold), plan.dp_shard) if fold == int(fold) else fold * plan.dp_shard
    dp = math.floor(dp / fold) * fold if dp >= fold else 0
    if dp < 1 or dp * replica > chip.num_chips or dp * plan.microbatch > sequences:
        return None
    m = sequences / (dp * plan.microbatch)
    layers = math.ceil(w.layers / plan.pp)
    full, none, op, ffn = (plan.recompute == p for p in ("full", "none", "op", "ffn"))
    qkv_linear1 = plan.recompute == "qkv_linear1"
    qkv_context = plan.recompute == "qkv_context"
    mla_up_proj = plan.recompute == "mla_up_proj"  # MLA's q, k, v dropped, redone from latents
    moe = plan.recompute == "moe"  # each MoE layer redone from its input, dispatch included
    offload = plan.recompute == "offload"  # full recompute, layer inputs in host memory

    # memory
    experts = w.expert_params
    shared = w.total_params - experts
    expert_ranks = plan.ep * plan.etp  # one copy of a stage's experts
    local_experts = experts / (plan.pp * expert_ranks)
    wdp = dp * plan.cp  # ranks holding the same weights
    expert_dp = max(plan.tp * wdp / expert_ranks, 1)
    # the ranks each ZeRO state is sharded over: all wdp, or dp_shard·cp (hybrid sharding)
    sdp = plan.dp_shard * plan.cp if plan.dp_shard else wdp
    expert_sdp = min(max(plan.tp * sdp / expert_ranks, 1), expert_dp)
    params = shared / mp + local_experts
    states = s.weight_bytes_per_param + s.grad_bytes_per_param + s.optimizer_bytes_per_param
    sharded = shared / mp / sdp + local_experts / expert_sdp
    if plan.zero_stage == 3:
        updated = sharded
        # without a sharded 16-bit copy the fp32 master shard is cast as it is gathered
        kept = states - (0 if s.sharded_weight_copy else s.weight_bytes_per_param)
        static = updated * kept + 2 * params / layers * s.weight_bytes_per_param
    else:
        shard = plan.zero_stage >= 2 or (plan.zero_stage == 1 and s.distributed_optimizer)
        updated = sharded if shard else params
        if plan.zero_stage == 2:  # gradients sharded; two layers' full gradients in flight
            grads = (sharded + 2 * params / layers) * s.grad_bytes_per_param
        else:
            grads = params * s.grad_bytes_per_param
        static = params * s.weight_bytes_per_param + grads + s.optimizer_bytes_per_param * updated
    if plan.dualpipe:
        static += params * s.weight_bytes_per_param  # two copies of the weights
    d, hd, seq = w.d_model, w.head_dim, w.seq_len
    tokens = plan.microbatch * seq / plan.cp
    mask = 1 if w.dropout > 0 else 0
    f = (w.layers - w.dense_layers) / w.layers if w.is_moe else 0.0

    def stored(o_in: float) -> float:
        """Stored bytes of the layer with its linear inputs at ``o_in`` bytes."""
        attention = o_in * d + 2 * w.heads * hd + 4 * w.kv_heads * hd + o_in * w.heads * hd
        if w.kv_lora_rank:  # MLA: input, latents (format + normalized 16-bit), q, k, v, o input
            latents = w.q_lora_rank + w.kv_lora_rank
            q_k_v = w.heads * (2 * (hd + w.qk_rope_head_dim) + hd)
            attention = o_in * (d + latents + w.heads * hd) + 2 * latents + 2 * q_k_v
        norm_inputs = (2 if w.parallel_blocks else 4) * d  # one layer input, or two
        if w.is_hybrid:  # Mamba: the projections' inputs, z/x/B/C/dt, x/B/C, y, fp32 dt and decay
            inner, bc = w.mamba_inner, w.mamba_bc_width
            mamba = o_in * (d + inner) + 2 * (w.mamba_in_width + 2 * inner + bc)
            mamba += 8 * w.mamba_heads + mask * d
            attention = (
                w.attention_share * (attention + mask * d) + w.mamba_share * mamba - mask * d
            )
            norm_inputs = 2 * d * w.blocks_per_layer  # one input per block
        width = (4 if w.ffn_kind == "swiglu" else 2) + o_in
        mlp = (o_in + mask) * d + (1 - f) * width * w.ffn_dim
        if w.is_moe:
            mlp += f * (w.experts_per_token + w.shared_experts) * width * w.moe_ffn_dim
            # the k dispatched copies, fc1's input (a latent MoE's latents, and the combined
            # latent, the up-projection's input)
            mlp += f * w.experts_per_token * o_in * (w.moe_latent_dim or d)
            mlp += f * o_in * w.moe_latent_dim
        shared = o_in * d if w.parallel_shared_norm else 0  # one normalized copy for both
        return tokens * (attention + mask * d + mlp + norm_inputs - shared) / plan.tp

    # linear-layer inputs in the training format (fp8/fp4: 1 byte), dropout masks only with
    # dropout; memory-bound operators work on the 16-bit tensors
    o_linear = 1 if w.precision in ("fp8", "fp4") else 2
    layer = stored(o_linear)
    layer_16 = stored(2)
    per_token_16 = layer_16 * plan.tp / tokens

    def moe_stored(o_in: float) -> float:
        """What the MLP part of one MoE layer keeps per token: its normalized input, the
        experts' activations and the k dispatched copies."""
        width = (4 if w.ffn_kind == "swiglu" else 2) + o_in
        experts = (w.experts_per_token + w.shared_experts) * width * w.moe_ffn_dim
        io = w.moe_latent_dim or d
        return o_in * d + experts + w.experts_per_token * o_in * io + o_in * w.moe_latent_dim

    # fp8/fp4: every linear's input and output gradient cast to the format, 4 bytes an element
    quantize = 0.0
    if w.precision in ("fp8", "fp4") and w.fp8_casts == "fused":
        layer_16 = layer  # the producing kernels write the format
    elif w.precision in ("fp8", "fp4"):
        fm = 3 if w.ffn_kind == "swiglu" else 2

        def mlp_operands(width: float) -> float:
            return 2 * d + fm * width

        operands = 2 * d + (2 * w.heads + 2 * w.kv_heads) * hd
        if w.is_hybrid:  # the Mamba projections' inputs and output gradients
            mamba = 2 * d + w.mamba_in_width + w.mamba_inner
            operands = w.attention_share * operands + w.mamba_share * mamba
        if w.kv_lora_rank:  # each MLA projection's input and output gradient
            r_q, r_kv, rope = w.q_lora_rank, w.kv_lora_rank, w.qk_rope_head_dim
            q_path = (d + 2 * r_q) if r_q else d
            qk = w.heads * (hd + rope)
            operands = q_path + qk + d + r_kv + rope + r_kv + 2 * w.heads * hd + w.heads * hd + d
        if w.is_moe:
            routed = (w.experts_per_token + w.shared_experts) * mlp_operands(w.moe_ffn_dim)
            if w.moe_latent_dim:  # routed experts on the latent; the two latent projections
                l_d = w.moe_latent_dim
                routed = w.experts_per_token * (2 * l_d + fm * w.moe_ffn_dim)
                routed += w.shared_experts * mlp_operands(w.moe_ffn_dim) + 2 * (d + l_d)
            operands += (1 - f) * mlp_operands(w.ffn_dim) + f * routed
        else:
            operands += mlp_operands(w.ffn_dim)
        quantize = 4 * tokens * operands / plan.tp
    # op: q, v, gate/up and down outputs kept (every other matmul), with attention's output
    # and the layer input; k, o and the other up projection recomputed
    mlp_ups = (3 if w.ffn_kind == "swiglu" else 2) - 1
    if w.is_moe:
        copies = (1 - f) + f * (w.experts_per_token + w.shared_experts)
        width = (1 - f) * w.ffn_dim + f * (w.experts_per_token + w.shared_experts) * w.moe_ffn_dim
    else:
        copies, width = 1.0, w.ffn_dim
    # MLA: queries and keys H·(hd + rope) wide, values H·hd
    q_out = w.heads * (hd + w.qk_rope_head_dim) if w.kv_lora_rank else w.heads * hd
    k_out = q_out if w.kv_lora_rank else w.kv_heads * hd
    v_out = w.heads * hd if w.kv_lora_rank else w.kv_heads * hd
    op_kept = q_out + v_out + width + (copies * d if mlp_ups == 2 else 0.0)
    op_kept += d + w.heads * hd
    # ffn (AXLearn's default): the input, q, k, v, o and attention's output kept
    ffn_kept = d + q_out + k_out + v_out + d + w.heads * hd
    # qkv_linear1 (AXLearn on Trainium2): the input, q, k, v and the MLP's up projections
    qkv_linear1_kept = d + q_out + k_out + v_out + mlp_ups * width
    # qkv_context (MaxText's Ironwood recipes): the input, q, k, v and attention's output
    qkv_context_kept = d + q_out + k_out + v_out + w.heads * hd
    if op:
        kept = 2 * tokens * op_kept / plan.tp
    elif ffn:
        kept = 2 * tokens * ffn_kept / plan.tp
    elif qkv_linear1:
        kept = 2 * tokens * qkv_linear1_kept / plan.tp
    elif qkv_context:
        kept = 2 * tokens * qkv_context_kept / plan.tp
    elif mla_up_proj:
        kept = layer - 2 * tokens * w.heads * (2 * (hd + w.qk_rope_head_dim) + hd) / plan.tp
    elif moe:  # the MoE layers keep their 16-bit input instead
        kept = layer - f * tokens * (moe_stored(o_linear) - 2 * d) / plan.tp
    elif none:
        # flash attention keeps no scores; materialized: 5 bytes per score
        score_bytes = (5 if mask else 2) if w.attention_kernel == "materialized" else 0
        kept = layer + score_bytes * w.heads * seq * tokens / plan.tp * w.attention_share
    elif full:
        kept = 2 * tokens * d / plan.tp
    elif offload:
        kept = 0.0
    else:
        kept = layer
    layer_input = 2 * tokens * d / plan.tp
    # the first rank holds ⌊L/p⌋ layers, ⌊L/(p·v)⌋ in its first virtual stage; interleaved, it
    # holds 2p − 1 micro-batches of that virtual stage and p of each other one
    # (⌈⌉ with MTP modules, which make the last rank the short one)
    share = math.ceil if w.mtp_layers else math.floor
    first = max(share(w.layers / plan.pp), 1)
    first_chunk = min(max(share(w.layers / (plan.pp * plan.vp)), 1), first)
    if plan.dualpipe:
        in_flight = min(plan.pp + 1, m) * first
    elif plan.vp > 1:
        in_flight = (
            min(plan.pp, m)
            / plan.pp
            * ((2 * plan.pp - 1) * first_chunk + plan.pp * (first - first_chunk))
        )
    else:
        in_flight = min(plan.pp, m) * first
    activations = (
        in_flight * kept
        + (layer if full or offload else 0)
        + (tokens * moe_stored(o_linear) / plan.tp if moe else 0)  # one MoE layer redone
        + (2 * layer_input if offload else 0)  # one going out, one coming back
        + s.logits_bytes_per_element * tokens * w.vocab_size / plan.tp
    )
    memory = static + activations

    # compute of one micro-batch on one stage
    t_matmul = layers * linears(chip, w, tokens, plan, s)
    # flash: the causal half of the scores, each 12·hd FLOPs on the tensor units and 2
    # exponentials; materialized: every score, its matrices through HBM, 1 exponential.
    # A sliding-window layer's query attends to at most `window` keys: s·w − w²/2 scores of a
    # sequence, where a full layer computes s²/2.
    window = min(w.sliding_window, seq) if w.window_layers else seq
    windowed_share = w.window_layers / w.layers
    window_keys = window - window * window / (2 * seq)  # per query, averaged over the sequence
    attention_share = w.attention_count / w.layers  # a hybrid's attention blocks per layer
    full_scores = (
        0.5 * tokens * seq * w.heads * layers * (attention_share - windowed_share) / plan.tp
    )
    window_scores = tokens * window_keys * w.heads * layers * windowed_share / plan.tp
    scores = full_scores + window_scores
    own = chip.attention_scale
    eta = min(s.attention_efficiency * (chip.family_scale if math.isnan(own) else own), 1.0)
    # a hybrid's Mamba-2 scans: the measured Triton kernels' cycles per token and channel, or
    # if slower, per token and block 3·(2QNG + H_m·(2QP + 4NP)) FLOPs at the attention
    # kernel's efficiency with 2·H_m·Q exponentials
    q_c, n_s, p_h = w.mamba_chunk, w.mamba_state_dim, w.mamba_head_dim
    ssd_flops = 3 * (
        2 * q_c * n_s * w.mamba_groups + w.mamba_heads * (2 * q_c * p_h + 4 * n_s * p_h)
    )
    ssd_tokens = tokens * layers * w.mamba_layers / w.layers / plan.tp
    t_scan = ssd_tokens * max(
        ssd_flops / (eta * chip.attention_flop_s) + 2 * w.mamba_heads * q_c / chip.exp_per_s,
        w.mamba_heads * p_h * 11.35 / max(chip.unit_cycles_per_s, chip.attention_flop_s / 8192),
    )
    hbm = chip.hbm_tb_s * 1e12 * s.hbm_efficiency * chip.hbm_scale
    # QKᵀ over h_qk (MLA: hd + rope), PV over hd; each score matmul idles a systolic array
    # beyond its head width
    qk = hd + w.qk_rope_head_dim
    score_flops = 6 * qk / filled(qk, chip) + 6 * hd / filled(hd, chip)
    if w.attention_kernel == "materialized":
        score_gemms = max(score_flops / (eta * chip.score_flop_s), 12 / hbm)
        softmax_and_dropout = (10 + (10 if w.dropout > 0 else 0)) / hbm
        t_attention = 2 * scores * (score_gemms + softmax_and_dropout + 1 / chip.exp_per_s)
    else:
        if w.attention_kernel == "flash2":  # FlashAttention-2 where the family has faster kernels
            eta *= chip.flash2_ratio
        per_score = score_flops / (eta * chip.score_flop_s) + 2 / chip.exp_per_s
        s0 = s.attention_overhead_tokens
        window_counted = min(2 * window_keys, seq / plan.cp)
        fixed = chip.attention_fixed * (
            full_scores * plan.cp / seq + window_scores / window_counted
        )
        counted = (
            full_scores * (1 + s0 * plan.cp / seq)
            + window_scores * (1 + 2 * s0 / window_counted)  # two edges
            + fixed
        )
        t_attention = counted * per_score
        if w.attention_blocks or w.attention_backward == "split":
            matmul_scores, exp_scores = blocked_scores(
                w, plan, seq, (full_scores, window_scores, fixed), counted
            )
            t_attention = matmul_scores * score_flops / (eta * chip.score_flop_s)
            t_attention += exp_scores / chip.exp_per_s
    t_attention += t_scan
    t_logits = 3 * gemm(tokens, w.vocab_size / plan.tp, d, chip, 2.0, s)
    beta = s.elementwise_bytes_per_activation_byte
    if w.compiler == "compiled":
        beta *= s.compiled_elementwise_fraction  # a graph compiler's fused kernels
    # the dispatched copies move by the permutation's own bytes: 8·d·(1 + k) a routed token
    o_16 = 1 if w.precision in ("fp8", "fp4") and w.fp8_casts == "fused" else 2
    io = w.moe_latent_dim or d  # a latent MoE permutes its latents
    routed_16 = tokens * f * w.experts_per_token * o_16 * io / plan.tp
    permute = tokens * f * 8 * io * (1 + w.experts_per_token) / plan.tp
    if w.moe_permutation == "gather":  # MaxText's gathers: 2·d·(12k + 4) a token
        permute = tokens * f * 2 * io * (12 * w.experts_per_token + 4) / plan.tp
    # Megatron-Core's eager expert bias: 28 bytes per element of the k experts' outputs
    eager_bias = w.expert_bias and w.expert_bias_add == "eager"
    if eager_bias:
        permute += tokens * f * 28 * io * w.experts_per_token / plan.tp
    t_memory = layers * (beta * (layer_16 - routed_16) + permute + quantize) / hbm
    # each memory-bound kernel's fixed time: forward, the norms (one shared by a parallel
    # block's branches; MLA's two latent norms), the residual adds, activation and RoPE; two
    # backward kernels each
    norms = (1 if w.parallel_blocks and w.parallel_shared_norm else 2) + (w.q_lora_rank > 0)
    norms += w.kv_lora_rank > 0
    forward_kernels = norms + (1 if w.parallel_blocks else 2) + 2
    if w.is_hybrid:  # a norm and an add per block, the activation, RoPE per attention block,
        # 7 per Mamba block (its convolution, five scan kernels, gated norm)
        blocks = w.blocks_per_layer
        forward_kernels = 2 * blocks + 1 + w.attention_share + 2 * w.mamba_share
    t_memory += layers * 3 * forward_kernels * s.elementwise_kernel_latency_us * 1e-6
    full = full or offload  # from here on, offload computes as full recompute does
    redo = 4 / 3 if full else 1.0
    other_redo = 4 / 3 if full or op or ffn or qkv_linear1 or qkv_context else 1.0

    def redone_share(mlp_width: float, experts: float) -> float:
        """op redoes k, o and every other MLP projection; ffn the MLP's up projections;
        qkv_linear1 the o projection; qkv_context the o and the MLP's up projections."""
        forward = [d * w.heads * hd, d * w.kv_heads * hd, d * w.kv_heads * hd, w.heads * hd * d]
        if w.kv_lora_rank:  # MLA: q's projections, and the latent's shared by k and v
            r_q, r_kv, rope = w.q_lora_rank, w.kv_lora_rank, w.qk_rope_head_dim
            q = (d * r_q + r_q * q_out) if r_q else d * q_out
            kv = (d * (r_kv + rope) + r_kv * 2 * w.heads * hd) / 2
            forward = [q, kv, kv, w.heads * hd * d]
        forward += [experts * d * mlp_width] * mlp_ups + [experts * mlp_width * d]
        if qkv_context:  # the o projection and the MLP's up projections
            redone = forward[3:-1]
        else:
            redone = forward[4:-1] if ffn else forward[3:4] if qkv_linear1 else forward[1::2]
        return sum(redone) / sum(forward)

    if mla_up_proj:  # the up projections of the queries and of the key/value latent
        r_q, r_kv, qk = w.q_lora_rank, w.kv_lora_rank, hd + w.qk_rope_head_dim
        up = (r_q * w.heads * qk if r_q else d * w.heads * qk) + r_kv * 2 * w.heads * hd
        down = (d * r_q if r_q else 0) + d * (r_kv + w.qk_rope_head_dim)
        attention_params = up + down + w.heads * hd * d
        mlp_params = (3 if w.ffn_kind == "swiglu" else 2) * d
        share = up / (attention_params + mlp_params * w.ffn_dim)
        if w.is_moe:
            experts = w.experts_per_token + w.shared_experts
            share = (1 - f) * share + f * up / (
                attention_params + mlp_params * w.moe_ffn_dim * experts
            )
        redo = 1 + share / 3
    if moe:  # the routed and shared experts of the MoE layers, and their memory-bound share
        if w.kv_lora_rank:
            r_q, r_kv, qk = w.q_lora_rank, w.kv_lora_rank, hd + w.qk_rope_head_dim
            up = (r_q * w.heads * qk if r_q else d * w.heads * qk) + r_kv * 2 * w.heads * hd
            down = (d * r_q if r_q else 0) + d * (r_kv + w.qk_rope_head_dim)
            attention_params = up + down + w.heads * hd * d
        else:
            attention_params = d * (w.heads + 2 * w.kv_heads) * hd + w.heads * hd * d
        if w.is_hybrid:
            mamba_params = d * (w.mamba_in_width + w.mamba_inner)
            attention_params = w.attention_share * attention_params + w.mamba_share * mamba_params
        experts = (w.experts_per_token + w.shared_experts) * (3 if w.ffn_kind == "swiglu" else 2)
        moe_mlp = experts * d * w.moe_ffn_dim
        if w.moe_latent_dim:
            m_w, l_d = (3 if w.ffn_kind == "swiglu" else 2), w.moe_latent_dim
            moe_mlp = (w.experts_per_token * l_d + w.shared_experts * d) * m_w * w.moe_ffn_dim
            moe_mlp += 2 * d * l_d
        redo = 1 + f * moe_mlp / (attention_params + moe_mlp) / 3
        other_redo = 1 + f * moe_stored(2) / per_token_16 / 3
    if op or ffn or qkv_linear1 or qkv_context:
        share = redone_share(w.ffn_dim, 1)
        if w.is_moe:
            experts = w.experts_per_token + w.shared_experts
            share = (1 - f) * share + f * redone_share(w.moe_ffn_dim, experts)
        redo = 1 + share / 3
    keep_attention = none or op or qkv_context or mla_up_proj or moe
    # recomputing attention repeats its forward pass: a third of a materialized attention's time,
    # a quarter of a fused one's (H200: forward / (forward + backward) = 0.22-0.27)
    attention_forward = 1 / 3 if w.attention_kernel == "materialized" else 0.25
    attention_redo = 1.0 if keep_attention else 1 + attention_forward
    # the MoE layers' host time: 60 kernels per layer, 6 per local expert, each t_k (§2.6),
    # exposed beyond the experts' GEMMs that the GPU runs meanwhile
    t_host = 0.0
    if w.is_moe:
        moe_layers = layers * (w.layers - w.dense_layers) / w.layers
        per_layer, per_expert = 60, 6
        if eager_bias:  # the eager expert-bias path: 2 more a layer, 6 a local expert
            per_layer, per_expert = 62, 12
        kernels = per_layer + per_expert * w.experts / plan.ep
        launches = moe_layers * kernels * s.moe_kernel_overhead_us * 1e-6
        layer_redo = 4 / 3 if moe else redo  # moe: every kernel of the MoE layer again
        gpu = moe_layers * routed_experts(chip, w, tokens, plan, s) * layer_redo
        t_host = max(launches * (4 / 3 if moe else other_redo) - gpu, 0.0)
    compute = t_matmul * redo + t_attention * attention_redo + t_memory * other_redo + t_logits
    compute += t_host

    # communication of one micro-batch on one stage
    up = chip.scale_up_gb_s * 1e9 / 2 * chip.link_share
    out = chip.scale_out_gb_s * 1e9 * chip.link_share

    def reach(members: float) -> float:
        """Scale-up bandwidth a transfer among ``members`` chips of a domain has: on a mesh the
        links to its members - 1 peers, of the domain - 1 links (at least one)."""
        if not chip.mesh:
            return up
        links = max(chip.domain - 1, 1)
        return up * min(max((members - 1) / links, 1 / links), 1.0)

    message = tokens * d * 2
    tp_comm = tp_all = 0.0
    if plan.tp > 1:
        tp_up = reach(min(plan.tp, chip.domain))
        bw = tp_up if plan.tp <= chip.domain else min(tp_up, out * chip.domain)  # every NIC
        tp_domains = max(plan.tp / chip.domain, 1)
        # parallel blocks: one reduce of the summed outputs, a gather per normalization
        per_block = ((1 if w.parallel_shared_norm else 2) + 1) / 4 if w.parallel_blocks else 1.0
        collectives = per_block * (12 if full else 8)
        if w.is_hybrid:  # a gather and a reduce-scatter around each block, each way
            collectives = w.blocks_per_layer * (6 if full else 4)
        latents = [x for x in (w.q_lora_rank, w.kv_lora_rank, w.qk_rope_head_dim) if x]
        if w.kv_lora_rank and not w.parallel_blocks:
            # MLA gathers its latents (and, without a query latent, the input for q) for attention:
            # forward, backward and the recomputed forward
            gathers = 3 if full else 2
            if w.q_lora_rank:
                collectives -= gathers
            latent_bytes = tokens * sum(latents) * 2
            collectives_s = gathers * ring(latent_bytes, plan.tp, bw, s, tp_domains, len(latents))
        else:
            collectives_s = 0.0
        tp_all = layers * (collectives * ring(message, plan.tp, bw, s, tp_domains) + collectives_s)
    if w.is_moe and plan.etp > 1:
        # each MoE layer gathers the k copies of the rank's tokens/tp over the etp ranks before
        # the experts and reduce-scatters after them, forward, backward (and recomputed forward)
        etp_up = reach(min(plan.etp, chip.domain))
        e_bw = etp_up if plan.etp <= chip.domain else min(etp_up, out * chip.domain)
        gathered = plan.etp * tokens / plan.tp * w.experts_per_token * (w.moe_latent_dim or d) * 2
        e_one = ring(gathered, plan.etp, e_bw, s, max(plan.etp / chip.domain, 1))
        tp_all += (6 if full or moe else 4) * layers * f * e_one
    if plan.tp > 1 or (w.is_moe and plan.etp > 1):
        tp_comm = max(tp_all * (1 - s.tp_overlap), tp_all - t_matmul * redo)
        tp_comm += s.overlap_slowdown * (tp_all - tp_comm)  # hidden: slows the compute
    pipeline_inner = plan.placement == "tp-pp-dp"  # stages next to each other, then dp
    pipeline_span = plan.tp * plan.pp if pipeline_inner else replica * dp
    pp_out = out
    if pipeline_span > chip.pod_chips:  # the last stage of each pod sends out of it
        neighbour = plan.tp if pipeline_inner else replica * dp / plan.pp
        r = chip.oversubscription
        pp_out = out / min(max(r * neighbour / chip.pod_chips, 1), r)
    pp_bw = reach(2) if pipeline_span <= chip.domain else pp_out
    pp_comm = 2 * plan.vp * message / plan.tp / pp_bw if plan.pp > 1 else 0.0
    if plan.vp > 1:  # interleaved: sent and received behind the compute of the chunk in hand
        pp_hidden = min(pp_comm, compute)
        pp_comm = pp_comm - pp_hidden + s.overlap_slowdown * pp_hidden
    moe_comm = 0.0
    if w.is_moe:
        k = w.experts_per_token
        element = 1.75 if w.precision in ("fp8", "fp4") else 2.0
        ep_domain = max(chip.domain / plan.etp, 1)  # ep ranks are etp apart in rank order
        in_domain = min(plan.ep, ep_domain)
        remote = k * (plan.ep - in_domain) / plan.ep
        if w.moe_dispatcher == "hierarchical":  # once per remote domain with any of its experts
            domains = plan.ep / in_domain
            per_domain = w.experts / domains
            missed = math.prod(
                max(w.experts - per_domain - i, 0) / (w.experts - i) for i in range(k)
            )
            remote = (domains - 1) * (1 - missed)
        if w.route_max_domains:
            remote = min(remote, w.route_max_domains)
        local = k * (plan.ep - 1) / plan.ep - remote
        token_bytes = tokens / plan.tp * (w.moe_latent_dim or d) * element
        ep_pod = chip.pod_chips / plan.etp
        beyond_pod = min(k * (plan.ep - min(plan.ep, ep_pod)) / plan.ep, remote)
        network = max(remote, beyond_pod * chip.oversubscription)
        one = max(token_bytes * max(local, 0) / reach(in_domain), token_bytes * network / out)
        moe_all = (6 if full or moe else 4) * layers * f * one / s.collective_efficiency
        overlap = 1.0 if plan.dualpipe else s.moe_comm_overlap
        moe_comm = max(moe_all * (1 - overlap), moe_all - compute)
        moe_comm += s.overlap_slowdown * (moe_all - moe_comm)
    # context parallelism: K/V forward (again where attention is recomputed) and backward, plus
    # the gradients: cp - 1 16-bit hops by ring, cp fp32 hops with PyTorch's all-gather variant
    heads = w.heads / plan.tp if w.repeat_kv else max(w.kv_heads / plan.tp, 1)
    kv = 2 * tokens * heads * w.head_dim * 2
    if w.kv_lora_rank:  # MLA: the up-projected keys and values of every head
        kv = tokens * w.heads / plan.tp * (2 * w.head_dim + w.qk_rope_head_dim) * 2
    allgather = w.context_parallel == "allgather"
    grads = 2 * plan.cp * kv if allgather else (plan.cp - 1) * kv
    forwards = 2 if keep_attention else 3
    cp_peers = min(plan.cp, max(chip.domain / plan.tp, 1)) if allgather else 2
    cp_bw = reach(cp_peers) if plan.tp * plan.cp <= chip.domain else out
    cp_all = layers * (forwards * (plan.cp - 1) * kv + grads) / (cp_bw * s.collective_efficiency)
    cp_layers = layers * w.attention_count / w.layers  # a hybrid's attention blocks exchange
    # and each exchange's latency: a send/receive per ring step (K/V with their gradients
    # backward), or an all-gather per pass and cp gradient steps
    hop = (
        s.scale_up_hop_latency_us
        if plan.tp * plan.cp <= chip.domain
        else s.scale_out_hop_latency_us
    )
    step_us = s.collective_latency_us + hop
    if plan.cp > 1:
        if allgather:
            latency_us = forwards * (s.collective_latency_us + (plan.cp - 1) * hop)
            latency_us += plan.cp * step_us
        else:
            latency_us = forwards * (plan.cp - 1) * step_us
        cp_all += layers * latency_us * 1e-6
    cp_all *= cp_layers / layers
    cp_hidden = 0.0 if allgather else min(cp_all, t_attention * attention_redo)
    cp_comm = cp_all - cp_hidden + s.overlap_slowdown * cp_hidden
    if w.mamba_layers and plan.cp > 1:
        # a hybrid's Mamba blocks split their heads over the cp ranks: z, x, B, C and dt sent
        # to the heads' ranks and y back, each by its own all-to-all, forward, backward and on
        # recompute, nothing hiding them; each group's B and C copied for the ranks of its heads
        groups = w.mamba_groups / plan.tp
        copies = max(plan.cp / groups, 1)
        width = (3 * w.mamba_inner + w.mamba_heads) / plan.tp
        width += 2 * copies * groups * w.mamba_state_dim
        passes = 3 if full else 2
        peers = min(plan.cp, max(chip.domain / plan.tp, 1))  # cp ranks in one domain
        buffer = passes * tokens * width * 2
        links = max((peers - 1) / reach(peers), (plan.cp - peers) / out) / plan.cp
        hop = s.scale_out_hop_latency_us if peers < plan.cp else s.scale_up_hop_latency_us
        mamba_a2a = buffer * links / s.collective_efficiency
        mamba_a2a += passes * 6 * (s.collective_latency_us + hop) * 1e-6
        cp_comm += layers * w.mamba_layers / w.layers * mamba_a2a
    # offload: inputs out during the forward quarter of the compute, back during the rest
    host_comm = 0.0
    if offload:
        copy = layers * layer_input / (chip.host_gb_s * 1e9)
        host_comm = max(copy - compute / 4, 0) + max(copy - 3 * compute / 4, 0)
    stage = compute + tp_comm + pp_comm + moe_comm + cp_comm + host_comm
    # the last stage: the output layer and the multi-token-prediction modules, and one of the
    # short stages of floor(L/p) layers where the layers do not divide evenly
    per_layer = (stage - t_logits - pp_comm) / layers
    modules = w.mtp_layers * (per_layer + t_logits)
    if plan.pp > 1:
        first = stage - t_logits
        last = stage - (layers - w.layers // plan.pp) * per_layer + modules
        # DualPipe: the first and the last stage share a rank, one micro-batch each in turn
        stage = max(first, (first + last) / 2) if plan.dualpipe else max(first, last)
    else:
        stage += modules
    slots = max(plan.pp / 2 - 1, 0) * 2 / 3 if plan.dualpipe else (plan.pp - 1) / plan.vp
    if plan.zero_bubble:  # the weight-gradient passes fill two thirds of 1F1B's bubble
        slots = (plan.pp - 1) / 3
    pipeline = (m + slots) * stage

    # data parallelism: the ZeRO collectives over the sharding group of sdp ranks, stride apart
    stride = plan.tp * plan.pp if pipeline_inner else plan.tp  # between neighbouring dp ranks

    def pod_members(group_stride: float, group: float, in_domain: float) -> float:
        return max(min(max(chip.pod_chips / group_stride, 1), group) / in_domain, 1)

    def tier(group_stride: float, group: float) -> tuple[float, float]:
        """Bandwidth and domains spanned of a group of ``group`` ranks ``group_stride`` apart."""
        in_domain = min(max(chip.domain / group_stride, 1), group)
        group_out = pod_out(chip, group_stride * group, pod_members(group_stride, group, in_domain))
        span = group_stride * group
        group_up = reach(in_domain)
        bw = group_up if span <= chip.domain else min(group_up, group_out * in_domain)
        return bw, group / in_domain

    dp_bw, domains = tier(stride, sdp)
    # the experts' data-parallel ranks are ep·etp apart (expert order etp-ep-edp)
    expert_stride = expert_ranks * (plan.pp if pipeline_inner else 1)
    # hybrid sharding: each rank's gradient shard all-reduced (reduce-scatter + all-gather)
    # across the wdp/sdp groups, whose ranks are stride·sdp apart
    replicas, expert_replicas = wdp / sdp, expert_dp / expert_sdp
    r_domain = min(max(chip.domain / (stride * sdp), 1), replicas)
    r_out = pod_out(chip, stride * wdp, pod_members(stride * sdp, replicas, r_domain))
    r_up = reach(r_domain)
    r_bw = r_up if stride * wdp <= chip.domain else min(r_up, r_out * r_domain)
    e_stride = expert_stride * expert_sdp
    e_domain = min(max(chip.domain / e_stride, 1), expert_replicas)
    e_span = e_stride * expert_replicas
    e_out = pod_out(chip, e_span, pod_members(e_stride, expert_replicas, e_domain))
    e_up = reach(e_domain)
    e_bw = e_up if e_span <= chip.domain else min(e_up, e_out * e_domain)
    messages = layers if plan.zero_stage == 3 else buckets(shared / mp, sdp)
    all_reduce = all_reduce_s(  # per step (ZeRO 0-1), micro-batch (2) or layer and micro-batch (3)
        shared / mp / sdp * s.grad_reduce_bytes_per_param,
        replicas,
        r_bw,
        s,
        replicas / r_domain,
        messages,
        chip.in_network,
    )
    if w.is_moe:
        all_reduce += all_reduce_s(
            local_experts / expert_sdp * s.grad_reduce_bytes_per_param,
            expert_replicas,
            e_bw,
            s,
            expert_replicas / e_domain,
            messages,
            chip.in_network,
        )
    wdp, expert_dp = sdp, expert_sdp
    expert_bw, expert_domains = tier(expert_stride, expert_dp)
    if plan.zero_stage == 3:
        # each layer's weights gathered twice and its gradients reduce-scattered per micro-batch,
        # each prefetched behind a neighbouring layer's compute (a third forward, two backward);
        # the experts' over their own sharding group
        dense = shared / mp

        def layer_collectives(bytes_per_param: float) -> float:
            time_s = ring(dense * bytes_per_param, wdp, dp_bw, s, domains, layers)
            if w.is_moe:
                time_s += ring(
                    local_experts * bytes_per_param, expert_dp, expert_bw, s, expert_domains, layers
                )
            return time_s

        gather = layer_collectives(s.weight_bytes_per_param) / layers
        reduce = layer_collectives(s.grad_reduce_bytes_per_param)
        reduce += all_reduce  # hybrid sharding: after each layer's reduce-scatter
        per_layer = pipeline / (m * layers)
        forward = max(gather - per_layer / 3, 0)
        backward = max(gather + reduce / layers - 2 * per_layer / 3, 0)
        exposed = m * (gather + layers * (forward + backward))
        hidden = layers * (2 * gather + reduce / layers - forward - backward)
        exposed += m * s.overlap_slowdown * hidden
    else:
        # stages 0-1: one reduce-scatter and one all-gather per step; 2: a reduce-scatter
        # per micro-batch
        times = (m if plan.zero_stage == 2 else 1) + 1
        grad = shared / mp * s.grad_reduce_bytes_per_param

        # ZeRO 0 all-reduces (ring or tree); 1 and 2 reduce-scatter and all-gather on a ring
        def collective(*args: float) -> float:
            if plan.zero_stage == 0:
                return all_reduce_s(*args, in_network=chip.in_network)  # type: ignore[misc]
            return ring(*args)  # type: ignore[misc]

        reductions = 1 if plan.zero_stage == 0 else times - 1
        k = buckets(shared / mp, wdp)
        once = collective(grad, wdp, dp_bw, s, domains, k)
        if w.is_moe:
            once += collective(
                local_experts * s.grad_reduce_bytes_per_param,
                expert_dp,
                expert_bw,
                s,
                expert_domains,
                buckets(local_experts, expert_dp),
            )
        reduce = reductions * once + (times - 1) * all_reduce  # hybrid: after each reduce-scatter
        gather = 0.0 if plan.zero_stage == 0 else once

        def hide(comm: float, window: float) -> float:
            # bucket by bucket behind the window's compute, never the bucket issued after it
            shown = max(comm - min(s.dp_overlap * comm, window), comm / k)
            return shown + s.overlap_slowdown * (comm - shown)

        # the reduction behind its micro-batch's backward (each one's with ZeRO-2), the
        # all-gather behind the first forward
        exposed = hide(reduce, reductions * stage * 2 / 3) + hide(gather, stage / 3)
    optimizer_time = 2 * updated * states / hbm + s.step_overhead_ms / 1e3  # + the fixed time
    return {
        "step_time_s": pipeline + exposed + optimizer_time,
        "memory_gb": memory / 1e9,
        "fits": memory <= chip.hbm_gb * 2**30 * (1 - _reserve(chip, s)),  # GiB
        "dp": dp,
        "recompute_factor": redo,
        "attention_recompute": attention_redo,
    }


def best_plan(
    chip: Chip, w: Workload, plans: list[Plan], s: Settings
) -> tuple[int, dict[str, float]] | None:
    """The fastest plan that fits, as (index, results); None when none fits. A searched
    tensor parallelism stays inside the scale-up domain (§2.4)."""
    best: tuple[int, dict[str, float]] | None = None
    for i, plan in enumerate(plans):
        if plan.tp > max(chip.domain, 1):
            continue
        result = step(chip, w, plan, s)
        if result is None or not result["fits"]:
            continue
        if best is None or result["step_time_s"] < best[1]["step_time_s"]:
            best = (i, result)
    return best


def training_days_and_mfu(
    chip: Chip, w: Workload, plan: Plan, result: dict[str, float], s: Settings
) -> tuple[float, float]:
    matmul, attention = flops_per_token(w)
    tokens_step = w.global_batch_sequences * w.seq_len
    steps = w.tokens / tokens_step
    days = steps * result["step_time_s"] / s.goodput / 86400
    used = result["dp"] * plan.tp * plan.pp * plan.cp
    mfu = tokens_step * (matmul + attention) / (result["step_time_s"] * used * chip.peak_flop_s)
    return days, mfu


def _reserve(chip: Chip, s: Settings) -> float:
    """The share of the HBM kept from the plan: the family runtime's, else the settings'."""
    return s.memory_reserve_fraction if math.isnan(chip.memory_reserve) else chip.memory_reserve
