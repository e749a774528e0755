"""Formatting of command output: a table for a person, JSON for programs, CSV for spreadsheets."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from dse.catalog.chips import BOUNDS
from dse.catalog.workloads import PRECISIONS
from dse.evaluation import plain

FORMATS = ("table", "json", "csv")

_VERBOSITY = {"level": 0}
"""-1 with ``dse -q``, 0 by default, 1 or more with ``dse -v``/``-vv`` (set by the group)."""


def set_verbosity(level: int) -> None:
    _VERBOSITY["level"] = level


def verbosity() -> int:
    """-1 quiet (results and errors only), 0 normal, >= 1 verbose (tracebacks of errors,
    estimates even off a terminal)."""
    return _VERBOSITY["level"]


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format: table for a person, json for programs, csv for spreadsheets.",
)

chip_option = click.option("--chip", required=True, help="Catalog id or path to a chip TOML file.")
workload_option = click.option(
    "--workload", required=True, help="Catalog id or path to a workload TOML file."
)
precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Training number format (default: the workload's).",
)
tokens_option = click.option(
    "--tokens", type=float, default=None, help="Training tokens (default: the workload's)."
)
num_chips_option = click.option(
    "--num-chips",
    required=True,
    type=click.IntRange(min=1, max=int(BOUNDS["num_chips"][1])),
    help="Chips in the cluster.",
)


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings → one level with dotted keys (``peak_tflop_s.bf16``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


TABLE_WIDTH = 100
"""Width of a table for a person when stdout is not a terminal (a terminal's own width
otherwise, at most this)."""


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(_cell(v) for v in value) or "-"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 and value != 0 else str(value)
    return str(value)


def _width() -> int:
    import shutil

    if sys.stdout.isatty():
        return min(shutil.get_terminal_size((TABLE_WIDTH, 24)).columns, TABLE_WIDTH)
    return TABLE_WIDTH


def _console(width: int) -> Any:
    from rich.console import Console

    return Console(
        file=io.StringIO(),
        width=width,
        color_system=None,
        highlight=False,
        emoji=False,
        markup=False,
        force_terminal=False,
        soft_wrap=False,
    )


def _column_cells(values: list[Any], name: str = "") -> list[str]:
    """One number format per column: whole numbers with thousands separators, other numbers
    with the decimals of the column's typical magnitude (scientific beyond 1e12 or below
    1e-4); text, booleans and missing values as they are."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    finite = [abs(float(v)) for v in numbers if math.isfinite(float(v))]
    if not finite or len(numbers) < len([v for v in values if v is not None]):
        return [_cell(v) for v in values]
    if all(float(v) == round(float(v)) for v in finite) and max(finite) < 1e15:
        grouped = max(finite) >= 10_000 and "year" not in name
        return [
            (f"{round(float(v)):,}" if grouped else str(round(float(v))))
            if _is_number(v)
            else _cell(v)
            for v in values
        ]
    nonzero = sorted(v for v in finite if v)
    typical = nonzero[len(nonzero) // 2] if nonzero else 1.0
    if max(finite) >= 1e12 or typical < 1e-4:
        return [f"{float(v):.3e}" if _is_number(v) else _cell(v) for v in values]
    digits = max(0, min(6, 3 - math.floor(math.log10(typical))))
    return [f"{float(v):,.{digits}f}" if _is_number(v) else _cell(v) for v in values]


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def format_number(value: float) -> str:
    """One number alone: four significant digits, thousands separators, no exponent between
    1e-4 and 1e12."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = abs(value)
    if magnitude >= 1e12 or magnitude < 1e-4:
        return f"{value:.4g}"
    if magnitude >= 1e4:
        return f"{value:,.0f}"
    digits = max(0, 3 - math.floor(math.log10(magnitude)))
    return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:,.0f}"


def render_rows(rows: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """A list of records as a table (units under the column names, one number format per
    column, at most 100 characters wide: columns that do not fit are named in a last line,
    --format json/csv has them all), a JSON list, or CSV with a header."""
    rows = [plain(row) for row in rows]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    flat = [flatten(row) for row in rows]
    keys: list[str] = []
    for row in flat:
        keys.extend(k for k in row if k not in keys)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        return buffer.getvalue().rstrip("\n")
    return _rich_rows(flat, keys, _width())


def _rich_rows(flat: list[dict[str, Any]], keys: list[str], width: int) -> str:
    from rich import box
    from rich.table import Table

    from dse.units import unit_of

    columns = {k: _column_cells([row.get(k) for row in flat], k) for k in keys}
    units = {k: ("" if unit_of(k) == "1" else unit_of(k)) for k in keys}
    shown: list[str] = []
    used = 0
    for key in keys:
        # Three characters between columns: padding, the (blank) divider, padding.
        need = max([len(key), len(units[key])] + [len(c) for c in columns[key]]) + 3
        if shown and used + need > width:
            break
        shown.append(key)
        used += need
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=False)
    any_unit = any(units[k] for k in shown)
    for key in shown:
        numeric = any(_is_number(row.get(key)) for row in flat)
        header = f"{key}\n{units[key]}" if any_unit else key
        table.add_column(
            header, justify="right" if numeric else "left", no_wrap=True, overflow="ellipsis"
        )
    for i in range(len(flat)):
        table.add_row(*(columns[k][i] for k in shown))
    console = _console(width)
    console.print(table)
    text = "\n".join(line.rstrip() for line in console.file.getvalue().rstrip("\n").splitlines())
    hidden = keys[len(shown) :]
    if hidden:
        import textwrap

        names = ", ".join(hidden[:6]) + (", ..." if len(hidden) > 6 else "")
        note = f"({len(hidden)} more columns: {names}; --format csv or json has them all)"
        text += "\n" + "\n".join(textwrap.wrap(note, width))
    return text


def render_record(record: Mapping[str, Any], fmt: str) -> str:
    """One record as key/value lines, a JSON object, or a one-row CSV."""
    record = plain(record)
    if fmt == "json":
        return json.dumps(record, indent=2)
    if fmt == "csv":
        return render_rows([record], "csv")
    return _rich_record(flatten(record), _width())


def _rich_record(flat: dict[str, Any], width: int) -> str:
    from rich import box
    from rich.table import Table

    from dse.units import unit_of

    table = Table(box=box.SIMPLE, show_header=False, show_edge=False, pad_edge=False)
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in flat.items():
        unit = unit_of(key) if _is_number(value) else "1"
        table.add_row(key, _cell(value) + ("" if unit == "1" else f" {unit}"))
    console = _console(width)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().rstrip("\n").splitlines())
