"""One declaration per design parameter: the columns, space rules, results columns and
categorical tables all follow the declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse import parameters
from dse.catalog.chips import load_chip
from dse.catalog.technology import load_technology
from dse.designs import Designs, from_chips
from dse.errors import InputError
from dse.export import DESIGN_COLUMNS
from dse.space import load_space

ROOT = Path(__file__).resolve().parents[1]


def test_designs_has_one_column_per_declaration() -> None:
    assert tuple(Designs.names()) == parameters.NAMES
    for p in parameters.PARAMETERS:
        assert p.description and p.kind in ("int", "float", "category")
        assert (p.table is not None) == p.categorical
    assert tuple(p.name for p in parameters.PARAMETERS if p.in_results) == DESIGN_COLUMNS


def test_categoricals_come_from_their_technology_tables() -> None:
    technology = load_technology()
    assert parameters.CATEGORICAL == ("node", "hbm_generation")
    assert parameters.choices("node") == technology.node_ids()
    assert parameters.choices("hbm_generation") == technology.memory_ids()
    chip = load_chip("h100-sxm")
    values = parameters.chip_values(chip)
    assert parameters.choices("node")[int(values["node"])] == chip.node
    assert values["spare_units"] == chip.compute_units_physical - chip.compute_units
    designs = from_chips([chip], 1024)
    assert designs.compute_units[0] == chip.compute_units and designs.num_chips[0] == 1024


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [
        ("hbm_stacks = { low = 0, high = 4 }", "a whole number >= 1 and <= 16"),
        ("spare_units = { low = -1, high = 4 }", "a whole number >= 0"),
        ("clock_ghz = { low = 0, high = 2 }", "a number >= 0.1 and <= 10"),
        ("node = { low = 1, high = 2 }", "choices = [...]"),
        ("widgets = { low = 1, high = 2 }", "a design parameter"),
    ],
)
def test_space_rules_follow_the_declarations(tmp_path: Path, dimension: str, expected: str) -> None:
    path = tmp_path / "space.toml"
    path.write_text(f"[dimensions]\n{dimension}\nnum_chips = {{ low = 256, high = 1024 }}\n")
    with pytest.raises(InputError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_space(path)


def test_plumbing_names_no_single_parameter() -> None:
    """The generic modules handle categoricals and whole numbers by declaration, not by name."""
    for module in ("space.py", "export.py", "designs.py"):
        text = (ROOT / "dse" / module).read_text()
        assert '"hbm_generation"' not in text and '"node"' not in text, module
