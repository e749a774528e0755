"""One self-contained HTML page for a sweep or search results file (``dse report``).

The page holds the run's provenance, a summary (rows, feasible, front size, hypervolume with
its reference point and units), the best design per objective, the front as a table that sorts
by any column when its header is clicked, the pairwise objective projections and the front's
parallel coordinates. plotly.js is inlined once, so the file opens anywhere without a network.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dse.export import DESIGN_COLUMNS, AtomicFile
from dse.model.evaluate import PLAN_COLUMNS
from dse.pareto import ResultsFront, results_front
from dse.plot import (
    MAX_HTML_BACKGROUND_POINTS,
    add_projections,
    axis_title,
    objective_title,
    parcoords_trace,
    split_front,
)
from dse.space import Objective

MAX_TABLE_ROWS = 2_000
"""Most front rows listed in the table (the first by the first objective)."""
KEY_METRICS = ("mfu", "chip_hours", "unit_price_usd", "avg_chip_power_w", "memory_per_chip_gb")
"""Metrics listed beside the objectives in the tables, where the file has them."""

_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-value");
        var y = b.cells[column].getAttribute("data-value");
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1500px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f5f5f5; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
table.sortable th { cursor: pointer; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
.scroll { max-height: 32em; overflow: auto; border: 1px solid #ddd; }
.note { color: #666; font-size: 0.9em; }
"""


def write_report(
    frame: pd.DataFrame,
    meta: Mapping[str, Any],
    objectives: Sequence[Objective],
    source: str | Path,
    out: Path,
) -> ResultsFront:
    """Write the report page of ``frame`` (a results file read from ``source``) to ``out``;
    returns the front it shows."""
    front = results_front(frame, objectives)
    page = render_report(frame, meta, objectives, str(source), front)
    target = AtomicFile(out)
    try:
        target.temp.write_text(page, encoding="utf-8")
        target.commit()
    except BaseException:
        target.discard()
        raise
    return front


def render_report(
    frame: pd.DataFrame,
    meta: Mapping[str, Any],
    objectives: Sequence[Objective],
    source: str,
    front: ResultsFront,
) -> str:
    """The report as one HTML document (plotly.js inlined)."""
    from dse.extras import require

    require("html", "an HTML report")
    from plotly.offline import get_plotlyjs

    rows, background = split_front(frame, objectives, MAX_HTML_BACKGROUND_POINTS)
    front_frame = frame.iloc[rows]
    columns = _table_columns(frame, objectives, rows)
    sections = [
        f"<h1>Design-space report: {html.escape(Path(source).name)}</h1>",
        _summary(frame, front, source),
        "<h2>Best design per objective</h2>",
        _best_table(frame, objectives, front, columns),
        f"<h2>The front: {len(rows):,} designs</h2>",
        '<p class="note">Click a column header to sort. Units are in the headers.'
        + (
            f" The first {MAX_TABLE_ROWS:,} by {html.escape(axis_title(objectives[0].name))}."
            if len(rows) > MAX_TABLE_ROWS
            else ""
        )
        + "</p>",
        _table(front_frame.iloc[:MAX_TABLE_ROWS], columns, sortable=True),
        "<h2>Projections</h2>",
        '<p class="note">Each pair of objectives; the front in red, other feasible designs '
        "in grey (a sample when there are many). Hover a point for its design.</p>",
        _projections(frame, objectives, rows, background),
        "<h2>Parallel coordinates of the front</h2>",
        '<p class="note">Drag along an axis to select a range of it.</p>',
        _parcoords(frame, objectives, rows),
        "<h2>Provenance</h2>",
        _provenance(meta, source),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>dse report: {html.escape(Path(source).name)}</title>\n"
        f"<style>{_STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        f"</head>\n<body>\n{body}\n<script>{_SORT_SCRIPT}</script>\n</body>\n</html>\n"
    )


def best_per_objective(
    frame: pd.DataFrame, objectives: Sequence[Objective], feasible: np.ndarray
) -> list[tuple[Objective, int]]:
    """For each objective, the position of the feasible row that is best on it (ties: the
    first); objectives without a feasible finite value are left out."""
    best = []
    for objective in objectives:
        values = frame[objective.name].to_numpy(dtype=np.float64)
        values = np.where(feasible & np.isfinite(values), values, np.nan)
        if np.all(np.isnan(values)):
            continue
        best.append(
            (objective, int(np.nanargmax(values) if objective.maximize else np.nanargmin(values)))
        )
    return best


def _table_columns(
    frame: pd.DataFrame, objectives: Sequence[Objective], rows: np.ndarray
) -> list[str]:
    names = [o.name for o in objectives]
    part = frame.iloc[rows]
    varying = [c for c in DESIGN_COLUMNS if c in frame and c not in names and part[c].nunique() > 1]
    metrics = [c for c in KEY_METRICS if c in frame and c not in names]
    plan = [c for c in PLAN_COLUMNS if c in frame and c not in names]
    return names + metrics + varying + plan


def _summary(frame: pd.DataFrame, front: ResultsFront, source: str) -> str:
    feasible = int(front.feasible.sum())
    objectives = ", ".join(objective_title(o) for o in front.objectives)
    items = [
        ("results file", source),
        ("designs", f"{len(frame):,}"),
        ("feasible", f"{feasible:,} ({feasible / max(len(frame), 1):.1%})"),
        ("on the front", f"{int(front.mask.sum()):,}"),
        ("objectives (minimized unless stated)", objectives),
        ("hypervolume", f"{front.hypervolume:.4g} {front.hypervolume_unit}"),
        ("reference point", front.reference_text()),
    ]
    return _key_values(items)


def _best_table(
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    front: ResultsFront,
    columns: list[str],
) -> str:
    best = best_per_objective(frame, objectives, front.feasible)
    if not best:
        return '<p class="note">No feasible design.</p>'
    part = frame.iloc[[position for _, position in best]]
    labels = [("best " + axis_title(o.name).split(" (")[0]) for o, _ in best]
    return _table(part, columns, first=("best for", labels))


def _format_column(values: pd.Series) -> list[str]:
    """One number format per column: whole numbers with thousands separators, else four
    significant digits of the column's typical value in fixed notation (scientific beyond
    1e12)."""
    if pd.api.types.is_bool_dtype(values):
        return ["yes" if v else "no" for v in values]
    if not pd.api.types.is_numeric_dtype(values):
        return [html.escape(str(v)) for v in values]
    numbers = values.to_numpy(dtype=np.float64)
    finite = numbers[np.isfinite(numbers)]
    if len(finite) and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e15:
        return [f"{v:,.0f}" if math.isfinite(v) else "-" for v in numbers]
    largest = np.abs(finite).max() if len(finite) else 0.0
    if largest >= 1e12:
        return [f"{v:.3e}" if math.isfinite(v) else "-" for v in numbers]
    nonzero = np.abs(finite[finite != 0])
    typical = float(np.median(nonzero)) if len(nonzero) else 1.0
    digits = max(0, min(6, 3 - math.floor(math.log10(typical))))
    return [f"{v:,.{digits}f}" if math.isfinite(v) else "-" for v in numbers]


def _table(
    part: pd.DataFrame,
    columns: list[str],
    sortable: bool = False,
    first: tuple[str, list[str]] | None = None,
) -> str:
    head = []
    cells: list[list[tuple[str, str, bool]]] = [[] for _ in range(len(part))]
    if first is not None:
        head.append(f'<th class="text">{html.escape(first[0])}</th>')
        for i, label in enumerate(first[1]):
            cells[i].append((html.escape(label), html.escape(label), True))
    head.append('<th title="row in the results file">row</th>')
    for i, index in enumerate(part.index):
        cells[i].append((f"{int(index)}", f"{int(index)}", False))
    for name in columns:
        values = part[name]
        text = not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        css = ' class="text"' if text else ""
        head.append(f'<th{css} title="{html.escape(name)}">{html.escape(axis_title(name))}</th>')
        raw = values.astype(str) if text else values.astype(np.float64).map(repr)
        for i, (shown, value) in enumerate(zip(_format_column(values), raw, strict=True)):
            cells[i].append((shown, html.escape(value), text))
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td{" class=text" if text else ""} data-value="{value}">{shown}</td>'
            for shown, value, text in row
        )
        + "</tr>"
        for row in cells
    )
    css = ' class="sortable"' if sortable else ""
    return (
        f'<div class="scroll"><table{css}><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _projections(
    frame: pd.DataFrame, objectives: Sequence[Objective], rows: np.ndarray, background: np.ndarray
) -> str:
    from plotly.subplots import make_subplots

    pairs = len(objectives) * (len(objectives) - 1) // 2
    fig = make_subplots(rows=1, cols=pairs, horizontal_spacing=0.08)
    add_projections(fig, frame, objectives, rows, background)
    fig.update_layout(
        height=460,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        margin={"t": 40},
    )
    return _figure_html(fig, "projections")


def _parcoords(frame: pd.DataFrame, objectives: Sequence[Objective], rows: np.ndarray) -> str:
    import plotly.graph_objects as go

    trace = parcoords_trace(frame, objectives, rows)
    if trace is None:
        return '<p class="note">No feasible design.</p>'
    fig = go.Figure(trace)
    fig.update_layout(height=520, margin={"l": 80, "r": 80, "t": 60, "b": 110})
    return _figure_html(fig, "parallel-coordinates")


def _figure_html(fig: Any, div_id: str) -> str:
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            config={"responsive": True, "displaylogo": False},
        )
    )


def _provenance(meta: Mapping[str, Any], source: str) -> str:
    if not meta:
        return f'<p class="note">{html.escape(source)} holds no provenance.</p>'
    items = []
    for key, value in meta.items():
        if key == "objectives" and isinstance(value, list):
            shown = ", ".join(
                f"{'max' if o.get('maximize') else 'min'} {o.get('name')}" for o in value
            )
        elif key == "settings" and isinstance(value, Mapping):
            shown = (
                ", ".join(f"{k} = {v}" for k, v in value.items())
                or "the defaults (dse/defaults.toml)"
            )
        elif isinstance(value, float):
            shown = f"{value:.6g}"
        elif isinstance(value, Mapping | list):
            shown = json.dumps(value)
        else:
            shown = str(value)
        items.append((key, shown))
    return _key_values(items)


def _key_values(items: Sequence[tuple[str, str]]) -> str:
    rows = "\n".join(
        f'<tr><th class="text">{html.escape(k)}</th><td class="text">{html.escape(v)}</td></tr>'
        for k, v in items
    )
    return f"<table>{rows}</table>"
