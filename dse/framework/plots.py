"""Figures of the framework: the cost of scale (log-log) and the roadmap (waterfall).

A ``.png`` (or ``.svg``/``.pdf``) path gets a static matplotlib figure (Agg back end), a
``.html`` path a self-contained interactive plotly one (as ``dse plot``). The plotting libraries are imported only here, when a figure is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dse.errors import InputError
from dse.extras import require
from dse.framework.roadmap import Roadmap
from dse.framework.scaling import ScalingRow

SUFFIXES = (".png", ".svg", ".pdf", ".html")
_SCALING_PANELS = (
    ("training_flops", "training FLOPs"),
    ("cost_usd", "cost (USD)"),
    ("energy_mwh", "energy (MWh)"),
    ("cluster_power_mw", "cluster power (MW)"),
)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError.for_argument(
            "plot", f"a file name ending in one of {list(SUFFIXES)}", str(path)
        )
    return suffix


def scaling_plot(
    rows: Sequence[ScalingRow], path: str | Path, title: str, max_power_mw: float
) -> Path:
    """FLOPs (with the paper's 120·P²/K), cost, energy and power against total parameters."""
    path = Path(path)
    suffix = _suffix(path)
    params = [r.total_params for r in rows]
    series = {key: [getattr(r, key) for r in rows] for key, _ in _SCALING_PANELS}
    paper = [r.paper_flops for r in rows]
    missed = [i for i, r in enumerate(rows) if r.meets_deadline is False]
    if suffix != ".html":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), constrained_layout=True)
        for ax, (key, label) in zip(axes.flat, _SCALING_PANELS, strict=True):
            ax.loglog(params, series[key], "-", color="tab:blue")
            ax.loglog(params, series[key], "o", color="tab:blue", label="model")
            if missed:
                ax.loglog(
                    [params[i] for i in missed],
                    [series[key][i] for i in missed],
                    "o",
                    mfc="white",
                    color="tab:blue",
                    label="misses the deadline",
                )
            if key == "training_flops":
                ax.loglog(params, paper, "k--", label="120·P²/K (paper)")
            if key == "cluster_power_mw":
                ax.axhline(max_power_mw, color="r", ls=":", label=f"{max_power_mw:g} MW limit")
            ax.legend()
            ax.set_xlabel("total parameters P")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
        fig.suptitle(title)
        fig.savefig(path, dpi=120, format=suffix[1:])
        plt.close(fig)
        return path
    require("html", "an interactive HTML plot")
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, subplot_titles=[label for _, label in _SCALING_PANELS])
    for i, (key, label) in enumerate(_SCALING_PANELS):
        cell = {"row": i // 2 + 1, "col": i % 2 + 1}
        symbols = ["circle-open" if i in missed else "circle" for i in range(len(rows))]
        fig.add_scatter(
            x=params,
            y=series[key],
            mode="lines+markers",
            marker_symbol=symbols,
            name=label,
            **cell,
        )
        if key == "training_flops":
            fig.add_scatter(x=params, y=paper, mode="lines", name="120·P²/K", **cell)
        if key == "cluster_power_mw":
            fig.add_scatter(
                x=[params[0], params[-1]],
                y=[max_power_mw] * 2,
                mode="lines",
                name=f"{max_power_mw:g} MW limit",
                **cell,
            )
        fig.update_xaxes(type="log", title_text="total parameters P", **cell)
        fig.update_yaxes(type="log", title_text=label, **cell)
    fig.update_layout(title=title, height=800)
    fig.write_html(path, include_plotlyjs="directory", full_html=True)  # plotly.min.js beside it
    return path


def roadmap_plot(result: Roadmap, path: str | Path) -> Path:
    """A waterfall of cost from the baseline through each lever (log scale), and each lever's
    modeled cost, energy and time factors beside its nominal one."""
    path = Path(path)
    suffix = _suffix(path)
    levers = [s.lever.id for s in result.steps]
    before = [result.baseline.cost_usd] + [s.outcome.cost_usd for s in result.steps[:-1]]
    after = [s.outcome.cost_usd for s in result.steps]
    factors = {
        "cost": [s.cost_factor for s in result.steps],
        "energy": [s.energy_factor for s in result.steps],
        "time": [s.time_factor for s in result.steps],
    }
    nominal = [s.lever.nominal_factor for s in result.steps]
    title = f"{result.workload} on {result.num_chips:,} x {result.chip}: cost by lever"
    names = ["baseline", *levers, "all levers"]
    lows = [result.baseline.cost_usd, *[min(b, a) for b, a in zip(before, after, strict=True)]]
    highs = [result.baseline.cost_usd, *[max(b, a) for b, a in zip(before, after, strict=True)]]
    lows.append(after[-1] if after else result.baseline.cost_usd)
    highs.append(lows[-1])
    floor = min(lows) / 3.0
    if suffix != ".html":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6), constrained_layout=True)
        x = np.arange(len(names))
        bottoms = [floor if i in (0, len(names) - 1) else lo for i, lo in enumerate(lows)]
        heights = [hi - b for hi, b in zip(highs, bottoms, strict=True)]
        colors = ["grey"] + [
            "tab:green" if a <= b else "tab:red" for b, a in zip(before, after, strict=True)
        ]
        left.bar(x, heights, bottom=bottoms, color=[*colors, "grey"])
        left.set_yscale("log")
        left.set_xticks(x, names, rotation=45, ha="right")
        left.set_ylabel("cost (USD)")
        left.set_title(title)
        width = 0.25
        xs = np.arange(len(levers))
        for i, (label, values) in enumerate(factors.items()):
            right.bar(xs + (i - 1) * width, values, width, label=label)
        right.scatter(xs, nominal, marker="_", s=400, color="k", label="nominal", zorder=3)
        right.axhline(1.0, color="grey", lw=0.8)
        right.set_xticks(xs, levers, rotation=45, ha="right")
        right.set_ylabel("factor (before / after, > 1 better)")
        right.set_title("modeled factor per lever vs nominal")
        right.legend()
        fig.savefig(path, dpi=120, format=suffix[1:])
        plt.close(fig)
        return path
    require("html", "an interactive HTML plot")
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=[title, "modeled factor vs nominal"])
    fig.add_bar(
        x=names,
        y=[hi - lo if hi > lo else hi * 0.02 for lo, hi in zip(lows, highs, strict=True)],
        base=lows,
        name="cost (USD)",
        row=1,
        col=1,
    )
    fig.update_yaxes(type="log", title_text="cost (USD)", row=1, col=1)
    for label, values in factors.items():
        fig.add_bar(x=levers, y=values, name=f"{label} factor", row=1, col=2)
    fig.add_scatter(x=levers, y=nominal, mode="markers", name="nominal", row=1, col=2)
    fig.update_layout(barmode="group", height=600)
    fig.write_html(path, include_plotlyjs="directory", full_html=True)  # plotly.min.js beside it
    return path
