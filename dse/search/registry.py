"""Search engines behind one small interface, chosen by name from a registry.

An engine proposes batches of index rows, has each batch evaluated by the :class:`Problem` in
one vectorized call, and hands every evaluated batch to ``record``. Factories import their
optimizer library only when called, so the command line starts fast.
"""

from __future__ import annotations

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


def _pymoo(**options: Any) -> Engine:
    from dse.search.pymoo_engine import PymooEngine

    return PymooEngine(**options)


def _optuna(**options: Any) -> Engine:
    from dse.search.optuna_engine import OptunaEngine

    return OptunaEngine(**options)


ENGINES: dict[str, Callable[..., Engine]] = {"pymoo": _pymoo, "optuna": _optuna}
"""Engine name → factory taking the engine's options as keywords."""


def register_engine(name: str, factory: Callable[..., Engine]) -> None:
    """Make ``factory`` available as ``dse search --engine NAME``."""
    ENGINES[name] = factory


def engine_names() -> list[str]:
    return sorted(ENGINES)


def create_engine(name: str, **options: Any) -> Engine:
    """The engine called ``name`` built with ``options``; unknown names are an InputError."""
    factory = ENGINES.get(name)
    if factory is None:
        raise InputError("--engine", "", f"one of {engine_names()}", name)
    return factory(**options)
