"""The roadmap: the paper's levers applied cumulatively to one workload on one cluster.

Every step is a model run (:func:`dse.framework.state.run`) on the inputs the lever transformed,
never a division by the nominal factor. A step's ``*_factor`` is the previous step's value over
its own (> 1 means improvement, comparable with the paper's nominal 2x); the cumulative factor is
the baseline over the step, so it equals the product of the step factors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dse.catalog.chips import Chip
from dse.catalog.workloads import Workload
from dse.designs import from_chips
from dse.framework.levers import Lever, Levers, apply_lever, load_levers
from dse.framework.notes import factor, step_note
from dse.framework.state import Outcome, State, run
from dse.settings import Settings, load_settings


@dataclass(frozen=True)
class Step:
    """One lever applied on top of the previous ones, and the model's outcome."""

    lever: Lever
    outcome: Outcome
    cost_factor: float
    energy_factor: float
    time_factor: float
    cumulative_cost_factor: float
    cumulative_energy_factor: float
    cumulative_time_factor: float
    changes: tuple[str, ...]
    note: str
    state: State = field(repr=False)

    def record(self) -> dict[str, object]:
        """The step as a plain record (the JSON ``steps`` entry)."""
        o = self.outcome
        return {
            "lever": self.lever.id,
            "name": self.lever.name,
            "kind": self.lever.kind,
            "nominal_factor": self.lever.nominal_factor,
            "cost_factor": self.cost_factor,
            "energy_factor": self.energy_factor,
            "time_factor": self.time_factor,
            "cost_usd": o.cost_usd,
            "energy_mwh": o.energy_mwh,
            "training_days": o.training_days,
            "capex_usd": o.capex_usd,
            "cluster_power_mw": o.cluster_power_mw,
            "mfu": o.mfu,
            "feasible": o.feasible,
            "cumulative_cost_factor": self.cumulative_cost_factor,
            "cumulative_energy_factor": self.cumulative_energy_factor,
            "cumulative_time_factor": self.cumulative_time_factor,
            "note": self.note,
            "assumption": self.lever.assumption,
            "changes": list(self.changes),
            "plan": o.plan,
        }


@dataclass(frozen=True)
class Roadmap:
    """The baseline and one :class:`Step` per lever, in the order applied."""

    chip: str
    workload: str
    num_chips: int
    levers_file: str
    baseline: Outcome
    steps: tuple[Step, ...]

    def record(self) -> dict[str, object]:
        """The roadmap as JSON-ready data: ``baseline``, ``steps`` and the totals."""
        last = self.steps[-1] if self.steps else None
        return {
            "chip": self.chip,
            "workload": self.workload,
            "num_chips": self.num_chips,
            "levers_file": self.levers_file,
            "baseline": self.baseline.record(),
            "steps": [step.record() for step in self.steps],
            "cumulative_cost_factor": last.cumulative_cost_factor if last else 1.0,
            "cumulative_energy_factor": last.cumulative_energy_factor if last else 1.0,
            "cumulative_time_factor": last.cumulative_time_factor if last else 1.0,
        }


def baseline_state(
    chip: Chip, workload: Workload, num_chips: int, settings: Settings | None = None
) -> State:
    """The roadmap's starting point: one catalog chip on ``num_chips``, shipped technology."""
    return State(workload, from_chips([chip], num_chips), settings or load_settings())


def run_roadmap(
    chip: Chip,
    workload: Workload,
    num_chips: int,
    levers: Levers | None = None,
    settings: Settings | None = None,
) -> Roadmap:
    """Apply ``levers`` (default: ``dse/levers.toml``) cumulatively and run the model per step."""
    levers = levers or load_levers()
    state = baseline_state(chip, workload, num_chips, settings)
    baseline = previous = run(state)
    steps = []
    for lever in levers:
        state, changes = apply_lever(state, lever, levers.path)
        outcome = run(state)
        steps.append(
            Step(
                lever=lever,
                outcome=outcome,
                cost_factor=factor(previous.cost_usd, outcome.cost_usd),
                energy_factor=factor(previous.energy_mwh, outcome.energy_mwh),
                time_factor=factor(previous.training_days, outcome.training_days),
                cumulative_cost_factor=factor(baseline.cost_usd, outcome.cost_usd),
                cumulative_energy_factor=factor(baseline.energy_mwh, outcome.energy_mwh),
                cumulative_time_factor=factor(baseline.training_days, outcome.training_days),
                changes=tuple(changes),
                note=step_note(previous, outcome, lever.nominal_factor),
                state=state,
            )
        )
        previous = outcome
    return Roadmap(
        chip=chip.id,
        workload=workload.id,
        num_chips=num_chips,
        levers_file=str(Path(levers.path)),
        baseline=baseline,
        steps=tuple(steps),
    )
