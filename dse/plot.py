"""Pareto plots of a results file: pairwise objective projections and parallel coordinates.

PNG (or SVG/PDF) by matplotlib with the Agg back end; interactive HTML by plotly, where
hovering a point shows its design parameters. Pareto points are highlighted; other feasible
points are drawn in grey (a random subset when there are very many); infeasible ones are left
out. Axis titles name the quantity and its unit ("training time (days)"); log axes carry short
labels (``2M``, ``5M``, ``10M``) at 1-2-5 steps, or decades only over a wide range, so they do not
overlap. Reference points (e.g. a catalog chip evaluated on the same workload) are marked.

An HTML plot loads plotly.js from ``plotly.min.js`` beside it (written once per folder), or
inlines it with ``offline``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dse.errors import InputError
from dse.export import DESIGN_COLUMNS, AtomicFile
from dse.parameters import PARAMETERS
from dse.pareto import nondominated
from dse.space import Objective, objective_matrix
from dse.units import UNIT_SUFFIXES, unit_of

SUFFIXES = (".png", ".svg", ".pdf", ".html")
MAX_BACKGROUND_POINTS = 20_000
"""Most non-Pareto feasible points drawn (a seeded random subset beyond that)."""
MAX_HTML_BACKGROUND_POINTS = 2_000
"""The same for HTML, where every point carries its hover text."""
MAX_LINES = 2_000
"""Most Pareto points drawn as lines in the parallel-coordinates view."""
PLOTLY_JS = "plotly.min.js"
"""plotly.js written beside an HTML plot (``include_plotlyjs='directory'``)."""

QUANTITIES = {
    "training_days": "training time",
    "cost_usd": "cost",
    "energy_mwh": "energy",
    "chip_hours": "chip-hours",
    "capex_usd": "hardware cost",
    "step_time_s": "step time",
    "mfu": "MFU",
    "avg_chip_power_w": "average chip power",
    "cluster_power_mw": "cluster power",
    "memory_per_chip_gb": "memory per chip",
    "unit_cost_usd": "unit cost",
    "unit_price_usd": "unit price",
    "die_area_mm2": "die area",
    **{p.name: p.label for p in PARAMETERS if p.label},
}
"""Readable names of common columns; others read their name with spaces."""


@dataclass(frozen=True)
class Marker:
    """A point drawn on every projection, e.g. a catalog chip's evaluated design.

    ``values`` maps objective names to the point's values (a missing or non-finite value leaves
    the marker out of that projection)."""

    label: str
    values: dict[str, float]


def axis_title(name: str) -> str:
    """A column's axis title: its quantity and unit, e.g. ``training time (days)``."""
    quantity = QUANTITIES.get(name)
    unit = unit_of(name)
    if quantity is None:
        suffix = next((s for s, u in UNIT_SUFFIXES if name.endswith(s)), "")
        quantity = name[: len(name) - len(suffix)].replace("_", " ")
    if name == "mfu":
        return "MFU (fraction of peak)"
    return quantity if unit == "1" else f"{quantity} ({unit})"


def objective_title(objective: Objective) -> str:
    """An objective's axis title; a maximized one says so (minimizing is the default)."""
    title = axis_title(objective.name)
    return f"{title}, higher is better" if objective.maximize else title


def compact(value: float) -> str:
    """A tick label: three significant digits at most, with k/M/B/T (``2.5M``, ``40k``)."""
    if not np.isfinite(value):
        return ""
    magnitude = abs(value)
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= factor:
            return f"{value / factor:.3g}{suffix}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.3g}"
    return f"{value:.2g}"


def _log_scale(values: np.ndarray) -> bool:
    values = values[np.isfinite(values)]
    return bool(len(values) and values.min() > 0 and values.max() / values.min() > 20)


def reference_markers(
    references: Sequence[str], meta: dict[str, Any], num_chips: int | None, frame: pd.DataFrame
) -> list[Marker]:
    """Each chip evaluated (best plan) on the results file's workload, tokens, precision and
    settings, on ``num_chips`` chips (default: the file's cluster size when it has one)."""
    from dse.catalog.workloads import load_workload
    from dse.evaluation import evaluate_one
    from dse.settings import load_settings

    if not references:
        return []
    if not meta.get("workload"):
        raise InputError.for_argument(
            "references", "a results file whose provenance names a workload", "none"
        )
    if num_chips is None:
        sizes: list[Any] = list(frame["num_chips"].unique()) if "num_chips" in frame else []
        if len(sizes) != 1:
            raise InputError.for_argument(
                "num_chips", "a cluster size for `references` (the results vary num_chips)", "none"
            )
        num_chips = int(sizes[0])
    workload = load_workload(meta["workload"])
    changes: dict[str, Any] = {}
    if meta.get("tokens"):
        changes["tokens"] = float(meta["tokens"])
    if meta.get("precision"):
        changes["precision"] = meta["precision"]
    workload = workload.with_changes(**changes) if changes else workload
    settings = load_settings().with_overrides(
        "results file settings", **(meta.get("settings") or {})
    )
    markers = []
    for chip in references:
        record = evaluate_one(chip, workload, num_chips, settings)
        values = {
            k: float(v)
            for k, v in record.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        label = f"{record['chip']} x {num_chips:,}" + (
            "" if record["feasible"] else " (infeasible)"
        )
        markers.append(Marker(label, values))
    return markers


def plot_results(
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    out: Path,
    markers: Sequence[Marker] = (),
    offline: bool = False,
) -> int:
    """Draw ``frame``'s Pareto set over ``objectives`` to ``out`` (by suffix); returns its size.

    ``markers`` are drawn on every projection; an HTML file loads plotly.js from
    :data:`PLOTLY_JS` beside it, or inlines it when ``offline``."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError.for_argument(
            "out", f"a file name ending in one of {list(SUFFIXES)}", str(out)
        )
    if len(objectives) < 2:
        raise InputError.for_argument(
            "objectives", "at least two objectives to plot", len(objectives)
        )
    limit = MAX_HTML_BACKGROUND_POINTS if suffix == ".html" else MAX_BACKGROUND_POINTS
    front, background = split_front(frame, objectives, limit)
    target = AtomicFile(out)
    try:
        if suffix == ".html":
            fig = plotly_figure(frame, objectives, front, background, markers)
            fig.write_html(
                target.temp, include_plotlyjs=True if offline else "directory", full_html=True
            )
        else:
            _matplotlib(frame, objectives, front, background, markers, target.temp, suffix[1:])
        target.commit()
    except BaseException:
        target.discard()
        raise
    return len(front)


def split_front(
    frame: pd.DataFrame, objectives: Sequence[Objective], limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of the feasible front (sorted by the first objective) and of at most
    ``limit`` other feasible rows (a seeded random subset)."""
    feasible = (
        frame["feasible"].to_numpy(dtype=bool)
        if "feasible" in frame
        else np.ones(len(frame), dtype=bool)
    )
    F = objective_matrix({o.name: frame[o.name].to_numpy() for o in objectives}, objectives)
    pareto = nondominated(F, feasible)
    background = np.flatnonzero(feasible & ~pareto)
    if len(background) > limit:
        rng = np.random.default_rng(0)
        background = np.sort(rng.choice(background, limit, replace=False))
    front = np.flatnonzero(pareto)
    first = np.argsort(frame[objectives[0].name].to_numpy()[front], kind="stable")
    return front[first], background


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


def _log_ticks(ax: Any, axis: str, values: np.ndarray) -> None:
    """Log scale with short labels at 1-2-5 steps (decades only over more than three decades)
    and no minor labels, so that labels never crowd."""
    from matplotlib import ticker

    finite = values[np.isfinite(values) & (values > 0)]
    decades = np.log10(finite.max() / finite.min()) if len(finite) else 0.0
    subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0)
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(ticker.LogLocator(base=10.0, subs=subs, numticks=12))
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))
    target.set_minor_locator(ticker.LogLocator(base=10.0, subs=[float(k) for k in range(2, 10)]))
    target.set_minor_formatter(ticker.NullFormatter())


def _linear_ticks(ax: Any, axis: str) -> None:
    from matplotlib import ticker

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(ticker.MaxNLocator(nbins=6))
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))


def _matplotlib(
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    front: np.ndarray,
    background: np.ndarray,
    markers: Sequence[Marker],
    path: Path,
    fmt: str,
) -> None:
    """The front as a static figure: a scatter per pair of objectives above, the front's
    parallel coordinates below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(itertools.combinations(range(len(objectives)), 2))
    fig = plt.figure(figsize=(max(5.0 * len(pairs), 10.0), 9.5), layout="constrained")
    grid = fig.add_gridspec(2, len(pairs), height_ratios=[1.0, 0.9])
    for col, (i, j) in enumerate(pairs):
        ax = fig.add_subplot(grid[0, col])
        _scatter_pair(ax, frame, objectives[i], objectives[j], front, background, markers)
        if col == 0:
            ax.legend(loc="best", fontsize="small")
    ax = fig.add_subplot(grid[1, :])
    _parallel_coordinates(fig, ax, frame, objectives, front)
    ax.set_title(f"Pareto front: {len(front)} designs (parallel coordinates, each axis min to max)")
    fig.savefig(path, format=fmt, dpi=120)
    plt.close(fig)


_MARKER_SYMBOLS = ("*", "D", "P", "X", "s", "^")


def _scatter_pair(
    ax: Any,
    frame: pd.DataFrame,
    first: Objective,
    second: Objective,
    front: np.ndarray,
    background: np.ndarray,
    markers: Sequence[Marker],
) -> None:
    """One objective against another: the feasible designs in grey, the front in red, the
    markers (catalog chips) labelled in blue; log axes where the values span decades."""
    x, y = first.name, second.name
    ax.scatter(
        frame[x].iloc[background],
        frame[y].iloc[background],
        s=4,
        c="0.78",
        label="other feasible designs",
        rasterized=True,
    )
    ax.plot(
        frame[x].iloc[front],
        frame[y].iloc[front],
        "o",
        ms=4.5,
        c="tab:red",
        mec="darkred",
        mew=0.4,
        label=f"Pareto front ({len(front)})",
    )
    for k, marker in enumerate(markers):
        px, py = marker.values.get(x, np.nan), marker.values.get(y, np.nan)
        if not (np.isfinite(px) and np.isfinite(py)):
            continue
        ax.plot(
            px,
            py,
            _MARKER_SYMBOLS[k % len(_MARKER_SYMBOLS)],
            ms=13,
            c="tab:blue",
            mec="black",
            mew=0.8,
            label=marker.label,
            zorder=5,
        )
        ax.annotate(
            marker.label,
            (px, py),
            xytext=(7, 7),
            textcoords="offset points",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8, "lw": 0},
            color="tab:blue",
        )
    ax.set_xlabel(objective_title(first), fontsize=11)
    ax.set_ylabel(objective_title(second), fontsize=11)
    shown = np.concatenate([front, background])
    for name, axis in ((x, "x"), (y, "y")):
        values = frame[name].iloc[shown].to_numpy(dtype=np.float64)
        extra = [m.values.get(name, np.nan) for m in markers]
        values = np.concatenate([values, np.asarray(extra, dtype=np.float64)])
        if _log_scale(values):
            _log_ticks(ax, axis, values)
        else:
            _linear_ticks(ax, axis)
    ax.tick_params(labelsize=10)
    ax.grid(alpha=0.3, which="major")


def _parallel_coordinates(
    fig: Any, ax: Any, frame: pd.DataFrame, objectives: Sequence[Objective], front: np.ndarray
) -> None:
    """The first MAX_LINES designs of the front as lines over their columns, each axis scaled
    from its least to its largest value on the front and coloured by the first objective."""
    from matplotlib.collections import LineCollection

    rows = front[:MAX_LINES]
    columns = _axes_columns(frame, objectives, rows) if len(rows) else []
    if not columns:
        return
    scaled = []
    for name in columns:
        numbers, labels = _numeric(frame[name].iloc[rows])
        low, high = np.nanmin(numbers), np.nanmax(numbers)
        scaled.append((numbers - low) / (high - low) if high > low else np.full_like(numbers, 0.5))
        top = labels[-1] if labels else compact(high)
        bottom = labels[0] if labels else compact(low)
        for text, level, offset in ((top, 1.0, 4), (bottom, 0.0, -12)):
            ax.annotate(
                text,
                (len(scaled) - 1, level),
                xytext=(0, offset),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    matrix = np.column_stack(scaled)
    positions = np.arange(len(columns))
    segments = [np.column_stack([positions, row]) for row in matrix]
    color = matrix[:, -len(objectives)]
    lines = LineCollection(segments, array=color, cmap="viridis", linewidths=0.8, alpha=0.6)
    ax.add_collection(lines)
    ax.set_xlim(-0.3, len(columns) - 0.7)
    ax.set_ylim(-0.1, 1.1)
    ax.set_xticks(positions, [axis_title(c) for c in columns], rotation=25, ha="right", fontsize=9)
    ax.set_yticks([])
    for position in positions:
        ax.axvline(float(position), color="0.6", linewidth=0.6)
    fig.colorbar(
        lines,
        ax=ax,
        label=f"{axis_title(objectives[0].name)}: 0 lowest, 1 highest on the front",
    )


def _shown(value: object) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return str(value)


def _hover(frame: pd.DataFrame, rows: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """One hover text per row: ``name: value`` lines of the given columns."""
    part = frame.iloc[rows]
    lines = []
    for name in columns:
        # One value at a time: a hand-edited column may mix numbers, text and missing values.
        lines.append(np.array([f"{name}: {_shown(v)}" for v in part[name].tolist()], dtype=object))
    if not lines:
        return np.full(len(rows), "", dtype=object)
    return np.asarray(["<br>".join(parts) for parts in zip(*lines, strict=True)], dtype=object)


def _plotly_axis(values: np.ndarray) -> dict[str, Any]:
    """Axis settings: log with 1-2-5 (or decade) labels over a wide range, SI-short labels."""
    if not _log_scale(values):
        return {"type": "linear", "tickformat": "~s"}
    finite = values[np.isfinite(values) & (values > 0)]
    decades = np.log10(finite.max() / finite.min())
    return {"type": "log", "dtick": 1 if decades > 3 else "D2", "tickformat": "~s"}


def add_projections(
    fig: Any,
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    front: np.ndarray,
    background: np.ndarray,
    markers: Sequence[Marker] = (),
    row: int = 1,
) -> None:
    """Scatter plots of each pair of objectives on ``fig``'s subplot ``row`` (one column per
    pair): other feasible designs in grey, the front in red, ``markers`` as blue stars."""
    from dse.extras import require

    require("html", "an interactive HTML plot")
    import plotly.graph_objects as go

    pairs = list(itertools.combinations(range(len(objectives)), 2))
    names = [o.name for o in objectives]
    everything = np.concatenate([front, background])
    shown = _axes_columns(frame, objectives, everything) if len(everything) else names
    extra = [c for c in ("tp", "pp", "dp", "mfu") if c in frame and c not in shown]
    hover_front = _hover(frame, front, shown + extra)
    hover_back = _hover(frame, background, shown)
    for col, (i, j) in enumerate(pairs, start=1):
        x, y = names[i], names[j]
        layers = (
            (background, 4, "lightgrey", "other feasible designs", hover_back),
            (front, 7, "crimson", f"Pareto front ({len(front)})", hover_front),
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
                row=row,
                col=col,
            )
        for marker in markers:
            px, py = marker.values.get(x, np.nan), marker.values.get(y, np.nan)
            if not (np.isfinite(px) and np.isfinite(py)):
                continue
            fig.add_trace(
                go.Scatter(
                    x=[px],
                    y=[py],
                    mode="markers+text",
                    marker={
                        "size": 16,
                        "color": "royalblue",
                        "symbol": "star",
                        "line": {"width": 1, "color": "black"},
                    },
                    text=[marker.label],
                    textposition="top right",
                    name=marker.label,
                    legendgroup=marker.label,
                    showlegend=col == 1,
                    hovertext=[marker.label],
                    hoverinfo="text+x+y",
                ),
                row=row,
                col=col,
            )
        for name, axis_of, update in ((x, i, fig.update_xaxes), (y, j, fig.update_yaxes)):
            values = frame[name].iloc[everything].to_numpy(dtype=np.float64)
            values = np.concatenate([values, [m.values.get(name, np.nan) for m in markers]])
            update(
                title_text=objective_title(objectives[axis_of]),
                row=row,
                col=col,
                **_plotly_axis(values),
            )


def parcoords_trace(frame: pd.DataFrame, objectives: Sequence[Objective], front: np.ndarray) -> Any:
    """The front as parallel coordinates: varying design parameters, then the objectives,
    coloured by the first objective; None for an empty front."""
    import plotly.graph_objects as go

    rows = front[:MAX_LINES]
    if not len(rows):
        return None
    dimensions = []
    for name in _axes_columns(frame, objectives, rows):
        values, labels = _numeric(frame[name].iloc[rows])
        axis: dict[str, object] = {"label": axis_title(name), "values": values}
        if labels is not None:
            axis.update(tickvals=list(range(len(labels))), ticktext=labels)
        dimensions.append(axis)
    first = objectives[0].name
    return go.Parcoords(
        line={
            "color": frame[first].iloc[rows],
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": {"title": {"text": axis_title(first)}, "len": 0.4, "y": 0.2},
        },
        dimensions=dimensions,
        labelangle=-20,
        labelside="bottom",
        labelfont={"size": 11},
    )


def plotly_figure(
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    front: np.ndarray,
    background: np.ndarray,
    markers: Sequence[Marker] = (),
) -> Any:
    """The projections above the front's parallel coordinates, as one plotly figure."""
    from dse.extras import require

    require("html", "an interactive HTML plot")
    from plotly.subplots import make_subplots

    pairs = list(itertools.combinations(range(len(objectives)), 2))
    specs: list[list[dict[str, object] | None]] = [
        [{"type": "xy"} for _ in pairs],
        [{"type": "domain", "colspan": len(pairs)}] + [None] * (len(pairs) - 1),
    ]
    fig = make_subplots(rows=2, cols=len(pairs), specs=specs, vertical_spacing=0.2)
    add_projections(fig, frame, objectives, front, background, markers)
    trace = parcoords_trace(frame, objectives, front)
    if trace is not None:
        fig.add_trace(trace, row=2, col=1)
    axes = len(trace.dimensions) if trace is not None else 0
    fig.update_layout(
        title={
            "text": f"Pareto front: {len(front)} designs (hover a point for its design)",
            "y": 0.99,
        },
        height=950,
        width=max(450 * len(pairs), 75 * axes, 1000),
        legend={"orientation": "h", "y": 1.02, "x": 0.0, "yanchor": "bottom"},
        margin={"b": 120},
    )
    return fig
