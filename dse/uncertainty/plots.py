"""Plots of a sensitivity analysis (bars per objective) and of a robust front (the front's
medians with their 10-90 % ranges, coloured by ``p_pareto``); PNG, SVG or PDF by matplotlib."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.errors import InputError
from dse.export import AtomicFile
from dse.plot import axis_title

if TYPE_CHECKING:
    import pandas as pd

    from dse.space import Objective

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
TOP_FACTORS = 12
"""Factors shown per objective in a sensitivity plot (the largest total indices)."""


def check_image(path: Path, option: str = "plot_path") -> str:
    """The image format of ``path`` (png, svg or pdf), else an error naming ``option``."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError.for_argument(
            option, f"a file name ending in one of {list(IMAGE_SUFFIXES)}", str(path)
        )
    return suffix[1:]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sensitivity(frame: pd.DataFrame, path: Path, top: int = TOP_FACTORS) -> None:
    """Horizontal bars, one panel per objective: each factor's total index (light) and
    first-order index (dark) with their confidence half-widths, the ``top`` largest totals
    (Sobol), or mu* (Morris)."""
    fmt = check_image(path)
    plt = _pyplot()
    objectives = list(dict.fromkeys(frame["objective"]))
    sobol = "total" in frame
    fig, axes = plt.subplots(
        1, len(objectives), figsize=(4.6 * len(objectives), 0.32 * top + 1.6), squeeze=False
    )
    for ax, objective in zip(axes[0], objectives, strict=True):
        part = frame[frame["objective"] == objective]
        key = "total" if sobol else "mu_star"
        part = part.sort_values(key, ascending=False).head(top)[::-1]
        y = np.arange(len(part))
        if sobol:
            ax.barh(y, part["total"], xerr=part["total_conf"], color="#9ecae1", label="total")
            ax.barh(
                y,
                part["first_order"].clip(lower=0),
                xerr=part["first_order_conf"],
                height=0.45,
                color="#08519c",
                label="first order",
            )
            ax.set_xlim(0, max(1.0, float((part["total"] + part["total_conf"]).max())))
            ax.set_xlabel("Sobol index")
        else:
            ax.barh(y, part["mu_star"], xerr=part["mu_star_conf"], color="#08519c", label="mu*")
            ax.set_xlabel("Morris mu*")
        ax.set_yticks(y, part["factor"], fontsize=8)
        ax.set_title(axis_title(str(objective)), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    _save(fig, plt, path, fmt)


def plot_robust(frame: pd.DataFrame, objectives: Sequence[Objective], path: Path) -> None:
    """The rows in the plane of the first two objectives: medians over the draws with their
    10-90 % ranges as whiskers, coloured by ``p_pareto``."""
    fmt = check_image(path)
    if len(objectives) < 2:
        raise InputError.for_argument(
            "objectives", "at least two objectives to plot", len(objectives)
        )
    plt = _pyplot()
    a, b = objectives[0].name, objectives[1].name
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    x, y = frame[f"{a}_p50"].to_numpy(float), frame[f"{b}_p50"].to_numpy(float)
    xerr = np.vstack([x - frame[f"{a}_p10"], frame[f"{a}_p90"] - x])
    yerr = np.vstack([y - frame[f"{b}_p10"], frame[f"{b}_p90"] - y])
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="#bbbbbb", lw=0.8, zorder=1)
    points = ax.scatter(
        x, y, c=frame["p_pareto"], cmap="viridis", vmin=0, vmax=1, s=28, zorder=2, edgecolors="k"
    )
    fig.colorbar(points, ax=ax, label="p_pareto (share of draws on the front)")
    for axis, values in (("x", x), ("y", y)):
        if np.all(values > 0) and values.max() / max(values.min(), 1e-300) > 20:
            getattr(ax, f"set_{axis}scale")("log")
    ax.set_xlabel(axis_title(a) + " (median, 10-90 %)")
    ax.set_ylabel(axis_title(b) + " (median, 10-90 %)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, plt, path, fmt)


def _save(fig: Any, plt: Any, path: Path, fmt: str) -> None:
    target = AtomicFile(Path(path), "plot")
    try:
        fig.savefig(target.temp, format=fmt, dpi=150)
        target.commit()
    except BaseException:
        target.discard()
        raise
    finally:
        plt.close(fig)
