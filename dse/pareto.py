"""Pareto sets and hypervolume, by moocore (never hand-written).

Objective matrices here are *to minimize*, shape ``(n, k)``: maximized objectives arrive negated
(see :func:`dse.space.objective_matrix`). "Non-dominated" keeps ties: a row is on the front when
no other row is at least as good in every objective and better in one, so duplicates of a front
point are all marked, and the result does not depend on row order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import moocore
import numpy as np

from dse.designs import FloatArray
from dse.units import unit_of

if TYPE_CHECKING:
    import pandas as pd

    from dse.space import Objective

REFERENCE_MARGIN = 0.1
"""Default hypervolume reference: 10 % beyond the worst value of each objective (× 1.1 for a
positive objective to minimize)."""


def nondominated(F: np.ndarray, feasible: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of shape ``(n,)``: rows of ``F`` (n, k) not dominated by any feasible row.

    Only ``feasible`` rows (all when None) with finite objectives can be on the front.
    """
    F = np.asarray(F, dtype=np.float64)
    mask = np.all(np.isfinite(F), axis=1)
    if feasible is not None:
        mask &= np.asarray(feasible, dtype=bool)
    out = np.zeros(F.shape[0], dtype=bool)
    if mask.any():
        out[np.flatnonzero(mask)] = moocore.is_nondominated(F[mask], keep_weakly=True)
    return out


def reference_point(F: np.ndarray) -> FloatArray:
    """The worst value of each objective over the rows of ``F`` plus 10 % of its magnitude."""
    F = np.asarray(F, dtype=np.float64)
    worst = np.max(F, axis=0)
    return worst + REFERENCE_MARGIN * np.abs(worst)


def hypervolume(F: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume dominated by the rows of ``F`` (n, k) up to ``reference`` (k,); 0 when empty.

    Units are the product of the objectives' units (e.g. USD × MWh × days).
    """
    F = np.asarray(F, dtype=np.float64)
    if F.shape[0] == 0:
        return 0.0
    return float(moocore.hypervolume(F, ref=np.asarray(reference, dtype=np.float64)))


class ParetoFront:
    """A running Pareto set over a stream of batches, memory bounded by the front's size.

    Holds the front's objectives ``F`` (f, k), the global row ``ids`` (f,) and, optionally, a
    payload of columns (name → array of shape ``(f,)``) for each front row. Dominance is
    transitive, so filtering batch by batch gives the front of the whole stream.
    """

    def __init__(self, k: int) -> None:
        self.F: FloatArray = np.empty((0, k))
        self.ids: np.ndarray = np.empty(0, dtype=np.int64)
        self.payload: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def update(
        self,
        F: np.ndarray,
        ids: np.ndarray,
        feasible: np.ndarray,
        payload: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Merge a batch: objectives ``F`` (b, k), global row ``ids`` (b,), ``feasible`` (b,)."""
        keep = nondominated(F, feasible)
        F, ids = np.asarray(F)[keep], np.asarray(ids)[keep]
        merged_F = np.concatenate([self.F, F])
        merged_ids = np.concatenate([self.ids, ids])
        front = nondominated(merged_F)
        self.F, self.ids = merged_F[front], merged_ids[front]
        if payload is not None:
            batch = {name: np.asarray(column)[keep] for name, column in payload.items()}
            old = self.payload or {name: column[:0] for name, column in batch.items()}
            self.payload = {name: np.concatenate([old[name], batch[name]])[front] for name in batch}

    def sorted_payload(self) -> dict[str, np.ndarray]:
        """The payload of the front rows in global row order."""
        order = np.argsort(self.ids, kind="stable")
        return {name: column[order] for name, column in (self.payload or {}).items()}


@dataclass(frozen=True)
class ResultsFront:
    """The Pareto front of a results table.

    ``mask`` (n,) marks the front's rows, ``feasible`` (n,) the feasible ones; ``reference``
    (k,) is the hypervolume reference point in the objectives' own units and directions;
    ``hypervolume`` is in :attr:`hypervolume_unit`.
    """

    objectives: tuple[Objective, ...]
    mask: np.ndarray
    feasible: np.ndarray
    reference: FloatArray
    hypervolume: float
    reference_given: bool

    @property
    def hypervolume_unit(self) -> str:
        """The product of the objectives' units, e.g. ``USD·MWh·days``."""
        return "·".join(unit_of(o.name) for o in self.objectives)

    def reference_text(self) -> str:
        """The reference point for a person: each objective's value and unit, and its basis."""
        values = ", ".join(
            f"{o.name} {v:.4g} {unit_of(o.name)}"
            for o, v in zip(self.objectives, self.reference, strict=True)
        )
        basis = "given" if self.reference_given else "10% beyond the worst feasible value"
        return f"{values} ({basis})"


def results_front(
    frame: pd.DataFrame,
    objectives: Sequence[Objective],
    reference: Sequence[float] | np.ndarray | None = None,
) -> ResultsFront:
    """The non-dominated feasible rows of ``frame`` over ``objectives`` and their hypervolume up
    to ``reference`` (objective units; default: :func:`reference_point` of the feasible rows)."""
    from dse.space import objective_matrix

    feasible = (
        frame["feasible"].to_numpy(dtype=bool)
        if "feasible" in frame
        else np.ones(len(frame), dtype=bool)
    )
    F = objective_matrix({o.name: frame[o.name].to_numpy() for o in objectives}, objectives)
    mask = nondominated(F, feasible)
    signs = np.array([-1.0 if o.maximize else 1.0 for o in objectives])
    usable = feasible & np.all(np.isfinite(F), axis=1)
    if reference is not None:
        ref = signs * np.asarray(reference, dtype=np.float64)
    elif usable.any():
        ref = reference_point(F[usable])
    else:
        ref = np.full(len(objectives), np.nan)
    volume = hypervolume(F[mask], ref) if mask.any() else 0.0
    return ResultsFront(
        tuple(objectives), mask, feasible, signs * ref, volume, reference is not None
    )
