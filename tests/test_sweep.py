"""``dse sweep``: every design's parameters and metrics, feasibility and an exact Pareto mark,
streamed in chunks, written atomically; bad input is one line and exit status 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import moocore
import numpy as np
import pandas as pd
import pytest

from dse.designs import Designs
from dse.export import read_results
from dse.intervals import INTERVAL_COLUMNS
from dse.model.evaluate import METRICS, PLAN_COLUMNS
from dse.model.plans import RECOMPUTE
from dse.search.problem import Problem

SMALL = """
name = "small"
[dimensions]
node = ["n4", "n3"]
compute_units = { low = 96, high = 160, step = 32 }
hbm_generation = { choices = ["hbm3e", "hbm4"] }
hbm_stacks = { low = 4, high = 6 }
num_chips = { low = 2048, high = 8192, log = true }
[fixed]
tdp_w = 700
[constraints]
max_training_days = 100
"""
OBJECTIVES = ["cost_usd", "energy_mwh", "training_days"]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def exact_pareto(frame: pd.DataFrame) -> np.ndarray:
    """The non-dominated feasible rows, recomputed with moocore from the file's columns."""
    feasible = frame["feasible"].to_numpy(dtype=bool)
    out = np.zeros(len(frame), dtype=bool)
    F = frame.loc[feasible, OBJECTIVES].to_numpy()
    out[feasible] = moocore.is_nondominated(F, keep_weakly=True)
    return out


def test_random_sweep_of_shipped_space_marks_exactly_the_front(
    dse: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "sweep.parquet"
    result = dse(
        "sweep", "spaces/accelerator.toml", "--workload", "llama3.1-70b", "--method", "random",
        "--samples", "3000", "--seed", "1", "--chunk-size", "700", "--out", out, "--format", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    summary = result.json()
    frame, meta = read_results(out)
    assert len(frame) == summary["rows"] == 3000
    design = [c for c in Designs.names() if c != "unit_price_usd"]
    constraints = [c for c in frame.columns if c.startswith("g_")]
    intervals = list(INTERVAL_COLUMNS)
    plan = list(PLAN_COLUMNS)
    expected = design + list(METRICS) + intervals + plan + constraints + ["feasible", "pareto"]
    assert list(frame.columns) == expected
    assert {"g_max_die_area_mm2", "g_max_cluster_power_mw", "g_max_training_days"} <= set(
        constraints
    )
    assert set(frame["node"]) <= {"n5", "n4", "n3", "n2"}  # categoricals by name
    assert set(frame["recompute"]) <= set(RECOMPUTE)  # policies by name
    assert frame["feasible"].any() and not frame["feasible"].all()
    pareto = frame["pareto"].to_numpy(dtype=bool)
    assert np.array_equal(pareto, exact_pareto(frame))
    assert summary["pareto"] == pareto.sum() > 1
    assert meta["workload"] == "llama3.1-70b" and meta["method"] == "random"
    assert meta["seed"] == 1 and meta["samples"] == 3000 and meta["rows"] == 3000
    assert len(meta["space_sha256"]) == 64 and meta["dse_version"]
    request = meta["request"]  # the API call the command made, not the command line
    assert request["function"] == "dse.sweep" and request["arguments"]["seed"] == 1
    assert request["arguments"]["samples"] == 3000 and request["arguments"]["space"].endswith(
        "accelerator.toml"
    )
    assert meta["versions"]["dse"] == meta["dse_version"] and "numpy" in meta["versions"]


def test_rows_do_not_depend_on_chunk_size(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for out, chunk in ((a, "7"), (b, "500")):
        result = dse("sweep", small, "--workload", "llama3.1-70b", "--samples", "90",
                     "--seed", "3", "--chunk-size", chunk, "--out", out)  # fmt: skip
        assert result.code == 0, result.err
    assert a.read_text() == b.read_text()
    meta = json.loads((tmp_path / "a.csv.meta.json").read_text())
    assert meta["samples"] == 90 and meta["space"].endswith("small.toml")


def test_grid_evaluates_every_point_and_json_round_trips(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "grid.json"
    result = dse("sweep", small, "--workload", "llama3.1-70b", "--method", "grid",
                 "--chunk-size", "20", "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    frame, meta = read_results(out)
    assert len(frame) == 2 * 3 * 2 * 3 * 3 == meta["samples"]
    keys = frame[["node", "compute_units", "hbm_generation", "hbm_stacks", "num_chips"]]
    assert not keys.duplicated().any()
    assert np.array_equal(frame["pareto"].to_numpy(dtype=bool), exact_pareto(frame))


def test_pareto_only_keeps_the_same_front(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    full, front = tmp_path / "full.parquet", tmp_path / "front.parquet"
    for out, extra in ((full, ()), (front, ("--pareto-only",))):
        result = dse("sweep", small, "--workload", "llama3.1-70b", "--method", "lhs",
                     "--samples", "120", "--chunk-size", "25", "--out", out, *extra)  # fmt: skip
        assert result.code == 0, result.err
    everything, _ = read_results(full)
    only, meta = read_results(front)
    expected = everything[everything["pareto"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(only, expected)
    assert meta["pareto_only"] is True


def test_worker_processes_give_the_same_rows(small: Path, tmp_path: Path) -> None:
    from dse.catalog.workloads import load_workload
    from dse.search import run_sweep
    from dse.space import load_space

    problem = Problem(load_space(small), load_workload("llama3.1-70b"))
    files = []
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}.parquet"
        run_sweep(problem, out, {}, method="grid", chunk_size=30, jobs=jobs)
        files.append(read_results(out)[0])
    pd.testing.assert_frame_equal(files[0], files[1])


def one_line_error(result: Any) -> str:
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dse: error: "), result.err
    assert "Traceback" not in result.err
    return lines[0]


@pytest.mark.parametrize(
    ("space_text", "workload", "out_name", "fragment"),
    [
        (SMALL.replace("low = 96, high = 160", "low = 160, high = 96"), "llama3.1-70b",
         "out.parquet", "dimensions.compute_units: expected low <= high"),
        (SMALL.replace("hbm_stacks", "hbm_stackz"), "llama3.1-70b", "out.parquet",
         "dimensions.hbm_stackz: expected a design parameter"),
        (SMALL, "llama9-1t", "out.parquet", "unknown workload 'llama9-1t'"),
        (SMALL, "llama3.1-70b", "missing/out.parquet", "--out: expected a path in a writable folder"),
        (SMALL, "llama3.1-70b", "out.xlsx", "--out: expected a file name ending in one of"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_leaves_no_file(
    dse: Callable[..., Any],
    tmp_path: Path,
    space_text: str,
    workload: str,
    out_name: str,
    fragment: str,
) -> None:
    space = tmp_path / "space.toml"
    space.write_text(space_text)
    before = set(tmp_path.iterdir())
    result = dse("sweep", space, "--workload", workload, "--samples", "20", "--out",
                 tmp_path / out_name)  # fmt: skip
    assert fragment in one_line_error(result)
    assert set(tmp_path.iterdir()) == before


def test_output_path_under_a_file_is_refused(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = dse("sweep", small, "--workload", "llama3.1-70b", "--out", blocker / "x.csv")
    assert "--out" in one_line_error(result)


def test_failure_mid_sweep_leaves_no_results_but_resumes(
    dse: Callable[..., Any], small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    original = Problem.evaluate

    def failing(self: Problem, X: np.ndarray) -> Any:
        # Count only the sweep's chunks of 10, not the estimate's timing batches.
        calls["n"] += len(X) == 10
        if calls["n"] == 3:
            raise OSError("disk on fire")
        return original(self, X)

    monkeypatch.setattr(Problem, "evaluate", failing)
    out = tmp_path / "out.csv"
    result = dse("sweep", small, "--workload", "llama3.1-70b", "--samples", "50", "--chunk-size",
                 "10", "--out", out)  # fmt: skip
    assert "disk on fire" in one_line_error(result)
    # No results file; the two completed chunks are kept for a resume (issue 5).
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out.csv.manifest.json",
        "out.csv.parts",
        "small.toml",
    ]
    monkeypatch.setattr(Problem, "evaluate", original)
    dse("sweep", small, "--workload", "llama3.1-70b", "--samples", "50", "--chunk-size",
        "10", "--out", out)  # fmt: skip
    assert not (tmp_path / "out.csv.manifest.json").exists()
    assert not (tmp_path / "out.csv.parts").exists()


def test_grid_refuses_samples(dse: Callable[..., Any], small: Path, tmp_path: Path) -> None:
    result = dse("sweep", small, "--workload", "llama3.1-70b", "--method", "grid",
                 "--samples", "5", "--out", tmp_path / "x.csv")  # fmt: skip
    assert "--samples" in one_line_error(result)


def test_model_settings_apply_and_are_recorded(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    runs = {}
    for name, extra in (("default", ()), ("pue", ("--pue", "1.5"))):
        out = tmp_path / f"{name}.parquet"
        result = dse("sweep", small, "--workload", "llama3.1-70b", "--samples", "20",
                     "--out", out, *extra)  # fmt: skip
        assert result.code == 0, result.err
        runs[name] = read_results(out)
    (base, base_meta), (high, high_meta) = runs["default"], runs["pue"]
    assert base_meta["settings"] == {} and high_meta["settings"] == {"pue": 1.5}
    assert np.all(high["energy_mwh"] > base["energy_mwh"])
