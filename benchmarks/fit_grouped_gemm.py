"""Check the grouped-GEMM time of docs/model.md §2.3 against published and measured timings.

    python benchmarks/fit_grouped_gemm.py

A grouped GEMM runs ``g`` GEMMs C[m, n] = A[m, k]·B[k, n] (one per expert) as one kernel. The
model times it from its FLOP time ``F = 2·g·m·n·k / (η · u(k) · u(n) · R)`` and its byte time
``B = g·(o·(m·k + k·n) + 2·m·n) / (B_HBM · η_HBM)`` (:func:`dse.model.training.gemm_time_s`):
the larger of the two on a GPU, their sum on a chip with systolic arrays (``exposed_bytes``).
This prints both forms' errors on:

1. cuBLAS's batched GEMM of 32-64 experts at 16-4,096 tokens each, timed on this project's H200
   (data/measurements/h200/moe_batched_gemm.csv);
2. Google's published timings of its TPU grouped-GEMM kernel (tokamax ``ragged_dot``) on one
   TensorCore of a TPU7x and of a TPU v5p (data/measurements/published/tpu_ragged_dot.csv), by
   pass and by rows per group, at the model's efficiency and at the table's own dense one (its
   4,096³ GEMM in one group).

Nothing is fitted: the model's constants are used as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dse.catalog.chips import load_chip
from dse.designs import from_chips
from dse.model.silicon import evaluate_silicon
from dse.model.training import gemm_time_s, precision_flop_s
from dse.settings import load_settings
from dse.units import TERA

MEASUREMENTS = Path(__file__).resolve().parents[1] / "data" / "measurements"
TENSOR_CORES_PER_DEVICE = {"tpu-v7": 2.0, "tpu-v5p": 1.0}
"""Chip rate over one JAX device's: an Ironwood chip is two devices (one TensorCore each); a
v5p chip is one (its two TensorCores run as one megacore), as the table's per-device peaks say."""


def _rates(chip: str) -> tuple[float, float, float]:
    """The model's sustained 16-bit rate (FLOP/s), achieved HBM bandwidth (B/s) and systolic
    array side of ``chip``."""
    settings = load_settings()
    designs = from_chips([load_chip(chip)], 8)
    silicon = evaluate_silicon(designs)
    rate, _, _ = precision_flop_s(silicon, "bf16")
    hbm = silicon.hbm_bandwidth_tb_s * TERA * settings.hbm_efficiency
    return float(rate[0]), float(hbm[0]), float(designs.matrix_unit_dim[0])


def _errors(
    m: np.ndarray,
    n: np.ndarray,
    k: np.ndarray,
    groups: np.ndarray,
    measured_s: np.ndarray,
    rates: tuple[float, float, float],
    efficiency: float,
) -> dict[str, np.ndarray]:
    """Model / measured − 1 of the larger-of-two and the sum forms; ``m`` rows per group."""
    rate, hbm, side = rates
    unit = np.full_like(m, side if side > 0 else 1.0)
    settings = load_settings()
    return {
        form: gemm_time_s(m, n, k, rate, hbm, 2.0, efficiency, settings, groups, unit, exposed)
        / measured_s
        - 1.0
        for form, exposed in (("max", False), ("sum", True))
    }


def _summary(label: str, errors: dict[str, np.ndarray]) -> str:
    parts = [
        f"{form} median |error| {np.median(np.abs(e)):6.1%} (median {np.median(e):+6.1%})"
        for form, e in errors.items()
    ]
    return f"  {label:<34} " + "   ".join(parts)


def gpu_batched() -> None:
    """Part 1: cuBLAS's batched GEMM on the H200."""
    rows = pd.read_csv(MEASUREMENTS / "h200" / "moe_batched_gemm.csv")
    errors = _errors(
        rows.tokens_per_expert.to_numpy(float),
        rows.expert_ffn_dim.to_numpy(float),
        rows.d_model.to_numpy(float),
        rows.experts.to_numpy(float),
        rows.time_ms.to_numpy(float) * 1e-3,
        (*_rates("h200")[:2], 1.0),  # a side of 1: u = 1, so the sum form applies as well
        load_settings().gemm_efficiency_max,
    )
    print(f"1. cuBLAS batched GEMM on the H200 ({len(rows)} shapes)")
    print(_summary("all", errors))


def tpu_ragged_dot(chip: str) -> None:
    """Part 2: tokamax ``ragged_dot`` on one device of ``chip``."""
    table = pd.read_csv(MEASUREMENTS / "published" / "tpu_ragged_dot.csv")
    table = table[(table.chip == chip) & (table.return_residuals.astype(str) == "False")]
    rate, hbm, side = _rates(chip)
    per_device = (rate / TENSOR_CORES_PER_DEVICE[chip], hbm / TENSOR_CORES_PER_DEVICE[chip], side)
    dense = table[(table.groups == 8) & (table.m_rows == 4096) & (table["pass"] == "fwd")]
    grouped = table[table.groups > 8]
    args = (
        grouped.m_rows.to_numpy(float) / grouped.groups.to_numpy(float),
        grouped.n.to_numpy(float),
        grouped.k.to_numpy(float),
        grouped.groups.to_numpy(float),
        grouped.time_us.to_numpy(float) * 1e-6,
        per_device,
    )
    model_eff = load_settings().gemm_efficiency_max
    table_eff = float(dense.fraction_of_peak.iloc[0])
    print(f"2. tokamax ragged_dot on one {chip} device ({len(grouped)} timings of 128-256 groups)")
    at_model = _errors(*args, model_eff)
    print(_summary(f"all, model's η {model_eff:.3f}", at_model))
    passes = grouped["pass"].to_numpy()
    for name in np.unique(passes):
        print(_summary(f"  {name}", {f: e[passes == name] for f, e in at_model.items()}))
    rows_per_group = args[0]
    for rows in np.unique(rows_per_group):
        mask = rows_per_group == rows
        print(_summary(f"  {int(rows):,} rows a group", {f: e[mask] for f, e in at_model.items()}))
    print(_summary(f"all, the table's dense η {table_eff:.3f}", _errors(*args, table_eff)))


def main() -> None:
    gpu_batched()
    for chip in TENSOR_CORES_PER_DEVICE:
        tpu_ragged_dot(chip)


if __name__ == "__main__":
    main()
