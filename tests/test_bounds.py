"""Physical bounds (issue 16, item 3): every chip, workload, space and settings number has a
declared range; absurd values are refused with one line naming the file, key, rule and value,
and designs anywhere in the declared box evaluate to finite metrics and constraints."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dse.catalog.chips import BOUNDS
from dse.catalog.technology import load_technology
from dse.catalog.workloads import WORKLOAD_BOUNDS, flops_per_token, load_workload
from dse.designs import CATEGORICAL, Designs
from dse.model.evaluate import evaluate
from dse.model.training.compute import computed_score_share
from dse.parameters import choices
from dse.space import INTEGER_PARAMETERS, PARAMETERS, ZERO_ALLOWED, parameter_bounds
from tests.test_hostile_inputs import one_line

ROOT = Path(__file__).resolve().parents[1]
CHIP = (ROOT / "chips" / "h100-sxm.toml").read_text()
WORKLOAD = (ROOT / "workloads" / "llama3.1-70b.toml").read_text()


def edited(text: str, key: str, value: str) -> str:
    """``text`` with the first ``key = ...`` line's value replaced."""
    new, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
    assert count == 1, key
    return new


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("hbm_stacks", "17", "<= 16"),
        ("hbm_stacks", "1000000000", "<= 16"),
        ("clock_ghz", "1e3", "<= 10"),
        ("clock_ghz", "0.01", ">= 0.1"),
        ("dies_per_package", "65", "<= 64"),
        ("compute_units", "1e300", "<= 1,000,000"),
        ("tdp_w", "1e-300", ">= 1"),
        ("scale_up_domain", "100000000", "<= 1,000,000"),
        ("hbm_stack_capacity_gb", "5e-324", ">= 0.1"),
    ],
)
def test_absurd_chip_values_are_refused(
    dse: Callable[..., Any], tmp_path: Path, key: str, value: str, rule: str
) -> None:
    path = tmp_path / "chip.toml"
    path.write_text(edited(CHIP, key, value))
    result = dse("evaluate", "--chip", path, "--workload", "llama3.1-70b", "--num-chips", "64")
    one_line(result, str(path), key, rule, "got")


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("layers", "1e300", "<= 10,000"),
        ("layers", "10001", "<= 10,000"),
        ("d_model", "100000000", "<= 1,000,000"),
        ("vocab_size", "-5", ">= 1"),
        ("seq_len", "1e12", "<= 100,000,000"),
        ("tokens", "1e6", "at least one global batch"),
        ("total_params", "7e12", "at most 1.25 x the count of the shape"),
    ],
)
def test_absurd_workload_values_are_refused(
    dse: Callable[..., Any], tmp_path: Path, key: str, value: str, rule: str
) -> None:
    path = tmp_path / "job.toml"
    if key == "total_params":  # llama3.1-70b gives its shape only: add the key
        path.write_text(edited(WORKLOAD, "vocab_size", f"128256\ntotal_params = {value}"))
    else:
        path.write_text(edited(WORKLOAD, key, value))
    result = dse("evaluate", "--chip", "h100-sxm", "--workload", path, "--num-chips", "64")
    section = "training" if key in ("seq_len", "tokens") else "model"
    one_line(result, str(path), f"{section}.{key}", rule)


@pytest.mark.parametrize(
    ("body", "key", "rule"),
    [
        ("[dimensions]\nhbm_stacks = { low = 1, high = 1e9 }\nnum_chips = [64]",
         "dimensions.hbm_stacks.high", "<= 16"),
        ("[dimensions]\nnum_chips = { low = -64, high = 64 }", "dimensions.num_chips.low", ">= 1"),
        ("[fixed]\nnum_chips = 1e8", "fixed.num_chips", "<= 10,000,000"),
        ("[fixed]\nnum_chips = 64\nhbm_stack_capacity_gb = 5e-324",
         "fixed.hbm_stack_capacity_gb", ">= 0.1"),
        ("[dimensions]\nclock_ghz = { low = 1, high = 10, step = 5e-324 }\n[fixed]\nnum_chips = 8",
         "dimensions.clock_ghz", "levels"),
        ("[fixed]\nnum_chips = 8\n[constraints]\nmax_training_days = 5e-324",
         "constraints.max_training_days", ">= 1e-12"),
    ],
)  # fmt: skip
def test_absurd_space_values_are_refused(
    dse: Callable[..., Any], tmp_path: Path, body: str, key: str, rule: str
) -> None:
    path = tmp_path / "space.toml"
    path.write_text(body)
    result = dse("sweep", path, "--workload", "llama3.1-70b", "--out", tmp_path / "o.csv")
    one_line(result, str(path), key, rule)


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--tokens", "1e300", "--tokens"),
        ("--tokens", "nan", "--tokens"),
        ("--num-chips", "100000000000", "--num-chips"),
        ("--hbm-efficiency", "1e-320", "--hbm-efficiency: expected"),
        ("--pue", "1e308", "pue"),
    ],
)
def test_absurd_command_line_values_are_refused(
    dse: Callable[..., Any], option: str, value: str, fragment: str
) -> None:
    args = {"--chip": "h100-sxm", "--workload": "llama3.1-70b", "--num-chips": "64", option: value}
    one_line(dse("evaluate", *[x for pair in args.items() for x in pair]), fragment)


def test_every_space_parameter_has_bounds() -> None:
    for name in PARAMETERS:
        if name in CATEGORICAL:
            continue
        low, high = parameter_bounds(name)
        assert 0 <= low < high < 1e10, name
    assert parameter_bounds("fp8_flops_per_cycle_per_unit")[0] == 1  # or exactly 0
    assert BOUNDS["hbm_stacks"] == (1, 16) and BOUNDS["clock_ghz"] == (0.1, 10.0)
    assert WORKLOAD_BOUNDS["layers"][1] == 10_000 and BOUNDS["num_chips"][1] == 10**7


def box_designs(n: int, seed: int) -> Designs:
    """``n`` designs drawn over the declared box: log-uniform inside each parameter's range,
    a fifth of them on its lower or upper bound."""
    rng = np.random.default_rng(seed)
    technology = load_technology()
    columns: dict[str, np.ndarray] = {}
    for name in PARAMETERS:
        if name in CATEGORICAL:
            columns[name] = rng.integers(0, len(choices(name, technology)), n)
            continue
        low, high = parameter_bounds(name)
        values = np.exp(rng.uniform(np.log(max(low, 1e-3)), np.log(high), n))
        if name in ZERO_ALLOWED:  # a number format the chip lacks
            values = np.where(rng.random(n) < 0.2, 0.0, values)
        edge = rng.random(n)
        values = np.where(edge < 0.1, low, np.where(edge < 0.2, high, values))
        columns[name] = np.round(values) if name in INTEGER_PARAMETERS else values
    columns["bf16_flops_per_cycle_per_unit"] = np.maximum(
        columns["bf16_flops_per_cycle_per_unit"], 1.0
    )
    columns["unit_price_usd"] = np.where(rng.random(n) < 0.5, np.nan, columns["unit_price_usd"])
    return Designs.from_columns(columns)


def _assert_physical(designs: Designs, workload: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        metrics = evaluate(designs, load_workload(workload))
    for name, values in {**metrics.columns, **metrics.constraints}.items():
        assert np.all(np.isfinite(values)), name
    # MFU counts the full score matrix of causal attention, which a fused kernel computes half
    # of (docs/model.md §2.2), so it may pass 1 near the peak; the FLOPs computed may not.
    matmul, attention = flops_per_token(load_workload(workload))
    computed = (matmul + computed_score_share(load_workload(workload)) * attention) / (
        matmul + attention
    )
    assert np.all(metrics.columns["mfu"] >= 0)
    assert np.all(metrics.columns["mfu"] * computed <= 1.0 + 1e-9)
    for name in ("training_days", "step_time_s", "cost_usd", "energy_mwh", "capex_usd"):
        assert np.all(metrics.columns[name] >= 0), name


@pytest.mark.parametrize("workload", ["llama3-8b", "llama3.1-70b", "gpt3-175b", "deepseek-v3"])
def test_designs_across_the_declared_box_give_finite_metrics(workload: str) -> None:
    """Dense (GPT-3), GQA (Llama 3) and MoE (DeepSeek-V3): metrics and ``G`` finite, MFU in
    [0, 1], times and costs not negative."""
    _assert_physical(box_designs(3000, seed=len(workload)), workload)


@pytest.mark.fuzz
@pytest.mark.parametrize("workload", ["llama3.1-70b", "gpt3-175b", "deepseek-v3"])
def test_a_million_designs_across_the_box_give_finite_metrics(workload: str) -> None:
    """The long profile: 10⁶ designs per workload kind (GQA, dense, MoE), in slices of 10⁵
    (``DSE_BOX_DESIGNS`` sets the total)."""
    total = int(os.environ.get("DSE_BOX_DESIGNS", "1000000"))
    for start in range(0, total, 100_000):
        n = min(100_000, total - start)
        _assert_physical(box_designs(n, seed=start + len(workload)), workload)


def test_a_narrow_format_slower_than_a_wide_one_is_refused(
    dse: Callable[..., Any], tmp_path: Path
) -> None:
    """fp8 at 16 FLOP/cycle beside bf16 at 4096 (no chip is built so) gave MFU > 1 on long
    sequences; the chip file is refused instead."""
    path = tmp_path / "chip.toml"
    path.write_text(edited(CHIP, "fp8", "16"))
    result = dse("evaluate", "--chip", path, "--workload", "llama3.1-70b", "--num-chips", "64")
    one_line(result, str(path), "flops_per_cycle_per_unit.fp8", "at least the wider")
