"""§2.4 and §2.8 Step time of every plan, the plan choice, and the results at the chosen plan.

Each chunk of designs runs the mechanisms in order — layout (§2.4), memory (§2.1, §2.5),
compute (§2.3, §2.6), stage communication and the pipeline schedule (§2.7), data parallelism
(§2.7) — then keeps the plans that fit and picks the fastest per design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dse.catalog.workloads import Workload, flops_per_token
from dse.designs import Designs, FloatArray
from dse.model.plans import Plans
from dse.model.silicon import Silicon
from dse.model.training.collectives import (
    StageCommunication,
    data_parallel_exposed_s,
    stage_communication,
)
from dse.model.training.compute import Compute, compute
from dse.model.training.grid import Grid, build_grid
from dse.model.training.memory import Memory, memory, memory_parts, state_bytes_per_param
from dse.model.training.parallelism import Layout, layout
from dse.model.training.power import average_power_w
from dse.model.training.schedule import pipeline_bubble_slots
from dse.settings import Settings
from dse.units import GIGA

CHUNK_CELLS = 40_000
"""Design × plan cells evaluated at once: small enough that the temporaries stay in the CPU's
caches (~2x faster than 400k cells on this project's machines), large enough to amortize
Python overhead; also bounds the plan search's memory."""
MIN_CHUNK_DESIGNS = 16
"""Designs per chunk however many plans there are, so that Python overhead stays amortized."""


@dataclass(frozen=True)
class Training:
    """Per-design results at the chosen plan; every array has shape ``(n,)``.

    Times in seconds unless the name says otherwise; memory in GB (1e9 bytes); FLOPs per step
    count the whole cluster; ``memory_<kind>_gb`` split ``memory_per_chip_gb`` by the kinds of
    :data:`~dse.model.training.memory.MEMORY_PARTS`. ``plan_index`` points into the candidate
    :class:`Plans`; designs with no plan that fits get the plan that needs the least memory and
    ``fits = False``.
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
    host_offload_time_s: FloatArray
    dp_exposed_time_s: FloatArray
    optimizer_time_s: FloatArray
    bubble_fraction: FloatArray
    memory_per_chip_gb: FloatArray
    memory_capacity_gb: FloatArray
    memory_weights_gb: FloatArray
    memory_gradients_gb: FloatArray
    memory_optimizer_state_gb: FloatArray
    memory_activations_gb: FloatArray
    memory_logits_gb: FloatArray
    memory_working_gb: FloatArray
    model_flops_per_step: FloatArray
    hardware_flops_per_step: FloatArray
    steps: FloatArray
    training_time_s: FloatArray
    mfu: FloatArray
    hfu: FloatArray
    fits: np.ndarray
    avg_chip_power_w: FloatArray


def evaluate_training(
    designs: Designs,
    silicon: Silicon,
    workload: Workload,
    plans: Plans,
    settings: Settings,
    *,
    exhaustive: bool = False,
    extra_s: StepExtra | None = None,
) -> Training:
    """Search the plans for every design and return the results at the fastest plan that fits.

    The bounded search (:mod:`dse.model.training.plan_search`) skips the plans that cannot
    win; ``exhaustive=True`` evaluates every plan (the reference; same results). ``extra_s``
    adds a non-negative time per cell to the step time the search compares (not to the
    results) and says which cells are allowed: the analog arrays' time and endurance of §2.9,
    so that the choice weighs the arrays' capacity and prefers plans whose weight writes the
    cells survive.
    """
    from dse.model.training.plan_search import (
        MIN_CELLS,
        MIN_PLANS,
        plan_bounds,
        search_chunk,
        search_chunk_designs,
    )

    n = len(designs)
    # Settings drawn per design (dse sensitivity, dse robust) take the exhaustive search, whose
    # grid carries them as columns; the bounds are per plan, for one set of settings.
    if exhaustive or settings.per_design or len(plans) < MIN_PLANS or n * len(plans) < MIN_CELLS:
        chunk = max(MIN_CHUNK_DESIGNS, CHUNK_CELLS // max(len(plans), 1))
        starts = range(0, n, chunk) if n else range(1)
        parts = [
            _evaluate_chunk(
                designs, silicon, workload, plans, settings, slice(a, min(a + chunk, n)), extra_s
            )
            for a in starts
        ]
    else:
        bounds = plan_bounds(plans, workload, settings)
        chunk = search_chunk_designs(len(plans), extra_s)
        starts = range(0, n, chunk) if n else range(1)
        parts = [
            search_chunk(
                designs,
                silicon,
                workload,
                plans,
                settings,
                slice(a, min(a + chunk, n)),
                bounds,
                extra_s,
            )
            for a in starts
        ]
    return Training(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in Training.__dataclass_fields__
        }
    )


class StepExtra(Protocol):
    """What a design adds to the plan search beyond the digital step (§2.9, analog tiles).

    Called with the cells' design indices (into the designs searched, shaped as the grid's
    design axis), the cells and their step model: the seconds beyond the digital step of every
    cell (≥ 0, so the plan search's lower bounds still hold) and whether the cell is allowed
    (the run's weight writes within the analog cells' endurance). ``allowed_plans`` says the
    same from the designs and the plans alone, before any cell is evaluated. The choice takes
    the fastest allowed plan that fits; where no plan that fits is allowed, the fastest that
    fits (its constraint then reports the violation, as ``g_endurance`` does)."""

    def __call__(
        self, index: np.ndarray, g: Grid, m: StepModel
    ) -> tuple[FloatArray, np.ndarray]: ...

    def allowed_plans(self, index: np.ndarray, g: Grid) -> np.ndarray: ...


def compared_step_s(
    m: StepModel, g: Grid, index: np.ndarray, extra_s: StepExtra | None
) -> tuple[FloatArray, np.ndarray | bool]:
    """The step time the plan choice compares (the step model's plus ``extra_s``'s seconds)
    and whether each cell is allowed (``True`` without ``extra_s``)."""
    if extra_s is None:
        return m.step_s, True
    seconds, allowed = extra_s(index, g, m)
    return m.step_s + seconds, allowed


@dataclass(frozen=True)
class StepModel:
    """Every mechanism of one step on a grid of cells (``(n, k)`` or ``(m,)``)."""

    lay: Layout
    mem: Memory
    comp: Compute
    comm: StageCommunication
    slots: FloatArray
    stage_s: FloatArray
    dp_s: FloatArray
    optimizer_s: FloatArray
    step_s: FloatArray
    fits: np.ndarray
    capacity_b: FloatArray

    @property
    def over(self) -> FloatArray:
        """Memory per chip over usable capacity (the fallback's score when nothing fits)."""
        return self.mem.total_b / self.capacity_b


def fit_model(g: Grid, w: Workload, s: Settings) -> tuple[Layout, Memory, np.ndarray]:
    """§2.4, §2.1, §2.5 Layout, memory per chip and whether the plan runs and fits, per cell."""
    lay = layout(g, w)
    mem = memory(g, lay, w, s)
    return lay, mem, lay.valid & (mem.total_b <= g.capacity_b)


def step_model(g: Grid, w: Workload, s: Settings) -> StepModel:
    """§2.4–§2.8 Step time, memory and fit of every cell of ``g``."""
    lay, mem, fits = fit_model(g, w, s)
    comp = compute(g, lay, mem.elementwise_b, w, s)
    comm = stage_communication(g, lay, comp, mem, w, s)
    stage_s = slowest_stage_s(
        comp.total_s + comm.total_s, comp.logits_s, comm.pp_s, g, w, comp.embedding_s
    )
    slots = pipeline_bubble_slots(g.pp, g.vp, g.schedule)
    pipeline_s = (lay.microbatches + slots) * stage_s
    dp_s = data_parallel_exposed_s(g, lay, stage_s, pipeline_s, w, s)
    # The optimizer step reads and writes every state of the parameters this rank updates; the
    # step's fixed time comes on top, however few tokens each chip processes (§2.8).
    optimizer_s = (
        2.0 * mem.updated_params * state_bytes_per_param(s) / g.hbm_b_s + s.step_overhead_ms * 1e-3
    )
    step_s = pipeline_s + dp_s + optimizer_s
    return StepModel(
        lay, mem, comp, comm, slots, stage_s, dp_s, optimizer_s, step_s, fits, g.capacity_b
    )


def compute_parts_s(g: Grid, w: Workload, s: Settings) -> dict[str, FloatArray]:
    """§2.6 The compute of one micro-batch on one pipeline stage (⌈L/p⌉ layers and the output
    layer) of every cell of ``g``, split into the terms of ``T_comp`` (s, each of the grid's
    shape): the linear layers and attention, each with its recomputation, the memory-bound
    operators (with theirs), the output layer's GEMMs, what the MoE layers' host-bound
    kernels add (``moe_kernels``) and a one-hot embedding's GEMMs; ``total`` is their sum, ``Compute.total_s``. The step's
    ``compute_time_s`` is ``total`` times the micro-batches where the plan has one stage and
    no multi-token-prediction modules (the slowest stage and the bubble otherwise, §2.7)."""
    lay, mem, _ = fit_model(g, w, s)
    comp = compute(g, lay, mem.elementwise_b, w, s)
    parts = {
        "linear_layers": comp.matmul_s * comp.matmul_redo,
        "attention": comp.attention_s * comp.attention_redo,
        "memory_bound": comp.memory_s,
        "output_layer": comp.logits_s,
        "moe_kernels": comp.moe_host_s,
        "embedding": comp.embedding_s,
        "total": comp.total_s,
    }
    return {name: np.broadcast_to(value, np.shape(comp.total_s)) for name, value in parts.items()}


def slowest_stage_s(
    stage_s: FloatArray,
    logits_s: FloatArray,
    boundary_s: FloatArray,
    g: Grid,
    w: Workload,
    embedding_s: FloatArray | float = 0.0,
) -> FloatArray:
    """§2.7 Seconds per micro-batch of the pipeline's slowest rank, from ``stage_s``: one
    micro-batch on a stage of ⌈L/p⌉ layers with the output layer's GEMMs (``logits_s``) and its
    sends to the neighbouring stages (``boundary_s``). Only the last stage runs the output layer
    and the ``M`` multi-token-prediction modules (a layer and the output layer again each);
    only the first runs a one-hot embedding's GEMMs (``embedding_s``, part of ``stage_s``).
    Where the layers do not divide evenly, the stacks give the last stage one of the short
    stages of ⌊L/p⌋ layers (Llama 3: a layer fewer on the first and the last stage,
    arXiv:2407.21783 Sec. 3.3.2; the Zero Bubble code pads the last stage first,
    ``allow_padding_num_layers``; Megatron-Core's ``account_for_loss_in_pipeline_split``)::

        T_first = T − T_logits,   T_layer = (T − T_logits − T_embed − T_p2p)/⌈L/p⌉
        T_last  = T − T_embed − (⌈L/p⌉ − ⌊L/p⌋)·T_layer + M·(T_layer + T_logits)
        T_stage = max(T_first, T_last)              (1F1B, interleaved, ZB-H1)
        T_stage = max(T_first, (T_first + T_last)/2)  (DualPipe)

    DualPipe keeps the first and the last stage on one rank (DeepSeek-V3 report, Sec. 3.2.1:
    the embedding and the output head on the same rank), which runs each micro-batch in one of
    them. ``T`` (plus the modules) without pipeline parallelism."""
    longest = np.ceil(w.layers / g.pp)
    shortest = np.floor(w.layers / g.pp)
    per_layer_s = (stage_s - logits_s - embedding_s - boundary_s) / longest
    modules_s = w.mtp_layers * (per_layer_s + logits_s)
    first = stage_s - logits_s
    last = stage_s - embedding_s - (longest - shortest) * per_layer_s + modules_s
    slowest = np.where(g.dual, np.maximum(first, 0.5 * (first + last)), np.maximum(first, last))
    return np.where(g.pp > 1, slowest, stage_s + modules_s)


def _evaluate_chunk(
    designs: Designs,
    silicon: Silicon,
    w: Workload,
    plans: Plans,
    s: Settings,
    rows: slice,
    extra_s: StepExtra | None = None,
) -> Training:
    """The exhaustive search (the reference): every plan's step time and memory for
    ``designs[rows]``, then the chosen plan's results."""
    # Settings given per design (drawn constants) as columns (n, 1) of the (designs × plans)
    # grid, and as rows (n,) where the chosen plan's results use them.
    grid_s = s.at_rows(rows, column=True)
    g = build_grid(designs, silicon, w.precision, plans, grid_s, rows, w.attention_precision)
    model = step_model(g, w, grid_s)
    index = np.arange(rows.start, rows.stop)[:, None]
    step, allowed = compared_step_s(model, g, index, extra_s)
    best, any_fit = _choose(step, model.fits, model.lay.valid, model.over, allowed)
    return chosen_results(designs, silicon, w, s.at_rows(rows), g, best, any_fit)


def chosen_results(
    designs: Designs,
    silicon: Silicon,
    w: Workload,
    s: Settings,
    g: Grid,
    best: np.ndarray,
    any_fit: np.ndarray,
) -> Training:
    """The results of ``designs[g.rows]`` at plan ``best`` (indices into the plans), shape
    ``(n,)``: the model is evaluated once more on exactly those cells."""
    rows = g.rows
    n = best.shape[0]
    c = g.cells(np.arange(n), best)
    m = step_model(c, w, s)
    lay, mem, comp, comm = m.lay, m.mem, m.comp, m.comm

    def pick(value: np.ndarray | float) -> np.ndarray:
        return np.broadcast_to(value, (n,))

    chosen_mb, chosen_slots = pick(lay.microbatches), pick(m.slots)
    chips_used = pick(lay.dp * lay.replica)
    step = pick(m.step_s)
    matmul_redo, attention_redo = pick(comp.matmul_redo), pick(comp.attention_redo)
    # §3.1 HBM traffic: memory-bound operators and stored attention scores per micro-batch,
    # and the weights and optimizer states once.
    hbm_bytes = pick(
        mem.elementwise_b * lay.layers_per_stage + comp.score_b
    ) * chosen_mb + 2.0 * pick(mem.static_b)
    power = average_power_w(
        silicon,
        w,
        s,
        rows,
        step_s=step,
        chips_used=chips_used,
        matmul_redo=matmul_redo,
        attention_redo=attention_redo,
        hbm_bytes=hbm_bytes,
        tdp_w=designs.tdp_w[rows],
    )
    flops = _step_flops(w, matmul_redo, attention_redo)
    peak = pick(c.peak_rate)
    parts = {f"memory_{kind}_gb": pick(b) / GIGA for kind, b in memory_parts(c, lay, w, s).items()}
    steps = w.tokens / (w.global_batch_sequences * w.seq_len)
    return Training(
        plan_index=best,
        dp=pick(lay.dp),
        chips_used=chips_used,
        microbatches=chosen_mb,
        step_time_s=step,
        # the slowest stage's compute: its time less the communication reported below
        compute_time_s=(chosen_mb + chosen_slots) * pick(m.stage_s - comm.total_s),
        tp_comm_time_s=chosen_mb * pick(comm.tp_s),
        pp_comm_time_s=chosen_mb * pick(comm.pp_s),
        moe_comm_time_s=chosen_mb * pick(comm.moe_s),
        cp_comm_time_s=chosen_mb * pick(comm.cp_s),
        host_offload_time_s=chosen_mb * pick(comm.host_s),
        dp_exposed_time_s=pick(m.dp_s),
        optimizer_time_s=pick(m.optimizer_s),
        bubble_fraction=chosen_slots / (chosen_mb + chosen_slots),
        memory_per_chip_gb=pick(mem.total_b) / GIGA,
        memory_capacity_gb=silicon.memory_capacity_gb[rows],
        **parts,
        model_flops_per_step=np.full(step.shape, flops[0]),
        hardware_flops_per_step=flops[1],
        steps=np.full(step.shape, steps),
        training_time_s=steps * step / s.goodput,
        mfu=flops[0] / (step * chips_used * peak),
        hfu=flops[1] / (step * chips_used * peak),
        fits=any_fit,
        avg_chip_power_w=power,
    )


def _choose(
    step_s: FloatArray,
    fits: np.ndarray,
    valid: np.ndarray,
    over: FloatArray,
    allowed: np.ndarray | bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """§2.4 The fastest plan that fits and is ``allowed`` (§2.9 endurance) per design; else the
    fastest that fits; else the valid one needing least memory. Returns the plan per design
    and whether it fits in memory."""
    score = np.where(fits, step_s, np.inf)
    best_fit = np.argmin(score, axis=1)
    least_over = np.argmin(np.where(valid, over, np.inf), axis=1)
    if not score.shape[1]:
        return least_over, np.zeros(score.shape[0], bool)
    any_fit = np.isfinite(np.min(score, axis=1))
    chosen = np.where(any_fit, best_fit, least_over)
    if allowed is True:
        return chosen, any_fit
    score = np.where(allowed, score, np.inf)
    any_allowed = np.isfinite(np.min(score, axis=1))
    return np.where(any_allowed, np.argmin(score, axis=1), chosen), any_fit


def _step_flops(
    w: Workload, matmul_redo: FloatArray, attention_redo: FloatArray
) -> tuple[float, FloatArray]:
    """§2.8 Model FLOPs of one step (whole cluster) and hardware FLOPs with recomputation."""
    matmul_per_token, attention_per_token = flops_per_token(w)
    tokens_step = w.global_batch_sequences * w.seq_len
    model = tokens_step * (matmul_per_token + attention_per_token)
    hardware = tokens_step * (matmul_per_token * matmul_redo + attention_per_token * attention_redo)
    return model, hardware
