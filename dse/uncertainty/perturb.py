"""The model on designs whose technology constants and settings differ row by row.

Each row of a batch carries its own draw of the uncertain constants. The technology tables are
re-indexed per row (row ``i`` reads its own entry ``i`` of every node and memory table, so
``node`` and ``hbm_generation`` become ``0 .. n-1``), node-independent constants and settings
become arrays of shape ``(n,)``; one vectorized model call then evaluates draws × designs at
once. Nothing loops over designs or draws in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dse.catalog.chips import Chip, load_chip
from dse.catalog.technology import Technology, load_technology
from dse.catalog.workloads import Workload
from dse.designs import Designs, FloatArray
from dse.model.evaluate import evaluate
from dse.model.plans import Plans
from dse.model.silicon import (
    TechArrays,
    _tech_arrays,
    chip_energy_scale,
    energy_scale_at_tdp,
    evaluate_silicon,
    peak_clock_power_ratio,
    twin_energy_factor,
    underived_rows,
)
from dse.settings import Settings
from dse.space import Objective, Space, objective_matrix

ROWS_PER_CALL = 16_384
"""Rows (design × draw) per model call: bounds the memory of the per-row tables."""

MEMORY_COLUMNS = {
    "pin_rate_gbps": "hbm_pin_rate_gbps",
    "stack_capacity_gb": "hbm_stack_capacity_gb",
}
"""Memory-table keys a design carries as its own column (they follow its HBM generation)."""


@dataclass(frozen=True)
class Outcome:
    """A batch evaluated under its rows' draws: metric ``columns`` and ``g_*``
    ``constraints`` (name → (n,)), objectives to minimize ``F`` (n, k) and ``feasible`` (n,)
    (the model's and the space's constraints, finite objectives)."""

    columns: dict[str, FloatArray]
    constraints: dict[str, FloatArray]
    F: FloatArray
    feasible: np.ndarray

    @property
    def runs(self) -> np.ndarray:
        """Rows whose chip can run at all: static and memory power within the TDP. Elsewhere
        the model's times are those of a clock near zero (huge, meaningless)."""
        return np.asarray(self.constraints["g_tdp_headroom"] <= 0.0)


def perturbed(
    designs: Designs,
    draws: Mapping[str, FloatArray],
    settings: Settings,
    base_chip: Chip | None = None,
    technology: Technology | None = None,
) -> tuple[Designs, TechArrays, Settings]:
    """Designs, per-row technology tables and settings for ``draws`` (constant name → values of
    shape ``(n,)``).

    ``base_chip`` is the chip the designs derive from. Its family's constants apply to rows
    whose ``gemm_efficiency_scale`` is still the family's. Its ``energy_per_flop_scale`` is
    derived from its TDP under the node tables (docs/model.md §1.7), so it is derived again
    under each row's draw, for the rows that keep it: the TDP stays the anchor, and an
    uncertain node energy moves a design only relative to the base chip's node.
    """
    technology = technology or load_technology()
    family = base_chip.family if base_chip is not None else None
    base = _tech_arrays(technology)
    n = len(designs)
    node = {k: v[designs.node] for k, v in base.node.items()}
    memory = {k: v[designs.hbm_generation] for k, v in base.memory.items()}
    silicon = {section: dict(values) for section, values in base.silicon.items()}
    node_ids, memory_ids = list(technology.nodes), list(technology.memories)
    columns: dict[str, np.ndarray] = {}
    setting_values: dict[str, FloatArray] = {}
    for name, values in draws.items():
        kind, _, rest = name.partition(".")
        values = np.asarray(values, dtype=np.float64)
        if kind == "settings":
            setting_values[rest] = values
            continue
        table, key = rest.split(".")
        if table in technology.nodes:
            mask = designs.node == node_ids.index(table)
            node[key] = np.where(mask, values, node[key])
        elif table in technology.memories:
            mask = designs.hbm_generation == memory_ids.index(table)
            if key in MEMORY_COLUMNS:
                column = MEMORY_COLUMNS[key]
                current = columns.get(column, getattr(designs, column))
                follows = mask & (current == getattr(technology.memories[table], key))
                columns[column] = np.where(follows, values, current)
            else:
                memory[key] = np.where(mask, values, memory[key])
        elif table in technology.families:
            if family != table or key == "peak_clock_power_ratio":
                continue  # κ moves the energy per FLOP, derived again below
            # a family's field is the design column of the same name (gemm_efficiency_scale,
            # flash2_attention_ratio), drawn where the design still holds the family's value
            current = columns.get(key, getattr(designs, key))
            follows = current == getattr(technology.families[table], key)
            columns[key] = np.where(follows, values, current)
        else:
            silicon[table][key] = values
    if base_chip is not None and draws:
        nominal = chip_energy_scale(base_chip, technology)
        follows = designs.energy_per_flop_scale == nominal
        if follows.any():
            columns["energy_per_flop_scale"] = np.where(
                follows, _drawn_energy_scale(base_chip, draws, settings, technology), nominal
            )
    rows = np.arange(n, dtype=np.int64)
    designs = designs.replace(node=rows, hbm_generation=rows, **columns)
    tech = TechArrays(node=node, memory=memory, silicon=silicon, analog=base.analog)
    # Settings hold arrays of shape (n,) here: the model broadcasts them per design.
    return designs, tech, replace(settings, **setting_values)  # type: ignore[arg-type]


def _drawn_energy_scale(
    chip: Chip, draws: Mapping[str, FloatArray], settings: Settings, technology: Technology
) -> FloatArray:
    """``chip``'s energy-per-FLOP scale (:func:`~dse.model.silicon.chip_energy_scale`: TDP-derived,
    or its twin's at its clock) under each row's draw, shape ``(n,)``."""
    if chip.same_silicon_as:
        twin = load_chip(chip.same_silicon_as)
        default = technology.silicon["power"]["dvfs_exponent"]
        exponent = draws.get("tech.power.dvfs_exponent", default)
        twin_scale = _drawn_energy_scale(twin, draws, settings, technology)
        return twin_scale * twin_energy_factor(chip, twin, exponent, technology)
    own = underived_rows(chip, len(next(iter(draws.values()))), technology)
    drawn, tech, _ = perturbed(own, draws, settings, None, technology)
    at_tdp = energy_scale_at_tdp(drawn, evaluate_silicon(drawn, tech))
    kappa = draws.get(
        f"tech.{chip.family}.peak_clock_power_ratio", peak_clock_power_ratio(chip, technology)
    )
    return at_tdp * kappa


def evaluate_drawn(
    designs: Designs,
    draws: Mapping[str, FloatArray],
    workload: Workload,
    settings: Settings,
    plans: Plans,
    objectives: Sequence[Objective],
    space: Space | None = None,
    base_chip: Chip | None = None,
) -> Outcome:
    """Evaluate row ``i`` of ``designs`` under the constants ``draws[name][i]``, in calls of
    :data:`ROWS_PER_CALL` rows; the space's constraints join the model's."""
    n = len(designs)
    parts: list[tuple[dict[str, FloatArray], dict[str, FloatArray], FloatArray, np.ndarray]] = []
    for start in range(0, max(n, 1), ROWS_PER_CALL):
        rows = slice(start, min(start + ROWS_PER_CALL, n))
        local = {name: np.asarray(v)[rows] for name, v in draws.items()}
        drawn, tech, model = perturbed(designs.take(rows), local, settings, base_chip)
        metrics = evaluate(drawn, workload, model, plans, technology=tech)
        if space is not None:
            metrics = metrics.with_constraints(space.constraint_values(metrics))
        F = objective_matrix(metrics.columns, objectives)
        feasible = metrics.feasible & np.all(np.isfinite(F), axis=1)
        parts.append((metrics.columns, metrics.constraints, F, feasible))
    columns = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    constraints = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    return Outcome(
        columns,
        constraints,
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
    )
