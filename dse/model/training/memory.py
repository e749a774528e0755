"""§2.1 and §2.5 Memory per chip: weights, gradients and optimizer state, then activations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dse.catalog.workloads import Workload, mla_projections
from dse.designs import FloatArray
from dse.model.training.grid import (
    FFN,
    FULL,
    MLA_UP_PROJ,
    MOE,
    NONE,
    OFFLOAD,
    OP,
    QKV_CONTEXT,
    QKV_LINEAR1,
    SELECTIVE,
    Grid,
)
from dse.model.training.parallelism import Layout
from dse.model.training.schedule import layers_in_flight
from dse.settings import Settings


@dataclass(frozen=True)
class Memory:
    """Bytes on one chip, ``(n, k)``: static state, activations and their sum; the stored
    activations of one micro-batch in one layer (``layer_b``) and the HBM bytes of its memory-bound
    operators (``elementwise_b``, :func:`elementwise_bytes`); parameters held and updated; the
    bytes activation offload copies per offloaded layer (``offloaded_b``) and the routed
    experts' inputs each layer keeps in host memory (``expert_host_b``)."""

    static_b: FloatArray
    activation_b: FloatArray
    total_b: FloatArray
    layer_b: FloatArray
    elementwise_b: FloatArray
    params_chip: FloatArray
    updated_params: FloatArray
    offloaded_b: FloatArray
    expert_host_b: FloatArray | float


def _per_token_layer_bytes(
    w: Workload, low_precision: FloatArray | bool = True
) -> tuple[FloatArray | float, float]:
    """§2.5 Stored bytes per token per layer (Korthikanti et al. generalised), and the MoE
    fraction of the layers.

    16-bit tensors take 2 bytes per element. The inputs of the linear layers, kept for their
    weight-gradient GEMMs, take the training format's operand bytes (fp8 and fp4: 1, the FP8
    copy Transformer Engine saves); dropout masks (1 byte) exist only where the run uses
    dropout. ``low_precision`` is False (or an array, per design) where a design trains an fp8/fp4
    workload in 16-bit because its low-precision units are slower."""
    d, hd = float(w.d_model), float(w.head_dim)
    linear_in = _linear_input_bytes(w, low_precision)
    mask = 1.0 if w.dropout > 0 else 0.0
    if w.is_mla:
        attention_linear = _mla_stored_bytes(w, linear_in) + mask * d
    else:
        q_and_kv = 2 * w.heads * hd + 4 * w.kv_heads * hd
        attention_linear = linear_in * d + q_and_kv + linear_in * w.heads * hd + mask * d
    if w.is_hybrid:  # §2.11 a Mamba block's stored bytes
        mamba = mamba_stored_bytes(w, linear_in) + mask * d
        attention_linear = w.per_layer_mixers(attention_linear, mamba)
    # GELU keeps its input (16-bit) and output (the down projection's input); SwiGLU keeps the
    # gate and up projections (16-bit) and their product (the down projection's input).
    mlp_width = (4.0 if w.ffn_kind == "swiglu" else 2.0) + linear_in
    if w.is_moe:
        moe_fraction = (w.layers - w.dense_layers) / w.layers
        routed = (w.experts_per_token + w.shared_experts) * mlp_width * w.moe_ffn_dim
        mlp = (linear_in + mask) * d + (1 - moe_fraction) * mlp_width * w.ffn_dim
        mlp += moe_fraction * routed + expert_input_bytes(w, linear_in)
        if w.moe_latent_dim:  # §2.12 the combined latents, the up-projection's input
            mlp += moe_fraction * linear_in * w.moe_latent_dim
    else:
        moe_fraction = 0.0
        mlp = (linear_in + mask) * d + mlp_width * w.ffn_dim
    return attention_linear + mlp + _norm_bytes(w, linear_in), moe_fraction


def _norm_bytes(w: Workload, linear_in: FloatArray) -> FloatArray | float:
    """§2.5 Stored bytes per token per layer of the normalizations' inputs: the layer's input
    and, in a sequential block, the residual after attention (a parallel block normalizes the
    layer's input for both), less the one normalized copy that a parallel block's branches
    share (``parallel_shared_norm``), which the attention and MLP terms would count twice; a
    hybrid's layer, one input per block (:attr:`~dse.catalog.workloads.Workload.blocks_per_layer`)."""
    d = float(w.d_model)
    if w.is_hybrid:
        return 2.0 * d * w.blocks_per_layer
    norm_inputs = (2.0 if w.parallel_blocks else 4.0) * d
    return norm_inputs - linear_in * d * float(w.parallel_shared_norm)


def residual_stream_bytes(w: Workload, low_precision: FloatArray | bool = True) -> FloatArray:
    """§2.5 Of the stored bytes per token per layer (:func:`_per_token_layer_bytes`), those of
    the tensors on the residual stream, which sequence parallelism splits over the
    tensor-parallel ranks and which every rank holds whole without it: the inputs of the
    normalizations, the normalized inputs of the attention and MLP blocks (their first linear
    layers' kept inputs) and the dropout masks of the two blocks' outputs. Korthikanti et al.
    2022 (arXiv:2205.05198, Sec. 4.2, eq. 2): ``10·s·b·h`` of a GPT layer's ``34·s·b·h``."""
    linear_in = _linear_input_bytes(w, low_precision)
    mask = 1.0 if w.dropout > 0 else 0.0
    blocks = w.blocks_per_layer if w.is_hybrid else 2.0
    return _norm_bytes(w, linear_in) + blocks * (linear_in + mask) * float(w.d_model)


def unsplit_bytes(
    w: Workload, tokens_mb: FloatArray, tp: FloatArray, low_precision: FloatArray | bool = True
) -> FloatArray | float:
    """§2.5 Bytes per layer that one tensor-parallel rank holds beyond its ``1/tp`` share of
    the stored activations where the run has no sequence parallelism
    (``w.sequence_parallel`` False): the ``1 − 1/tp`` of the residual stream the other ranks
    hold too (:func:`residual_stream_bytes`); 0 with sequence parallelism."""
    if w.sequence_parallel:
        return 0.0
    return tokens_mb * residual_stream_bytes(w, low_precision) * (1.0 - 1.0 / tp)


def _linear_input_bytes(w: Workload, low_precision: FloatArray | bool) -> FloatArray:
    """§2.5 Bytes an element of a linear layer's kept input: 1 where the design runs the
    workload's fp8/fp4 format, else 2."""
    low = w.precision in ("fp8", "fp4")
    return np.where(np.logical_and(low, low_precision), 1.0, 2.0)


def mamba_stored_bytes(w: Workload, linear_in: FloatArray | float) -> FloatArray | float:
    """§2.11 Stored bytes per token of one Mamba-2 mixer block (Megatron-Core ``MambaMixer`` with
    mamba_ssm's ``mamba_chunk_scan_combined``, which keeps its inputs and recomputes the chunk
    states in the backward pass): the in-projection's input (``linear_in`` bytes an element) and
    its 16-bit output (``z``, ``x``, ``B``, ``C``, ``dt``: :attr:`mamba_in_width`), the causal
    convolution's output after its SiLU (``x``, ``B``, ``C``), the scan's output (the gated
    norm's input), the step sizes and their cumulative decays in fp32 (8 bytes a head) and the
    out-projection's input (``linear_in`` bytes an element)."""
    inner, bc = float(w.mamba_inner), float(w.mamba_bc_width)
    projections = linear_in * (w.d_model + inner)
    return projections + 2.0 * (w.mamba_in_width + inner + bc + inner) + 8.0 * w.mamba_heads


def expert_input_bytes(w: Workload, linear_in: FloatArray | float) -> FloatArray | float:
    """§2.5 Bytes per token per layer (averaged over the layers) of the routed experts' inputs:
    the ``k`` dispatched copies of each token, which the experts' first grouped GEMM keeps for
    its weight gradient in the training format (``linear_in`` bytes an element; Megatron-Core's
    ``expert_fc1`` input, the tensor its fine-grained activation offloading moves to the host);
    0 for dense workloads."""
    if not w.is_moe:
        return 0.0
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    return moe_fraction * w.experts_per_token * linear_in * float(w.routed_dim)


def moe_layer_stored_bytes(w: Workload, linear_in: FloatArray | float) -> FloatArray | float:
    """§2.5 Bytes per token that the MLP part of one MoE layer keeps (not averaged over the
    layers): its normalized input (``linear_in`` bytes an element, the router's and the shared
    experts' input), the routed and shared experts' activations and the ``k`` dispatched copies
    (a latent MoE's in its latent, with the up-projection's latent input, §2.12).
    ``moe`` recompute drops them and keeps the MoE layer's 16-bit input instead (Megatron-Core
    checkpoints the MoE layer on its input); 0 for dense workloads."""
    if not w.is_moe:
        return 0.0
    d = float(w.d_model)
    mlp_width = (4.0 if w.ffn_kind == "swiglu" else 2.0) + linear_in
    routed = (w.experts_per_token + w.shared_experts) * mlp_width * w.moe_ffn_dim
    latent = linear_in * w.moe_latent_dim  # the combined latents, the up-projection's input
    return linear_in * d + routed + w.experts_per_token * linear_in * w.routed_dim + latent


def permutation_bytes(w: Workload) -> float:
    """§2.6 HBM bytes per token per layer (averaged over the layers) of the MoE token
    permutation, forward and backward, in 16-bit: ``2·d·(c·k + t)`` with ``(c, t)`` the passes
    of ``w.moe_permutation`` (:data:`PERMUTATION_PASSES`): ``8·d·(1 + k)`` fused,
    ``8·d·(3k + 1)`` by MaxText's gathers. 0 for dense workloads."""
    if not w.is_moe:
        return 0.0
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    copies, tokens = PERMUTATION_PASSES[w.moe_permutation]
    return moe_fraction * 2.0 * float(w.routed_dim) * (copies * w.experts_per_token + tokens)


PERMUTATION_PASSES = {"fused": (4.0, 4.0), "gather": (12.0, 4.0)}
"""16-bit elements of ``d`` per routed copy and per token that the MoE permutation reads and
writes, forward and backward, by ``training.moe_permutation``.

``fused`` [P: from the tensors' sizes]: the dispatch copies each token to its ``k`` experts
(reads ``d``, writes ``k·d``) and the combine sums them back (reads ``k·d``, writes ``d``); the
backward pass runs both once more in reverse: ``4·k + 4``.

``gather`` [P/E]: MaxText's gather-based permutation, counted from its operations
(``RoutedMoE.permute``/``unpermute`` and ``_sort_activations``' custom backward, MaxText
src/MaxText/layers/moe.py at 998b3e34, the Ironwood recipes' pin), each as one pass over its
operands [E: XLA fuses the ``jnp.repeat`` into the gather as its operand, and nothing else
across these operations]. Forward: the gather of the ``k`` copies by the sorted expert ids
(reads and writes ``k·d``: 2k), the unsorting gather (2k), the weighted sum over the copies
(reads ``k·d``, writes ``d``: k + 1). Backward: the weighted sum's two gradients (the copies'
gradient reads ``d`` and writes ``k·d``; the weights' reads ``k·d`` and ``d``: 2k + 2), the
two gathers by the inverse orders (4k), and the repeat's gradient, a sum over the copies
(k + 1). In all ``12·k + 4``."""


EAGER_EXPERT_BIAS_BYTES_PER_ELEMENT = 28.0
"""[E] HBM bytes per element of the routed experts' fc2 output (``k·d`` a token and MoE layer)
that Megatron-Core's eager expert-bias path moves, forward and backward, counted from its
operations (``TEGroupedMLP._apply_bias``, NVIDIA/Megatron-LM a329dd6da5, 2025-09-22) at 16 bits:
``b·p`` writes 2, ``t + b·p`` reads 4 and writes 2, the concatenation reads and writes 2 each
(12 forward); backward, ``g·p`` and ``g·b`` each read 2 and write 2 and their sums read 2 each,
and the split's backward concatenates the gradient, 2 and 2 (16). The router probabilities are
16-bit there: Megatron-Core's softmax returns the logits' type, and gpt-oss's recipes leave
``moe_router_dtype`` unset (fp32 probabilities would move about 2.4 times as much)."""


def expert_bias_bytes(w: Workload) -> float:
    """§2.6 HBM bytes per token per layer (averaged over the layers) of adding the routed
    experts' output bias in eager PyTorch, forward and backward
    (:data:`EAGER_EXPERT_BIAS_BYTES_PER_ELEMENT` per element of the ``k`` experts' outputs); 0
    where the workload has no expert bias or the run adds it inside a fused kernel."""
    if not w.eager_expert_bias:
        return 0.0
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    elements = float(w.routed_dim) * w.experts_per_token
    return moe_fraction * EAGER_EXPERT_BIAS_BYTES_PER_ELEMENT * elements


def _mla_stored_bytes(w: Workload, linear_in: FloatArray | float) -> FloatArray | float:
    """§2.5 Stored bytes per token of an MLA attention block (:func:`mla_projections`): each
    projection's input in the training format (the layer's normalized input once, for both
    down projections), the normalized latents' 16-bit inputs, and the 16-bit queries, keys
    (``H·(h_d + h_r)`` each) and values (``H·h_d``) that the fused attention's backward reads."""
    latents = float(w.q_lora_rank + w.kv_lora_rank)
    projection_inputs = w.d_model + latents + w.heads * w.head_dim
    return linear_in * projection_inputs + 2.0 * (latents + mla_up_projected_elements(w))


@dataclass(frozen=True)
class OpCheckpoint:
    """§2.5 What a per-operator checkpointing policy (recompute ``op``, ``ffn`` or
    ``qkv_linear1``) keeps and redoes."""

    recomputed_share: float
    """Share of the layer's forward linear FLOPs recomputed in the backward pass."""
    kept_elements: float
    """16-bit elements kept per token per layer."""


def _checkpoint(
    w: Workload,
    redone: Callable[[int, int], bool],
    kept: Callable[[int, int], bool],
    keeps_context: bool = True,
) -> OpCheckpoint:
    """§2.5 A policy that redoes the forward GEMMs where ``redone(i, n)`` and keeps the outputs
    of those where ``kept(i, n)`` (``i``: the GEMM's place among the layer's ``n`` in forward
    order: q, k, v, o, then the MLP's up projections and its down projection), besides the
    layer's input and, where ``keeps_context``, attention's output. MoE layers count each routed
    and shared expert as a dense MLP of the expert width."""
    d, hd = float(w.d_model), float(w.head_dim)
    # (input width, output width) of each forward GEMM, in execution order
    attention = [(d, w.heads * hd), (d, w.kv_heads * hd), (d, w.kv_heads * hd), (w.heads * hd, d)]
    if w.is_mla:
        attention = _mla_as_qkvo(w)

    def mlp(width: float) -> list[tuple[float, float]]:
        ups = [(d, width)] * (w.ffn_matrices - 1)
        return [*ups, (width, d)]

    def share_and_kept(
        gemms: list[tuple[float, float]], copies: list[float]
    ) -> tuple[float, float]:
        n = len(gemms)
        flops = [k * m * c for (k, m), c in zip(gemms, copies, strict=True)]
        share = sum(f for i, f in enumerate(flops) if redone(i, n)) / sum(flops)
        outputs = [m * c for (_, m), c in zip(gemms, copies, strict=True)]
        return share, sum(o for i, o in enumerate(outputs) if kept(i, n))

    dense = attention + mlp(float(w.ffn_dim))
    share, kept_elements = share_and_kept(dense, [1.0] * len(dense))
    if w.is_moe:
        moe_fraction = (w.layers - w.dense_layers) / w.layers
        experts = float(w.experts_per_token + w.shared_experts)
        routed = attention + mlp(float(w.moe_ffn_dim))
        copies = [1.0] * len(attention) + [experts] * (len(routed) - len(attention))
        moe_share, moe_kept = share_and_kept(routed, copies)
        share = (1.0 - moe_fraction) * share + moe_fraction * moe_share
        kept_elements = (1.0 - moe_fraction) * kept_elements + moe_fraction * moe_kept
    context = w.heads * hd if keeps_context else 0.0
    return OpCheckpoint(share, kept_elements + d + context)


def _mla_as_qkvo(w: Workload) -> list[tuple[float, float]]:
    """§2.5 MLA's projections as the q, k, v and o GEMMs that the checkpointing policies name:
    each has the width of the tensor it outputs (queries and keys ``H·(h_d + h_r)``, values
    ``H·h_d``) and an input width that gives it the FLOPs of the projections that produce that
    tensor (the key/value latent's two projections split evenly between keys and values)."""
    p = mla_projections(w)
    flops = [q.inputs * q.outputs for q in p]
    qk_width, v_width = float(w.heads * w.qk_head_dim), float(w.heads * w.head_dim)
    q_flops, kv_flops = sum(flops[:-3]), (flops[-3] + flops[-2]) / 2.0
    return [
        (q_flops / qk_width, qk_width),
        (kv_flops / qk_width, qk_width),
        (kv_flops / v_width, v_width),
        (p[-1].inputs, p[-1].outputs),
    ]


@lru_cache(maxsize=16)
def op_checkpoint(w: Workload) -> OpCheckpoint:
    """§2.5 torchtitan's ``op`` policy (``torchtitan/models/llama3/infra/parallelize.py``, 2025):
    a layer keeps the outputs of attention and of every other matmul in forward order (q, k, v,
    o, then the MLP's gate, up and down projections: q, v, gate and down are kept) and its input,
    and recomputes everything else."""
    return _checkpoint(w, redone=lambda i, n: i % 2 == 1, kept=lambda i, n: i % 2 == 0)


@lru_cache(maxsize=16)
def ffn_checkpoint(w: Workload) -> OpCheckpoint:
    """§2.5 AXLearn's default policy (``axlearn/common/attention.py`` ``build_remat_spec``: JAX
    saves only the names ``.*([qkvo]_proj|context)``): a layer keeps its input, the attention
    projections q, k, v, o and attention's output, and recomputes the MLP's up projections, its
    activation and the norms (the down projection's output is not needed by the backward pass,
    so it is not redone)."""
    return _checkpoint(w, redone=lambda i, n: 4 <= i < n - 1, kept=lambda i, n: i < 4)


@lru_cache(maxsize=16)
def qkv_linear1_checkpoint(w: Workload) -> OpCheckpoint:
    """§2.5 AXLearn's policy on Trainium2 (the Fuji configs' Trn2 mesh rules:
    ``save_and_offload_only_these_names_regex`` with ``QKV_PROJ|LINEAR1_X``, nothing offloaded):
    a layer keeps its input, q, k, v and the MLP's up projections, and recomputes attention from
    the kept q, k, v, the o projection (the second norm's input is the residual after it), the
    activation and the norms; the down projection's output is not needed by the backward pass."""
    return _checkpoint(
        w,
        redone=lambda i, n: i == 3,
        kept=lambda i, n: i < 3 or 4 <= i < n - 1,
        keeps_context=False,
    )


@lru_cache(maxsize=16)
def qkv_context_checkpoint(w: Workload) -> OpCheckpoint:
    """§2.5 MaxText's custom remat policy of the Ironwood Llama 3.1 70B recipes (AI-Hypercomputer
    tpu-recipes ``training/ironwood/llama3.1-70b/8k-*-tpu7x-*/``: ``remat_policy=custom`` with
    ``decoder_layer_input``, ``query_proj``, ``key_proj``, ``value_proj`` and ``context`` saved on
    the device, every other name recomputed): a layer keeps its input, q, k, v and attention's
    output, so attention is not redone, and recomputes the o projection, the MLP's up
    projections, the activation and the norms; the down projection's output is not needed by the
    backward pass."""
    return _checkpoint(
        w,
        redone=lambda i, n: i == 3 or 4 <= i < n - 1,
        kept=lambda i, n: i < 3,
    )


def mla_up_projected_elements(w: Workload) -> float:
    """§2.5 16-bit elements per token per layer that MLA's up projections produce and Megatron's
    ``mla_up_proj`` recompute drops: every head's query and key (``h_d + h_r`` each) and value
    (``h_d``), recomputed from the kept latents in the backward pass; 0 without MLA."""
    if not w.is_mla:
        return 0.0
    return float(w.heads * (2 * w.qk_head_dim + w.head_dim))


def mla_up_projection_share(w: Workload) -> float:
    """§2.6 Share of a layer's forward linear FLOPs in MLA's up projections (the queries' and
    the key/value latent's), which ``mla_up_proj`` recomputes; MoE layers count each routed and
    shared expert as a dense MLP of the expert width, as :func:`_checkpoint` does."""
    if not w.is_mla:
        return 0.0
    projections = mla_projections(w)
    ups = [p for p in projections if p.split == "outputs"]
    attention = sum(p.inputs * p.outputs for p in projections)
    up = sum(p.inputs * p.outputs for p in ups)

    def mlp(width: float, copies: float) -> float:
        return copies * w.ffn_matrices * w.d_model * width

    dense = up / (attention + mlp(w.ffn_dim, 1.0))
    if not w.is_moe:
        return dense
    experts = float(w.experts_per_token + w.shared_experts)
    moe = up / (attention + mlp(w.moe_ffn_dim, experts))
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    return (1.0 - moe_fraction) * dense + moe_fraction * moe


def moe_layer_shares(w: Workload) -> tuple[float, float]:
    """§2.6 What ``moe`` recompute redoes, as shares of a layer averaged over the layers: the
    MoE layers' routed and shared experts' share of the forward linear FLOPs (each expert a
    dense MLP of the expert width, as :func:`_checkpoint` counts them; the router's GEMM left
    out), and their MLP part's share of the stored 16-bit bytes
    (:func:`moe_layer_stored_bytes`), which stands for their share of the memory-bound
    traffic; (0, 0) for dense workloads."""
    if not w.is_moe:
        return 0.0, 0.0
    d, hd = float(w.d_model), float(w.head_dim)
    if w.is_mla:
        attention = float(sum(p.inputs * p.outputs for p in mla_projections(w)))
    else:
        attention = d * (w.heads + 2.0 * w.kv_heads) * hd + w.heads * hd * d
    if w.is_hybrid:  # §2.11 a Mamba block's projections
        attention = w.per_layer_mixers(attention, d * (w.mamba_in_width + w.mamba_inner))
    experts = float(w.experts_per_token + w.shared_experts)
    moe_mlp = experts * w.ffn_matrices * d * w.moe_ffn_dim
    if w.moe_latent_dim:  # §2.12 routed experts in the latent, and its two projections
        latent = float(w.moe_latent_dim)
        moe_mlp = (
            w.experts_per_token * latent + w.shared_experts * d
        ) * w.ffn_matrices * w.moe_ffn_dim + 2.0 * d * latent
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    flops = moe_fraction * moe_mlp / (attention + moe_mlp)
    per_token, _ = _per_token_layer_bytes(w, low_precision=False)
    stored = moe_fraction * float(moe_layer_stored_bytes(w, 2.0)) / float(per_token)
    return flops, stored


QUANTIZE_BYTES_PER_ELEMENT = 4.0
"""[P/E] HBM bytes to quantize one element of a GEMM operand to fp8/fp4 (§2.6): read the 16-bit
tensor (2) and write the low-precision copy (1) and its transpose (1). Hopper's fp8 tensor-core
GEMMs take only the TN layout, so the weight-gradient GEMM needs the transposed copies of the
inputs and output gradients (NVIDIA Transformer Engine user guide, "FP8 primer": columnwise
data; MXFP8 on Blackwell likewise keeps rowwise and columnwise scaled copies). A fused cast
computes the scaling factor in the same pass (delayed scaling; torch.compile'd dynamic
scaling); weights, cast once per micro-batch or cached, are left out."""


def linear_operand_elements(w: Workload) -> float:
    """§2.6 Elements per token per layer that the linear layers quantize to the training format:
    every linear's input (forward) and output gradient (backward); the down projection's input
    is the FFN width; MoE layers count the tokens' routed and shared experts."""
    d, hd = float(w.d_model), float(w.head_dim)
    attention = d + w.heads * hd + (w.heads + 2.0 * w.kv_heads) * hd + d
    if w.is_mla:
        attention = sum(p.inputs + p.outputs for p in mla_projections(w))
    if w.is_hybrid:  # §2.11 each Mamba projection's input and output gradient
        attention = w.per_layer_mixers(attention, d + w.mamba_in_width + w.mamba_inner + d)

    def mlp(width: float, copies: float, io: float = d) -> float:
        return copies * (io + width + (w.ffn_matrices - 1.0) * width + io)

    if not w.is_moe:
        return attention + mlp(w.ffn_dim, 1.0)
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    routed = mlp(w.moe_ffn_dim, w.experts_per_token + w.shared_experts)
    if w.moe_latent_dim:  # §2.12 routed experts in the latent, and the two latent projections
        latent = float(w.moe_latent_dim)
        routed = mlp(w.moe_ffn_dim, w.experts_per_token, latent) + mlp(
            w.moe_ffn_dim, w.shared_experts
        )
        routed += 2.0 * (d + latent)
    return attention + (1.0 - moe_fraction) * mlp(w.ffn_dim, 1.0) + moe_fraction * routed


def elementwise_bytes(
    w: Workload,
    tokens_mb: FloatArray,
    tp: FloatArray,
    s: Settings,
    low_precision: FloatArray | bool = True,
) -> FloatArray:
    """§2.6 HBM bytes of one layer's memory-bound operators for ``tokens_mb`` tokens on one
    tensor-parallel rank, forward and backward: ``elementwise_bytes_per_activation_byte`` per
    stored activation byte. Where the design runs an fp8/fp4 workload (``low_precision``) with
    ``fused`` casts, the linear layers' inputs are written in the format (the stored bytes of
    §2.5); with ``separate`` casts the operators work on 16-bit tensors and every GEMM operand
    is cast besides (:data:`QUANTIZE_BYTES_PER_ELEMENT` per :func:`linear_operand_elements`).
    Where a graph compiler fuses the operators (``w.compiler`` ``compiled``), a share
    ``compiled_elementwise_fraction`` of their bytes remains (the casts, not measured compiled,
    keep theirs). The routed experts' inputs are the MoE token permutation's output: their
    traffic is the permutation's own (:func:`permutation_bytes`), not ``β_ew`` per stored byte;
    an eager expert-bias path adds its own (:func:`expert_bias_bytes`)."""
    beta = s.elementwise_bytes_per_activation_byte
    if w.compiler == "compiled":
        beta = beta * s.compiled_elementwise_fraction
    moe_b = permutation_bytes(w) + expert_bias_bytes(w)
    if w.precision not in ("fp8", "fp4") or w.fp8_casts == "fused":
        stored_b, _ = _per_token_layer_bytes(w, low_precision)
        routed_b = expert_input_bytes(w, _linear_input_bytes(w, low_precision))
        layer_b = tokens_mb * (beta * (stored_b - routed_b) + moe_b) / tp
        return layer_b + beta * unsplit_bytes(w, tokens_mb, tp, low_precision)
    per_token_16, _ = _per_token_layer_bytes(w, low_precision=False)
    per_token_16 = per_token_16 - expert_input_bytes(w, 2.0)
    quantize = QUANTIZE_BYTES_PER_ELEMENT * linear_operand_elements(w)
    per_token = beta * per_token_16 + moe_b + np.where(low_precision, quantize, 0.0)
    return tokens_mb * per_token / tp + beta * unsplit_bytes(w, tokens_mb, tp, low_precision=False)


def layer_input_bytes(w: Workload, tokens_mb: FloatArray, tp: FloatArray) -> FloatArray:
    """§2.5 Bytes of one layer's 16-bit input for ``tokens_mb`` tokens on one tensor-parallel
    rank: what full recompute keeps and offload copies to the host; each rank's share of the
    tokens with sequence parallelism, all of them without."""
    split = tp if w.sequence_parallel else 1.0
    return 2.0 * tokens_mb * float(w.d_model) / split


@dataclass(frozen=True)
class Activations:
    """§2.5 Activation bytes of one micro-batch on one tensor-parallel rank: stored per layer
    (``layer_b``), kept per layer under the recompute policy (``kept_b``; 0 where the layer
    inputs are offloaded to host memory), held once per stage (``once_b``: the logits, the
    layer being recomputed under full recompute or offload, and offload's two layer inputs in
    flight over the host link) and kept per layer before any goes to host memory (``offloaded_b``:
    what activation offload copies for each offloaded layer); the routed experts' inputs that
    each layer keeps in host memory instead (``expert_host_b``, where they are offloaded)."""

    layer_b: FloatArray
    kept_b: FloatArray
    once_b: FloatArray
    offloaded_b: FloatArray
    logits_b: FloatArray
    expert_host_b: FloatArray | float = 0.0


def activations(
    w: Workload,
    tokens_mb: FloatArray,
    tp: FloatArray,
    rc: np.ndarray,
    low_precision: FloatArray | bool = True,
    offload_share: FloatArray | float = 0.0,
    recompute_share: FloatArray | float = 1.0,
    logits_bytes: float = 4.0,
    experts_offloaded: bool = False,
) -> Activations:
    """§2.5 The activation bytes of ``tokens_mb`` tokens at tensor parallelism ``tp`` and
    recompute policy ``rc`` (any shapes that broadcast); ``low_precision``: whether the design
    runs the workload's fp8/fp4 format (:attr:`Grid.low_precision`; True gives the least);
    ``offload_share``: the share of the stage's layers whose kept activations are in host memory
    (:func:`offload_share`), of which one layer is on the chip while it is copied;
    ``recompute_share``: the share of the layers that follow ``rc``, the others keep everything
    (Megatron's ``recompute_num_layers``); ``logits_bytes``: bytes held per logit until the
    backward pass (``logits_bytes_per_element``: 4 for fp32 logits; ``logits_b`` of the
    result, part of ``once_b``); ``experts_offloaded``: the routed experts' inputs go to host
    memory where the policy would keep them (``offload_expert_inputs``: Megatron-Core's
    fine-grained activation offloading of ``expert_fc1``)."""
    per_token, _ = _per_token_layer_bytes(w, low_precision)
    layer_b = tokens_mb * per_token / tp + unsplit_bytes(w, tokens_mb, tp, low_precision)
    host_b: FloatArray | float = 0.0  # the experts' inputs sent to host memory, per layer
    if experts_offloaded:
        host_b = tokens_mb * expert_input_bytes(w, _linear_input_bytes(w, low_precision)) / tp
    # Stored softmax output (2 bytes per score), with dropout also its mask and output (1 + 2);
    # a fused (flash) kernel keeps only its row statistics and recomputes the scores inside its
    # backward pass.
    score_bytes = (5.0 if w.dropout > 0 else 2.0) if w.attention_kernel == "materialized" else 0.0
    scores_b = score_bytes * w.heads * float(w.seq_len) * tokens_mb / tp * w.attention_share
    input_b = layer_input_bytes(w, tokens_mb, tp)
    moe_layer_b = tokens_mb * moe_layer_stored_bytes(w, _linear_input_bytes(w, low_precision)) / tp
    everything = layer_b + scores_b
    kept = _kept_by_policy(
        w, tokens_mb, tp, rc, (layer_b, everything, input_b, moe_layer_b, host_b)
    )
    # the policies that keep the experts' inputs send them to host memory instead, as do the
    # layers outside recompute_layers, which keep everything
    kept = recompute_share * kept + (1.0 - recompute_share) * (everything - host_b)
    sent_b: FloatArray | float = 0.0
    if experts_offloaded:
        keeps_experts = (rc == NONE) | (rc == SELECTIVE) | (rc == MLA_UP_PROJ)
        sent_b = (
            recompute_share * np.where(keeps_experts, 1.0, 0.0) + 1.0 - recompute_share
        ) * host_b
    logits_b = logits_bytes * tokens_mb * w.vocab_size / tp
    working_b = np.select(
        [rc == FULL, rc == OFFLOAD, rc == MOE], [layer_b, layer_b + 2.0 * input_b, moe_layer_b], 0.0
    )
    in_copy_b = np.where(np.asarray(offload_share) > 0.0, kept, 0.0)
    return Activations(
        layer_b,
        kept * (1.0 - offload_share),
        working_b + logits_b + in_copy_b,
        kept,
        logits_b,
        sent_b,
    )


def _kept_by_policy(
    w: Workload,
    tokens_mb: FloatArray,
    tp: FloatArray,
    rc: np.ndarray,
    parts: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray | float],
) -> FloatArray:
    """§2.5 The bytes of one layer that recompute policy ``rc`` keeps until the backward pass;
    ``parts``: the layer's stored bytes without and with the score matrices, its input, an MoE
    layer's stored bytes and the experts' inputs sent to host memory (:func:`activations`).
    Full recompute keeps the layer input; offload keeps nothing on the chip."""
    layer_b, everything, input_b, moe_layer_b, host_b = parts

    def checkpointed(elements: float) -> FloatArray:
        return 2.0 * tokens_mb * elements / tp

    up_proj_b = layer_b - checkpointed(mla_up_projected_elements(w))
    moe_fraction = (w.layers - w.dense_layers) / w.layers if w.is_moe else 0.0
    moe_b = layer_b - moe_fraction * (moe_layer_b - input_b)
    policies: dict[int, FloatArray | float] = {
        NONE: everything - host_b,
        SELECTIVE: layer_b - host_b,
        OP: checkpointed(op_checkpoint(w).kept_elements),
        FFN: checkpointed(ffn_checkpoint(w).kept_elements),
        QKV_LINEAR1: checkpointed(qkv_linear1_checkpoint(w).kept_elements),
        QKV_CONTEXT: checkpointed(qkv_context_checkpoint(w).kept_elements),
        MLA_UP_PROJ: up_proj_b - host_b,
        MOE: moe_b,
        OFFLOAD: 0.0,
    }
    return np.select([rc == code for code in policies], list(policies.values()), input_b)


def offload_share(offload_layers: FloatArray, layers_per_stage: FloatArray) -> FloatArray:
    """§2.5 The share of a stage's layers whose activations a plan offloads to host memory
    (``offload_layers`` per stage, Megatron-Core's ``cpu_offloading_num_layers``)."""
    return np.minimum(offload_layers, layers_per_stage) / layers_per_stage


def offload_time_s(g: Grid, lay: Layout, compute_s: FloatArray, w: Workload) -> FloatArray:
    """§2.5 Exposed seconds per micro-batch on one stage of copying the layer inputs to host
    memory and back (recompute ``offload``; 0 for the other policies).

    Each layer's input goes out over the host link during the forward pass and comes back
    during the backward pass, on copy engines that run beside the compute (MaxText's offloading
    remat policies; PyTorch ``save_on_cpu``). Under whole-layer recompute the forward pass is a
    quarter of the stage's compute (forward 1, recomputed forward 1, backward 2), so each copy
    hides behind its own part: ``max(X/B_h − T/4, 0) + max(X/B_h − 3T/4, 0)`` with ``X`` the
    stage's layer-input bytes and ``B_h`` the host link's bandwidth each way."""
    offloads = g.rc == OFFLOAD
    if not offloads.any():
        return np.zeros(np.broadcast_shapes(g.rc.shape, g.host_b_s.shape))
    input_b = layer_input_bytes(w, lay.tokens_mb, g.tp)
    copy_s = g.rc_share * lay.layers_per_stage * input_b / g.host_b_s
    return np.where(offloads, _copies_beyond(copy_s, compute_s, 1.0 / 4.0), 0.0)


def _copies_beyond(copy_s: FloatArray, compute_s: FloatArray, forward: float) -> FloatArray:
    """§2.5 Exposed seconds of copies that take ``copy_s`` each way, out behind the forward pass
    (a share ``forward`` of ``compute_s``) and back behind the rest."""
    return np.maximum(copy_s - forward * compute_s, 0.0) + np.maximum(
        copy_s - (1.0 - forward) * compute_s, 0.0
    )


def activation_offload_time_s(
    g: Grid, lay: Layout, mem: Memory, compute_s: FloatArray
) -> FloatArray:
    """§2.5 Exposed seconds per micro-batch on one stage of moving the activations of
    ``offload_layers`` layers to host memory and back, without recompute (Megatron-Core's CPU
    offloading, ``cpu_offloading_num_layers``).

    Each offloaded layer's kept activations go out over the host link while the next layers run
    their forward pass and come back while the later layers run their backward pass, on copy
    engines beside the compute. The forward pass is a third of the stage's compute and the
    backward two thirds, so ``max(X/B_h − T/3, 0) + max(X/B_h − 2T/3, 0)`` with ``X`` the
    offloaded bytes and ``B_h`` the host link's bandwidth each way."""
    if not np.any(g.offload > 0):
        return np.zeros(np.broadcast_shapes(g.offload.shape, g.host_b_s.shape))
    copy_s = np.minimum(g.offload, lay.layers_per_stage) * mem.offloaded_b / g.host_b_s
    return _copies_beyond(copy_s, compute_s, 1.0 / 3.0)


def expert_offload_time_s(
    g: Grid, lay: Layout, mem: Memory, compute_s: FloatArray
) -> FloatArray | float:
    """§2.5 Exposed seconds per micro-batch on one stage of moving the routed experts' inputs
    to host memory and back (``offload_expert_inputs``, Megatron-Core's fine-grained activation
    offloading of ``expert_fc1``): each layer's go out over the host link during the forward
    pass and come back during the backward pass, on copy engines beside the compute, as whole
    layers' activations do (:func:`activation_offload_time_s`); 0 where none are offloaded."""
    if not np.any(mem.expert_host_b):
        return 0.0
    copy_s = lay.layers_per_stage * mem.expert_host_b / g.host_b_s
    return _copies_beyond(copy_s, compute_s, 1.0 / 3.0)


def memory(g: Grid, lay: Layout, w: Workload, s: Settings) -> Memory:
    """§2.1 static state (ZeRO-1 or FSDP) and §2.5 activations of the plan's schedule."""
    static_b, params_chip, updated = _static(g, lay, w, s)
    act, kept_b = _plan_activations(g, lay, w, s)
    activation_b = kept_b + act.once_b
    layer_b = act.layer_b
    return Memory(
        static_b=static_b,
        activation_b=activation_b,
        total_b=static_b + activation_b,
        layer_b=layer_b,
        elementwise_b=elementwise_bytes(w, lay.tokens_mb, g.tp, s, g.low_precision),
        params_chip=params_chip,
        updated_params=updated,
        offloaded_b=act.offloaded_b,
        expert_host_b=act.expert_host_b,
    )


def _plan_activations(
    g: Grid, lay: Layout, w: Workload, s: Settings
) -> tuple[Activations, FloatArray]:
    """§2.5 The plan's :func:`activations` of one micro-batch, and the bytes its schedule keeps
    for the backward pass: the layers × micro-batches the first stage holds
    (:func:`~dse.model.training.schedule.layers_in_flight`)."""
    share = offload_share(g.offload, lay.layers_per_stage)
    act = activations(
        w,
        lay.tokens_mb,
        g.tp,
        g.rc,
        g.low_precision,
        share,
        g.rc_share,
        s.logits_bytes_per_element,
        s.offload_expert_inputs,
    )
    return act, layers_in_flight(g, lay, w.layers, w.mtp_layers) * act.kept_b


def _static(
    g: Grid, lay: Layout, w: Workload, s: Settings
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """§2.1 Static bytes, parameters held and parameters updated per chip, by ZeRO stage
    (:func:`zero_state_bytes`, over the parameters of :func:`_held_params`)."""
    params_chip, sharded, layer_params = _held_params(g, lay, w)
    replicated_b, sharded_b, in_flight_b = zero_state_bytes(g.zero, s)
    static_b = params_chip * replicated_b + sharded * sharded_b + layer_params * in_flight_b
    # DualPipe keeps two copies of the stage's weights (DeepSeek-V3 report, Table 2).
    static_b = static_b + np.where(g.dual, params_chip * s.weight_bytes_per_param, 0.0)
    return static_b, params_chip, np.where(sharded_b > 0.0, sharded, params_chip)


def _held_params(g: Grid, lay: Layout, w: Workload) -> tuple[FloatArray, FloatArray, FloatArray]:
    """§2.1 Parameters per chip: those its stage and shards hold, its share of the sharded
    states (over the ``shard_dp`` ranks of the sharding group: all ``D·c`` data-parallel ranks
    unless the plan pins ``dp_shard``, hybrid sharding; the experts' over ``expert_shard``), and
    one layer's worth of them; a rank holds ``1/(p·e·etp)`` of the routed experts' parameters."""
    experts = w.expert_params
    shared = w.total_params - experts
    local_experts = experts / (g.pp * g.expert_ranks)  # each expert split over etp ranks
    params_chip = shared / lay.model_parallel + local_experts
    sharded = shared / lay.model_parallel / lay.shard_dp + local_experts / lay.expert_shard
    return params_chip, sharded, params_chip / lay.layers_per_stage


MEMORY_PARTS = ("weights", "gradients", "optimizer_state", "activations", "logits", "working")
"""The kinds of bytes :func:`memory_parts` splits a chip's memory into."""


def memory_parts(g: Grid, lay: Layout, w: Workload, s: Settings) -> dict[str, FloatArray]:
    """§2.1 and §2.5 A chip's memory (bytes) by kind, summing to :func:`memory`'s ``total_b``:
    ``weights``, ``gradients`` and ``optimizer_state`` (each with its replicated part, its
    ZeRO shard and, under ZeRO-2/3, the two layers' worth in flight; DualPipe's second copy of
    the stage's weights under ``weights``); ``activations`` kept for the backward pass by the
    micro-batches in flight; one micro-batch's ``logits``; and the ``working`` set (the layer
    being recomputed, layer inputs on their way to or from host memory). Evaluated on the chosen
    plans only, not in the search."""
    params_chip, sharded, layer_params = _held_params(g, lay, w)
    parts: dict[str, FloatArray] = {
        kind: params_chip * replicated + sharded * shard + layer_params * in_flight
        for kind, (replicated, shard, in_flight) in zero_state_parts(g.zero, s).items()
    }
    parts["weights"] = parts["weights"] + np.where(
        g.dual, params_chip * s.weight_bytes_per_param, 0.0
    )
    act, parts["activations"] = _plan_activations(g, lay, w, s)
    parts["logits"] = act.logits_b
    parts["working"] = act.once_b - act.logits_b
    return parts


def zero_state_bytes(zero: FloatArray, s: Settings) -> tuple[FloatArray, FloatArray, FloatArray]:
    """§2.1 Bytes per parameter that ZeRO stage ``zero`` replicates on every data-parallel rank,
    that it shards over them, and that it holds per parameter of two layers in flight: the sums
    over weights, gradients and optimizer state of :func:`zero_state_parts`."""
    weights, gradients, optimizer = zero_state_parts(zero, s).values()
    replicated = weights[0] + gradients[0] + optimizer[0]
    sharded = weights[1] + gradients[1] + optimizer[1]
    return replicated, sharded, weights[2] + gradients[2] + optimizer[2]


def zero_state_parts(
    zero: FloatArray, s: Settings
) -> dict[str, tuple[FloatArray, FloatArray, FloatArray]]:
    """§2.1 Per kind of state (``weights``, ``gradients``, ``optimizer_state``): the bytes per
    parameter that ZeRO stage ``zero`` replicates, shards, and holds per parameter of two layers
    in flight.

    Stage 0 replicates weights, gradients and optimizer state; 1 shards the optimizer state
    (when ``distributed_optimizer`` is on, else it is stage 0); 2 the gradients too, holding two
    layers' full gradients while they are reduce-scattered; 3 (FSDP) the weights as well,
    holding two layers' gathered weights (Rajbhandari et al. 2020, Sec. 5), and no sharded
    16-bit copy where ``sharded_weight_copy`` is off (the fp32 master shard is cast as it is
    gathered: PyTorch FSDP's mixed precision, JAX's fp32 parameters)."""
    wt, gr, opt = s.weight_bytes_per_param, s.grad_bytes_per_param, s.optimizer_bytes_per_param
    optimizer_sharded = (zero >= 2) | ((zero == 1) & s.distributed_optimizer)
    grads_sharded, weights_sharded = zero >= 2, zero == 3
    weight_copy = wt if s.sharded_weight_copy else 0.0
    return {
        "weights": (
            np.where(weights_sharded, 0.0, wt),
            np.where(weights_sharded, weight_copy, 0.0),
            np.where(weights_sharded, 2.0 * wt, 0.0),
        ),
        "gradients": (
            np.where(grads_sharded, 0.0, gr),
            np.where(grads_sharded, gr, 0.0),
            np.where(zero == 2, 2.0 * gr, 0.0),
        ),
        "optimizer_state": (
            np.where(optimizer_sharded, 0.0, opt),
            np.where(optimizer_sharded, opt, 0.0),
            np.zeros_like(np.asarray(zero, dtype=float)),
        ),
    }


def state_bytes_per_param(s: Settings) -> float:
    """Weights, gradients and optimizer state per parameter (bytes)."""
    return s.weight_bytes_per_param + s.grad_bytes_per_param + s.optimizer_bytes_per_param
