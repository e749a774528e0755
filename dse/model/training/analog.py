"""§2.9 Training on designs with analog in-memory compute (AIMC) tiles; arrays ``(n,)``.

What runs where (docs/model.md §2.9):

* the analog tiles run the forward and the input-gradient matmul of every weight layer (two of
  its three GEMMs), weights stationary in the arrays;
* the digital tensor units run the weight-gradient GEMM, attention scores, nonlinearities,
  normalization and the optimizer, from a digital master copy of the weights, gradients and
  optimizer state in HBM (memory is counted as on a digital chip);
* after every optimizer step the updated weights are programmed into the arrays (one write per
  cell per step); where a chip's share of the weights exceeds its arrays' capacity, the arrays
  are rewritten twice per step (forward and backward pass) for every capacity's worth of weights
  they hold in turn, assuming a schedule that runs all micro-batches of a step through one
  resident set before the next (optimistic);
* tiles hold only the weights of their chip's pipeline stage and tensor shard, so only the
  tiles holding weights compute: the analog rate is peak × min(1, weights per chip / capacity).

The digital part is the ordinary plan search on a workload view whose linear layers run one GEMM
digitally (:func:`digital_view`). The search compares every plan's digital step time plus its
arrays' time (:func:`array_step`, through :func:`array_step_extra`), so the arrays' capacity
bounds the weights per chip the way it costs time: a plan that shards the weights more (tensor
and pipeline parallelism) saves the rewrites of weights that overflow the arrays, and is chosen
where that is faster. Endurance bounds it the way memory does: a plan whose weight writes over
the run exceed the cells' endurance is taken only where every plan that fits does (then
``g_endurance`` > 0 flags the design). This module then adds the analog time, the weight writes and their energy
to the chosen plan, and the endurance and precision constraints.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from dse.catalog.technology import Technology
from dse.catalog.workloads import Workload, flops_per_token
from dse.designs import Designs, FloatArray
from dse.model.plans import Plans
from dse.model.silicon import Analog, Silicon
from dse.model.training.compute import recompute_factors
from dse.model.training.grid import Grid, precision_flop_s, take
from dse.model.training.step import StepModel, Training
from dse.settings import Settings
from dse.units import BITS_PER_BYTE, PICO, TERA


def digital_view(w: Workload) -> Workload:
    """The workload as the digital units of an analog design see it: the weight updates of
    each linear layer (backprop: one GEMM of three)."""
    return replace(w, analog_linear=True)


def merge(parts: list[tuple[np.ndarray, Training]], n: int) -> Training:
    """One :class:`Training` of ``n`` rows from parts evaluated on disjoint row ``index``es."""
    out: dict[str, np.ndarray] = {}
    for f in fields(Training):
        first = getattr(parts[0][1], f.name)
        column = np.empty(n, dtype=first.dtype)
        for index, part in parts:
            column[index] = getattr(part, f.name)
        out[f.name] = column
    return Training(**out)


def weights_per_chip(w: Workload, tp: FloatArray, pp: FloatArray, ep: FloatArray) -> FloatArray:
    """§2.9 Weights one chip's arrays must hold: its tensor shard of its pipeline stage, the
    routed experts sharded by expert parallelism (``ep``; ``ep·etp`` where each expert is
    split over ``etp`` ranks)."""
    experts = w.expert_params
    return (w.total_params - experts) / (tp * pp) + experts / (pp * ep)


def writes_per_step(a: Analog, resident: FloatArray) -> FloatArray:
    """§2.9 Passes over the arrays per step with ``resident`` weights per chip: one after the
    optimizer step, or two per capacity's worth where the weights overflow the arrays."""
    overflow = resident / a.weight_capacity
    return np.where(overflow <= 1.0, 1.0, 2.0 * overflow)


@dataclass(frozen=True)
class ArrayStep:
    """§2.9 The arrays' share of one step on one chip, per cell (shapes broadcast): analog
    FLOPs, their time, the weight writes per step (passes over the arrays), the weights held
    at once and the time to program them."""

    analog_flops: FloatArray
    analog_s: FloatArray
    writes_per_step: FloatArray
    held: FloatArray
    write_s: FloatArray


def array_step(
    a: Analog,
    memory_b_s: FloatArray,
    w: Workload,
    tp: FloatArray,
    pp: FloatArray,
    ep: FloatArray,
    rc: np.ndarray,
    rc_share: FloatArray,
    chips_used: FloatArray,
    bubble_fraction: FloatArray,
) -> ArrayStep:
    """§2.9 The arrays' time of a plan (``tp``, ``pp``, ``ep`` the ranks one copy of the routed
    experts spans, i.e. ``ep·etp``, recompute ``rc`` on a share
    ``rc_share`` of the layers) on the chips
    ``a`` (arrays broadcasting against the plan's), reading the weights to program at
    ``memory_b_s`` (bytes/s: HBM, or on-chip SRAM on a chip without HBM)."""
    redo = recompute_factors(rc, w, rc_share).matmul
    matmul_per_token, _ = flops_per_token(w)
    tokens_step = w.global_batch_sequences * w.seq_len
    analog_share = w.analog_linear_gemms / w.linear_gemms
    analog_flops = analog_share * tokens_step * matmul_per_token * redo / chips_used
    resident = weights_per_chip(w, tp, pp, ep)
    used = np.minimum(resident / a.weight_capacity, 1.0)
    # Pipeline bubbles stretch the arrays' time like the digital units'.
    analog_s = analog_flops / (a.peak_flop_s * used) / (1.0 - bubble_fraction)
    writes = writes_per_step(a, resident)
    held = np.minimum(resident, a.weight_capacity)
    # Programming is row-serial in each tile (all tiles in parallel), and the weights come
    # from memory at the cells' effective bits.
    write_s = writes * np.maximum(
        a.rows * a.row_write_s, held * a.effective_bits / BITS_PER_BYTE / memory_b_s
    )
    return ArrayStep(analog_flops, analog_s, writes, held, write_s)


def memory_b_s(silicon: Silicon, settings: Settings) -> FloatArray:
    """Achieved bandwidth (bytes/s) the weights are programmed from, shape ``(n,)``."""
    return silicon.memory_bandwidth_tb_s * TERA * settings.hbm_efficiency


def steps_per_run(w: Workload) -> float:
    """Optimizer steps of the run: training tokens over tokens per step (as §2.8 counts)."""
    return w.tokens / (w.global_batch_sequences * w.seq_len)


def endurance_margin(a: Analog, writes: FloatArray, w: Workload) -> FloatArray:
    """§2.9 ``g_endurance``: the run's writes per cell (``writes`` per step) over the cells'
    endurance, minus 1."""
    return steps_per_run(w) * writes / a.endurance_cycles - 1.0


@dataclass(frozen=True)
class ArrayExtra:
    """§2.9 The plan search's hook (:class:`~dse.model.training.step.StepExtra`) for designs
    with tiles: the arrays' time of every (design, plan) cell, to add to the digital step, and
    whether the cell's weight writes stay within the cells' endurance (``g_endurance`` ≤ 0).
    ``analog`` and ``bandwidth`` (bytes/s the weights are programmed from) are of the designs
    searched, shape ``(n,)``."""

    analog: Analog
    bandwidth: FloatArray
    w: Workload

    def allowed_plans(self, index: np.ndarray, g: Grid) -> np.ndarray:
        """Whether each cell of designs ``index`` × the plans of ``g`` lasts (broadcast)."""
        cells = take(self.analog, index)
        writes = writes_per_step(cells, weights_per_chip(self.w, g.tp, g.pp, g.expert_ranks))
        return endurance_margin(cells, writes, self.w) <= 0.0

    def __call__(self, index: np.ndarray, g: Grid, m: StepModel) -> tuple[FloatArray, np.ndarray]:
        lay = m.lay
        cells = take(self.analog, index)
        t = array_step(
            cells,
            self.bandwidth[index],
            self.w,
            g.tp,
            g.pp,
            g.expert_ranks,
            g.rc,
            g.rc_share,
            lay.dp * lay.replica,
            m.slots / (lay.microbatches + m.slots),
        )
        return t.analog_s + t.write_s, endurance_margin(cells, t.writes_per_step, self.w) <= 0.0


def array_step_extra(silicon: Silicon, w: Workload, settings: Settings) -> ArrayExtra:
    """§2.9 The plan search's hook for the designs of ``silicon`` (all with tiles), so that it
    weighs the arrays' capacity and prefers the plans whose writes the cells survive."""
    a = silicon.analog
    return ArrayExtra(a, np.broadcast_to(memory_b_s(silicon, settings), a.tiles.shape), w)


def analog_training(
    designs: Designs,
    silicon: Silicon,
    training: Training,
    plans: Plans,
    w: Workload,
    settings: Settings,
    technology: Technology,
) -> tuple[Training, dict[str, FloatArray]]:
    """§2.9 ``training`` with the analog time, writes and energy added on designs with tiles,
    and the constraints ``g_endurance`` and ``g_precision`` (−1 on digital designs)."""
    a = silicon.analog
    n = len(designs)
    g_endurance = np.full(n, -1.0)
    g_precision = np.full(n, -1.0)
    rows = np.flatnonzero(a.present)
    if rows.size == 0:
        return training, {"g_endurance": g_endurance, "g_precision": g_precision}
    t = take(training, rows)
    an = take(a, rows)
    index = t.plan_index
    # Settings drawn per design (dse sensitivity, dse robust) cut to the rows with tiles.
    row_settings = settings.at_rows(rows)  # type: ignore[arg-type]
    bandwidth = np.broadcast_to(memory_b_s(take(silicon, rows), row_settings), rows.shape)
    arrays = array_step(
        an,
        bandwidth,
        w,
        plans.tp[index],
        plans.pp[index],
        plans.ep[index] * plans.expert_tensor_parallel[index],
        plans.recompute[index],
        plans.recomputed_share[index],
        t.chips_used,
        t.bubble_fraction,
    )
    writes = arrays.writes_per_step
    cells = arrays.held * an.devices_per_weight
    write_j = writes * cells * an.write_energy_pj * PICO
    analog_j = arrays.analog_flops * an.energy_pj_per_flop * PICO
    extra_s = arrays.analog_s + arrays.write_s
    step = t.step_time_s + extra_s
    static_w = silicon.static_power_w[rows]
    power = (t.avg_chip_power_w * t.step_time_s + static_w * extra_s + analog_j + write_j) / step
    power = np.minimum(power, designs.tdp_w[rows])
    digital_peak = precision_flop_s(take(silicon, rows), w.precision)[2]
    peak_ratio = digital_peak / (digital_peak + an.peak_flop_s)
    slower = t.step_time_s / step
    adjusted = replace(
        t,
        step_time_s=step,
        compute_time_s=t.compute_time_s + extra_s,
        training_time_s=t.steps * step / row_settings.goodput,
        mfu=t.mfu * slower * peak_ratio,
        hfu=t.hfu * slower * peak_ratio,
        avg_chip_power_w=power,
    )
    out = merge([(np.flatnonzero(~a.present), take(training, ~a.present)), (rows, adjusted)], n)
    g_endurance[rows] = endurance_margin(an, writes, w)
    g_precision[rows] = technology.min_training_bits / an.effective_bits - 1.0
    return out, {"g_endurance": g_endurance, "g_precision": g_precision}
