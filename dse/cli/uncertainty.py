"""``dse sensitivity`` and ``dse robust``: which knobs and constants matter, and which designs
stay on the front when the uncertain constants are drawn (docs/sensitivity.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dse import api
from dse.catalog.workloads import PRECISIONS
from dse.cli._help import GroupedCommand
from dse.cli._output import format_option, render_record, render_rows
from dse.cli.evaluate import setting_options, settings_options
from dse.uncertainty._choices import METHODS, SCALES

_PATH = click.Path(dir_okay=False, path_type=Path)
TABLE_FACTORS = 10
"""Factors listed per objective in the table format (the largest indices); json and csv list
all."""

uncertainty_option = click.option(
    "--uncertainty",
    type=_PATH,
    default=None,
    help="Distributions of the uncertain constants (default chips/technology/uncertainty.toml).",
)


@click.command(cls=GroupedCommand)
@click.argument("space")
@click.option(
    "--workload",
    default=None,
    help="Catalog id or path to a workload TOML file (default: the space's).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=512,
    show_default=True,
    help="Sobol: base samples, a power of two (the model runs samples x (factors + 2) times); "
    "Morris: trajectories.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="sobol",
    show_default=True,
    help="Sobol indices (first order, total) or Morris screening (mu*, sigma).",
)
@click.option(
    "--scale",
    type=click.Choice(SCALES),
    default="log",
    show_default=True,
    help="Analyse log10 of the objectives, or their values.",
)
@click.option(
    "--no-constants",
    is_flag=True,
    help="The space's dimensions only: leave the uncertain constants at their values.",
)
@uncertainty_option
@click.option(
    "--plot",
    "plot_path",
    type=_PATH,
    default=None,
    help="Bar chart of the indices: .png/.svg/.pdf.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Training number format (default: the workload's).",
)
@click.option("--tokens", type=float, default=None, help="Training tokens.")
@format_option
@settings_options
def sensitivity(
    space: str,
    workload: str | None,
    samples: int,
    seed: int,
    method: str,
    scale: str,
    no_constants: bool,
    uncertainty: Path | None,
    plot_path: Path | None,
    precision: str | None,
    tokens: float | None,
    fmt: str,
    **options: Any,
) -> None:
    """Global sensitivity of the space's objectives to its dimensions and to the uncertain
    constants (tech.<table>.<key>, settings.<key>).

    Sobol first-order and total indices with 95 % bootstrap half-widths, or Morris mu* and
    sigma. The table lists the largest indices per objective; json and csv list every factor.
    A model setting given as an option is known, not drawn.
    """
    from dse.uncertainty.sensitivity import sensitivity_record

    frame = api.sensitivity(
        space,
        workload,
        samples=samples,
        seed=seed,
        method=method,
        scale=scale,
        constants=not no_constants,
        uncertainty=uncertainty,
        plot_path=plot_path,
        precision=precision,
        tokens=tokens,
        **setting_options(options),
    )
    meta = frame.attrs["dse_sensitivity"]
    if fmt == "json":
        click.echo(render_record(sensitivity_record(frame, meta), "json"))
        return
    if fmt == "csv":
        records = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
        click.echo(render_rows(records, "csv"))
        return
    key = "total" if method == "sobol" else "mu_star"
    rows: list[dict[str, Any]] = []
    for _, part in frame.groupby("objective", sort=False):
        top = part.sort_values(key, ascending=False).head(TABLE_FACTORS)
        rows.extend({str(k): v for k, v in r.items()} for r in top.to_dict("records"))
    click.echo(render_rows([_row(r) for r in rows], "table"))
    click.echo(
        f"\n{meta['method']} on {meta['scale']} objectives: {meta['factor_count']} factors "
        f"({meta['design_factors']} dimensions, {meta['constant_factors']} constants), "
        f"{meta['evaluations']:,} evaluations in {meta['seconds']} s; "
        f"{meta['feasible_share']:.0%} of them feasible"
    )


def _row(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: record[k] for k in ("objective", "factor")}
    for measure in ("first_order", "total", "mu_star"):
        if measure in record:
            out[measure] = f"{record[measure]:.3f} ± {record[measure + '_conf']:.3f}"
    if "sigma" in record:
        out["sigma"] = f"{record['sigma']:.3g}"
    return out


@click.command()
@click.argument("results", type=_PATH)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Joint draws of the uncertain constants.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Random seed."
)
@click.option("--out", required=True, type=_PATH, help="Results file: .csv, .parquet or .json.")
@click.option(
    "--spread-scale",
    type=click.FloatRange(min=0, max=10),
    default=1.0,
    show_default=True,
    help="Multiply every spread (0: every constant certain).",
)
@uncertainty_option
@click.option(
    "--plot",
    "plot_path",
    type=_PATH,
    default=None,
    help="The rows' medians and 10-90 % ranges, coloured by p_pareto: .png/.svg/.pdf.",
)
@click.option(
    "--minimize", multiple=True, help="Objective column to minimize (repeat; default: the file's)."
)
@click.option("--maximize", multiple=True, help="Objective column to maximize (repeat).")
@format_option
def robust(
    results: Path,
    samples: int,
    seed: int,
    out: Path,
    spread_scale: float,
    uncertainty: Path | None,
    plot_path: Path | None,
    minimize: tuple[str, ...],
    maximize: tuple[str, ...],
    fmt: str,
) -> None:
    """Re-evaluate the rows of a results file (typically a front from 'dse pareto IN --out')
    under joint draws of the uncertain constants.

    Writes the rows with p_pareto (share of draws in which a row is feasible and no other row
    dominates it), p_feasible and each objective's 10th, 50th and 90th percentile
    (<objective>_p10, _p50, _p90). The space, workload and settings come from the file's
    provenance; the plan is searched again in every draw.
    """
    frame = api.robust(
        results,
        samples=samples,
        seed=seed,
        out=out,
        spread_scale=spread_scale,
        uncertainty=uncertainty,
        plot_path=plot_path,
        minimize=minimize,
        maximize=maximize,
    )
    summary = {"input": str(results), **frame.attrs["dse_robust"], "out": str(out)}
    if plot_path is not None:
        summary["plot"] = str(plot_path)
    click.echo(render_record(summary, fmt))
