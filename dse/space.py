"""Design spaces: which chip and cluster parameters vary, over which values, under which limits.

A space file (``spaces/*.toml``, schema in docs/search.md) lists *dimensions* (the parameters
that vary), *fixed* parameters, *constraints* and *objectives*; every other parameter comes from
a catalog chip (``base_chip``, default ``h100-sxm``).

Every dimension is a finite, ordered list of levels, so a design point is a row of integer level
indices. One decoder, :meth:`Space.decode`, turns an index matrix ``X`` of shape ``(n, d)`` into
:class:`~dse.designs.Designs`; grid enumeration (mixed radix over :attr:`Space.radices`), random
sampling, Latin hypercube sampling, pymoo and optuna all produce such index rows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dse import parameters
from dse.catalog._paths import resolve
from dse.catalog._schema import check
from dse.catalog.chips import load_chip
from dse.catalog.technology import load_technology
from dse.catalog.workloads import WORKLOAD_SCHEMA, Workload, build_workload, load_workload
from dse.designs import CATEGORICAL, Designs, FloatArray, chip_columns
from dse.errors import DseError, InputError
from dse.files import MAX_TOML_BYTES, is_file, parse_toml, read_bytes
from dse.model.evaluate import METRICS, Metrics

IntArray = NDArray[np.int64]

DEFAULT_BASE_CHIP = "h100-sxm"
DEFAULT_OBJECTIVES = ("cost_usd", "energy_mwh", "training_days")
DEFAULT_LEVELS = 11
"""Levels of a real-valued ``low``/``high`` dimension given neither ``step`` nor ``levels``."""
MAX_LEVELS = 10_000_000
"""Most levels one dimension may have (a guard against a tiny ``step``)."""
CONSTRAINT_LIMITS = (1e-12, 1e30)
"""Smallest and largest limit of a constraint (beyond them ``g`` would overflow)."""
RANDOM_BLOCK = 65_536
"""Random samples are drawn in blocks of this many rows, each from its own seeded stream, so
that any index range of the sample sequence can be produced without the rows before it."""

INTEGER_PARAMETERS = parameters.INTEGER
"""Parameters that take whole numbers (from their declarations)."""
ZERO_ALLOWED = parameters.ZERO_ALLOWED
"""Parameters that may be 0 (no spare units; a number format the chip lacks). All others > 0."""
PARAMETERS: tuple[str, ...] = parameters.NAMES
"""Every parameter a space may vary or fix: the declared design parameters."""

_TOP_KEYS = (
    "name",
    "description",
    "source",
    "base_chip",
    "workload",
    "dimensions",
    "fixed",
    "constraints",
    "objectives",
)
_DIMENSION_KEYS = ("low", "high", "step", "levels", "log", "choices")


@dataclass(frozen=True)
class Dimension:
    """One varying parameter: its ordered ``values`` (codes for categoricals), shape ``(levels,)``.

    ``labels`` names the values of a categorical dimension (node or HBM generation ids);
    ``choices`` is true when the file listed the values (rather than a low/high range).
    """

    name: str
    values: FloatArray
    labels: tuple[str, ...] | None = None
    choices: bool = False

    @property
    def levels(self) -> int:
        return int(self.values.shape[0])

    def label(self, index: int) -> str | float:
        """The value at level ``index`` as a person reads it (an id or a number)."""
        if self.labels is not None:
            return self.labels[index]
        value = float(self.values[index])
        return int(value) if self.name in INTEGER_PARAMETERS else value


@dataclass(frozen=True)
class Objective:
    """A metric column to minimize (or maximize)."""

    name: str
    maximize: bool = False


@dataclass(frozen=True)
class Constraint:
    """``max_<metric> = limit`` or ``min_<metric> = limit``; feasible where ``g <= 0``.

    ``g = value / limit - 1`` for a maximum and ``g = 1 - value / limit`` for a minimum.
    """

    key: str
    metric: str
    limit: float
    upper: bool

    @property
    def column(self) -> str:
        return f"g_{self.key}"

    def g(self, value: FloatArray) -> FloatArray:
        ratio = value / self.limit
        return ratio - 1.0 if self.upper else 1.0 - ratio


@dataclass(frozen=True, eq=False)
class Space:
    """A validated design space. Build with :func:`load_space`; never mutated.

    ``base`` holds every parameter's value where it does not vary (base chip, then ``[fixed]``);
    ``dimensions`` the varying ones in file order.
    """

    id: str
    path: Path
    name: str
    sha256: str
    base_chip: str
    workload: Workload | None
    dimensions: tuple[Dimension, ...]
    base: MappingProxyType[str, float]
    fixed: frozenset[str]
    constraints: tuple[Constraint, ...]
    objectives: tuple[Objective, ...]
    base_family: str = "unknown"
    """The base chip's architecture family (chips/technology/families.toml)."""

    @property
    def new_family(self) -> bool:
        """Whether the designs are of a family that no published run calibrated: the base
        chip's family has no fitted entry, or the space sets a value fitted per family
        (:data:`~dse.parameters.CALIBRATED`, the GEMM efficiency scale) itself. Their intervals
        are then those of a family left out (docs/model.md §4)."""
        set_here = parameters.CALIBRATED & (self.fixed | set(self.names))
        return bool(set_here) or not load_technology().calibrated(self.base_family)

    @property
    def radices(self) -> IntArray:
        """Levels per dimension, shape ``(d,)``."""
        return np.array([dim.levels for dim in self.dimensions], dtype=np.int64)

    @property
    def size(self) -> int:
        """Number of grid points (the product of the levels; 1 for a space with no dimensions)."""
        return math.prod(dim.levels for dim in self.dimensions)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the varying parameters, in index-column order."""
        return tuple(dim.name for dim in self.dimensions)

    def decode(self, X: np.ndarray) -> Designs:
        """Level indices of shape ``(n, d)`` → ``n`` designs (all parameters filled in)."""
        X = index_rows(X, len(self.dimensions))
        n = X.shape[0]
        if n and (np.any(X < 0) or np.any(self.radices[None, :] <= X)):
            raise ValueError("level index out of range")
        columns: dict[str, Any] = {name: np.full(n, value) for name, value in self.base.items()}
        for j, dim in enumerate(self.dimensions):
            columns[dim.name] = dim.values[X[:, j]]
        given = set(self.names) | self.fixed
        for name in CATEGORICAL:
            if name not in given:
                continue
            # The chosen entry's values of the parameters it implies, unless those are given.
            codes = np.asarray(columns[name], dtype=np.int64)
            for column, _ in parameters.BY_NAME[name].implies:
                if column not in given:
                    columns[column] = np.array(parameters.implied(name, column))[codes]
        return Designs.from_columns(columns)

    def grid(self, start: int, stop: int) -> IntArray:
        """Grid points ``start .. stop-1`` in mixed-radix order (last dimension fastest)."""
        if not 0 <= start <= stop <= self.size:
            raise ValueError(f"grid range {start}..{stop} outside 0..{self.size}")
        if self.size >= 2**63:
            raise InputError(self.path, "dimensions", "fewer than 2**63 grid points", self.size)
        rest = np.arange(start, stop, dtype=np.int64)
        X = np.empty((stop - start, len(self.dimensions)), dtype=np.int64)
        for j in range(len(self.dimensions) - 1, -1, -1):
            rest, X[:, j] = np.divmod(rest, self.dimensions[j].levels)
        return X

    def random(self, start: int, stop: int, seed: int) -> IntArray:
        """Rows ``start .. stop-1`` of the uniform random sample sequence of ``seed``.

        Row ``i`` does not depend on how the sequence is cut into ranges, so a sweep gives the
        same designs whatever its chunk size or number of processes.
        """
        first, last = start // RANDOM_BLOCK, (stop - 1) // RANDOM_BLOCK if stop > start else -1
        parts = []
        for block in range(first, last + 1):
            rng = np.random.default_rng([seed, block])
            u = rng.random((RANDOM_BLOCK, len(self.dimensions)))
            lo = max(start - block * RANDOM_BLOCK, 0)
            hi = min(stop - block * RANDOM_BLOCK, RANDOM_BLOCK)
            parts.append(u[lo:hi])
        u = np.concatenate(parts) if parts else np.empty((0, len(self.dimensions)))
        return self.from_unit(u)

    def latin_hypercube(self, n: int, seed: int) -> IntArray:
        """``n`` Latin hypercube samples (scipy's ``qmc.LatinHypercube``), shape ``(n, d)``.

        Each dimension's levels are hit in proportion: the unit interval is cut into ``n``
        strata and each stratum maps onto the level it falls in.
        """
        from scipy.stats import qmc

        if not self.dimensions:
            return np.zeros((n, 0), dtype=np.int64)
        u = qmc.LatinHypercube(d=len(self.dimensions), rng=np.random.default_rng(seed)).random(n)
        return self.from_unit(u)

    def from_unit(self, u: np.ndarray) -> IntArray:
        """Points of the unit cube, shape ``(n, d)`` → level indices (equal-width bins)."""
        index = np.floor(np.asarray(u) * self.radices[None, :]).astype(np.int64)
        return np.minimum(index, self.radices[None, :] - 1)

    def constraint_values(self, metrics: Metrics) -> dict[str, FloatArray]:
        """The space's constraints as ``g_*`` columns of shape ``(n,)`` (``<= 0`` feasible).

        ``max_die_area_mm2`` bounds each die (the reticle applies per die);
        ``max_silicon_area_mm2`` bounds the package.
        """
        return {c.column: c.g(metrics.columns[c.metric]) for c in self.constraints}


def index_rows(X: np.ndarray, d: int) -> IntArray:
    """Level indices as a matrix of shape ``(n, d)`` (also for a space with no dimensions,
    where ``reshape(-1, 0)`` cannot tell ``n``)."""
    X = np.asarray(X, dtype=np.int64)
    if d == 0:
        return X.reshape(X.shape[0] if X.ndim else 1, 0)
    return X.reshape(-1, d)


def load_space(name: str | Path) -> Space:
    """Load and validate a space by catalog id (``spaces/<id>.toml``) or path.

    Raises :class:`~dse.errors.InputError` naming the file, key, rule and value for anything
    wrong: unknown keys or parameters, ``low > high``, ``step <= 0``, unknown node ids, ...
    """
    path = resolve("spaces", name)
    raw = read_bytes(path, MAX_TOML_BYTES, "a TOML file")
    data = parse_toml(raw, path)
    for key in data:
        if key not in _TOP_KEYS:
            raise InputError(path, key, f"one of the keys {sorted(_TOP_KEYS)}", key)
    text = {key: _string(data, key, path) for key in ("name", "description", "source")}
    base_chip = _string(data, "base_chip", path) or DEFAULT_BASE_CHIP
    try:
        chip = load_chip(base_chip)
    except DseError as error:
        raise InputError(path, "base_chip", "a catalog chip id or chip file", base_chip) from error
    base: dict[str, float] = chip_columns(chip)
    base["unit_price_usd"] = math.nan  # modeled from the unit cost unless given
    base["num_chips"] = math.nan

    raw_dims = _table(data, "dimensions", path)
    raw_fixed = _table(data, "fixed", path)
    dimensions = tuple(
        _dimension(name, spec, path, f"dimensions.{name}") for name, spec in raw_dims.items()
    )
    for name, value in raw_fixed.items():
        key = f"fixed.{name}"
        _check_parameter(name, path, key)
        if name in raw_dims:
            raise InputError(path, key, "a parameter not also in [dimensions]", name)
        base[name] = _fixed_value(name, value, path, key)
    if "num_chips" not in raw_dims and "num_chips" not in raw_fixed:
        raise InputError(
            path, "dimensions.num_chips", "the cluster size in [dimensions] or [fixed]", "nothing"
        )
    return Space(
        id=path.stem,
        path=path,
        name=text["name"] or path.stem,
        sha256=hashlib.sha256(raw).hexdigest(),
        base_chip=chip.id,
        workload=_workload(data.get("workload"), path),
        dimensions=dimensions,
        base=MappingProxyType(base),
        fixed=frozenset(raw_fixed),
        constraints=_constraints(_table(data, "constraints", path), path),
        objectives=_objectives(_table(data, "objectives", path), path),
        base_family=chip.family,
    )


def _string(data: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InputError(path, key, "a non-empty string", value)
    return value


def _table(data: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise InputError(path, key, "a table", value)
    return dict(value)


def _check_parameter(name: str, path: Path, key: str) -> None:
    if name not in PARAMETERS:
        raise InputError(path, key, f"a design parameter, one of {list(PARAMETERS)}", name)


def _category_ids(name: str) -> list[str]:
    return parameters.choices(name)


def parameter_bounds(name: str) -> tuple[float, float]:
    """The physical range (inclusive) of design parameter ``name`` (its declaration's)."""
    return parameters.BY_NAME[name].bounds()


def _number(name: str, value: Any, path: Path, key: str) -> float:
    """One value of parameter ``name``: a number in the parameter's range."""
    whole = name in INTEGER_PARAMETERS
    low, high = parameter_bounds(name)
    zero = name in ZERO_ALLOWED and low > 0
    rule = parameters.BY_NAME[name].rule()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(path, key, rule, value)
    if whole and not float(value).is_integer():
        raise InputError(path, key, rule, value)
    if not (low <= value <= high or (zero and value == 0)):
        raise InputError(path, key, rule, value)
    return float(value)


def _fixed_value(name: str, value: Any, path: Path, key: str) -> float:
    if name in CATEGORICAL:
        ids = _category_ids(name)
        if value not in ids:
            raise InputError(path, key, f"one of {ids}", value)
        return float(ids.index(value))
    return _number(name, value, path, key)


def _dimension(name: str, spec: Any, path: Path, key: str) -> Dimension:
    _check_parameter(name, path, key)
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, Mapping):
        raise InputError(path, key, "a table with low/high (step, levels, log) or choices", spec)
    for field in spec:
        if field not in _DIMENSION_KEYS:
            raise InputError(
                path, f"{key}.{field}", f"one of the keys {list(_DIMENSION_KEYS)}", field
            )
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        if extra:
            raise InputError(path, f"{key}.{extra[0]}", "choices alone (no low/high)", extra[0])
        return _choices(name, spec["choices"], path, f"{key}.choices")
    if name in CATEGORICAL:
        raise InputError(path, key, f"choices = [...] of {_category_ids(name)}", dict(spec))
    for bound in ("low", "high"):
        if bound not in spec:
            raise InputError(path, f"{key}.{bound}", "a number (or use choices)", "nothing")
    low = _number(name, spec["low"], path, f"{key}.low")
    high = _number(name, spec["high"], path, f"{key}.high")
    if low > high:
        raise InputError(path, key, "low <= high", f"low={spec['low']}, high={spec['high']}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise InputError(path, f"{key}.log", "true or false", log)
    if log and low <= 0:
        raise InputError(path, f"{key}.low", "a number > 0 with log = true", spec["low"])
    if "step" in spec and "levels" in spec:
        raise InputError(path, key, "either step or levels, not both", "both")
    if "step" in spec and log:
        raise InputError(path, f"{key}.step", "no step with log = true (use levels)", spec["step"])
    values = _range_values(name, low, high, log, spec, path, key)
    if name in INTEGER_PARAMETERS:
        values = np.unique(np.round(values))
    return Dimension(name, values)


def _range_values(
    name: str, low: float, high: float, log: bool, spec: Mapping[str, Any], path: Path, key: str
) -> FloatArray:
    step = spec.get("step")
    levels = spec.get("levels")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int | float) or not step > 0:
            raise InputError(path, f"{key}.step", "a number > 0", step)
        steps = (high - low) / step
        if not steps < MAX_LEVELS:  # also a step so small that the count overflows
            raise InputError(path, key, f"at most {MAX_LEVELS:,} levels", f"step = {step!r}")
        count = math.floor(steps + 1e-9) + 1
    elif levels is not None:
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise InputError(path, f"{key}.levels", "a whole number >= 1", levels)
        if levels == 1 and low != high:
            raise InputError(path, f"{key}.levels", "at least 2 levels when low < high", levels)
        count = levels
    elif name in INTEGER_PARAMETERS:
        # Whole numbers: every integer, or the doublings low, 2 low, 4 low, ... on a log scale.
        count = math.floor(math.log2(high / low) + 1e-9) + 1 if log else int(high - low) + 1
    else:
        count = 1 if low == high else DEFAULT_LEVELS
    if count > MAX_LEVELS:
        raise InputError(path, key, f"at most {MAX_LEVELS:,} levels", f"{count:,} levels")
    if step is not None:
        # Rounded so that 1.4 + 3 × 0.1 reads 1.7, not 1.7000000000000002.
        return np.round(low + step * np.arange(count, dtype=np.float64), 12)
    if log and levels is None and name in INTEGER_PARAMETERS:
        return low * 2.0 ** np.arange(count, dtype=np.float64)
    if count == 1:
        return np.array([low])
    return np.geomspace(low, high, count) if log else np.linspace(low, high, count)


def _choices(name: str, choices: Any, path: Path, key: str) -> Dimension:
    if not isinstance(choices, list) or not choices:
        raise InputError(path, key, "a non-empty list", choices)
    if name in CATEGORICAL:
        ids = _category_ids(name)
        for i, choice in enumerate(choices):
            if choice not in ids:
                raise InputError(path, f"{key}[{i}]", f"one of {ids}", choice)
        values = np.array([ids.index(c) for c in choices], dtype=np.float64)
        labels: tuple[str, ...] | None = tuple(choices)
    else:
        values = np.array(
            [_number(name, c, path, f"{key}[{i}]") for i, c in enumerate(choices)], dtype=np.float64
        )
        labels = None
    if len(set(values.tolist())) != len(values):
        raise InputError(path, key, "distinct values", choices)
    return Dimension(name, values, labels, choices=True)


def _workload(value: Any, path: Path) -> Workload | None:
    if value is None:
        return None
    if isinstance(value, str):
        relative = path.parent / value
        try:
            return load_workload(relative if is_file(relative) else value)
        except DseError as error:
            raise InputError(path, "workload", "a catalog workload id or file", value) from error
    if isinstance(value, Mapping):
        values = check(value, WORKLOAD_SCHEMA, path, "workload")
        return build_workload(path.stem, values, path)
    raise InputError(path, "workload", "a workload id or a [workload] table", value)


def _constraints(table: Mapping[str, Any], path: Path) -> tuple[Constraint, ...]:
    out = []
    for key, limit in table.items():
        kind, _, metric = key.partition("_")
        if kind not in ("max", "min") or metric not in METRICS:
            raise InputError(
                path,
                f"constraints.{key}",
                f"max_<metric> or min_<metric> with a metric of {list(METRICS)}",
                key,
            )
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not CONSTRAINT_LIMITS[0] <= limit <= CONSTRAINT_LIMITS[1]
        ):
            raise InputError(path, f"constraints.{key}", "a number >= 1e-12 and <= 1e+30", limit)
        out.append(Constraint(key, metric, float(limit), kind == "max"))
    return tuple(out)


def _objectives(table: Mapping[str, Any], path: Path) -> tuple[Objective, ...]:
    for key in table:
        if key not in ("minimize", "maximize"):
            raise InputError(path, f"objectives.{key}", "minimize or maximize", key)
    if not table:
        return tuple(Objective(name) for name in DEFAULT_OBJECTIVES)
    out: list[Objective] = []
    for sense in ("minimize", "maximize"):
        names = table.get(sense, [])
        if not isinstance(names, list):
            raise InputError(path, f"objectives.{sense}", "a list of metric names", names)
        for name in names:
            if name not in METRICS:
                raise InputError(path, f"objectives.{sense}", f"metrics of {list(METRICS)}", name)
            if any(o.name == name for o in out):
                raise InputError(path, f"objectives.{sense}", "each metric once", name)
            out.append(Objective(name, sense == "maximize"))
    if not out:
        raise InputError(path, "objectives", "at least one objective", "none")
    return tuple(out)


def objective_matrix(
    columns: Mapping[str, np.ndarray], objectives: Sequence[Objective]
) -> FloatArray:
    """Objective columns as a matrix of shape ``(n, k)`` to *minimize* (maximized ones negated)."""
    return np.column_stack(
        [
            -np.asarray(columns[o.name], dtype=np.float64)
            if o.maximize
            else np.asarray(columns[o.name], dtype=np.float64)
            for o in objectives
        ]
    )
