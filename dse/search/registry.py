"""Search engines behind one small interface, chosen by name from a registry.

An engine proposes batches of index rows, has each batch evaluated by the :class:`Problem` in
one vectorized call, and hands every evaluated batch to ``record``. Factories import their
optimizer library only when called, so the command line starts fast.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from dse.errors import InputError
from dse.search.problem import Evaluation, Problem

Record = Callable[[Evaluation], None]


class Engine(ABC):
    """A multi-objective search engine over a space's index encoding."""

    name: str = ""

    @abstractmethod
    def run(self, problem: Problem, evals: int, seed: int, record: Record) -> dict[str, Any]:
        """Spend ``evals`` evaluations (engines may round up to a whole batch) with ``seed``.

        Every evaluated batch goes to ``record``, in evaluation order. Returns provenance fields
        (algorithm, its settings) for the results file.
        """

    @staticmethod
    def free_dimensions(problem: Problem) -> list[int]:
        """Indices of the dimensions with two or more levels (the others stay at level 0)."""
        free = [j for j, dim in enumerate(problem.space.dimensions) if dim.levels > 1]
        if not free:
            raise InputError(
                problem.space.path, "dimensions", "a dimension with two or more levels", "none"
            )
        return free


def _pymoo(*, algorithm: str | None = None, pop_size: int = 64) -> Engine:
    from dse.search.pymoo_engine import PymooEngine

    return PymooEngine(algorithm=algorithm, pop_size=pop_size)


def _optuna(
    *,
    sampler: str | None = None,
    pop_size: int = 64,
    batch_size: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    workers: int | None = None,
) -> Engine:
    from dse.search.optuna_engine import OptunaEngine

    return OptunaEngine(
        sampler=sampler,
        pop_size=pop_size,
        batch_size=batch_size,
        storage=storage,
        study=study,
        workers=workers,
    )


ENTRY_POINT_GROUP = "dse.engines"
"""Entry-point group through which installed packages add engines: each entry point's name is
the engine's name and its object an :class:`Engine` subclass or a factory returning one."""

ENGINES: dict[str, Callable[..., Engine]] = {"pymoo": _pymoo, "optuna": _optuna}
"""Engine name → factory taking the engine's options as keywords (entry points come on top)."""


def register_engine(name: str, factory: Callable[..., Engine]) -> None:
    """Make ``factory`` (an :class:`Engine` subclass or a function returning an engine)
    available as the engine ``name`` of :func:`dse.search` and the command line."""
    ENGINES[name] = factory


def _entry_points() -> dict[str, Any]:
    """The installed ``dse.engines`` entry points by name (not loaded)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def engine_names() -> list[str]:
    """Every engine name: the registry's and those of installed entry points."""
    return sorted(set(ENGINES) | set(_entry_points()))


def engine_factory(name: str) -> Callable[..., Engine]:
    """The factory of engine ``name`` (an entry point is loaded on first use)."""
    factory = ENGINES.get(name)
    if factory is None:
        point = _entry_points().get(name)
        if point is None:
            raise InputError.for_argument("engine", f"one of {engine_names()}", name)
        factory = point.load()
        ENGINES[name] = factory
    return factory


def engine_options(name: str) -> list[str] | None:
    """The keyword options engine ``name`` takes (None: any keyword)."""
    try:
        parameters = inspect.signature(engine_factory(name)).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keywords = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in keywords]


def create_engine(name: str, **options: Any) -> Engine:
    """The engine called ``name`` built with ``options``.

    Unknown names, and options the engine does not take, are an :class:`InputError` naming
    the argument.
    """
    factory = engine_factory(name)
    accepted = engine_options(name)
    if accepted is not None:
        for option, value in options.items():
            if option not in accepted:
                takes = ", ".join(accepted) or "no options"
                raise InputError.for_argument(
                    option,
                    f"only with an engine that takes it (engine {name!r} takes {takes})",
                    value,
                )
    return factory(**options)
