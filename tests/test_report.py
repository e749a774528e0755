"""``dse report``: one self-contained HTML page for a results file, checked in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import check_page, file_url, find_chromium


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dse.cli import main

    out = tmp_path_factory.mktemp("report") / "sweep.parquet"
    args = ["sweep", "accelerator", "--workload", "llama3.1-8b", "--samples", "400"]
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", str(out), "--quiet", "--format", "json"])
    assert stop.value.code in (0, None)
    return out


@pytest.fixture(scope="module")
def report(sweep: Path) -> Path:
    from dse.cli import main

    out = sweep.with_name("report.html")
    with pytest.raises(SystemExit) as stop:
        main(["report", str(sweep), "--out", str(out)])
    assert stop.value.code in (0, None)
    return out


def test_report_holds_every_section(report: Path) -> None:
    page = report.read_text()
    for heading in ("Best design per objective", "The front:", "Projections",
                    "Parallel coordinates of the front", "Provenance"):  # fmt: skip
        assert heading in page
    assert "llama3.1-8b" in page and "space_sha256" in page  # provenance
    assert 'class="sortable"' in page and "training time (days)" in page
    assert "best cost" in page and "best energy" in page and "best training time" in page
    assert "hypervolume" in page and "USD·MWh·days" in page
    assert '<script src="' not in page  # self-contained: plotly.js inlined, nothing fetched
    assert page.count("plotly.js v") <= 2 and len(page) > 3_000_000


def test_report_refuses_other_suffixes(dse: Callable[..., Any], sweep: Path) -> None:
    result = dse("report", sweep, "--out", sweep.with_name("report.pdf"))
    assert result.code == 2 and "--out: expected a file name ending in .html" in result.err


def test_best_per_objective_is_the_feasible_extreme(sweep: Path) -> None:
    from dse.export import read_results
    from dse.report import best_per_objective
    from dse.space import Objective

    frame, _ = read_results(sweep)
    feasible = frame["feasible"].to_numpy()
    best = best_per_objective(frame, [Objective("cost_usd"), Objective("mfu", True)], feasible)
    (_, cheapest), (_, busiest) = best
    assert frame["cost_usd"].iloc[cheapest] == frame["cost_usd"][feasible].min()
    assert frame["mfu"].iloc[busiest] == frame["mfu"][feasible].max()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_report_renders_in_headless_chromium(report: Path) -> None:
    probe = """(function () {
      var table = document.querySelector("table.sortable");
      var header = Array.prototype.slice.call(table.querySelectorAll("th"))
        .filter(function (th) { return th.title === "training_days"; })[0];
      header.click();
      var column = Array.prototype.indexOf.call(header.parentNode.children, header);
      var values = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
        return parseFloat(row.cells[column].getAttribute("data-value"));
      });
      return {plots: document.querySelectorAll(".js-plotly-plot .main-svg").length,
              parcoords: document.querySelectorAll(".parcoords").length,
              rows: values.length, sorted: values.every(function (v, i) {
                return i === 0 || values[i - 1] <= v; })};
    })()"""
    page = check_page(file_url(report), probe, height=1000, settle_s=1.0)
    assert page.errors == []
    assert page.value["plots"] >= 2 and page.value["parcoords"] >= 1
    assert page.value["rows"] >= 2 and page.value["sorted"]
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    shot = report.with_name("report.png")
    shot.write_bytes(page.screenshot)
    assert re.search(rb"IEND", page.screenshot[-16:])
