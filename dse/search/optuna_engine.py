"""optuna engine: named samplers, batched ask/tell, persistent and resumable studies.

Each batch of trials is asked for, decoded into index rows, evaluated by the model in one call
and told back. Every parameter holds the design's real value under the dimension's name, so
optuna-dashboard shows ``compute_units 192``: a ``low``/``high`` dimension with evenly spaced
levels is an integer or float distribution with that step; a dimension listed as ``choices``, or
one whose levels are not evenly spaced (``log = true``), is categorical over its values. The
study's metric names are the objective columns (``cost_usd``, ...). Each trial keeps its
``design`` as a user attribute and its ``G`` row (``<= 0`` feasible) as optuna's ``constraints``
system attribute, which optuna's samplers and ``Study.best_trials`` read; optuna-dashboard
shows it but ranks best trials without it, so a stored study gets a dashboard view beside it
(:mod:`dse.search.dashboard_view`) in which only feasible designs can be best.

With ``storage`` (any optuna URL, e.g. ``sqlite:///study.db``) and ``study`` the study persists:
running the same command again adds ``evals`` trials, and the results file covers all of the
study's trials, re-evaluated in one model call. The study remembers which problem (space file,
workload, settings) it belongs to and refuses to continue with another.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dse.errors import DseError, InputError
from dse.search.problem import Evaluation, Problem, finite_constraints, finite_objectives
from dse.search.registry import Engine, Record
from dse.space import Dimension

SAMPLERS = ("nsga2", "tpe", "random")
CONSTRAINTS_ATTR = "constraints"
DESIGN_ATTR = "design"
PROBLEM_ATTR = "dse_problem"
TARGET_ATTR = "dse_target"
"""Study attribute: the unfinished run's ``{"target": trials, "evals": N}`` (``null`` when the
last run finished), so that the same command after a kill completes that run."""


def _target(study: Any, evals: int) -> tuple[int, bool]:
    """The number of trials this run fills the study up to, and whether it resumes a killed run
    of the same ``evals`` (then its target stands); else ``evals`` more than it holds."""
    from optuna.trial import TrialState

    from dse.search.shared_study import count_live

    try:
        pending = json.loads(str(study.user_attrs.get(TARGET_ATTR, "null")))
    except ValueError:
        pending = None
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if (
        isinstance(pending, dict)
        and pending.get("evals") == evals
        and isinstance(pending.get("target"), int)
        and complete < pending["target"]
    ):
        return int(pending["target"]), True
    target = count_live(study) + evals
    study.set_user_attr(TARGET_ATTR, json.dumps({"target": target, "evals": evals}))
    return target, False


LEVEL_SUFFIX = "_level"
"""Parameters of studies made before real values were stored: ``<name>_level`` (an index)."""


def _constraints(trial: Any) -> list[float]:
    """optuna < 5 ``constraints_func``: the trial's ``G`` row (``<= 0`` feasible), stored as
    its ``constraints`` system attribute before it is told."""
    return list(trial.system_attrs[CONSTRAINTS_ATTR])


def _named_constraints() -> bool:
    """Whether this optuna reads constraints from the trial itself (optuna 5, which
    deprecates ``constraints_func``); older versions take a ``constraints_func``."""
    import optuna

    return hasattr(optuna.trial.Trial, "set_constraint")


def _evenly_spaced(values: np.ndarray) -> bool:
    if len(values) < 2:
        return True
    steps = np.diff(values)
    return bool(np.allclose(steps, steps[0], rtol=1e-9, atol=0.0) and steps[0] > 0)


def distribution(dim: Dimension) -> Any:
    """The optuna distribution of a dimension's real values (see the module's notes)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    values = dim.values
    if dim.choices or dim.labels is not None or not _evenly_spaced(values):
        return CategoricalDistribution(_choices(dim))
    # Twelve significant digits: 0.1, not 0.10000000000000009, so that optuna finds the
    # range a whole number of steps.
    low, high = (float(f"{v:.12g}") for v in (values[0], values[-1]))
    step = float(f"{values[1] - values[0]:.12g}") if len(values) > 1 else 1.0
    if all(isinstance(dim.label(i), int) for i in range(dim.levels)) and step == round(step):
        return IntDistribution(int(low), int(high), step=int(step))
    return FloatDistribution(low, high, step=step if len(values) > 1 else None)


def make_sampler(name: str, seed: int, population_size: int) -> Any:
    """An optuna sampler by name, seeded, with the model's constraints."""
    import optuna

    constraints_func = None if _named_constraints() else _constraints
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            population_size=population_size, seed=seed, constraints_func=constraints_func
        )
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints_func)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise InputError.for_argument("sampler", f"one of {list(SAMPLERS)}", name)


def _directions(problem: Problem) -> list[Any]:
    return ["maximize" if o.maximize else "minimize" for o in problem.space.objectives]


def _choices(dim: Dimension) -> list[Any]:
    return [dim.label(i) for i in range(dim.levels)]


def _level(dim: Dimension, params: dict[str, Any]) -> int:
    """The level index of a trial's value of ``dim`` (nearest level for a number)."""
    if dim.name not in params and f"{dim.name}{LEVEL_SUFFIX}" in params:
        return int(params[f"{dim.name}{LEVEL_SUFFIX}"])
    value = params[dim.name]
    if isinstance(value, str):
        return _choices(dim).index(value)
    return int(np.argmin(np.abs(dim.values - float(value))))


def set_metric_names(study: Any, problem: Problem) -> None:
    """Name the study's objectives after their columns (shown by optuna-dashboard)."""
    names = [o.name for o in problem.space.objectives]
    if getattr(study, "metric_names", None) != names:
        study.set_metric_names(names)


class OptunaEngine(Engine):
    """Runs an optuna study in batches of ``batch_size`` trials (default: the population)."""

    name = "optuna"

    def __init__(
        self,
        sampler: str | None = None,
        pop_size: int = 64,
        batch_size: int | None = None,
        storage: str | None = None,
        study: str | None = None,
        workers: int | None = None,
    ) -> None:
        self.sampler = sampler or "nsga2"
        if self.sampler not in SAMPLERS:
            raise InputError.for_argument("sampler", f"one of {list(SAMPLERS)}", self.sampler)
        if pop_size < 2:
            raise InputError.for_argument("pop_size", "a whole number >= 2", pop_size)
        self.pop_size = pop_size
        self.batch_size = batch_size or pop_size
        if self.batch_size < 1:
            raise InputError.for_argument("batch_size", "a whole number >= 1", batch_size)
        self.storage = storage
        self.study_name = study
        if workers is not None and (workers < 1 or storage is None):
            raise InputError.for_argument(
                "workers", "a whole number >= 1, with a `storage`", workers
            )
        self.workers = workers

    def run(self, problem: Problem, evals: int, seed: int, record: Record) -> dict[str, Any]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        free = self.free_dimensions(problem)
        dims = problem.space.dimensions
        kept = self._persistent_study(problem)
        name = kept.study_name if kept is not None else self._default_name(problem)
        directions = _directions(problem)
        # The sampler works on an in-memory study (one storage round trip per parameter would
        # make a database study slow); finished batches are copied to the kept study.
        study = optuna.create_study(
            study_name=name,
            sampler=make_sampler(self.sampler, seed, self.pop_size),
            directions=directions,
        )
        set_metric_names(study, problem)
        remaining = evals
        resumed = False
        if kept is not None:
            from dse.search.shared_study import count_live, fail_dead_workers_trials, record_run

            record_run(kept, problem, self.sampler, self.pop_size, self.batch_size, seed)
            fail_dead_workers_trials(kept)
            target, resumed = _target(kept, evals)
            if self.workers:
                self._run_workers(problem, kept, target, seed)
                remaining = 0
            else:
                remaining = max(target - count_live(kept), 0)
        done: list[Any] = []
        if kept is not None:
            done = kept.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            study.add_trials(done)
        if done:
            record(problem.evaluate(self._indices(problem, [t.params for t in done], free)))
        maximize = np.array([o.maximize for o in problem.space.objectives])
        while remaining > 0:
            trials = [study.ask() for _ in range(min(self.batch_size, remaining))]
            evaluation = self.evaluate_and_tell(study, problem, trials, dims, free, maximize)
            if kept is not None:
                kept.add_trials(study.get_trials(deepcopy=False)[-len(trials) :])
            if evaluation is not None:
                record(evaluation)
            remaining -= len(trials)
        if kept is not None:
            kept.set_user_attr(TARGET_ATTR, json.dumps(None))
            from dse.search.dashboard_view import update_view

            update_view(kept, problem, free)
        return {
            "sampler": self.sampler,
            "pop_size": self.pop_size,
            "batch_size": self.batch_size,
            "storage": self.storage,
            "study": name,
            "trials": len(study.trials),
            "trials_before": len(done),
            "resumed": resumed,
            "workers": self.workers,
        }

    def _run_workers(self, problem: Problem, kept: Any, target: int, seed: int) -> None:
        """Fill the stored study up to ``target`` trials with ``workers`` processes, each
        running :func:`~dse.search.shared_study.run_worker` (spawned, so nothing is inherited;
        in this process group, each dying with this process)."""
        from multiprocessing import get_context

        from dse.search.shared_study import worker_process

        assert self.storage is not None and self.workers is not None
        context = get_context("spawn")
        procs = [
            context.Process(
                target=worker_process,
                args=(self.storage, kept.study_name, target, seed + i),
                name=f"dse-worker-{i}",
            )
            for i in range(self.workers)
        ]
        try:
            for proc in procs:
                proc.start()
            for proc in procs:
                proc.join()
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
                    proc.join()
        codes = [proc.exitcode for proc in procs]
        if any(codes):
            raise InputError.for_argument("workers", "worker processes that succeed", codes)

    def _default_name(self, problem: Problem) -> str:
        return self.study_name or f"dse-{problem.space.id}-{problem.workload.id}"

    def _persistent_study(self, problem: Problem) -> Any:
        """The study in ``storage`` (created or loaded), or None without a storage."""
        import optuna

        if self.storage is None:
            return None
        space, workload = problem.space, problem.workload
        name = self._default_name(problem)
        directions = _directions(problem)
        try:
            from dse.search.shared_study import open_storage

            study = optuna.create_study(
                storage=open_storage(self.storage),
                study_name=name,
                directions=directions,
                load_if_exists=True,
            )
        except DseError:
            raise
        except (ValueError, ImportError, KeyError) as error:
            raise InputError.for_argument(
                "storage", "an optuna storage URL such as sqlite:///study.db", self.storage
            ) from error
        except Exception as error:  # storage back ends raise their own error types
            if type(error).__module__.split(".")[0] not in ("sqlalchemy", "optuna"):
                raise
            raise InputError.for_argument(
                "storage",
                f"a usable optuna storage ({error.__class__.__name__})",
                self.storage,
            ) from error
        fingerprint = problem.fingerprint()
        known = study.user_attrs.get(PROBLEM_ATTR)
        if known is None and not study.trials:
            study.set_user_attr(PROBLEM_ATTR, fingerprint)
            study.set_user_attr("dse_space", str(space.path))
            study.set_user_attr("dse_workload", workload.id)
        elif known != fingerprint:
            raise InputError.for_argument(
                "study",
                f"a study of this space and workload ({space.id}, {workload.id}) or a new name",
                f"{name!r} of {study.user_attrs.get('dse_space')}, "
                f"{study.user_attrs.get('dse_workload')} (different problem)",
            )
        if [d.name.lower() for d in study.directions] != directions:
            raise InputError.for_argument("study", f"a study with directions {directions}", name)
        set_metric_names(study, problem)
        return study

    def evaluate_and_tell(
        self,
        study: Any,
        problem: Problem,
        trials: list[Any],
        dims: Sequence[Dimension],
        free: list[int],
        maximize: np.ndarray,
        on_told: Callable[[Any], None] | None = None,
    ) -> Evaluation | None:
        """Suggest every trial's design, evaluate the batch in one model call, store each
        design and its constraints on its trial and tell the study its objectives. A trial
        another process finished meanwhile is dropped (None where every one was)."""
        from optuna.exceptions import UpdateFinishedTrialError

        trials, params = self._suggest_unfinished(trials, [dims[j] for j in free])
        if not trials:
            return None
        evaluation = problem.evaluate(self._indices(problem, params, free))
        values = np.where(maximize, -1.0, 1.0) * finite_objectives(evaluation.F)
        G = finite_constraints(evaluation.G)

        for i, trial in enumerate(trials):
            design = {dims[j].name: dims[j].label(int(evaluation.X[i, j])) for j in free}
            try:
                trial.set_user_attr(DESIGN_ATTR, json.dumps(design))
                # The list form of optuna's constraints attribute: read by every optuna
                # version's samplers and best_trials, and shown by optuna-dashboard.
                trial.storage.set_trial_system_attr(
                    trial._trial_id, CONSTRAINTS_ATTR, G[i].tolist()
                )
                study.tell(trial, values=values[i].tolist())
            except UpdateFinishedTrialError:
                # The trial was finished elsewhere, e.g. failed as stale by the study's
                # heartbeat on a loaded machine and retried: its retried copy counts instead.
                continue
            if on_told is not None:
                on_told(trial)
        return evaluation

    @classmethod
    def _suggest_unfinished(
        cls, trials: list[Any], dims: list[Dimension]
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        """The trials whose designs could be suggested, and those designs. A trial of a shared
        study can be finished by another worker while this one suggests it: failed as stale by
        the study's heartbeat when this worker's beats came late on a loaded machine, and
        retried; its retried copy counts instead, so it is dropped here."""
        from optuna.exceptions import UpdateFinishedTrialError

        kept: list[Any] = []
        params: list[dict[str, Any]] = []
        for trial in trials:
            try:
                params.append(cls._suggest(trial, dims))
            except UpdateFinishedTrialError:
                continue
            kept.append(trial)
        return kept, params

    @staticmethod
    def _suggest(trial: Any, dims: list[Dimension]) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, IntDistribution

        params: dict[str, Any] = {}
        for dim in dims:
            found = distribution(dim)
            if isinstance(found, CategoricalDistribution):
                params[dim.name] = trial.suggest_categorical(dim.name, found.choices)
            elif isinstance(found, IntDistribution):
                params[dim.name] = trial.suggest_int(
                    dim.name, found.low, found.high, step=found.step
                )
            else:
                params[dim.name] = trial.suggest_float(
                    dim.name, found.low, found.high, step=found.step
                )
        return params

    @staticmethod
    def _indices(problem: Problem, params: list[dict[str, Any]], free: list[int]) -> np.ndarray:
        """Trial parameters → index rows of shape ``(len(params), d)``."""
        X = np.zeros((len(params), problem.n_var), dtype=np.int64)
        for j in free:
            dim = problem.space.dimensions[j]
            X[:, j] = [_level(dim, p) for p in params]
        return X
