"""Measure β_ew (``elementwise_bytes_per_activation_byte``, docs/model.md §2.6) on the H200 layers.

    python benchmarks/fit_elementwise.py

The training model's compute time of one stage is linear in β_ew:

    T(β) = T_mm + T_att + T_logit + β · L_s · A_layer / (B_HBM · η_HBM)

so each timed stack of decoder layers (data/measurements/h200/layer_step.csv, eager PyTorch;
layer_step_compiled.csv, the same layers through torch.compile) gives the β_ew at which the
model's time equals the sustained (power-limited) measurement. The model runs on the catalog
H200 at the measured shape: the tensor-parallel slice ``tp``, the micro-batch, four layers, no
logits (a one-token vocabulary) and no communication. Prints β per layer shape and the median of
each mode; the spread says how far one constant describes memory-bound work of different
shapes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from dse.catalog.chips import load_chip
from dse.catalog.workloads import load_workload
from dse.designs import from_chips
from dse.model.plans import candidate_plans
from dse.model.silicon import evaluate_silicon
from dse.model.training.compute import compute
from dse.model.training.grid import build_grid
from dse.model.training.step import fit_model
from dse.settings import load_settings

MEASUREMENTS = Path(__file__).parent.parent / "data/measurements/h200"
WORKLOADS = {  # the measured layer shapes (benchmarks/device/measure_layer.py, MODELS)
    "llama3-8b": "llama3-8b",
    "llama3-70b": "llama3-70b",
    "llama3-405b": "llama3.1-405b",
    "gpt3-175b": "gpt3-175b",
}


def model_seconds(row: pd.Series, beta: float) -> float:
    """The model's forward + backward time (s) of the measured layers at β_ew = ``beta``."""
    workload = load_workload(WORKLOADS[row["model"]]).with_changes(
        layers=int(row["layers"]),
        vocab_size=1,
        seq_len=int(row["seq_len"]),
        sequence_parallel=False,
    )
    settings = replace(load_settings(), elementwise_bytes_per_activation_byte=beta)
    designs = from_chips([load_chip("h200")], [float(row["tp"])])
    plans = candidate_plans(
        workload,
        tp=int(row["tp"]),
        pp=1,
        microbatch=int(row["microbatch"]),
        recompute="none",
        zero_stage=1,
    )
    grid = build_grid(designs, evaluate_silicon(designs), "bf16", plans, settings, slice(0, 1))
    layout, memory, _ = fit_model(grid, workload, settings)
    return float(compute(grid, layout, memory.elementwise_b, workload, settings).total_s[0, 0])


def main() -> None:
    current = load_settings().elementwise_bytes_per_activation_byte
    solved: dict[str, dict[tuple[str, int, int], float]] = {}
    for name in ("layer_step.csv", "layer_step_compiled.csv"):
        data = pd.read_csv(MEASUREMENTS / name)
        print(f"{name}: β_ew at which the model matches the sustained time")
        betas = []
        for _, row in data.iterrows():
            measured = float(row["sustained_ms"]) * 1e-3
            fixed = model_seconds(row, 0.0)
            per_beta = model_seconds(row, 1.0) - fixed
            beta = (measured - fixed) / per_beta
            at_current = fixed + current * per_beta
            betas.append(beta)
            solved.setdefault(name, {})[row["model"], int(row["tp"]), int(row["microbatch"])] = beta
            print(
                f"  {row['model']:12s} tp {int(row['tp'])} mb {int(row['microbatch'])}: "
                f"measured {measured * 1e3:6.1f} ms, model without memory-bound work "
                f"{fixed * 1e3:6.1f} ms, β_ew {beta:5.1f}; at β_ew {current:g}: "
                f"{at_current / measured - 1:+.1%}"
            )
        print(f"  median β_ew {np.median(betas):.1f} (range {min(betas):.1f}-{max(betas):.1f})")
    eager, compiled = solved["layer_step.csv"], solved["layer_step_compiled.csv"]
    ratios = [compiled[shape] / eager[shape] for shape in compiled if shape in eager]
    print(
        "compiled / eager β_ew over the shapes measured both ways: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + f"; median {np.median(ratios):.2f} (compiled_elementwise_fraction: "
        f"{load_settings().compiled_elementwise_fraction:g})"
    )


if __name__ == "__main__":
    main()
