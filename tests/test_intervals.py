"""80 % prediction intervals from the cross-validated errors (docs/model.md §4, issue 10)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dse as api
from dse.intervals import INTERVAL_COLUMNS, INTERVAL_METRICS, RESIDUALS_PATH, log_error_band


def test_intervals_cover_about_80_percent_of_held_out_runs() -> None:
    # Each figure is judged by the band computed without any figure of its own run.
    with RESIDUALS_PATH.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 60
    covered = 0
    for row in rows:
        others = tuple(
            (r["run_type"] == "full_run", r["moe"] == "true", float(r["time_log_error"]))
            for r in rows
            if r["run"] != row["run"]
        )
        low, high = log_error_band(row["run_type"] == "full_run", row["moe"] == "true", others)
        covered += low <= float(row["time_log_error"]) <= high
    assert 0.70 <= covered / len(rows) <= 0.90


def test_evaluate_reports_an_interval_per_metric(dse: Callable[..., Any]) -> None:
    record = dse(
        "evaluate",
        "--chip",
        "h100-sxm",
        "--workload",
        "llama3.1-70b",
        "--num-chips",
        "4096",
        "--format",
        "json",
    ).json()
    assert set(record["interval"]) == set(INTERVAL_METRICS)
    for metric, (low, high) in record["interval"].items():
        assert 0 < low < high
        # The model's error on runs like this one spans its own prediction.
        assert low <= record[metric] * 1.5 and high >= record[metric] / 1.5


H100_SPACE = """
name = "the H100 on three cluster sizes"
base_chip = "h100-sxm"
[dimensions]
num_chips = [1024, 4096, 8192]
hbm_stacks = [5, 6]
"""


@pytest.mark.parametrize("workload", ["llama3.1-70b", "mixtral-8x7b"])  # dense and MoE
def test_results_rows_carry_the_intervals_of_evaluate(tmp_path: Path, workload: str) -> None:
    space = tmp_path / "h100.toml"
    space.write_text(H100_SPACE)
    frame = api.sweep(space, workload, method="grid", seed=0)
    assert set(INTERVAL_COLUMNS) <= set(frame.columns)
    # After the metrics, before the plan; intervals are not objectives.
    columns = list(frame.columns)
    assert columns.index("unit_price_usd") < columns.index(INTERVAL_COLUMNS[0])
    assert columns.index(INTERVAL_COLUMNS[-1]) < columns.index("tp")
    feasible = frame[frame["feasible"]]
    assert len(feasible) >= 3
    for metric in INTERVAL_METRICS:
        low, high = feasible[f"{metric}_low"], feasible[f"{metric}_high"]
        assert (low > 0).all() and (low <= feasible[metric]).all(), metric
        assert (feasible[metric] <= high).all(), metric
    # A row's interval is the one dse evaluate gives for the same design.
    for _, row in frame[frame["hbm_stacks"] == 5].iterrows():
        evaluated = api.evaluate("h100-sxm", workload, num_chips=int(row["num_chips"]))
        assert evaluated.feasible == row["feasible"]
        for metric, (low, high) in evaluated.interval.items():
            assert row[f"{metric}_low"] == pytest.approx(low, rel=1e-12), metric
            assert row[f"{metric}_high"] == pytest.approx(high, rel=1e-12), metric
        flat = evaluated.to_row()
        assert flat["training_days_low"] == evaluated.interval["training_days"][0]


def test_interval_columns_are_vectorized_over_dense_and_moe_rows() -> None:
    from dse.intervals import interval, interval_columns

    values = {metric: np.array([2.0, 3.0]) for metric in INTERVAL_METRICS}
    columns = interval_columns(values, moe=np.array([False, True]))
    for metric in INTERVAL_METRICS:
        full_run = metric not in ("step_time_s", "mfu")
        for i, moe in enumerate((False, True)):
            low, high = interval(metric, values[metric][i], full_run=full_run, moe=moe)
            assert columns[f"{metric}_low"][i] == low and columns[f"{metric}_high"][i] == high
