"""§2.3 and §2.6 Compute time of one micro-batch on one pipeline stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dse.catalog.workloads import (
    Projection,
    Workload,
    attention_keys,
    mixer_flops_per_token,
    mla_projections,
    ssd_flops_per_token,
    windowed_attention_share,
)
from dse.designs import FloatArray
from dse.model.training.grid import (
    FFN,
    MLA_UP_PROJ,
    MOE,
    NONE,
    OP,
    QKV_CONTEXT,
    QKV_LINEAR1,
    Grid,
    recomputes_layers,
)
from dse.model.training.memory import (
    ffn_checkpoint,
    mla_up_projection_share,
    moe_layer_shares,
    op_checkpoint,
    qkv_context_checkpoint,
    qkv_linear1_checkpoint,
)
from dse.model.training.parallelism import Layout
from dse.settings import Settings

OPERAND_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}
"""Bytes per GEMM operand element in each training precision."""
EXPONENTIALS_PER_SCORE = 2.0
"""[P] Exponentials per attention score in a FlashAttention forward + backward pass: the
forward softmax, and P = exp(S − L) recomputed in the backward pass (Dao 2023, FlashAttention-2,
arXiv:2307.08691, Algorithms 1 and 2). They run on the special-function units, which on
Hopper deliver 3.9 T exponentials/s against 989 TFLOP/s of matmul (Shah et al. 2024,
FlashAttention-3, arXiv:2407.08608, Sec. 3), so at head_dim 64 they take about as long as the
score matmuls."""
MATERIALIZED_GEMM_BYTES_PER_SCORE = 12.0
"""[P] HBM bytes per score that the four batched GEMMs of a materialized (non-flash) attention
move through the 16-bit score matrices, forward and backward: QKᵀ writes S, P·V reads P; the
backward writes dP and reads P (dV), and dQ and dK each read dS (Megatron-LM's ``CoreAttention``:
``baddbmm``, ``FusedScaleMaskSoftmax``, ``bmm``). Inside each GEMM kernel, so they bound its
time as a roofline with its FLOPs."""
MATERIALIZED_SOFTMAX_BYTES_PER_SCORE = 10.0
"""[P] HBM bytes per score of the fused scale-mask-softmax kernels between those GEMMs, 16-bit:
the forward reads S and writes P (4), the backward reads P and dP and writes dS (6)."""
MATERIALIZED_DROPOUT_BYTES_PER_SCORE = 10.0
"""[P] HBM bytes per score of attention dropout where the run uses it: the forward reads P and
writes its 1-byte mask and the 16-bit output (5), the backward reads the gradient and the mask
and writes the gradient (5)."""
ATTENTION_FORWARD_SHARE = 0.25
"""[M] Share of a fused (flash) causal attention's forward + backward time that its forward pass
takes, which recomputing attention repeats: 0.22-0.27, median 0.247, over the 12 causal
measurements on an H200 (head_dim 64 and 128, 1,024-32,768 tokens;
data/measurements/h200/attention.csv, forward_ms / forward_backward_ms). Below the linear
layers' 1/3: the backward pass recomputes the scores and runs five matmuls to the forward's two
(Dao 2023, FlashAttention-2, arXiv:2307.08691, Algorithm 2)."""
MOE_LAYER_KERNELS = 60.0
"""[E] Kernels of one MoE layer's forward and backward besides the experts' GEMMs: router GEMM,
softmax/sigmoid, top-k and auxiliary loss; token permutation (sort, gather) and unpermutation;
the dispatch and combine all-to-alls with their token-count exchange (Megatron-Core
``MoEAlltoAllTokenDispatcher``), each with its backward."""
MOE_EXPERT_KERNELS = 6.0
"""[E] GEMM kernels per local expert per layer: fc1 and fc2, each forward, input gradient and
weight gradient (Transformer Engine's ``GroupedLinear`` launches one GEMM per expert)."""
EAGER_EXPERT_BIAS_KERNELS = 6.0
"""[E] Kernels per local expert per MoE layer of Megatron-Core's eager expert-bias path
(``TEGroupedMLP._apply_bias``; workloads with ``expert_bias``, runs with ``expert_bias_add =
"eager"``): the multiply ``b·p`` and the add forward; ``g·p``, ``g·b`` and their two sums
backward."""
EAGER_EXPERT_BIAS_LAYER_KERNELS = 2.0
"""[E] Kernels per MoE layer of that path besides: the concatenation of the experts' outputs,
and its counterpart for the gradient in the backward pass."""


MAMBA_FORWARD_KERNELS = 2.0
"""[E] Memory-bound kernels of one Mamba-2 block's forward pass besides its two projections
and its SSD scan: the causal convolution with its SiLU, and the gated RMSNorm; each with
:data:`BACKWARD_KERNELS_PER_FORWARD` more in the backward pass, as the other memory-bound
kernels. The scan's own kernels are timed whole (:data:`SSD_CYCLES_PER_TOKEN_CHANNEL`)."""
SSD_CYCLES_PER_TOKEN_CHANNEL = 11.35
"""[M] Compute-unit cycles (SM cycles on a GPU) per token and inner channel (``H_m·P``) of a
Mamba-2 SSD scan in mamba_ssm's Triton kernels (``mamba_chunk_scan_combined``, which
Megatron-Core's ``MambaMixer`` calls), forward and backward. NVIDIA's published timing on a
B200 (data/measurements/published/ssd_mamba2.csv; cuDNN frontend PR #1133): 0.813 ms for a
forward and backward of 2 × 2,048 tokens, 64 heads of 64, state 64, chunk 32, at the 148 SMs'
sustained clock (§1.7, 1.58 GHz) 11.35 cycles a token and channel
(``python benchmarks/fit_attention.py``, part 4). That is 1.0 % of the B200's 16-bit rate on
the scan's FLOPs, and 3.3 TB/s (about 40 % of its HBM) if its fp32 chunk states were read or
written 20 times: the kernels are bound by neither, so the time is taken per SM cycle.
[E] the same cycles at other states and chunks (only one shape is published) and on other
GPUs; a design whose compute units are wider than the B200's SM counts as
:data:`SSD_REFERENCE_UNIT_FLOPS` units' worth of its 16-bit rate."""
SSD_REFERENCE_UNIT_FLOPS = 8192.0
"""[P] 16-bit tensor FLOPs per cycle of the compute unit :data:`SSD_CYCLES_PER_TOKEN_CHANNEL`
was measured on (a Blackwell SM, chips/b200.toml). A design whose units do more a cycle (a TPU
TensorCore, a Gaudi MME, a Trainium NeuronCore: 32,768-131,072) runs the scan at its 16-bit
rate in such units, ``R_16 / 8192`` cycles a second, where its few wide units' own cycles would
make a scan tens of times slower than on a GPU of the same rate [E: no Mamba-2 scan was
measured on such a chip]. A GPU's SMs (4,096-8,192 since Hopper) keep their own cycles."""
SSD_EXPONENTIALS_PER_POSITION = 2.0
"""[E] Exponentials per token, head and chunk position of a Mamba-2 SSD scan, forward and
backward: the chunk's decay matrix ``exp(segsum(A·dt))`` (``Q`` per token and head), computed
in the forward chunk scan and again in its backward, as :data:`EXPONENTIALS_PER_SCORE` counts
FlashAttention's."""

BACKWARD_KERNELS_PER_FORWARD = 2.0
"""[E] Backward kernels per memory-bound forward kernel of a layer: each operator's input
gradient and, for a normalization, its weight gradient's reduction; the residual additions'
gradients join the branches' (Transformer Engine's and Apex's fused norms run the two as one
kernel or two, PyTorch's autograd one per operator)."""


def memory_bound_kernels(w: Workload) -> float:
    """§2.6 Memory-bound kernels of one layer's forward and backward pass, each of which pays
    ``elementwise_kernel_latency_us`` beyond its bytes: forward, the normalizations (two, one
    where a parallel block's branches share it, plus MLA's query and key/value latent norms),
    the residual additions (two, one in a parallel block), the MLP's activation and the
    rotary embedding; each with :data:`BACKWARD_KERNELS_PER_FORWARD` more in the backward pass.
    A Llama layer: 6 forward, 18 in all. A hybrid's layer averages its blocks: a norm and a
    residual addition per block, the MLP's activation, the rotary embedding of its attention
    blocks and :data:`MAMBA_FORWARD_KERNELS` per Mamba block."""
    if w.is_hybrid:  # a norm and an addition per block, rotary in the attention blocks
        blocks = w.blocks_per_layer
        forward = 2.0 * blocks + 1.0 + w.attention_share + MAMBA_FORWARD_KERNELS * w.mamba_share
        return forward * (1.0 + BACKWARD_KERNELS_PER_FORWARD)
    norms = 1.0 if w.parallel_blocks and w.parallel_shared_norm else 2.0
    norms += float(w.q_lora_rank > 0) + float(w.kv_lora_rank > 0)
    additions = 1.0 if w.parallel_blocks else 2.0
    forward = norms + additions + 2.0  # the activation and the rotary embedding
    return forward * (1.0 + BACKWARD_KERNELS_PER_FORWARD)


def memory_bound_latency_s(w: Workload, s: Settings) -> float:
    """§2.6 The fixed time (s) of one layer's memory-bound kernels in a forward and backward
    pass: :func:`memory_bound_kernels` × ``elementwise_kernel_latency_us``."""
    return memory_bound_kernels(w) * s.elementwise_kernel_latency_us * 1e-6


def flops_per_score(w: Workload) -> float:
    """§2.6 Model FLOPs per attention score, forward and backward: 12·h_d (QKᵀ and P·V, each
    2·h_d forward and twice that backward); 6·(h_qk + h_v) where MLA's query/key heads are
    wider than its values."""
    return 6.0 * float(w.key_value_width)


def score_matmul_flops(w: Workload, matrix_unit: FloatArray) -> FloatArray:
    """§2.3 FLOPs per score of the score matmuls, forward and backward, each divided by the
    share of a systolic array its head width fills (:func:`array_utilization`): QKᵀ contracts
    over the query/key width ``h_qk`` and P·V fills ``h_v`` output columns, and each of
    their backward matmuls has the same width along one side, ``6·h_qk/u(h_qk) + 6·h_v/u(h_v)``.
    :func:`flops_per_score` where the chip has no such array."""
    qk, v = float(w.qk_head_dim), float(w.head_dim)
    return 6.0 * qk / array_utilization(qk, matrix_unit) + 6.0 * v / array_utilization(
        v, matrix_unit
    )


def computed_score_share(w: Workload) -> float:
    """§2.6 The share of the full s×s score matrix a causal attention computes: half with a
    fused (flash) kernel, which skips the masked blocks; all of it when ``materialized``."""
    return 1.0 if w.attention_kernel == "materialized" else 0.5


def array_utilization(width: FloatArray | float, unit: FloatArray) -> FloatArray:
    """§2.3 Share of a systolic array's rows (or columns) that a matmul dimension of ``width``
    elements keeps busy, ``w / (A·⌈w/A⌉)``: each pass through an array of side ``A`` takes a
    tile of ``A`` along the contraction and along the stationary operand's output, however
    much of it the matmul fills. 1 where ``unit`` is 0 (no such array: GPU tensor cores)."""
    side = np.maximum(unit, 1.0)
    return np.where(unit > 0, width / (side * np.ceil(width / side)), 1.0)


def kv_heads_per_rank(w: Workload, tp: FloatArray | float) -> FloatArray | float:
    """§2.3 Key/value heads each tensor-parallel rank computes: ``H_kv/t``, and at least one,
    since a rank's query heads need theirs, so beyond ``t = H_kv`` every rank projects a copy
    (NeuronX Distributed's ``kv_replicator``, 4 for Llama 3 8B at 32-way TP; Megatron-Core
    refuses such a plan instead)."""
    return np.maximum(w.kv_heads / tp, 1.0)


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
    matrix_unit: FloatArray | None = None,
    exposed_bytes: bool = False,
) -> FloatArray:
    """§2.3 Time (s) of ``groups`` GEMMs C[m, n] = A[m, k]·B[k, n] run as one kernel: a roofline,
    the larger of the FLOPs at the large-GEMM ``efficiency`` η and the bytes at HBM bandwidth,
    plus a fixed kernel latency t₀ (launch, pipeline fill and drain).

    ``operand_bytes`` per element of A and B (C is written in 16-bit). A grouped GEMM (MoE
    experts) reads every group's weights once, so few tokens per expert make it memory-bound.
    Fitted to 686 cuBLAS GEMMs on an H200 (data/measurements/h200/gemm.csv): median |error| 10 %.
    On a chip whose compute units are systolic arrays of side ``matrix_unit`` (None or 0: none)
    the FLOPs run at the share of the array that ``k`` and ``n`` fill (:func:`array_utilization`;
    the weight-stationary tile is k × n, the tokens ``m`` stream through it).
    ``exposed_bytes``: a grouped GEMM whose byte time adds to its FLOP time instead of hiding
    under it where the chip has systolic arrays (:func:`expert_gemms_time_s`).
    """
    flops = 2.0 * groups * m * n * k
    bytes_ = groups * (operand_bytes * (m * k + k * n) + 2.0 * m * n)
    if matrix_unit is None or not np.any(matrix_unit > 0):
        compute = flops / (efficiency * rate)
        return np.maximum(compute, bytes_ / hbm_b_s) + settings.gemm_kernel_latency_us * 1e-6
    efficiency = efficiency * array_utilization(k, matrix_unit) * array_utilization(n, matrix_unit)
    compute, memory = flops / (efficiency * rate), bytes_ / hbm_b_s
    hidden = np.maximum(compute, memory)
    roofline = np.where(matrix_unit > 0, compute + memory, hidden) if exposed_bytes else hidden
    return roofline + settings.gemm_kernel_latency_us * 1e-6


def layer_linear_time_s(
    w: Workload,
    tokens: FloatArray | float,
    tp: FloatArray,
    ep: FloatArray,
    rate: FloatArray,
    hbm_b_s: FloatArray,
    efficiency: FloatArray | float,
    settings: Settings,
    etp: FloatArray | float = 1.0,
    experts: FloatArray | None = None,
    matrix_unit: FloatArray | None = None,
) -> FloatArray:
    """§2.3 Forward and backward time (s) of one layer's linear layers on one tensor-parallel
    rank, averaged over dense and MoE layers (and a hybrid's attention and Mamba blocks, whose
    in-projection is column-parallel and out-projection row-parallel): each linear runs three GEMMs of equal size
    (forward Y = X·Wᵀ, input gradient dY·W, weight gradient dYᵀ·X), of which
    ``w.digital_linear_gemms`` on the digital units (§2.9: analog tiles run the first two).
    With expert tensor parallelism ``etp`` each local expert's GEMMs run on the tokens its
    ``etp`` ranks gathered, at ``1/etp`` of the expert width; ``experts``, where given, is that
    pass already computed (:func:`expert_gemms_time_s` with these arguments); ``matrix_unit``
    the chip's systolic array side (:func:`gemm_time_s`)."""
    gemms = w.digital_linear_gemms
    d, hd = float(w.d_model), float(w.head_dim)
    ob = OPERAND_BYTES.get(w.precision, 2.0)

    def linear(k_in: object, n_out: object, groups: object = 1.0, m: object = tokens) -> FloatArray:
        return gemm_time_s(
            m,  # type: ignore[arg-type]
            n_out,  # type: ignore[arg-type]
            k_in,  # type: ignore[arg-type]
            rate,
            hbm_b_s,
            ob,
            efficiency,
            settings,
            groups,  # type: ignore[arg-type]
            matrix_unit,
        )

    up_width = (w.ffn_matrices - 1.0) / tp
    if w.is_mla:
        attention = sum(
            (_projection_time_s(p, tokens, tp, linear) for p in mla_projections(w)),
            start=np.zeros_like(tp),
        )
    else:
        qkv_width = (w.heads / tp + 2.0 * kv_heads_per_rank(w, tp)) * hd
        attention = linear(d, qkv_width) + linear(w.heads * hd / tp, d)
    if w.is_hybrid:  # §2.11 a Mamba block's in-projection and out-projection
        mamba = linear(d, w.mamba_in_width / tp) + linear(w.mamba_inner / tp, d)
        attention = w.per_layer_mixers(attention, mamba)
    dense_mlp = linear(d, up_width * w.ffn_dim) + linear(w.ffn_dim / tp, d)
    if not w.is_moe:
        return gemms * (attention + dense_mlp)
    if experts is None:
        experts = expert_gemms_time_s(
            w, tokens, tp, ep, rate, hbm_b_s, efficiency, settings, etp, matrix_unit
        )
    moe_mlp = linear(d, w.experts, m=tokens / tp) + experts  # the router, the experts
    if w.moe_latent_dim:  # §2.12 the routed tokens down to the latent and back, on each rank's
        latent = float(w.moe_latent_dim)
        moe_mlp = moe_mlp + linear(d, latent, m=tokens / tp) + linear(latent, d, m=tokens / tp)
    if w.shared_experts:
        shared = w.shared_experts * w.moe_ffn_dim
        moe_mlp = moe_mlp + linear(d, up_width * shared) + linear(shared / tp, d)
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    return gemms * (attention + (1.0 - moe_fraction) * dense_mlp + moe_fraction * moe_mlp)


def expert_gemms_time_s(
    w: Workload,
    tokens: FloatArray | float,
    tp: FloatArray,
    ep: FloatArray,
    rate: FloatArray,
    hbm_b_s: FloatArray,
    efficiency: FloatArray | float,
    settings: Settings,
    etp: FloatArray | float = 1.0,
    matrix_unit: FloatArray | None = None,
) -> FloatArray:
    """§2.3 Time (s) of one of the three passes (forward, input gradient, weight gradient) of
    one MoE layer's routed experts on one rank: the up and down projections of its ``E/ep``
    local experts as grouped GEMMs. Each rank routes its ``tokens/tp`` (sequence-parallel)
    tokens; the ``ep`` ranks' local experts see ``ep·(tokens/tp)·k/E`` tokens each, gathered
    over the ``etp`` ranks that split each expert (``etp`` times as many tokens at ``1/etp`` of
    the width; the same FLOPs per rank).

    On a chip with systolic arrays (``matrix_unit`` > 0) the grouped GEMM's byte time adds to
    its FLOP time: the published timings of the TPU's
    grouped-GEMM kernel follow the sum, where cuBLAS's batched GEMM on an H200 follows the
    larger of the two (docs/model.md §2.3)."""
    ob = OPERAND_BYTES.get(w.precision, 2.0)
    expert_tokens = tokens / tp * w.experts_per_token * ep * etp / w.experts
    local_experts = w.experts / ep
    width = w.moe_ffn_dim / etp
    up = (w.ffn_matrices - 1.0) * width
    d = float(w.routed_dim)  # §2.12 a latent MoE's experts read and write its latent
    rates = (rate, hbm_b_s, ob, efficiency, settings, local_experts, matrix_unit)
    return gemm_time_s(expert_tokens, up, d, *rates, exposed_bytes=True) + gemm_time_s(
        expert_tokens, d, width, *rates, exposed_bytes=True
    )


def _projection_time_s(
    p: Projection, tokens: FloatArray | float, tp: FloatArray, linear: Callable[..., FloatArray]
) -> FloatArray:
    """§2.3 One MLA projection's GEMMs on one tensor-parallel rank (:func:`mla_projections`)."""
    if p.split == "outputs":
        return linear(p.inputs, p.outputs / tp)
    if p.split == "inputs":
        return linear(p.inputs / tp, p.outputs)
    return linear(p.inputs, p.outputs, m=tokens / tp)


@dataclass(frozen=True)
class Recompute:
    """§2.6 Factors (≥ 1) on the time of the linear layers, of attention and of the other
    operators (memory-bound kernels, MoE kernels) under each plan's recompute policy."""

    matmul: FloatArray
    attention: FloatArray
    other: FloatArray


def recompute_factors(rc: np.ndarray, w: Workload, layers: FloatArray | float = 1.0) -> Recompute:
    """§2.6 The recompute factors of policy codes ``rc`` applied to a share ``layers`` of each
    stage's layers (any shapes that broadcast; the other layers recompute nothing): the forward
    pass is a third of forward + backward for the linear layers, the memory-bound operators and a
    materialized attention, so redoing all of it costs 4/3, and a fused attention's
    :data:`ATTENTION_FORWARD_SHARE` (measured). ``full`` and ``offload`` redo every layer,
    ``selective`` only attention, ``op`` a share of the linear layers (:func:`op_checkpoint`) and
    all the memory-bound operators but not attention, ``ffn`` the MLP's up projections
    (:func:`ffn_checkpoint`), attention and the memory-bound operators, ``qkv_linear1`` the o
    projection (:func:`qkv_linear1_checkpoint`), attention and the memory-bound operators,
    ``qkv_context`` the o and MLP up projections (:func:`qkv_context_checkpoint`) and the
    memory-bound operators but not attention, ``mla_up_proj`` MLA's up projections alone
    (:func:`mla_up_projection_share`), ``moe`` the MoE layers' experts and their share of the
    memory-bound operators but not attention (:func:`moe_layer_shares`)."""
    op, ffn = op_checkpoint(w).recomputed_share, ffn_checkpoint(w).recomputed_share
    o_proj = qkv_linear1_checkpoint(w).recomputed_share
    o_and_ups = qkv_context_checkpoint(w).recomputed_share
    whole = recomputes_layers(rc)
    per_op = (rc == OP) | (rc == FFN) | (rc == QKV_LINEAR1) | (rc == QKV_CONTEXT)
    up_proj = mla_up_projection_share(w)
    moe_flops, moe_bytes = moe_layer_shares(w)
    policies = [whole, rc == OP, rc == FFN, rc == QKV_LINEAR1, rc == QKV_CONTEXT]
    shares = [1.0, op, ffn, o_proj, o_and_ups]
    matmul = (
        np.select([*policies, rc == MLA_UP_PROJ, rc == MOE], [*shares, up_proj, moe_flops], 0.0)
        / 3.0
    )
    forward = 1.0 / 3.0 if w.attention_kernel == "materialized" else ATTENTION_FORWARD_SHARE
    kept = (rc == NONE) | (rc == OP) | (rc == QKV_CONTEXT) | (rc == MLA_UP_PROJ) | (rc == MOE)
    attention = np.where(kept, 0.0, forward)
    other = np.select([whole | per_op, rc == MOE], [1.0, moe_bytes], 0.0) / 3.0
    return Recompute(1.0 + layers * matmul, 1.0 + layers * attention, 1.0 + layers * other)


@dataclass(frozen=True)
class Compute:
    """Seconds per micro-batch on one stage, ``(n, k)``: the linear layers (``matmul_s``) and
    attention (``attention_s``) once, and everything with recomputation (``total_s``); the
    recompute factors of the matmuls and of attention; the HBM bytes of stored attention scores
    with recomputation (``score_b``, 0 with a flash kernel; §3.1's energy); the output layer's
    GEMMs (``logits_s``, part of ``total_s``), which only the last stage runs; the memory-bound
    operators with their recomputation (``memory_s``), the MoE layers' exposed host time
    (``moe_host_s``) and a one-hot embedding's GEMMs (``embedding_s``, which only the first
    stage runs), the other terms of ``total_s``."""

    matmul_s: FloatArray
    attention_s: FloatArray
    total_s: FloatArray
    matmul_redo: FloatArray
    attention_redo: FloatArray
    score_b: FloatArray | float
    logits_s: FloatArray
    memory_s: FloatArray
    moe_host_s: FloatArray | float
    embedding_s: FloatArray | float = 0.0


def compute(g: Grid, lay: Layout, elementwise_b: FloatArray, w: Workload, s: Settings) -> Compute:
    """§2.6 ``T_comp = ρ·T_mm + ρ_att·T_att + ρ·T_mem + T_logit``; ``elementwise_b``: HBM bytes
    of one layer's memory-bound operators (:func:`dse.model.training.memory.elementwise_bytes`),
    which take ``T_mem = L·(B_ew / BW + n_k·t_k)`` with their kernels' fixed time
    (:func:`memory_bound_latency_s`)."""
    attention_per_token, ssd_per_token = mixer_flops_per_token(w)
    stage_attention = lay.tokens_mb * attention_per_token / w.layers * lay.layers_per_stage / g.tp
    redo = recompute_factors(g.rc, w, g.rc_share)
    matmul_redo, attention_redo = redo.matmul, redo.attention
    # §2.3 the measured efficiencies, times the design's family scale, never above peak
    gemm_eff = np.minimum(s.gemm_efficiency_max * g.family_scale, 1.0)
    attention_eff = np.minimum(s.attention_efficiency * g.attention_scale, 1.0)
    rates = (g.gemm_rate, g.hbm_b_s, gemm_eff, s)
    experts = (
        expert_gemms_time_s(w, lay.tokens_mb, g.tp, g.ep, *rates, g.etp, g.matrix_unit)
        if w.is_moe
        else None
    )
    matmul_s = lay.layers_per_stage * layer_linear_time_s(
        w, lay.tokens_mb, g.tp, g.ep, *rates, g.etp, experts, g.matrix_unit
    )
    attention_s = attention_time_s(stage_attention, w, attention_eff, g, s)
    if ssd_per_token:  # a hybrid's Mamba-2 scans, sequence mixers beside attention
        stage_ssd = lay.tokens_mb * ssd_per_token / w.layers * lay.layers_per_stage / g.tp
        attention_s = attention_s + ssd_time_s(stage_ssd, w, attention_eff, g)
    logits_s = w.digital_linear_gemms * gemm_time_s(
        lay.tokens_mb,
        w.vocab_size / g.tp,
        float(w.d_model),
        g.gemm_rate,
        g.hbm_b_s,
        OPERAND_BYTES["bf16"],
        gemm_eff,
        s,
        matrix_unit=g.matrix_unit,
    )
    memory_s = (
        lay.layers_per_stage
        * (elementwise_b / g.hbm_b_s + memory_bound_latency_s(w, s))
        * redo.other
    )
    moe_host_s = moe_host_exposed_s(g, lay, w, experts, redo, s)
    embedding_s = embedding_time_s(w, lay.tokens_mb, g.tp, g.gemm_rate, gemm_eff, g.matrix_unit, s)
    total = (
        matmul_s * matmul_redo
        + attention_s * attention_redo
        + memory_s
        + logits_s
        + moe_host_s
        + embedding_s
    )
    score_b = materialized_score_bytes(stage_attention, w) * attention_redo
    return Compute(
        matmul_s,
        attention_s,
        total,
        matmul_redo,
        attention_redo,
        score_b,
        logits_s,
        memory_s,
        moe_host_s,
        embedding_s,
    )


def embedding_time_s(
    w: Workload,
    tokens_mb: FloatArray,
    tp: FloatArray,
    rate: FloatArray,
    efficiency: FloatArray,
    matrix_unit: FloatArray,
    s: Settings,
) -> FloatArray | float:
    """§2.6 Time (s) of a one-hot embedding's two GEMMs for one micro-batch on the first stage
    (``w.embedding == "one_hot"``; 0 for a lookup): the ``tokens × V/t`` one-hot matrix times
    the table's ``V/t × d`` shard forward, and the table's gradient, ``2·tokens·(V/t)·d`` FLOPs
    each at the large-GEMM efficiency on the share of the systolic array that ``V/t`` and ``d``
    fill (:func:`array_utilization`). The one-hot operand is made from the token ids inside the
    fusion that feeds the matrix units, so only FLOPs count; nothing is recomputed (the
    embedding lies outside the layers)."""
    if w.embedding != "one_hot":
        return 0.0
    vocab, width = w.vocab_size / tp, float(w.d_model)
    busy = array_utilization(vocab, matrix_unit) * array_utilization(width, matrix_unit)
    gemm_s = 2.0 * tokens_mb * vocab * width / (efficiency * busy * rate)
    return 2.0 * (gemm_s + s.gemm_kernel_latency_us * 1e-6)


def attention_time_s(
    attention_flops: FloatArray, w: Workload, efficiency: FloatArray, g: Grid, s: Settings
) -> FloatArray:
    """§2.6 Time (s) of causal attention worth ``attention_flops`` model FLOPs (the convention
    counts the full score matrix, 12·h_d FLOPs per score forward and backward) with the
    sequence split over the plan's ``cp`` context-parallel ranks. A fused (flash) kernel
    computes the causal half of the scores:

        T_att = N · (o_mm · 12·h_d / (η_att·R_att) + o_exp · c_exp / R_exp),  N = F_att / (24·h_d)
        o_mm = o_exp = 1 + s0·c/s                  (a fused kernel, no blocks given)

    The score matmuls run at η_att of the score rate ``R_att``: the 16-bit rate, or for a
    workload whose ``attention_precision`` is fp8 the family's measured FP8 kernel at the fp8
    rate (:func:`~dse.model.training.grid.fp8_attention_rate`); the softmax's ``c_exp`` exponentials
    per score on the special-function units (:data:`EXPONENTIALS_PER_SCORE`); a sequence of
    s/c tokens per rank runs at s/(s + s0·c) of the long-sequence rate
    (``attention_overhead_tokens`` s0: the masked diagonal blocks, each query block's fixed
    cost). Fitted to FlashAttention on an H200 (benchmarks/fit_attention.py). A workload that
    gives its kernel's blocks, or splits its backward pass, takes ``o_mm`` and ``o_exp`` from
    :func:`attention_overheads`. A ``flash2``
    workload's score matmuls run at ``flash2_attention_ratio`` of η_att (FlashAttention-2 on a
    chip with a faster kernel). A ``materialized`` workload
    (:func:`materialized_attention_time_s`) computes every score."""
    per_score_flops = flops_per_score(w)
    scores = computed_score_share(w) * attention_flops / per_score_flops
    if w.attention_kernel == "materialized":
        return materialized_attention_time_s(scores, w, efficiency, g)
    if w.attention_kernel == "flash2":
        efficiency = efficiency * g.flash2_ratio
    tensor, special = attention_overheads(
        w, g.cp, s.attention_overhead_tokens, g.attention_fixed_tokens
    )
    matmul_s = score_matmul_flops(w, g.matrix_unit) / (efficiency * g.score_rate)
    return scores * (tensor * matmul_s + special * EXPONENTIALS_PER_SCORE / g.exp_rate)


def ssd_time_s(ssd_flops: FloatArray, w: Workload, efficiency: FloatArray, g: Grid) -> FloatArray:
    """§2.11 Time (s) of Mamba-2 SSD scans worth ``ssd_flops`` model FLOPs
    (:func:`~dse.catalog.workloads.ssd_flops_per_token`) over ``N_pos = F_ssd / f_ssd`` token
    positions: the measured Triton kernels' :data:`SSD_CYCLES_PER_TOKEN_CHANNEL` per position
    and inner channel at the compute units' cycle rate ``R_cyc``, never faster than the
    chunked matmuls at the fused attention kernel's efficiency η_att of the 16-bit rate with
    their decay exponentials (:data:`SSD_EXPONENTIALS_PER_POSITION` per token, head and chunk
    position) on the special-function units::

        T_ssd = max(N_pos · H_m·P · κ_ssd / R_cyc,  F_ssd / (η_att·R_att) + N_pos · 2·H_m·Q / R_exp)

    with ``R_cyc = max(units × clock, R_att / 8192)`` (:data:`SSD_REFERENCE_UNIT_FLOPS`)."""
    positions = ssd_flops / ssd_flops_per_token(w)
    exponentials = positions * SSD_EXPONENTIALS_PER_POSITION * w.mamba_heads * w.mamba_chunk
    roofline = ssd_flops / (efficiency * g.attention_rate) + exponentials / g.exp_rate
    cycle_rate = np.maximum(g.unit_cycle_rate, g.attention_rate / SSD_REFERENCE_UNIT_FLOPS)
    kernels = positions * w.mamba_inner * SSD_CYCLES_PER_TOKEN_CHANNEL / cycle_rate
    return np.maximum(kernels, roofline)


WINDOW_MASKED_BOUNDARIES = 2.0
"""[P] Partly masked key blocks per query block of a sliding-window attention kernel, over the
one (the diagonal) of a causal kernel: the window's first block as well as the diagonal, so a
window pays ``2·s0`` tokens of overhead where causal attention pays ``s0`` (FlashAttention's
local masking, both ends of each query block's key range). Checked against NVIDIA's published
cuDNN training benchmarks (data/measurements/published/attention_cudnn.csv; benchmarks/
fit_attention.py, at each family's attention efficiency): with one boundary the model ran
sliding windows 15-21 % (H200, window 1,024), 31-43 % (GB200, window 128) and 51-59 % (GB300)
faster than cuDNN; with two, H200 0 to +4 %, GB200 -3 to +17 %, GB300 -17 to -30 %."""


ATTENTION_PASS_MATMULS = {"fused": (2.0, 5.0, 0.0), "split": (2.0, 4.0, 3.0)}
"""[P] Score matmuls (each ``2·h_d`` FLOPs a score) of a fused attention kernel's forward pass,
its backward (dK/dV, or the whole backward) pass and a separate dQ pass, by
:data:`~dse.catalog.workloads.ATTENTION_BACKWARDS`: QKᵀ and PV forward; the fused backward
recomputes QKᵀ and makes dV, dP, dQ and dK (FlashAttention-2, Dao 2023, Alg. 2); a split
backward's dK/dV kernel recomputes QKᵀ and makes dV, dP and dK, its dQ kernel recomputes QKᵀ
and dP and makes dQ (JAX's splash attention, ``_splash_attention_bwd_dkv`` and
``_splash_attention_bwd_dq``). The measured efficiency η_att is the fused kernel's seven."""

ATTENTION_PASS_EXPONENTIALS = {"fused": (1.0, 1.0, 0.0), "split": (1.0, 1.0, 1.0)}
"""[P] Exponentials per score of the same passes: each pass that computes the scores
exponentiates them (:data:`EXPONENTIALS_PER_SCORE` is the fused kernel's two)."""


def attention_overheads(
    w: Workload, cp: FloatArray, overhead_tokens: float, fixed_tokens: FloatArray | float = 0.0
) -> tuple[FloatArray, FloatArray]:
    """§2.6 The score matmuls' and the exponentials' time per counted score over the fused
    kernel's long-sequence time: each pass's :func:`pass_overhead` weighted by its matmuls
    (:data:`ATTENTION_PASS_MATMULS`, over the fused kernel's 7) and by its exponentials
    (:data:`ATTENTION_PASS_EXPONENTIALS`, over 2). Both equal :func:`pass_overhead` of the
    forward blocks for a fused kernel whose passes share them; a split backward costs 9/7 of
    the matmuls and 3/2 of the exponentials. A chip's measured ``fixed_tokens`` (shape
    ``(n, 1)`` or a number) add :func:`fixed_overhead` to every pass. Arrays of ``cp``'s shape
    broadcast with ``fixed_tokens``'."""
    blocks = w.attention_blocks
    forward = pass_overhead(w, cp, overhead_tokens, blocks[0:2])
    fixed = fixed_overhead(w, cp, fixed_tokens)
    if not blocks and w.attention_backward == "fused":
        return forward + fixed, forward + fixed
    passes = (forward,) * 3
    if blocks:
        passes = (
            forward,
            pass_overhead(w, cp, overhead_tokens, blocks[2:4]),
            pass_overhead(w, cp, overhead_tokens, blocks[4:6]),
        )
    matmuls = ATTENTION_PASS_MATMULS[w.attention_backward]
    exponentials = ATTENTION_PASS_EXPONENTIALS[w.attention_backward]
    tensor = np.sum([m * (r + fixed) for m, r in zip(matmuls, passes, strict=True)], 0) / 7.0
    special = np.sum([e * (r + fixed) for e, r in zip(exponentials, passes, strict=True)], 0) / 2.0
    return tensor, special


def fixed_overhead(w: Workload, cp: FloatArray, fixed_tokens: FloatArray | float) -> FloatArray:
    """§2.6 What a chip's measured fixed keys a query ``f`` add to a pass's time per counted
    score, ``f/k`` (``k`` as in :func:`pass_overhead`), weighted by the two kinds of layers'
    shares of the attention FLOPs; 0 (a number) where no design has one, so that the common
    case keeps the overheads' plan-axis shape."""
    if not np.any(fixed_tokens):
        return np.zeros(())
    full_keys, window_keys = attention_keys(w)
    share = windowed_attention_share(w)
    window_counted = np.minimum(window_keys, full_keys / cp)
    return fixed_tokens * ((1.0 - share) * cp / full_keys + share / window_counted)


def pass_overhead(
    w: Workload, cp: FloatArray, overhead_tokens: float, blocks: tuple[float, ...]
) -> FloatArray:
    """§2.6 Time per counted score of one attention pass over the long-sequence time, weighted
    by the full-attention and sliding-window layers' shares of the attention FLOPs. Without
    the kernel's ``blocks`` (``(query, key)`` tokens): ``1 + s0/k``, each query's ``k`` counted
    keys (:func:`~dse.catalog.workloads.attention_keys`: the ``s/c`` tokens of a
    context-parallel rank in a full-attention layer, ``2w − w²/s`` in a sliding-window layer, at
    most ``s/c``) paying for ``s0`` keys of masked diagonal blocks and per-block fixed cost, a
    sliding window for :data:`WINDOW_MASKED_BOUNDARIES` times as many (its first key block is
    masked too). With them, the keys the block-sparse kernel visits
    (:func:`visited_key_ratio`), computed once per distinct ``cp``."""
    full_keys, window_keys = attention_keys(w)
    share = windowed_attention_share(w)
    if not blocks:
        full = 1.0 + overhead_tokens * cp / full_keys
        windowed = 1.0 + WINDOW_MASKED_BOUNDARIES * overhead_tokens / np.minimum(
            window_keys, full_keys / cp
        )
        return (1.0 - share) * full + share * windowed
    block_q, block_kv = blocks
    window = min(float(w.sliding_window), full_keys) if w.window_layers else full_keys
    values, where = np.unique(cp, return_inverse=True)
    ratios = np.array(
        [
            (1.0 - share) * visited_key_ratio(full_keys / c, full_keys / c, block_q, block_kv)
            + share * visited_key_ratio(full_keys / c, window, block_q, block_kv)
            for c in values
        ]
    )
    return ratios[where].reshape(np.shape(cp))


def visited_key_ratio(seq: float, window: float, block_q: float, block_kv: float) -> float:
    """§2.6 Keys per query that a block-sparse causal attention kernel computes (every key
    block that holds a key of some query of the query block, in full) over half the keys
    per query that the model FLOPs count (``s`` causal, ``2w − w²/s`` in a window): for query
    block ``[a, a + b_q)`` the key blocks from ``⌊(a − w + 1)/b_kv⌋`` to ``⌊(a + b_q − 1)/b_kv⌋``.
    ``1 + b/s`` for causal attention in blocks of ``b`` that tile the sequence."""
    seq = float(seq)
    window = min(float(window), seq)
    starts = np.arange(0.0, seq, float(block_q))
    ends = np.minimum(starts + block_q, seq)
    first = np.floor(np.maximum(starts - window + 1.0, 0.0) / block_kv)
    last = np.floor((ends - 1.0) / block_kv)
    keys = np.minimum((last + 1.0) * block_kv, seq) - first * block_kv
    visited = float(np.sum((ends - starts) * keys)) / seq
    return 2.0 * visited / (2.0 * window - window * window / seq)


def materialized_attention_time_s(
    scores: FloatArray, w: Workload, efficiency: FloatArray, g: Grid
) -> FloatArray:
    """§2.6 Time (s) of attention that stores its score matrix (Megatron-LM and DeepSpeed
    before FlashAttention; XLA and Neuron without a fused kernel) over ``scores`` scores, the
    full s×s matrix of each head (the causal mask is applied to it, not skipped):

        T_att = N · (max(12·h_d / (η_att·R_att), b_gemm / B) + (b_soft + [dropout]·b_drop) / B
                     + 1 / R_exp)

    The batched GEMMs' score traffic (:data:`MATERIALIZED_GEMM_BYTES_PER_SCORE`) bounds them
    as a roofline; the softmax and dropout kernels are memory-bound on their own; one
    exponential per score (the backward pass reads the stored probabilities)."""
    gemm_s = np.maximum(
        score_matmul_flops(w, g.matrix_unit) / (efficiency * g.score_rate),
        MATERIALIZED_GEMM_BYTES_PER_SCORE / g.hbm_b_s,
    )
    memory_s = _elementwise_bytes_per_score(w) / g.hbm_b_s
    return scores * (gemm_s + memory_s + 1.0 / g.exp_rate)


def _elementwise_bytes_per_score(w: Workload) -> float:
    """§2.6 HBM bytes per score of a materialized attention's softmax and dropout kernels."""
    dropout_b = MATERIALIZED_DROPOUT_BYTES_PER_SCORE if w.dropout > 0 else 0.0
    return MATERIALIZED_SOFTMAX_BYTES_PER_SCORE + dropout_b


def materialized_score_bytes(
    attention_flops: FloatArray | float, w: Workload
) -> FloatArray | float:
    """§2.6 HBM bytes that a materialized attention worth ``attention_flops`` model FLOPs moves
    through its score matrices, forward and backward (0 with a flash kernel): what
    :func:`materialized_attention_time_s` charges, for the energy of §3.1."""
    if w.attention_kernel != "materialized":
        return 0.0
    per_score_b = MATERIALIZED_GEMM_BYTES_PER_SCORE + _elementwise_bytes_per_score(w)
    return np.asarray(attention_flops) / flops_per_score(w) * per_score_b


def moe_host_exposed_s(
    g: Grid, lay: Layout, w: Workload, experts: FloatArray | None, redo: Recompute, s: Settings
) -> FloatArray | float:
    """§2.6 The MoE layers' host time that the GPU does not hide, one micro-batch on one stage
    (s): after each MoE layer's host–device synchronization the host launches the layer's
    kernels (:func:`moe_overhead_s`, again for the share that recompute repeats) while the GPU
    runs the routed experts' grouped GEMMs (``experts``, one pass of :func:`expert_gemms_time_s`;
    three, forward and backward);
    only the host time beyond that GPU time shows::

        T_host = max(L_moe · (K_layer + K_expert·E/ep) · t_k · ρ_other − L_moe · T_experts · ρ, 0)

    so fine-grained MoE at few tokens per expert is host-bound and large expert GEMMs hide the
    launches (0 for dense workloads)."""
    # moe recompute runs every kernel of the MoE layers' forward again, the experts' too
    moe_redo = 1.0 + g.rc_share / 3.0
    host_s = moe_overhead_s(w, lay.layers_per_stage, g.ep, s) * np.where(
        g.rc == MOE, moe_redo, redo.other
    )
    if experts is None:
        return host_s
    experts_s = w.digital_linear_gemms * experts
    moe_layers = lay.layers_per_stage * (w.layers - w.dense_layers) / w.layers
    gemms_redo = np.where(g.rc == MOE, moe_redo, redo.matmul)
    return np.maximum(host_s - moe_layers * experts_s * gemms_redo, 0.0)


def moe_overhead_s(
    w: Workload, layers_per_stage: FloatArray, ep: FloatArray, s: Settings
) -> FloatArray | float:
    """§2.6 Host time (s) of the MoE layers' kernels of one stage for one micro-batch, forward
    and backward: ``(K_layer + K_expert·E/ep)·t_k`` per MoE layer (an eager expert-bias path
    adds :data:`EAGER_EXPERT_BIAS_LAYER_KERNELS` and :data:`EAGER_EXPERT_BIAS_KERNELS` per
    local expert).

    The expert dispatcher synchronizes host and device in every MoE layer (the host needs the
    tokens per expert to size the buffers), so the host cannot queue kernels ahead of the GPU
    and each kernel costs its host time ``t_k`` (``moe_kernel_overhead_us``, [C]) unless the
    GPU is still busy with the experts' GEMMs (:func:`moe_host_exposed_s`). This is why
    fine-grained MoE (many small experts per rank) trains far below its FLOP rate at small
    micro-batches.
    """
    if not w.is_moe:
        return 0.0
    moe_layers = layers_per_stage * (w.layers - w.dense_layers) / w.layers
    per_layer, per_expert = MOE_LAYER_KERNELS, MOE_EXPERT_KERNELS
    if w.eager_expert_bias:
        per_layer += EAGER_EXPERT_BIAS_LAYER_KERNELS
        per_expert += EAGER_EXPERT_BIAS_KERNELS
    kernels = per_layer + per_expert * w.experts / ep
    return moe_layers * kernels * s.moe_kernel_overhead_us * 1e-6
