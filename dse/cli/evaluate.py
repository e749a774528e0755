"""``dse evaluate`` (one design on one cluster) and ``dse validate`` (the model vs published runs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dse import api
from dse.calibration import GROUPINGS, cross_validate, summary
from dse.cli._help import GroupedCommand, GroupedOption
from dse.cli._output import (
    chip_option,
    format_option,
    num_chips_option,
    precision_option,
    render_record,
    render_rows,
    tokens_option,
    workload_option,
)
from dse.model.plans import PLACEMENTS, RECOMPUTE, SCHEDULES, ZERO_STAGES
from dse.settings import (
    Settings,
    load_settings,
    read_settings_file,
    setting_help,
    setting_sections,
    setting_source,
)
from dse.validation import (
    MemoryCheck,
    by_architecture,
    explain_run,
    logged_memory,
    median_abs_error,
    memory_median_abs_error,
    published_plans,
    rule_median_abs_error,
)
from dse.validation import validate as run_validation

SETTINGS_HEADINGS = {
    "efficiency": "Model settings: efficiency",
    "memory": "Model settings: memory per parameter",
    "cluster": "Model settings: cluster",
    "economics": "Model settings: economics",
}


def _setting_help(name: str, default: Any) -> str:
    meaning, unit = setting_help(name)
    tag = setting_source(name).split("]")[0].lstrip("[") if setting_source(name) else ""
    shown = ("on" if default else "off") if isinstance(default, bool) else f"{default:g}"
    unit_text = "" if unit in ("1", "on/off") else f", in {unit}"
    source = f" ({tag})" if tag else ""
    return f"{meaning[0].upper()}{meaning[1:]}{unit_text}. [default: {shown}{source}]"


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per model default (``dse/defaults.toml``), e.g. ``--pue``, grouped by
    section in ``--help`` with its meaning, unit and default, and ``--settings FILE.toml``."""
    defaults = load_settings()
    sections = setting_sections()
    for section in reversed(list(sections)):
        group = SETTINGS_HEADINGS.get(section, f"Model settings: {section}")
        for name in reversed(sections[section]):
            value = getattr(defaults, name)
            flag = "--" + name.replace("_", "-")
            help_text = _setting_help(name, value)
            if isinstance(value, bool):
                command = click.option(
                    f"{flag}/--no-{flag[2:]}",
                    name,
                    default=None,
                    help=help_text,
                    cls=GroupedOption,
                    help_group=group,
                )(command)
            else:
                command = click.option(
                    flag,
                    name,
                    type=float,
                    default=None,
                    help=help_text,
                    cls=GroupedOption,
                    help_group=group,
                )(command)
    return click.option(
        "--settings",
        "settings_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE.toml",
        help="Model settings from a TOML file: flat keys (pue = 1.2) or the sections of "
        "dse/defaults.toml, where each default's source is; the options below override it. "
        "Source tags: P published, E estimate, M measured, C calibrated.",
        cls=GroupedOption,
        help_group="Model settings",
    )(command)


def setting_options(options: dict[str, Any]) -> dict[str, Any]:
    """Remove the settings (and ``--settings FILE``) from a command's ``options``; those given,
    by name: the file's first, then the command line's over them."""
    path = options.pop("settings_file", None)
    overrides = {k: options.pop(k) for k in Settings.names() if k in options}
    given = read_settings_file(path) if path is not None else {}
    given.update({k: v for k, v in overrides.items() if v is not None})
    return given


def settings_from(options: dict[str, Any]) -> Settings:
    """The defaults, then a ``--settings`` file, then the command line's settings (None means
    not given)."""
    return api.settings_with(setting_options(options))


@click.command(cls=GroupedCommand)
@chip_option
@workload_option
@num_chips_option
@precision_option
@tokens_option
@click.option("--tp", type=click.IntRange(min=1), default=None, help="Pin tensor parallelism.")
@click.option("--pp", type=click.IntRange(min=1), default=None, help="Pin pipeline parallelism.")
@click.option("--dp", type=click.IntRange(min=1), default=None, help="Pin data parallelism.")
@click.option(
    "--schedule",
    type=click.Choice(list(SCHEDULES)),
    default=None,
    help="Pin the pipeline schedule: 1f1b (interleaved with --vp > 1), dualpipe (MoE) or"
    " zb-h1 (zero bubble: weight gradients fill the bubble; vp 1).",
)
@click.option(
    "--placement",
    type=click.Choice(list(PLACEMENTS)),
    default=None,
    help="Pin the rank placement, innermost first: tp-cp-ep-dp-pp (the default, Megatron-Core's) "
    "or tp-pp-dp (pipeline stages inside a scale-up domain before the data-parallel replicas; "
    "cp 1, ep 1; never searched).",
)
@click.option(
    "--cp",
    type=click.IntRange(min=1),
    default=None,
    help="Pin context parallelism (ring attention; 2·cp divides the sequence length).",
)
@click.option(
    "--vp",
    type=click.IntRange(min=1),
    default=None,
    help="Pin virtual pipeline stages per pipeline rank (interleaved 1F1B; divides the layers "
    "per stage).",
)
@click.option("--ep", type=click.IntRange(min=1), default=None, help="Pin expert parallelism.")
@click.option(
    "--etp",
    type=click.IntRange(min=1),
    default=None,
    help="Pin expert tensor parallelism: each routed expert's weights split over this many "
    "ranks (Megatron-Core expert_tensor_parallel_size); divides the expert FFN width; never "
    "searched, default 1.",
)
@click.option(
    "--microbatch",
    type=click.IntRange(min=1),
    default=None,
    help="Pin the micro-batch (sequences).",
)
@click.option(
    "--recompute", type=click.Choice(RECOMPUTE), default=None, help="Pin activation recompute."
)
@click.option(
    "--zero-stage",
    type=click.Choice([str(z) for z in ZERO_STAGES]),
    default=None,
    help="Pin the ZeRO stage: 0 replicated (DDP), 1 optimizer state sharded, 2 gradients too,"
    " 3 parameters too (FSDP). The search tries 1-3.",
)
@click.option(
    "--dp-shard",
    type=click.IntRange(min=1),
    default=None,
    help="Pin hybrid sharding: the ZeRO stage shards over groups of this many data-parallel "
    "ranks and replicates across dp / dp-shard groups (FSDP HYBRID_SHARD, torchtitan "
    "data_parallel_shard_degree); divides dp, needs --zero-stage 1-3; never searched, default "
    "dp.",
)
@click.option(
    "--offload-layers",
    type=click.IntRange(min=0),
    default=None,
    help="Pin the layers per pipeline stage whose activations go to host memory during the "
    "forward pass and come back for the backward pass, without recompute (Megatron-Core "
    "cpu_offloading_num_layers; never searched, default 0).",
)
@click.option(
    "--recompute-layers",
    type=click.IntRange(min=1),
    default=None,
    help="Pin the layers per pipeline stage that follow the recompute policy; the others keep "
    "all their activations (Megatron recompute_num_layers with recompute_method block; never "
    "searched, default every layer).",
)
@settings_options
@format_option
def evaluate(
    chip: str,
    workload: str,
    num_chips: int,
    precision: str | None,
    tokens: float | None,
    fmt: str,
    **options: Any,
) -> None:
    """One design on one cluster: the best parallelism plan and all metrics.

    Plans are searched over tp, pp, vp, cp, ep, micro-batch, recompute, ZeRO stage and
    pipeline schedule; any of them given on the command line is pinned instead. Activation
    offload (--offload-layers), recompute of some layers (--recompute-layers), hybrid
    sharding (--dp-shard) and expert tensor parallelism (--etp) are only ever pinned.
    """
    settings = setting_options(options)
    plan = {k: v for k, v in options.items() if v is not None}
    if "zero_stage" in plan:
        plan["zero_stage"] = int(plan["zero_stage"])
    result = api.evaluate(
        chip, workload, num_chips, precision=precision, tokens=tokens, plan=plan, **settings
    )
    click.echo(render_record(result.to_dict(), fmt))


@click.command(cls=GroupedCommand)
@click.argument("chips", nargs=-1, required=True, metavar="CHIP|FILE...")
@workload_option
@num_chips_option
@precision_option
@tokens_option
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw the ratios to the first design as a grouped bar chart (FILE.png/.svg/.pdf).",
)
@settings_options
@format_option
def compare(
    chips: tuple[str, ...],
    workload: str,
    num_chips: int,
    precision: str | None,
    tokens: float | None,
    plot_path: Path | None,
    fmt: str,
    **options: Any,
) -> None:
    """Designs side by side: each CHIP (catalog id or chip TOML file) on the same workload and
    cluster, at its best parallelism plan.

    Shows the verdict, key metrics, plan, time breakdown (s) and ratios to the first CHIP. JSON
    is a list with one 'dse evaluate' object per chip plus 'ratio_to_first'.
    """
    from dse.compare import check_plot_path, comparison_rows, plot_comparison
    from dse.compare import compare as run_compare

    if plot_path is not None:
        check_plot_path(plot_path)
    settings = settings_from(options)
    job = api.workload_with(api.load_workload(workload), tokens=tokens, precision=precision)
    records = run_compare(chips, job, num_chips, settings)
    if plot_path is not None:
        plot_comparison(records, plot_path)
    click.echo(render_rows(comparison_rows(records) if fmt == "table" else records, fmt))


@click.command(cls=GroupedCommand)
@settings_options
@click.option(
    "--cross-validate",
    "cross",
    type=click.Choice(sorted(GROUPINGS)),
    is_flag=False,
    flag_value="source",
    default=None,
    help="Refit the calibrated defaults leaving out one chip family, source (a publisher: all "
    "its tables and papers; the default when no value is given), company (all its publishers, "
    "dse/validation_companies.toml) or run at a time and report "
    "every figure's held-out error beside its in-sample error (a few minutes, on every core).",
)
@click.option(
    "--run",
    "run_id",
    default=None,
    metavar="ID",
    help="Trace one published run: the facts the model is given, the plan it runs, the step "
    "time's parts and memory, and each published figure beside the prediction.",
)
@format_option
def validate(fmt: str, cross: str | None, run_id: str | None, **options: Any) -> None:
    """The model against published training runs, with one set of defaults.

    Prints each published figure beside the model's prediction and the error
    (predicted / reported − 1), the error of the rule "6·N·T at 40 % of the 16-bit peak" on
    the same figure, then the median absolute errors.
    """
    if cross is not None and run_id is not None:
        raise click.UsageError("--run and --cross-validate are different questions: give one")
    if cross is not None:
        _cross_validate(cross, settings_from(options), fmt)
        return
    if run_id is not None:
        click.echo(render_record(explain_run(run_id, settings_from(options)), fmt))
        return
    settings = settings_from(options)
    rows, memory = run_validation(settings), logged_memory(settings)
    records = _validation_records(rows)
    median, rule = median_abs_error(rows), rule_median_abs_error(rows)
    if fmt == "json":
        click.echo(render_record(_validation_json(rows, memory), "json"))
        return
    # the table shows what fits 100 columns; csv and json carry every key
    shown = [_validation_table_row(r) for r in records] if fmt == "table" else records
    click.echo(render_rows(shown, fmt))
    if fmt == "table":
        worst = max(rows, key=lambda r: abs(r.error))
        click.echo(
            f"\nrule: the error of 6·N·T at 40 % of the 16-bit peak. median |error| {median:.1%} "
            f"over {len(rows)} figures (the rule: {rule:.1%}); largest {worst.error:+.1%} "
            f"({worst.model}, {worst.metric})"
        )
        click.echo(_architecture_line(rows))
        click.echo(_published_plans_line(rows))
        click.echo(_memory_line(memory))


def _architecture_line(rows: list[Any]) -> str:
    """The median |errors| per kind of model (:func:`dse.validation.by_architecture`)."""
    names = {"dense": "dense", "moe": "MoE", "hybrid": "hybrid Mamba-2"}
    parts = [
        f"{names[kind]} {v['median_abs_error']:.1%} over {v['figures']:g} "
        f"(the rule {v['rule_median_abs_error']:.1%})"
        for kind, v in by_architecture(rows).items()
    ]
    return "by kind of model: " + "; ".join(parts)


def _memory_line(memory: list[MemoryCheck]) -> str:
    """The model's peak memory against the peaks the runs' logs report."""
    if not memory:
        return "logged peak memory: no run records one"
    errors = [m.error for m in memory]
    return (
        f"logged peak memory (torch max allocated) of {len(memory)} runs: median |error| "
        f"{memory_median_abs_error(memory):.1%} (from {min(errors):+.1%} to {max(errors):+.1%})"
    )


def _published_plans_line(rows: list[Any]) -> str:
    """The summary of the runs that publish their plan (:func:`dse.validation.published_plans`)."""
    plans = published_plans(rows)
    fit = (
        "every pinned plan fits in memory"
        if not plans.not_fitting
        else f"not fitting in memory: {', '.join(plans.not_fitting)}"
    )
    return (
        f"published plans, pinned: {plans.within} of {plans.figures} steady-state figures within "
        f"±{plans.tolerance:.0%} (median |error| {plans.median_abs_error:.1%}); {fit}"
    )


def _validation_json(rows: list[Any], memory: list[MemoryCheck]) -> dict[str, Any]:
    """What ``dse validate --format json`` prints: every figure, the median |errors|, the
    published plans and the logged peak memory."""
    plans = published_plans(rows)
    return {
        "runs": _validation_records(rows),
        "median_abs_error": median_abs_error(rows),
        "rule_median_abs_error": rule_median_abs_error(rows),
        "by_architecture": by_architecture(rows),
        "published_plans": {
            "figures": plans.figures,
            "within_tolerance": plans.within,
            "tolerance": plans.tolerance,
            "median_abs_error": plans.median_abs_error,
            "not_fitting": list(plans.not_fitting),
        },
        "logged_memory": {
            "median_abs_error": memory_median_abs_error(memory),
            "runs": [
                {
                    "run": m.run,
                    "predicted_gb": m.predicted_gb,
                    "logged_gb": m.logged_gb,
                    "error": m.error,
                }
                for m in memory
            ],
        },
    }


def _validation_records(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "run": r.run,
            "model": r.model,
            "family": r.family,
            "metric": r.metric,
            "predicted": r.predicted,
            "reported": r.reported,
            "error": r.error,
            "rule_40pct_error": r.rule_error if r.rule == r.rule else None,
            "run_type": r.run_type,
            "architecture": r.architecture,
            "plan_published": r.plan_published,
            "fits": r.fits,
        }
        for r in rows
    ]


_METRIC_LABELS = {
    "training_days": "days",
    "chip_hours": "chip-hours",
    "mfu": "MFU",
    "energy_mwh": "MWh",
    "avg_power_w_per_chip": "W/chip",
    "step_time_s": "step (s)",
    "tokens_per_s_per_chip": "tok/s/chip",
}


def _validation_table_row(record: dict[str, Any]) -> dict[str, str]:
    """One figure as ``dse validate`` shows it to a person: run id, figure, prediction beside
    the published value (figures of different kinds share the columns), the model's error and
    the 40 %-of-peak rule's."""

    def shown(value: float) -> str:
        if abs(value) >= 1e6:  # millions to 3 figures, so that the rule's column fits too
            return f"{value / 1e6:.3g}M"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"

    rule = record["rule_40pct_error"]
    return {
        "run": record["run"],
        "figure": _METRIC_LABELS.get(record["metric"], record["metric"]),
        "predicted": shown(record["predicted"]),
        "reported": shown(record["reported"]),
        "error": f"{record['error']:+.1%}",
        "rule": "" if rule is None else f"{rule:+.1%}",
    }


def _cross_validate(by: str, settings: Settings, fmt: str) -> None:
    held, fitted = cross_validate(by, settings)
    records = [
        {
            "run": h.row.run,
            "model": h.row.model,
            "family": h.row.family,
            "metric": h.row.metric,
            "reported": h.row.reported,
            "in_sample_error": h.in_sample_error,
            "held_out_error": h.held_out_error,
            "rule_40pct_error": h.row.rule_error if h.row.rule == h.row.rule else None,
            "left_out": h.group,
        }
        for h in held
    ]
    families = summary(held)
    if fmt == "json":
        out = _validation_json(run_validation(settings), logged_memory(settings))
        out["cross_validation"] = {
            "by": by,
            "median_abs_error": families[0]["held_out"],
            "runs": records,
            "summary": families,
            "fitted": fitted,
        }
        click.echo(render_record(out, "json"))
        return
    if fmt == "csv":
        click.echo(render_rows(records, "csv"))
        return
    for family in families:
        for key in ("in_sample", "held_out", "rule_40pct"):
            family[key] = f"{family[key]:.1%}"
    click.echo(render_rows(families, "table"))
    scales, vendors = fitted.pop("family_scales"), fitted.pop("vendor_scales")
    click.echo(
        f"\nleft out one {by} at a time; fitted on all figures: "
        + ", ".join(f"{k} = {v:.3g}" for k, v in fitted.items())
    )
    for what, values in (("family", scales), ("vendor", vendors)):
        click.echo(
            f"gemm_efficiency_scale per {what}: "
            + ", ".join(f"{k} = {v:.3g}" for k, v in sorted(values.items()))
        )
