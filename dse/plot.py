"""Pareto plots of a results file: pairwise objective projections and parallel coordinates.

PNG (or SVG/PDF) by matplotlib with the Agg back end; interactive HTML by plotly, where
hovering a point shows its design parameters. Pareto points are highlighted; other feasible
points are drawn in grey (a random subset when there are very many); infeasible ones are left
out.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dse.errors import InputError
from dse.export import DESIGN_COLUMNS, AtomicFile
from dse.pareto import nondominated
from dse.space import Objective, objective_matrix

SUFFIXES = (".png", ".svg", ".pdf", ".html")
MAX_BACKGROUND_POINTS = 20_000
"""Most non-Pareto feasible points drawn (a seeded random subset beyond that)."""
MAX_HTML_BACKGROUND_POINTS = 2_000
"""The same for HTML, where every point carries its hover text."""
MAX_LINES = 2_000
"""Most Pareto points drawn as lines in the parallel-coordinates view."""


def plot_results(frame: pd.DataFrame, objectives: Sequence[Objective], out: Path) -> int:
    """Draw ``frame``'s Pareto set over ``objectives`` to ``out`` (by suffix); returns its size."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError.for_argument(
            "out", f"a file name ending in one of {list(SUFFIXES)}", str(out)
        )
    if len(objectives) < 2:
        raise InputError("objectives", "", "at least two objectives to plot", len(objectives))
    feasible = (
        frame["feasible"].to_numpy(dtype=bool)
        if "feasible" in frame
        else np.ones(len(frame), dtype=bool)
    )
    F = objective_matrix({o.name: frame[o.name].to_numpy() for o in objectives}, objectives)
    pareto = nondominated(F, feasible)
    background = np.flatnonzero(feasible & ~pareto)
    limit = MAX_HTML_BACKGROUND_POINTS if suffix == ".html" else MAX_BACKGROUND_POINTS
    if len(background) > limit:
        rng = np.random.default_rng(0)
        background = np.sort(rng.choice(background, limit, replace=False))
    front = np.flatnonzero(pareto)
    first = np.argsort(frame[objectives[0].name].to_numpy()[front], kind="stable")
    front = front[first]
    target = AtomicFile(out)
    try:
        if suffix == ".html":
            _plotly(frame, objectives, front, background, target.temp)
        else:
            _matplotlib(frame, objectives, front, background, target.temp, suffix[1:])
        target.commit()
    except BaseException:
        target.discard()
        raise
    return len(front)


def _label(name: str, maximize: bool) -> str:
    return f"{name} ({'max' if maximize else 'min'})"


def _axes_columns(
    frame: pd.DataFrame, objectives: Sequence[Objective], rows: np.ndarray
) -> list[str]:
    """Parallel-coordinates axes: design parameters that vary over ``rows``, then objectives."""
    names = [o.name for o in objectives]
    varying = [
        c
        for c in DESIGN_COLUMNS
        if c in frame and c not in names and frame[c].iloc[rows].nunique() > 1
    ]
    return varying + names


def _numeric(column: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Values as numbers; categorical (text) columns as codes with their labels."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64), None
    labels = sorted(column.astype(str).unique())
    codes = column.astype(str).map({label: i for i, label in enumerate(labels)})
    return codes.to_numpy(dtype=np.float64), labels


def _matplotlib(
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    front: np.ndarray,
    background: np.ndarray,
    path: Path,
    fmt: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    pairs = list(itertools.combinations(range(len(objectives)), 2))
    fig = plt.figure(figsize=(max(5.0 * len(pairs), 10.0), 9.0), layout="constrained")
    grid = fig.add_gridspec(2, len(pairs), height_ratios=[1.0, 0.9])
    for col, (i, j) in enumerate(pairs):
        ax = fig.add_subplot(grid[0, col])
        x, y = objectives[i].name, objectives[j].name
        ax.scatter(
            frame[x].iloc[background], frame[y].iloc[background], s=3, c="0.75", label="feasible"
        )
        ax.scatter(frame[x].iloc[front], frame[y].iloc[front], s=14, c="tab:red", label="Pareto")
        ax.set_xlabel(_label(x, objectives[i].maximize))
        ax.set_ylabel(_label(y, objectives[j].maximize))
        for name, setter in ((x, ax.set_xscale), (y, ax.set_yscale)):
            values = frame[name].iloc[np.concatenate([front, background])]
            if len(values) and values.min() > 0 and values.max() / values.min() > 20:
                setter("log")
        ax.grid(alpha=0.3)
        if col == 0:
            ax.legend(loc="best", fontsize="small")
    ax = fig.add_subplot(grid[1, :])
    rows = front[:MAX_LINES]
    columns = _axes_columns(frame, objectives, rows) if len(rows) else []
    if columns:
        scaled = []
        for name in columns:
            numbers, labels = _numeric(frame[name].iloc[rows])
            low, high = np.nanmin(numbers), np.nanmax(numbers)
            scaled.append(
                (numbers - low) / (high - low) if high > low else np.full_like(numbers, 0.5)
            )
            top = labels[-1] if labels else f"{high:.4g}"
            bottom = labels[0] if labels else f"{low:.4g}"
            ax.annotate(
                top,
                (len(scaled) - 1, 1.0),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
            ax.annotate(
                bottom,
                (len(scaled) - 1, 0.0),
                xytext=(0, -10),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
        matrix = np.column_stack(scaled)
        positions = np.arange(len(columns))
        segments = [np.column_stack([positions, row]) for row in matrix]
        color = matrix[:, -len(objectives)]
        lines = LineCollection(segments, array=color, cmap="viridis", linewidths=0.8, alpha=0.6)
        ax.add_collection(lines)
        ax.set_xlim(-0.3, len(columns) - 0.7)
        ax.set_ylim(-0.08, 1.08)
        ax.set_xticks(positions, columns, rotation=30, ha="right", fontsize=8)
        ax.set_yticks([])
        for position in positions:
            ax.axvline(float(position), color="0.6", linewidth=0.6)
        fig.colorbar(lines, ax=ax, label=f"{objectives[0].name} (scaled)")
    ax.set_title(f"Pareto set: {len(front)} designs (parallel coordinates, each axis min..max)")
    fig.savefig(path, format=fmt, dpi=120)
    plt.close(fig)


def _hover(frame: pd.DataFrame, rows: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """One hover text per row: ``name: value`` lines of the given columns."""
    part = frame.iloc[rows]
    lines = []
    for name in columns:
        values = part[name]
        if pd.api.types.is_float_dtype(values):
            shown = values.map(lambda v: f"{v:.4g}").to_numpy(dtype=object)
        else:
            shown = values.astype(str).to_numpy(dtype=object)
        lines.append(f"{name}: " + shown)
    if not lines:
        return np.full(len(rows), "", dtype=object)
    return np.asarray(["<br>".join(parts) for parts in zip(*lines, strict=True)], dtype=object)


def _plotly(
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    front: np.ndarray,
    background: np.ndarray,
    path: Path,
) -> None:
    from dse.extras import require

    require("html", "an interactive HTML plot")
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pairs = list(itertools.combinations(range(len(objectives)), 2))
    specs: list[list[dict[str, object] | None]] = [
        [{"type": "xy"} for _ in pairs],
        [{"type": "domain", "colspan": len(pairs)}] + [None] * (len(pairs) - 1),
    ]
    fig = make_subplots(rows=2, cols=len(pairs), specs=specs, vertical_spacing=0.18)
    names = [o.name for o in objectives]
    everything = np.concatenate([front, background])
    shown = _axes_columns(frame, objectives, everything) if len(everything) else names
    extra = [c for c in ("tp", "pp", "dp", "mfu") if c in frame]
    hover_front = _hover(frame, front, shown + extra)
    hover_back = _hover(frame, background, shown)
    for col, (i, j) in enumerate(pairs, start=1):
        x, y = names[i], names[j]
        layers = (
            (background, 3, "lightgrey", "feasible", hover_back),
            (front, 6, "crimson", "Pareto", hover_front),
        )
        for rows, size, color, name, hover in layers:
            fig.add_trace(
                go.Scattergl(
                    x=frame[x].iloc[rows],
                    y=frame[y].iloc[rows],
                    mode="markers",
                    marker={"size": size, "color": color},
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    text=hover,
                    hoverinfo="text",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=_label(x, objectives[i].maximize), row=1, col=col)
        fig.update_yaxes(title_text=_label(y, objectives[j].maximize), row=1, col=col)
    rows = front[:MAX_LINES]
    if len(rows):
        dimensions = []
        for name in _axes_columns(frame, objectives, rows):
            values, labels = _numeric(frame[name].iloc[rows])
            axis: dict[str, object] = {"label": name, "values": values}
            if labels is not None:
                axis.update(tickvals=list(range(len(labels))), ticktext=labels)
            dimensions.append(axis)
        fig.add_trace(
            go.Parcoords(
                line={
                    "color": frame[names[0]].iloc[rows],
                    "colorscale": "Viridis",
                    "showscale": True,
                },
                dimensions=dimensions,
            ),
            row=2,
            col=1,
        )
    fig.update_layout(
        title=f"Pareto set: {len(front)} designs (hover a point for its design)",
        height=900,
        width=max(450 * len(pairs), 1000),
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)
