"""dse: design-space exploration of AI accelerators for training large language models.

The Python API (the command line is a thin shell over it)::

    import dse

    h100 = dse.evaluate("h100-sxm", "llama3.1-70b", num_chips=4096)
    print(h100.training_days, h100.cost_usd, h100.plan)
    frame = dse.sweep("accelerator", "llama3.1-70b", method="random", samples=3000, seed=1)
    front = dse.pareto(frame)

Bad input raises :class:`InputError` (a ``ValueError``) naming the argument, the rule and the
value given.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from dse._version import __version__
from dse.api import (
    Evaluation,
    evaluate,
    load_chip,
    load_results,
    load_space,
    load_workload,
    pareto,
    robust,
    search,
    sensitivity,
    sweep,
)
from dse.errors import DseError, InputError, NotFoundError

__all__ = [
    "DseError",
    "Evaluation",
    "InputError",
    "NotFoundError",
    "__version__",
    "evaluate",
    "load_chip",
    "load_results",
    "load_space",
    "load_workload",
    "pareto",
    "robust",
    "search",
    "sensitivity",
    "sweep",
]


class _Package(types.ModuleType):
    """The ``dse`` module, whose API functions ``search`` and ``pareto`` share their names with
    the subpackage ``dse.search`` and the module ``dse.pareto``: importing those (which binds
    them as attributes of their parent) must not replace the functions. The submodules stay in
    ``sys.modules`` under their full names, so ``import dse.search.registry`` and
    ``from dse.pareto import nondominated`` work as ever."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in __all__ and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
