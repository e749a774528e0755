"""Uncertain constants (chips/technology/uncertainty.toml), the per-row model under drawn
constants, ``dse sensitivity`` and ``dse robust``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dse
from dse.catalog.technology import load_technology
from dse.errors import InputError
from dse.settings import load_settings
from dse.uncertainty.constants import load_uncertainty, uncertainty_path
from dse.uncertainty.perturb import evaluate_drawn
from dse.uncertainty.sensitivity import space_constants

WORKLOAD = "llama3.1-70b"


def _tags(source: str) -> set[str]:
    match = re.match(r"\s*\[([A-Z/]+)\]", source)
    return set(match.group(1).split("/")) if match else set()


def _sourced_constants() -> dict[str, str]:
    """Every numeric constant of the technology tables and defaults → its source note."""
    technology = load_technology()
    out: dict[str, str] = {}
    for table in (*technology.nodes.values(), *technology.memories.values()):
        out.update({f"tech.{table.id}.{k}": v for k, v in table.sources.items()})
    for family in technology.families.values():
        out.update({f"tech.{family.id}.{k}": v for k, v in family.sources.items()})
    for section, values in technology.silicon.items():
        out.update({f"tech.{section}.{k}": v for k, v in values["sources"].items()})
    out.update({f"settings.{k}": v for k, v in load_settings().sources.items()})
    return out


def test_every_estimated_or_calibrated_constant_has_a_distribution() -> None:
    names = {u.name for u in load_uncertainty()}
    needed = {name for name, source in _sourced_constants().items() if _tags(source) & {"E", "C"}}
    assert needed, "no [E]/[C] constants found: the tag pattern is stale"
    assert sorted(needed - names) == []


def test_every_distribution_holds_its_value_and_has_a_reason() -> None:
    for u in load_uncertainty():
        assert u.reason.strip()
        draws = u.draw(np.random.default_rng(0), 2000)
        low, high = u.bounds
        assert np.all(np.isfinite(draws))
        assert low is None or draws.min() >= low
        assert high is None or draws.max() <= high
        if u.sigma is None:
            assert u.low is not None and u.high is not None
            assert u.low <= u.value <= u.high
        elif u.sigma > 0:  # log-normal: median at the file's value
            assert np.median(draws) == pytest.approx(u.value, rel=0.1)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (
            "[tech.n9]\nwafer_price_usd = { sigma = 0.1, reason = 'x' }",
            "tech.n9",
            "a technology table",
        ),
        ("[tech.n5]\nname = { sigma = 0.1, reason = 'x' }", "tech.n5.name", "a numeric key"),
        ("[tech.n5]\nwafer_price_usd = { sigma = -1, reason = 'x' }", "sigma", ">= 0"),
        ("[tech.n5]\nwafer_price_usd = { sigma = 0.1 }", "wafer_price_usd", "a table {sigma"),
        (
            "[tech.n5]\nwafer_price_usd = { low = 1, high = 2, reason = 'x' }",
            "wafer_price_usd",
            "low <= the value",
        ),
        (
            "[settings]\ngoodput = { low = 0.5, high = 1.5, reason = 'x' }",
            "settings.goodput",
            "within the key's bounds",
        ),
        (
            "[settings]\nno_such = { sigma = 0.1, reason = 'x' }",
            "settings.no_such",
            "a numeric setting",
        ),
        ("[settings]\ngoodput = { sigma = 0.1, reason = '' }", "reason", "a non-empty string"),
        ("[other]\nx = 1", "other", "one of the tables"),
        ("[settings]\ngoodput = { plus_minus = -1, reason = 'x' }", "plus_minus", "a number >= 0"),
    ],
)
def test_bad_uncertainty_files_name_file_key_and_rule(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = tmp_path / "uncertainty.toml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_uncertainty(path)
    message = str(caught.value)
    assert str(path) in message and key in message and expected in message


def test_plus_minus_follows_the_value_within_its_bounds() -> None:
    by_name = {u.name: u for u in load_uncertainty()}
    overlap = by_name["settings.tp_overlap"]  # 0 ± 0.125 in [0, 1]
    assert overlap.value == 0.0
    assert (overlap.low, overlap.high) == (0.0, pytest.approx(0.125))
    moe = by_name["settings.moe_kernel_overhead_us"]  # 30 ± 7.5, inside its bounds
    assert (moe.low, moe.high) == (pytest.approx(moe.value - 7.5), pytest.approx(moe.value + 7.5))
    comm = by_name["settings.moe_comm_overlap"]  # 0.5 ± 0.25, inside [0, 1]
    assert (comm.low, comm.high) == (pytest.approx(0.25), pytest.approx(0.75))
    goodput = by_name["settings.goodput"]
    assert goodput.low < load_settings().goodput < goodput.high


def test_bad_uncertainty_file_is_one_line_on_the_command_line(
    dse_cli: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "u.toml"
    path.write_text("[tech.n5]\nwafer_price_usd = { sigma = 9, reason = 'x' }\n")
    result = dse_cli(
        "sensitivity", "accelerator", "--workload", WORKLOAD, "--samples", "4",
        "--uncertainty", path,
    )  # fmt: skip
    assert result.code == 2
    assert result.err.count("\n") == 1 and "wafer_price_usd.sigma" in result.err


def test_nominal_constants_reproduce_the_model_exactly() -> None:
    """Per-row technology tables and settings at the files' values change nothing."""
    job = dse.api.problem("accelerator", WORKLOAD)
    X = job.space.random(0, 600, 3)
    reference = job.evaluate(X)
    designs = job.space.decode(X)
    constants = space_constants(job)
    draws = {u.name: np.full(len(designs), u.value) for u in constants}
    outcome = evaluate_drawn(
        designs, draws, job.workload, job.settings, job.plans, job.space.objectives, job.space,
        dse.load_chip("h100-sxm"),
    )  # fmt: skip
    np.testing.assert_array_equal(outcome.F, reference.F)
    np.testing.assert_array_equal(outcome.feasible, reference.feasible)


def test_drawn_rows_match_one_model_call_per_draw() -> None:
    """Row i under draw i equals evaluating design i alone with that draw's tables and
    settings (the vectorized layout does not mix rows)."""
    from dataclasses import replace

    from dse.model.evaluate import evaluate

    job = dse.api.problem("accelerator", WORKLOAD)
    designs = job.space.decode(job.space.random(0, 6, 5))
    n5 = "tech.n5.wafer_price_usd"
    draws = {
        n5: np.linspace(10_000, 25_000, 6),
        "settings.goodput": np.linspace(0.7, 0.9, 6),
        "tech.yield.systematic_yield": np.linspace(0.9, 0.98, 6),
        "tech.power.dvfs_exponent": np.linspace(2.0, 3.0, 6),
    }
    together = evaluate_drawn(
        designs, draws, job.workload, job.settings, job.plans, job.space.objectives, job.space
    )
    technology = load_technology()
    for i in range(6):
        nodes = dict(technology.nodes)
        nodes["n5"] = replace(nodes["n5"], wafer_price_usd=float(draws[n5][i]))
        silicon = {k: dict(v) for k, v in technology.silicon.items()}
        silicon["yield"]["systematic_yield"] = float(draws["tech.yield.systematic_yield"][i])
        silicon["power"]["dvfs_exponent"] = float(draws["tech.power.dvfs_exponent"][i])
        alone = replace(
            technology,
            nodes=type(technology.nodes)(nodes),  # type: ignore[arg-type]
            silicon=type(technology.silicon)(silicon),  # type: ignore[arg-type]
        )
        settings = job.settings.with_overrides(goodput=float(draws["settings.goodput"][i]))
        metrics = evaluate(designs.take([i]), job.workload, settings, job.plans, technology=alone)
        for j, objective in enumerate(job.space.objectives):
            assert together.F[i, j] == pytest.approx(metrics.columns[objective.name][0], rel=1e-12)


def test_settings_given_explicitly_are_not_drawn() -> None:
    names = {u.name for u in space_constants(dse.api.problem("accelerator", WORKLOAD))}
    assert "settings.goodput" in names and "tech.n2.wafer_price_usd" in names
    assert "tech.n16.wafer_price_usd" not in names  # no design of the space is on n16
    given = dse.api.problem("accelerator", WORKLOAD, settings={"goodput": 0.9})
    assert "settings.goodput" not in {u.name for u in space_constants(given)}


# ---- sensitivity -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def indices() -> pd.DataFrame:
    return dse.sensitivity("accelerator", WORKLOAD, samples=64, seed=3)


def test_sobol_indices_cover_every_objective_and_factor(indices: pd.DataFrame) -> None:
    meta = indices.attrs["dse_sensitivity"]
    factors = set(indices["factor"])
    assert set(indices["objective"]) == {"cost_usd", "energy_mwh", "training_days"}
    assert {"num_chips", "node", "settings.goodput", "tech.n2.wafer_price_usd"} <= factors
    assert len(indices) == 3 * meta["factor_count"]
    assert meta["evaluations"] == 64 * (meta["factor_count"] + 2)
    assert np.all(indices["total_conf"] >= 0)


def test_first_order_indices_sum_to_at_most_one_within_the_error(indices: pd.DataFrame) -> None:
    for objective, part in indices.groupby("objective"):
        error = float(np.sqrt((part["first_order_conf"] ** 2).sum()))
        assert part["first_order"].sum() <= 1.0 + error, objective


def test_the_cluster_size_drives_training_time(indices: pd.DataFrame) -> None:
    days = indices[indices["objective"] == "training_days"].set_index("factor")
    assert days["total"].idxmax() == "num_chips"


def test_same_seed_repeats_and_other_seeds_differ(indices: pd.DataFrame) -> None:
    again = dse.sensitivity("accelerator", WORKLOAD, samples=64, seed=3)
    pd.testing.assert_frame_equal(again, indices)
    other = dse.sensitivity("accelerator", WORKLOAD, samples=64, seed=4)
    assert not np.allclose(other["total"], indices["total"])


def test_seed_zero_repeats_the_bootstrap_intervals_too() -> None:
    """Seed 0 (the CLI's default) must not fall back to an unseeded bootstrap: SALib's Sobol
    analysis reads a seed of 0 as none."""
    runs = [
        dse.sensitivity("accelerator", WORKLOAD, samples=8, seed=0, constants=False)
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_morris_screening_and_dimensions_only() -> None:
    frame = dse.sensitivity(
        "accelerator", WORKLOAD, samples=8, seed=1, method="morris", constants=False
    )
    assert set(frame["kind"]) == {"design"}
    assert {"mu_star", "mu_star_conf", "sigma"} <= set(frame.columns)
    assert np.all(frame["mu_star"] >= 0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"samples": 100}, "samples"),
        ({"method": "fast"}, "method"),
        ({"scale": "ln"}, "scale"),
        ({"plot_path": "bars.gif"}, "plot_path"),
    ],
)
def test_sensitivity_arguments_are_checked(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(InputError) as caught:
        dse.sensitivity("accelerator", WORKLOAD, **{"samples": 8, **kwargs})
    assert caught.value.argument == argument


@pytest.mark.slow
def test_sensitivity_command_json(dse_cli: Callable[..., Any], tmp_path: Path) -> None:
    """The issue's command at its full size: every objective and factor, repeatable."""
    args = (
        "sensitivity", "accelerator", "--workload", WORKLOAD, "--samples", "512", "--seed", "1",
        "--format", "json",
    )  # fmt: skip
    result = dse_cli(*args, "--plot", tmp_path / "bars.png")
    assert result.code == 0, result.err
    record = result.json()
    assert set(record["objectives"]) == {"cost_usd", "energy_mwh", "training_days"}
    for measures in record["objectives"].values():
        assert set(measures["first_order"]) == set(measures["total"]) == set(record["factors"])
        first = np.array(list(measures["first_order"].values()))
        conf = np.array(list(measures["first_order_conf"].values()))
        assert first.sum() <= 1.0 + np.sqrt((conf**2).sum())
    assert (tmp_path / "bars.png").stat().st_size > 0
    again = dse_cli(*args)
    assert again.out == result.out


def test_sensitivity_table_and_csv(dse_cli: Callable[..., Any]) -> None:
    args = ("sensitivity", "accelerator", "--workload", WORKLOAD, "--samples", "8")
    table = dse_cli(*args)
    assert table.code == 0, table.err
    assert "num_chips" in table.out and "evaluations" in table.out
    csv = dse_cli(*args, "--format", "csv")
    assert csv.out.splitlines()[0].startswith("objective,factor,kind,distribution,first_order")


# ---- robust ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("robust")
    dse.sweep(
        "accelerator", WORKLOAD, samples=2000, seed=1, out=folder / "sweep.parquet"
    )  # fmt: skip
    path = folder / "front.parquet"
    from dse.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["-q", "pareto", str(folder / "sweep.parquet"), "--out", str(path)])
    assert stop.value.code == 0
    return path


def test_p_pareto_is_a_share_and_varies_over_a_real_front(front: Path, tmp_path: Path) -> None:
    out = tmp_path / "robust.csv"
    rows = dse.robust(front, samples=40, seed=2, out=out)
    assert len(rows) >= 5
    assert rows["p_pareto"].between(0, 1).all()
    assert rows["p_pareto"].nunique() > 1
    assert (rows["p_pareto"] <= rows["p_feasible"]).all()
    for name in ("cost_usd", "energy_mwh", "training_days"):
        assert (rows[f"{name}_p10"] <= rows[f"{name}_p50"]).all()
        assert (rows[f"{name}_p50"] <= rows[f"{name}_p90"]).all()
    written = dse.load_results(out)
    assert list(written["p_pareto"]) == pytest.approx(list(rows["p_pareto"]))
    assert written.attrs["dse"]["robust"]["samples"] == 40


def test_certain_constants_keep_every_front_design_on_the_front(front: Path) -> None:
    rows = dse.robust(front, samples=3, seed=0, spread_scale=0)
    assert (rows["p_pareto"] == 1.0).all()
    np.testing.assert_allclose(rows["cost_usd_p50"], rows["cost_usd"], rtol=1e-12)


def test_certain_uncertainty_file_keeps_the_front(front: Path, tmp_path: Path) -> None:
    """An uncertainty file whose every constant has sigma 0 is the same as spread 0."""
    path = tmp_path / "certain.toml"
    lines: dict[str, list[str]] = {}
    for u in load_uncertainty(uncertainty_path()):
        table = u.name.rsplit(".", 1)[0]
        lines.setdefault(table, []).append(
            f'{u.key} = {{ low = {u.value!r}, high = {u.value!r}, reason = "certain" }}'
        )
    path.write_text("\n".join(f"[{t}]\n" + "\n".join(body) for t, body in lines.items()))
    rows = dse.robust(front, samples=4, seed=1, uncertainty=path)
    assert (rows["p_pareto"] == 1.0).all()


def test_same_seed_repeats(front: Path) -> None:
    one = dse.robust(front, samples=10, seed=5)
    two = dse.robust(front, samples=10, seed=5)
    pd.testing.assert_frame_equal(one, two)


def test_robust_command(dse_cli: Callable[..., Any], front: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "robust.json", tmp_path / "robust.png"
    result = dse_cli(
        "robust", front, "--samples", "8", "--seed", "1", "--out", out, "--plot", plot,
        "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["samples"] == 8 and 0 <= summary["p_pareto_min"] <= summary["p_pareto_max"] <= 1
    assert json.loads(out.read_text())[0]["p_pareto"] >= 0
    assert plot.stat().st_size > 0


def test_robust_needs_provenance(dse_cli: Callable[..., Any], tmp_path: Path) -> None:
    bare = tmp_path / "bare.csv"
    bare.write_text("cost_usd,energy_mwh,training_days\n1,2,3\n")
    result = dse_cli("robust", bare, "--out", tmp_path / "o.csv")
    assert result.code == 2 and "provenance" in result.err
    assert not (tmp_path / "o.csv").exists()


def test_the_base_chips_tdp_anchors_drawn_node_energy() -> None:
    """The base chip's energy-per-FLOP scale is derived from its TDP, so doubling its node's
    energy per FLOP changes nothing on that node and halves the others relative to it."""
    job = dse.api.problem("accelerator", WORKLOAD)
    designs = job.space.decode(job.space.random(0, 400, 7))
    n4 = load_technology().nodes["n4"]
    keys = ("energy_bf16_pj_per_flop", "energy_fp8_pj_per_flop", "energy_fp4_pj_per_flop")
    draws = {f"tech.n4.{k}": np.full(len(designs), 2.0 * getattr(n4, k)) for k in keys}
    base = dse.load_chip("h100-sxm")
    args = (job.workload, job.settings, job.plans, job.space.objectives, job.space, base)
    doubled = evaluate_drawn(designs, draws, *args)
    nominal = evaluate_drawn(designs, {k: v / 2.0 for k, v in draws.items()}, *args)
    on_n4 = designs.node == list(load_technology().nodes).index("n4")
    assert on_n4.any() and (~on_n4).any()
    np.testing.assert_allclose(doubled.F[on_n4], nominal.F[on_n4], rtol=1e-9)
    energy = [o.name for o in job.space.objectives].index("energy_mwh")
    assert np.all(doubled.F[~on_n4, energy] <= nominal.F[~on_n4, energy] * (1 + 1e-12))
    assert np.any(doubled.F[~on_n4, energy] < nominal.F[~on_n4, energy] * 0.99)


def test_robust_takes_a_front_dataframe_with_its_provenance() -> None:
    front = dse.pareto(dse.sweep("accelerator", WORKLOAD, samples=300, seed=2))
    rows = dse.robust(front, samples=4, seed=1, spread_scale=0)
    assert list(rows.index) == list(front.index)
    assert (rows["p_pareto"] == 1.0).all()
