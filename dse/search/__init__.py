"""Search over design spaces: sweeps (grid, random, Latin hypercube) and optimizer engines.

Every method works on a space's integer index encoding and evaluates whole batches through
:class:`Problem`; engines (pymoo, optuna) sit behind :class:`Engine` and a name → factory
registry.
"""

from __future__ import annotations

from dse.search._search import SearchSummary, run_search
from dse.search.problem import Evaluation, Problem
from dse.search.registry import ENGINES, Engine, create_engine, engine_names, register_engine
from dse.search.sweep import METHODS, SweepSummary, run_sweep

__all__ = [
    "ENGINES",
    "METHODS",
    "Engine",
    "Evaluation",
    "Problem",
    "SearchSummary",
    "SweepSummary",
    "create_engine",
    "engine_names",
    "register_engine",
    "run_search",
    "run_sweep",
]
