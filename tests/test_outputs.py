"""Outputs an architect can use (issue 12): guard rails on large runs, ``dse compare``, the
front listed by ``dse pareto``, and ``dse evaluate``'s verdict first with its idle chips."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dse.estimate import MAX_DESIGNS, Estimate, TooLargeError, check_limits
from dse.export import read_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SWEEP = ("sweep", "accelerator", "--workload", "llama3.1-70b")


def test_full_grid_is_refused_fast_with_its_estimate(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "dse", *SWEEP, "--method", "grid", "--out", "g.parquet"]
    started = time.monotonic()
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - started
    assert done.returncode == 2 and done.stdout == ""
    assert seconds < 10, f"refusal took {seconds:.1f} s"
    err = done.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("dse: error: refusing to start"), err
    assert "1,881,169,920 designs" in err and "designs/s" in err and "GB of parquet" in err
    # The estimated time, in whatever unit the measured rate gives (hours since issue 13).
    assert "--yes" in err and re.search(r"about [\d.,]+ (s|min|h|days) at ", err), err
    assert list(tmp_path.iterdir()) == []


def test_dry_run_prints_the_estimate_and_writes_nothing(
    dse: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "sweep.csv"
    result = dse(*SWEEP, "--samples", "3000", "--out", out, "--dry-run", "--format", "json")
    assert result.code == 0, result.err
    estimate = result.json()
    assert estimate["designs"] == estimate["rows"] == 3000 and estimate["dry_run"]
    assert estimate["designs_per_s"] > 0 and estimate["seconds"] > 0
    assert estimate["output_bytes"] == pytest.approx(3000 * estimate["bytes_per_row"])
    assert estimate["output_format"] == "csv" and estimate["over_limit"] == []
    grid = dse(*SWEEP, "--method", "grid", "--out", out, "--dry-run", "--format", "json")
    assert grid.code == 0 and len(grid.json()["over_limit"]) == 2
    search = dse("search", "accelerator", "--workload", "llama3.1-70b", "--evals", "200",
                 "--out", out, "--dry-run", "--format", "json")  # fmt: skip
    assert search.code == 0 and search.json()["designs"] == 200
    assert list(tmp_path.iterdir()) == []


def test_limits_refuse_unless_confirmed() -> None:
    large = Estimate(MAX_DESIGNS + 1, MAX_DESIGNS + 1, 1e4, 5e3, 200.0, 2e8 * 200, "csv", 1)
    with pytest.raises(TooLargeError, match="refusing to start: 50,000,001 designs"):
        check_limits(large, confirmed=False)
    check_limits(large, confirmed=True)
    front_only = Estimate(1000, None, 1e4, 0.1, 1e9, 1e12, "parquet", 1)
    assert front_only.over_limit() == []  # a Pareto-only output is not sized by its rows


COMPARE = ("compare", "h100-sxm", "b200", "mi300x", "--workload", "llama3.1-70b")


def test_compare_gives_one_evaluate_object_per_chip_with_ratios(
    dse: Callable[..., Any], tmp_path: Path
) -> None:
    result = dse(*COMPARE, "--num-chips", "4096", "--format", "json")
    assert result.code == 0, result.err
    records = result.json()
    assert [r["chip"] for r in records] == ["h100-sxm", "b200", "mi300x"]
    single = dse("evaluate", "--chip", "b200", "--workload", "llama3.1-70b", "--num-chips", "4096",
                 "--format", "json").json()  # fmt: skip
    assert set(records[1]) == set(single) | {"ratio_to_first"}
    assert records[1]["cost_usd"] == pytest.approx(single["cost_usd"])
    assert all(v == pytest.approx(1.0) for v in records[0]["ratio_to_first"].values())
    ratio = records[2]["ratio_to_first"]["training_days"]
    assert ratio == pytest.approx(records[2]["training_days"] / records[0]["training_days"])

    plot = tmp_path / "compare.png"
    table = dse(*COMPARE, "--num-chips", "4096", "--plot", plot)
    assert table.code == 0, table.err
    assert plot.read_bytes().startswith(PNG_MAGIC)
    header = table.out.splitlines()[0].split()
    assert header == ["quantity", "h100-sxm", "b200", "mi300x"]
    assert "breakdown_s.compute" in table.out and "cost_usd / first" in table.out
    csv = dse(*COMPARE, "--num-chips", "4096", "--format", "csv")
    assert len(csv.out.splitlines()) == 4 and "ratio_to_first.cost_usd" in csv.out


def test_pareto_lists_exactly_the_rows_marked_pareto(
    dse: Callable[..., Any], tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep.parquet"
    run = dse(*SWEEP, "--samples", "3000", "--seed", "2", "--out", sweep)
    assert run.code == 0, run.err
    frame, _ = read_results(sweep)
    marked = frame[frame["pareto"]].reset_index(drop=True)

    listed = dse("pareto", sweep, "--format", "json")
    assert listed.code == 0, listed.err
    rows = pd.DataFrame(listed.json())
    assert len(rows) == len(marked) > 1
    # JSON has no NaN: a number the family does not state (memory_reserve_fraction) is null
    unstated = [c for c in rows if rows[c].isna().all() and marked[c].isna().all()]
    rows[unstated] = np.nan
    pd.testing.assert_frame_equal(rows, marked, check_dtype=False)
    assert "hypervolume:" in listed.err and "USD·MWh·days" in listed.err

    table = dse("pareto", sweep)
    lines = table.out.splitlines()
    assert lines[0].split()[:4] == ["row", "cost_usd", "energy_mwh", "training_days"]
    assert lines[1].split()[:3] == ["USD", "MWh", "days"]  # units under the names
    assert set(lines[2]) == {"─"}
    assert all(len(line) <= 100 for line in lines)
    body = [line.split()[0] for line in lines[3 : 3 + len(marked)]]
    assert [int(i) for i in body] == list(np.flatnonzero(frame["pareto"]))
    assert "reference point: cost_usd" in table.out and "USD·MWh·days" in table.out
    csv = dse("pareto", sweep, "--format", "csv")
    assert len(csv.out.splitlines()) == len(marked) + 1


EVALUATE = ("evaluate", "--workload", "llama3.1-70b")


def test_evaluate_states_idle_chips(dse: Callable[..., Any]) -> None:
    pinned = ("--chip", "h100-sxm", "--num-chips", "4099", "--tp", "8", "--pp", "1", "--dp", "512")
    record = dse(*EVALUATE, *pinned, "--format", "json").json()
    plan = record["plan"]
    assert record["idle_chips"] == 4099 - plan["tp"] * plan["pp"] * plan["dp"] == 3
    assert "idle_chips" in dse(*EVALUATE, *pinned).out
    best = dse(*EVALUATE, "--chip", "h100-sxm", "--num-chips", "4096", "--format", "json").json()
    plan = best["plan"]
    assert best["idle_chips"] == 4096 - plan["tp"] * plan["pp"] * plan["dp"] >= 0


def test_idle_chips_count_context_parallel_ranks(dse: Callable[..., Any]) -> None:
    """A plan with context parallelism uses tp·pp·cp·dp chips; a pinned replica larger than
    the cluster is one error line, not an infeasible answer."""
    pinned = ("--chip", "h100-sxm", "--num-chips", "1030", "--tp", "4", "--cp", "2", "--pp", "1")
    record = dse(*EVALUATE, *pinned, "--dp", "128", "--format", "json").json()
    plan = record["plan"]
    assert plan["cp"] == 2 and plan["dp"] == 128
    assert record["idle_chips"] == 1030 - 4 * 2 * 128 == 6
    too_big = dse(*EVALUATE, "--chip", "h100-sxm", "--num-chips", "8", "--tp", "8", "--cp", "2")
    assert too_big.code != 0
    assert "tp x pp x cp <= --num-chips (8)" in too_big.err and "got 16" in too_big.err
    assert len(too_big.err.strip().splitlines()) == 1
    experts = dse("evaluate", "--workload", "mixtral-8x7b", "--chip", "h100-sxm", "--num-chips",
                  "16", "--ep", "8", "--pp", "4")  # fmt: skip
    assert experts.code != 0 and "ep x pp <= --num-chips (16)" in experts.err


def test_infeasible_verdict_and_reasons_come_first(dse: Callable[..., Any]) -> None:
    args = ("evaluate", "--chip", "v100", "--workload", "llama3.1-405b", "--num-chips", "64")
    table = dse(*args)
    assert table.code == 0, table.err  # infeasible is an answer, not an error
    first, second = table.out.splitlines()[:2]
    assert first.split() == ["feasible", "no"]
    assert second.startswith("reasons") and "HBM" in second
    record = dse(*args, "--format", "json").json()
    assert list(record)[:2] == ["feasible", "reasons"]
    assert record["feasible"] is False and record["reasons"]


def test_units_follow_the_name_suffix() -> None:
    from dse.units import unit_of

    names = ["cost_usd", "energy_mwh", "training_days", "hbm_bandwidth_tb_s", "step_time_s", "mfu"]
    assert [unit_of(n) for n in names] == ["USD", "MWh", "days", "TB/s", "s", "1"]
    # an entry of a group takes the group's unit, unless it is a ratio
    grouped = ["breakdown_s.compute", "figures.training_days.error", "breakdown_s.bubble_fraction"]
    assert [unit_of(n) for n in grouped] == ["s", "1", "1"]


def test_compare_checks_the_plot_file_first(dse: Callable[..., Any], tmp_path: Path) -> None:
    result = dse(*COMPARE, "--num-chips", "8", "--plot", tmp_path / "chart.txt")
    assert result.code == 2 and "--plot: expected a file name ending in" in result.err
    assert list(tmp_path.iterdir()) == []


def test_tables_fit_100_columns_with_one_number_format_per_column() -> None:
    from dse.cli._output import render_rows

    rows = [
        {"name": "a", "cost_usd": 1234567.891, "mfu": 0.41234, "num_chips": 1024, "year": 2024},
        {"name": "b", "cost_usd": 98765.4, "mfu": 0.5, "num_chips": 16384, "year": 2025},
        {f"extra_{i}_metric_w": 1.0 * i for i in range(20)},
    ]
    text = render_rows(rows, "table")
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert "more columns: extra_" in text and "--format csv or json has them all" in text
    assert "1,234,568" in text and "98,765" in text  # same decimals in one column
    assert "0.4123" in text and "0.5000" in text
    assert "16,384" in text and " 1,024" in text and "2024" in text and "2,024" not in text
