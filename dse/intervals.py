"""80 % prediction intervals from the model's cross-validated errors (docs/model.md §4).

``dse/validation_residuals.csv`` holds the held-out log errors of every published figure
(:func:`dse.calibration.cross_validate` by source, and by chip family, written by
benchmarks/calibrate_training.py), in the sign of time: e = ln(predicted time / reported time),
so a figure the model predicts too slow has e > 0 whether it was published as a time, a
throughput or an MFU. A prediction's interval
is the range the reported value fell in for 80 % of comparable runs: the 10th and 90th
percentiles of e over the runs of the same kind (steady-state throughput or full run; dense,
MoE or hybrid Mamba-2, :func:`architecture`), pooled over all runs where a kind has fewer than
``MIN_RESIDUALS``. A steady-state
prediction whose plan was left to the search takes the band of the same figures re-predicted
with the searched plan (``searched_time_log_error``: the held-out error plus the search's shift
at the shipped defaults, :func:`dse.calibration.search_shifts`), since the search is
optimistic. A chip of a family that no published run calibrated (a user's next generation,
``amd-cdna5``, which takes its vendor's efficiency scale, docs/model.md §2.3) takes the band of
the errors each figure had when its whole family was left out of the fit
(``family_held_out_time_log_error``; ``interval_basis`` "family" rather than "source"): the
error of a family predicted from its vendor's other families. Its percentiles weight each
family equally (each figure by one over its family's figures in the pool), since a new
family is one draw from the families, not from the figures, and a family's misses come
together. This is split conformal
prediction on the held-out errors; it covers the model's error on runs like the published ones,
not the uncertainty of the technology constants of a hypothetical chip.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

RESIDUALS_PATH = Path(__file__).with_name("validation_residuals.csv")
QUANTILES = (0.1, 0.9)
INTERVAL_LEVEL = round(QUANTILES[1] - QUANTILES[0], 6)
"""Share of comparable published figures an interval covers (``interval_level`` in JSON)."""
MIN_RESIDUALS = 10
TIME_LIKE = ("training_days", "chip_hours", "step_time_s", "energy_mwh", "cost_usd")
SPEED_LIKE = ("mfu",)
INTERVAL_METRICS = TIME_LIKE + SPEED_LIKE
"""Metrics that get an interval. Energy and cost scale with the training time."""
THROUGHPUT_METRICS = ("step_time_s", "mfu")
"""Metrics whose interval is that of steady-state throughput; the others (days, chip-hours,
energy, cost) are a full run's, goodput included."""
INTERVAL_COLUMNS: tuple[str, ...] = tuple(
    f"{metric}_{side}" for metric in INTERVAL_METRICS for side in ("low", "high")
)
"""Results columns of the intervals, ``<metric>_low`` and ``<metric>_high``, in this order."""


INTERVAL_BASES = ("source", "family")
"""What a prediction's band was drawn from (``interval_basis`` in JSON): the errors of figures
whose source was left out of the fit (a chip of a calibrated family), or whose whole family was
(a chip of a family no published run calibrated)."""


ARCHITECTURES = ("dense", "moe", "hybrid")
"""The kinds of model whose errors make separate bands: dense transformers, Mixtures of Experts,
and hybrid Mamba-2 models (dense or MoE: the Mamba blocks are what the model knows least,
docs/model.md §2.11)."""


def architecture(moe: bool, hybrid: bool = False) -> str:
    """The :data:`ARCHITECTURES` entry of a workload that is a Mixture of Experts (``moe``) or
    a hybrid Mamba-2 model (``hybrid``, whether MoE or not)."""
    return "hybrid" if hybrid else ("moe" if moe else "dense")


class Residual(NamedTuple):
    """One held-out figure: ``e`` with its published plan (or the search's, where the run
    publishes none), ``searched``, the same figure with every plan key left to the search
    (steady-state runs that publish a plan; ``None`` otherwise), and ``new_family``, its error
    with its whole chip family left out of the fit (``None`` where the file has none);
    ``family``, the chip family's id; ``hybrid``, a hybrid Mamba-2 model's figure."""

    full_run: bool
    moe: bool
    e: float
    searched: float | None = None
    new_family: float | None = None
    family: str = ""
    hybrid: bool = False

    @property
    def architecture(self) -> str:
        """This figure's :data:`ARCHITECTURES` entry."""
        return architecture(self.moe, self.hybrid)

    def error(self, searched: bool, new_family: bool) -> float | None:
        """The log error a band of this kind draws from this figure: with the searched plan's
        shift (``searched − e``) added to the family-held-out error where both are asked."""
        if searched and self.searched is None:
            return None
        if not new_family:
            return self.searched if searched else self.e
        if self.new_family is None:
            return None
        shift = self.searched - self.e if searched and self.searched is not None else 0.0
        return self.new_family + shift


def _number(text: str | None) -> float | None:
    return float(text) if text else None


@cache
def residuals(path: Path = RESIDUALS_PATH) -> tuple[Residual, ...]:
    """Every held-out figure of the residuals file."""
    with path.open(newline="") as fh:
        return tuple(
            Residual(
                row["run_type"] == "full_run",
                row["moe"] == "true",
                float(row["time_log_error"]),
                _number(row.get("searched_time_log_error")),
                _number(row.get("family_held_out_time_log_error")),
                row.get("family", ""),
                row.get("hybrid") == "true",
            )
            for row in csv.DictReader(fh)
        )


def log_error_band(
    full_run: bool,
    moe: bool,
    rows: Sequence[Residual] | None = None,
    *,
    searched: bool = False,
    new_family: bool = False,
    hybrid: bool = False,
) -> tuple[float, float]:
    """The 10th and 90th percentiles of e for runs of this kind (full run or not, and
    :func:`architecture` of ``moe`` and ``hybrid``; pooled when too few), over ``rows`` or the
    shipped residuals. ``searched``: the prediction's plan was left to the
    search, so a steady-state band is that of the published figures re-predicted with the
    searched plan (the search is optimistic, docs/model.md §4); a full run's band already holds
    the runs whose plans were searched. ``new_family``: the chip's family calibrated no
    published run, so the errors are those with the figure's family left out, each family
    weighing the same (:func:`_family_weights`). Widened to hold 0 (the model's value) where
    the percentiles lie on one side of it."""
    if rows is None:
        return _shipped_band(full_run, architecture(moe, hybrid), searched, new_family)
    with_plan = searched and not full_run
    drawn = [(r, r.error(with_plan, new_family)) for r in rows]
    pairs = [(r, e) for r, e in drawn if e is not None]
    if not pairs:
        column = "family_held_out_time_log_error" if new_family else "time_log_error"
        raise ValueError(f"the residuals hold no {column} to draw a band from")
    kind = architecture(moe, hybrid)
    same = [(r, e) for r, e in pairs if r.full_run == full_run and r.architecture == kind]
    pool = same if len(same) >= MIN_RESIDUALS else pairs
    errors = np.array([e for _, e in pool])
    if new_family:
        low, high = np.quantile(
            errors,
            QUANTILES,
            weights=_family_weights([r.family for r, _ in pool]),
            method="inverted_cdf",
        )
    else:
        low, high = np.quantile(errors, QUANTILES)
    # The band always holds the model's own value: where nearly every comparable figure was
    # slower than predicted (MoE with a searched plan), it reaches down to the prediction.
    return min(float(low), 0.0), max(float(high), 0.0)


@cache
def _shipped_band(
    full_run: bool, kind: str, searched: bool, new_family: bool
) -> tuple[float, float]:
    """:func:`log_error_band` over the shipped residuals, computed once per kind of band."""
    return log_error_band(
        full_run,
        kind == "moe",
        residuals(),
        searched=searched,
        new_family=new_family,
        hybrid=kind == "hybrid",
    )


def _family_weights(families: Sequence[str]) -> NDArray[np.float64]:
    """Weight of each figure, shape ``(n,)``: one over the number of figures of its family
    among ``families``, so that every family weighs the same in a percentile."""
    _, index, counts = np.unique(np.asarray(families), return_inverse=True, return_counts=True)
    return 1.0 / counts[index].astype(np.float64)


def interval(
    metric: str,
    value: float,
    *,
    full_run: bool,
    moe: bool,
    searched: bool = False,
    new_family: bool = False,
    hybrid: bool = False,
) -> tuple[float, float]:
    """80 % interval of ``metric`` around the model's ``value``: where the reported value of a
    comparable run fell. Time-like metrics: value·e^(−q90) … value·e^(−q10); MFU inversely."""
    low, high = interval_arrays(
        metric,
        np.array([value]),
        full_run=full_run,
        moe=moe,
        searched=searched,
        new_family=new_family,
        hybrid=hybrid,
    )
    return float(low[0]), float(high[0])


def interval_arrays(
    metric: str,
    values: ArrayLike,
    *,
    full_run: bool,
    moe: bool | ArrayLike,
    searched: bool = False,
    new_family: bool = False,
    hybrid: bool | ArrayLike = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`interval` over an array of model values, shape ``(n,)``; ``moe`` and ``hybrid``
    are one flag each for all or one per value. An MFU band ends at 1 (the peak)."""
    values = np.asarray(values, dtype=np.float64)
    is_moe = np.broadcast_to(np.asarray(moe, dtype=bool), values.shape)
    is_hybrid = np.broadcast_to(np.asarray(hybrid, dtype=bool), values.shape)
    kinds = np.where(is_hybrid, "hybrid", np.where(is_moe, "moe", "dense"))
    q10, q90 = np.empty_like(values), np.empty_like(values)
    for kind in ARCHITECTURES:
        rows = kinds == kind
        if rows.any():
            low, high = log_error_band(
                full_run,
                kind == "moe",
                searched=searched,
                new_family=new_family,
                hybrid=kind == "hybrid",
            )
            q10[rows], q90[rows] = low, high
    if metric in SPEED_LIKE:
        # no run reaches more than the peak: a band that would is cut at an MFU of 1
        return np.minimum(values * np.exp(q10), 1.0), np.minimum(values * np.exp(q90), 1.0)
    return values * np.exp(-q90), values * np.exp(-q10)


def prediction_intervals(
    columns: Mapping[str, ArrayLike],
    *,
    moe: bool | ArrayLike,
    searched: bool = False,
    new_family: bool = False,
    hybrid: bool | ArrayLike = False,
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """80 % intervals of every :data:`INTERVAL_METRICS` column, ``metric → (low, high)``, each
    of shape ``(n,)``: step time and MFU as steady-state throughput, the run's days,
    chip-hours, energy and cost as a full run (goodput included); ``searched``: the plans were
    left to the search; ``new_family``: the chip's family calibrated no published run
    (:func:`log_error_band`); ``moe`` and ``hybrid``: the workload's :func:`architecture`."""
    return {
        metric: interval_arrays(
            metric,
            columns[metric],
            full_run=metric not in THROUGHPUT_METRICS,
            moe=moe,
            searched=searched,
            new_family=new_family,
            hybrid=hybrid,
        )
        for metric in INTERVAL_METRICS
    }


def interval_columns(
    columns: Mapping[str, ArrayLike],
    *,
    moe: bool | ArrayLike,
    searched: bool = False,
    new_family: bool = False,
    hybrid: bool | ArrayLike = False,
) -> dict[str, NDArray[np.float64]]:
    """The :data:`INTERVAL_COLUMNS` of results rows (``training_days_low``, ...) from their
    metric columns, for a workload that is a Mixture of Experts (``moe``) or not and a hybrid
    Mamba-2 model (``hybrid``) or not, with plans left to the search (``searched``) or pinned,
    on a chip of a family no published run calibrated (``new_family``) or of one that some
    did."""
    bands = prediction_intervals(
        columns, moe=moe, searched=searched, new_family=new_family, hybrid=hybrid
    )
    out: dict[str, NDArray[np.float64]] = {}
    for metric, (low, high) in bands.items():
        out[f"{metric}_low"], out[f"{metric}_high"] = low, high
    return out


def interval_basis(new_family: bool) -> str:
    """The :data:`INTERVAL_BASES` entry of a chip whose family no published run calibrated
    (``new_family``) or of one that some did."""
    return INTERVAL_BASES[1] if new_family else INTERVAL_BASES[0]


def time_log_error(metric: str, predicted: float, reported: float) -> float:
    """ln(predicted / reported) in the sign of time (throughputs and MFU flip)."""
    e = float(np.log(predicted / reported))
    return -e if metric in ("mfu", "tokens_per_s_per_chip") else e
