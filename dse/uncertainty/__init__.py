"""Uncertainty of the model's constants: their distributions, global sensitivity and robust
fronts (docs/sensitivity.md).

- :mod:`~dse.uncertainty.constants`: chips/technology/uncertainty.toml, validated, as
  :class:`Uncertain` constants named ``tech.<table>.<key>`` / ``settings.<key>``.
- :mod:`~dse.uncertainty.perturb`: the model on rows that each carry their own draw.
- :mod:`~dse.uncertainty.sensitivity`: Sobol and Morris indices (SALib).
- :mod:`~dse.uncertainty.robust`: ``p_pareto`` and objective quantiles of a results file.

The public entry points are :func:`dse.sensitivity` and :func:`dse.robust`.
"""

from dse.uncertainty.constants import Uncertain, load_uncertainty, uncertain_constants
from dse.uncertainty.perturb import evaluate_drawn

__all__ = ["Uncertain", "evaluate_drawn", "load_uncertainty", "uncertain_constants"]
