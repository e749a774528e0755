"""The cost of scale (issue 6): C ≈ 120·P², MoE divides by K, smallest cluster for a deadline."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

import dse.framework.scaling as scaling_module
from dse.catalog.chips import load_chip
from dse.catalog.workloads import load_workload, training_flops
from dse.cli import main
from dse.designs import from_chips
from dse.errors import InputError
from dse.framework.moe import mixture_of_experts
from dse.framework.scaling import cluster_grid, parameter_workload
from dse.model.evaluate import evaluate

SIZES = ("--from", "1e9", "--to", "1e13", "--points", "5")
KEYS = {
    "total_params",
    "active_params",
    "training_flops",
    "flops_over_120p2",
    "num_chips",
    "training_days",
    "cluster_power_mw",
    "energy_mwh",
    "cost_usd",
    "capex_usd",
    "within_power",
    "feasible",
}


@pytest.fixture(scope="module")
def dense_and_moe() -> tuple[list[dict], list[dict]]:
    """``dse scaling ... --format json``, dense and with --moe-k 8 (run once per module)."""

    def rows(*extra: str) -> list[dict]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
            main(["scaling", "--chip", "h100-sxm", *SIZES, "--format", "json", *extra])
        assert stop.value.code == 0
        return json.loads(out.getvalue())

    return rows(), rows("--moe-k", "8")


def test_training_flops_follow_120_p_squared(dense_and_moe) -> None:
    dense, _ = dense_and_moe
    assert len(dense) == 5
    params = [row["total_params"] for row in dense]
    assert params == pytest.approx(list(np.geomspace(1e9, 1e13, 5)))
    for row in dense:
        assert set(row) >= KEYS
        ratio = row["training_flops"] / (120 * row["total_params"] ** 2)
        assert row["flops_over_120p2"] == pytest.approx(ratio)
        assert 0.95 <= ratio <= 1.35, row  # attention adds a little, most at small P
        assert isinstance(row["within_power"], bool)
        assert isinstance(row["feasible"], bool)
    ratios = [row["flops_over_120p2"] for row in dense]
    assert ratios == sorted(ratios, reverse=True)  # attention's share falls with size


def test_moe_divides_the_flops_by_k(dense_and_moe) -> None:
    dense, moe = dense_and_moe
    for d, m in zip(dense, moe, strict=True):
        assert m["total_params"] == pytest.approx(d["total_params"])
        assert m["active_params"] == pytest.approx(d["total_params"] / 8)
        assert 7.0 <= d["training_flops"] / m["training_flops"] <= 9.0
        assert m["num_chips"] <= d["num_chips"]


def test_deadline_gives_the_smallest_cluster_that_meets_it(dense_and_moe) -> None:
    dense, _ = dense_and_moe
    chip = load_chip("h100-sxm")
    met = [row for row in dense if row["meets_deadline"]]
    assert len(met) >= 3
    for row in met:
        assert row["training_days"] <= 90.0
    row = next(r for r in met if r["num_chips"] > chip.scale_up_domain)
    smaller = row["num_chips"] - chip.scale_up_domain
    w = parameter_workload(row["total_params"])
    metrics = evaluate(from_chips([chip], smaller), w)
    assert metrics.columns["training_days"][0] > 90.0  # one scale-up domain fewer misses it
    # Power and the power check agree.
    for r in dense:
        assert r["within_power"] == (r["cluster_power_mw"] <= 100.0)


def test_one_evaluate_call_per_grid_not_per_design(monkeypatch) -> None:
    calls: list[int] = []

    def counting(designs, *args, **kwargs):
        calls.append(len(designs))
        return evaluate(designs, *args, **kwargs)

    monkeypatch.setattr(scaling_module, "evaluate", counting)
    rows = scaling_module.cost_of_scale(load_chip("h100-sxm"), np.array([1e10, 1e11]))
    assert len(rows) == 2
    assert len(calls) <= 4  # grid + refinement per size
    assert max(calls) >= 50  # many cluster sizes in one call


def test_fixed_cluster_times_every_size(dse) -> None:
    result = dse(
        "scaling", "--chip", "a100-80gb", "--from", "1e9", "--to", "1e11", "--points", "3",
        "--num-chips", "1024", "--max-power-mw", "0.5", "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = result.json()
    assert [r["num_chips"] for r in rows] == [1024] * 3
    assert all(r["meets_deadline"] is None for r in rows)
    days = [r["training_days"] for r in rows]
    assert days[0] < days[1] < days[2]
    assert 50 < days[2] / days[1] < 200  # C grows 100x per 10x in P
    assert [r["within_power"] for r in rows] == [r["cluster_power_mw"] <= 0.5 for r in rows]


def test_parameter_workload_shapes() -> None:
    dense = parameter_workload(1e12)
    assert dense.total_params == dense.active_params == 1e12
    assert dense.tokens == 2e13
    assert dense.heads % 8 == 0 and dense.d_model == 128 * dense.heads
    moe = parameter_workload(1e12, moe_k=4)
    assert moe.is_moe and moe.moe_k == pytest.approx(4.0)
    assert moe.tokens == 2e13
    assert moe.d_model < dense.d_model  # width follows the active count
    assert moe.global_batch_tokens < dense.global_batch_tokens  # batch follows the compute


def test_mixture_of_experts_of_a_catalog_model() -> None:
    llama = load_workload("llama3.1-70b")
    moe = mixture_of_experts(llama, 2.0)
    assert moe.total_params == llama.total_params
    assert moe.active_params == pytest.approx(llama.total_params / 2)
    assert (moe.layers, moe.d_model, moe.heads) == (llama.layers, llama.d_model, llama.heads)
    assert moe.experts_per_token < moe.experts
    assert training_flops(moe) < 0.6 * training_flops(llama)
    with pytest.raises(InputError, match="active for every token"):
        mixture_of_experts(llama, 20.0)  # attention alone is more than 1/20 of the model


def test_cluster_grid_is_ascending_whole_domains() -> None:
    grid = cluster_grid(8, 2**20)
    assert grid[0] == 1 and grid[-1] == 2**20
    assert np.all(np.diff(grid) > 0)
    assert np.all(grid[grid >= 8] % 8 == 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--days", "30", "--num-chips", "64"), "either --days or --num-chips"),
        (("--from", "0"), "--from"),
        (("--from", "1e12", "--to", "1e9"), "--to"),
        (("--moe-k", "0.5"), "--moe-k"),
        (("--plot", "figure.jpg"), "--plot"),
    ],
)
def test_bad_input_is_one_line(dse, args, message) -> None:
    result = dse("scaling", "--chip", "h100-sxm", "--points", "2", *args)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_plot_files(dse, tmp_path) -> None:
    png = tmp_path / "scale.png"
    result = dse("scaling", "--chip", "h100-sxm", *SIZES, "--plot", png)
    assert result.code == 0, result.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = tmp_path / "scale.html"
    result = dse("scaling", "--chip", "h100-sxm", "--points", "2", "--plot", html)
    assert result.code == 0, result.err
    assert "plotly" in html.read_text()
