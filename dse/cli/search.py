"""``dse sweep``, ``dse search``, ``dse pareto`` and ``dse plot``: explore a design space."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from dse.catalog.workloads import PRECISIONS, Workload, load_workload
from dse.cli._help import GroupedCommand
from dse.cli._output import format_option, render_record, render_rows, verbosity
from dse.cli.evaluate import settings_from, settings_options, workload_with
from dse.errors import InputError
from dse.space import DEFAULT_OBJECTIVES, Objective, Space, load_space

_PATH = click.Path(dir_okay=False, path_type=Path)


def _problem(
    space_name: str,
    workload: str | None,
    precision: str | None,
    tokens: float | None,
    options: dict[str, Any],
) -> Any:
    from dse.search import Problem

    settings = settings_from(options)
    space = load_space(space_name)
    job = _workload(space, workload)
    return Problem(space, workload_with(job, tokens, precision), settings)


def _workload(space: Space, name: str | None) -> Workload:
    if name is not None:
        return load_workload(name)
    if space.workload is None:
        raise InputError("--workload", "", "a workload id (the space names none)", "nothing")
    return space.workload


def _progress(quiet: bool) -> bool:
    return not quiet and verbosity() >= 0 and sys.stderr.isatty()


def problem_options(command: Any) -> Any:
    """Options shared by ``sweep`` and ``search``: the space, workload, output and seed."""
    for option in reversed(
        [
            click.argument("space"),
            click.option(
                "--workload",
                default=None,
                help="Catalog id or path to a workload TOML file (default: the space's).",
            ),
            click.option(
                "--precision",
                type=click.Choice(PRECISIONS),
                default=None,
                help="Training number format (default: the workload's).",
            ),
            click.option("--tokens", type=float, default=None, help="Training tokens."),
            click.option(
                "--out", required=True, type=_PATH, help="Results file: .csv, .parquet or .json."
            ),
            click.option(
                "--seed",
                type=click.IntRange(min=0),
                default=0,
                show_default=True,
                help="Random seed.",
            ),
            click.option("--quiet", is_flag=True, help="No progress bar and no estimate line."),
            click.option(
                "--dry-run",
                is_flag=True,
                help="Print the number of designs, estimated time and output size; write nothing.",
            ),
            click.option(
                "--yes",
                is_flag=True,
                help="Run even above 50,000,000 designs or 10 GB of estimated output.",
            ),
        ]
    ):
        command = option(command)
    return command


@click.command(cls=GroupedCommand)
@problem_options
@click.option(
    "--method",
    type=click.Choice(["grid", "random", "lhs"]),
    default="random",
    show_default=True,
    help="Every grid point, uniform random samples, or a Latin hypercube.",
)
@click.option(
    "--samples",
    type=int,
    default=None,
    help="Design points for random/lhs (default 10,000); not with grid.",
)
@click.option("--pareto-only", is_flag=True, help="Keep only the Pareto set (streamed).")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=16_384,
    show_default=True,
    help="Designs per model call.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes evaluating chunks.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate on a local Dask cluster of N worker processes.",
)
@click.option(
    "--scheduler",
    default=None,
    help="Evaluate on a running Dask cluster (e.g. tcp://HOST:8786).",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Discard an interrupted run's records (OUT.manifest.json, OUT.parts/) and start over.",
)
@format_option
@settings_options
def sweep(
    space: str,
    workload: str | None,
    precision: str | None,
    tokens: float | None,
    out: Path,
    seed: int,
    quiet: bool,
    method: str,
    samples: int | None,
    pareto_only: bool,
    chunk_size: int,
    jobs: int,
    workers: int | None,
    scheduler: str | None,
    restart: bool,
    dry_run: bool,
    yes: bool,
    fmt: str,
    **options: Any,
) -> None:
    """Evaluate a design space (grid, random or Latin hypercube), streamed to a results file.

    SPACE is a catalog id (spaces/) or a path to a space TOML file. Every evaluated design is
    written with its metrics, constraints, feasibility and Pareto mark, unless --pareto-only.
    """
    from dse.estimate import estimate_sweep
    from dse.export import check_suffix, provenance
    from dse.search import run_sweep
    from dse.search.executors import executor_for

    check_suffix(out)
    problem = _problem(space, workload, precision, tokens, options)
    if method != "grid" and samples is None:
        samples = 10_000
    estimate = estimate_sweep(
        problem,
        out,
        method=method,
        samples=samples,
        pareto_only=pareto_only,
        parallel=workers or jobs,
    )
    if _stop_here(estimate, out, dry_run=dry_run, yes=yes, quiet=quiet, fmt=fmt):
        return
    with executor_for(jobs=jobs, workers=workers, scheduler=scheduler) as executor:
        summary = run_sweep(
            problem,
            out,
            provenance(**problem.describe()),
            method=method,
            samples=samples,
            seed=seed,
            chunk_size=chunk_size,
            pareto_only=pareto_only,
            executor=executor,
            restart=restart,
            progress=_progress(quiet),
        )
    click.echo(
        render_record(
            {
                "out": str(summary.path),
                "evaluated": summary.evaluated,
                "rows": summary.rows,
                "feasible": summary.feasible,
                "pareto": summary.pareto,
                "seconds": round(summary.seconds, 2),
                "designs_per_s": round(summary.evaluated / max(summary.seconds, 1e-9)),
            },
            fmt,
        )
    )


@click.command(cls=GroupedCommand)
@problem_options
@click.option(
    "--engine",
    type=click.Choice(["pymoo", "optuna"]),
    default="pymoo",
    show_default=True,
    help="Optimizer library.",
)
@click.option("--evals", type=int, default=1000, show_default=True, help="Design evaluations.")
@click.option(
    "--algorithm",
    default=None,
    help="pymoo: nsga2 (default), nsga3, unsga3, sms-emoa, spea2.",
)
@click.option(
    "--sampler",
    default=None,
    help="optuna: nsga2 (default), tpe, random.",
)
@click.option("--pop-size", type=int, default=64, show_default=True, help="Population size.")
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="optuna: trials per model call (default: the population size).",
)
@click.option(
    "--storage",
    default=None,
    help="optuna: storage URL (sqlite:///study.db, postgresql+psycopg://..., journal:///abs/file.log).",
)
@click.option("--study", default=None, help="optuna: study name (default dse-SPACE-WORKLOAD).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="optuna: N 'dse worker' processes adding the trials to the --storage study.",
)
@format_option
@settings_options
def search(
    space: str,
    workload: str | None,
    precision: str | None,
    tokens: float | None,
    out: Path,
    seed: int,
    quiet: bool,
    engine: str,
    evals: int,
    algorithm: str | None,
    sampler: str | None,
    pop_size: int,
    batch_size: int | None,
    storage: str | None,
    study: str | None,
    workers: int | None,
    dry_run: bool,
    yes: bool,
    fmt: str,
    **options: Any,
) -> None:
    """Multi-objective search of a design space with pymoo or optuna.

    Writes every evaluated design to the results file and marks the Pareto set. With optuna,
    --storage and --study keep the study: running the command again adds --evals trials.
    """
    from dse.estimate import estimate_search
    from dse.export import check_suffix, provenance
    from dse.search import create_engine, run_search

    check_suffix(out)
    engine_options: dict[str, Any] = {"pop_size": pop_size}
    if engine == "pymoo":
        for flag, value in (
            ("--sampler", sampler),
            ("--batch-size", batch_size),
            ("--storage", storage),
            ("--study", study),
            ("--workers", workers),
        ):
            if value is not None:
                raise InputError(flag, "", "only with --engine optuna", value)
        engine_options["algorithm"] = algorithm
    else:
        if algorithm is not None:
            raise InputError("--algorithm", "", "only with --engine pymoo", algorithm)
        engine_options.update(
            sampler=sampler, batch_size=batch_size, storage=storage, study=study, workers=workers
        )
    problem = _problem(space, workload, precision, tokens, options)
    chosen = create_engine(engine, **engine_options)
    estimate = estimate_search(
        problem, out, engine=engine, evals=evals, batch=batch_size or pop_size
    )
    if _stop_here(estimate, out, dry_run=dry_run, yes=yes, quiet=quiet, fmt=fmt):
        return
    summary = run_search(
        problem,
        chosen,
        out,
        provenance(**problem.describe()),
        evals=evals,
        seed=seed,
        progress=_progress(quiet),
    )
    record: dict[str, Any] = {
        "out": str(summary.path),
        "rows": summary.rows,
        "feasible": summary.feasible,
        "pareto": summary.pareto,
        "seconds": round(summary.seconds, 2),
    }
    record.update({k: v for k, v in summary.details.items() if v is not None})
    click.echo(render_record(record, fmt))


def _stop_here(
    estimate: Any, out: Path, *, dry_run: bool, yes: bool, quiet: bool, fmt: str
) -> bool:
    """State the run's estimate (on a terminal, like the progress bar); True for a dry run
    (print it, write nothing). Refuses a run above the size limits unless ``yes``, or whose
    ``out`` is not writable."""
    from dse.estimate import check_limits
    from dse.export import AtomicFile

    if dry_run:
        record = {**estimate.record(), "over_limit": estimate.over_limit(), "dry_run": True}
        click.echo(render_record(record, fmt))
        return True
    AtomicFile(out).discard()
    check_limits(estimate, yes)
    if _progress(quiet) or (not quiet and verbosity() >= 1):
        click.echo(f"dse: {estimate.text()}", err=True)
    return False


@click.command()
@click.option("--storage", required=True, help="Storage URL of the study (as given to search).")
@click.option("--study", required=True, help="Name of the study to join.")
@click.option("--evals", type=click.IntRange(min=1), default=None, help="Trials to add.")
@click.option(
    "--total", type=click.IntRange(min=1), default=None, help="Stop when the study holds N trials."
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Sampler seed.")
@format_option
def worker(
    storage: str, study: str, evals: int | None, total: int | None, seed: int | None, fmt: str
) -> None:
    """Join a shared optuna study (started by 'dse search --engine optuna --storage URL') and
    add trials to it: --evals more, or until it holds --total (whichever comes first).

    The study names its space, workload, settings and sampler; the space file must be at the
    same path on this machine.
    """
    from dse.lifeline import die_with_parent_from_env
    from dse.search.shared_study import run_worker

    die_with_parent_from_env()
    added = run_worker(storage, study, evals=evals, total=total, seed=seed)
    click.echo(render_record({"study": study, "added": added}, fmt))


def _objectives(
    meta: dict[str, Any], minimize: tuple[str, ...], maximize: tuple[str, ...]
) -> tuple[Objective, ...]:
    """Objectives from the options, else the file's provenance, else the default three."""
    if minimize or maximize:
        return tuple(Objective(n) for n in minimize) + tuple(Objective(n, True) for n in maximize)
    if meta.get("objectives"):
        return tuple(Objective(o["name"], bool(o.get("maximize"))) for o in meta["objectives"])
    return tuple(Objective(n) for n in DEFAULT_OBJECTIVES)


def _check_columns(source: Path, frame: Any, objectives: tuple[Objective, ...]) -> None:
    import pandas as pd

    for o in objectives:
        if o.name not in frame:
            raise InputError(source, o.name, "an objective column of the results file", o.name)
        if not pd.api.types.is_numeric_dtype(frame[o.name]):
            raise InputError(source, o.name, "a numeric column", str(frame[o.name].dtype))


objective_options = [
    click.option(
        "--minimize",
        multiple=True,
        help="Objective column to minimize (repeat; default: the file's objectives).",
    ),
    click.option("--maximize", multiple=True, help="Objective column to maximize (repeat)."),
]


@click.command()
@click.argument("results", type=_PATH)
@click.option(
    "--out",
    type=_PATH,
    default=None,
    help="Write the Pareto rows here (.csv/.parquet/.json) instead of listing them.",
)
@click.option(
    "--ref",
    default=None,
    help="Hypervolume reference point, comma-separated in objective order "
    "(default: 10% beyond the worst feasible value of each objective).",
)
@objective_options[0]
@objective_options[1]
@format_option
def pareto(
    results: Path,
    out: Path | None,
    ref: str | None,
    minimize: tuple[str, ...],
    maximize: tuple[str, ...],
    fmt: str,
) -> None:
    """The non-dominated feasible rows of a results file and their hypervolume.

    Lists the front's rows (every column with --format json/csv; the varying design parameters,
    objectives and plan as a table), then the hypervolume with its reference point and units
    (on stderr for json/csv). With --out, writes the rows to a file and prints the summary.
    """
    from dse.export import check_suffix, read_results, write_results
    from dse.pareto import results_front

    if out is not None:
        check_suffix(out)
    frame, meta = read_results(results)
    objectives = _objectives(meta, minimize, maximize)
    _check_columns(results, frame, objectives)
    reference = None if ref is None else _parse_ref(ref, len(objectives))
    front = results_front(frame, objectives, reference)
    rows = frame[front.mask]
    if out is not None:
        columns = {name: rows[name].to_numpy() for name in rows.columns}
        columns["pareto"] = np.ones(len(rows), dtype=bool)
        write_results(
            out,
            columns,
            {
                **meta,
                "pareto_of": str(results),
                "objectives": [{"name": o.name, "maximize": o.maximize} for o in objectives],
                "hypervolume": front.hypervolume,
                "hypervolume_unit": front.hypervolume_unit,
                "reference": front.reference.tolist(),
            },
        )
        click.echo(render_record({**_front_summary(results, frame, front), "out": str(out)}, fmt))
        return
    if fmt == "table":
        click.echo(render_rows(_front_table(rows, objectives), "table"))
        click.echo("\n" + _front_text(frame, front))
    else:
        records = [{str(k): v for k, v in r.items()} for r in rows.to_dict(orient="records")]
        click.echo(render_rows(records, fmt))
        click.echo(_front_text(frame, front), err=True)


def _front_summary(results: Path, frame: Any, front: Any) -> dict[str, Any]:
    return {
        "input": str(results),
        "rows": len(frame),
        "feasible": int(front.feasible.sum()),
        "front": int(front.mask.sum()),
        "objectives": ", ".join(_objective_text(o) for o in front.objectives),
        "reference": {
            o.name: float(v) for o, v in zip(front.objectives, front.reference, strict=True)
        },
        "reference_basis": "given" if front.reference_given else "10% beyond the worst feasible",
        "hypervolume": front.hypervolume,
        "hypervolume_unit": front.hypervolume_unit,
    }


def _front_text(frame: Any, front: Any) -> str:
    import textwrap

    objectives = ", ".join(_objective_text(o) for o in front.objectives)
    lines = (
        f"front: {int(front.mask.sum()):,} of {len(frame):,} rows "
        f"({int(front.feasible.sum()):,} feasible); objectives: {objectives}",
        f"hypervolume: {front.hypervolume:.4g} {front.hypervolume_unit}",
        f"reference point: {front.reference_text()}",
    )
    return "\n".join(textwrap.fill(line, 100, subsequent_indent="  ") for line in lines)


def _front_table(rows: Any, objectives: tuple[Objective, ...]) -> list[dict[str, Any]]:
    """The front for a person: its row number in the file, objectives, the design parameters
    that vary over the front, and the plan."""
    from dse.export import DESIGN_COLUMNS
    from dse.model.evaluate import PLAN_COLUMNS

    names = [o.name for o in objectives]
    varying = [c for c in DESIGN_COLUMNS if c in rows and c not in names and rows[c].nunique() > 1]
    plan = [c for c in PLAN_COLUMNS if c in rows and c not in names]
    shown = rows[names + varying + plan]
    records = shown.to_dict("records")
    return [{"row": int(i), **r} for i, r in zip(rows.index, records, strict=True)]


def _objective_text(objective: Objective) -> str:
    return f"{'max' if objective.maximize else 'min'} {objective.name}"


def _parse_ref(text: str, k: int) -> np.ndarray:
    try:
        values = np.array([float(part) for part in text.split(",")])
    except ValueError:
        raise InputError("--ref", "", f"{k} comma-separated numbers", text) from None
    if len(values) != k or not np.all(np.isfinite(values)):
        raise InputError("--ref", "", f"{k} comma-separated numbers", text)
    return values


@click.command()
@click.argument("results", type=_PATH)
@click.option("--out", required=True, type=_PATH, help="FILE.png (or .svg/.pdf) or FILE.html.")
@objective_options[0]
@objective_options[1]
@click.option(
    "--reference",
    "references",
    multiple=True,
    metavar="CHIP",
    help="Mark a catalog chip (id or chip TOML) evaluated on the file's workload (repeat).",
)
@click.option(
    "--num-chips",
    type=click.IntRange(min=1),
    default=None,
    help="Cluster size of the --reference chips (default: the file's, when it has one).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="HTML: inline plotly.js (about 4.8 MB) instead of writing plotly.min.js beside the file.",
)
def plot(
    results: Path,
    out: Path,
    minimize: tuple[str, ...],
    maximize: tuple[str, ...],
    references: tuple[str, ...],
    num_chips: int | None,
    offline: bool,
) -> None:
    """Pareto plots: pairwise objective projections and parallel coordinates.

    PNG by matplotlib; HTML by plotly, interactive: hover a point to see its design. An HTML
    file loads plotly.js from plotly.min.js in its folder (written once), unless --offline.
    """
    from dse.export import read_results
    from dse.plot import plot_results, reference_markers

    frame, meta = read_results(results)
    objectives = _objectives(meta, minimize, maximize)
    _check_columns(results, frame, objectives)
    markers = reference_markers(references, meta, num_chips, frame)
    size = plot_results(frame, objectives, out, markers, offline=offline)
    click.echo(f"{out}: {size} Pareto designs of {len(frame)} rows")


@click.command()
@click.argument("results", type=_PATH)
@click.option("--out", required=True, type=_PATH, help="The report page, FILE.html.")
@objective_options[0]
@objective_options[1]
def report(results: Path, out: Path, minimize: tuple[str, ...], maximize: tuple[str, ...]) -> None:
    """One self-contained HTML page for a sweep or search results file.

    Provenance, a summary with the hypervolume, the best design per objective, the front as a
    sortable table, pairwise projections and parallel coordinates. plotly.js is inlined, so
    the page opens anywhere without a network.
    """
    from dse.export import read_results
    from dse.report import write_report

    if out.suffix.lower() != ".html":
        raise InputError("--out", "", "a file name ending in .html", str(out))
    frame, meta = read_results(results)
    objectives = _objectives(meta, minimize, maximize)
    _check_columns(results, frame, objectives)
    if len(objectives) < 2:
        raise InputError(
            "--minimize/--maximize", "", "at least two objectives to report", len(objectives)
        )
    front = write_report(frame, meta, objectives, results, out)
    click.echo(
        f"{out}: {int(front.mask.sum()):,} Pareto designs of {len(frame):,} rows "
        f"({int(front.feasible.sum()):,} feasible)"
    )
