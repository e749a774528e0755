"""One declaration per design parameter: the columns, space rules, results columns and
categorical tables all follow the declarations."""

from __future__ import annotations

import ast
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
    assert parameters.CATEGORICAL == ("node", "analog_cell", "hbm_generation")
    assert parameters.choices("node") == technology.node_ids()
    assert parameters.choices("analog_cell") == list(technology.analog_cells)
    assert parameters.choices("hbm_generation") == technology.memory_ids()
    chip = load_chip("h100-sxm")
    values = parameters.chip_values(chip)
    assert parameters.choices("node")[int(values["node"])] == chip.node
    assert values["spare_units"] == chip.file_value("compute_units_physical") - chip.compute_units
    designs = from_chips([chip], 1024)
    assert designs.compute_units[0] == chip.compute_units and designs.num_chips[0] == 1024


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [
        ("hbm_stacks = { low = -1, high = 4 }", "a whole number >= 1 and <= 16, or 0"),
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


def test_chip_schema_record_and_docs_follow_the_declarations() -> None:
    """The chip file schema, the Chip record and docs/catalog.md's key table derive from the
    declarations: every parameter a chip file gives has its key, its attribute and its row."""
    from dse.catalog.chips import CHIP_SCHEMA, key_table

    chip = load_chip("h100-sxm")
    for p in parameters.IN_CHIP_FILES:
        assert p.section is not None
        section = CHIP_SCHEMA.fields[p.section]
        key = p.group[0] if p.group else p.file_key
        assert key in section.fields, p.name  # type: ignore[union-attr]
        assert hasattr(chip, p.name), p.name
    docs = (ROOT / "docs" / "catalog.md").read_text()
    assert key_table() in docs, "paste dse.catalog.chips.key_table() into docs/catalog.md"


def test_plumbing_names_no_chip_parameter() -> None:
    """A chip parameter's name appears in its declaration and the physics, not in plumbing."""
    plumbing = [
        "designs.py",
        "catalog/chips.py",
        "space.py",
        "export.py",
        "reports.py",
        "plot.py",
        "framework/levers.py",
        *(f"cli/{p.name}" for p in (ROOT / "dse" / "cli").glob("*.py")),
    ]
    from dse.catalog.chips import CHIP_SCHEMA

    # Metric columns of the same name (unit_price_usd) are not the parameter.
    names = {p.name for p in parameters.PARAMETERS if p.chip_carries and p.in_results}
    published = set(CHIP_SCHEMA.fields["published"].fields)  # type: ignore[union-attr]
    allowed = {
        "catalog/chips.py": published,  # datasheet figures of the same name (tdp_w)
        "framework/levers.py": {"node"},  # levers.toml's table name: technology.node.*
    }
    for module in plumbing:
        tree = ast.parse((ROOT / "dse" / module).read_text())
        for node in ast.walk(tree):
            used = {
                ast.Attribute: lambda n: n.attr,
                ast.Constant: lambda n: n.value,
                ast.keyword: lambda n: n.arg,
                ast.Name: lambda n: n.id,
            }.get(type(node), lambda n: None)(node)
            assert used not in names or used in allowed.get(module, ()), (module, used)
