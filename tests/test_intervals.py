"""80 % prediction intervals from the cross-validated errors (docs/model.md §4, issue 10)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import Any

from dse.intervals import INTERVAL_METRICS, RESIDUALS_PATH, log_error_band


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
