"""``dse sweep``, ``dse search``, ``dse pareto`` and ``dse plot``: explore a design space."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from dse import api
from dse.catalog.workloads import PRECISIONS
from dse.cli._help import GroupedCommand
from dse.cli._output import format_option, render_record, render_rows, verbosity
from dse.cli.evaluate import setting_options, settings_options
from dse.errors import InputError
from dse.space import Objective

_PATH = click.Path(dir_okay=False, path_type=Path)


class RegistryChoice(click.Choice):
    """A choice among the names a registry holds when the command runs (not when it is
    defined), so engines registered later, or by entry points, are accepted and listed."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        self._names = names
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        return self._names()

    @choices.setter
    def choices(self, value: Any) -> None:
        pass


def _engine_names() -> list[str]:
    from dse.search.registry import engine_names  # imported when parsing: a fast start

    return engine_names()


def _executor_names() -> list[str]:
    from dse.search.executors import executor_names

    return executor_names()


def _progress(quiet: bool) -> bool:
    return not quiet and verbosity() >= 0 and sys.stderr.isatty()


def _announce(quiet: bool) -> Callable[[Any], None]:
    """Print a run's estimate on a terminal (like the progress bar), or anywhere with ``-v``."""

    def show(estimate: Any) -> None:
        if _progress(quiet) or (not quiet and verbosity() >= 1):
            click.echo(f"dse: {estimate.text()}", err=True)

    return show


def _dry_run(estimate: Any, fmt: str) -> None:
    record = {**estimate.record(), "over_limit": estimate.over_limit(), "dry_run": True}
    click.echo(render_record(record, fmt))


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
    "--executor",
    type=RegistryChoice(_executor_names),
    default=None,
    help="Where chunks run, by name (default: from --jobs, --workers or --scheduler).",
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
    executor: str | None,
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
    settings = setting_options(options)
    problem = {"precision": precision, "tokens": tokens, **settings}
    if dry_run:
        estimate = api.estimate_sweep(
            space,
            workload,
            method=method,
            samples=samples,
            pareto_only=pareto_only,
            parallel=workers or jobs,
            out=out,
            **problem,
        )
        _dry_run(estimate, fmt)
        return
    summary = api.sweep_to_file(
        space,
        workload,
        out=out,
        method=method,
        samples=samples,
        seed=seed,
        pareto_only=pareto_only,
        chunk_size=chunk_size,
        jobs=jobs,
        workers=workers,
        scheduler=scheduler,
        executor=executor,
        restart=restart,
        confirm=yes,
        progress=_progress(quiet),
        on_estimate=_announce(quiet),
        **problem,
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
    type=RegistryChoice(_engine_names),
    default=api.DEFAULT_ENGINE,
    show_default=True,
    help="Search engine: pymoo, optuna or any registered engine.",
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
@click.option("--pop-size", type=int, default=None, help="Population size (default 64).")
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
    pop_size: int | None,
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
    engine_options = {
        "algorithm": algorithm,
        "sampler": sampler,
        "pop_size": pop_size,
        "batch_size": batch_size,
        "workers": workers,
    }
    settings = setting_options(options)
    problem = {"precision": precision, "tokens": tokens, **settings}
    if dry_run:
        estimate = api.estimate_search(
            space,
            workload,
            engine=engine,
            evals=evals,
            batch=batch_size or pop_size or 64,
            out=out,
            **problem,
        )
        _dry_run(estimate, fmt)
        return
    summary = api.search_to_file(
        space,
        workload,
        out=out,
        engine=engine,
        evals=evals,
        seed=seed,
        storage=storage,
        study=study,
        options=engine_options,
        confirm=yes,
        progress=_progress(quiet),
        on_estimate=_announce(quiet),
        **problem,
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
    from dse.export import check_suffix, write_results

    if out is not None:
        check_suffix(out)
    frame = api.load_results(results)
    meta = frame.attrs["dse"]
    objectives = api.objectives_of(frame, minimize, maximize)
    api.check_objectives(frame, objectives, results)
    reference = None if ref is None else _parse_ref(ref, len(objectives))
    front = api.front(frame, objectives, reference)
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


def _parse_ref(text: str, k: int) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
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
    from dse.plot import plot_results, reference_markers

    frame = api.load_results(results)
    objectives = api.objectives_of(frame, minimize, maximize)
    api.check_objectives(frame, objectives, results)
    markers = reference_markers(references, frame.attrs["dse"], num_chips, frame)
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
    from dse.report import write_report

    if out.suffix.lower() != ".html":
        raise InputError("--out", "", "a file name ending in .html", str(out))
    frame = api.load_results(results)
    meta = frame.attrs["dse"]
    objectives = api.objectives_of(frame, minimize, maximize)
    api.check_objectives(frame, objectives, results)
    if len(objectives) < 2:
        raise InputError(
            "--minimize/--maximize", "", "at least two objectives to report", len(objectives)
        )
    front = write_report(frame, meta, objectives, results, out)
    click.echo(
        f"{out}: {int(front.mask.sum()):,} Pareto designs of {len(frame):,} rows "
        f"({int(front.feasible.sum()):,} feasible)"
    )
