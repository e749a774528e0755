"""The roadmap (issue 6): the paper's levers applied cumulatively, each step through the model."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from dse.catalog.chips import load_chip
from dse.catalog.technology import Technology, load_technology
from dse.catalog.workloads import load_workload
from dse.designs import Designs
from dse.errors import InputError
from dse.framework.levers import Levers, apply_lever, load_levers
from dse.framework.roadmap import baseline_state, run_roadmap
from dse.framework.state import State, run
from dse.settings import Settings

LEVERS = (
    "supercomputing",
    "data_reduction",
    "model_partitioning",
    "training_algorithms",
    "data_formats",
    "efficient_hardware",
    "competitive_accelerators",
    "analog_in_memory",
    "energy_based_models",
)
HEADLINE = ("--workload", "llama3.1-70b", "--chip", "h100-sxm", "--num-chips", "8192")
MOE_FIELDS = {
    f"workload.{name}"
    for name in (
        "experts",
        "experts_per_token",
        "shared_experts",
        "moe_ffn_dim",
        "dense_layers",
        "active_params",
        "shape_only_params",
    )
}


@pytest.fixture(scope="module")
def base() -> State:
    return baseline_state(load_chip("h100-sxm"), load_workload("llama3.1-70b"), 8192)


@pytest.fixture(scope="module")
def levers():
    return {lever.id: lever for lever in load_levers()}


def changed(before: State, after: State) -> set[str]:
    """``space.field`` of every model input that differs between two states."""
    out = {
        f"workload.{f.name}"
        for f in fields(before.workload)
        if getattr(before.workload, f.name) != getattr(after.workload, f.name)
    }
    out |= {
        f"settings.{name}"
        for name in Settings.names()
        if getattr(before.settings, name) != getattr(after.settings, name)
    }
    out |= {
        f"design.{name}"
        for name in Designs.names()
        if not np.array_equal(
            getattr(before.designs, name), getattr(after.designs, name), equal_nan=True
        )
    }
    if after.technology is not before.technology:
        old, new = before.technology or load_technology(), after.technology or load_technology()
        for table, entries in (("node", "nodes"), ("memory", "memories")):
            for key, entry in getattr(new, entries).items():
                for f in fields(entry):
                    if getattr(entry, f.name) != getattr(getattr(old, entries)[key], f.name):
                        out.add(f"technology.{table}.{f.name}")
    return out


def test_headline_roadmap(dse) -> None:
    result = dse("roadmap", *HEADLINE, "--format", "json")
    assert result.code == 0, result.err
    data = result.json()
    steps = data["steps"]
    assert [s["lever"] for s in steps] == list(LEVERS)
    product = 1.0
    previous = data["baseline"]["cost_usd"]
    for step in steps:
        for key in ("name", "note", "cost_usd", "energy_mwh", "training_days"):
            assert step[key] is not None, (step["lever"], key)
        assert step["nominal_factor"] == 2.0
        assert step["cost_factor"] == pytest.approx(previous / step["cost_usd"])
        previous = step["cost_usd"]
        product *= step["cost_factor"]
        assert step["cumulative_cost_factor"] == pytest.approx(product, rel=0.01)
        assert step["feasible"] is True
    assert data["cumulative_cost_factor"] == pytest.approx(product, rel=0.01)
    # The evolutionary levers compound; the revolutionary ones, computed as designs (analog
    # tiles, equilibrium propagation), cost more than they save in the model.
    evolutionary = next(s for s in steps if s["lever"] == "competitive_accelerators")
    assert evolutionary["cumulative_cost_factor"] > 10
    for step in steps[-2:]:
        assert step["kind"] == "revolutionary" and step["cost_factor"] < 1.0
    # The baseline is exactly `dse evaluate` of the same run.
    plain = dse("evaluate", *HEADLINE, "--format", "json").json()
    for key in ("cost_usd", "energy_mwh", "training_days"):
        assert data["baseline"][key] == pytest.approx(plain[key], rel=1e-12)
    # Not every lever is worth its nominal 2x in the model: where it falls short, the note
    # breaks the change down into the parts that shrank less, did not shrink or grew.
    short = [s for s in steps if s["cost_factor"] < 0.995 * s["nominal_factor"]]
    assert {"data_formats", "efficient_hardware"} <= {s["lever"] for s in short}
    for step in short:
        assert "vs nominal 2x" in step["note"]
        assert any(word in step["note"] for word in ("unchanged", "grew", "shrank:")), step["note"]
    formats = next(s for s in steps if s["lever"] == "data_formats")
    # fp8 halves GEMM time, not the 16-bit gradients and activations that the network carries:
    # at the same plan every communication part of the step shrinks less than compute (or not
    # at all). The search may answer fp8 with another plan (less tensor parallelism), whose
    # communication then shrinks for that reason, so the claim is checked at a pinned plan.
    assert "compute" in formats["note"].split("| time ")[1]
    plan = ("--tp", "4", "--pp", "4", "--vp", "4", "--microbatch", "1", "--recompute", "none")
    parts = [
        dse("evaluate", *HEADLINE, *plan, "--precision", p, "--format", "json").json()[
            "breakdown_s"
        ]
        for p in ("bf16", "fp8")
    ]
    shrink = {k: parts[0][k] / parts[1][k] for k in parts[0] if parts[1][k] > 0}
    comm = [f for k, f in shrink.items() if k not in ("compute", "optimizer", "bubble_fraction")]
    assert comm and all(f < shrink["compute"] for f in comm), shrink
    reduction = next(s for s in steps if s["lever"] == "data_reduction")
    assert "meets it" in reduction["note"]


def test_table_lists_every_lever_and_its_note(dse) -> None:
    result = dse("roadmap", *HEADLINE)
    assert result.code == 0, result.err
    for lever in LEVERS:
        assert f"\n{lever}: " in result.out  # its note
        assert any(line.startswith(lever + " ") for line in result.out.splitlines())


def test_each_lever_changes_what_it_claims_and_nothing_else(base, levers) -> None:
    for lever_id in LEVERS:
        lever = levers[lever_id]
        after, lines = apply_lever(base, lever)
        claimed = {change.target for change in lever.changes}
        if "workload.moe_k" in claimed:
            assert changed(base, after) <= MOE_FIELDS
            assert after.workload.total_params == base.workload.total_params
            assert after.workload.moe_k == pytest.approx(2.0)
        elif "workload.training_algorithm" in claimed:
            gemms = {"forward_gemms", "input_gradient_gemms", "weight_gradient_gemms"}
            assert changed(base, after) == claimed | {f"workload.{g}" for g in gemms}
        else:
            assert changed(base, after) == claimed, lever_id
        assert len(lines) == len(lever.changes)


def test_data_formats_changes_only_precision(base, levers) -> None:
    after, _ = apply_lever(base, levers["data_formats"])
    assert changed(base, after) == {"workload.precision"}
    assert after.workload.precision == "fp8"
    before, fp8 = run(base), run(after)
    assert 1.0 < before.training_days / fp8.training_days < 2.0  # the matmuls, not the rest
    assert fp8.time_days["compute"] < 0.8 * before.time_days["compute"]


def test_an_fp8_attention_lever_speeds_blackwell_and_not_hopper(tmp_path) -> None:
    """``workload.attention_precision`` is a lever target: set to fp8 it changes that field
    alone, shortens training on a Blackwell cluster (its family's measured FP8 attention
    kernel) and leaves a Hopper one as it was (Hopper's FP8 kernel is not faster, §2.6)."""
    path = tmp_path / "fp8_attention.toml"
    path.write_text(
        LEVER_HEAD
        + '\n[[x.change]]\ntarget = "workload.attention_precision"\nop = "set"\n'
        + 'value = "fp8"\nsource = "[A] example"\n'
    )
    (lever,) = load_levers(path)
    workload = load_workload("llama3.1-70b").with_changes(precision="fp8")
    for chip, faster in (("b200", True), ("h100-sxm", False)):
        before = baseline_state(load_chip(chip), workload, 1024)
        after, _ = apply_lever(before, lever, path)
        assert changed(before, after) == {"workload.attention_precision"}
        days = run(before).training_days, run(after).training_days
        assert (days[1] < days[0]) if faster else (days[1] == pytest.approx(days[0], rel=1e-12))


def test_competitive_accelerators_change_only_price(base, levers) -> None:
    after, _ = apply_lever(base, levers["competitive_accelerators"])
    assert changed(base, after) == {"design.unit_price_usd"}
    before, cheap = run(base), run(after)
    assert cheap.training_days == before.training_days
    assert cheap.energy_mwh == before.energy_mwh
    assert cheap.cost_usd_parts["hardware"] == pytest.approx(before.cost_usd_parts["hardware"] / 2)
    assert cheap.cost_usd_parts["electricity"] == before.cost_usd_parts["electricity"]


def test_data_reduction_scales_time_energy_and_cost_linearly(base, levers) -> None:
    after, _ = apply_lever(base, levers["data_reduction"])
    assert changed(base, after) == {"workload.tokens"}
    assert after.workload.tokens == base.workload.tokens / 2
    before, fewer = run(base), run(after)
    for key in ("training_days", "energy_mwh", "cost_usd"):
        assert getattr(fewer, key) == pytest.approx(getattr(before, key) / 2, rel=0.01), key


def test_efficient_hardware_moves_to_the_next_node_and_hbm(base, levers) -> None:
    after, lines = apply_lever(base, levers["efficient_hardware"])
    technology = load_technology()
    assert technology.node_ids()[int(after.designs.node[0])] == "n3"
    assert technology.memory_ids()[int(after.designs.hbm_generation[0])] == "hbm3e"
    assert after.designs.hbm_pin_rate_gbps[0] == technology.memories["hbm3e"].pin_rate_gbps
    assert "design.node: n4 -> n3" in lines
    before, newer = run(base), run(after)
    assert newer.energy_mwh < before.energy_mwh
    assert newer.training_days < before.training_days


def test_analog_in_memory_switches_to_an_analog_design(base, levers) -> None:
    """The lever is a design computed through the model (docs/model.md §2.9), not scaled
    constants: PCM tiles in place of half the SMs at about the same die area; the technology
    tables stay as shipped."""
    before = base
    for lever_id in LEVERS[: LEVERS.index("analog_in_memory")]:
        before, _ = apply_lever(before, levers[lever_id])
    after, _ = apply_lever(before, levers["analog_in_memory"])
    assert after.technology is before.technology
    assert after.designs.analog_tiles[0] == 1115 and after.designs.analog_cell[0] > 0
    assert after.designs.compute_units[0] == pytest.approx(before.designs.compute_units[0] / 2)
    old, new = run(before), run(after)
    assert new.feasible
    # Iso-area: the tiles fill the SMs' area (evaluate's die area within 2 %).
    from dse.model.silicon import evaluate_silicon

    areas = [evaluate_silicon(s.designs).die_area_mm2[0] for s in (before, after)]
    assert areas[1] == pytest.approx(areas[0], rel=0.02)
    # Chip compute energy falls (190 fJ/MAC in the arrays); the run is slower (serialized
    # analog work, arrays reprogrammed each step): hardware cost grows.
    chip = "chip compute and memory"
    assert new.energy_mwh_parts[chip] < old.energy_mwh_parts[chip]
    assert new.training_days > old.training_days


def test_energy_based_models_train_by_equilibrium_propagation(base, levers) -> None:
    after, _ = apply_lever(base, levers["energy_based_models"])
    w = after.workload
    assert w.training_algorithm == "equilibrium_propagation"
    assert (w.forward_gemms, w.input_gradient_gemms, w.weight_gradient_gemms) == (24, 0, 2)
    assert run(after).training_days > run(base).training_days  # 26 GEMMs per linear, not 3


def test_modified_technology_path_matches_evaluate(base) -> None:
    shipped = load_technology()
    copy = Technology(  # not the cached one
        shipped.nodes,
        shipped.memories,
        shipped.silicon,
        shipped.families,
        shipped.analog_cells,
        shipped.min_training_bits,
    )
    direct, composed = run(base), run(replace(base, technology=copy))
    for key in ("cost_usd", "energy_mwh", "training_days", "mfu"):
        assert getattr(composed, key) == pytest.approx(getattr(direct, key), rel=1e-12)
    assert composed.feasible == direct.feasible


def test_parts_add_up(base) -> None:
    outcome = run(base)
    assert sum(outcome.time_days.values()) == pytest.approx(outcome.training_days)
    assert sum(outcome.energy_mwh_parts.values()) == pytest.approx(outcome.energy_mwh)
    assert sum(outcome.cost_usd_parts.values()) == pytest.approx(outcome.cost_usd)
    assert min(outcome.time_days.values()) >= 0


def test_user_levers_file(dse, tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        """
[cheap_power]
name = "Cheaper electricity"
kind = "evolutionary"
nominal_factor = 2.0
assumption = "Power purchase agreement at half price."

[[cheap_power.change]]
target = "settings.electricity_usd_per_kwh"
op = "scale"
value = 0.5
source = "[A] example"
"""
    )
    result = dse("roadmap", *HEADLINE, "--levers", path, "--format", "json")
    assert result.code == 0, result.err
    (step,) = result.json()["steps"]
    assert step["lever"] == "cheap_power"
    assert step["energy_factor"] == pytest.approx(1.0)
    assert 1.0 < step["cost_factor"] < 1.1  # electricity is a small part of the cost
    assert "hardware" in step["note"]


LEVER_HEAD = """
[x]
name = "X"
kind = "evolutionary"
nominal_factor = 2.0
assumption = "a"
"""


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ('target = "workload.layers"\nop = "set"\nvalue = 2', "x.change[0].target"),
        ('target = "workload.precision"\nop = "set"\nvalue = "fp7"', "x.change[0].value"),
        (
            'target = "workload.attention_precision"\nop = "set"\nvalue = "int8"',
            "x.change[0].value",
        ),
        ('target = "workload.tokens"\nop = "next"\nvalue = 1', "x.change[0].op"),
        ('target = "settings.goodput"\nop = "set"\nvalue = 1.5', "x.change[0].value"),
        ('target = "design.node"\nop = "set"\nvalue = "n1"', "x.change[0].value"),
        ('target = "design.tdp_w"\nop = "scale"\nvalue = 0', "x.change[0].value"),
        ('target = "technology.node.name"\nop = "scale"\nvalue = 2', "x.change[0].target"),
        ('target = "design.tdp_w"\nop = "rated"', "x.change[0].op"),
        ('target = "design.tdp_w"\nop = "halve"\nvalue = 1', "x.change[0].op"),
        ('target = "design.tdp_w"\nop = "scale"\nvalue = 2', "x.change[0].source"),
    ],
)
def test_bad_levers_name_file_and_key(tmp_path, change, key) -> None:
    path = tmp_path / "bad.toml"
    source = "" if "source" in key else '\nsource = "s"'
    path.write_text(f"{LEVER_HEAD}\n[[x.change]]\n{change}{source}\n")
    with pytest.raises(InputError) as error:
        load_levers(path)
    assert error.value.source == str(path)
    assert error.value.key == key


def test_bad_levers_file_is_one_line_on_the_command_line(dse, tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(LEVER_HEAD)  # no changes
    result = dse("roadmap", *HEADLINE, "--levers", path)
    assert result.code == 2
    assert str(path) in result.err and "x.change" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_lever_past_the_newest_node_is_an_error(base, levers, tmp_path) -> None:
    path = tmp_path / "far.toml"
    path.write_text(
        f'{LEVER_HEAD}\n[[x.change]]\ntarget = "design.node"\nop = "next"\nvalue = 5\n'
        'source = "s"\n'
    )
    (lever,) = load_levers(path)
    with pytest.raises(InputError, match="newer node"):
        apply_lever(base, lever, path)


def test_shipped_levers_cite_sources() -> None:
    levers = load_levers()
    assert levers.ids() == list(LEVERS)
    for lever in levers:
        assert lever.assumption.strip()
        assert lever.kind == ("revolutionary" if lever.id in LEVERS[-2:] else "evolutionary")
        for change in lever.changes:
            assert change.source.startswith("["), (lever.id, change.target)
        assert math.isclose(lever.nominal_factor, 2.0)


def test_waterfall_plot(dse, tmp_path) -> None:
    png = tmp_path / "roadmap.png"
    result = dse("roadmap", *HEADLINE, "--plot", png, "--format", "csv")
    assert result.code == 0, result.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header, *rows = result.out.strip().splitlines()
    assert header.startswith("lever,") and len(rows) == 1 + len(LEVERS)


def test_a_lever_without_effect_says_so(levers) -> None:
    only_fp8 = Levers(Path("levers.toml"), (levers["data_formats"],))
    result = run_roadmap(load_chip("a100-80gb"), load_workload("gpt3-175b"), 1024, only_fp8)
    (step,) = result.steps
    assert step.cost_factor == pytest.approx(1.0)  # the A100 has no fp8: matmuls stay 16-bit
    assert "no part of cost, time or energy changed" in step.note
