"""``dse workloads list`` and ``dse workloads show WORKLOAD``."""

from __future__ import annotations

import click

from dse.catalog.workloads import load_workload, workload_ids
from dse.cli._output import format_option, render_record, render_rows
from dse.reports import workload_summary


@click.group()
def workloads() -> None:
    """The LLM training workload catalog."""


@workloads.command("list")
@format_option
def list_workloads(fmt: str) -> None:
    """List the catalog's workloads with their parameter counts and tokens."""
    keys = (
        "id",
        "name",
        "total_params",
        "active_params",
        "tokens",
        "seq_len",
        "precision",
        "training_flops",
    )
    rows = [{k: workload_summary(load_workload(i))[k] for k in keys} for i in workload_ids()]
    click.echo(render_rows(rows, fmt))


@workloads.command("show")
@click.argument("workload")
@format_option
def show_workload(workload: str, fmt: str) -> None:
    """Derived figures of WORKLOAD (a catalog id or a path to a workload TOML file)."""
    click.echo(render_record(workload_summary(load_workload(workload)), fmt))
