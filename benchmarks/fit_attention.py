"""Fit the attention constants of docs/model.md §2.6 to measurements.

    python benchmarks/fit_attention.py

Model of one causal attention forward + backward (FlashAttention):

    T = N · (1 + b·s0/k) · (F / (η_att · R) + c / R_exp)

N the scores computed (b·H·s²/2 causal, b·H·(s·w − w²/2) in a sliding window of w keys), k the
keys a query counts (s; 2w − w²/s in a window), b the partly masked key blocks per query block
(1 causal, ``WINDOW_MASKED_BOUNDARIES`` in a window), F = 6·(h_qk + h_v) FLOPs per score (the
model's convention: QKᵀ and AV, ×3 for the backward pass), R the 16-bit tensor rate, R_exp the
special-function rate (exponentials/s), both at the clock the model's chip sustains under full
tensor load (docs/model.md §1.7), and c = 2 exponentials per score (the forward softmax, and P
recomputed in the backward pass).

1. Hopper, this project's H200 (data/measurements/h200/attention.csv, PyTorch SDPA): fits η_att
   (``attention_efficiency``) and s0 (``attention_overhead_tokens``) by least squares on the log
   of the measured times, and prints the fit beside the one-efficiency model it replaces.
2. NVIDIA's published cuDNN training benchmarks (data/measurements/published/attention_cudnn.csv,
   16-bit, causal, full attention): with s0 as fitted on the H200, fits each family's own
   efficiency η, whose ratio to η_att is the family's ``attention_efficiency_scale``
   (chips/technology/families.toml), and checks the sliding-window rows against the model.
3. The same benchmarks' FP8 attention (``data_type`` fp8, causal, full attention): each family's
   FP8 efficiency at the chip's fp8 rate, over its 16-bit efficiency fitted on the same shapes,
   is the family's ``fp8_attention_efficiency_scale``.
4. NVIDIA's published Mamba-2 SSD timing (data/measurements/published/ssd_mamba2.csv):
   mamba_ssm's Triton scan, forward and backward, in compute-unit cycles per token and inner
   channel at the chip's sustained clock, ``SSD_CYCLES_PER_TOKEN_CHANNEL`` (docs/model.md
   §2.11), beside what the FLOPs and the fp32 chunk states would take at the chip's rates.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from dse.catalog.chips import load_chip
from dse.designs import from_chips
from dse.model.silicon import evaluate_silicon
from dse.model.training.compute import (
    EXPONENTIALS_PER_SCORE,
    SSD_CYCLES_PER_TOKEN_CHANNEL,
    WINDOW_MASKED_BOUNDARIES,
)
from dse.settings import load_settings

DATA = Path(__file__).parent.parent / "data/measurements"
MEASUREMENTS = DATA / "h200/attention.csv"
PUBLISHED = DATA / "published/attention_cudnn.csv"
SSD = DATA / "published/ssd_mamba2.csv"


@cache
def sustained_rates(chip_id: str, data_type: str = "bf16") -> tuple[float, float]:
    """The tensor rate (FLOP/s) in ``data_type`` (bf16 or fp8) and the exponential rate (1/s) of
    a catalog chip at the clock the model has it sustain under full tensor load (§1.7), as the
    training model uses them."""
    chip = load_chip(chip_id)
    silicon = evaluate_silicon(from_chips([chip], 1))
    clock_hz = float(silicon.sustained_clock_ghz["bf16"][0]) * 1e9
    return (
        float(silicon.sustained_flop_s(data_type)[0]),
        chip.compute_units * clock_hz * chip.exp_per_cycle_per_unit,
    )


def fit_h200() -> None:
    """Part 1: η_att and s0 on this project's H200 SDPA measurements (printed; the shipped
    values are this fit's, rounded)."""
    rate, exp_rate = sustained_rates("h200")
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


def published_times(
    rows: pd.DataFrame, eta: float, s0: float, data_type: str = "bf16"
) -> np.ndarray:
    """The model's forward + backward time (s) of each published causal measurement at
    attention efficiency ``eta`` of the ``data_type`` rate and overhead ``s0`` tokens per
    partly masked boundary."""
    rates = {chip: sustained_rates(chip, data_type) for chip in rows["chip"].unique()}
    rate = rows["chip"].map(lambda c: rates[c][0]).to_numpy(float)
    exp_rate = rows["chip"].map(lambda c: rates[c][1]).to_numpy(float)
    seq = rows["seq_len"].to_numpy(float)
    window = rows["sliding_window"].fillna(0.0).to_numpy(float)
    windowed = window > 0
    width = np.where(windowed, np.minimum(window, seq), seq)
    keys = np.where(windowed, 2.0 * width - width**2 / seq, seq)  # counted keys per query
    boundaries = np.where(windowed, WINDOW_MASKED_BOUNDARIES, 1.0)
    scores = rows["batch"].to_numpy(float) * rows["q_heads"].to_numpy(float) * seq * keys / 2.0
    flops = 6.0 * (rows["head_dim_qk"].to_numpy(float) + rows["head_dim_vo"].to_numpy(float))
    per_score = flops / (eta * rate) + EXPONENTIALS_PER_SCORE / exp_rate
    return scores * (1.0 + boundaries * s0 / keys) * per_score


def fit_efficiency(rows: pd.DataFrame, s0: float, data_type: str = "bf16") -> float:
    """The attention efficiency η (of the ``data_type`` rate) at which :func:`published_times`
    best matches ``rows``' measured forward + backward times (least squares on the log)."""
    measured = (rows["forward_ms"] + rows["backward_ms"]).to_numpy(float) * 1e-3
    fit = least_squares(
        lambda p: np.log(published_times(rows, p[0], s0, data_type) / measured),
        [0.6],
        bounds=([0.05], [1.5]),
    )
    return float(fit.x[0])


def fit_published(eta_h200: float, s0: float) -> None:
    """Part 2: each family's own efficiency on NVIDIA's cuDNN benchmarks, and the windows."""
    data = pd.read_csv(PUBLISHED)
    data = data[
        (data["data_type"] == "bf16") & (data["mask"] == "causal") & ~data["deterministic_backward"]
    ]
    full = data["sliding_window"].isna().to_numpy()
    print(f"\nNVIDIA cuDNN training benchmarks ({PUBLISHED.name}), 16-bit, causal, s0 = {s0:.0f}:")
    for family, rows in data[full].groupby("family"):
        eta = fit_efficiency(rows, s0)
        times = (rows["forward_ms"] + rows["backward_ms"]).to_numpy(float) * 1e-3
        error = published_times(rows, eta, s0) / times - 1.0
        print(
            f"{family}: efficiency {eta:.3f} = {eta / eta_h200:.3f} x attention_efficiency "
            f"over {len(rows)} shapes on {', '.join(sorted(rows['chip'].unique()))}: "
            f"median |error| {np.median(np.abs(error)):.1%}, largest {np.abs(error).max():.1%}"
        )
        for chip, per_chip in rows.groupby("chip"):
            alone = fit_efficiency(per_chip, s0) / eta_h200
            print(f"    {chip} alone: {alone:.3f} x attention_efficiency")
        windows = data[~full & (data["family"] == family).to_numpy()]
        if len(windows):
            times = (windows["forward_ms"] + windows["backward_ms"]).to_numpy(float) * 1e-3
            error = published_times(windows, eta, s0) / times - 1.0
            print(
                f"    sliding windows ({WINDOW_MASKED_BOUNDARIES:g} masked boundaries): "
                + ", ".join(
                    f"{c} w={w:.0f} s={s:.0f} {e:+.0%}"
                    for c, w, s, e in zip(
                        windows["chip"],
                        windows["sliding_window"],
                        windows["seq_len"],
                        error,
                        strict=True,
                    )
                )
            )


def fit_fp8(s0: float) -> None:
    """Part 3: each family's FP8 attention efficiency over its 16-bit one, both fitted on the
    shapes the benchmark times in both formats (causal, full attention)."""
    data = pd.read_csv(PUBLISHED)
    data = data[
        (data["mask"] == "causal") & ~data["deterministic_backward"] & data["sliding_window"].isna()
    ]
    keys = ["chip", "config", "batch", "seq_len"]
    fp8 = data[data["data_type"] == "fp8"]
    both = data[data["data_type"] == "bf16"].merge(fp8[keys], on=keys)
    fp8 = fp8.merge(both[keys], on=keys)
    print(f"\nFP8 attention ({PUBLISHED.name}, causal, full attention, at the fp8 rate):")
    for family, rows in fp8.groupby("family"):
        sixteen = both[both["family"] == family]
        eta = fit_efficiency(rows, s0, "fp8")
        ratio = eta / fit_efficiency(sixteen, s0)
        times = (rows["forward_ms"] + rows["backward_ms"]).to_numpy(float) * 1e-3
        error = published_times(rows, eta, s0, "fp8") / times - 1.0
        speedup = (sixteen["forward_ms"] + sixteen["backward_ms"]).to_numpy(float) / (times * 1e3)
        modeled = published_times(sixteen, eta / ratio, s0) / published_times(rows, eta, s0, "fp8")
        print(
            f"{family}: fp8_attention_efficiency_scale {ratio:.3f} over {len(rows)} shapes "
            f"on {', '.join(sorted(rows['chip'].unique()))}: median |error| "
            f"{np.median(np.abs(error)):.1%}, largest {np.abs(error).max():.1%}; speedup over "
            f"16-bit measured {speedup.min():.2f}-{speedup.max():.2f}, "
            f"modeled {modeled.min():.2f}-{modeled.max():.2f}"
        )
        for chip, per_chip in rows.groupby("chip"):
            alone = fit_efficiency(per_chip, s0, "fp8") / fit_efficiency(
                sixteen[sixteen["chip"] == chip], s0
            )
            print(f"    {chip} alone: {alone:.3f}")


def ssd_cycles() -> None:
    """Part 4: the Triton SSD scan's compute-unit cycles per token and inner channel, forward
    and backward, with the share of the chip's 16-bit rate its FLOPs reach and the HBM
    bandwidth its fp32 chunk states would need if each were read or written 20 times."""
    data = pd.read_csv(SSD)
    data = data[(data["pass"] == "forward_backward") & (data["gate"] == "none")]
    print(f"\nMamba-2 SSD scan ({SSD.name}, forward and backward, no gate):")
    for (chip_id, backend), rows in data.groupby(["chip", "backend"]):
        rate, _ = sustained_rates(chip_id)
        # the units' cycles at the sustained clock, as the model's unit_cycle_rate
        cycles_s = rate / load_chip(chip_id).flops_per_cycle_per_unit["bf16"]
        row = rows.iloc[0]
        seconds = float(rows["time_ms"].median()) * 1e-3
        tokens = float(row["batch"] * row["seq_len"])
        q, n, p, h = (float(row[k]) for k in ("chunk_size", "state_dim", "head_dim", "heads"))
        flops = tokens * 3.0 * (2.0 * q * n * row["groups"] + h * (2.0 * q * p + 4.0 * n * p))
        states_b = 20.0 * tokens * h * p * n * 4.0 / q
        print(
            f"  {chip_id} {backend}: {seconds * 1e3:.3f} ms, "
            f"{seconds * cycles_s / (tokens * h * p):.2f} cycles per token and channel; "
            f"{flops / seconds / rate:.1%} of the 16-bit rate, "
            f"{states_b / seconds / 1e12:.1f} TB/s for 20 passes over the fp32 chunk states"
        )
    print(f"(shipped: SSD_CYCLES_PER_TOKEN_CHANNEL {SSD_CYCLES_PER_TOKEN_CHANNEL}, Triton's)")


def main() -> None:
    fit_h200()
    defaults = load_settings()
    print(
        f"(shipped: attention_efficiency {defaults.attention_efficiency}, "
        f"attention_overhead_tokens {defaults.attention_overhead_tokens:.0f})"
    )
    fit_published(defaults.attention_efficiency, defaults.attention_overhead_tokens)
    fit_fp8(defaults.attention_overhead_tokens)
    ssd_cycles()


if __name__ == "__main__":
    main()
