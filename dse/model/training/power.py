"""§3.1 Average power of a training chip over a step, at the chosen plan; arrays ``(n,)``."""

from __future__ import annotations

import numpy as np

from dse.catalog.workloads import Workload, flops_per_token, mixer_flops_per_token
from dse.designs import FloatArray
from dse.model.silicon import Silicon
from dse.model.training.compute import computed_score_share
from dse.settings import Settings
from dse.units import BITS_PER_BYTE, PICO


def _executed_format(
    silicon: Silicon, precision: str, rows: slice
) -> tuple[FloatArray, FloatArray]:
    """§3.1 Energy per FLOP (pJ) and sustained/nominal clock ratio of the format that matmuls in
    ``precision`` actually run in on each chip (the 16-bit format where the chip lacks it)."""
    sixteen = np.where(silicon.peak_flop_s["bf16"][rows] > 0, 0, 1)  # 0: bf16, 1: fp16
    candidates = [precision, "bf16", "fp16"] if precision != "bf16" else ["bf16", "fp16"]
    energy = {f: silicon.energy_pj_per_flop[f][rows] for f in candidates}
    clock = {f: silicon.sustained_clock_ghz[f][rows] / silicon.clock_ghz[rows] for f in candidates}
    fallback_energy = np.where(sixteen == 0, energy["bf16"], energy["fp16"])
    fallback_clock = np.where(sixteen == 0, clock["bf16"], clock["fp16"])
    if precision == "bf16":
        return fallback_energy, fallback_clock
    sixteen_peak = silicon.sixteen_bit_peak_flop_s[rows]
    has = silicon.peak_flop_s[precision][rows] >= np.maximum(sixteen_peak, 1e-300)
    return np.where(has, energy[precision], fallback_energy), np.where(
        has, clock[precision], fallback_clock
    )


def _full_dynamic_power(
    silicon: Silicon,
    precision: str,
    rows: slice,
    clock_ratio: FloatArray,
    exponent: float | FloatArray,
) -> FloatArray:
    """§3.1 Tensor power at full load in the executed format and the sustained clock (W)."""
    sixteen = np.where(
        silicon.peak_flop_s["bf16"][rows] > 0,
        silicon.compute_power_peak_w["bf16"][rows],
        silicon.compute_power_peak_w["fp16"][rows],
    )
    nominal = sixteen
    if precision != "bf16":
        own = silicon.compute_power_peak_w[precision][rows]
        sixteen_peak = silicon.sixteen_bit_peak_flop_s[rows]
        runs_own = (own > 0) & (silicon.peak_flop_s[precision][rows] >= sixteen_peak)
        nominal = np.where(runs_own, own, sixteen)
    return nominal * clock_ratio**exponent


def average_power_w(
    silicon: Silicon,
    w: Workload,
    settings: Settings,
    rows: slice,
    *,
    step_s: FloatArray,
    chips_used: FloatArray,
    matmul_redo: FloatArray,
    attention_redo: FloatArray,
    hbm_bytes: FloatArray,
    tdp_w: FloatArray,
) -> FloatArray:
    """§3.1 Static + tensor (executed FLOPs at their format's energy and DVFS state) + busy-idle
    + HBM power, capped at the TDP. Matmuls run in the training format, causal attention (half
    the score matrix; all of it where the workload's attention is ``materialized``) and a
    hybrid's Mamba-2 scans in 16-bit."""
    matmul_per_token, _ = flops_per_token(w)
    attention_per_token, scan_per_token = mixer_flops_per_token(w)
    tokens_step = w.global_batch_sequences * w.seq_len
    # §2.9 on analog designs only the weight-gradient third of the matmuls runs digitally.
    digital_share = w.digital_linear_gemms / w.linear_gemms
    matmul_flops = tokens_step * matmul_per_token * digital_share * matmul_redo / chips_used
    attention_flops = (
        computed_score_share(w) * tokens_step * attention_per_token * attention_redo / chips_used
    ) + tokens_step * scan_per_token * attention_redo / chips_used  # a hybrid's Mamba-2 scans
    matmul_pj, matmul_clock = _executed_format(silicon, w.precision, rows)
    attention_pj, attention_clock = _executed_format(silicon, "bf16", rows)
    exponent = np.asarray(silicon.dvfs_exponent, dtype=np.float64) - 1.0
    if exponent.ndim:  # one exponent per design (drawn constants)
        exponent = exponent[rows]
    compute_w = (
        (
            matmul_flops * matmul_pj * matmul_clock**exponent
            + attention_flops * attention_pj * attention_clock**exponent
        )
        * PICO
        / step_s
    )
    hbm_w = hbm_bytes * BITS_PER_BYTE * silicon.hbm_energy_pj_per_bit[rows] * PICO / step_s
    # A busy chip burns part of its full-load dynamic power even when it issues no tensor FLOPs
    # (clock tree, control, SRAM and data movement, memory-bound kernels): a fraction of the
    # dynamic power at the sustained clock for the time it is not doing tensor math.
    full_dynamic_w = _full_dynamic_power(silicon, w.precision, rows, matmul_clock, exponent + 1.0)
    tensor_busy = np.clip(compute_w / np.maximum(full_dynamic_w, 1e-9), 0.0, 1.0)
    busy_w = settings.active_idle_power_fraction * (1.0 - tensor_busy) * full_dynamic_w
    return np.minimum(silicon.static_power_w[rows] + compute_w + busy_w + hbm_w, tdp_w)
