"""Pareto filtering and hypervolume (moocore), the running front, ``dse pareto``, and results
files in three formats with provenance, written atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dse.errors import InputError
from dse.export import ResultsWriter, read_results, write_results
from dse.pareto import ParetoFront, hypervolume, nondominated, reference_point


def brute_force_front(F: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Reference definition: a feasible row no feasible row dominates (ties kept)."""
    n = len(F)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if not feasible[i]:
            continue
        better_eq = np.all(F[feasible] <= F[i], axis=1)
        better = np.any(F[feasible] < F[i], axis=1)
        out[i] = not np.any(better_eq & better)
    return out


def test_nondominated_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(300, 2))
    F = np.column_stack([a, 6 - a.sum(axis=1) + rng.integers(0, 2, 300)]).astype(float)
    feasible = rng.random(300) < 0.7
    front = nondominated(F, feasible)
    assert np.array_equal(front, brute_force_front(F, feasible))
    assert len(np.unique(F[front], axis=0)) < front.sum()  # duplicates on the front all count
    assert not nondominated(F, np.zeros(300, dtype=bool)).any()


def test_running_front_equals_the_front_of_the_whole_stream() -> None:
    rng = np.random.default_rng(1)
    F = rng.random((1000, 3))
    F[:, 2] = 2.0 - F[:, 0] - F[:, 1] + 0.1 * rng.random(1000)
    feasible = rng.random(1000) < 0.8
    front = ParetoFront(3)
    for start in range(0, 1000, 64):
        rows = slice(start, start + 64)
        ids = np.arange(1000)[rows]
        front.update(F[rows], ids, feasible[rows], payload={"id": ids})
    expected = np.flatnonzero(nondominated(F, feasible))
    assert np.array_equal(np.sort(front.ids), expected)
    assert np.array_equal(front.sorted_payload()["id"], expected)


def test_hypervolume_of_known_sets() -> None:
    assert hypervolume(np.array([[1.0, 1.0]]), np.array([3.0, 3.0])) == pytest.approx(4.0)
    two = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert hypervolume(two, np.array([3.0, 3.0])) == pytest.approx(3.0)
    assert hypervolume(np.empty((0, 2)), np.array([3.0, 3.0])) == 0.0
    assert reference_point(two).tolist() == pytest.approx([2.2, 2.2])
    assert reference_point(np.array([[-1.0], [-2.0]])).tolist() == pytest.approx([-0.9])


def columns(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {
        "node": np.array(["n3", "n4"])[rng.integers(0, 2, n)],
        "num_chips": rng.integers(1, 100, n),
        "cost_usd": rng.random(n) * 1e6,
        "energy_mwh": rng.random(n) * 1e3,
        "training_days": rng.random(n) * 100,
        "feasible": rng.random(n) < 0.8,
        "pareto": np.zeros(n, dtype=bool),
    }


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_results_round_trip_with_provenance(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"r{suffix}"
    data = columns(50)
    with ResultsWriter(out, {"workload": "w", "seed": 3}) as writer:
        writer.write({k: v[:20] for k, v in data.items()})
        writer.write({k: v[20:] for k, v in data.items()})
    frame, meta = read_results(out)
    pd.testing.assert_frame_equal(frame, pd.DataFrame(data), check_dtype=False)
    assert meta["workload"] == "w" and meta["seed"] == 3 and meta["rows"] == 50
    sidecar = tmp_path / f"r{suffix}.meta.json"
    assert sidecar.is_file() == (suffix != ".parquet")
    if suffix == ".json":
        assert isinstance(json.loads(out.read_text()), list)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [out.name] + ([sidecar.name] if suffix != ".parquet" else [])
    )


def test_writer_error_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    with pytest.raises(RuntimeError), ResultsWriter(out, {}) as writer:
        writer.write(columns(10))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="writable"):
        ResultsWriter(tmp_path / "no" / "r.csv", {})


def test_pareto_command_writes_the_front_and_reports_hypervolume(
    dse: Callable[..., Any], tmp_path: Path
) -> None:
    data = columns(400)
    source = tmp_path / "all.parquet"
    write_results(source, data, {"objectives": [{"name": "cost_usd"}, {"name": "training_days"}]})
    out = tmp_path / "front.csv"
    result = dse("pareto", source, "--out", out, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    F = np.column_stack([data["cost_usd"], data["training_days"]])
    front = nondominated(F, data["feasible"])  # the objectives come from the file's provenance
    assert report["front"] == front.sum() and report["rows"] == 400
    reference = 1.1 * F[data["feasible"]].max(axis=0)
    assert report["reference"] == pytest.approx(
        {"cost_usd": reference[0], "training_days": reference[1]}
    )
    assert report["hypervolume"] == pytest.approx(hypervolume(F[front], reference))
    rows, meta = read_results(out)
    assert len(rows) == front.sum() and rows["pareto"].all()
    assert np.allclose(np.sort(rows["cost_usd"]), np.sort(data["cost_usd"][front]))
    assert meta["pareto_of"] == str(source)

    given = dse("pareto", source, "--ref", "2e6,200", "--minimize", "cost_usd", "--minimize",
                "training_days", "--out", tmp_path / "given.csv", "--format", "json")  # fmt: skip
    assert given.json()["hypervolume"] == pytest.approx(
        hypervolume(F[front], np.array([2e6, 200.0]))
    )
    assert given.json()["hypervolume_unit"] == "USD·days"
    three = dse("pareto", source, "--format", "json")  # without --out: the front's rows
    assert three.code == 0 and len(three.json()) == front.sum()
    assert "hypervolume:" in three.err and "USD·days" in three.err

    maximized = dse("pareto", source, "--minimize", "cost_usd", "--maximize", "energy_mwh",
                    "--format", "json")  # fmt: skip
    G = np.column_stack([data["cost_usd"], -data["energy_mwh"]])
    assert len(maximized.json()) == nondominated(G, data["feasible"]).sum()


def test_pareto_command_errors(dse: Callable[..., Any], tmp_path: Path) -> None:
    source = tmp_path / "all.csv"
    write_results(source, columns(20), {})
    for args, fragment in [
        ((tmp_path / "none.csv",), "expected an existing results file"),
        ((source, "--minimize", "speed"), "speed: expected an objective column"),
        ((source, "--minimize", "node"), "node: expected a numeric column"),
        ((source, "--ref", "1,2"), "--ref: expected 3 comma-separated numbers"),
        ((source, "--out", tmp_path / "f.txt"), "--out: expected a file name ending"),
    ]:
        result = dse("pareto", *args)
        assert result.code == 2 and fragment in result.err, result.err
        assert result.err.count("\n") == 1
