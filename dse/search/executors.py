"""Executors: where a sweep's chunks are evaluated, behind one small interface.

An executor maps a task function over a list of items (index ranges of the space), passing
each call a ``shared`` object that is sent once (the sweep's recipe and plan), and yields the
results in item order, keeping at most a bounded window of tasks in flight. Executors by name:

* ``inprocess``: in this process, one item after another (the default; no extra processes);
* ``processes``: a pool of ``jobs`` spawned processes on this machine (``jobs=N``);
* ``dask``: Dask distributed, either a local cluster of ``workers`` processes (``workers=N``)
  or a running cluster at ``scheduler`` (``scheduler="tcp://HOST:PORT"``). A task lost with a
  killed worker is rescheduled by Dask on another worker; the shared object, if it was lost
  too, is sent again.
"""

from __future__ import annotations

import ctypes
import inspect
import itertools
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from dse.errors import InputError
from dse.lifeline import die_with_parent

Task = Callable[[Any, Any], Any]


class Executor(ABC):
    """Runs ``task(shared, item)`` for each item; results come back in item order."""

    name = ""

    @abstractmethod
    def map(self, task: Task, shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        """``task(shared, item)`` for each item, in order."""

    def close(self) -> None:  # noqa: B027 (nothing to release by default)
        """Release the executor's processes or connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class InProcess(Executor):
    """Evaluates in the calling process."""

    name = "inprocess"

    def map(self, task: Task, shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            yield task(shared, item)


_SHARED: dict[str, Any] = {}


def _init_process(shared: Any, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    _SHARED["shared"] = shared


def _call_in_process(task: Task, item: Any) -> Any:
    return task(_SHARED["shared"], item)


class Processes(Executor):
    """A pool of ``jobs`` spawned processes; ``shared`` is sent once to each process."""

    name = "processes"

    def __init__(self, jobs: int = 2) -> None:
        if jobs < 1:
            raise InputError.for_argument("jobs", "a whole number >= 1", jobs)
        self.jobs = jobs

    def map(self, task: Task, shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        with ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=get_context("spawn"),
            initializer=_init_process,
            initargs=(shared, os.getpid()),
        ) as pool:
            queue = iter(items)
            pending: list[Future[Any]] = [
                pool.submit(_call_in_process, task, item)
                for item in itertools.islice(queue, 2 * self.jobs)
            ]
            while pending:
                done = pending.pop(0).result()
                for item in itertools.islice(queue, 1):
                    pending.append(pool.submit(_call_in_process, task, item))
                yield done


RESCATTERS = 3
"""How many times one ``Dask.map`` sends its shared object again after losing it with workers."""


class Dask(Executor):
    """Dask distributed: a ``LocalCluster`` of ``workers`` processes (one thread each) or the
    running cluster whose scheduler listens at ``scheduler``."""

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        if (workers is None) == (scheduler is None):
            raise InputError.for_argument(
                "workers", "either `workers` or `scheduler`", (workers, scheduler)
            )
        if workers is not None and workers < 1:
            raise InputError.for_argument("workers", "a whole number >= 1", workers)
        from dse.extras import require

        require("dask", "a Dask executor (workers or scheduler)")
        from distributed import Client, LocalCluster

        from dse.search._dask_lifeline import Lifeline

        self.cluster: Any = None
        try:
            if workers is not None:
                self.cluster = LocalCluster(
                    n_workers=workers,
                    processes=True,
                    threads_per_worker=1,
                    dashboard_address=":0",
                )
                self.client = Client(self.cluster)
                self.client.register_plugin(Lifeline(os.getpid()), name="dse-lifeline")
            else:
                self.client = Client(scheduler, timeout="20s")
        except OSError as error:
            raise InputError.for_argument(
                "scheduler", "the address of a running Dask scheduler", scheduler
            ) from error
        self.window = 2 * max(1, self._threads())

    def _threads(self) -> int:
        return sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())

    def map(self, task: Task, shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        from distributed.client import FutureCancelledError

        remote = self.client.scatter(shared, broadcast=True, hash=False)

        def submit(item: Any) -> tuple[Any, Any]:
            return item, self.client.submit(task, remote, item, pure=False)

        queue = iter(items)
        pending = [submit(item) for item in itertools.islice(queue, self.window)]
        rescatters = 0
        while pending:
            try:
                done = pending[0][1].result()
            except FutureCancelledError:
                # The scattered ``shared`` was lost with a killed worker, and the tasks that
                # need it with it (Dask cannot recompute scattered data): send it again and
                # resubmit what is in flight.
                rescatters += 1
                if rescatters > RESCATTERS:
                    raise
                remote = self.client.scatter(shared, broadcast=True, hash=False)
                pending = [submit(item) for item, _ in pending]
                continue
            pending.pop(0)
            pending.extend(submit(item) for item in itertools.islice(queue, 1))
            yield done

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


_MALLOC_TUNED: list[bool] = []


def tune_malloc() -> None:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` in a worker process (Linux, glibc).

    With it glibc maps and unmaps every large array afresh, which makes the model about 3×
    slower; fixed mmap and trim thresholds of 64 and 128 MiB restore in-process speed.
    """
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED.append(True)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


EXECUTORS: dict[str, Callable[..., Executor]] = {
    "inprocess": InProcess,
    "processes": Processes,
    "dask": Dask,
}


def executor_names() -> list[str]:
    """The registered executors' names."""
    return sorted(EXECUTORS)


def make_executor(name: str, **options: Any) -> Executor:
    """The executor registered as ``name``, built with ``options``."""
    try:
        factory = EXECUTORS[name]
    except KeyError:
        raise InputError.for_argument("executor", f"one of {executor_names()}", name) from None
    return factory(**options)


def executor_for(
    jobs: int = 1,
    workers: int | None = None,
    scheduler: str | None = None,
    name: str | None = None,
) -> Executor:
    """The executor called ``name`` with the options it takes among ``jobs``, ``workers`` and
    ``scheduler``; without a name, the one those options ask for (at most one of them)."""
    if name is not None:
        given = {"jobs": jobs if jobs != 1 else None, "workers": workers, "scheduler": scheduler}
        factory = EXECUTORS.get(name)
        takes = set(inspect.signature(factory).parameters) if factory is not None else set()
        for option, value in given.items():
            if value is not None and option not in takes:
                expected = f"only with an executor that takes it (not {name!r})"
                raise InputError.for_argument(option, expected, value)
        return make_executor(name, **{k: v for k, v in given.items() if v is not None})
    if workers is not None and scheduler is not None:
        raise InputError.for_argument(
            "workers", "either `workers` or `scheduler`, not both", workers
        )
    if (workers is not None or scheduler is not None) and jobs != 1:
        raise InputError.for_argument("jobs", "no `jobs` with `workers` or `scheduler`", jobs)
    if workers is not None or scheduler is not None:
        return make_executor("dask", workers=workers, scheduler=scheduler)
    if jobs > 1:
        return make_executor("processes", jobs=jobs)
    if jobs < 1:
        raise InputError.for_argument("jobs", "a whole number >= 1", jobs)
    return make_executor("inprocess")
