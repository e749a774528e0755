"""pymoo engine: NSGA-II (default), NSGA-III, U-NSGA-III, SMS-EMOA or SPEA2 on the index encoding.

The space's level indices are integer variables ``0 .. levels-1``; SBX crossover and polynomial
mutation work on them as reals and a rounding repair brings them back to integers (pymoo's
mixed-integer recipe). The problem is vectorized: pymoo hands over a whole population and the
model evaluates it in one call; constraints go to pymoo as ``G`` (``<= 0`` feasible).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pymoo.core.problem import Problem as PymooProblem
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from dse.errors import InputError
from dse.search.problem import Problem, finite_constraints, finite_objectives
from dse.search.registry import Engine, Record

ALGORITHMS = ("nsga2", "nsga3", "unsga3", "sms-emoa", "spea2")
CROSSOVER_ETA = 3.0
"""SBX distribution index: small, so children land several levels away from their parents."""
MUTATION_ETA = 3.0
"""Polynomial mutation distribution index (pymoo's mixed-integer example uses 3)."""


class _Adapter(PymooProblem):
    """The model as a vectorized pymoo problem over the free dimensions' level indices."""

    def __init__(self, problem: Problem, free: list[int], n_constr: int, record: Record) -> None:
        self.problem, self.free, self.record = problem, free, record
        upper = problem.space.radices[free] - 1
        super().__init__(
            n_var=len(free),
            n_obj=len(problem.space.objectives),
            n_ieq_constr=n_constr,
            xl=np.zeros(len(free)),
            xu=upper.astype(float),
            vtype=int,
        )

    def _evaluate(self, x: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        X = np.zeros((x.shape[0], self.problem.n_var), dtype=np.int64)
        X[:, self.free] = np.clip(np.rint(x), self.xl, self.xu).astype(np.int64)
        evaluation = self.problem.evaluate(X)
        self.record(evaluation)
        out["F"] = finite_objectives(evaluation.F)
        out["G"] = finite_constraints(evaluation.G)


def _reference_directions(n_obj: int, pop_size: int) -> np.ndarray:
    """Das-Dennis directions, the most partitions whose count fits in ``pop_size``."""
    from pymoo.util.ref_dirs import get_reference_directions

    partitions = 1
    while math.comb(partitions + 1 + n_obj - 1, n_obj - 1) <= pop_size:
        partitions += 1
    return np.asarray(get_reference_directions("das-dennis", n_obj, n_partitions=partitions))


def make_algorithm(name: str, pop_size: int, n_obj: int) -> Any:
    """A pymoo algorithm with integer operators; ``name`` one of :data:`ALGORITHMS`."""
    operators: dict[str, Any] = {
        "sampling": IntegerRandomSampling(),
        "crossover": SBX(prob=1.0, eta=CROSSOVER_ETA, vtype=float, repair=RoundingRepair()),
        "mutation": PM(prob=1.0, eta=MUTATION_ETA, vtype=float, repair=RoundingRepair()),
        "eliminate_duplicates": True,
    }
    if name == "nsga2":
        from pymoo.algorithms.moo.nsga2 import NSGA2

        return NSGA2(pop_size=pop_size, **operators)
    if name in ("nsga3", "unsga3"):
        from pymoo.algorithms.moo.nsga3 import NSGA3
        from pymoo.algorithms.moo.unsga3 import UNSGA3

        ref_dirs = _reference_directions(n_obj, pop_size)
        kind = NSGA3 if name == "nsga3" else UNSGA3
        return kind(ref_dirs=ref_dirs, pop_size=max(pop_size, len(ref_dirs)), **operators)
    if name == "sms-emoa":
        from pymoo.algorithms.moo.sms import SMSEMOA

        return SMSEMOA(pop_size=pop_size, **operators)
    if name == "spea2":
        from pymoo.algorithms.moo.spea2 import SPEA2

        return SPEA2(pop_size=pop_size, **operators)
    raise InputError.for_argument("algorithm", f"one of {list(ALGORITHMS)}", name)


class PymooEngine(Engine):
    """Runs a pymoo algorithm for exactly ``evals`` evaluations (the last generation cut short)."""

    name = "pymoo"

    def __init__(self, algorithm: str | None = None, pop_size: int = 64) -> None:
        self.algorithm = algorithm or "nsga2"
        if self.algorithm not in ALGORITHMS:
            raise InputError.for_argument("algorithm", f"one of {list(ALGORITHMS)}", self.algorithm)
        if pop_size < 2:
            raise InputError.for_argument("pop_size", "a whole number >= 2", pop_size)
        self.pop_size = pop_size

    def run(self, problem: Problem, evals: int, seed: int, record: Record) -> dict[str, Any]:
        free = self.free_dimensions(problem)
        n_constr = problem.evaluate(np.zeros((1, problem.n_var), dtype=np.int64)).G.shape[1]
        adapter = _Adapter(problem, free, n_constr, record)
        algorithm = make_algorithm(self.algorithm, self.pop_size, adapter.n_obj)
        algorithm.setup(adapter, termination=NoTermination(), seed=seed, verbose=False)
        # Ask and tell, so that the last generation can be cut to the budget exactly.
        evaluated = 0
        while evaluated < evals:
            infills = algorithm.ask()
            if infills is None or len(infills) == 0:
                break  # nothing new left to propose (a tiny space, all of it seen)
            infills = infills[: evals - evaluated]
            algorithm.evaluator.eval(adapter, infills)
            algorithm.tell(infills=infills)
            evaluated += len(infills)
        return {"algorithm": self.algorithm, "pop_size": self.pop_size}
