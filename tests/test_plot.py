"""``dse plot``: PNG by matplotlib, interactive HTML by plotly with design parameters on hover."""

from __future__ import annotations

import itertools
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
    assert 'src="plotly.min.js"' in html  # plotly.js once beside the file, not inlined
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert out.stat().st_size < 1_000_000
    assert "training time (days)" in html and "cost (USD)" in html and "energy (MWh)" in html
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


def test_offline_html_inlines_plotly(
    dse: Callable[..., Any], results: Path, tmp_path: Path
) -> None:
    out = tmp_path / "front.html"
    result = dse("plot", results, "--out", out, "--offline")
    assert result.code == 0, result.err
    assert out.stat().st_size > 3_000_000
    assert not (tmp_path / "plotly.min.js").exists()


def test_axis_titles_have_units() -> None:
    from dse.plot import axis_title, compact, objective_title
    from dse.space import Objective

    assert axis_title("training_days") == "training time (days)"
    assert axis_title("cost_usd") == "cost (USD)"
    assert axis_title("energy_mwh") == "energy (MWh)"
    assert axis_title("clock_ghz") == "clock (GHz)"
    assert axis_title("scale_up_bandwidth_gb_s") == "scale up bandwidth (GB/s)"
    assert objective_title(Objective("mfu", True)).endswith("higher is better")
    assert [compact(v) for v in (2e6, 5e5, 1.5e9, 3.0, 0.25)] == ["2M", "500k", "1.5B", "3", "0.25"]


@pytest.mark.parametrize("span", [(1.4e6, 9e7), (2.0, 90.0), (1e3, 1e9), (3e3, 1.2e4)])
def test_log_tick_labels_do_not_overlap(span: tuple[float, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dse.plot import _log_ticks

    values = np.geomspace(*span, 50)
    for axis in ("x", "y"):
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        ax.scatter(values, values)
        _log_ticks(ax, axis, values)
        fig.canvas.draw()
        ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
        boxes = [t.get_window_extent() for t in ticks if t.get_text() and t.get_visible()]
        inside = [b for b in boxes if b.x1 > 0 and b.y1 > 0]
        assert len(inside) >= 2, (span, [t.get_text() for t in ticks])
        for a, b in itertools.pairwise(sorted(inside, key=lambda b: (b.x0, b.y0))):
            assert not a.overlaps(b), (span, axis, [t.get_text() for t in ticks])
        plt.close(fig)


def test_reference_chip_is_marked(dse: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    run = dse("sweep", "accelerator", "--workload", "llama3.1-8b", "--samples", "300",
              "--out", out, "--quiet")  # fmt: skip
    assert run.code == 0, run.err
    missing = dse("plot", out, "--out", tmp_path / "p.png", "--reference", "h100-sxm")
    assert missing.code == 2 and "--num-chips" in missing.err
    html = tmp_path / "p.html"
    result = dse("plot", out, "--out", html, "--reference", "h100-sxm", "--num-chips", "1024")
    assert result.code == 0, result.err
    assert "h100-sxm x 1,024" in html.read_text()
    png = dse("plot", out, "--out", tmp_path / "p.png", "--reference", "b200", "--num-chips", "512")
    assert png.code == 0, png.err
