"""§2.4 Data parallelism, micro-batches and which plans can run at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.catalog.workloads import Workload
from dse.designs import FloatArray
from dse.model.training.grid import Grid


@dataclass(frozen=True)
class Layout:
    """How a plan tiles each design's cluster; arrays broadcast to ``(n, k)``.

    ``dp`` replicas of ``replica = tp·pp·cp`` ranks; ``weight_dp = dp·cp`` ranks hold the same
    weights; each expert shard is replicated over ``expert_dp`` ranks; ``tokens_mb`` is one
    micro-batch's tokens on one rank. The ZeRO states are sharded over ``shard_dp`` of the
    ``weight_dp`` ranks (the experts' over ``expert_shard`` of their ``expert_dp``) and
    replicated over ``replicas = dp / dp_shard`` such groups (§2.1 hybrid sharding; without it
    ``shard_dp = weight_dp``, ``expert_shard = expert_dp``, ``replicas = 1``).
    A copy of the stage's routed experts spans ``ep·etp`` ranks (expert tensor parallelism
    ``etp``, 1 unless pinned).
    """

    valid: np.ndarray
    dp: FloatArray
    weight_dp: FloatArray
    expert_dp: FloatArray
    model_parallel: FloatArray
    replica: FloatArray
    microbatches: FloatArray
    layers_per_stage: FloatArray
    tokens_mb: FloatArray
    shard_dp: FloatArray
    expert_shard: FloatArray
    replicas: FloatArray | float


def layout(g: Grid, w: Workload) -> Layout:
    """§2.4 ``D = min(⌊N/(t·p·c)⌋, ⌊B/b⌋)`` rounded so that the expert groups tile the ranks."""
    sequences = w.global_batch_sequences
    model_parallel = g.tp * g.pp
    replica = model_parallel * g.cp
    # MoE parallel folding: expert groups of ep·etp ranks (ep expert-parallel ranks, each
    # expert split over etp) tile the tp·cp·dp ranks of a stage, so tp·cp·dp must be a multiple
    # of ep·etp (Megatron-Core's expert rank order etp-ep-edp).
    expert_ranks = g.expert_ranks
    dp_step = data_parallel_step(expert_ranks, g.tp, g.cp, g.dp_shard)
    valid, dp_safe = data_parallelism(
        g, replica, np.floor(sequences / g.mb), dp_step, g.pinned_dp, g.mb, g.tp, sequences
    )
    weight_dp = dp_safe * g.cp
    expert_dp = np.maximum(g.tp * weight_dp / expert_ranks, 1.0)
    shard_dp, expert_shard = weight_dp, expert_dp
    replicas: FloatArray | float = 1.0
    if g.dp_shard is not None:
        shard_dp, expert_shard = shard_groups(
            g.dp_shard, g.tp, g.cp, expert_ranks, weight_dp, expert_dp
        )
        replicas = weight_dp / shard_dp
    return Layout(
        valid=valid,
        dp=dp_safe,
        weight_dp=weight_dp,
        expert_dp=expert_dp,
        shard_dp=shard_dp,
        expert_shard=expert_shard,
        replicas=replicas,
        model_parallel=model_parallel,
        replica=replica,
        microbatches=sequences / (dp_safe * g.mb),
        layers_per_stage=np.ceil(w.layers / g.pp),
        tokens_mb=g.mb * float(w.seq_len) / g.cp,
    )


def data_parallel_step(
    ep: FloatArray, tp: FloatArray, cp: FloatArray, dp_shard: FloatArray | None
) -> FloatArray:
    """§2.4 What ``D`` is rounded down to a multiple of: ``max(e/(t·c), 1)`` so that the expert
    groups of ``e`` ranks (``ep·etp`` with expert tensor parallelism) tile the ranks, and, where a plan pins ``dp_shard`` (§2.1 hybrid sharding), also a
    multiple of it (the least common multiple), so that the sharding groups tile ``D``."""
    step = np.maximum(ep / (tp * cp), 1.0)
    if dp_shard is None:
        return step
    whole = step == np.round(step)
    common = np.lcm(np.round(step).astype(np.int64), np.maximum(dp_shard, 1.0).astype(np.int64))
    return np.where(dp_shard > 0, np.where(whole, common, step * dp_shard), step)


def shard_groups(
    dp_shard: FloatArray,
    tp: FloatArray,
    cp: FloatArray,
    ep: FloatArray,
    weight_dp: FloatArray,
    expert_dp: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """§2.1 Hybrid sharding: the ranks each ZeRO state is sharded over, ``dp_shard·c`` of the
    weights' ``D·c`` (the inner part of the data-parallel axis in rank order, as torchtitan
    folds cp into its FSDP mesh), and ``max(t·c·dp_shard/e, 1)`` of the experts' ``expert_dp``
    (the expert groups inside a sharding group); ``weight_dp`` and ``expert_dp`` where
    ``dp_shard`` is 0 (not pinned), and never more than them (cells that cannot run have
    ``D = 1``). Shapes broadcast."""
    pinned = dp_shard > 0
    shard_dp = np.where(pinned, np.minimum(dp_shard * cp, weight_dp), weight_dp)
    expert_shard = np.where(pinned, np.maximum(tp * shard_dp / ep, 1.0), expert_dp)
    return shard_dp, np.minimum(expert_shard, expert_dp)


def data_parallelism(
    g: Grid,
    replica: FloatArray,
    batch_dp: FloatArray,
    dp_step: FloatArray,
    pinned_dp: FloatArray | None,
    microbatch: FloatArray,
    tp: FloatArray,
    sequences: float,
) -> tuple[np.ndarray, FloatArray]:
    """§2.4 Whether each plan can run on each design, and its data parallelism ``D`` (at least
    1), from the cluster and the plan alone: ``min(⌊N/replica⌋, batch_dp)`` replicas (or the
    pinned ``D``), rounded down to a multiple of ``dp_step``; the plan runs where that leaves
    at least one replica within the cluster and the batch, and (where tp is searched) its
    tensor-parallel group within the scale-up domain. Shared by the step model and the plan
    search's lower bound."""
    if pinned_dp is None:
        dp = np.minimum(np.floor(g.chips / replica), batch_dp)
    else:
        dp = pinned_dp + 0.0 * g.chips
    dp = np.where(dp >= dp_step, np.floor(dp / dp_step) * dp_step, 0.0)
    valid = (dp >= 1.0) & (dp * replica <= g.chips) & (dp * microbatch <= sequences)
    if g.tp_searched:
        valid &= tp <= np.maximum(g.domain, 1.0)
    return valid, np.maximum(dp, 1.0)
