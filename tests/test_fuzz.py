"""Fuzzing the command line (issue 16, item 5): generated chip, workload and space files,
command-line options, results files and hostile paths, each run through ``dse`` in this
process. Every run must end in one of two outcome classes:

* a clean error: exit status 2, exactly one line on stderr (``dse: error: ...``), no traceback;
* a success whose output is finite and physically valid: no NaN or infinity, 0 <= MFU <= 1,
  times, energies and costs >= 0.

Anything else is counted as a traceback (an exception escaped), a hang (no answer within
:data:`HANG_S` seconds) or NaN (a success with invalid numbers). The default run holds a short
profile of each category (well under a minute in all); ``python -m pytest -m fuzz`` runs the
long profile (thousands of inputs) and prints the counts per category and outcome.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.cli import main
from dse.errors import InputError
from dse.files import read_toml
from dse.parameters import CATEGORICAL
from dse.space import PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
HANG_S = 20
"""A run that has not ended after this many seconds counts as a hang."""
SHORT = 25
"""Examples per category in the default run."""
LONG = int(os.environ.get("DSE_FUZZ_EXAMPLES", "600"))
"""Examples per category in the long profile (``-m fuzz``)."""
OUTCOMES = ("clean error", "success", "traceback", "hang", "nan")
COUNTS: dict[str, Counter[str]] = {}
BAD: dict[str, list[str]] = {}

NON_NEGATIVE = (
    "training_days", "chip_hours", "energy_mwh", "cost_usd", "capex_usd", "step_time_s",
    "avg_chip_power_w", "cluster_power_mw", "memory_per_chip_gb", "peak_tflop_s",
    "hbm_bandwidth_tb_s", "hbm_capacity_gb", "die_area_mm2", "silicon_area_mm2",
    "unit_cost_usd", "unit_price_usd", "training_flops", "tokens", "compute",
)  # fmt: skip


class HangError(Exception):
    """The run did not end within :data:`HANG_S` seconds."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise HangError()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_dse(*args: object) -> tuple[str, str, str]:
    """Run ``dse ARGS`` in this process: (outcome class, stdout, what went wrong)."""
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    try:
        with deadline(HANG_S), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except HangError:
        return "hang", "", f"no answer within {HANG_S} s"
    except BaseException:  # anything that escapes main is the finding
        return "traceback", "", traceback.format_exc(limit=-3)
    text = err.getvalue()
    lines = text.strip().splitlines()
    if code == 0:
        return "success", out.getvalue(), text
    one_line = len(lines) == 1 and lines[0].startswith("dse: error: ")
    if code == 2 and one_line and "Traceback" not in text:
        return "clean error", "", text
    return "traceback", "", f"exit {code}: {text[-800:]}"


def invalid_numbers(value: Any, key: str = "") -> list[str]:
    """Keys of ``value`` (a JSON document) holding NaN, infinity, null metrics, an MFU outside
    [0, 1] or a negative time, energy or cost."""
    found: list[str] = []
    if isinstance(value, dict):
        for name, item in value.items():
            found += invalid_numbers(item, str(name))
    elif isinstance(value, list):
        for item in value:
            found += invalid_numbers(item, key)
    elif value is None and key not in ("price_note", "notes"):
        found.append(f"{key}=null")
    elif isinstance(value, float | int) and not isinstance(value, bool):
        fraction = key in ("mfu", "hfu", "die_yield")
        if (
            not math.isfinite(value)
            or (fraction and not 0.0 <= value <= 1.0)
            or (key in NON_NEGATIVE and value < 0)
        ):
            found.append(f"{key}={value}")
    return found


def invalid_results(path: Path) -> list[str]:
    """Invalid numbers in a results file's metric columns."""
    from dse.export import read_results
    from dse.model.evaluate import METRICS

    frame = read_results(path)[0]
    found: list[str] = []
    for column in [*METRICS, *[c for c in frame.columns if str(c).startswith("g_")]]:
        if column in frame.columns:
            values = frame[column].astype(float).tolist()
            for value in values:
                found += invalid_numbers(value, str(column))
    return found[:5]


def record(category: str, outcome: str, detail: str, example: str) -> None:
    COUNTS.setdefault(category, Counter())[outcome] += 1
    if outcome not in ("clean error", "success"):
        BAD.setdefault(category, []).append(
            f"{outcome}: {detail[-1500:]}\n  input: {example[:1500]}"
        )


def outcome_of(
    category: str, example: str, *args: object, results: Path | None = None, echo: bool = False
) -> None:
    """Run ``dse ARGS`` and record its outcome (a success checked for invalid numbers, unless
    it only ``echo``es rows of a user's own results file)."""
    outcome, stdout, detail = run_dse(*args)
    if outcome == "success" and not echo:
        found: list[str] = []
        if stdout.lstrip().startswith(("{", "[")):
            found = invalid_numbers(json.loads(stdout))
        if results is not None and results.exists():
            found += invalid_results(results)
        if found:
            outcome, detail = "nan", ", ".join(found[:5])
    record(category, outcome, detail, example)


# TOML writing (inline tables, so any nesting is one line per top-level key) -----------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ "
            + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
            + " }"
        )
    raise TypeError(type(value))


def toml_text(document: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(str(k))} = {toml_value(v)}\n" for k, v in document.items())


# Strategies ---------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=5000),
    st.sampled_from([0, 1, -1, 0.5, 5e-324, 1e-300, 1e300, 2**63, 16, 17, 10**7]),
)
SCALARS = st.one_of(NUMBERS, st.booleans(), TEXT)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3))


VALUES = st.recursive(SCALARS, _nested, max_leaves=6)


def _keys(document: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in document.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _keys(value, (*prefix, key))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with a few keys given random values (numbers mostly), removed or added."""
    document = json.loads(json.dumps(base))
    keys = _keys(document)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(keys))
        parent = document
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None  # type: ignore[assignment]
        if not isinstance(parent, dict):
            continue
        action = draw(
            st.sampled_from(["scale", "scale", "scale", "number", "value", "drop", "add"])
        )
        old = parent.get(path[-1])
        if action == "scale" and isinstance(old, int | float) and not isinstance(old, bool):
            factor = draw(st.sampled_from([0.01, 0.1, 0.5, 0.9, 1.1, 2.0, 4.0, 10.0, 100.0]))
            value = old * factor
            parent[path[-1]] = round(value) if isinstance(old, int) else value
        elif action in ("number", "scale"):
            parent[path[-1]] = draw(NUMBERS)
        elif action == "value":
            parent[path[-1]] = draw(VALUES)
        elif action == "drop":
            parent.pop(path[-1], None)
        else:
            parent[draw(TEXT)] = draw(VALUES)
    return document


def base_document(kind: str, name: str) -> dict[str, Any]:
    return dict(read_toml(ROOT / kind / f"{name}.toml"))


CHIP_BASES = [base_document("chips", c) for c in ("h100-sxm", "mi300x", "tpu-v5p")]
WORKLOAD_BASES = [base_document("workloads", w) for w in ("llama3.1-70b", "deepseek-v3")]
NUMERIC_PARAMETERS = [p for p in PARAMETERS if p not in CATEGORICAL]  # analog_cell too


@st.composite
def dimension(draw: st.DrawFn, name: str) -> Any:
    if name in ("node", "hbm_generation"):
        ids = (
            ["n7", "n5", "n4", "n3", "n2"] if name == "node" else ["hbm2e", "hbm3", "hbm3e", "hbm4"]
        )
        return {
            "choices": draw(st.lists(st.one_of(st.sampled_from(ids), TEXT), min_size=0, max_size=3))
        }
    shape = draw(st.sampled_from(["range", "range", "choices", "junk"]))
    if shape == "choices":
        return draw(st.lists(NUMBERS, max_size=4))
    if shape == "junk":
        return draw(VALUES)
    spec = {"low": draw(NUMBERS), "high": draw(NUMBERS)}
    extra = draw(st.sampled_from(["", "step", "levels", "log", "log-levels"]))
    if extra == "step":
        spec["step"] = draw(NUMBERS)
    elif extra == "levels":
        spec["levels"] = draw(st.one_of(st.integers(-3, 40), NUMBERS))
    elif extra.startswith("log"):
        spec["log"] = draw(st.one_of(st.booleans(), SCALARS))
        if extra == "log-levels":
            spec["levels"] = draw(st.integers(-3, 40))
    return spec


@st.composite
def plausible_spaces(draw: st.DrawFn) -> dict[str, Any]:
    """A space inside the declared bounds (mostly valid), to exercise the model's outputs."""
    from dse.space import INTEGER_PARAMETERS, parameter_bounds

    def inside(name: str) -> float:
        low, high = parameter_bounds(name)
        low = max(low, 1e-3)
        value = math.exp(draw(st.floats(math.log(low), math.log(high))))
        return float(round(value)) if name in INTEGER_PARAMETERS else value

    dims: dict[str, Any] = {}
    for name in draw(
        st.lists(st.sampled_from(NUMERIC_PARAMETERS), min_size=1, max_size=4, unique=True)
    ):
        a, b = sorted((inside(name), inside(name)))
        dims[name] = (
            {"low": a, "high": b, "log": True} if draw(st.booleans()) else [a, b] if a != b else [a]
        )
    if "num_chips" not in dims:
        dims["num_chips"] = {
            "low": 8,
            "high": draw(st.sampled_from([64, 4096, 10_000_000])),
            "log": True,
        }
    document: dict[str, Any] = {"name": "plausible", "dimensions": dims}
    if draw(st.booleans()):
        document["constraints"] = {"max_training_days": draw(st.floats(1e-3, 1e6))}
    return document


@st.composite
def spaces(draw: st.DrawFn) -> dict[str, Any]:
    names = st.one_of(st.sampled_from(PARAMETERS), TEXT)
    document: dict[str, Any] = {"name": draw(st.one_of(TEXT, st.just("fuzz")))}
    dims = {}
    for name in draw(st.lists(names, max_size=4, unique=True)):
        dims[name] = draw(dimension(name))
    fixed = {
        n: draw(NUMBERS)
        for n in draw(st.lists(st.sampled_from(NUMERIC_PARAMETERS), max_size=3, unique=True))
    }
    if draw(st.booleans()) and "num_chips" not in dims:
        fixed["num_chips"] = draw(st.one_of(st.integers(1, 100_000), NUMBERS))
    document["dimensions"] = dims
    document["fixed"] = fixed
    if draw(st.booleans()):
        metric = st.sampled_from(
            ["training_days", "mfu", "cost_usd", "die_area_mm2", "memory_per_chip_gb"]
        )
        key = st.builds(lambda s, m: f"{s}_{m}", st.sampled_from(["max", "min", "mid"]), metric)
        document["constraints"] = draw(st.dictionaries(key, NUMBERS, max_size=2))
    if draw(st.booleans()):
        document["objectives"] = {
            "minimize": draw(
                st.lists(st.sampled_from(["cost_usd", "energy_mwh", "mfu", "x"]), max_size=2)
            )
        }
    if draw(st.integers(0, 5)) == 0:
        document["base_chip"] = draw(
            st.one_of(st.sampled_from(["h100-sxm", "b200", "mi300x"]), TEXT)
        )
    return document


SETTING_OPTIONS = [
    "--gemm-efficiency-max", "--gemm-kernel-latency-us", "--attention-efficiency",
    "--hbm-efficiency", "--collective-efficiency", "--dp-overlap", "--tp-overlap", "--goodput",
    "--memory-reserve-fraction", "--weight-bytes-per-param", "--pue",
    "--electricity-usd-per-kwh", "--service-life-years", "--price-to-cost-markup",
]  # fmt: skip
OPTION_TEXT = st.one_of(
    NUMBERS.map(str), TEXT, st.sampled_from(["", "-1", "0", "nan", "inf", "1e400", "08", "1_0"])
)


@st.composite
def evaluate_options(draw: st.DrawFn) -> list[str]:
    args = ["evaluate", "--format", "json"]
    args += ["--chip", draw(st.sampled_from(["h100-sxm", "b200", "mi300x", "tpu-v5p", "gaudi3"]))]
    args += [
        "--workload",
        draw(st.sampled_from(["llama3.1-70b", "deepseek-v3", "gpt3-175b", "mixtral-8x7b"])),
    ]
    args += ["--num-chips", draw(st.one_of(st.integers(1, 100_000).map(str), OPTION_TEXT))]
    pinned = ["--tp", "--pp", "--dp", "--ep", "--microbatch"]
    for option in draw(
        st.lists(
            st.sampled_from(
                [
                    *pinned,
                    "--tokens",
                    "--precision",
                    "--recompute",
                    "--zero-stage",
                    *SETTING_OPTIONS,
                ]
            ),
            max_size=4,
            unique=True,
        )
    ):
        args += [option, draw(st.one_of(st.integers(1, 64).map(str), OPTION_TEXT))]
    return args


RESULT_COLUMNS = [
    "cost_usd",
    "energy_mwh",
    "training_days",
    "mfu",
    "feasible",
    "num_chips",
    "g_memory",
]


def real_results() -> str:
    """A real sweep's results, as CSV text (made once)."""
    if not REAL:
        folder = Path(tempfile.mkdtemp())
        out = folder / "real.csv"
        outcome, _, detail = run_dse("sweep", ROOT / "spaces" / "benchmark.toml", "--workload",
                                     "llama3.1-70b", "--method", "random", "--samples", "24",
                                     "--out", out, "--quiet")  # fmt: skip
        assert outcome == "success", detail
        REAL.append(out.read_text())
    return REAL[0]


REAL: list[str] = []


@st.composite
def results_files(draw: st.DrawFn) -> tuple[str, str]:
    """(suffix, content) of a results file: a real one with cells changed, or made up."""
    if draw(st.booleans()):
        lines = real_results().splitlines()
        for _ in range(draw(st.integers(0, 4))):
            i = draw(st.integers(0, len(lines) - 1))
            cells = lines[i].split(",")
            j = draw(st.integers(0, len(cells) - 1))
            cells[j] = str(
                draw(st.one_of(NUMBERS, TEXT.filter(lambda t: "," not in t and "\n" not in t)))
            )
            lines[i] = ",".join(cells)
        return ".csv", "\n".join(lines) + "\n"
    suffix = draw(st.sampled_from([".csv", ".json", ".parquet"]))
    columns = draw(
        st.lists(
            st.one_of(st.sampled_from(RESULT_COLUMNS), TEXT), min_size=0, max_size=5, unique=True
        )
    )
    rows = draw(
        st.lists(
            st.lists(
                st.one_of(NUMBERS, st.booleans(), TEXT),
                min_size=len(columns),
                max_size=len(columns),
            ),
            max_size=4,
        )
    )
    if suffix == ".csv":
        text = ",".join(columns) + "\n" + "\n".join(",".join(str(v) for v in row) for row in rows)
        return suffix, text
    shape = draw(st.sampled_from(["records", "table", "junk"]))
    if shape == "records":
        document: Any = [dict(zip(columns, row, strict=True)) for row in rows]
    elif shape == "table":
        document = {
            "metadata": draw(VALUES),
            "rows": [dict(zip(columns, row, strict=True)) for row in rows],
        }
    else:
        document = draw(VALUES)
    return suffix, json.dumps(document, allow_nan=True)


def hostile_path(base: Path, kind: str) -> Path:
    """A path of ``kind`` under ``base``: missing, a directory, a FIFO, a device, too long, ..."""
    if kind == "missing":
        return base / "no" / "such.toml"
    if kind == "directory":
        return base
    if kind == "fifo":
        path = base / "fifo.toml"
        if not path.exists():
            os.mkfifo(path)
        return path
    if kind == "device":
        return Path("/dev/zero")
    if kind == "null":
        return Path("/dev/null")
    if kind == "too long":
        return base / ("x" * 300) / ("y" * 5000)
    if kind == "loop":
        path = base / "loop.toml"
        if not path.is_symlink():
            path.symlink_to(path)
        return path
    if kind == "binary":
        path = base / "binary.toml"
        path.write_bytes(bytes(range(256)) * 4)
        return path
    raise ValueError(kind)


PATH_KINDS = ["missing", "directory", "fifo", "device", "null", "too long", "loop", "binary"]


# One hypothesis test per category ---------------------------------------------------------


def category_runner(category: str) -> Callable[[Path], Any]:
    """The hypothesis test of ``category``, writing its files under a given folder."""

    if category == "chip files":

        @given(document=st.sampled_from(CHIP_BASES).flatmap(mutated))
        def run(folder: Path, document: dict[str, Any]) -> None:
            path = folder / "chip.toml"
            path.write_text(toml_text(document))
            outcome_of(category, path.read_text(), "evaluate", "--chip", path, "--workload",
                       "llama3.1-70b", "--num-chips", "1024", "--format", "json")  # fmt: skip

    elif category == "workload files":

        @given(document=st.sampled_from(WORKLOAD_BASES).flatmap(mutated))
        def run(folder: Path, document: dict[str, Any]) -> None:
            path = folder / "job.toml"
            path.write_text(toml_text(document))
            outcome_of(category, path.read_text(), "evaluate", "--chip", "h100-sxm",
                       "--workload", path, "--num-chips", "2048", "--format", "json")  # fmt: skip

    elif category == "space files":

        @given(document=st.one_of(spaces(), plausible_spaces()))
        def run(folder: Path, document: dict[str, Any]) -> None:
            path, out = folder / "space.toml", folder / "out.csv"
            path.write_text(toml_text(document))
            for stale in folder.glob("out.csv*"):
                if stale.is_file():
                    stale.unlink()
            outcome_of(category, path.read_text(), "sweep", path, "--workload", "llama3.1-70b",
                       "--method", "random", "--samples", "64", "--out", out, "--quiet",
                       "--restart", results=out)  # fmt: skip

    elif category == "command-line options":

        @given(args=evaluate_options())
        def run(folder: Path, args: list[str]) -> None:
            outcome_of(category, " ".join(args), *args)

    elif category == "results files":

        @given(file=results_files(), command=st.sampled_from(["pareto", "pareto-json", "plot"]))
        def run(folder: Path, file: tuple[str, str], command: str) -> None:
            path = folder / f"results{file[0]}"
            path.write_text(file[1])
            if command == "plot":
                args: list[object] = ["plot", path, "--out", folder / "plot.html"]
            else:
                args = ["pareto", path] + (["--format", "json"] if command == "pareto-json" else [])
            outcome_of(category, f"{command} {file[0]}: {file[1][:300]}", *args, echo=True)

    elif category == "hostile paths":

        @given(
            kind=st.sampled_from(PATH_KINDS),
            role=st.sampled_from(["chip", "workload", "space", "out", "results"]),
        )
        def run(folder: Path, kind: str, role: str) -> None:
            path = hostile_path(folder, kind)
            space = ROOT / "spaces" / "benchmark.toml"
            if role == "chip":
                args: list[object] = [
                    "evaluate",
                    "--chip",
                    path,
                    "--workload",
                    "llama3.1-70b",
                    "--num-chips",
                    "64",
                ]
            elif role == "workload":
                args = ["evaluate", "--chip", "h100-sxm", "--workload", path, "--num-chips", "64"]
            elif role == "space":
                args = [
                    "sweep",
                    path,
                    "--workload",
                    "llama3.1-70b",
                    "--samples",
                    "8",
                    "--method",
                    "random",
                    "--out",
                    folder / "o.csv",
                    "--quiet",
                ]
            elif role == "out":
                args = [
                    "sweep",
                    space,
                    "--workload",
                    "llama3.1-70b",
                    "--samples",
                    "8",
                    "--method",
                    "random",
                    "--out",
                    f"{path}.csv",
                    "--quiet",
                    "--restart",
                ]
            else:
                args = ["pareto", path]
            outcome_of(category, f"{role} = {kind}", *args, echo=role == "results")

    else:
        raise ValueError(category)
    return run  # type: ignore[no-any-return]


CATEGORIES = [
    "chip files", "workload files", "space files", "command-line options", "results files",
    "hostile paths",
]  # fmt: skip


def fuzz(category: str, examples: int, folder: Path, long: bool) -> None:
    COUNTS.pop(category, None)
    BAD.pop(category, None)
    test = category_runner(category)
    profile = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not long,
        suppress_health_check=list(HealthCheck),
    )
    with tempfile.TemporaryDirectory(dir=folder) as work:
        profile(test)(Path(work))
    counts = COUNTS.get(category, Counter())
    if long:
        print(f"\n{category}: " + ", ".join(f"{o} {counts[o]}" for o in OUTCOMES), flush=True)
        summary = os.environ.get("DSE_FUZZ_COUNTS")
        if summary:
            with open(summary, "a") as handle:
                handle.write(json.dumps({"category": category, **counts}) + "\n")
    bad = BAD.get(category, [])
    findings = os.environ.get("DSE_FUZZ_FINDINGS")
    if findings and bad:
        with open(findings, "a") as handle:
            handle.write("".join(f"== {category}: {entry}\n" for entry in bad))
    assert not bad, f"{len(bad)} of {sum(counts.values())} runs broke a rule:\n" + "\n".join(
        bad[:5]
    )


@pytest.mark.parametrize("category", CATEGORIES)
def test_fuzz_short(category: str, tmp_path: Path) -> None:
    fuzz(category, SHORT, tmp_path, long=False)


@pytest.mark.fuzz
@pytest.mark.parametrize("category", CATEGORIES)
def test_fuzz_long(category: str, tmp_path: Path) -> None:
    fuzz(category, LONG, tmp_path, long=True)


# Findings of the long profile, kept as regressions ---------------------------------------


def test_key_with_a_line_break_is_still_one_line(tmp_path: Path) -> None:
    path = tmp_path / "chip.toml"
    text = (ROOT / "chips" / "h100-sxm.toml").read_text()
    path.write_text(text.replace("[memory]\n", '[memory]\n"a\\u001e\\nb\\u2028" = 1\n', 1))
    outcome, _, detail = run_dse("evaluate", "--chip", path, "--workload", "llama3.1-70b",
                                 "--num-chips", "64")  # fmt: skip
    assert outcome == "clean error", detail
    assert "memory.a\\x1e\\nb\\u2028" in detail


def test_space_without_dimensions_is_one_design(tmp_path: Path) -> None:
    path, out = tmp_path / "one.toml", tmp_path / "one.csv"
    path.write_text('name = "one"\n[fixed]\nnum_chips = 64\n')
    outcome_of("regressions", "no dimensions", "sweep", path, "--workload", "llama3.1-70b",
               "--method", "random", "--samples", "4", "--out", out, "--quiet", results=out)  # fmt: skip
    assert COUNTS["regressions"]["success"] == 1, BAD.get("regressions")


@pytest.mark.parametrize("text", ["[1.5, true]", '[{"cost_usd": 1}, 2]', "[false]"])
def test_results_json_list_of_scalars_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(text)
    for args in (["pareto", path], ["plot", path, "--out", tmp_path / "p.html"]):
        outcome, _, detail = run_dse(*args)
        assert outcome == "clean error", detail


def _raise_input_error(_: int) -> None:
    raise InputError("w.toml", "model.layers", "a whole number > 0", -1)


def test_an_input_error_from_a_worker_process_keeps_its_line() -> None:
    """Parallel validation and sweeps raise bad input in worker processes: the error must come
    back whole (it used to break the pool and end in a traceback)."""
    with (
        ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool,
        pytest.raises(InputError) as caught,
    ):
        list(pool.map(_raise_input_error, [0]))
    assert str(caught.value) == "w.toml: model.layers: expected a whole number > 0, got -1"
    assert caught.value.key == "model.layers"
