"""Check the attention time of docs/model.md §2.6 against Google's published TPU kernel timings.

    python benchmarks/fit_tpu_attention.py

tokamax publishes the timings of its TPU flash (splash) attention kernel, the one MaxText calls,
on one TensorCore of a TPU7x and on a TPU v6e and a v5p
(data/measurements/published/tpu_flash_attention.csv): the forward pass on all three, the fused
backward pass on the TPU7x. The model times one pass ``p`` of ``N`` visited scores (the causal
kernel's key blocks as :func:`~dse.model.training.compute.visited_key_ratio` counts them at the
measured config's blocks; a non-causal kernel visits every score) as

    T_p = N · (m_p/7 · F / (σ · η_att · R) + e_p / R_exp)

with ``m_p`` the pass's score matmuls (2 forward, 5 in the fused backward,
``ATTENTION_PASS_MATMULS``), ``e_p`` its exponentials (one each), ``F`` the score FLOPs per
score over the systolic array's fill (``score_matmul_flops``), ``η_att`` the measured Hopper
efficiency, ``R`` and ``R_exp`` the device's sustained 16-bit and exponential rates and ``σ``
the family's attention scale. This prints, by chip and pass and for the TPU7x's causal shapes
timed both ways (forward and backward summed, what a training step runs), the error at the
family's current scale and the scale that fits the timings of 2,048 tokens and more (least
squares on the log); then the same with a fixed time per visited (query block × key block) tile
of each batch row and head, the kernel's grid step, as a diagnostic. The TPU7x's causal pairs
give google-tpu's ``attention_efficiency_scale`` (chips/technology/families.toml).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from dse.catalog.chips import load_chip
from dse.designs import from_chips
from dse.model.silicon import evaluate_silicon
from dse.model.training.compute import (
    ATTENTION_PASS_EXPONENTIALS,
    ATTENTION_PASS_MATMULS,
    array_utilization,
    visited_key_ratio,
)
from dse.settings import load_settings

TIMINGS = (
    Path(__file__).resolve().parents[1] / "data/measurements/published/tpu_flash_attention.csv"
)
TENSOR_CORES_PER_DEVICE = {"tpu-v7": 2.0, "tpu-v5p": 1.0, "tpu-v6e": 1.0}
"""Chip rate over one JAX device's: an Ironwood chip is two devices, a v5p (megacore) and a v6e
one each, as the table's per-device peaks say."""
PASSES = {"fwd": 0, "vjp": 1}
"""The measured passes' index in ``ATTENTION_PASS_MATMULS['fused']``."""
LONG = 2048
"""Shortest sequence (tokens) of the fits: training runs use 2,048-131,072."""


def device_rates(chip_id: str) -> tuple[float, float, float]:
    """Sustained 16-bit rate (FLOP/s), exponential rate (1/s) and systolic array side of one
    JAX device of ``chip_id`` at the clock the model has the chip hold (§1.7)."""
    chip = load_chip(chip_id)
    silicon = evaluate_silicon(from_chips([chip], 1))
    clock_hz = float(silicon.sustained_clock_ghz["bf16"][0]) * 1e9
    share = TENSOR_CORES_PER_DEVICE[chip_id]
    rate = float(silicon.sustained_flop_s("bf16")[0]) / share
    return (
        rate,
        chip.compute_units * clock_hz * chip.exp_per_cycle_per_unit / share,
        chip.matrix_unit_dim,
    )


def chip_constants(chip_id: str) -> tuple[float, float]:
    """The attention scale the model gives ``chip_id`` (its own measured one, else its family's
    attention or GEMM scale, :func:`~dse.model.training.grid.attention_scale`) and its fixed
    keys a query."""
    designs = from_chips([load_chip(chip_id)], 1)
    own = designs.attention_efficiency_scale[0]
    scale = float(designs.gemm_efficiency_scale[0] if np.isnan(own) else own)
    return scale, float(designs.attention_fixed_tokens[0])


def model_parts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per timing: the model's tensor time at σ = 1 and exponential time (µs) of the scores the
    kernel visits, and the share of them one token of fixed cost per query adds (the counted
    scores over the counted keys, :func:`~dse.model.training.compute.pass_overhead`)."""
    eta = load_settings().attention_efficiency
    parts = []
    for row in rows.itertuples(index=False):
        rate, exp_rate, side = device_rates(row.chip)
        seq, keys = float(row.seq_q), float(row.seq_k)
        first = row.pass_ == "fwd"
        block_q = float(row.block_q if first else row.block_q_dkv)
        block_kv = float(row.block_kv if first else row.block_kv_dkv)
        counted = seq * keys / 2.0 if row.causal else seq * keys
        visited = (
            counted * visited_key_ratio(seq, seq, block_q, block_kv) if row.causal else counted
        )
        scores = row.batch * row.heads_q * visited
        unit = np.asarray(float(side))
        qk, v = float(row.head_dim_qk), float(row.head_dim_v)
        flops = 6.0 * qk / float(array_utilization(qk, unit)) + 6.0 * v / float(
            array_utilization(v, unit)
        )
        index = PASSES[row.pass_]
        matmuls = ATTENTION_PASS_MATMULS["fused"][index]
        exponentials = ATTENTION_PASS_EXPONENTIALS["fused"][index]
        tensor_us = scores * matmuls / 7.0 * flops / (eta * rate) * 1e6
        exp_us = scores * exponentials / exp_rate * 1e6
        share = counted / keys / visited  # of the visited scores, one fixed key a query adds
        parts.append(
            {
                "tensor_us": tensor_us,
                "exp_us": exp_us,
                "fixed_tensor_us": tensor_us * share,
                "fixed_exp_us": exp_us * share,
            }
        )
    return pd.concat([rows.reset_index(drop=True), pd.DataFrame(parts)], axis=1)


SHAPE = ["batch", "seq_q", "heads_q", "heads_kv", "head_dim_qk", "head_dim_v", "causal"]
"""The columns that name one attention layer's shape."""


def causal_pairs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per causal shape timed both forward and backward: what a training step runs, the
    two passes' times and model parts summed."""
    causal = rows[rows["causal"]]
    summed = ["time_us", "tensor_us", "exp_us", "fixed_tensor_us", "fixed_exp_us"]
    forward = causal[causal["pass_"] == "fwd"].set_index(SHAPE)[summed]
    backward = causal[causal["pass_"] == "vjp"].set_index(SHAPE)[summed]
    return (forward + backward).dropna().reset_index()


def fit(rows: pd.DataFrame, with_fixed: bool) -> tuple[np.ndarray, np.ndarray]:
    """The scale σ (and the fixed keys per query, tokens) that best fit ``rows``, and the
    errors there."""

    def modeled(x: np.ndarray) -> np.ndarray:
        time = rows["tensor_us"] / x[0] + rows["exp_us"]
        if not with_fixed:
            return time
        return time + x[1] * (rows["fixed_tensor_us"] / x[0] + rows["fixed_exp_us"])

    start, low, high = (
        ([0.8, 500.0], [0.1, 0.0], [3.0, 1e5]) if with_fixed else ([0.8], [0.1], [3.0])
    )
    result = least_squares(
        lambda x: np.log(modeled(x) / rows["time_us"]), start, bounds=(low, high)
    )
    return result.x, (modeled(result.x) / rows["time_us"] - 1.0).to_numpy()


def main() -> None:
    data = pd.read_csv(TIMINGS).rename(columns={"pass": "pass_"})
    data = data[data["dtype"] == "bf16"]
    # a training forward keeps its residuals; the backward has no such key
    data = data[(data["pass_"] == "vjp") | data["return_residuals"]]
    data = model_parts(data)
    constants = {chip: chip_constants(chip) for chip in TENSOR_CORES_PER_DEVICE}
    print(
        f"attention scale and fixed keys now (over η_att = "
        f"{load_settings().attention_efficiency:.3f}): "
        + ", ".join(
            f"{chip} {scale:.3f}, {fixed:,.0f}" for chip, (scale, fixed) in constants.items()
        )
    )
    groups = [(f"{c} {p}", g) for (c, p), g in data.groupby(["chip", "pass_"])]
    causal = data[data["causal"] & (data["pass_"] == "fwd")]
    groups += [(f"{c} causal fwd", g) for c, g in causal.groupby("chip")]
    groups.append(("tpu-v7 causal pairs", causal_pairs(data[data["chip"] == "tpu-v7"])))
    for label, rows in groups:
        rows = rows[rows["seq_q"] >= LONG]
        scale, fixed = constants[label.split()[0] if label[0] == "t" else "tpu-v7"]
        now = rows["tensor_us"] / scale + rows["exp_us"]
        now += fixed * (rows["fixed_tensor_us"] / scale + rows["fixed_exp_us"])
        now = now / rows["time_us"] - 1.0
        (sigma,), errors = fit(rows, with_fixed=False)
        (sigma_t, fixed), errors_t = fit(rows, with_fixed=True)
        print(
            f"  {label:<18} {len(rows):>3} timings ≥ {LONG} tokens: now median |error| "
            f"{np.median(np.abs(now)):5.1%} (median {np.median(now):+6.1%}); "
            f"σ = {sigma:.3f}: {np.median(np.abs(errors)):5.1%} (largest "
            f"{np.abs(errors).max():4.0%}); σ = {sigma_t:.3f} with {fixed:,.0f} fixed keys a "
            f"query: {np.median(np.abs(errors_t)):5.1%} (largest {np.abs(errors_t).max():4.0%})"
        )


if __name__ == "__main__":
    main()
