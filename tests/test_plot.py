"""``dse plot``: PNG by matplotlib, interactive HTML by plotly with design parameters on hover."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dse.export import write_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    cost = rng.random(n) * 1e6 + 1e5
    data = {
        "node": np.array(["n3", "n2"])[rng.integers(0, 2, n)],
        "compute_units": rng.integers(64, 256, n),
        "clock_ghz": rng.choice([1.5, 2.0], n),
        "tdp_w": np.full(n, 700.0),
        "cost_usd": cost,
        "energy_mwh": 1e9 / cost + rng.random(n) * 100,
        "training_days": rng.random(n) * 100 + 1,
        "feasible": rng.random(n) < 0.9,
        "pareto": np.zeros(n, dtype=bool),
    }
    path = tmp_path / "results.parquet"
    write_results(path, data, {})
    return path


def test_png(dse: Callable[..., Any], results: Path, tmp_path: Path) -> None:
    out = tmp_path / "front.png"
    result = dse("plot", results, "--out", out)
    assert result.code == 0, result.err
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert out.stat().st_size > 20_000
    assert "Pareto designs of 300 rows" in result.out


def test_html_shows_design_parameters_on_hover(
    dse: Callable[..., Any], results: Path, tmp_path: Path
) -> None:
    out = tmp_path / "front.html"
    result = dse("plot", results, "--out", out)
    assert result.code == 0, result.err
    html = out.read_text()
    assert "plotly" in html.lower() and "parcoords" in html
    assert "node: n" in html and "compute_units: " in html  # hover text of the points
    assert "tdp_w: " not in html  # a constant is no use on hover or as an axis


def test_two_objectives_and_bad_suffix(
    dse: Callable[..., Any], results: Path, tmp_path: Path
) -> None:
    two = dse("plot", results, "--out", tmp_path / "two.png", "--minimize", "cost_usd",
              "--maximize", "training_days")  # fmt: skip
    assert two.code == 0, two.err
    bad = dse("plot", results, "--out", tmp_path / "front.jpg")
    assert bad.code == 2 and "--out: expected a file name ending in one of" in bad.err
    one = dse("plot", results, "--out", tmp_path / "one.png", "--minimize", "cost_usd")
    assert one.code == 2 and "at least two objectives" in one.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.parquet", "two.png"]
