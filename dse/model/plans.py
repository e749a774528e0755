"""Candidate parallelism plans: the plan axis of the training model (docs/model.md §2.4).

A plan fixes tensor (``tp``), pipeline (``pp``, with ``vp`` virtual stages per rank),
context (``cp``) and expert (``ep``, with ``etp`` ranks splitting each expert) parallelism,
the micro-batch size in sequences, the
activation-recompute policy, the ZeRO stage of the data-parallel ranks (0: everything
replicated; 1: optimizer state sharded; 2: gradients too; 3: parameters as well, i.e. FSDP;
stages 2 and 3 without pipeline parallelism unless pinned, as in practice), the pipeline
schedule and the rank placement. Data parallelism follows from the cluster size per design
(``dp = chips // (tp·pp·cp)``, capped by the global batch and rounded down to the expert
groups), so the same candidate list serves every design point; plans are enumerated once per
workload, never per design.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from dse.catalog.workloads import Workload
from dse.errors import InputError

RECOMPUTE = (
    "none",
    "selective",
    "full",
    "op",
    "offload",
    "ffn",
    "qkv_linear1",
    "qkv_context",
    "mla_up_proj",
    "moe",
)
"""Activation recompute policies (docs/model.md §2.5): keep everything; recompute attention
scores (flash-style, Korthikanti et al. 2022); recompute whole layers from their inputs;
``op``: per-operator selective checkpointing (torchtitan's ``selective_ac_option = "op"``), which
keeps attention's output and every other linear layer's output and recomputes the rest;
``offload``: recompute whole layers from inputs kept in host memory (MaxText's offloading remat
policies, PyTorch's ``save_on_cpu``), copied over the host link behind the compute; ``ffn``:
AXLearn's default, which keeps the attention projections and output and recomputes the MLP's up
projections, attention and the norms; ``qkv_linear1``: AXLearn's policy on Trainium2 (its
``QKV_PROJ|LINEAR1_X`` names), which keeps q, k, v and the MLP's up projections and recomputes
attention, the o projection, the activation and the norms; ``qkv_context``: MaxText's custom
remat policy of the Ironwood Llama recipes (``decoder_layer_input``, ``query_proj``,
``key_proj``, ``value_proj`` and ``context`` saved on the device), which keeps q, k, v and
attention's output and recomputes the o projection, the MLP's up projections, the activation
and the norms; ``mla_up_proj``: Megatron-Core's selective recompute of MLA's up projections
(``recompute_modules = ["mla_up_proj"]``), which drops the queries, keys and values and
recomputes them from the kept latents (MLA workloads only); ``moe``: Megatron-Core's selective
recompute of the MoE layer (``recompute_modules = ["moe"]``), which keeps each MoE layer's input
and runs its router, dispatch, experts and combine again in the backward pass (MoE workloads
only). The search tries ``offload`` with
FSDP (ZeRO-3) only, the way the stacks that offload use it (MaxText, Megatron-FSDP's ``cpu_offloading``, DeepSpeed ZeRO-3's
``cpu_checkpointing``); a pinned ``recompute="offload"`` runs with any plan. ``ffn``,
``qkv_linear1``, ``qkv_context`` and ``moe`` are evaluated when pinned, ``mla_up_proj`` also searched
for MLA workloads (:data:`SEARCHED_RECOMPUTE`, :data:`SEARCHED_MLA_RECOMPUTE`)."""

SEARCHED_RECOMPUTE = ("none", "selective", "full", "op", "offload")
"""The policies the plan search tries. ``ffn``, ``qkv_linear1`` and ``qkv_context`` (one stack's
policies, which redo part of each layer's linear layers, and attention or not, to keep less than
``op`` or ``none``) are published facts to pin; the search leaves them out to keep its plan
count."""
PER_OPERATOR_RECOMPUTE = ("op", "ffn", "qkv_linear1", "qkv_context")
"""Policies that checkpoint named operators of a transformer layer (§2.5), which a hybrid's
Mamba blocks and a latent MoE's projections do not have: such a model searches and accepts the
others (§2.11-§2.12)."""
SEARCHED_MLA_RECOMPUTE = ("mla_up_proj",)
"""Policies the search adds for Multi-head Latent Attention workloads: the recompute of MLA's up
projections is how the MLA models are trained, not one stack's choice. DeepSeek-V3 recomputes
them, and every RMSNorm, in the backward pass (DeepSeek-AI 2024, arXiv:2412.19437, Sec. 3.2.3).
Megatron-Core offers it as ``recompute_modules = ["mla_up_proj"]``; Megatron-Bridge's DeepSeek-V3
performance recipes for the H100 use it, with the MLP's (``recompute_modules = ["mla_up_proj",
"mlp"]``, src/megatron/bridge/perf_recipes/deepseek/h100/deepseek_v3.py)."""

TP_CHOICES = (1, 2, 4, 8, 16, 32, 64)
PP_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128)
MICROBATCH_CHOICES = (1, 2, 4, 8)
VP_CHOICES = (1, 2, 3, 4, 5, 6, 7, 8)
"""Virtual pipeline stages per rank the search tries (docs/model.md §2.4), those that divide the
layers per stage (Megatron-Core's rule): the published plans pin 2-20, 8 most often
(Megatron-Bridge, MLPerf); more only when pinned. Not powers of two alone: 7 layers a stage
(Mixtral 8x22B on 8 stages, Qwen2-57B-A14B on 4) interleave only by 7, and 5 (Llama 3 70B on
16) only by 5."""
PLACEMENTS = ("tp-cp-ep-dp-pp", "tp-pp-dp")
"""Rank placements (docs/model.md §2.4), the order of the parallel dimensions from the
innermost (neighbouring ranks, which share a scale-up domain first) to the outermost, as
Megatron-Core's ``RankGenerator`` spells them (``megatron/training/initialize.py``: order
``"tp-cp-ep-dp-pp"``, or ``"tp-pp-dp"`` with ``use_tp_pp_dp_mapping``, which takes neither
context nor expert parallelism). The first is every stack's default (torchtitan's device mesh
``pp, dp, cp, tp`` from the outside in; MaxText's ``data, fsdp, tensor``) and the one the search
uses; the second puts pipeline stages next to each other, inside a scale-up domain before the
data-parallel replicas."""

SCHEDULES = ("1f1b", "dualpipe", "zb-h1")
"""Pipeline schedules: 1F1B (interleaved when vp > 1), DeepSeek-V3's DualPipe
(arXiv:2412.19437, Sec. 3.2.1) and the zero-bubble schedule ZB-H1, which splits each backward
pass into its input and weight gradients and runs the weight gradients in the bubble (Qi et al.
2023, arXiv:2401.10241, Sec. 3.1; DeepSeek-V2's HAI-LLM, torchtitan's zero-bubble schedules).
The search tries 1F1B; the others are evaluated when pinned (``schedule="dualpipe"``,
``"zb-h1"``), which keeps the plan space small enough to sweep."""
DUALPIPE, ZB_H1 = SCHEDULES.index("dualpipe"), SCHEDULES.index("zb-h1")
"""Codes of DualPipe and ZB-H1 in :attr:`Plans.schedule_code`."""
CP_CHOICES = (1, 2, 4, 8, 16)
CP_SEARCHED_FROM_SEQ_LEN = 65536
"""Context parallelism is searched only for sequences this long (pin ``cp`` for shorter ones),
and only down to ``CP_MIN_TOKENS_PER_RANK`` tokens of the sequence per rank."""
CP_MIN_TOKENS_PER_RANK = 8192
"""The fewest tokens of one sequence per context-parallel rank the search tries."""
ZERO_STAGES = (0, 1, 2, 3)
"""ZeRO stages (Rajbhandari et al. 2020, arXiv:1910.02054; docs/model.md §2.1, §2.7): 0 plain
data parallelism (DDP), 1 optimizer state sharded over the data-parallel ranks (Megatron's
distributed optimizer), 2 gradients sharded too, each micro-batch's reduce-scattered as the
backward pass produces them (DeepSpeed ZeRO-2, FSDP's SHARD_GRAD_OP), 3 parameters as well
(FSDP).

``dp_shard`` (never searched; the whole data-parallel axis unless pinned) shards those states over
groups of ``dp_shard`` data-parallel ranks and replicates them over the ``dp / dp_shard`` groups:
hybrid sharding (PyTorch FSDP's ``HYBRID_SHARD`` and ``_HYBRID_SHARD_ZERO2``, torchtitan's
``data_parallel_shard_degree`` × ``data_parallel_replicate_degree``, AXLearn's and MaxText's
``data`` × ``fsdp`` mesh axes; docs/model.md §2.1, §2.7)."""
SEARCHED_ZERO_STAGES = (1, 2, 3)
"""The stages the plan search tries. Stage 0 is evaluated when pinned: it moves the same bytes
as stage 1 and holds and updates more, so it never wins."""


@dataclass(frozen=True)
class Plans:
    """``k`` candidate plans; each field has shape ``(k,)``. ``dp`` is 0 where it is derived.

    ``tp_searched`` is true when tensor parallelism was searched rather than pinned: each design
    then only considers ``tp`` within its own scale-up domain, so a design's result never
    depends on the other designs evaluated with it.
    """

    tp: NDArray[np.float64]
    pp: NDArray[np.float64]
    ep: NDArray[np.float64]
    dp: NDArray[np.float64]
    microbatch: NDArray[np.float64]
    recompute: NDArray[np.int64]
    zero_stage: NDArray[np.float64]
    vp: NDArray[np.float64] | None = None
    cp: NDArray[np.float64] | None = None
    schedule: NDArray[np.float64] | None = None
    offload_layers: NDArray[np.float64] | None = None
    recompute_layers: NDArray[np.float64] | None = None
    recompute_share: NDArray[np.float64] | None = None
    placement: NDArray[np.float64] | None = None
    dp_shard: NDArray[np.float64] | None = None
    etp: NDArray[np.float64] | None = None
    tp_searched: bool = True

    @property
    def virtual_stages(self) -> NDArray[np.float64]:
        """``vp`` per plan, shape ``(k,)``: 1 (plain 1F1B) where not given."""
        return self.vp if self.vp is not None else np.ones_like(self.tp)

    @property
    def schedule_code(self) -> NDArray[np.float64]:
        """Each plan's pipeline schedule as its index into :data:`SCHEDULES` (0, 1F1B, where not
        given); shape ``(k,)``."""
        return self.schedule if self.schedule is not None else np.zeros_like(self.tp)

    @property
    def dualpipe(self) -> NDArray[np.bool_]:
        """Where the plan runs DualPipe; shape ``(k,)``."""
        return self.schedule_code == DUALPIPE

    @property
    def pipeline_inner(self) -> NDArray[np.float64]:
        """1 where the plan places pipeline stages inside the data-parallel replicas
        (``tp-pp-dp``), else 0; shape ``(k,)``."""
        return self.placement if self.placement is not None else np.zeros_like(self.tp)

    @property
    def context_parallel(self) -> NDArray[np.float64]:
        """``cp`` per plan, shape ``(k,)``: 1 (no context parallelism) where not given."""
        return self.cp if self.cp is not None else np.ones_like(self.tp)

    @property
    def offloaded_layers(self) -> NDArray[np.float64]:
        """Layers per pipeline stage whose activations go to host memory (no recompute), shape
        ``(k,)``: 0 where not given."""
        return self.offload_layers if self.offload_layers is not None else np.zeros_like(self.tp)

    @property
    def recomputed_share(self) -> NDArray[np.float64]:
        """The share of each stage's layers that follow the recompute policy, shape ``(k,)``;
        the others keep all their activations (Megatron's ``recompute_num_layers``). 1 where not
        given."""
        return self.recompute_share if self.recompute_share is not None else np.ones_like(self.tp)

    @property
    def expert_tensor_parallel(self) -> NDArray[np.float64]:
        """``etp`` per plan, shape ``(k,)``: the ranks each routed expert's weights are split over
        (expert tensor parallelism, §2.4); 1 (whole experts) where not given."""
        return self.etp if self.etp is not None else np.ones_like(self.tp)

    @property
    def hybrid_sharded(self) -> NDArray[np.bool_]:
        """Where the plan pins a sharding group ``dp_shard`` (hybrid sharding), shape ``(k,)``;
        elsewhere the ZeRO states are sharded over the whole data-parallel axis."""
        return self.dp_shard > 0 if self.dp_shard is not None else np.zeros(len(self), bool)

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    def take(self, keep: NDArray[np.bool_] | NDArray[np.int64]) -> Plans:
        """The plans selected by ``keep`` (a mask or indices over the ``k`` plans)."""
        changes = {
            f.name: getattr(self, f.name)[keep]
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        return replace(self, **changes)

    def describe(self, index: int) -> dict[str, object]:
        """One plan as a plain record (``dp`` filled in by the caller; ``dp_shard`` None where
        the states are sharded over the whole data-parallel axis)."""
        return {
            "tp": int(self.tp[index]),
            "pp": int(self.pp[index]),
            "vp": int(self.virtual_stages[index]),
            "cp": int(self.context_parallel[index]),
            "schedule": SCHEDULES[int(self.schedule_code[index])],
            "placement": PLACEMENTS[int(self.pipeline_inner[index])],
            "ep": int(self.ep[index]),
            "etp": int(self.expert_tensor_parallel[index]),
            "microbatch": int(self.microbatch[index]),
            "recompute": RECOMPUTE[int(self.recompute[index])],
            "zero_stage": int(self.zero_stage[index]),
            "offload_layers": int(self.offloaded_layers[index]),
            "recompute_layers": int(self.recompute_layers[index])
            if self.recompute_layers is not None
            else 0,
            "dp_shard": int(self.dp_shard[index])
            if self.dp_shard is not None and self.dp_shard[index] > 0
            else None,
        }


def _powers_of_two_dividing(n: int, limit: int) -> list[int]:
    return [v for v in (1, 2, 4, 8, 16, 32, 64, 128, 256) if v <= limit and n % v == 0]


class _Row(NamedTuple):
    """One candidate plan while the plans are enumerated: a product of the axes' choices."""

    tp: int
    pp: int
    ep: int
    microbatch: int
    recompute: int
    zero_stage: int
    vp: int
    cp: int
    schedule: int
    offload_layers: int
    recompute_layers: int


@dataclass(frozen=True)
class _Pinned:
    """The plan options a caller pinned (None where searched); see :func:`candidate_plans`."""

    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    ep: int | None = None
    microbatch: int | None = None
    recompute: str | None = None
    zero_stage: int | None = None
    vp: int | None = None
    cp: int | None = None
    schedule: str | None = None
    offload_layers: int | None = None
    recompute_layers: int | None = None
    placement: str | None = None
    dp_shard: int | None = None
    etp: int | None = None


def candidate_plans(
    workload: Workload,
    *,
    max_tp: int = 64,
    tp: int | None = None,
    pp: int | None = None,
    dp: int | None = None,
    ep: int | None = None,
    microbatch: int | None = None,
    recompute: str | None = None,
    zero_stage: int | None = None,
    vp: int | None = None,
    cp: int | None = None,
    schedule: str | None = None,
    offload_layers: int | None = None,
    recompute_layers: int | None = None,
    placement: str | None = None,
    dp_shard: int | None = None,
    etp: int | None = None,
) -> Plans:
    """All plans worth trying for ``workload``, or the single pinned plan where all are given.

    Rules that hold for every design: ``tp`` divides the attention heads and stays ≤ ``max_tp``
    (the largest scale-up domain of the designs), ``pp`` ≤ layers, ``ep`` divides the number of
    experts, the micro-batch fits in the global batch, ``vp`` > 1 only with pipeline stages
    and dividing the layers per stage, ``offload_layers`` (never searched: 0 unless pinned) at
    most the layers per stage and only beside recompute none, selective, op or ffn,
    ``recompute_layers`` (never searched: every layer of a stage unless pinned) at most the
    layers per stage and only with a policy that recomputes; ``placement`` (never searched:
    the first of :data:`PLACEMENTS` unless pinned) ``tp-pp-dp`` only with cp 1 and ep 1;
    ``dp_shard`` (never searched: the whole data-parallel axis unless pinned) at least 1,
    dividing a pinned ``dp`` and only with a ZeRO stage that shards; ``etp`` (never searched: 1
    unless pinned) 1 for dense models, else a divisor of the expert FFN width, and 1 with
    ``tp-pp-dp``; a hybrid's ``tp`` divides its Mamba heads and groups, and ``cp`` its heads
    per tensor-parallel rank, dividing or a multiple of its groups per rank (§2.11). Pinned
    values replace their
    axis; a pinned value that breaks a rule raises one :class:`InputError` line naming it.
    """
    pinned = _Pinned(
        tp=tp, pp=pp, dp=dp, ep=ep, microbatch=microbatch, recompute=recompute,
        zero_stage=zero_stage, vp=vp, cp=cp, schedule=schedule, offload_layers=offload_layers,
        recompute_layers=recompute_layers, placement=placement, dp_shard=dp_shard, etp=etp,
    )  # fmt: skip
    _check_pinned(workload, pinned)
    inner = _check_placement(placement, cp, ep, etp)
    axes = _axis_choices(workload, pinned, max_tp)
    rows = [
        row
        for row in map(_Row._make, itertools.product(*axes))
        if _row_runs(workload, pinned, inner, row)
    ]
    if not rows:
        raise _no_plan_error(pinned)
    if pinned.dp is not None:
        rows = _rows_tiling_dp(rows, pinned.dp, pinned.etp or 1)
    return _plans_from_rows(workload, rows, pinned, inner)


def _rows_tiling_dp(rows: list[_Row], dp: int, etp: int) -> list[_Row]:
    """The rows whose expert groups tile a pinned ``dp`` (§2.4: the ``ep·etp`` ranks of an
    expert group tile the ``tp·cp·dp`` ranks of a stage), or one line naming the rule and the
    values where none does."""
    tiled = [row for row in rows if (row.tp * row.cp * dp) % (row.ep * etp) == 0]
    if tiled:
        return tiled
    row = rows[0]
    raise InputError.for_argument(
        "dp",
        f"a dp with tp x cp x dp ({row.tp} x {row.cp} x dp) a multiple of ep x etp"
        f" ({row.ep} x {etp}): the expert groups tile the ranks of a pipeline stage",
        dp,
    )


def _check_pinned(workload: Workload, pinned: _Pinned) -> None:
    """One :class:`InputError` line for the first pinned option that breaks its own rule."""
    sequences = workload.global_batch_sequences
    tp, pp, ep, microbatch = pinned.tp, pinned.pp, pinned.ep, pinned.microbatch
    if pinned.zero_stage is not None and pinned.zero_stage not in ZERO_STAGES:
        raise InputError.for_argument(
            "zero_stage", f"one of {list(ZERO_STAGES)}", pinned.zero_stage
        )
    if tp is not None and (tp < 1 or workload.heads % tp):
        raise InputError.for_argument(
            "tp", f"a divisor of the attention heads ({workload.heads})", tp
        )
    if tp is not None and not _splits_mamba(workload, tp):
        raise InputError.for_argument(
            "tp", f"a divisor of the Mamba groups ({workload.mamba_groups})", tp
        )
    if pinned.recompute in PER_OPERATOR_RECOMPUTE and _without_per_operator(workload):
        raise InputError.for_argument(
            "recompute",
            "none, selective, full, offload or moe: per-operator policies are not modelled for "
            "hybrid Mamba models or latent MoE",
            pinned.recompute,
        )
    if pp is not None and not 1 <= pp <= workload.layers:
        raise InputError.for_argument(
            "pp", f"a whole number from 1 to the layers ({workload.layers})", pp
        )
    if microbatch is not None and not 1 <= microbatch <= sequences:
        raise InputError.for_argument(
            "microbatch",
            f"a whole number from 1 to {sequences:g} (the global batch)",
            microbatch,
        )
    if ep is not None and (
        (not workload.is_moe and ep != 1) or (workload.is_moe and workload.experts % ep)
    ):
        raise InputError.for_argument(
            "ep", "a divisor of the number of experts (1 for dense models)", ep
        )
    if pinned.recompute == "mla_up_proj" and not workload.is_mla:
        raise InputError.for_argument(
            "recompute",
            "a policy other than mla_up_proj: the workload has no Multi-head Latent Attention "
            "(kv_lora_rank 0)",
            pinned.recompute,
        )
    if pinned.recompute == "moe" and not workload.is_moe:
        raise InputError.for_argument(
            "recompute",
            "a policy other than moe: the workload has no MoE layers (experts 0)",
            pinned.recompute,
        )
    _check_vp(workload, pp, pinned.vp, [pp] if pp else _searched_pp(workload))
    _check_cp(workload, pinned.cp, tp)
    _check_dp_shard(pinned.dp, pinned.zero_stage, pinned.dp_shard)
    _check_etp(workload, pinned.etp)
    _check_schedule(pp, pinned.vp, pinned.schedule)


def _check_schedule(pp: int | None, vp: int | None, schedule: str | None) -> None:
    """One line naming the rule a pinned ``schedule`` breaks: a known schedule, DualPipe only
    with an even pinned ``pp`` ≥ 2 and no interleaving, ZB-H1 only without interleaving."""
    if schedule is not None and schedule not in SCHEDULES:
        raise InputError.for_argument("schedule", f"one of {list(SCHEDULES)}", schedule)
    if schedule == "dualpipe" and pp is not None and not _schedule_fits(pp, vp or 1, DUALPIPE):
        raise InputError.for_argument(
            "schedule", f"1f1b with pp {pp} (DualPipe needs an even pp >= 2, vp 1)", schedule
        )
    if schedule == "zb-h1" and vp not in (None, 1):
        raise InputError.for_argument(
            "schedule",
            f"1f1b with vp {vp} (ZB-H1 runs one stage per pipeline rank, vp 1)",
            schedule,
        )


def _without_per_operator(workload: Workload) -> bool:
    """The per-operator checkpoint policies name a transformer layer's projections: not for a
    hybrid's Mamba blocks (§2.11) or a latent MoE's projections (§2.12)."""
    return workload.is_hybrid or workload.moe_latent_dim > 0


def _splits_mamba(workload: Workload, tp: int) -> bool:
    """Tensor parallelism splits a hybrid's Mamba heads and its groups of B and C projections
    (Megatron-Core's ``MambaMixer`` asserts ``ngroups % tp == 0``)."""
    if not workload.mamba_layers:
        return True
    return workload.mamba_heads % tp == 0 and workload.mamba_groups % tp == 0


def _searched_pp(workload: Workload) -> list[int]:
    return [v for v in PP_CHOICES if v <= workload.layers]


def _axis_choices(workload: Workload, pinned: _Pinned, max_tp: int) -> list[list[int]]:
    """The values each axis of :class:`_Row` takes, in its order: the pinned value alone, or
    the searched choices. ``offload_layers`` and ``recompute_layers`` are never searched."""
    p = pinned
    heads, sequences = workload.heads, workload.global_batch_sequences
    experts = _powers_of_two_dividing(workload.experts, 256) if workload.is_moe else [1]
    mla_rc = SEARCHED_MLA_RECOMPUTE if workload.is_mla else ()
    searched = SEARCHED_RECOMPUTE + mla_rc
    if _without_per_operator(workload):  # §2.11-§2.12 not modelled for Mamba or latent MoE
        searched = tuple(r for r in searched if r not in PER_OPERATOR_RECOMPUTE)
    searched_rc = [RECOMPUTE.index(r) for r in searched]
    tps = [v for v in TP_CHOICES if v <= max_tp and heads % v == 0 and _splits_mamba(workload, v)]
    return [
        [p.tp] if p.tp else tps,
        [p.pp] if p.pp else _searched_pp(workload),
        [p.ep] if p.ep else experts,
        [p.microbatch] if p.microbatch else [v for v in MICROBATCH_CHOICES if v <= sequences],
        [RECOMPUTE.index(p.recompute)] if p.recompute else searched_rc,
        [p.zero_stage] if p.zero_stage is not None else list(SEARCHED_ZERO_STAGES),
        [p.vp] if p.vp else list(VP_CHOICES),
        [p.cp] if p.cp else _searched_cp(workload),
        [SCHEDULES.index(p.schedule)] if p.schedule else [0],
        [_check_offload_layers(workload, p.pp, p.recompute, p.offload_layers)],
        [_check_recompute_layers(workload, p.pp, p.recompute, p.recompute_layers)],
    ]


def _row_runs(workload: Workload, pinned: _Pinned, inner: int, row: _Row) -> bool:
    """Whether the options of ``row`` can run together: ZeRO 2/3 without pipeline stages
    unless pp is pinned, the offload policy with FSDP unless the policy is pinned, vp, the
    schedule, offload and recompute layers within the stage, ``tp-pp-dp`` without cp or
    ep, and a hybrid's Mamba heads per tensor-parallel rank split over the cp ranks."""
    offload = RECOMPUTE.index("offload")
    return (
        (row.zero_stage <= 1 or row.pp == 1 or bool(pinned.pp))
        and (row.recompute != offload or row.zero_stage == 3 or bool(pinned.recompute))
        and _vp_fits(workload, row.pp, row.vp)
        and (pinned.vp is not None or _vp_searched(row.pp, row.vp))
        and _schedule_fits(row.pp, row.vp, row.schedule)
        and _offload_fits(workload, row.pp, row.recompute, row.offload_layers)
        and _recompute_layers_fit(workload, row.pp, row.recompute, row.recompute_layers)
        and (not inner or (row.ep == 1 and row.cp == 1))
        and _splits_mamba_heads(workload, row.tp, row.cp)
    )


def _no_plan_error(pinned: _Pinned) -> InputError:
    """The one line for pinned options that no plan satisfies together."""
    given = ", ".join(
        f"{f.name} {getattr(pinned, f.name)}"
        for f in fields(pinned)
        if f.name != "dp" and getattr(pinned, f.name) is not None
    )
    return InputError(
        "plan",
        "",
        "pinned plan options that some plan satisfies together (vp > 1 needs pp > 1 and"
        " divides the layers per stage; DualPipe needs vp 1 and an even pp >= 2, ZB-H1"
        " vp 1; ZeRO stages 2 and 3 need pp 1 unless pp is pinned; docs/model.md §2.4)",
        given or "no pinned option",
    )


def _plans_from_rows(workload: Workload, rows: list[_Row], pinned: _Pinned, inner: int) -> Plans:
    """The :class:`Plans` of the enumerated rows, ``recompute_layers`` 0 read as the whole
    stage."""
    table = np.array(rows, dtype=np.float64).reshape(-1, len(_Row._fields))
    column = {name: table[:, i] for i, name in enumerate(_Row._fields)}
    count = len(rows)
    per_stage = np.ceil(workload.layers / column["pp"])
    redone = column["recompute_layers"]
    redo_layers = np.where(redone > 0, redone, per_stage)
    return Plans(
        dp_shard=None if pinned.dp_shard is None else np.full(count, float(pinned.dp_shard)),
        tp=column["tp"],
        pp=column["pp"],
        ep=column["ep"],
        dp=np.full(count, float(pinned.dp or 0)),
        microbatch=column["microbatch"],
        recompute=column["recompute"].astype(np.int64),
        zero_stage=column["zero_stage"],
        vp=column["vp"],
        cp=column["cp"],
        schedule=column["schedule"],
        offload_layers=column["offload_layers"],
        recompute_layers=redo_layers,
        recompute_share=redo_layers / per_stage,
        placement=np.full(count, float(inner)),
        etp=None if pinned.etp is None else np.full(count, float(pinned.etp)),
        tp_searched=pinned.tp is None,
    )


def _check_placement(
    placement: str | None, cp: int | None, ep: int | None, etp: int | None = None
) -> int:
    """The code of the pinned ``placement`` in :data:`PLACEMENTS` (0 when not given), or one
    line naming the rule: ``tp-pp-dp`` lays out tensor, pipeline and data parallelism only
    (Megatron-Core's ``use_tp_pp_dp_mapping`` takes no context or expert parallelism)."""
    if placement is None:
        return 0
    if placement not in PLACEMENTS:
        raise InputError.for_argument("placement", f"one of {list(PLACEMENTS)}", placement)
    inner = PLACEMENTS.index(placement)
    if inner and ((cp or 1) > 1 or (ep or 1) > 1 or (etp or 1) > 1):
        raise InputError.for_argument(
            "placement",
            f"{PLACEMENTS[0]} with cp {cp or 1}, ep {ep or 1} and etp {etp or 1} (tp-pp-dp"
            " places tp, pp and dp only: cp, ep and etp 1)",
            placement,
        )
    return inner


def _layers_per_stage_at_most(
    workload: Workload, pp: int | None, argument: str, layers: int, least: int
) -> int:
    """The layers per pipeline stage, or one line saying ``layers`` must lie between ``least``
    and them."""
    per_stage = math.ceil(workload.layers / (pp or 1))
    if layers < least or layers > per_stage:
        raise InputError.for_argument(
            argument,
            f"a whole number from {least} to the layers per pipeline stage ({per_stage} = ceil("
            f"{workload.layers} / pp {pp or 1}))",
            layers,
        )
    return per_stage


def _recompute_layers_fit(workload: Workload, pp: float, rc: float, layers: float) -> bool:
    """Recompute of ``layers`` per stage (0: all of them): no more than the stage has, and fewer
    only with a policy that recomputes."""
    per_stage = math.ceil(workload.layers / pp)
    if layers == 0:
        return True
    return layers == per_stage or (RECOMPUTE[int(rc)] != "none" and layers < per_stage)


def _check_recompute_layers(
    workload: Workload, pp: int | None, recompute: str | None, layers: int | None
) -> int:
    """The pinned ``recompute_layers`` (0, every layer, when not given), or one line naming the
    rule."""
    if layers is None:
        return 0
    per_stage = _layers_per_stage_at_most(workload, pp, "recompute_layers", layers, 1)
    if recompute == "none" and layers < per_stage:
        raise InputError.for_argument(
            "recompute_layers",
            f"all {per_stage} layers per stage with recompute 'none' (nothing is recomputed)",
            layers,
        )
    return layers


OFFLOAD_WITH = (
    "none", "selective", "op", "ffn", "qkv_linear1", "qkv_context", "mla_up_proj", "moe"
)  # fmt: skip
"""Recompute policies whose kept activations ``offload_layers`` can move to host memory; ``full``
and ``offload`` keep only each layer's input."""


def _offload_fits(workload: Workload, pp: float, rc: float, layers: float) -> bool:
    """Activation offload of ``layers`` per stage: no more than the stage has, and only where the
    layers keep their activations."""
    if layers == 0:
        return True
    return RECOMPUTE[int(rc)] in OFFLOAD_WITH and layers <= math.ceil(workload.layers / pp)


def _check_offload_layers(
    workload: Workload, pp: int | None, recompute: str | None, layers: int | None
) -> int:
    """The pinned ``offload_layers`` (0 when not given), or one line naming the rule."""
    if not layers:
        return 0
    _layers_per_stage_at_most(workload, pp, "offload_layers", layers, 0)
    if recompute is not None and recompute not in OFFLOAD_WITH:
        raise InputError.for_argument(
            "offload_layers",
            f"0 with recompute {recompute!r}, which keeps only each layer's input (offload "
            f"needs recompute {' / '.join(OFFLOAD_WITH)})",
            layers,
        )
    return layers


def _schedule_fits(pp: float, vp: float, schedule: float) -> bool:
    """Whether schedule code ``schedule`` (:data:`SCHEDULES`) runs with ``pp`` stages of ``vp``
    virtual stages: DualPipe runs two pipelines in opposite directions, an even number of stages
    ≥ 2 without interleaving; ZB-H1 one stage per rank, without interleaving."""
    if schedule == DUALPIPE:
        return pp >= 2 and pp % 2 == 0 and vp == 1
    return schedule != ZB_H1 or vp == 1


def _searched_cp(workload: Workload) -> list[int]:
    """Context parallelism splits each sequence into 2·cp load-balanced chunks (Megatron-Core)."""
    if workload.seq_len < CP_SEARCHED_FROM_SEQ_LEN:
        return [1]
    return [
        c
        for c in CP_CHOICES
        if workload.seq_len % (2 * c) == 0 and workload.seq_len / c >= CP_MIN_TOKENS_PER_RANK
    ]


def _check_dp_shard(dp: int | None, zero_stage: int | None, dp_shard: int | None) -> None:
    """One line naming the rule a pinned ``dp_shard`` breaks (§2.1 hybrid sharding): at least 1,
    dividing a pinned ``dp``, and with ZeRO stage 0 (nothing sharded) only the whole axis."""
    if dp_shard is None:
        return
    if dp_shard < 1:
        raise InputError.for_argument("dp_shard", "a whole number >= 1", dp_shard)
    if dp is not None and dp % dp_shard:
        raise InputError.for_argument(
            "dp_shard", f"a divisor of the pinned dp ({dp}): dp_shard groups tile dp", dp_shard
        )
    if zero_stage == 0 and dp_shard != dp:
        raise InputError.for_argument(
            "dp_shard",
            f"no dp_shard (or dp_shard = dp, {dp}) with zero_stage 0, which shards nothing"
            " (hybrid sharding needs zero_stage 1-3)"
            if dp
            else "no dp_shard with zero_stage 0, which shards nothing (hybrid sharding needs"
            " zero_stage 1-3)",
            dp_shard,
        )


def _check_cp(workload: Workload, cp: int | None, tp: int | None = None) -> None:
    if cp is not None and (cp < 1 or (cp > 1 and workload.seq_len % (2 * cp))):
        raise InputError.for_argument(
            "cp",
            f"1, or a whole number c with 2·c dividing the sequence length ({workload.seq_len})",
            cp,
        )
    if cp is None or not workload.mamba_layers:
        return
    tps = [tp] if tp else [v for v in TP_CHOICES if _splits_mamba(workload, v)]
    if not any(_splits_mamba_heads(workload, t, cp) for t in tps):
        per_rank = workload.mamba_heads // tps[0]
        raise InputError.for_argument(
            "cp",
            f"a divisor of the Mamba heads per tensor-parallel rank ({per_rank} at tp {tps[0]})"
            f" that divides or is a multiple of their groups per rank"
            f" ({workload.mamba_groups // tps[0]}): the Mamba blocks split their heads over"
            " the cp ranks",
            cp,
        )


def _splits_mamba_heads(workload: Workload, tp: float, cp: float) -> bool:
    """§2.11 Under context parallelism a hybrid's Mamba blocks gather the whole sequence and
    split their heads over the ``cp`` ranks (Megatron-Core's ``MambaContextParallel``, which
    asserts ``nheads/tp % cp == 0``, and ``ngroups/tp % cp == 0`` or ``cp % (ngroups/tp) == 0``,
    repeating each group's B and C for the ranks of its heads)."""
    if not workload.mamba_layers or cp == 1:
        return True
    heads, groups = workload.mamba_heads / tp, workload.mamba_groups / tp
    return heads % cp == 0 and (groups % cp == 0 or cp % groups == 0)


def _vp_fits(workload: Workload, pp: float, vp: float) -> bool:
    """Interleaving needs pipeline stages, and each stage's layers split into ``vp`` chunks."""
    if vp == 1:
        return True
    return pp > 1 and math.ceil(workload.layers / pp) % vp == 0


def _vp_searched(pp: float, vp: float) -> bool:
    """The search interleaves only pipelines of 4 or more stages, where the bubble matters."""
    return vp == 1 or pp >= 4


def _check_vp(workload: Workload, pp: int | None, vp: int | None, pps: list[int]) -> None:
    if vp is None:
        return
    if vp < 1:
        raise InputError.for_argument("vp", "a whole number >= 1", vp)
    if vp > 1 and pp is None and not any(_vp_fits(workload, p, vp) for p in pps):
        stages = sorted({math.ceil(workload.layers / p) for p in pps if p > 1})
        raise InputError.for_argument(
            "vp",
            f"a divisor of the layers per pipeline stage of some pp > 1 (for {workload.layers}"
            f" layers: {', '.join(str(n) for n in stages)}), or 1",
            vp,
        )
    if vp > 1 and pp is not None and not _vp_fits(workload, pp, vp):
        per_stage = math.ceil(workload.layers / pp)
        raise InputError.for_argument(
            "vp",
            f"a divisor of the layers per pipeline stage ({per_stage} = ceil({workload.layers}"
            f" / pp {pp})), with pp > 1",
            vp,
        )


def _check_etp(workload: Workload, etp: int | None) -> None:
    """One line naming the rule a pinned ``etp`` breaks (§2.4 expert tensor parallelism): 1 for
    dense models; for MoE a whole number ≥ 1 that divides the expert FFN width, as
    Megatron-Core splits each expert's up projections by columns and its down projection by
    rows over the ``etp`` ranks."""
    if etp is None:
        return
    if not workload.is_moe and etp != 1:
        raise InputError.for_argument("etp", "1 for a dense model (it has no experts)", etp)
    if etp < 1 or workload.moe_ffn_dim % etp:
        raise InputError.for_argument(
            "etp", f"a divisor of the expert FFN width ({workload.moe_ffn_dim})", etp
        )
