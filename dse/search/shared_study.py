"""Shared optuna studies: several worker processes, on one or many machines, add trials to one
study in a storage until it holds exactly the requested number.

Storages: any optuna database URL (``postgresql+psycopg://…``, ``sqlite:///…``), opened with
heartbeats so a killed worker's RUNNING trials are failed and retried (re-queued with the same
parameters) by the next worker; or ``journal:///path/file.log``, optuna's journal file storage
(one machine), where each trial records its worker (host and pid) and a worker starting on
that host fails and re-queues the RUNNING trials of workers no longer alive.

Exact totals: a worker claims one trial at a time by asking the study (the storage numbers
trials uniquely), then counts the live trials (COMPLETE, RUNNING, WAITING) numbered before its
own; a claim past the target is failed at once (user attribute ``dse_excess``) and the worker
stops. So the study ends with exactly ``total`` COMPLETE trials, and none left RUNNING.

The study's user attributes name everything a worker needs (the problem description, sampler,
population and batch sizes, seed): ``run_worker(storage, study)`` joins it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dse.errors import InputError
from dse.files import check_input, exists

if TYPE_CHECKING:
    import optuna

HEARTBEAT_S = int(os.environ.get("DSE_HEARTBEAT_S", "5"))
GRACE_S = int(os.environ.get("DSE_GRACE_S", "15"))  # silence after which a trial is stale
RETRIES = 3
SETTINGS_ATTR = "dse_run"
DESCRIBE_ATTR = "dse_describe"
WORKER_ATTR = "dse_worker"
EXCESS_ATTR = "dse_excess"


def open_storage(url: str) -> Any:
    """An optuna storage for ``url``: ``journal:///file.log`` or a database URL."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    quiet_optuna()
    _check_storage_file(url)
    if url.startswith("journal://"):
        path = url[len("journal://") :]
        if not path.startswith("/"):
            raise InputError.for_argument("storage", "journal:///absolute/path/file.log", url)
        return JournalStorage(JournalFileBackend(path))
    if url.startswith("postgresql"):
        from dse.extras import require

        require("postgres", "a PostgreSQL optuna storage")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, **_retry_callback()
        )
    except (ValueError, ImportError, KeyError) as error:
        raise InputError.for_argument(
            "storage", "an optuna storage URL such as sqlite:///study.db", url
        ) from error
    except Exception as error:  # database drivers raise their own error types
        if type(error).__module__.split(".")[0] not in ("sqlalchemy", "optuna", "psycopg"):
            raise
        raise InputError.for_argument(
            "storage", f"a usable optuna storage ({error.__class__.__name__})", url
        ) from error


def _check_storage_file(url: str) -> None:
    """Refuse a journal or SQLite storage whose file exists but is not a regular file (a FIFO
    would block optuna forever)."""
    for prefix in ("journal://", "sqlite:///"):
        if url.startswith(prefix):
            path = url[len(prefix) :].split("?")[0]
            if path and path != ":memory:" and exists(path):
                check_input(path, sys.maxsize, "a regular file for the optuna storage")


def quiet_optuna() -> None:
    """Silence optuna's notes on experimental or renamed heartbeat features (used as meant)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*deprecated in v4.9.0.*")
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def _retry_callback() -> dict[str, Any]:
    """Retry (re-queue) a trial whose worker stopped beating, up to :data:`RETRIES` times."""
    from optuna import storages

    retry = getattr(storages, "RetryHeartbeatStaleTrialCallback", None)
    if retry is not None:  # optuna >= 4.9
        return {"heartbeat_stale_trial_callback": retry(max_retry=RETRIES)}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=RETRIES)}


def live_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)


def count_live(study: Any) -> int:
    """Trials that count towards the total: COMPLETE, RUNNING or WAITING."""
    return len(study.get_trials(deepcopy=False, states=live_states()))


def record_run(study: Any, problem: Any, sampler: str, pop: int, batch: int, seed: int) -> None:
    """Name in the study's user attributes what a joining worker needs."""
    described = problem.describe()
    described["space"] = str(Path(problem.space.path).resolve())
    study.set_user_attr(DESCRIBE_ATTR, json.dumps(described, sort_keys=True))
    run = {"sampler": sampler, "pop_size": pop, "batch_size": batch, "seed": seed}
    study.set_user_attr(SETTINGS_ATTR, json.dumps(run, sort_keys=True))


def problem_of(study: Any, storage_url: str) -> tuple[Any, dict[str, Any]]:
    """The problem and run settings a study recorded (see :func:`record_run`)."""
    from dse.catalog.workloads import load_workload
    from dse.search.problem import Problem
    from dse.settings import load_settings
    from dse.space import load_space

    try:
        described = json.loads(study.user_attrs[DESCRIBE_ATTR])
        run = json.loads(study.user_attrs[SETTINGS_ATTR])
    except KeyError:
        raise InputError.for_argument(
            "study", "a study started by an optuna search with a storage", study.study_name
        ) from None
    space = load_space(described["space"])
    if space.sha256 != described["space_sha256"]:
        raise InputError(
            described["space"], "", "the space file the study started with", "a new version"
        )
    workload = load_workload(described["workload"]).with_changes(
        precision=described["precision"], tokens=float(described["tokens"])
    )
    settings = load_settings().with_overrides(**described["settings"])
    return Problem(space, workload, settings), run


class _Heartbeat:
    """Records heartbeats of this worker's RUNNING trials (database storages only)."""

    def __init__(self, storage: Any) -> None:
        from optuna.storages._heartbeat import BaseHeartbeat

        self.storage = storage if isinstance(storage, BaseHeartbeat) else None
        self.trials: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        if self.storage is not None:
            self._thread.start()

    def _beat(self) -> None:
        storage = self.storage
        while storage is not None and not self._stop.wait(HEARTBEAT_S):
            for trial_id in list(self.trials):
                storage.record_heartbeat(trial_id)

    def add(self, trial_id: int) -> None:
        self.trials.add(trial_id)
        if self.storage is not None:
            self.storage.record_heartbeat(trial_id)

    def stop(self) -> None:
        self._stop.set()


def _settle(study: Any, target: int) -> bool:
    """At the target: whether some live trial belonged to a dead worker (now failed and
    re-queued, so there is work again). Waits while a trial names no worker yet, up to
    :data:`GRACE_S`, since one from a killed worker must be retried too."""
    import time

    from optuna.trial import TrialState

    deadline = time.monotonic() + GRACE_S + 1
    while True:
        if fail_dead_workers_trials(study, GRACE_S):
            return True
        complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if complete >= target or not ownerless_running(study) or time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_workers_trials(study: Any, ownerless_after_s: float | None = None) -> int:
    """Fail and re-queue (same parameters) the RUNNING trials whose worker died: its recorded
    pid on this host is gone, or (with ``ownerless_after_s``) it never recorded itself and the
    trial started longer ago than that. Any storage (SQLite, PostgreSQL, journal); returns the
    number failed."""
    import datetime

    from optuna.trial import TrialState

    host = socket.gethostname()
    now = datetime.datetime.now()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get(WORKER_ATTR, ""))
        if owner:
            name, _, pid = owner.rpartition(":")
            if name != host or not pid.isdigit() or _alive(int(pid)):
                continue
        else:
            started = trial.datetime_start
            if ownerless_after_s is None or started is None:
                continue
            if (now - started).total_seconds() < ownerless_after_s:
                continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except RuntimeError:  # finished (or failed by another worker) meanwhile
            continue
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={"dse_retry_of": trial.number})
        failed += 1
    return failed


def ownerless_running(study: Any) -> int:
    """RUNNING trials that name no worker yet (claimed a moment ago, or by a killed worker)."""
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return sum(1 for t in running if WORKER_ATTR not in t.user_attrs)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host. A zombie (killed, not yet reaped by its
    parent; a container's init may never reap it) is dead: its trials must be retried."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs (macOS): signal 0 is all there is
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def run_worker(
    storage_url: str,
    study_name: str,
    *,
    evals: int | None = None,
    total: int | None = None,
    seed: int | None = None,
) -> int:
    """Join the study and add trials, in batches, until it holds ``total`` trials (or this
    worker added ``evals``); returns the number this worker completed."""
    import optuna

    from dse.search.optuna_engine import (
        OptunaEngine,
        _directions,
        make_sampler,
    )

    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise InputError.for_argument(
            "study", "the name of a study in the storage", study_name
        ) from None
    problem, run = problem_of(study, storage_url)
    if evals is None and total is None:
        raise InputError.for_argument("total", "`evals` or `total` (a whole number >= 1)", None)
    target = total if total is not None else count_live(study) + int(evals or 0)
    if evals is not None and total is not None:
        target = min(total, count_live(study) + evals)
    worker_seed = run["seed"] + os.getpid() if seed is None else seed
    study.sampler = make_sampler(run["sampler"], worker_seed, run["pop_size"])
    if [d.name.lower() for d in study.directions] != _directions(problem):
        raise InputError.for_argument("study", "a study of this problem's objectives", study_name)
    engine = OptunaEngine(run["sampler"], run["pop_size"], run["batch_size"])
    free = engine.free_dimensions(problem)
    dims = problem.space.dimensions
    maximize = np.array([o.maximize for o in problem.space.objectives])
    heart = _Heartbeat(storage)
    fail_dead_workers_trials(study, GRACE_S)
    me = _worker_id()
    done = 0
    try:
        while True:
            if heart.storage is not None:
                optuna.storages.fail_stale_trials(study)
            trials = _ask_batch(study, engine.batch_size, heart, me, target)
            if not trials:
                if _settle(study, target):
                    continue
                break
            engine.evaluate_and_tell(
                study,
                problem,
                trials,
                dims,
                free,
                maximize,
                on_told=lambda trial: heart.trials.discard(trial._trial_id),
            )
            done += len(trials)
            if evals is not None and done >= evals:
                break
    finally:
        heart.stop()
    return done


def _ask_batch(
    study: optuna.Study, size: int, heart: _Heartbeat, me: str, target: int
) -> list[optuna.trial.Trial]:
    """Up to ``size`` new trials of this worker (``me``), none beyond the study's ``target``:
    a trial asked while other workers filled the study is failed as excess, and ends the batch.
    """
    from optuna.trial import TrialState

    trials = []
    for _ in range(size):
        if count_live(study) >= target:
            break
        trial = study.ask()
        heart.add(trial._trial_id)
        trial.set_user_attr(WORKER_ATTR, me)
        before = [
            t
            for t in study.get_trials(deepcopy=False, states=live_states())
            if t.number < trial.number
        ]
        if len(before) >= target:
            trial.set_user_attr(EXCESS_ATTR, True)
            study.tell(trial, state=TrialState.FAIL)
            heart.trials.discard(trial._trial_id)
            break
        trials.append(trial)
    return trials


def worker_process(storage_url: str, study_name: str, total: int, seed: int) -> None:
    """Body of a worker process started by the optuna engine: :func:`run_worker` until the
    study holds ``total`` trials; a :class:`~dse.errors.DseError` becomes one line on stderr
    and exit status 2. The process dies with the one that started it
    (:func:`dse.lifeline.die_with_parent`)."""
    from dse.errors import DseError
    from dse.lifeline import die_with_parent

    die_with_parent()
    try:
        run_worker(storage_url, study_name, total=total, seed=seed)
    except DseError as error:
        print(f"dse worker: error: {error}", file=sys.stderr)
        sys.exit(2)
