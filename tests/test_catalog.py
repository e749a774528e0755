"""The catalogs load, match their datasheets, and bad files give one clear line (issue 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.catalog.chips import chip_ids, load_chip
from dse.catalog.technology import load_technology
from dse.catalog.workloads import workload_ids
from dse.designs import from_chips
from dse.model.silicon import evaluate_silicon

REQUIRED_CHIPS = [
    "v100",
    "a100-40gb",
    "a100-80gb",
    "h100-sxm",
    "h100-pcie",
    "h800",
    "h200",
    "b200",
    "mi250x",
    "mi300x",
    "mi325x",
    "tpu-v3",
    "tpu-v4",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "gaudi2",
    "gaudi3",
    "trainium2",
]
REQUIRED_WORKLOADS = [
    "gpt3-175b",
    "opt-175b",
    "bloom-176b",
    "palm-540b",
    "gopher-280b",
    "mt-nlg-530b",
    "megatron-1t",
    "chinchilla-70b",
    "llama-7b",
    "llama-13b",
    "llama-33b",
    "llama-65b",
    "llama2-7b",
    "llama2-13b",
    "llama2-34b",
    "llama2-70b",
    "llama3.1-8b",
    "llama3.1-70b",
    "llama3.1-405b",
    "mixtral-8x7b",
    "deepseek-v3",
]


def test_catalogs_hold_every_required_id() -> None:
    assert set(REQUIRED_CHIPS) <= set(chip_ids())
    assert set(REQUIRED_WORKLOADS) <= set(workload_ids())


@pytest.mark.parametrize("chip_id", REQUIRED_CHIPS)
def test_every_chip_matches_its_datasheet(chip_id: str) -> None:
    chip = load_chip(chip_id)
    silicon = evaluate_silicon(from_chips([chip]))
    published = chip.published
    for fmt, tflop_s in published.get("peak_tflop_s", {}).items():  # type: ignore[attr-defined]
        assert silicon.peak_flop_s[fmt][0] / 1e12 == pytest.approx(tflop_s, rel=0.01), fmt
    if "hbm_bandwidth_tb_s" in published:
        assert silicon.hbm_bandwidth_tb_s[0] == pytest.approx(
            published["hbm_bandwidth_tb_s"], rel=0.01
        )
    if "hbm_capacity_gb" in published:
        assert silicon.hbm_capacity_gb[0] == pytest.approx(published["hbm_capacity_gb"], rel=0.01)
    assert chip.source.strip()


def test_every_technology_value_carries_a_source() -> None:
    technology = load_technology()
    for node in technology.nodes.values():
        numeric = [
            k for k, v in vars(node).items() if isinstance(v, float) and not k.startswith("year")
        ]
        assert set(numeric) <= set(node.sources), node.id
    for memory in technology.memories.values():
        numeric = [
            k for k, v in vars(memory).items() if isinstance(v, float | int) and k not in ("year",)
        ]
        assert set(numeric) <= set(memory.sources), memory.id


def test_a_family_not_in_the_table_takes_its_vendors_scale() -> None:
    """A next-generation design of a known vendor gets what that vendor's runs fitted; a chip
    of an unknown vendor gets the [unknown] entry (Hopper's, where the efficiencies were
    measured); every catalog chip's family is in the table."""
    technology = load_technology()
    assert technology.family("amd-cdna9") is technology.families["amd"]
    assert technology.family("amd-cdna3") is technology.families["amd-cdna3"]
    assert technology.family("acme-x1") is technology.families["unknown"]
    assert {load_chip(c).family for c in chip_ids()} <= set(technology.families)


def test_list_and_show_json_contract(dse) -> None:
    chips = dse("chips", "list", "--format", "json").json()
    assert {c["id"] for c in chips} >= set(REQUIRED_CHIPS)
    assert all("name" in c for c in chips)
    shown = dse("chips", "show", "h100-sxm", "--format", "json").json()
    for key in (
        "name",
        "node",
        "die_area_mm2",
        "die_area_model_mm2",
        "peak_tflop_s",
        "hbm_bandwidth_tb_s",
        "hbm_capacity_gb",
        "tdp_w",
        "die_yield",
        "die_cost_usd",
        "unit_cost_usd",
    ):
        assert key in shown, key
    assert shown["peak_tflop_s"]["bf16"] == pytest.approx(989.4, rel=0.01)
    assert shown["peak_tflop_s"]["fp8"] == pytest.approx(1978.9, rel=0.01)
    workloads = dse("workloads", "list", "--format", "json").json()
    assert {w["id"] for w in workloads} >= set(REQUIRED_WORKLOADS)
    assert all("name" in w for w in workloads)


def test_csv_and_table_formats(dse) -> None:
    csv_out = dse("chips", "list", "--format", "csv").out.splitlines()
    assert csv_out[0].startswith("id,name")
    assert len(csv_out) == len(chip_ids()) + 1
    table = dse("chips", "show", "v100").out
    assert "die_area_model_mm2" in table
    assert "same_silicon_as" not in table
    twin = dse("chips", "show", "mi350x", "--format", "json").out
    assert '"same_silicon_as": "mi355x"' in twin


H100 = (Path(__file__).parents[1] / "chips" / "h100-sxm.toml").read_text()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chip.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("edit", "key", "fragment"),
    [
        (
            lambda t: t.replace("clock_ghz = 1.83", "clock_ghz = -1.83"),
            "architecture.clock_ghz",
            ">= 0.1 and <= 10",
        ),
        (lambda t: t.replace("tdp_w = 700\n", "tdp_w = 0\n", 1), "architecture.tdp_w", ">= 1"),
        (
            lambda t: t.replace("compute_units = 132", "compute_unitz = 132"),
            "architecture.compute_unitz",
            "one of the keys",
        ),
        (lambda t: t.replace("hbm_stacks = 5\n", ""), "memory.hbm_stacks", "missing"),
        (lambda t: t.replace('node = "n4"', 'node = "n1"'), "architecture.node", "one of"),
        (lambda t: t.replace("[memory]", "[memory"), "", "valid TOML"),
        (
            lambda t: t.replace("clock_ghz = 1.83", 'clock_ghz = "fast"'),
            "architecture.clock_ghz",
            "a number",
        ),
        (
            lambda t: t.replace("family =", 'same_silicon_as = "h101"\nfamily =', 1),
            "same_silicon_as",
            "the id of another catalog chip",
        ),
    ],
)
def test_bad_chip_file_gives_one_clear_line(
    dse, tmp_path: Path, edit, key: str, fragment: str
) -> None:
    assert edit(H100) != H100, "the edit must change the file"
    path = _write(tmp_path, edit(H100))
    result = dse("chips", "show", path)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert str(path) in lines[0] and key in lines[0] and fragment in lines[0]


def test_a_same_silicon_chain_that_comes_back_gives_one_clear_line(dse, tmp_path: Path) -> None:
    """§1.7: the chips named by ``same_silicon_as`` may form a chain (the B300 names the GB300,
    which names the GB200), never a loop: an H100 SXM naming the H100 PCIe, which names it."""
    path = tmp_path / "h100-sxm.toml"
    path.write_text(H100.replace("family =", 'same_silicon_as = "h100-pcie"\nfamily =', 1))
    result = dse("chips", "show", path)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "same_silicon_as" in lines[0] and "comes back to h100-sxm" in lines[0]


def test_unknown_chip_id_lists_the_catalog(dse) -> None:
    result = dse("chips", "show", "h101")
    assert result.code == 2
    assert "unknown chip 'h101'" in result.err and "h100-sxm" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_unknown_workload_and_missing_file(dse, tmp_path: Path) -> None:
    assert dse("workloads", "show", "gpt5").code == 2
    result = dse("workloads", "show", tmp_path / "nope.toml")
    assert result.code == 2 and "no such file" in result.err
