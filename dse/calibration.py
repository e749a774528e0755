"""Calibration of the [C] defaults on published runs, and its honest error (docs/model.md §4).

Two layers, each fitted on its own data:

- the throughput model's calibrated constants (``GRID``) on the steady-state figures
  (throughput benchmarks and projections: step time, tokens/s, MFU), by grid search on the mean
  |ln(predicted / reported)|;
- each chip family's ``gemm_efficiency_scale`` (chips/technology/families.toml) on that
  family's steady-state figures, given the constants above; Hopper's is measured, not fitted;
- the run overhead (``goodput``) on the time figures of full runs (GPU-hours or days, which
  include failures, restarts and evaluations), in closed form: the median log ratio.

:func:`cross_validate` refits both leaving out one group of runs at a time (a source, a
company, a chip family or a run) and predicts the left-out group with the refitted constants.
Every setting of the grid is evaluated once; each fold only chooses among them, so the
cross-validation costs one grid evaluation.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import pickle
import platform
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from dse.catalog._paths import data_dir
from dse.catalog.technology import load_technology
from dse.errors import InputError
from dse.files import read_toml, writing
from dse.intervals import RESIDUALS_PATH, time_log_error
from dse.lifeline import die_with_parent
from dse.settings import Settings, load_settings
from dse.validation import POWER_METRICS, Comparison, searched_plan_pairs, validate

GRID: dict[str, tuple[float, ...]] = {
    # At most 20: the eager PyTorch layers measured on an H200 need 10.5-14.7 bytes per stored
    # byte at tensor parallelism 1-8 (benchmarks/fit_elementwise.py), and fused production stacks
    # fewer; at 20 the model's layers already come out 6-15 % slower than the measured eager
    # ones (tests/test_measurements.py). The fit reached 24 on a nearly flat loss (§4). Steps of
    # 2 since 2026-12-05, when the grid's optimum fell between its steps of 4 (the stage-1
    # score 0.1153 at 16, 0.1146 at 18, 0.1160 at 20); 12 scored 0.123-0.125 and is left out.
    "elementwise_bytes_per_activation_byte": (14.0, 16.0, 18.0, 20.0),
    "dp_overlap": (0.0, 0.25, 0.5, 0.75, 1.0),
    "tp_overlap": (0.0, 0.25, 0.5, 0.75),
    "moe_comm_overlap": (0.0, 0.5),
    "moe_kernel_overhead_us": (15.0, 22.5, 30.0, 45.0, 60.0),
}
"""The throughput model's [C] constants and the values searched (dse/defaults.toml sources)."""

GOODPUT_RANGE = (0.5, 1.0)
FAMILY_SCALES = tuple(round(0.4 + 0.05 * i, 2) for i in range(15))
"""Values searched for each family's gemm_efficiency_scale (chips/technology/families.toml):
0.4-1.1 in steps of 0.05 (a step moves a family's speed by 5-12 %). 1.1 is the largest that
stays physical: 1.1 × gemm_efficiency_max (0.904) = 0.99 of the sustained rate."""
MIN_RUNS_PER_FAMILY = 3
"""A family's scale is fitted only on at least this many runs; never on one published run."""
FIXED_FAMILIES = ("nvidia-hopper",)
"""Families whose efficiencies were measured, not fitted."""
FULL_RUN_TIME = ("training_days", "chip_hours")

_MLPERF_RESULTS = re.compile(
    r"^mlcommons/training_results_v[\d.]+\b.*?\s([A-Za-z][\w.+]*)[\w-]*/results/"
)
_MLPERF_TEXT = re.compile(r"^MLPerf Training v[\d.]+ \([^)]*\), ([A-Za-z]+)")
_REPOSITORY = re.compile(r"^([\w.-]+)/[\w.-]+[\s,]")


def publisher(source: str) -> str:
    """The publisher of a run's ``source``, the unit that cross-validation by source leaves out:
    the submitter of an MLPerf result (``MLPerf Intel``), the owner of a repository
    (``NVIDIA-NeMo``, ``aws-neuron``: every table and benchmark page it publishes), else the
    citation before its first comma or semicolon (``Touvron et al. 2023``)."""
    for pattern, prefix in ((_MLPERF_RESULTS, "MLPerf "), (_MLPERF_TEXT, "MLPerf ")):
        match = pattern.match(source)
        if match:
            return prefix + match.group(1)
    match = _REPOSITORY.match(source)
    if match:
        return match.group(1)
    return source.split(",")[0].split(";")[0].strip()


COMPANIES_PATH = Path(__file__).with_name("validation_companies.toml")


@functools.cache
def companies(path: Path = COMPANIES_PATH) -> dict[str, str]:
    """Publisher → company (dse/validation_companies.toml), checked: every key and value a
    non-empty string."""
    table = read_toml(path).get("company")
    if not isinstance(table, dict):
        raise InputError(path, "company", "a table of publisher = company", type(table).__name__)
    for name, company in table.items():
        if not isinstance(company, str) or not company.strip():
            raise InputError(path, f"company.{name}", "a company name", repr(company))
    return dict(table)


def company(source: str) -> str:
    """The company behind a run's ``source``: its :func:`publisher` mapped through
    :func:`companies`, or the publisher itself where it is not listed."""
    name = publisher(source)
    return companies().get(name, name)


GROUPINGS: dict[str, Callable[[Comparison], str]] = {
    "source": lambda r: publisher(r.source),
    "company": lambda r: company(r.source),
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


def _steady(rows: Sequence[Comparison]) -> list[Comparison]:
    return [r for r in rows if not _is_overhead_row(r) and r.metric not in POWER_METRICS]


def _throughput_loss(rows: Sequence[Comparison]) -> float:
    steady = _steady(rows)
    return statistics.fmean(_log_error(r.predicted, r.reported) for r in steady) if steady else 0.0


def _fitted_families(rows: Sequence[Comparison]) -> set[str]:
    """The families whose scale stage 2 fits on ``rows``: not measured, enough runs."""
    runs: dict[str, set[str]] = {}
    for r in _steady(rows):
        runs.setdefault(r.family, set()).add(r.run)
    return {
        f for f, ids in runs.items() if f not in FIXED_FAMILIES and len(ids) >= MIN_RUNS_PER_FAMILY
    }


def _profiled_loss(rows: Sequence[Comparison], fitted: set[str]) -> float:
    """Stage 1's loss: the mean |log error| of the steady-state figures, where each family
    whose scale stage 2 fits is first shifted by its median log error. The family scale moves a
    family's predictions by about one factor, so the shared constants are fitted to what the
    scales cannot absorb (a joint fit, with the families' levels profiled out), not pulled
    toward whichever families run slower or faster than Hopper's efficiencies say."""
    steady = _steady(rows)
    if not steady:
        return 0.0
    logs = [math.log(max(r.predicted, 1e-300) / r.reported) for r in steady]
    shift: dict[str, float] = {}
    for family in fitted:
        members = [x for x, r in zip(logs, steady, strict=True) if r.family == family]
        shift[family] = statistics.median(members) if members else 0.0
    return statistics.fmean(
        abs(x - shift.get(r.family, 0.0)) for x, r in zip(logs, steady, strict=True)
    )


def stage_one_score(settings: Settings, runs: Runs | None = None) -> float:
    """The score by which stage 1 of :func:`cross_validate` ranks ``settings`` on every
    published figure: :func:`_profiled_loss` of the figures predicted with every family at
    scale 1 (each fitted family then shifted by its median log error). Two calibration points
    compare by it as the fit compares them, whatever family scales either ships with."""
    runs = runs or _validate
    families = sorted({r.family for r in runs(settings, None)})
    rows = runs(settings, dict.fromkeys(families, 1.0))
    return _profiled_loss(rows, _fitted_families(rows))


def grid_settings(base: Settings, grid: Mapping[str, Sequence[float]] = GRID) -> list[Settings]:
    """Every combination of the grid's values on top of ``base``."""
    return [
        base.with_overrides(source="calibration grid", **dict(zip(grid, values, strict=True)))
        for values in itertools.product(*grid.values())
    ]


Runs = Callable[[Settings, Mapping[str, float] | None], list[Comparison]]


def _validate(settings: Settings, family_scales: Mapping[str, float] | None) -> list[Comparison]:
    return validate(settings, family_scales=family_scales)


def _validate_values(
    values: dict[str, Any], family_scales: Mapping[str, float]
) -> list[Comparison]:
    return validate(replace(load_settings(), **values), family_scales=family_scales)


def _validate_in_processes(
    settings: Sequence[Settings], family_scales: Mapping[str, float]
) -> list[list[Comparison]]:
    """:func:`dse.validation.validate` at every setting, on every core (settings travel as their
    plain values: their ``sources`` mapping does not pickle)."""
    values = [{name: getattr(s, name) for name in Settings.names()} for s in settings]
    workers = min(len(values), os.cpu_count() or 1)
    with ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        return list(pool.map(_validate_values, values, itertools.repeat(dict(family_scales))))


class _Tables:
    """Every figure predicted at each grid setting (family scales 1) and, lazily, at each
    family scale for a chosen setting: the cross-validation only chooses among them."""

    def __init__(
        self,
        settings: list[Settings],
        runs: Runs,
        families: Sequence[str],
        grid: list[list[Comparison]] | None = None,
    ) -> None:
        self.settings, self.runs, self.families = settings, runs, list(families)
        unit = dict.fromkeys(self.families, 1.0)
        if grid is not None:
            self.grid = grid
        elif runs is _validate and len(settings) > 1:
            self.grid = _validate_in_processes(settings, unit)
        else:
            self.grid = [runs(s, unit) for s in settings]
        self._scaled: dict[int, dict[float, list[Comparison]]] = {}

    def scaled(self, index: int) -> dict[float, list[Comparison]]:
        if index not in self._scaled:
            self._scaled[index] = {
                v: self.runs(self.settings[index], dict.fromkeys(self.families, v))
                for v in FAMILY_SCALES
            }
        return self._scaled[index]


TABLES_CACHE_ENV = "DSE_TABLES_CACHE"
"""Environment variable naming a folder where :func:`prediction_tables` keeps the grid's
predictions of the published runs, one pickle per fingerprint of everything they depend on
(:func:`tables_fingerprint`), so that ``benchmarks/calibrate_training.py`` and the
cross-validation docs/source/render.py runs evaluate the grid once between them.
A development aid: unset, nothing is cached; only point it at a folder you trust (pickles)."""

_NOT_INPUTS = (RESIDUALS_PATH.name, "defaults.toml")
"""Files of the package left out of the fingerprint: the residuals the calibration writes, and
the defaults, whose every value each grid setting carries (hashed with the settings)."""
_NOT_READ_KEYS = ("gemm_efficiency_scale", "sources")
"""Keys of chips/technology/families.toml the grid's predictions do not read: the scale it
overrides (every family at 1) and the sources' text. The fingerprint reads the rest of that
file, so a refit's new scales keep the cached grid."""


def _model_inputs() -> list[tuple[str, bytes]]:
    """What the grid's predictions read besides the settings, ``(key, bytes)`` sorted by key:
    the package's code and data (less :data:`_NOT_INPUTS`), the chip catalog (the families
    file without :data:`_NOT_READ_KEYS`) and the workload catalog."""
    package = Path(__file__).resolve().parent
    files = [
        (f"dse/{path.relative_to(package)}", path)
        for path in package.rglob("*")
        if path.suffix in (".py", ".toml", ".csv")
        and path.name not in _NOT_INPUTS
        and not {"__pycache__", "_data"} & set(path.relative_to(package).parts)
    ]
    for kind in ("chips", "workloads"):
        folder = data_dir(kind)
        files += [(f"{kind}/{p.relative_to(folder)}", p) for p in folder.rglob("*.toml")]
    out = []
    for key, path in sorted(files):
        if key == "chips/technology/families.toml":
            tables = {
                name: {k: v for k, v in entry.items() if k not in _NOT_READ_KEYS}
                for name, entry in read_toml(path).items()
            }
            out.append((key, json.dumps(tables, sort_keys=True).encode()))
        else:
            out.append((key, path.read_bytes()))
    return out


def tables_fingerprint(settings: Sequence[Settings], families: Sequence[str]) -> str:
    """A SHA-256 of the grid's settings, the families, Python's and the numeric libraries'
    versions and every input's name and bytes (:func:`_model_inputs`): equal fingerprints,
    equal predictions."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for s in settings:
        digest.update(repr([(n, getattr(s, n)) for n in Settings.names()]).encode())
    digest.update(repr(list(families)).encode())
    libraries = [platform.python_version()] + [version(lib) for lib in ("numpy", "numba")]
    digest.update(" ".join(libraries).encode())
    for key, data in _model_inputs():
        digest.update(key.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def _cache_path(fingerprint: str) -> Path | None:
    """The cache file of ``fingerprint`` under :data:`TABLES_CACHE_ENV`'s folder, or None."""
    folder = os.environ.get(TABLES_CACHE_ENV)
    return Path(folder) / f"prediction-tables-{fingerprint[:20]}.pkl" if folder else None


_VARYING = ("predicted", "rule", "fits")
"""The fields of a figure's :class:`Comparison` that the grid's settings change (the rule in its
last bits only); the cache keeps the other fields once (the first setting's rows) and these per
setting."""


def _same_but_varying(a: Comparison, b: Comparison) -> bool:
    """Whether ``a`` and ``b`` differ at most in :data:`_VARYING` (NaN equal to NaN)."""
    for name in Comparison.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if name not in _VARYING and x != y and not (x != x and y != y):
            return False
    return True


def _load_grid(path: Path) -> list[list[Comparison]] | None:
    """The cached grid at ``path``, or None where there is none (or it cannot be read)."""
    try:
        with path.open("rb") as fh:
            reference, varying = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
        return None
    return [
        [
            replace(r, **dict(zip(_VARYING, v, strict=True)))
            for r, v in zip(reference, row, strict=True)
        ]
        for row in varying
    ]


def _store_grid(path: Path, grid: list[list[Comparison]]) -> None:
    """Write ``grid`` to ``path`` atomically (a temporary file beside it, then a rename): the
    first setting's rows, then each setting's :data:`_VARYING` values; nothing where another
    field varies between settings (then every call evaluates the grid)."""
    reference = grid[0]
    if not all(
        _same_but_varying(r, c) for row in grid for r, c in zip(reference, row, strict=True)
    ):
        return
    # imported here: dse.export pulls in pandas, which the CLI's light commands must not load
    from dse.export import AtomicFile

    varying = [[tuple(getattr(c, name) for name in _VARYING) for c in row] for row in grid]
    with writing(path.parent, "a writable folder for the prediction tables"):
        path.parent.mkdir(parents=True, exist_ok=True)
    target = AtomicFile(path, TABLES_CACHE_ENV)
    try:
        with (
            writing(path, "a writable file for the prediction tables"),
            target.temp.open("wb") as fh,
        ):
            pickle.dump((reference, varying), fh, protocol=pickle.HIGHEST_PROTOCOL)
        target.commit()
    finally:
        target.discard()


@dataclass(frozen=True)
class _Fit:
    setting: int
    scales: dict[str, float]
    goodput: float
    vendor_scales: dict[str, float]


def vendor(family: str) -> str:
    """The vendor part of a family id (``amd`` of ``amd-cdna3``): the software stack its
    families share (docs/model.md §4)."""
    return family.split("-", 1)[0]


def _fit(tables: _Tables, keep: Sequence[bool], assumed: float) -> _Fit:
    """Stage 1: the grid setting on the kept steady-state figures, each family that stage 2
    fits at its own level (:func:`_profiled_loss`); stage 2: each family's scale on its own
    kept figures where they come from at least MIN_RUNS_PER_FAMILY runs, and each vendor's on
    the kept figures of all its families (never a scale fitted on fewer runs); stage 3: goodput
    on the kept full runs."""
    kept_grid = [[r for r, k in zip(t, keep, strict=True) if k] for t in tables.grid]
    fitted = _fitted_families(kept_grid[0])
    losses = [_profiled_loss(rows, fitted) for rows in kept_grid]
    best = min(range(len(losses)), key=losses.__getitem__)
    members: dict[str, list[int]] = {}
    for i, r in enumerate(tables.grid[best]):
        if keep[i] and not _is_overhead_row(r) and r.metric not in POWER_METRICS:
            members.setdefault(r.family, []).append(i)
    vendors: dict[str, list[int]] = {}
    for family, steady in members.items():
        vendors.setdefault(vendor(family), []).extend(steady)
    own, pooled = (
        {
            name: _best_scale(tables, best, steady)
            for name, steady in groups.items()
            if _runs(tables, best, steady) >= MIN_RUNS_PER_FAMILY
        }
        for groups in (members, vendors)
    )
    # A family with too few runs of its own (left out, or new) takes its vendor's scale, fitted
    # on all the vendor's families together (each at the vendor's level of the datasheet,
    # :func:`vendor_level`); with too few of those as well, Hopper's level.
    scales = {
        f: 1.0
        if f in FIXED_FAMILIES
        else own.get(f)
        or (vendor_level(f, pooled[vendor(f)]) if vendor(f) in pooled else hopper_level(f))
        for f in tables.families
    }
    rows = _rows_at(tables, best, scales)
    kept = [r for r, k in zip(rows, keep, strict=True) if k]
    return _Fit(best, scales, fit_goodput(kept, assumed), pooled)


def hopper_level(family: str) -> float:
    """The scale of FAMILY_SCALES nearest to the one at which ``family``'s chips run at the
    measured Hopper efficiency in their most power-hungry format (docs/model.md §1.7, §2.3):
    ``(κ_f / κ_Hopper)^(1/γ)``, 1 for NVIDIA's families and 0.8 for one whose datasheet clock
    is taken as held (κ = 1), whose chips do not throttle in the model as Hopper's do."""
    return _equivalent_scale(family, FIXED_FAMILIES[0], 1.0)


def vendor_level(family: str, scale: float) -> float:
    """The scale of FAMILY_SCALES nearest to the one at which ``family``'s chips run at the
    same fraction of their datasheet peak as a chip of its vendor's entry at ``scale``
    (chips/technology/families.toml): ``scale · (κ_f / κ_vendor)^(1/γ)``, ``scale`` itself
    where the family's κ is its vendor's. What a vendor's families share is read as their
    level against the datasheet, not against a clock measured on one of them."""
    return _equivalent_scale(family, vendor(family), scale)


def _equivalent_scale(family: str, reference: str, scale: float) -> float:
    """``scale`` of the ``reference`` family carried to ``family`` at the same fraction of the
    datasheet peak, ``scale · (κ_f / κ_ref)^(1/γ)``, snapped to FAMILY_SCALES."""
    technology = load_technology()
    exponent = float(technology.silicon["power"]["dvfs_exponent"])
    ratio = (
        technology.family(family).peak_clock_power_ratio
        / technology.family(reference).peak_clock_power_ratio
    )
    level = scale * ratio ** (1.0 / exponent)
    return min(FAMILY_SCALES, key=lambda v: abs(v - level))


def _runs(tables: _Tables, setting: int, indices: Sequence[int]) -> int:
    return len({tables.grid[setting][i].run for i in indices})


def _best_scale(tables: _Tables, setting: int, figures: Sequence[int]) -> float:
    """The scale of FAMILY_SCALES with the least mean |log error| on ``figures``, each at its
    family's equivalent of it (:func:`vendor_level`: the scale itself within one family)."""
    scaled = tables.scaled(setting)
    families = {tables.grid[setting][i].family for i in figures}

    def loss(v: float) -> float:
        level = {f: vendor_level(f, v) for f in families} if len(families) > 1 else {}
        rows = [scaled[level.get(tables.grid[setting][i].family, v)][i] for i in figures]
        return _throughput_loss(rows)

    return min(FAMILY_SCALES, key=loss)


def _rows_at(tables: _Tables, setting: int, scales: Mapping[str, float]) -> list[Comparison]:
    """Each figure predicted at ``setting`` with its family's scale."""
    scaled = tables.scaled(setting)
    return [
        scaled[scales.get(r.family, 1.0)][i] if scales.get(r.family, 1.0) != 1.0 else r
        for i, r in enumerate(tables.grid[setting])
    ]


def prediction_tables(
    base: Settings | None = None, grid: Mapping[str, Sequence[float]] = GRID, runs: Runs = _validate
) -> _Tables:
    """Every published figure predicted at every grid setting: the expensive part of
    :func:`cross_validate`, shared by its groupings (and, where :data:`TABLES_CACHE_ENV`
    names a folder, kept there for the next call with the same inputs)."""
    settings = grid_settings(base or load_settings(), grid)
    families = sorted({r.family for r in runs(settings[0], None)})
    path = _cache_path(tables_fingerprint(settings, families)) if runs is _validate else None
    cached = _load_grid(path) if path is not None else None
    tables = _Tables(settings, runs, families, grid=cached)
    if path is not None and cached is None:
        _store_grid(path, tables.grid)
    return tables


def cross_validate(
    by: str = "family",
    base: Settings | None = None,
    grid: Mapping[str, Sequence[float]] = GRID,
    runs: Runs = _validate,
    tables: _Tables | None = None,
) -> tuple[list[HeldOut], dict[str, Any]]:
    """Leave-one-group-out predictions of every published figure, and the in-sample fit.

    ``by`` names the grouping (``source``, ``company``, ``family`` or ``run``). Returns one
    :class:`HeldOut` per figure and the constants fitted on all figures: the grid values,
    ``goodput``, ``family_scales`` (a held-out family gets its vendor's scale, fitted on the
    vendor's other families, else Hopper's measured level, :func:`hopper_level`) and
    ``vendor_scales``.
    ``tables`` (:func:`prediction_tables`) reuses the grid's predictions across groupings.
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {sorted(GROUPINGS)}, got {by!r}")
    base = base or load_settings()
    tables = tables or prediction_tables(base, grid, runs)
    reference = tables.grid[0]
    groups = [GROUPINGS[by](r) for r in reference]
    assumed = base.goodput
    everything = _fit(tables, [True] * len(reference), assumed)
    in_sample = [
        _with_goodput(r, assumed, everything.goodput)
        for r in _rows_at(tables, everything.setting, everything.scales)
    ]
    out = []
    for group in sorted(set(groups)):
        fold = _fit(tables, [g != group for g in groups], assumed)
        rows = _rows_at(tables, fold.setting, fold.scales)
        for i, g in enumerate(groups):
            if g == group:
                held = _with_goodput(rows[i], assumed, fold.goodput)
                out.append(HeldOut(reference[i], in_sample[i], held, group))
    chosen = tables.settings[everything.setting]
    fitted: dict[str, Any] = {k: float(getattr(chosen, k)) for k in grid}
    fitted["goodput"] = everything.goodput
    fitted["family_scales"] = everything.scales
    fitted["vendor_scales"] = everything.vendor_scales
    return out, fitted


def search_shifts(settings: Settings | None = None) -> dict[tuple[str, str], float]:
    """How much the plan search moves each figure of the steady-state runs that publish a plan,
    ``(run, metric) → ln(searched time / pinned time)`` at ``settings`` (the searched plan's
    time log error minus the pinned plan's; < 0: the search finds the run faster)."""
    return {
        (pinned.run, pinned.metric): time_log_error(
            pinned.metric, searched.predicted, pinned.reported
        )
        - time_log_error(pinned.metric, pinned.predicted, pinned.reported)
        for pinned, searched in searched_plan_pairs(settings)
    }


def write_residuals(
    rows: Sequence[HeldOut],
    path: Path,
    shifts: Mapping[tuple[str, str], float] | None = None,
    family_rows: Sequence[HeldOut] | None = None,
) -> None:
    """The held-out errors behind the prediction intervals (dse/intervals.py), as CSV: each
    figure's error with its source left out (``rows``), under the searched plan (that error
    plus its ``shifts`` entry, :func:`search_shifts`) where it has one, and with its whole
    chip family left out (``family_rows``, the cross-validation by family: the error of a
    design of a family no published run calibrated, docs/model.md §4)."""
    shifts = shifts or {}
    family_e = {
        (h.row.run, h.row.metric): time_log_error(h.row.metric, h.held_out, h.row.reported)
        for h in family_rows or ()
    }
    lines = [
        "run,metric,family,run_type,moe,time_log_error,searched_time_log_error,"
        "family_held_out_time_log_error,hybrid"
    ]
    for h in rows:
        r = h.row
        e = time_log_error(r.metric, h.held_out, r.reported)
        moe = "true" if r.moe else "false"
        shift = shifts.get((r.run, r.metric))
        searched = "" if shift is None else f"{e + shift:.6f}"
        new_family = family_e.get((r.run, r.metric))
        held_family = "" if new_family is None else f"{new_family:.6f}"
        hybrid = "true" if r.hybrid else "false"
        lines.append(
            f"{r.run},{r.metric},{r.family},{r.run_type},{moe},{e:.6f},{searched},{held_family},"
            f"{hybrid}"
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


@dataclass(frozen=True)
class GoodputTrend:
    """§4 Whether the full runs' goodput moves with a property of the run: the Spearman rank
    correlation of their time figures' log errors with it (negative: the larger the property,
    the more wall time the runs took than a constant goodput gives)."""

    against: str
    runs: int
    rho: float
    p_value: float


def goodput_trends(
    rows: Sequence[HeldOut], runs: Mapping[str, Mapping[str, Any]]
) -> list[GoodputTrend]:
    """§4 Rank correlation of the full runs' in-sample time errors (ln predicted / reported, one
    per run: its GPU-hours, else its days) with the cluster size (``num_chips``) and with the
    run's published wall-clock length in days (``training_days``, else chip-hours over chips);
    ``runs``: the published runs by id (:func:`dse.validation.load_runs`)."""
    from scipy.stats import spearmanr

    errors: dict[str, float] = {}
    days: dict[str, float] = {}
    for h in rows:
        r = h.row
        if _is_overhead_row(r) and (r.run not in errors or r.metric == "chip_hours"):
            errors[r.run] = math.log(h.in_sample / r.reported)
            chips = float(runs[r.run]["num_chips"])
            length = r.reported if r.metric == "training_days" else r.reported / chips / 24.0
            days.setdefault(r.run, length)
    ids = sorted(errors)
    error = [errors[i] for i in ids]
    out = []
    for against, values in (
        ("cluster size", [float(runs[i]["num_chips"]) for i in ids]),
        ("run length (days)", [days[i] for i in ids]),
    ):
        result = spearmanr(values, error) if len(ids) > 2 else None
        rho, p = (float(result[0]), float(result[1])) if result is not None else (math.nan,) * 2
        out.append(GoodputTrend(against, len(ids), rho, p))
    return out


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
