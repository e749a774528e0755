"""The Python API: load the catalogs, evaluate designs, sweep and search spaces, keep the front.

Everything the command line does goes through these functions; the command line only parses
its options, calls them and formats what they return. Arguments are Python values, and bad
ones raise :class:`~dse.errors.InputError` (a ``ValueError``) naming the argument, the rule
and the value given::

    import dse

    result = dse.evaluate("h100-sxm", "llama3.1-70b", num_chips=4096)
    result.training_days, result.plan["tp"], result.to_dict()   # to_dict: the CLI's JSON
    frame = dse.sweep("accelerator", "llama3.1-70b", method="random", samples=3000, seed=1)
    front = dse.pareto(frame)

Results tables are :class:`pandas.DataFrame` objects with the columns of a results file
(design parameters, metrics, plan, ``g_*`` constraints, ``feasible``, ``pareto``); their
provenance is in ``frame.attrs["dse"]``.
"""

from __future__ import annotations

import itertools
import math
import numbers
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from dse.catalog.chips import Chip
from dse.catalog.chips import load_chip as _load_chip
from dse.catalog.workloads import PRECISIONS, WORKLOAD_BOUNDS, Workload
from dse.catalog.workloads import load_workload as _load_workload
from dse.errors import InputError
from dse.evaluation import evaluate_one, plain
from dse.intervals import architecture, interval_basis
from dse.model.evaluate import PLAN_COLUMNS
from dse.model.plans import PLACEMENTS, RECOMPUTE, SCHEDULES, ZERO_STAGES
from dse.settings import Settings, load_settings
from dse.space import DEFAULT_OBJECTIVES, Objective, Space
from dse.space import load_space as _load_space

if TYPE_CHECKING:
    import pandas as pd

    from dse.estimate import Estimate
    from dse.pareto import ResultsFront
    from dse.search._search import SearchSummary
    from dse.search.executors import Executor
    from dse.search.problem import Problem
    from dse.search.sweep import SweepSummary

ChipLike = str | Path | Chip
WorkloadLike = str | Path | Workload
SpaceLike = str | Path | Space

DEFAULT_SAMPLES = 10_000
"""Design points of a random or Latin hypercube sweep when ``samples`` is not given."""
DEFAULT_SEARCH_EVALS = 1000
DEFAULT_ENGINE = "pymoo"


# ---- catalogs ----------------------------------------------------------------------------


def load_chip(chip: ChipLike) -> Chip:
    """A chip by catalog id (``"h100-sxm"``) or path to a chip TOML file (a Chip passes)."""
    if isinstance(chip, Chip):
        return chip
    _check_name("chip", chip)
    return _load_chip(chip)


def load_workload(workload: WorkloadLike) -> Workload:
    """A workload by catalog id (``"llama3.1-70b"``) or path to a workload TOML file."""
    if isinstance(workload, Workload):
        return workload
    _check_name("workload", workload)
    return _load_workload(workload)


def load_space(space: SpaceLike) -> Space:
    """A design space by catalog id (``"accelerator"``) or path to a space TOML file."""
    if isinstance(space, Space):
        return space
    _check_name("space", space)
    return _load_space(space)


def _check_name(argument: str, value: object) -> None:
    if not isinstance(value, str | Path):
        expected = f"a catalog id or a path to a {argument} TOML file (str or Path)"
        raise InputError.for_argument(argument, expected, value)


# ---- one design --------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One chip on one cluster for one workload, at its best (or pinned) parallelism plan.

    Every metric is an attribute in the unit its name states (``training_days``,
    ``energy_mwh``, ``cost_usd``, ...); ``plan`` maps ``tp``, ``pp``, ``vp``, ``cp``, ``dp``,
    ``ep``, ``etp``, ``microbatch``, ``recompute``, ``zero_stage``, ``dp_shard``, ``schedule``
    and ``placement`` to the chosen values;
    ``breakdown_s`` splits a training step (s) into compute, each kind of communication, the
    optimizer and the bubble; ``memory_gb`` splits ``memory_per_chip_gb`` into weights,
    gradients, optimizer state, kept activations, logits and the working set;
    ``constraints`` holds the ``g_*`` values (``<= 0`` holds);
    ``interval`` holds 80 % prediction intervals ``[low, high]`` of the headline metrics, and
    ``interval_basis`` what they were drawn from (``"source"``: the errors of published figures
    whose source was left out of the fit; ``"family"``: of those whose chip family was, for a
    chip of a family no published run calibrated), and ``interval_architecture`` of which kind
    of model (``"dense"``, ``"moe"`` or ``"hybrid"``, dse/intervals.py);
    ``idle_chips`` counts the chips the plan leaves unused. :meth:`to_dict` is exactly the
    JSON that ``dse evaluate`` prints. Metrics the model adds later are attributes too.
    """

    chip: str
    workload: str
    num_chips: int
    feasible: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    idle_chips: int
    precision: str
    tokens: float
    training_flops: float
    training_days: float
    chip_hours: float
    energy_mwh: float
    cost_usd: float
    capex_usd: float
    mfu: float
    hfu: float
    step_time_s: float
    avg_chip_power_w: float
    cluster_power_mw: float
    memory_per_chip_gb: float
    peak_tflop_s: float
    hbm_bandwidth_tb_s: float
    hbm_capacity_gb: float
    die_area_mm2: float
    silicon_area_mm2: float
    die_yield: float
    unit_cost_usd: float
    unit_price_usd: float
    plan: Mapping[str, Any]
    constraints: Mapping[str, float]
    breakdown_s: Mapping[str, float]
    memory_gb: Mapping[str, float]
    interval: Mapping[str, list[float]]
    record: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Evaluation:
        """The evaluation of a ``dse evaluate`` record (missing metrics are NaN)."""
        record = plain(record)
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name == "record":
                continue
            value = record.get(name)
            if name in ("reasons", "notes"):
                value = tuple(value or ())
            elif name in ("plan", "constraints", "breakdown_s", "memory_gb", "interval"):
                value = MappingProxyType(dict(value or {}))
            elif value is None and name not in ("chip", "workload", "precision"):
                value = math.nan
            values[name] = value
        return cls(**values, record=MappingProxyType(record))

    def __getattr__(self, name: str) -> Any:
        # Metrics of the record without a field of their own (added by later models).
        record = self.__dict__.get("record", {})
        if name in record:
            return record[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as plain JSON values, key by key the JSON that ``dse evaluate`` prints."""
        return plain(self.record)

    def to_row(self) -> dict[str, Any]:
        """One flat row: metrics, plan (``tp``, ``pp``, ...), ``g_*`` constraints and the
        breakdown as ``breakdown_s.<part>``; intervals as ``<metric>_low``/``<metric>_high`` (as in results files);
        reasons and notes joined by ``"; "``."""
        row: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if key in ("plan", "constraints"):
                row.update(value)
            elif key == "interval":
                for metric, (low, high) in value.items():
                    row[f"{metric}_low"], row[f"{metric}_high"] = low, high
            elif isinstance(value, dict):
                row.update({f"{key}.{k}": v for k, v in value.items()})
            elif isinstance(value, list):
                row[key] = "; ".join(str(v) for v in value)
            else:
                row[key] = value
        return row


@overload
def evaluate(
    chip: ChipLike,
    workload: WorkloadLike,
    num_chips: int,
    *,
    precision: str | None = None,
    tokens: float | None = None,
    plan: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Evaluation: ...


@overload
def evaluate(
    chip: Sequence[ChipLike],
    workload: WorkloadLike,
    num_chips: int | Sequence[int],
    *,
    precision: str | None = None,
    tokens: float | None = None,
    plan: Mapping[str, Any] | None = None,
    **settings: Any,
) -> pd.DataFrame: ...


@overload
def evaluate(
    chip: ChipLike,
    workload: WorkloadLike,
    num_chips: Sequence[int],
    *,
    precision: str | None = None,
    tokens: float | None = None,
    plan: Mapping[str, Any] | None = None,
    **settings: Any,
) -> pd.DataFrame: ...


def evaluate(
    chip: ChipLike | Sequence[ChipLike],
    workload: WorkloadLike,
    num_chips: int | Sequence[int],
    *,
    precision: str | None = None,
    tokens: float | None = None,
    plan: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Evaluation | pd.DataFrame:
    """Train ``workload`` on ``num_chips`` of ``chip``: the fastest plan that fits, all metrics.

    ``chip`` and ``workload`` are catalog ids, paths to TOML files or loaded records;
    ``precision`` (``"bf16"``, ``"fp8"``, ``"fp4"``) and ``tokens`` replace the workload's;
    ``plan`` pins any of ``tp``, ``pp``, ``vp``, ``cp``, ``dp``, ``ep``, ``microbatch``,
    ``recompute`` (one of :data:`~dse.model.plans.RECOMPUTE`), ``zero_stage`` (0-3) and
    ``schedule`` (one of :data:`~dse.model.plans.SCHEDULES`) instead of searching them,
    ``placement`` (one of :data:`~dse.model.plans.PLACEMENTS`; the first unless pinned), and
    ``offload_layers`` (layers per pipeline stage whose activations go to host memory; 0, the
    default, is never searched) and
    ``recompute_layers`` (layers per stage the recompute policy applies to, the others keep
    everything; every layer unless pinned) and ``dp_shard`` (the data-parallel ranks each ZeRO
    stage shards over, replicated across the ``dp / dp_shard`` groups: hybrid sharding; ``dp``
    unless pinned) and ``etp`` (the ranks each routed expert's weights are split over: expert
    tensor parallelism; 1 unless pinned);
    ``settings`` replace model defaults by name (``pue=1.3``, ``electricity_usd_per_kwh=0.12``;
    see ``dse/defaults.toml``).

    With a sequence of chips or of cluster sizes, returns a DataFrame with one row per chip
    and cluster size (:meth:`Evaluation.to_row`), chips outermost.
    """
    chips = _many(chip)
    sizes = _many(num_chips)
    job = workload_with(load_workload(workload), tokens=tokens, precision=precision)
    model = settings_with(settings)
    pinned = _plan(plan)
    if chips is None and sizes is None:
        return _evaluate(chip, job, num_chips, model, pinned)  # type: ignore[arg-type]
    import pandas as pd

    rows = [
        _evaluate(c, job, n, model, pinned).to_row()
        for c, n in itertools.product(chips or [chip], sizes or [num_chips])
    ]
    return pd.DataFrame(rows)


def _many(value: Any) -> list[Any] | None:
    """``value`` as a list when it is a sequence (not a string or path), else None."""
    if isinstance(value, str | Path | bytes | Chip) or not isinstance(value, Sequence | np.ndarray):
        return None
    return list(value)


def _evaluate(
    chip: ChipLike, workload: Workload, num_chips: Any, settings: Settings, pinned: dict[str, Any]
) -> Evaluation:
    count = _whole("num_chips", num_chips, minimum=1)
    try:
        record = evaluate_one(load_chip(chip), workload, count, settings, pinned)
    except InputError as error:
        if error.argument not in PLAN_KEYS:
            raise
        argument = f"plan.{error.argument}"
        raise InputError.for_argument(argument, error.expected, error.given) from None
    return Evaluation.from_record(record)


def _whole(argument: str, value: Any, *, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, else an InputError naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError.for_argument(argument, f"a whole number >= {minimum}", value)
    return int(value)


PLAN_KEYS = tuple(k for k in PLAN_COLUMNS)


def _plan(plan: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pinned plan, checked: keys among :data:`PLAN_KEYS`, whole numbers >= 1 (``recompute``
    one of :data:`~dse.model.plans.RECOMPUTE`, ``schedule`` one of
    :data:`~dse.model.plans.SCHEDULES`, ``placement`` one of :data:`~dse.model.plans.PLACEMENTS`,
    ``zero_stage`` one of the ZeRO stages)."""
    if plan is None:
        return {}
    if not isinstance(plan, Mapping):
        raise InputError.for_argument("plan", f"a mapping with keys among {list(PLAN_KEYS)}", plan)
    pinned: dict[str, Any] = {}
    for key, value in plan.items():
        argument = f"plan.{key}"
        if value is None:
            continue
        if key == "recompute":
            if value not in RECOMPUTE:
                raise InputError.for_argument(argument, f"one of {list(RECOMPUTE)}", value)
            pinned[key] = value
        elif key == "schedule":
            if value not in SCHEDULES:
                raise InputError.for_argument(argument, f"one of {list(SCHEDULES)}", value)
            pinned[key] = value
        elif key == "placement":
            if value not in PLACEMENTS:
                raise InputError.for_argument(argument, f"one of {list(PLACEMENTS)}", value)
            pinned[key] = value
        elif key == "zero_stage":
            if isinstance(value, bool) or value not in ZERO_STAGES:
                raise InputError.for_argument(argument, f"one of {list(ZERO_STAGES)}", value)
            pinned[key] = int(value)
        elif key == "offload_layers":
            pinned[key] = _whole(argument, value, minimum=0)
        elif key in PLAN_KEYS:
            pinned[key] = _whole(argument, value, minimum=1)
        else:
            raise InputError.for_argument("plan", f"keys among {list(PLAN_KEYS)}", key)
    return pinned


def workload_with(
    workload: Workload, *, tokens: float | None = None, precision: str | None = None
) -> Workload:
    """``workload`` with its training ``tokens`` and number format ``precision`` replaced."""
    if tokens is not None:
        low, high = WORKLOAD_BOUNDS["tokens"]
        if (
            isinstance(tokens, bool)
            or not isinstance(tokens, numbers.Real)
            or not math.isfinite(tokens)
            or not low <= tokens <= high
        ):
            raise InputError.for_argument("tokens", f"a number >= {low:g} and <= {high:g}", tokens)
        if tokens < workload.global_batch_tokens:
            raise InputError.for_argument(
                "tokens",
                f"at least one global batch of {workload.id} ({workload.global_batch_tokens:.4g})",
                tokens,
            )
        workload = workload.with_changes(tokens=float(tokens))
    if precision is not None:
        if precision not in PRECISIONS:
            raise InputError.for_argument("precision", f"one of {list(PRECISIONS)}", precision)
        workload = workload.with_changes(precision=precision)
    return workload


def settings_with(overrides: Mapping[str, Any]) -> Settings:
    """The model defaults with ``overrides`` (name → value; None keeps the default)."""
    settings = load_settings()
    names = Settings.names()
    for name, value in overrides.items():
        if name not in names:
            raise InputError.for_argument(name, f"a model setting, one of {names}", value)
        try:
            settings = settings.with_overrides(**{name: value})
        except InputError as error:
            raise InputError.for_argument(name, error.expected, value) from None
    return settings


# ---- spaces ------------------------------------------------------------------------------


def problem(
    space: SpaceLike,
    workload: WorkloadLike | None = None,
    *,
    precision: str | None = None,
    tokens: float | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Problem:
    """The search problem of ``space`` × ``workload`` (default: the space's) under settings."""
    from dse.search import Problem

    model = settings_with(settings or {})
    loaded = load_space(space)
    if workload is None:
        if loaded.workload is None:
            expected = "a workload id or file (the space names none)"
            raise InputError.for_argument("workload", expected, None)
        job = loaded.workload
    else:
        job = load_workload(workload)
    return Problem(loaded, workload_with(job, tokens=tokens, precision=precision), model)


def _request(function: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What a results file records of the call that made it."""

    def shown(value: Any) -> Any:
        if isinstance(value, Chip | Workload | Space):
            return f"{type(value).__name__}({value.id!r})"
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, Mapping):
            return {str(k): shown(v) for k, v in value.items()}
        return value

    return {"function": f"dse.{function}", "arguments": shown(dict(arguments))}


def estimate_sweep(
    space: SpaceLike,
    workload: WorkloadLike | None = None,
    *,
    method: str = "random",
    samples: int | None = None,
    pareto_only: bool = False,
    parallel: int = 1,
    out: str | Path | None = None,
    precision: str | None = None,
    tokens: float | None = None,
    **settings: Any,
) -> Estimate:
    """What :func:`sweep` would evaluate and write, and about how long it would take."""
    from dse.estimate import estimate_sweep as _estimate

    job = problem(space, workload, precision=precision, tokens=tokens, settings=settings)
    target = _output(out)
    samples = _samples(method, samples)
    return _estimate(
        job, target, method=method, samples=samples, pareto_only=pareto_only, parallel=parallel
    )


def _samples(method: str, samples: int | None) -> int | None:
    return DEFAULT_SAMPLES if method != "grid" and samples is None else samples


def _output(out: str | Path | None) -> Path:
    from dse.export import check_suffix

    if out is None:
        return Path("results.parquet")
    if not isinstance(out, str | Path):
        raise InputError.for_argument("out", "a file path (str or Path)", out)
    target = Path(out)
    check_suffix(target)
    return target


def sweep_to_file(
    space: SpaceLike,
    workload: WorkloadLike | None = None,
    *,
    out: str | Path,
    method: str = "random",
    samples: int | None = None,
    seed: int = 0,
    precision: str | None = None,
    tokens: float | None = None,
    pareto_only: bool = False,
    chunk_size: int | None = None,
    jobs: int = 1,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: str | Executor | None = None,
    restart: bool = False,
    confirm: bool = False,
    progress: bool = False,
    on_estimate: Callable[[Estimate], None] | None = None,
    request: Mapping[str, Any] | None = None,
    **settings: Any,
) -> SweepSummary:
    """:func:`sweep` writing ``out`` without reading it back; returns what the sweep did.

    ``on_estimate`` is called with the run's estimate before it starts; ``request`` is the
    call the file's provenance records (default: this one, as a call of :func:`sweep`).
    """
    arguments = {k: v for k, v in locals().items() if k not in ("on_estimate", "request")}
    from dse.estimate import check_limits
    from dse.estimate import estimate_sweep as _estimate
    from dse.export import AtomicFile, provenance
    from dse.search import run_sweep
    from dse.search.executors import Executor, executor_for
    from dse.search.sweep import DEFAULT_CHUNK_SIZE

    _whole("seed", seed, minimum=0)
    _whole("jobs", jobs, minimum=1)
    target = _output(out)
    job = problem(space, workload, precision=precision, tokens=tokens, settings=settings)
    samples = _samples(method, samples)
    parallel = workers or jobs
    estimate = _estimate(
        job, target, method=method, samples=samples, pareto_only=pareto_only, parallel=parallel
    )
    AtomicFile(target).discard()  # fails early, with a clear error, where out is not writable
    check_limits(estimate, confirm)
    if on_estimate is not None:
        on_estimate(estimate)
    meta = provenance(
        request or _request("sweep", arguments),
        **job.describe(),
        interval_basis=interval_basis(job.space.new_family),
        interval_architecture=architecture(job.workload.is_moe, job.workload.is_hybrid),
    )
    if isinstance(executor, Executor):
        runner, own = executor, False
    else:
        runner = executor_for(jobs=jobs, workers=workers, scheduler=scheduler, name=executor)
        own = True
    try:
        return run_sweep(
            job,
            target,
            meta,
            method=method,
            samples=samples,
            seed=seed,
            chunk_size=DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size,
            pareto_only=pareto_only,
            executor=runner,
            restart=restart,
            progress=progress,
        )
    finally:
        if own:
            runner.close()


def sweep(
    space: SpaceLike,
    workload: WorkloadLike | None = None,
    *,
    method: str = "random",
    samples: int | None = None,
    seed: int = 0,
    precision: str | None = None,
    tokens: float | None = None,
    pareto_only: bool = False,
    chunk_size: int | None = None,
    jobs: int = 1,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: str | Executor | None = None,
    out: str | Path | None = None,
    restart: bool = False,
    confirm: bool = False,
    progress: bool = False,
    **settings: Any,
) -> pd.DataFrame:
    """Evaluate a design space: every grid point (``method="grid"``) or ``samples`` random or
    Latin hypercube (``"lhs"``) points drawn with ``seed`` (default 10,000 samples).

    Returns every evaluated design (or with ``pareto_only`` its Pareto set) as a DataFrame,
    row for row what ``dse sweep`` writes, provenance in ``attrs["dse"]``. With ``out`` (a
    ``.csv``, ``.parquet`` or ``.json`` path) the file is written too. Chunks of
    ``chunk_size`` designs run in this process, on ``jobs`` processes, on a local Dask cluster
    of ``workers`` or on the Dask ``scheduler`` at an address (or the named ``executor``).
    Runs above 50,000,000 designs or 10 GB of output need ``confirm=True``. ``settings``
    replace model defaults by name, as for :func:`evaluate`.
    """
    return _run_to_frame("sweep", sweep_to_file, dict(locals()))


def _frame(frame: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    frame.attrs["dse"] = meta
    return frame


def _run_to_frame(name: str, write: Callable[..., Any], kwargs: dict[str, Any]) -> pd.DataFrame:
    """Run ``write`` (a sweep or search to a file) for the API call ``name`` and read its rows
    back: into ``kwargs["out"]`` when given, else through a temporary Parquet file."""
    from dse.export import read_results

    request = _request(name, kwargs)
    out = kwargs.pop("out")
    kwargs.update(kwargs.pop("settings"))
    if out is not None:
        write(out=out, request=request, **kwargs)
        return _frame(*read_results(_output(out)))
    with tempfile.TemporaryDirectory(prefix=f"dse-{name}-") as folder:
        target = Path(folder) / f"{name}.parquet"
        write(out=target, request=request, **kwargs)
        return _frame(*read_results(target))


def estimate_search(
    space: SpaceLike,
    workload: WorkloadLike | None = None,
    *,
    engine: str = DEFAULT_ENGINE,
    evals: int = DEFAULT_SEARCH_EVALS,
    batch: int = 64,
    out: str | Path | None = None,
    precision: str | None = None,
    tokens: float | None = None,
    **settings: Any,
) -> Estimate:
    """What :func:`search` would evaluate and write, and about how long it would take."""
    from dse.estimate import estimate_search as _estimate

    job = problem(space, workload, precision=precision, tokens=tokens, settings=settings)
    return _estimate(job, _output(out), engine=engine, evals=evals, batch=batch)


def search_to_file(
    space: SpaceLike,
    workload: WorkloadLike | None = None,
    *,
    out: str | Path,
    engine: str = DEFAULT_ENGINE,
    evals: int = DEFAULT_SEARCH_EVALS,
    seed: int = 0,
    storage: str | None = None,
    study: str | None = None,
    precision: str | None = None,
    tokens: float | None = None,
    options: Mapping[str, Any] | None = None,
    confirm: bool = False,
    progress: bool = False,
    on_estimate: Callable[[Estimate], None] | None = None,
    request: Mapping[str, Any] | None = None,
    **settings: Any,
) -> SearchSummary:
    """:func:`search` writing ``out`` without reading it back; returns what the search did
    (``on_estimate`` and ``request`` as for :func:`sweep_to_file`)."""
    from dse.estimate import check_limits
    from dse.estimate import estimate_search as _estimate
    from dse.export import AtomicFile, provenance
    from dse.search import create_engine, run_search

    arguments = {
        "space": space,
        "workload": workload,
        "out": out,
        "engine": engine,
        "evals": evals,
        "seed": seed,
        "storage": storage,
        "study": study,
        "precision": precision,
        "tokens": tokens,
        "options": dict(options or {}),
        "confirm": confirm,
        "settings": settings,
    }
    _whole("seed", seed, minimum=0)
    if not isinstance(engine, str):
        raise InputError.for_argument("engine", "an engine name (str)", engine)
    target = _output(out)
    engine_options = {k: v for k, v in dict(options or {}).items() if v is not None}
    engine_options.update({k: v for k, v in (("storage", storage), ("study", study)) if v})
    chosen = create_engine(engine, **engine_options)
    job = problem(space, workload, precision=precision, tokens=tokens, settings=settings)
    batch = engine_options.get("batch_size") or engine_options.get("pop_size") or 64
    estimate = _estimate(job, target, engine=engine, evals=evals, batch=int(batch))
    AtomicFile(target).discard()
    check_limits(estimate, confirm)
    if on_estimate is not None:
        on_estimate(estimate)
    meta = provenance(
        request or _request("search", arguments),
        **job.describe(),
        interval_basis=interval_basis(job.space.new_family),
        interval_architecture=architecture(job.workload.is_moe, job.workload.is_hybrid),
    )
    return run_search(job, chosen, target, meta, evals=evals, seed=seed, progress=progress)


def search(
    space: SpaceLike,
    workload: WorkloadLike | None = None,
    *,
    engine: str = DEFAULT_ENGINE,
    evals: int = DEFAULT_SEARCH_EVALS,
    seed: int = 0,
    storage: str | None = None,
    study: str | None = None,
    precision: str | None = None,
    tokens: float | None = None,
    options: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    confirm: bool = False,
    progress: bool = False,
    **settings: Any,
) -> pd.DataFrame:
    """Multi-objective search of a design space: ``evals`` evaluations by ``engine`` with
    ``seed``.

    Engines: ``"pymoo"`` (``options``: ``algorithm`` nsga2/nsga3/unsga3/sms-emoa/spea2,
    ``pop_size``) and ``"optuna"`` (``sampler`` nsga2/tpe/random, ``pop_size``,
    ``batch_size``, ``workers``), or any registered engine (see
    :func:`dse.search.register_engine` and the ``dse.engines`` entry points). With optuna,
    ``storage`` (a URL such as ``"sqlite:///study.db"``) and ``study`` keep a persistent,
    shareable study: calling again adds ``evals`` trials.

    Returns every evaluated design with its ``pareto`` mark, row for row what ``dse search``
    writes (to ``out`` too, when given). ``settings`` replace model defaults by name.
    """
    return _run_to_frame("search", search_to_file, dict(locals()))


# ---- fronts ------------------------------------------------------------------------------


def objectives_of(
    frame: pd.DataFrame,
    minimize: Sequence[str] = (),
    maximize: Sequence[str] = (),
) -> tuple[Objective, ...]:
    """Objectives: those given, else the frame's provenance (``attrs["dse"]``), else the
    default three (cost, energy, training time, minimized)."""
    if isinstance(minimize, str) or isinstance(maximize, str):
        raise InputError.for_argument("minimize", "a sequence of column names", minimize)
    if minimize or maximize:
        return tuple(Objective(n) for n in minimize) + tuple(Objective(n, True) for n in maximize)
    meta = frame.attrs.get("dse") or {}
    if meta.get("objectives"):
        return tuple(Objective(o["name"], bool(o.get("maximize"))) for o in meta["objectives"])
    return tuple(Objective(n) for n in DEFAULT_OBJECTIVES)


def check_objectives(
    frame: pd.DataFrame, objectives: Sequence[Objective], source: str | Path = "df"
) -> None:
    """Every objective is a numeric column of ``frame`` (``source`` names it in errors)."""
    import pandas as pd

    for o in objectives:
        if o.name not in frame:
            raise InputError(source, o.name, "an objective column of the results", o.name)
        if not pd.api.types.is_numeric_dtype(frame[o.name]):
            raise InputError(source, o.name, "a numeric column", str(frame[o.name].dtype))


def front(
    frame: pd.DataFrame,
    objectives: Sequence[Objective] | None = None,
    reference: Sequence[float] | None = None,
) -> ResultsFront:
    """The Pareto front of ``frame`` (its mask, hypervolume and reference point)."""
    from dse.pareto import results_front

    chosen = tuple(objectives) if objectives is not None else objectives_of(frame)
    check_objectives(frame, chosen)
    ref = None
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.shape != (len(chosen),) or not np.all(np.isfinite(ref)):
            raise InputError.for_argument(
                "reference", f"{len(chosen)} finite numbers, one per objective", reference
            )
    return results_front(frame, chosen, ref)


def pareto(
    df: pd.DataFrame,
    *,
    minimize: Sequence[str] = (),
    maximize: Sequence[str] = (),
    reference: Sequence[float] | None = None,
) -> pd.DataFrame:
    """The non-dominated feasible rows of a results table (as :func:`sweep` returns).

    Objectives: ``minimize``/``maximize`` column names when given, else those the table's
    provenance names, else cost, energy and training time. The rows keep their index; their
    ``attrs`` carry ``hypervolume`` (with ``hypervolume_unit``) and its ``reference`` point.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InputError.for_argument("df", "a pandas DataFrame of results", type(df).__name__)
    result = front(df, objectives_of(df, minimize, maximize), reference)
    rows = df[result.mask].copy()
    rows.attrs.update(
        hypervolume=result.hypervolume,
        hypervolume_unit=result.hypervolume_unit,
        reference=result.reference.tolist(),
    )
    return rows


def load_results(path: str | Path) -> pd.DataFrame:
    """A results file (``.csv``, ``.parquet``, ``.json``) with its provenance in ``attrs``."""
    from dse.export import read_results

    if not isinstance(path, str | Path):
        raise InputError.for_argument("path", "a file path (str or Path)", path)
    return _frame(*read_results(path))


# ---- uncertainty -------------------------------------------------------------------------


def _uncertainty_file(uncertainty: str | Path | None) -> Path | None:
    if uncertainty is None:
        return None
    if not isinstance(uncertainty, str | Path):
        raise InputError.for_argument(
            "uncertainty", "a path to a TOML file (str or Path)", uncertainty
        )
    return Path(uncertainty)


def sensitivity(
    space: SpaceLike,
    workload: WorkloadLike | None = None,
    *,
    samples: int = 512,
    seed: int = 0,
    method: str = "sobol",
    scale: str = "log",
    constants: bool = True,
    uncertainty: str | Path | None = None,
    plot_path: str | Path | None = None,
    precision: str | None = None,
    tokens: float | None = None,
    **settings: Any,
) -> pd.DataFrame:
    """Global sensitivity of the space's objectives to its dimensions and to the uncertain
    constants (``tech.<table>.<key>``, ``settings.<key>``; chips/technology/uncertainty.toml).

    ``method="sobol"``: Saltelli samples of ``samples`` base points (a power of two; the model
    runs ``samples × (factors + 2)`` times), first-order and total indices with 95 % bootstrap
    half-widths (columns ``first_order``, ``first_order_conf``, ``total``, ``total_conf``).
    ``method="morris"``: ``samples`` trajectories, columns ``mu_star``, ``mu_star_conf``,
    ``sigma``. One row per objective and factor; ``scale="log"`` analyses log10 of the
    objectives. ``constants=False`` analyses the dimensions alone; ``uncertainty`` replaces the
    distributions file; ``settings`` replace model defaults by name (such a setting is then
    known, not drawn). The same ``seed`` gives the same indices. Run figures in
    ``attrs["dse_sensitivity"]``. ``plot_path`` (.png, .svg, .pdf) draws the largest indices
    of each objective as bars.
    """
    from dse.uncertainty.plots import check_image, plot_sensitivity
    from dse.uncertainty.sensitivity import run_sensitivity

    _whole("seed", seed, minimum=0)
    if plot_path is not None:
        check_image(Path(plot_path))
    job = problem(space, workload, precision=precision, tokens=tokens, settings=settings)
    frame = run_sensitivity(
        job,
        samples=samples,
        seed=seed,
        method=method,
        scale=scale,
        constants=constants,
        uncertainty=_uncertainty_file(uncertainty),
    )
    if plot_path is not None:
        plot_sensitivity(frame, Path(plot_path))
    return frame


def _problem_of_results(meta: dict[str, Any], source: str) -> Problem:
    """The problem a results file was made from, by its provenance ``meta`` (space, workload,
    precision, tokens, settings); one line naming ``source`` where it has none."""
    if not meta.get("space") or not meta.get("workload"):
        expected = "the provenance of a dse sweep, search or pareto file (space and workload)"
        raise InputError(source, "provenance", expected, "none")
    space_ref: str | Path = meta["space"]
    if not Path(str(space_ref)).is_file() and meta.get("space_id"):
        space_ref = meta["space_id"]
    return problem(
        space_ref,
        meta["workload"],
        precision=meta.get("precision"),
        tokens=meta.get("tokens"),
        settings=meta.get("settings") or {},
    )


def robust(
    results: str | Path | pd.DataFrame,
    *,
    samples: int = 200,
    seed: int = 0,
    out: str | Path | None = None,
    spread_scale: float = 1.0,
    uncertainty: str | Path | None = None,
    plot_path: str | Path | None = None,
    minimize: Sequence[str] = (),
    maximize: Sequence[str] = (),
) -> pd.DataFrame:
    """The rows of a results file (a path, or a frame from :func:`sweep`, :func:`search`,
    :func:`pareto` or :func:`load_results`) re-evaluated under ``samples`` joint draws of the
    uncertain constants, each draw searching the plan again.

    Adds ``p_pareto`` (share of draws in which the row is feasible and non-dominated among the
    rows), ``p_feasible`` and ``<objective>_p10``/``_p50``/``_p90``. The space, workload and
    settings come from the file's provenance, the objectives too unless ``minimize`` /
    ``maximize`` name them. ``spread_scale`` multiplies every spread (0: every constant
    certain, which reproduces the file); ``uncertainty`` replaces the distributions file. With
    ``out`` the rows are written there too (atomically, with provenance). The summary
    (p_pareto spread, draws) is in ``attrs["dse_robust"]``. ``plot_path`` (.png, .svg, .pdf)
    draws the rows' medians with their 10-90 % ranges in the plane of the first two
    objectives, coloured by ``p_pareto``.
    """
    import pandas as pd

    from dse.export import AtomicFile, write_results
    from dse.uncertainty.plots import check_image, plot_robust
    from dse.uncertainty.robust import robust_meta, run_robust

    if plot_path is not None:
        check_image(Path(plot_path))
    _whole("seed", seed, minimum=0)
    if (
        isinstance(spread_scale, bool)
        or not isinstance(spread_scale, numbers.Real)
        or not 0.0 <= spread_scale <= 10.0
    ):
        raise InputError.for_argument("spread_scale", "a number >= 0 and <= 10", spread_scale)
    if isinstance(results, pd.DataFrame):
        frame, source = results, "df"
    else:
        frame, source = load_results(results), str(results)
    target = None if out is None else _output(out)
    if target is not None:
        AtomicFile(target).discard()  # fails early where out is not writable
    meta = dict(frame.attrs.get("dse") or {})
    job = _problem_of_results(meta, source)
    chosen = objectives_of(frame, minimize, maximize)
    check_objectives(frame, chosen, source)
    rows, summary = run_robust(
        frame.reset_index(drop=True),
        job,
        chosen,
        samples=samples,
        seed=seed,
        scale=float(spread_scale),
        uncertainty=_uncertainty_file(uncertainty),
        source=source,
    )
    rows.index = frame.index
    written = robust_meta(meta, summary, source)
    if target is not None:
        write_results(target, {str(c): rows[c].to_numpy() for c in rows.columns}, written)
    rows.attrs["dse"] = written
    rows.attrs["dse_robust"] = summary
    if plot_path is not None:
        plot_robust(rows, chosen, Path(plot_path))
    return rows
