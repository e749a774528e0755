"""80 % prediction intervals from the cross-validated errors (docs/model.md §4, issue 10)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dse as api
from dse.intervals import (
    INTERVAL_COLUMNS,
    INTERVAL_METRICS,
    RESIDUALS_PATH,
    Residual,
    log_error_band,
)


def _residual_rows() -> list[dict[str, str]]:
    with RESIDUALS_PATH.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "column", ["time_log_error", "searched_time_log_error", "family_held_out_time_log_error"]
)
def test_intervals_cover_about_80_percent_of_held_out_runs(column: str) -> None:
    # Each figure is judged by the band computed without any figure of its own run; the
    # searched column holds the steady-state figures re-predicted with the searched plan. The
    # family column holds each figure predicted with its whole chip family left out of the fit,
    # and its band is judged without any figure of that family: a family the bands never saw.
    rows = [r for r in _residual_rows() if r[column]]
    assert len(rows) >= 60
    searched = column == "searched_time_log_error"
    new_family = column == "family_held_out_time_log_error"
    group = "family" if new_family else "run"
    covered: dict[str, list[bool]] = {}
    for row in rows:
        others = [residual(r) for r in _residual_rows() if r[group] != row[group]]
        full_run, moe = row["run_type"] == "full_run", row["moe"] == "true"
        low, high = log_error_band(
            full_run,
            moe,
            others,
            searched=searched,
            new_family=new_family,
            hybrid=row["hybrid"] == "true",
        )
        covered.setdefault(row["family"], []).append(low <= float(row[column]) <= high)
    hits = [hit for family in covered.values() for hit in family]
    assert 0.70 <= np.mean(hits) <= 0.90
    if new_family:
        # A new family is one draw from the families: judged with each family weighing the
        # same, the band still covers most of what a family left out misses by.
        assert np.mean([np.mean(family) for family in covered.values()]) >= 0.70


def residual(row: dict[str, str]) -> Residual:
    searched, family = row["searched_time_log_error"], row["family_held_out_time_log_error"]
    return Residual(
        row["run_type"] == "full_run",
        row["moe"] == "true",
        float(row["time_log_error"]),
        float(searched) if searched else None,
        float(family) if family else None,
        row["family"],
        row["hybrid"] == "true",
    )


def test_every_figure_has_its_error_with_its_family_left_out() -> None:
    rows = _residual_rows()
    assert all(r["family_held_out_time_log_error"] for r in rows)
    # Predicting a family from its vendor's others misses by more than from its own runs.
    spread = [
        np.median([abs(float(r[column])) for r in rows])
        for column in ("time_log_error", "family_held_out_time_log_error")
    ]
    assert spread[1] > spread[0]


def test_a_new_family_draws_its_band_from_the_family_held_out_errors() -> None:
    # Twelve steady-state dense figures, each of its own family: small errors with the source
    # left out, large ones with the family left out, and a search that finds each 10 % faster
    # than its plan.
    rows = [
        Residual(False, False, 0.01 * k, 0.01 * k + np.log(0.9), 0.1 * (k - 6), f"f{k}")
        for k in range(12)
    ]
    source = log_error_band(False, False, rows)
    family = log_error_band(False, False, rows, new_family=True)
    expected = np.quantile([0.1 * (k - 6) for k in range(12)], (0.1, 0.9), method="inverted_cdf")
    assert family == pytest.approx((expected[0], expected[1]))
    assert family[1] - family[0] > 5 * (source[1] - source[0])
    # A searched plan shifts the family-held-out errors by the search's own shift.
    searched = log_error_band(False, False, rows, searched=True, new_family=True)
    assert searched == pytest.approx((expected[0] + np.log(0.9), expected[1] + np.log(0.9)))
    # Without family-held-out errors there is no band to draw: a clear error, not NaN.
    with pytest.raises(ValueError, match="family_held_out_time_log_error"):
        log_error_band(False, False, [r._replace(new_family=None) for r in rows], new_family=True)


def test_a_new_family_band_weighs_each_family_the_same() -> None:
    # One large family predicted a little fast from its vendor (40 figures, 2-6 % too fast)
    # and four small ones each missed by 40 % too slow (one figure each): pooled by figure,
    # the band would hold only the large family's errors; a new family is as likely to be
    # one of the small ones.
    rows = [Residual(False, False, 0.0, None, -0.02 * (k % 3 + 1), "big") for k in range(40)]
    rows += [Residual(False, False, 0.0, None, 0.4, f"small{j}") for j in range(4)]
    low, high = log_error_band(False, False, rows, new_family=True)
    assert (low, high) == pytest.approx((-0.04, 0.4))
    assert np.quantile([r.new_family for r in rows], 0.9) < 0.0


def test_a_searched_plan_gets_the_searched_plans_band() -> None:
    """The search finds the published runs faster than their own plans do (docs/model.md §4),
    so a steady-state prediction with a searched plan gets a band of longer step times than a
    pinned one's; a full run's band already holds the runs whose plans were searched."""
    from dse.intervals import interval

    pinned = interval("step_time_s", 1.0, full_run=False, moe=False)
    searched = interval("step_time_s", 1.0, full_run=False, moe=False, searched=True)
    assert searched[1] > pinned[1] and searched[0] > pinned[0]
    mfu = interval("mfu", 0.4, full_run=False, moe=False, searched=True)
    assert mfu[0] < interval("mfu", 0.4, full_run=False, moe=False)[0]
    days = [interval("training_days", 10.0, full_run=True, moe=False, searched=f) for f in (0, 1)]
    assert days[0] == days[1]


def test_an_mfu_band_never_passes_the_peak() -> None:
    """A design the model runs near its peak (a chip with a quarter of its compute units,
    found by the fuzz tests at an MFU of 0.92) gets a band that ends at an MFU of 1: no run
    computes faster than its peak, whatever the comparable runs' errors say."""
    from dse.intervals import interval_arrays

    low, high = interval_arrays("mfu", np.array([0.2, 0.92, 1.0]), full_run=False, moe=False)
    assert high[0] < 1.0 and high[0] > 0.2  # an ordinary band is untouched
    np.testing.assert_array_equal(high[1:], 1.0)
    assert (low <= np.array([0.2, 0.92, 1.0])).all() and (low > 0).all()


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
    assert record["interval_level"] == 0.8
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


def test_interval_columns_are_vectorized_over_dense_moe_and_hybrid_rows() -> None:
    from dse.intervals import interval, interval_columns

    values = {metric: np.array([2.0, 3.0, 4.0, 5.0]) for metric in INTERVAL_METRICS}
    kinds = [(False, False), (True, False), (True, True), (False, True)]  # (moe, hybrid)
    moe, hybrid = (np.array(flags) for flags in zip(*kinds, strict=True))
    columns = interval_columns(values, moe=moe, hybrid=hybrid)
    for metric in INTERVAL_METRICS:
        full_run = metric not in ("step_time_s", "mfu")
        for i, (is_moe, is_hybrid) in enumerate(kinds):
            low, high = interval(
                metric, values[metric][i], full_run=full_run, moe=is_moe, hybrid=is_hybrid
            )
            assert columns[f"{metric}_low"][i] == low and columns[f"{metric}_high"][i] == high


def test_a_hybrid_model_gets_the_band_of_the_hybrid_runs() -> None:
    """The hybrid Mamba-2 figures miss differently from the transformers' (docs/model.md §4): a
    hybrid's steady-state band is drawn from them alone, MoE or not. Since the scan takes its
    measured time (2026-12-07) they miss less than the transformers: the band is narrower than
    either transformer band, its lower end still above theirs (with a searched plan too)."""
    from dse.intervals import interval, residuals

    hybrid_rows = [r for r in residuals() if r.hybrid and not r.full_run]
    assert len(hybrid_rows) >= 10
    bands = {
        kind: interval("step_time_s", 1.0, full_run=False, moe=moe, hybrid=hybrid)
        for kind, moe, hybrid in (("dense", False, False), ("moe", True, False),
                                  ("hybrid", True, True), ("dense hybrid", False, True))
    }  # fmt: skip
    assert bands["hybrid"] == bands["dense hybrid"]
    assert bands["hybrid"][0] > max(bands["dense"][0], bands["moe"][0])
    width = {kind: band[1] / band[0] for kind, band in bands.items()}
    assert width["hybrid"] < min(width["dense"], width["moe"])
    errors = np.array([r.e for r in hybrid_rows])
    low, high = np.exp(-np.quantile(errors, 0.9)), np.exp(-np.quantile(errors, 0.1))
    assert bands["hybrid"] == pytest.approx((min(low, 1.0), max(high, 1.0)))
    # dse evaluate of a hybrid workload carries that band (its plan searched) and says so.
    hybrid = api.evaluate("gb300", "nemotron-3-nano-30b-a3b", 64)
    dense = api.evaluate("gb300", "llama3.1-8b", 64)
    assert (hybrid.interval_architecture, dense.interval_architecture) == ("hybrid", "dense")
    searched = interval("step_time_s", 1.0, full_run=False, moe=True, hybrid=True, searched=True)
    low, high = hybrid.interval["step_time_s"]
    assert (low / hybrid.step_time_s, high / hybrid.step_time_s) == pytest.approx(searched)
    # its plan searched, the hybrid band starts above the dense one (since the hybrids' memory-
    # bound time runs at Blackwell's measured bandwidth share, 2026-12-07, its top no longer lies
    # above the dense band's, which the dense rows' search shifts widen)
    assert low / hybrid.step_time_s > dense.interval["step_time_s"][0] / dense.step_time_s


def test_evaluate_widens_the_band_only_when_the_plan_is_searched() -> None:
    plan = {"tp": 8, "pp": 4, "cp": 1, "vp": 1, "microbatch": 1, "recompute": "selective"}
    plan |= {"zero_stage": 1, "schedule": "1f1b", "ep": 1}
    pinned = api.evaluate("h100-sxm", "llama3.1-70b", 1024, plan=plan)
    free = api.evaluate("h100-sxm", "llama3.1-70b", 1024)
    ratios = [e.interval["step_time_s"][1] / e.step_time_s for e in (pinned, free)]
    assert ratios[1] > ratios[0]


def _next_generation_chip(tmp_path: Path) -> Path:
    # The H100's own file with another family: every number the same, only its calibration
    # status differs (the vendor's scale, nvidia, is H100's family's neighbour, not its own).
    from dse.catalog.chips import load_chip

    text = load_chip("h100-sxm").path.read_text()
    path = tmp_path / "h100-next.toml"
    path.write_text(text.replace('family = "nvidia-hopper"', 'family = "nvidia-rubin"'))
    return path


def test_a_chip_of_a_new_family_gets_the_wider_band_of_a_family_left_out(
    tmp_path: Path,
) -> None:
    chip = _next_generation_chip(tmp_path)
    known = api.evaluate("h100-sxm", "llama3.1-70b", 4096)
    new = api.evaluate(chip, "llama3.1-70b", 4096)
    assert known.interval_basis == "source" and new.interval_basis == "family"
    for e in (known, new):
        low, high = e.interval["training_days"]
        assert low <= e.training_days <= high
    widths = [
        np.log(e.interval["step_time_s"][1] / e.interval["step_time_s"][0]) for e in (known, new)
    ]
    assert widths[1] > widths[0]


def test_a_space_that_sets_the_family_scale_gets_the_family_band(tmp_path: Path) -> None:
    known = tmp_path / "known.toml"
    known.write_text(H100_SPACE)
    scaled = tmp_path / "scaled.toml"
    scaled.write_text(H100_SPACE + "[fixed]\ngemm_efficiency_scale = 0.9\n")
    frames = [api.sweep(path, "llama3.1-70b", method="grid", seed=0) for path in (known, scaled)]
    assert [f.attrs["dse"]["interval_basis"] for f in frames] == ["source", "family"]
    assert {f.attrs["dse"]["interval_architecture"] for f in frames} == {"dense"}
    widths = [float(np.log(f["step_time_s_high"] / f["step_time_s_low"]).iloc[0]) for f in frames]
    assert widths[1] > widths[0]
