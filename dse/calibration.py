"""Calibration of the [C] defaults on published runs, and its honest error (docs/model.md §4).

Two layers, each fitted on its own data:

- the throughput model's calibrated constants (``GRID``) on the steady-state figures
  (throughput benchmarks and projections: step time, tokens/s, MFU), by grid search on the mean
  |ln(predicted / reported)|;
- the run overhead (``goodput``) on the time figures of full runs (GPU-hours or days, which
  include failures, restarts and evaluations), in closed form: the median log ratio.

:func:`cross_validate` refits both leaving out one group of runs at a time (a source, a chip
family or a run) and predicts the left-out group with the refitted constants. Every setting of
the grid is evaluated once; each fold only chooses among them, so the cross-validation costs
one grid evaluation.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from dse.settings import Settings, load_settings
from dse.validation import Comparison, validate

GRID: dict[str, tuple[float, ...]] = {
    "elementwise_bytes_per_activation_byte": (8.0, 12.0, 16.0, 24.0),
    "collective_efficiency": (0.5, 0.75),
    "dp_overlap": (0.5, 0.9),
}
"""The throughput model's [C] constants and the values searched (dse/defaults.toml sources)."""

GOODPUT_RANGE = (0.5, 1.0)
FULL_RUN_TIME = ("training_days", "chip_hours")

GROUPINGS: dict[str, Callable[[Comparison], str]] = {
    "source": lambda r: r.source.split(",")[0].split(";")[0].strip(),
    "family": lambda r: r.family,
    "run": lambda r: r.run,
}
"""Ways to form the left-out groups of the cross-validation."""


@dataclass(frozen=True)
class HeldOut:
    """One published figure: in-sample prediction, held-out prediction, and the 40 % rule."""

    row: Comparison
    in_sample: float
    held_out: float
    group: str

    @property
    def in_sample_error(self) -> float:
        return self.in_sample / self.row.reported - 1.0

    @property
    def held_out_error(self) -> float:
        return self.held_out / self.row.reported - 1.0


def _log_error(predicted: float, reported: float) -> float:
    return abs(math.log(max(predicted, 1e-300) / reported))


def _is_overhead_row(row: Comparison) -> bool:
    return row.run_type == "full_run" and row.metric in FULL_RUN_TIME


def fit_goodput(rows: Sequence[Comparison], assumed: float) -> float:
    """Goodput that minimizes the median |log error| of full runs' time figures, given rows
    predicted at goodput ``assumed`` (time ∝ 1 / goodput)."""
    logs = [math.log(r.predicted * assumed / r.reported) for r in rows if _is_overhead_row(r)]
    if not logs:
        return assumed
    low, high = GOODPUT_RANGE
    return min(max(math.exp(statistics.median(logs)), low), high)


def _with_goodput(row: Comparison, assumed: float, goodput: float) -> float:
    return row.predicted * assumed / goodput if _is_overhead_row(row) else row.predicted


def _throughput_loss(rows: Sequence[Comparison]) -> float:
    steady = [r for r in rows if not _is_overhead_row(r) and r.metric != "energy_mwh"]
    return statistics.fmean(_log_error(r.predicted, r.reported) for r in steady) if steady else 0.0


def grid_settings(base: Settings, grid: Mapping[str, Sequence[float]] = GRID) -> list[Settings]:
    """Every combination of the grid's values on top of ``base``."""
    return [
        base.with_overrides(source="calibration grid", **dict(zip(grid, values, strict=True)))
        for values in itertools.product(*grid.values())
    ]


def _fit(
    tables: Sequence[list[Comparison]], keep: Sequence[bool], assumed: float
) -> tuple[int, float]:
    """Index of the best grid setting on the kept rows, and the goodput fitted at it."""
    losses = [_throughput_loss([r for r, k in zip(t, keep, strict=True) if k]) for t in tables]
    best = min(range(len(tables)), key=losses.__getitem__)
    kept = [r for r, k in zip(tables[best], keep, strict=True) if k]
    return best, fit_goodput(kept, assumed)


def cross_validate(
    by: str = "family",
    base: Settings | None = None,
    grid: Mapping[str, Sequence[float]] = GRID,
    runs: Callable[[Settings], list[Comparison]] = validate,
) -> tuple[list[HeldOut], dict[str, float]]:
    """Leave-one-group-out predictions of every published figure, and the in-sample fit.

    ``by`` names the grouping (``source``, ``family`` or ``run``). Returns one
    :class:`HeldOut` per figure and the constants fitted on all figures (the grid values and
    ``goodput``).
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {sorted(GROUPINGS)}, got {by!r}")
    base = base or load_settings()
    settings = grid_settings(base, grid)
    tables = [runs(s) for s in settings]
    reference = tables[0]
    groups = [GROUPINGS[by](r) for r in reference]
    assumed = base.goodput
    best, goodput = _fit(tables, [True] * len(reference), assumed)
    in_sample = [_with_goodput(r, assumed, goodput) for r in tables[best]]
    out = []
    for group in sorted(set(groups)):
        keep = [g != group for g in groups]
        fold_best, fold_goodput = _fit(tables, keep, assumed)
        for i, g in enumerate(groups):
            if g == group:
                row = tables[fold_best][i]
                held = _with_goodput(row, assumed, fold_goodput)
                out.append(HeldOut(replace(reference[i]), in_sample[i], held, group))
    fitted = {k: float(getattr(settings[best], k)) for k in grid} | {"goodput": goodput}
    return out, fitted


def median_abs(errors: Sequence[float]) -> float:
    """Median of |e| over the finite errors (NaN when there are none)."""
    finite = [abs(e) for e in errors if e == e]
    return statistics.median(finite) if finite else float("nan")


def summary(rows: Sequence[HeldOut]) -> list[dict[str, object]]:
    """Median |error| in-sample, held out, and of the 40 % rule: overall and per chip family."""
    groups: dict[str, list[HeldOut]] = {"all": list(rows)}
    for row in rows:
        groups.setdefault(row.row.family, []).append(row)
    return [
        {
            "family": name,
            "figures": len(members),
            "in_sample": median_abs([m.in_sample_error for m in members]),
            "held_out": median_abs([m.held_out_error for m in members]),
            "rule_40pct": median_abs([m.row.rule_error for m in members]),
        }
        for name, members in groups.items()
    ]
