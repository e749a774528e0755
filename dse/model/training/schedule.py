"""§2.5/§2.7 Pipeline schedules: 1F1B, interleaved 1F1B, DualPipe and ZB-H1."""

from __future__ import annotations

import numpy as np

from dse.designs import FloatArray
from dse.model.plans import DUALPIPE, ZB_H1
from dse.model.training.grid import Grid
from dse.model.training.parallelism import Layout


def pipeline_bubble_slots(pp: FloatArray, vp: FloatArray, schedule: FloatArray) -> FloatArray:
    """§2.7 Idle stage slots per step (a slot: one micro-batch's forward and backward pass on
    a stage) of each plan's schedule code (:data:`~dse.model.plans.SCHEDULES`): (p − 1)/v for
    (interleaved) 1F1B; for DualPipe (p/2 − 1)·(F&B + B − 3W)/(F + B) ≈ (p/2 − 1)·2/3 with
    B = 2F and W = F (DeepSeek-V3 report, Sec. 3.2.1, Table 2); for ZB-H1
    (p − 1)·(F + B − W)/(F + B + W) = (p − 1)/3, the backward pass split into its input
    gradient B and weight gradient W of one forward F each, the W passes filling the bubble
    (Qi et al. 2023, arXiv:2401.10241, Sec. 3.1, Table 1)."""
    return np.select(
        [schedule == DUALPIPE, schedule == ZB_H1],
        [np.maximum(pp / 2.0 - 1.0, 0.0) * 2.0 / 3.0, (pp - 1.0) / 3.0],
        (pp - 1.0) / vp,
    )


def interleaved_in_flight(pp: FloatArray, vp: FloatArray) -> FloatArray:
    """§2.5 Extra in-flight activations of the interleaved 1F1B schedule, relative to plain
    1F1B, where every virtual stage has the same layers: 1 + (p − 1)/(p·v) for v > 1
    (Narayanan et al. 2021, Sec. 2.2)."""
    return np.where(vp > 1, 1.0 + (pp - 1.0) / (pp * vp), 1.0)


def first_stage_layers(
    layers: int, mtp_layers: int, pp: FloatArray, vp: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """§2.5 Layers on the first pipeline rank and in its first virtual stage (each at least 1):
    ``⌊L/p⌋`` and ``⌊L/(p·v)⌋``, or ``⌈L/p⌉`` and ``⌈L/(p·v)⌉`` for a workload with ``M > 0``
    multi-token-prediction modules. An even split gives ``L/p`` and ``L/(p·v)`` either way.

    Where the layers do not split evenly, the stacks count the embedding and the loss as a
    layer of the split each, so the first and the last rank get the fewer: torchtitan's
    ``pipeline_parallel_first_stage_less_layers`` and ``..._last_stage_less_layers`` (default
    1 each), Megatron-Core's ``account_for_embedding_in_pipeline_split`` and
    ``account_for_loss_in_pipeline_split`` (Megatron-Bridge's Llama 3.1 405B and Qwen3-235B
    recipes). With MTP modules the last rank, which runs them beside the output layer, takes the
    short count alone and the first keeps a full share: DeepSeek-V3's layout
    ``Et*2|(tt|)*22t|(tt|)*7mL`` for 8 ranks of 4 virtual stages (Megatron-MoE-ModelZoo) puts 8
    layers on the first rank, 2 in its first virtual stage (§2.7 gives the last stage
    ``⌊L/p⌋ + M``)."""
    round_ = np.ceil if mtp_layers > 0 else np.floor
    first = np.maximum(round_(layers / pp), 1.0)
    first_chunk = np.minimum(np.maximum(round_(layers / (pp * vp)), 1.0), first)
    return first, first_chunk


def first_stage_layers_per_micro_batch(
    layers: int, mtp_layers: int, pp: FloatArray, vp: FloatArray, dual: np.ndarray | bool
) -> FloatArray:
    """§2.5 The layers the first pipeline rank holds per micro-batch in flight, with ``F`` and
    ``F₀`` of :func:`first_stage_layers`: ``F + (p − 1)/p·F₀`` for interleaved 1F1B, whose first
    rank runs ``2(p − 1) + (v − 1)·p`` forward passes before its first backward pass
    (Megatron-Core ``schedules.py``, the interleaved warm-up), so that it holds ``2p − 1``
    micro-batches of its first virtual stage and ``p`` of each other one out of ``p`` in flight
    (with even virtual stages :func:`interleaved_in_flight` times ``F``); ``F`` for 1F1B, ZB-H1
    and DualPipe."""
    first, first_chunk = first_stage_layers(layers, mtp_layers, pp, vp)
    return first + np.where(np.asarray(dual) | (vp <= 1), 0.0, (pp - 1.0) / pp * first_chunk)


def layers_in_flight(g: Grid, lay: Layout, layers: int, mtp_layers: int) -> FloatArray:
    """§2.5 Layer activations (layers × micro-batches) the first pipeline rank holds at its
    peak: :func:`first_stage_layers_per_micro_batch` times the micro-batches in flight,
    ``min(p, m)`` for 1F1B, interleaved 1F1B and ZB-H1 (Qi et al. 2023, Table 1: 1F1B's peak),
    ``min(p + 1, m)`` for DualPipe (DeepSeek-V3 report, Table 2)."""
    per_micro_batch = first_stage_layers_per_micro_batch(layers, mtp_layers, g.pp, g.vp, g.dual)
    cap = np.where(g.dual, g.pp + 1.0, g.pp)
    return np.minimum(cap, lay.microbatches) * per_micro_batch
