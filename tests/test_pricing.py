"""One price basis (docs/model.md §3.2): every design is priced at modeled unit cost × its
vendor's markup, so the same design costs the same in evaluate and in a sweep."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dse.export import read_results
from dse.pricing import vendor_markups

H100_SPACE = """
name = "exactly the H100, and with one HBM stack more"
base_chip = "h100-sxm"
[dimensions]
hbm_stacks = [5, 6]
[fixed]
num_chips = 4096
"""


def test_a_space_that_is_the_h100_costs_what_evaluate_costs(
    dse: Callable[..., Any], tmp_path: Path
) -> None:
    space = tmp_path / "h100.toml"
    space.write_text(H100_SPACE)
    out = tmp_path / "h100.csv"
    args = ("--workload", "llama3.1-70b", "--method", "grid", "--out", out)
    assert dse("sweep", space, *args).code == 0
    rows, _ = read_results(out)
    evaluated = dse(
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
    same = rows[rows["hbm_stacks"] == 5].iloc[0]
    more = rows[rows["hbm_stacks"] == 6].iloc[0]
    for metric in ("unit_price_usd", "capex_usd", "cost_usd", "training_days"):
        assert same[metric] == pytest.approx(evaluated[metric], rel=1e-9)
    assert more["unit_price_usd"] > same["unit_price_usd"]


def test_markups_come_from_published_prices(dse: Callable[..., Any]) -> None:
    markups = vendor_markups()
    assert {"NVIDIA", "AMD"} <= set(markups)
    assert all(1.0 < m < 20.0 for m in markups.values())
    shown = dse("chips", "show", "h100-sxm", "--format", "json").json()
    assert shown["published_price_usd"] == 33750
    assert shown["unit_price_usd"] == pytest.approx(
        shown["unit_cost_usd"] * markups["NVIDIA"], rel=1e-12
    )
