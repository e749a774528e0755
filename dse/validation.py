"""The model against published training runs (``dse validate``; docs/model.md §4).

Runs live in ``dse/validation_runs.toml`` with their sources. Every run is evaluated with the
same defaults; only facts of the run (cluster size, batch, a power cap, a published plan) are
inputs. Full runs' wall-clock figures include failures, so the model's goodput applies to
them; projections and throughput benchmarks are steady-state and are compared at goodput 1.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dse.catalog._schema import Field, Table, check
from dse.catalog.chips import load_chip
from dse.catalog.workloads import load_workload
from dse.designs import from_chips
from dse.files import read_toml
from dse.model.evaluate import evaluate
from dse.model.plans import RECOMPUTE, candidate_plans
from dse.settings import Settings, load_settings

RUNS_PATH = Path(__file__).with_name("validation_runs.toml")
REPORTED = ("training_days", "chip_hours", "mfu", "energy_mwh")

_OPTIONAL_POSITIVE = Field(required=False, positive=True)
RUN_SCHEMA = Table(
    {
        "id": Field("str"),
        "label": Field("str"),
        "workload": Field("str"),
        "chip": Field("str"),
        "num_chips": Field("int", positive=True),
        "run_type": Field("str", choices=("full_run", "projection", "throughput")),
        "source": Field("str"),
        "notes": Field("str", required=False, default=""),
        "workload_overrides": Table(
            {"global_batch_tokens": _OPTIONAL_POSITIVE, "tokens": _OPTIONAL_POSITIVE},
            required=False,
        ),
        "chip_overrides": Table(
            {"tdp_w": _OPTIONAL_POSITIVE, "scale_out_bandwidth_gb_s": _OPTIONAL_POSITIVE},
            required=False,
        ),
        "plan": Table(
            {
                "tp": Field("int", required=False, positive=True),
                "pp": Field("int", required=False, positive=True),
                "microbatch": Field("int", required=False, positive=True),
                "recompute": Field("str", required=False, choices=RECOMPUTE),
                "zero_stage": Field("int", required=False, positive=True),
            },
            required=False,
        ),
        "reported": Table({key: _OPTIONAL_POSITIVE for key in REPORTED}),
    }
)


@dataclass(frozen=True)
class Comparison:
    """One published figure against the model's prediction; ``error`` = predicted / reported − 1."""

    run: str
    model: str
    metric: str
    predicted: float
    reported: float
    run_type: str
    source: str

    @property
    def error(self) -> float:
        return self.predicted / self.reported - 1.0


def load_runs(path: Path = RUNS_PATH) -> list[dict[str, Any]]:
    """The published runs, validated."""
    data = read_toml(path)
    runs = data.get("run", [])
    return [check(run, RUN_SCHEMA, path, f"run[{i}]") for i, run in enumerate(runs)]


def compare_run(run: dict[str, Any], settings: Settings) -> list[Comparison]:
    """Evaluate one run and compare each reported figure."""
    workload = load_workload(run["workload"])
    overrides = {k: float(v) for k, v in run["workload_overrides"].items() if v is not None}
    if overrides:
        workload = workload.with_changes(**overrides)
    chip = load_chip(run["chip"])
    designs = from_chips([chip], run["num_chips"])
    chip_facts = {k: v for k, v in run["chip_overrides"].items() if v is not None}
    if chip_facts:
        designs = designs.replace(**chip_facts)
    plan = {k: v for k, v in run["plan"].items() if v is not None}
    plans = candidate_plans(workload, max_tp=chip.scale_up_domain, **plan)
    run_settings = settings if run["run_type"] == "full_run" else replace(settings, goodput=1.0)
    metrics = evaluate(designs, workload, run_settings, plans)
    out = []
    for metric in REPORTED:
        reported = run["reported"][metric]
        if reported is None:
            continue
        out.append(
            Comparison(
                run=run["id"],
                model=run["label"],
                metric=metric,
                predicted=float(metrics.columns[metric][0]),
                reported=float(reported),
                run_type=run["run_type"],
                source=run["source"],
            )
        )
    return out


def validate(settings: Settings | None = None, path: Path = RUNS_PATH) -> list[Comparison]:
    """Every published figure of every run against the model, with one set of defaults."""
    settings = settings or load_settings()
    return [row for run in load_runs(path) for row in compare_run(run, settings)]


def median_abs_error(rows: list[Comparison]) -> float:
    """Median of |predicted / reported − 1| over all rows."""
    return statistics.median(abs(r.error) for r in rows) if rows else float("nan")
