"""Fit the attention constants of docs/model.md §2.6 to the H200 measurements.

    python benchmarks/fit_attention.py

Model of one causal attention forward + backward (FlashAttention):

    T = N · (1 + s0/s) · (F / (η_att · R) + c / R_exp)

N = b·H·s²/2 scores, F = 12·h_d FLOPs per score (the model's convention: QKᵀ and AV, ×3 for the
backward pass), R the 16-bit tensor rate, R_exp the special-function rate (exponentials/s), both at
the clock the model's H200 sustains under full tensor load (docs/model.md §1.7), and
c = 2 exponentials per score (the forward softmax, and P recomputed in the backward pass).
Fits η_att (``attention_efficiency``) and s0 (``attention_overhead_tokens``) by least squares
on the log of the measured times (data/measurements/h200/attention.csv) and prints the fit
beside the one-efficiency model it replaces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from dse.catalog.chips import load_chip
from dse.designs import from_chips
from dse.model.silicon import evaluate_silicon
from dse.model.training.compute import EXPONENTIALS_PER_SCORE

MEASUREMENTS = Path(__file__).parent.parent / "data/measurements/h200/attention.csv"


def main() -> None:
    chip = load_chip("h200")
    designs = from_chips([chip], 1)
    # the rates at the clock the model's H200 sustains under full tensor load (§1.7), as the
    # training model uses them: the measured H200 throttles (data/measurements/h200/power.csv)
    clock_hz = float(evaluate_silicon(designs).sustained_clock_ghz["bf16"][0]) * 1e9
    rate = chip.compute_units * clock_hz * chip.bf16_flops_per_cycle_per_unit
    exp_rate = chip.compute_units * clock_hz * chip.exp_per_cycle_per_unit
    data = pd.read_csv(MEASUREMENTS)
    data = data[data["causal"]]
    seq = data["seq_len"].to_numpy(float)
    head_dim = data["head_dim"].to_numpy(float)
    scores = data["batch"].to_numpy(float) * data["heads"].to_numpy(float) * seq**2 / 2.0
    measured = data["forward_backward_ms"].to_numpy(float) * 1e-3

    def modeled(eta: float, s0: float) -> np.ndarray:
        per_score = 12.0 * head_dim / (eta * rate) + EXPONENTIALS_PER_SCORE / exp_rate
        return scores * (1.0 + s0 / seq) * per_score

    fit = least_squares(
        lambda p: np.log(modeled(*p) / measured), [0.5, 300.0], bounds=([0.05, 0.0], [1.0, 1e5])
    )
    eta, s0 = fit.x
    error = modeled(eta, s0) / measured - 1.0
    print(f"H200: R = {rate / 1e12:.0f} TFLOP/s, R_exp = {exp_rate / 1e12:.2f} T exp/s")
    print(f"attention_efficiency = {eta:.3f}, attention_overhead_tokens = {s0:.0f}")
    print(f"  median |error| {np.median(np.abs(error)):.1%}, largest {np.abs(error).max():.1%}")
    single = scores * 12.0 * head_dim / measured / rate
    best = float(np.exp(np.median(np.log(single))))
    old = scores * 12.0 * head_dim / (best * rate) / measured - 1.0
    print(
        f"one efficiency ({best:.3f}): median |error| {np.median(np.abs(old)):.1%}, "
        f"largest {np.abs(old).max():.1%}"
    )
    table = pd.DataFrame(
        {"head_dim": head_dim, "seq_len": seq, "error": error.round(3), "one_eff": old.round(3)}
    )
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
