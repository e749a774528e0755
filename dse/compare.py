"""Designs side by side (``dse compare``): each chip evaluated on the same workload and cluster,
with its metrics as ratios to the first chip's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dse.catalog.workloads import Workload
from dse.errors import InputError
from dse.evaluation import evaluate_one
from dse.export import AtomicFile
from dse.settings import Settings, load_settings

RATIO_METRICS = (
    "training_days",
    "chip_hours",
    "energy_mwh",
    "cost_usd",
    "capex_usd",
    "step_time_s",
    "mfu",
    "avg_chip_power_w",
    "cluster_power_mw",
    "memory_per_chip_gb",
)
"""Metrics given as ratios to the first design (``ratio_to_first``), each dimensionless."""
TABLE_METRICS = (
    "num_chips",
    "idle_chips",
    *RATIO_METRICS,
    "peak_tflop_s",
    "hbm_capacity_gb",
    "unit_price_usd",
)
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def compare(
    chips: Sequence[str | Path],
    workload: Workload,
    num_chips: int,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """One ``dse evaluate`` record per chip (catalog id or chip TOML path), in the given order,
    each with ``ratio_to_first``: :data:`RATIO_METRICS` divided by the first chip's (None where
    either is missing, infinite or the first is zero)."""
    if not chips:
        raise InputError.for_argument("chips", "at least one chip id or chip TOML file", "nothing")
    settings = settings or load_settings()
    records = [evaluate_one(chip, workload, num_chips, settings) for chip in chips]
    first = records[0]
    for record in records:
        record["ratio_to_first"] = {m: _ratio(record[m], first[m]) for m in RATIO_METRICS}
    return records


def _ratio(value: float, base: float) -> float | None:
    ratio = value / base if base else float("nan")
    return ratio if abs(ratio) < float("inf") else None


def comparison_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records transposed for a person: one row per quantity (verdict, metrics, plan, time
    breakdown in s, memory by kind in GB, ratios to the first), one column per design, named by
    its chip id."""
    names = _column_names(records)
    quantities: list[tuple[str, Any]] = [
        ("feasible", lambda r: r["feasible"]),
        ("reasons", lambda r: r["reasons"]),
    ]
    quantities += [(m, lambda r, m=m: r[m]) for m in TABLE_METRICS]
    quantities += [(f"plan.{k}", lambda r, k=k: r["plan"][k]) for k in records[0]["plan"]]
    quantities += [
        (f"breakdown_s.{k}", lambda r, k=k: r["breakdown_s"][k]) for k in records[0]["breakdown_s"]
    ]
    quantities += [
        (f"memory_gb.{k}", lambda r, k=k: r["memory_gb"][k]) for k in records[0]["memory_gb"]
    ]
    quantities += [(f"{m} / first", lambda r, m=m: r["ratio_to_first"][m]) for m in RATIO_METRICS]
    return [
        {"quantity": label, **{n: get(r) for n, r in zip(names, records, strict=True)}}
        for label, get in quantities
    ]


def _column_names(records: Sequence[dict[str, Any]]) -> list[str]:
    """Chip ids, numbered where one appears more than once."""
    ids = [str(r["chip"]) for r in records]
    return [f"{c} ({i + 1})" if ids.count(c) > 1 else c for i, c in enumerate(ids)]


def check_plot_path(out: Path) -> str:
    """The image format of ``out`` by its suffix (``.png``), or an :class:`InputError`."""
    suffix = out.suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        expected = f"a file name ending in one of {list(PLOT_SUFFIXES)}"
        raise InputError.for_argument("plot_path", expected, str(out))
    return suffix


def plot_comparison(records: Sequence[dict[str, Any]], out: Path) -> None:
    """A grouped bar chart of ``ratio_to_first`` (one group per metric, one bar per design) to
    ``out`` (PNG, SVG or PDF by suffix), with the first design's level 1 marked."""
    suffix = check_plot_path(out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = _column_names(records)
    x = np.arange(len(RATIO_METRICS))
    width = 0.8 / len(records)
    fig, ax = plt.subplots(figsize=(12.0, 5.0), layout="constrained")
    for i, (name, record) in enumerate(zip(names, records, strict=True)):
        ratios = [record["ratio_to_first"][m] for m in RATIO_METRICS]
        heights = [np.nan if r is None else r for r in ratios]
        ax.bar(x + (i - (len(records) - 1) / 2) * width, heights, width, label=name)
    ax.axhline(1.0, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, RATIO_METRICS, rotation=30, ha="right")
    ax.set_ylabel(f"ratio to {names[0]}")
    workload = records[0]["workload"]
    ax.set_title(f"{workload} on {records[0]['num_chips']:,} chips, relative to {names[0]}")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    target = AtomicFile(out, "plot_path")
    try:
        fig.savefig(target.temp, format=suffix[1:], dpi=150)
        target.commit()
    except BaseException:
        target.discard()
        raise
    finally:
        plt.close(fig)
