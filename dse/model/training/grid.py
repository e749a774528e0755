"""The (designs × plans) grid of the training model (docs/model.md §2).

Design quantities are arrays of shape ``(n, 1)``, plan quantities ``(1, k)``; every mechanism
broadcasts them to ``(n, k)``. :class:`Grid` gathers both for one chunk of designs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import numpy as np

from dse.designs import Designs, FloatArray
from dse.model.plans import DUALPIPE, Plans
from dse.model.silicon import Silicon
from dse.settings import Settings
from dse.units import BYTES_PER_GIB, GIGA, TERA

NONE, SELECTIVE, FULL, OP, OFFLOAD, FFN, QKV_LINEAR1, QKV_CONTEXT, MLA_UP_PROJ, MOE = range(10)
"""Codes of the recompute policies (dse.model.plans.RECOMPUTE)."""


def recomputes_layers(rc: np.ndarray) -> np.ndarray:
    """Where policy codes ``rc`` recompute whole layers from their inputs (``full``, kept in HBM,
    or ``offload``, kept in host memory); same shape as ``rc``."""
    return (rc == FULL) | (rc == OFFLOAD)


def recomputed_layer_share(rc: np.ndarray, share: FloatArray | float) -> FloatArray:
    """The share of a stage's layers recomputed whole: ``share`` (the layers the policy applies
    to) where ``rc`` recomputes whole layers, else 0."""
    return np.where(recomputes_layers(rc), share, 0.0)


def recomputed_moe_share(rc: np.ndarray, share: FloatArray | float) -> FloatArray:
    """The share of a stage's MoE layers whose routing, dispatch, experts and combine run again
    in the backward pass: ``share`` where ``rc`` recomputes whole layers or the MoE layer
    (``moe``), else 0."""
    return np.where(recomputes_layers(rc) | (rc == MOE), share, 0.0)


def precision_flop_s(silicon: Silicon, precision: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """§2.3 Sustained matmul rate (FLOP/s) in the training precision, the 16-bit rate used for
    attention, and the nominal peak used for MFU; all shape ``(n,)``.

    16-bit training uses bf16 or, on chips without it, fp16. fp8/fp4 training runs the linear
    layers in that format where the chip has it and falls back to 16-bit where it has not, or
    where the format would be slower than 16-bit (no framework trains in a slower format).
    """
    # A design whose TDP cannot even feed its static power sustains no clock at all; 1 FLOP/s
    # keeps its times finite (and huge) rather than infinite.
    sixteen = np.maximum(silicon.sustained_flop_s("bf16"), silicon.sustained_flop_s("fp16"))
    sixteen = np.maximum(sixteen, 1.0)
    sixteen_peak = silicon.sixteen_bit_peak_flop_s
    if precision == "bf16":
        return sixteen, sixteen, sixteen_peak
    low = silicon.sustained_flop_s(precision)
    low_peak = silicon.peak_flop_s[precision]
    return np.maximum(low, sixteen), sixteen, np.maximum(low_peak, sixteen_peak)


def _sixteen_bit_flops_per_unit_cycle(designs: Designs, rows: slice) -> FloatArray:
    """16-bit tensor FLOPs per cycle per compute unit of the designs at ``rows`` (bf16, or fp16
    where the chip has no bf16), shape ``(n,)``, never 0."""
    sixteen = np.maximum(
        designs.bf16_flops_per_cycle_per_unit[rows], designs.fp16_flops_per_cycle_per_unit[rows]
    )
    return np.maximum(sixteen, 1e-12)


def exp_per_sixteen_bit_flop(designs: Designs, rows: slice = slice(None)) -> FloatArray:
    """§2.6 Exponentials per 16-bit tensor FLOP at any clock of the designs at ``rows``, shape
    ``(n,)``: the special-function units and the tensor units share the clock, so the
    sustained exponential rate is the sustained 16-bit rate times this ratio."""
    return designs.exp_per_cycle_per_unit[rows] / _sixteen_bit_flops_per_unit_cycle(designs, rows)


def unit_cycles_per_sixteen_bit_flop(designs: Designs, rows: slice = slice(None)) -> FloatArray:
    """§2.11 Compute-unit cycles per 16-bit tensor FLOP of the designs at ``rows``, shape
    ``(n,)``: the sustained 16-bit rate times this is the units' cycles per second at the
    clock they sustain (SMs × clock on a GPU), the rate of kernels bound by neither the tensor
    units nor HBM (:data:`~dse.model.training.compute.SSD_CYCLES_PER_TOKEN_CHANNEL`)."""
    return 1.0 / _sixteen_bit_flops_per_unit_cycle(designs, rows)


def take(value: Any, index: np.ndarray | slice) -> Any:
    """``value`` (a result dataclass, dict of arrays or array of shape ``(n,)``) at ``index``."""
    if isinstance(value, np.ndarray):
        return value[index]
    if isinstance(value, dict):
        return {k: take(v, index) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return replace(
            value, **{f.name: take(getattr(value, f.name), index) for f in fields(value)}
        )
    return value


@dataclass(frozen=True)
class Grid:
    """One chunk of designs (``rows``) against every candidate plan.

    Plan axis, shape ``(1, k)``: parallelism degrees (``etp`` the ranks each routed expert is
    split over, §2.4), micro-batch (sequences), recompute code
    and the share of a stage's layers it applies to, ZeRO stage
    (0-3; :attr:`fsdp` where it is 3), pipeline schedule code (:attr:`dual`), whether
    pipeline stages sit inside the data-parallel replicas (placement ``tp-pp-dp``), layers per stage whose activations are
    offloaded, the pinned sharding group ``dp_shard`` (None where every plan shards over the
    whole data-parallel axis). Design axis, shape ``(n, 1)``: cluster size, scale-up domain (chips),
    link bandwidths per direction (scale-up and scale-out at the share of them the family's
    collective library reaches, §2.7; host) and achieved HBM bandwidth (bytes/s), usable HBM
    (bytes; the capacity in GiB, §2.4), sustained matmul / 16-bit / attention score-matmul rates
    (the last fp8 where the workload's attention is, §2.6) and nominal peak (FLOP/s), sustained
    exponentials/s and compute-unit cycles/s, whether the matmuls run in the workload's fp8/fp4 format (faster than 16-bit), family efficiency scale, the family's collective latencies over
    NCCL's (§2.7).
    """

    rows: slice
    tp: FloatArray
    pp: FloatArray
    ep: FloatArray
    etp: FloatArray
    mb: FloatArray
    vp: FloatArray
    cp: FloatArray
    rc: np.ndarray
    rc_share: FloatArray
    zero: FloatArray
    schedule: FloatArray
    pp_inner: np.ndarray
    offload: FloatArray
    pinned_dp: FloatArray | None
    dp_shard: FloatArray | None
    tp_searched: bool
    chips: FloatArray
    domain: FloatArray
    up_b_s: FloatArray
    out_b_s: FloatArray
    pod_chips: FloatArray
    oversubscription: FloatArray
    in_network: np.ndarray
    mesh: np.ndarray
    host_b_s: FloatArray
    hbm_b_s: FloatArray
    capacity_b: FloatArray
    gemm_rate: FloatArray
    attention_rate: FloatArray
    score_rate: FloatArray
    exp_rate: FloatArray
    unit_cycle_rate: FloatArray
    low_precision: np.ndarray
    peak_rate: FloatArray
    family_scale: FloatArray
    attention_scale: FloatArray
    attention_fixed_tokens: FloatArray
    flash2_ratio: FloatArray
    latency_scale: FloatArray
    matrix_unit: FloatArray

    @property
    def pods_split(self) -> bool:
        """Whether some design's cluster spans more than one pod of its fabric (§2.7); where
        none does, no traffic leaves a pod and the pod arithmetic is skipped."""
        return bool(np.any(self.pod_chips < self.chips))

    @property
    def expert_ranks(self) -> FloatArray:
        """Ranks that hold one copy of a stage's routed experts, ``ep·etp``, plan axis (§2.4)."""
        return self.ep * self.etp

    @property
    def fsdp(self) -> np.ndarray:
        """Where the plan is FSDP (ZeRO stage 3), plan axis."""
        return self.zero == 3

    @property
    def dual(self) -> np.ndarray:
        """Where the plan runs DualPipe, plan axis."""
        return self.schedule == DUALPIPE

    def cells(self, design: np.ndarray, plan: np.ndarray) -> Grid:
        """The grid of the cells ``(design[i], plan[i])`` only: every array becomes shape
        ``(m,)`` (``design`` indexes this grid's rows, ``plan`` its plans), so the mechanisms
        evaluate exactly those cells, element by element, with the same arithmetic."""
        changes: dict[str, object] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, np.ndarray):
                continue
            changes[field.name] = value[0, plan] if field.name in PLAN_FIELDS else value[design, 0]
        return replace(self, **changes)  # type: ignore[arg-type]


PLAN_FIELDS = frozenset(
    (
        "tp", "pp", "ep", "etp", "mb", "vp", "cp", "rc", "rc_share", "zero", "schedule", "pp_inner",
        "offload", "pinned_dp", "dp_shard",
    )
)  # fmt: skip
"""The fields of :class:`Grid` along the plan axis; the other arrays run along the designs."""


def build_grid(
    designs: Designs,
    silicon: Silicon,
    precision: str,
    plans: Plans,
    settings: Settings,
    rows: slice,
    attention_precision: str = "bf16",
) -> Grid:
    """The plan axis of ``plans`` and the design axis of ``designs[rows]``; ``precision`` and
    ``attention_precision`` the workload's formats of its linear layers and its attention."""

    def col(array: np.ndarray) -> FloatArray:
        return array[rows][:, None]

    def plan(array: np.ndarray) -> np.ndarray:
        return array[None, :]

    s = settings
    # the rates of this chunk's designs only: the whole run's arrays would cost each chunk
    chunk = take(silicon, rows)
    gemm, sixteen, peak = precision_flop_s(chunk, precision)
    if attention_precision == "fp8":
        score = fp8_attention_rate(chunk, designs.fp8_attention_efficiency_scale[rows], sixteen)
    else:
        score = sixteen
    gemm, attention, peak, score = (r[:, None] for r in (gemm, sixteen, peak, score))
    # §2.7 the family's collective library reaches this share of NCCL's fraction of the links
    link_share = col(designs.collective_efficiency_scale)
    return Grid(
        rows=rows,
        tp=plan(plans.tp),
        pp=plan(plans.pp),
        ep=plan(plans.ep),
        etp=plan(plans.expert_tensor_parallel),
        mb=plan(plans.microbatch),
        vp=plan(plans.virtual_stages),
        cp=plan(plans.context_parallel),
        rc=plan(plans.recompute),
        rc_share=plan(plans.recomputed_share),
        zero=plan(plans.zero_stage),
        schedule=plan(plans.schedule_code),
        pp_inner=plan(plans.pipeline_inner) > 0,
        offload=plan(plans.offloaded_layers),
        pinned_dp=plan(plans.dp) if plans.dp.any() else None,
        dp_shard=_pinned_shard(plans),
        tp_searched=plans.tp_searched,
        chips=col(designs.num_chips),
        domain=col(designs.scale_up_domain),
        up_b_s=col(designs.scale_up_bandwidth_gb_s) * GIGA / 2.0 * link_share,
        out_b_s=col(designs.scale_out_bandwidth_gb_s) * GIGA * link_share,
        pod_chips=col(designs.fabric_pod_chips),
        oversubscription=col(designs.fabric_oversubscription),
        in_network=col(designs.in_network_reduction) > 0,
        mesh=col(designs.scale_up_mesh) > 0,
        host_b_s=col(designs.host_bandwidth_gb_s) * GIGA,
        hbm_b_s=col(silicon.memory_bandwidth_tb_s)
        * TERA
        * s.hbm_efficiency
        * col(designs.hbm_efficiency_scale),
        capacity_b=usable_memory_b(
            col(silicon.memory_capacity_gb), s, col(designs.memory_reserve_fraction)
        ),
        gemm_rate=gemm,
        attention_rate=attention,
        score_rate=score,
        exp_rate=attention * exp_per_sixteen_bit_flop(designs, rows)[:, None],
        unit_cycle_rate=attention * unit_cycles_per_sixteen_bit_flop(designs, rows)[:, None],
        low_precision=gemm > attention,
        peak_rate=peak,
        family_scale=col(designs.gemm_efficiency_scale),
        attention_scale=attention_scale(
            col(designs.attention_efficiency_scale), col(designs.gemm_efficiency_scale)
        ),
        attention_fixed_tokens=col(designs.attention_fixed_tokens),
        flash2_ratio=col(designs.flash2_attention_ratio),
        latency_scale=col(designs.collective_latency_scale),
        matrix_unit=col(designs.matrix_unit_dim),
    )


def fp8_attention_rate(silicon: Silicon, scale: FloatArray, sixteen: FloatArray) -> FloatArray:
    """§2.6 The rate (FLOP/s) of FP8 dot-product attention's score matmuls, shape ``(n,)``: the
    chip's sustained fp8 rate at its family's ``fp8_attention_efficiency_scale`` ``scale`` (the
    FP8 kernel's efficiency over the 16-bit kernel's, measured), never below the 16-bit rate
    ``sixteen`` (:func:`precision_flop_s`; a run would not pick a slower kernel), and the 16-bit
    rate where no FP8 kernel is measured (NaN)::

        R_att,fp8 = max(ε_fp8 · R_fp8, R_16)
    """
    fp8 = silicon.sustained_flop_s("fp8") * np.where(np.isnan(scale), 0.0, scale)
    return np.maximum(fp8, sixteen)


def attention_scale(own: FloatArray, gemm_scale: FloatArray) -> FloatArray:
    """§2.6 A design's scale on the measured attention efficiency: its family's own, measured
    on the family's attention kernels (``attention_efficiency_scale``), where one is (``own``
    not NaN); else its ``gemm_efficiency_scale``, which then stands for attention as for the
    GEMMs."""
    return np.where(np.isnan(own), gemm_scale, own)


def usable_memory_b(
    capacity_gb: FloatArray, s: Settings, family_reserve: FloatArray | float = np.nan
) -> FloatArray:
    """§2.4 Memory a plan may fill (bytes): the capacity, binary as DRAM is built (GiB), less
    the reserve: the share the chip family's runtime keeps (``family_reserve``, the design's
    ``memory_reserve_fraction``) where one is published, else the settings' reserve for an
    eager allocator's workspace, fragmentation and communication buffers."""
    reserve = np.where(np.isnan(family_reserve), s.memory_reserve_fraction, family_reserve)
    return capacity_gb * BYTES_PER_GIB * (1.0 - reserve)


def _pinned_shard(plans: Plans) -> FloatArray | None:
    """§2.1 The plans' pinned ``dp_shard`` along the plan axis, ``(1, k)`` (0 where a plan shards
    over the whole data-parallel axis), or None where no plan pins it (today's arithmetic)."""
    if plans.dp_shard is None or not plans.hybrid_sharded.any():
        return None
    return plans.dp_shard[None, :]
