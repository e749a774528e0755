"""§2.1 and §2.5 Memory per chip: weights, gradients and optimizer state, then activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.catalog.workloads import Workload
from dse.designs import FloatArray
from dse.model.training.grid import FULL, NONE, SELECTIVE, Grid
from dse.model.training.parallelism import Layout
from dse.model.training.schedule import micro_batches_in_flight
from dse.settings import Settings


@dataclass(frozen=True)
class Memory:
    """Bytes on one chip, ``(n, k)``: static state, activations and their sum; the stored
    activations of one micro-batch in one layer (``layer_b``); parameters held and updated."""

    static_b: FloatArray
    activation_b: FloatArray
    total_b: FloatArray
    layer_b: FloatArray
    params_chip: FloatArray
    updated_params: FloatArray


def _per_token_layer_bytes(w: Workload) -> tuple[float, float]:
    """§2.5 Stored bytes per token per layer (Korthikanti et al. generalised), and the MoE
    fraction of the layers.

    16-bit tensors take 2 bytes per element. The inputs of the linear layers, kept for their
    weight-gradient GEMMs, take the training format's operand bytes (fp8 and fp4: 1, the FP8
    copy Transformer Engine saves); dropout masks (1 byte) exist only where the run uses
    dropout."""
    d, hd = float(w.d_model), float(w.head_dim)
    linear_in = 1.0 if w.precision in ("fp8", "fp4") else 2.0
    mask = 1.0 if w.dropout > 0 else 0.0
    q_and_kv = 2 * w.heads * hd + 4 * w.kv_heads * hd
    attention_linear = linear_in * d + q_and_kv + linear_in * w.heads * hd + mask * d
    # GELU keeps its input (16-bit) and output (the down projection's input); SwiGLU keeps the
    # gate and up projections (16-bit) and their product (the down projection's input).
    mlp_width = (4.0 if w.ffn_kind == "swiglu" else 2.0) + linear_in
    if w.is_moe:
        moe_fraction = (w.layers - w.dense_layers) / w.layers
        routed = (w.experts_per_token + w.shared_experts) * mlp_width * w.moe_ffn_dim
        mlp = (linear_in + mask) * d + (1 - moe_fraction) * mlp_width * w.ffn_dim
        mlp += moe_fraction * routed
    else:
        moe_fraction = 0.0
        mlp = (linear_in + mask) * d + mlp_width * w.ffn_dim
    return attention_linear + mlp + 4 * d, moe_fraction


@dataclass(frozen=True)
class Activations:
    """§2.5 Activation bytes of one micro-batch on one tensor-parallel rank: stored per layer
    (``layer_b``), kept per layer under the recompute policy (``kept_b``), and held once per
    stage (``once_b``: the logits, and the layer being recomputed under full recompute)."""

    layer_b: FloatArray
    kept_b: FloatArray
    once_b: FloatArray


def activations(w: Workload, tokens_mb: FloatArray, tp: FloatArray, rc: np.ndarray) -> Activations:
    """§2.5 The activation bytes of ``tokens_mb`` tokens at tensor parallelism ``tp`` and
    recompute policy ``rc`` (any shapes that broadcast)."""
    per_token, _ = _per_token_layer_bytes(w)
    layer_b = tokens_mb * per_token / tp
    # Stored softmax output (2 bytes per score), with dropout also its mask and output (1 + 2);
    # a fused (flash) kernel keeps only its row statistics and recomputes the scores inside its
    # backward pass.
    score_bytes = (5.0 if w.dropout > 0 else 2.0) if w.attention_kernel == "materialized" else 0.0
    scores_b = score_bytes * w.heads * float(w.seq_len) * tokens_mb / tp
    input_b = 2.0 * tokens_mb * float(w.d_model) / tp
    kept = np.where(rc == NONE, layer_b + scores_b, np.where(rc == SELECTIVE, layer_b, input_b))
    logits_b = 4.0 * tokens_mb * w.vocab_size / tp
    working_b = np.where(rc == FULL, layer_b, 0.0)
    return Activations(layer_b, kept, working_b + logits_b)


def memory(g: Grid, lay: Layout, w: Workload, s: Settings) -> Memory:
    """§2.1 static state (ZeRO-1 or FSDP) and §2.5 activations of the plan's schedule."""
    static_b, params_chip, updated = _static(g, lay, w, s)
    act = activations(w, lay.tokens_mb, g.tp, g.rc)
    in_flight = micro_batches_in_flight(g, lay)
    activation_b = in_flight * lay.layers_per_stage * act.kept_b + act.once_b
    layer_b = act.layer_b
    return Memory(
        static_b=static_b,
        activation_b=activation_b,
        total_b=static_b + activation_b,
        layer_b=layer_b,
        params_chip=params_chip,
        updated_params=updated,
    )


def _static(
    g: Grid, lay: Layout, w: Workload, s: Settings
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """§2.1 Static bytes, parameters held and parameters updated per chip."""
    experts = w.expert_params
    shared = w.total_params - experts
    local_experts = experts / (g.pp * g.ep)  # whole experts: expert tensor parallelism 1
    params_chip = shared / lay.model_parallel + local_experts
    shards = lay.weight_dp if s.distributed_optimizer else 1.0
    expert_shards = lay.expert_dp if s.distributed_optimizer else 1.0
    optimizer_params = shared / lay.model_parallel / shards + local_experts / expert_shards
    weights_grads = s.weight_bytes_per_param + s.grad_bytes_per_param
    replicated_b = params_chip * weights_grads + s.optimizer_bytes_per_param * optimizer_params
    # ZeRO-3 / FSDP: everything sharded over the data-parallel ranks, two layers gathered.
    per_state = weights_grads + s.optimizer_bytes_per_param
    sharded = shared / lay.model_parallel / lay.weight_dp + local_experts / lay.expert_dp
    gathered_b = 2.0 * params_chip / lay.layers_per_stage * s.weight_bytes_per_param
    static_b = np.where(g.fsdp, sharded * per_state + gathered_b, replicated_b)
    # DualPipe keeps two copies of the stage's weights (DeepSeek-V3 report, Table 2).
    static_b = static_b + np.where(g.dual, params_chip * s.weight_bytes_per_param, 0.0)
    return static_b, params_chip, np.where(g.fsdp, sharded, optimizer_params)


def state_bytes_per_param(s: Settings) -> float:
    """Weights, gradients and optimizer state per parameter (bytes)."""
    return s.weight_bytes_per_param + s.grad_bytes_per_param + s.optimizer_bytes_per_param
