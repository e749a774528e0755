"""Design spaces: loading and validation, defaults, the shared index encoding and decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dse.catalog.chips import load_chip
from dse.catalog.technology import load_technology
from dse.catalog.workloads import load_workload
from dse.errors import InputError
from dse.search import Problem
from dse.space import RANDOM_BLOCK, load_space

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
min_mfu = 0.45
"""


def write(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write(tmp_path, SMALL)


def test_shipped_spaces_load() -> None:
    space = load_space("accelerator")
    assert space.size > 1e8  # far too many for a grid: sampled or searched
    names = space.names
    for name in ("node", "hbm_generation", "hbm_stacks", "compute_units", "num_chips"):
        assert name in names
    nodes = next(d for d in space.dimensions if d.name == "node")
    assert nodes.labels == ("n5", "n4", "n3", "n2")
    chips = next(d for d in space.dimensions if d.name == "num_chips")
    assert chips.values.tolist() == [1024, 2048, 4096, 8192, 16384, 32768, 65536]
    assert {c.key for c in space.constraints} == {
        "max_die_area_mm2",
        "max_cluster_power_mw",
        "max_training_days",
    }
    assert 0.9e6 <= load_space("benchmark").size <= 1.1e6


def test_levels_from_step_levels_log_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[dimensions]
clock_ghz = { low = 1.4, high = 2.2, step = 0.1 }
tdp_w = { low = 500, high = 1000, levels = 3 }
sram_mb = { low = 10, high = 1000, log = true, levels = 3 }
spare_units = { low = 0, high = 4 }
num_chips = { low = 1000, high = 9000, log = true }
scale_out_bandwidth_gb_s = { low = 50, high = 100 }
""",
    )
    dims = {d.name: d.values.tolist() for d in load_space(path).dimensions}
    assert dims["clock_ghz"] == [1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2]
    assert dims["tdp_w"] == [500, 750, 1000]
    assert dims["sram_mb"] == pytest.approx([10, 100, 1000])
    assert dims["spare_units"] == [0, 1, 2, 3, 4]  # whole numbers: every integer
    assert dims["num_chips"] == [1000, 2000, 4000, 8000]  # whole numbers on a log scale: doublings
    assert len(dims["scale_out_bandwidth_gb_s"]) == 11  # real numbers: 11 levels by default


def test_decode_fills_defaults_from_base_chip_and_hbm_generation(small: Path) -> None:
    space = load_space(small)
    X = space.grid(0, space.size)
    designs = space.decode(X)
    h100 = load_chip("h100-sxm")
    technology = load_technology()
    assert len(designs) == space.size == 2 * 3 * 2 * 3 * 3
    assert np.all(designs.clock_ghz == h100.clock_ghz)  # not listed: the base chip's
    assert np.all(designs.tdp_w == 700)  # [fixed]
    assert np.all(np.isnan(designs.unit_price_usd))  # modeled price
    generation = np.array(technology.memory_ids())[designs.hbm_generation]
    pins = np.array([technology.memories[g].pin_rate_gbps for g in generation])
    capacity = np.array([technology.memories[g].stack_capacity_gb for g in generation])
    assert np.array_equal(designs.hbm_pin_rate_gbps, pins)  # the chosen generation's
    assert np.array_equal(designs.hbm_stack_capacity_gb, capacity)
    assert set(np.array(technology.node_ids())[designs.node]) == {"n4", "n3"}


def test_hbm_values_given_in_fixed_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SMALL.replace("tdp_w = 700", "tdp_w = 700\nhbm_pin_rate_gbps = 5.0"),
    )
    designs = load_space(path).decode(np.zeros((1, 5), dtype=np.int64))
    assert designs.hbm_pin_rate_gbps[0] == 5.0


def test_grid_is_mixed_radix_and_covers_every_point(small: Path) -> None:
    space = load_space(small)
    X = space.grid(0, space.size)
    assert len({tuple(row) for row in X}) == space.size
    assert X[1].tolist() == [0, 0, 0, 0, 1]  # last dimension fastest
    assert np.array_equal(space.grid(17, 40), X[17:40])


def test_random_rows_do_not_depend_on_chunking(small: Path) -> None:
    space = load_space(small)
    n = RANDOM_BLOCK + 100
    whole = space.random(0, n, seed=5)
    parts = np.concatenate([space.random(s, min(s + 9999, n), seed=5) for s in range(0, n, 9999)])
    assert np.array_equal(whole, parts)
    assert np.all((whole >= 0) & (whole < space.radices))
    assert not np.array_equal(whole, space.random(0, n, seed=6))


def test_latin_hypercube_hits_each_level_equally(small: Path) -> None:
    space = load_space(small)
    X = space.latin_hypercube(36, seed=1)  # 36 is a multiple of every dimension's levels
    for j, levels in enumerate(space.radices):
        assert np.bincount(X[:, j], minlength=levels).tolist() == [36 // levels] * levels
    assert np.array_equal(X, space.latin_hypercube(36, seed=1))


def test_space_constraints_become_g_columns(small: Path) -> None:
    space = load_space(small)
    problem = Problem(space, load_workload("llama3.1-70b"))
    evaluation = problem.evaluate(space.grid(0, space.size))
    metrics = evaluation.metrics
    days = metrics.columns["training_days"]
    mfu = metrics.columns["mfu"]
    assert np.allclose(metrics.constraints["g_max_training_days"], days / 100 - 1)
    assert np.allclose(metrics.constraints["g_min_mfu"], 1 - mfu / 0.45)
    assert np.array_equal(evaluation.feasible, np.all(evaluation.G <= 0, axis=1))
    model_ok = np.all(evaluation.G[:, : len(metrics.constraints) - 2] <= 0, axis=1)
    limited = model_ok & ((days > 100) | (mfu < 0.45))
    assert limited.any() and not evaluation.feasible[limited].any()
    assert evaluation.feasible.any()


def test_workload_in_space_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'workload = "llama3.1-8b"\n' + SMALL)
    workload = load_space(path).workload
    assert workload is not None and workload.id == "llama3.1-8b"
    assert load_space(write(tmp_path, SMALL, "other.toml")).workload is None


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (
            "[dimensions]\ncompute_units = { low = 300, high = 100 }",
            "dimensions.compute_units",
            "low <= high",
        ),
        (
            "[dimensions]\ncompute_unitz = { low = 1, high = 2 }",
            "dimensions.compute_unitz",
            "design parameter",
        ),
        ('[dimensions]\nnode = ["n3", "n1"]', "dimensions.node.choices[1]", "one of"),
        (
            "[dimensions]\nclock_ghz = { low = 1, high = 2, step = 0 }",
            "dimensions.clock_ghz.step",
            "> 0",
        ),
        (
            "[dimensions]\nclock_ghz = { low = 1, high = 2, stride = 1 }",
            "dimensions.clock_ghz.stride",
            "one of the keys",
        ),
        (
            "[dimensions]\nclock_ghz = { low = 0, high = 2, log = true }",
            "dimensions.clock_ghz.low",
            ">= 0.1",
        ),
        (
            "[dimensions]\ncompute_units = { low = 1.5, high = 2 }",
            "dimensions.compute_units.low",
            "whole number",
        ),
        ("[dimensions]\nnode = { low = 1, high = 2 }", "dimensions.node", "choices"),
        ("[dimensions]\ntdp_w = [700, 700]", "dimensions.tdp_w.choices", "distinct"),
        (
            "[dimensions]\ntdp_w = [700]\n[fixed]\ntdp_w = 800",
            "fixed.tdp_w",
            "not also in [dimensions]",
        ),
        ('[fixed]\nhbm_generation = "hbm9"', "fixed.hbm_generation", "one of"),
        ("[constraints]\nmax_speed = 3", "constraints.max_speed", "max_<metric>"),
        ("[constraints]\nmax_training_days = -1", "constraints.max_training_days", ">= 1e-12"),
        ('[objectives]\nminimize = ["cost"]', "objectives.minimize", "metrics"),
        ('base_chip = "h999"', "base_chip", "catalog chip"),
        ("colour = 1", "colour", "one of the keys"),
    ],
)
def test_bad_spaces_name_file_key_rule_and_value(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    if "[fixed]" in text:
        body = text.replace("[fixed]", "[fixed]\nnum_chips = 1024")
    else:
        body = text + "\n[fixed]\nnum_chips = 1024\n"
    path = write(tmp_path, body)
    with pytest.raises(InputError) as error:
        load_space(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {key}: expected "), message
    assert fragment in message
    assert "\n" not in message


def test_cluster_size_is_required(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"dimensions\.num_chips"):
        load_space(write(tmp_path, "[dimensions]\ntdp_w = [700, 800]\n"))
