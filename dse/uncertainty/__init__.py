"""Uncertainty of the model's constants: their distributions, global sensitivity and robust
fronts (docs/sensitivity.md).

- :mod:`~dse.uncertainty.constants`: chips/technology/uncertainty.toml, validated, as
  :class:`Uncertain` constants named ``tech.<table>.<key>`` / ``settings.<key>``.
- :mod:`~dse.uncertainty.perturb`: the model on rows that each carry their own draw.
- :mod:`~dse.uncertainty.sensitivity`: Sobol and Morris indices (SALib).
- :mod:`~dse.uncertainty.robust`: ``p_pareto`` and objective quantiles of a results file.

The public entry points are :func:`dse.sensitivity` and :func:`dse.robust`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Uncertain", "evaluate_drawn", "load_uncertainty", "uncertain_constants"]

_HOMES = {
    "Uncertain": "dse.uncertainty.constants",
    "load_uncertainty": "dse.uncertainty.constants",
    "uncertain_constants": "dse.uncertainty.constants",
    "evaluate_drawn": "dse.uncertainty.perturb",
}


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (so that the command line's help imports
    neither scipy nor the model through this package)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'dse.uncertainty' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
