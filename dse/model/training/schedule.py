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
    1F1B: 1 + (p − 1)/(p·v) for v > 1 (Narayanan et al. 2021, Sec. 2.2)."""
    return np.where(vp > 1, 1.0 + (pp - 1.0) / (pp * vp), 1.0)


def micro_batches_in_flight(g: Grid, lay: Layout) -> FloatArray:
    """§2.5 Micro-batches whose activations the first stage holds: min(p, m) for 1F1B (more
    when interleaved) and ZB-H1 (Qi et al. 2023, Table 1: 1F1B's peak), min(p + 1, m) for
    DualPipe (DeepSeek-V3 report, Table 2)."""
    plain = np.minimum(g.pp, lay.microbatches) * interleaved_in_flight(g.pp, g.vp)
    return np.where(g.dual, np.minimum(g.pp + 1.0, lay.microbatches), plain)
