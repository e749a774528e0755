"""Calibrate the [C] defaults of dse/defaults.toml on every published run, and cross-validate.

The throughput constants (dse.calibration.GRID) are fitted on the steady-state figures, goodput
on the full runs' GPU-hours and days; then each chip family, each source (publisher) and each
company (dse/validation_companies.toml) is left out in turn and predicted with constants fitted
on the rest. Writes the leave-one-source-out and leave-one-family-out errors to
dse/validation_residuals.csv (the prediction intervals, dse/intervals.py). Prints the fitted values (copy them into
dse/defaults.toml by hand, so that the change is reviewed) and the error table per family:
in-sample, held out, and the "6·N·T at 40 % of peak" rule on the same figures; then whether
the full runs' goodput trends with cluster size or run length (docs/model.md §4).

Run: python benchmarks/calibrate_training.py
"""

from __future__ import annotations

import time

from dse.calibration import (
    HeldOut,
    cross_validate,
    goodput_trends,
    prediction_tables,
    search_shifts,
    summary,
    write_residuals,
)
from dse.intervals import RESIDUALS_PATH
from dse.validation import load_runs


def main() -> None:
    start = time.perf_counter()
    tables = prediction_tables()
    print(
        f"every figure at {len(tables.settings)} grid settings ({time.perf_counter() - start:.0f} s)"
    )
    held_out: dict[str, list[HeldOut]] = {}
    for by in ("family", "source", "company"):  # family first: its errors join the residuals
        start = time.perf_counter()
        rows, fitted = cross_validate(by, tables=tables)
        held_out[by] = rows
        if by == "source":
            source_rows = rows
            write_residuals(rows, RESIDUALS_PATH, search_shifts(), family_rows=held_out["family"])
            print(f"wrote the held-out errors behind the prediction intervals: {RESIDUALS_PATH}")
        print(f"leave one {by} out ({time.perf_counter() - start:.0f} s); fitted on all: {fitted}")
        print(
            f"  {'family':18s} {'figures':>7s} {'in-sample':>10s} {'held out':>9s} {'40% rule':>9s}"
        )
        for s in summary(rows):
            print(
                f"  {s['family']:18s} {s['figures']:7d} {s['in_sample']:10.1%} "
                f"{s['held_out']:9.1%} {s['rule_40pct']:9.1%}"
            )
    runs = {run["id"]: run for run in load_runs()}
    for trend in goodput_trends(source_rows, runs):
        print(
            f"full runs' time error against {trend.against}: Spearman rho {trend.rho:+.2f}"
            f" (p = {trend.p_value:.2f}, {trend.runs} runs)"
        )


if __name__ == "__main__":
    main()
