"""A Dask worker plugin (its own module, so that distributed is imported only when used)."""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from dse.lifeline import die_with_parent


class Lifeline(WorkerPlugin):
    """A local cluster's worker processes die with the ``dse`` process (``parent_pid``)."""

    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid

    def setup(self, worker: Any) -> None:
        die_with_parent(self.parent_pid)
