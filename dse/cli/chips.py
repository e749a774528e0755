"""``dse chips list`` and ``dse chips show CHIP``."""

from __future__ import annotations

import click

from dse.catalog.chips import chip_ids, load_chip
from dse.cli._output import format_option, render_record, render_rows
from dse.parameters import PARAMETERS
from dse.reports import chip_summary


@click.group()
def chips() -> None:
    """The accelerator catalog."""


@chips.command("list")
@format_option
def list_chips(fmt: str) -> None:
    """List the catalog's chips with their headline figures."""
    rows = []
    for chip_id in chip_ids():
        chip = load_chip(chip_id)
        summary = chip_summary(chip)
        rows.append(
            {
                "id": chip.id,
                "name": chip.name,
                "year": chip.year,
                **{p.name: p.chip_value(chip) for p in PARAMETERS if p.listed},
                "bf16_tflop_s": summary["peak_tflop_s"].get(
                    "bf16", summary["peak_tflop_s"].get("fp16")
                ),
                "fp8_tflop_s": summary["peak_tflop_s"].get("fp8"),
                "hbm_gb": summary["hbm_capacity_gb"],
                "hbm_tb_s": summary["hbm_bandwidth_tb_s"],
                "unit_cost_usd": summary["unit_cost_usd"],
            }
        )
    click.echo(render_rows(rows, fmt))


@chips.command("show")
@click.argument("chip")
@format_option
def show_chip(chip: str, fmt: str) -> None:
    """Derived figures of CHIP (a catalog id or a path to a chip TOML file)."""
    click.echo(render_record(chip_summary(load_chip(chip)), fmt))
