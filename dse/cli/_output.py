"""Formatting of command output: a table for a person, JSON for programs, CSV for spreadsheets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from dse.evaluation import plain

FORMATS = ("table", "json", "csv")

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
num_chips_option = click.option(
    "--num-chips", required=True, type=click.IntRange(min=1), help="Chips in the cluster."
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


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(_cell(v) for v in value) or "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e6 or abs(value) < 1e-3:
            return f"{value:.4g}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def render_rows(rows: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """A list of records as an aligned table, a JSON list, or CSV with a header."""
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
    cells = [[_cell(row.get(k)) for k in keys] for row in flat]
    widths = [max([len(k)] + [len(r[i]) for r in cells]) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells)
    return "\n".join(line.rstrip() for line in lines)


def render_record(record: Mapping[str, Any], fmt: str) -> str:
    """One record as key/value lines, a JSON object, or a one-row CSV."""
    record = plain(record)
    if fmt == "json":
        return json.dumps(record, indent=2)
    if fmt == "csv":
        return render_rows([record], "csv")
    flat = flatten(record)
    width = max(len(k) for k in flat)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in flat.items())
