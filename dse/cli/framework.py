"""``dse scaling`` (the cost of scale, C ≈ 120·P²) and ``dse roadmap`` (the paper's levers)."""

from __future__ import annotations

from typing import Any

import click

from dse.catalog.chips import load_chip
from dse.catalog.workloads import PRECISIONS, load_workload
from dse.cli._output import (
    chip_option,
    format_option,
    num_chips_option,
    render_record,
    render_rows,
    workload_option,
)
from dse.cli.evaluate import settings_from, settings_options
from dse.framework.levers import load_levers
from dse.framework.roadmap import run_roadmap
from dse.framework.scaling import (
    DEFAULT_DAYS,
    DEFAULT_MAX_POWER_MW,
    cost_of_scale,
    model_sizes,
)

SCALING_TABLE = (
    "total_params",
    "active_params",
    "training_flops",
    "flops_over_120p2",
    "num_chips",
    "training_days",
    "meets_deadline",
    "cluster_power_mw",
    "within_power",
    "energy_mwh",
    "cost_usd",
    "mfu",
    "feasible",
)
"""Columns of the scaling table for a person; JSON and CSV carry every column."""
ROADMAP_TABLE = (
    "lever",
    "nominal_factor",
    "cost_factor",
    "energy_factor",
    "time_factor",
    "cost_usd",
    "energy_mwh",
    "training_days",
    "cumulative_cost_factor",
)
plot_option = click.option(
    "--plot",
    "plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also draw a figure: FILE.png (or .svg/.pdf) static, FILE.html interactive.",
)


@click.command()
@chip_option
@click.option(
    "--from", "start", type=float, default=1e9, show_default=True, help="Smallest model (params)."
)
@click.option(
    "--to", "stop", type=float, default=1e13, show_default=True, help="Largest model (params)."
)
@click.option(
    "--points", type=click.IntRange(min=1), default=5, show_default=True, help="Model sizes."
)
@click.option(
    "--days",
    type=float,
    default=None,
    help=f"Deadline: find the smallest cluster that trains within it (default {DEFAULT_DAYS:g}).",
)
@click.option(
    "--num-chips",
    type=click.IntRange(min=1),
    default=None,
    help="Time every size on this cluster instead of searching one.",
)
@click.option(
    "--max-power-mw",
    type=float,
    default=DEFAULT_MAX_POWER_MW,
    show_default=True,
    help="Facility power limit (MW) that within_power checks.",
)
@click.option(
    "--moe-k",
    type=float,
    default=1.0,
    show_default=True,
    help="Mixture of Experts: total over active parameters (1 = dense).",
)
@click.option("--precision", type=click.Choice(PRECISIONS), default="bf16", show_default=True)
@settings_options
@plot_option
@format_option
def scaling(
    chip: str,
    start: float,
    stop: float,
    points: int,
    days: float | None,
    num_chips: int | None,
    max_power_mw: float,
    moe_k: float,
    precision: str,
    plot: str | None,
    fmt: str,
    **options: Any,
) -> None:
    """The cost of scale: compute-optimal models from --from to --to parameters on one chip.

    Each size P (log-spaced) trains on 20·P tokens (C ≈ 120·P², divided by K for a Mixture of
    Experts). Per size: the smallest cluster that finishes within --days (default 90), or the
    time on --num-chips; with its power, energy, cost and whether it fits under --max-power-mw.
    """
    settings = settings_from(options)
    accelerator = load_chip(chip)
    rows = cost_of_scale(
        accelerator,
        model_sizes(start, stop, points),
        days=days,
        num_chips=num_chips,
        max_power_mw=max_power_mw,
        moe_k=moe_k,
        precision=precision,
        settings=settings,
    )
    records = [row.record() for row in rows]
    if fmt == "table":
        click.echo(render_rows([{k: r[k] for k in SCALING_TABLE} for r in records], fmt))
        goal = (
            f"on {num_chips:,} chips"
            if num_chips
            else f"smallest cluster within {days or DEFAULT_DAYS:g} days"
        )
        click.echo(
            f"\n{accelerator.id}, {goal}, power limit {max_power_mw:g} MW; "
            "flops_over_120p2 = training FLOPs / (120 P^2)"
        )
    else:
        click.echo(render_rows(records, fmt))
    if plot:
        from dse.framework.plots import scaling_plot

        title = f"Cost of scale on {accelerator.id}" + (f" (MoE K={moe_k:g})" if moe_k > 1 else "")
        click.echo(f"wrote {scaling_plot(rows, plot, title, max_power_mw)}", err=True)


@click.command()
@workload_option
@chip_option
@num_chips_option
@click.option(
    "--levers",
    "levers_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A levers TOML file (default: the paper's, shipped as dse/levers.toml).",
)
@settings_options
@plot_option
@format_option
def roadmap(
    workload: str,
    chip: str,
    num_chips: int,
    levers_file: str | None,
    plot: str | None,
    fmt: str,
    **options: Any,
) -> None:
    """The paper's levers applied cumulatively, each step computed by the model.

    Factors are the previous step's value over this step's (> 1 is better), beside the
    paper's nominal factor; the cumulative factor is the product of the step factors. A note
    per lever says, from the numbers, which parts of cost, time and energy did not shrink.
    """
    settings = settings_from(options)
    result = run_roadmap(
        load_chip(chip), load_workload(workload), num_chips, load_levers(levers_file), settings
    )
    record = result.record()
    baseline = {"lever": "baseline", **result.baseline.record()}
    steps = [step.record() for step in result.steps]
    if fmt == "json":
        click.echo(render_record(record, "json"))
    elif fmt == "csv":
        rows = [baseline, *steps]
        for row in rows:
            row.pop("time_days", None)
            row.pop("energy_mwh_parts", None)
            row.pop("cost_usd_parts", None)
            if "changes" in row:
                row["changes"] = "; ".join(row["changes"])  # type: ignore[arg-type]
        click.echo(render_rows(rows, "csv"))
    else:
        click.echo(
            render_rows([{k: r.get(k) for k in ROADMAP_TABLE} for r in [baseline, *steps]], fmt)
        )
        click.echo(
            f"\n{result.workload} on {num_chips:,} x {result.chip}: cost "
            f"{result.baseline.cost_usd:,.0f} -> {steps[-1]['cost_usd'] if steps else 0:,.0f} USD, "
            f"{record['cumulative_cost_factor']:.1f}x in all (product of the step factors)\n"
        )
        for step in steps:
            click.echo(f"{step['lever']}: {step['note']}")
        # The revolutionary levers rest on assumptions no published run checks: print them.
        for step in steps:
            if step["kind"] == "revolutionary":
                infeasible = "" if step["feasible"] else " [infeasible design]"
                click.echo(f"\n{step['lever']} assumes{infeasible}: {step['assumption']}")
    if plot:
        from dse.framework.plots import roadmap_plot

        click.echo(f"wrote {roadmap_plot(result, plot)}", err=True)
