"""Optional features and the install extras that bring their packages.

The core install (``pip install dse``) evaluates, sweeps and searches (pymoo and optuna with
in-memory, SQLite or journal studies) and draws PNG/SVG/PDF plots. Dask executors, PostgreSQL
studies and interactive HTML plots need an extra each; ``dse[all]`` installs them all.
"""

from __future__ import annotations

import importlib

from dse.errors import MissingExtraError

EXTRAS = {"dask": "distributed", "postgres": "psycopg", "html": "plotly"}
"""Install extra → the module whose presence it guarantees."""


def require(extra: str, purpose: str) -> None:
    """Raise :class:`~dse.errors.MissingExtraError` naming ``extra`` unless its module imports;
    ``purpose`` says what needed it (``"an interactive HTML plot"``)."""
    module = EXTRAS[extra]
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(extra, purpose, module) from None
