"""The Python API (``import dse``): the same numbers and files as the command line, errors in
Python terms, and extension points (engines, executors) that work from outside."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
import tokenize
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dse
from dse.export import read_results
from dse.search import Engine, Problem, registry
from dse.search.executors import EXECUTORS, InProcess
from dse.search.registry import Record

SMALL = """
name = "small"
[dimensions]
node = ["n4", "n3"]
compute_units = { low = 96, high = 160, step = 32 }
hbm_generation = { choices = ["hbm3e", "hbm4"] }
hbm_stacks = { low = 4, high = 6 }
num_chips = { low = 2048, high = 8192, log = true }
[constraints]
max_training_days = 100
"""
PACKAGE = Path(dse.__file__).parent


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_public_names_are_documented() -> None:
    for name in ("load_chip", "load_workload", "load_space", "evaluate", "sweep", "search"):
        assert name in dse.__all__ and getattr(dse, name).__doc__
    assert {"pareto", "InputError", "Evaluation"} <= set(dse.__all__)
    assert issubclass(dse.InputError, ValueError)
    assert (PACKAGE / "py.typed").exists()


def test_evaluate_equals_the_command_lines_json(dse_cli: Callable[..., Any]) -> None:
    result = dse.evaluate("h100-sxm", "llama3.1-70b", num_chips=4096)
    cli = dse_cli("evaluate", "--chip", "h100-sxm", "--workload", "llama3.1-70b",
                  "--num-chips", "4096", "--format", "json")  # fmt: skip
    assert cli.code == 0, cli.err
    expected = cli.json()
    assert result.to_dict().keys() == expected.keys()
    for key, value in expected.items():
        assert result.to_dict()[key] == value, key
    assert result.training_days == expected["training_days"] > 0
    assert result.plan["tp"] == expected["plan"]["tp"]
    assert result.breakdown_s["compute"] == expected["breakdown_s"]["compute"]
    assert result.feasible is True and result.reasons == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.training_days = 1.0  # type: ignore[misc]


def test_options_are_the_command_lines(dse_cli: Callable[..., Any]) -> None:
    result = dse.evaluate(
        "h100-sxm",
        "llama3.1-70b",
        2048,
        precision="fp8",
        tokens=1e12,
        plan={"tp": 8, "pp": 4, "recompute": "selective", "zero_stage": 1},
        pue=1.3,
        electricity_usd_per_kwh=0.12,
    )
    cli = dse_cli("evaluate", "--chip", "h100-sxm", "--workload", "llama3.1-70b",
                  "--num-chips", "2048", "--precision", "fp8", "--tokens", "1e12", "--tp", "8",
                  "--pp", "4", "--recompute", "selective", "--zero-stage", "1", "--pue", "1.3",
                  "--electricity-usd-per-kwh", "0.12", "--format", "json")  # fmt: skip
    assert cli.code == 0, cli.err
    assert result.to_dict() == cli.json()
    assert result.plan["pp"] == 4 and result.precision == "fp8"


def test_sequences_give_a_frame() -> None:
    frame = dse.evaluate(["h100-sxm", "b200"], "llama3.1-70b", [2048, 4096])
    assert isinstance(frame, pd.DataFrame) and len(frame) == 4
    assert list(frame["chip"]) == ["h100-sxm", "h100-sxm", "b200", "b200"]
    assert list(frame["num_chips"]) == [2048, 4096, 2048, 4096]
    single = dse.evaluate("b200", "llama3.1-70b", 4096)
    assert frame.iloc[3]["cost_usd"] == single.cost_usd
    assert frame.iloc[3]["tp"] == single.plan["tp"]
    sizes = dse.evaluate("h100-sxm", "llama3.1-70b", [1024, 2048])
    assert list(sizes["num_chips"]) == [1024, 2048]


def test_sweep_equals_the_command_lines_file(dse_cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "sweep.parquet"
    cli = dse_cli("sweep", "accelerator", "--workload", "llama3.1-70b", "--method", "random",
                  "--samples", "3000", "--seed", "1", "--out", out, "--quiet")  # fmt: skip
    assert cli.code == 0, cli.err
    expected, _ = read_results(out)
    frame = dse.sweep("accelerator", "llama3.1-70b", method="random", samples=3000, seed=1)
    pd.testing.assert_frame_equal(frame, expected)
    request = frame.attrs["dse"]["request"]
    assert request["function"] == "dse.sweep" and request["arguments"]["samples"] == 3000
    front = dse.pareto(frame)
    assert front.index.equals(expected.index[expected["pareto"]])
    assert front.attrs["hypervolume"] > 0
    listed = dse_cli("pareto", out, "--format", "json")
    assert listed.code == 0 and len(listed.json()) == len(front)


def test_sweep_writes_out_too(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.csv"
    frame = dse.sweep(small, "llama3.1-70b", method="grid", out=out)
    written, meta = read_results(out)
    pd.testing.assert_frame_equal(frame, written)
    assert len(frame) == 2 * 3 * 2 * 3 * 3 and meta["method"] == "grid"


def test_search_equals_the_command_lines_file(
    dse_cli: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "search.parquet"
    cli = dse_cli("search", small, "--workload", "llama3.1-70b", "--evals", "60", "--seed", "2",
                  "--pop-size", "20", "--out", out, "--quiet")  # fmt: skip
    assert cli.code == 0, cli.err
    expected, _ = read_results(out)
    frame = dse.search(
        small, "llama3.1-70b", engine="pymoo", evals=60, seed=2, options={"pop_size": 20}
    )
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["pareto"].any()
    assert dse.pareto(frame).index.equals(frame.index[frame["pareto"]])


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: dse.evaluate("h100-sxm", "llama3.1-70b", num_chips=-5), "num_chips"),
        (lambda: dse.evaluate("h100-sxm", "llama3.1-70b", 64, precision="fp16"), "precision"),
        (lambda: dse.evaluate("h100-sxm", "llama3.1-70b", 64, tokens=-1), "tokens"),
        (lambda: dse.evaluate("h100-sxm", "llama3.1-70b", 64, plan={"tp": 3}), "plan.tp"),
        (lambda: dse.evaluate("h100-sxm", "llama3.1-70b", 64, plan={"dp": 99}), "plan.dp"),
        (
            lambda: dse.evaluate("h100-sxm", "llama3.1-70b", 64, plan={"dp": 8, "dp_shard": 3}),
            "plan.dp_shard",
        ),
        (
            lambda: dse.evaluate("h100-sxm", "llama3.1-70b", 64, plan={"dp_shard": 0}),
            "plan.dp_shard",
        ),
        (lambda: dse.evaluate("h100-sxm", "llama3.1-70b", 64, pue=0.5), "pue"),
        (lambda: dse.evaluate("h100-sxm", "llama3.1-70b", 64, pues=1.2), "pues"),
        (lambda: dse.evaluate(3, "llama3.1-70b", 64), "chip"),
        (lambda: dse.sweep("accelerator", "llama3.1-70b", samples=0), "samples"),
        (lambda: dse.sweep("accelerator", "llama3.1-70b", method="sobol"), "method"),
        (lambda: dse.sweep("accelerator", "llama3.1-70b", out="x.txt"), "out"),
        (lambda: dse.search("accelerator", "llama3.1-70b", engine="annealing"), "engine"),
        (lambda: dse.search("accelerator", "llama3.1-70b", evals=0), "evals"),
        (lambda: dse.search("accelerator", options={"sampler": "tpe"}), "sampler"),
    ],
)
def test_bad_arguments_raise_input_error_in_python_terms(
    call: Callable[[], Any], argument: str
) -> None:
    with pytest.raises(dse.InputError) as caught:
        call()
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert message.startswith(f"{argument}: expected") and "got" in message, message
    assert not FLAG.search(message), message


def test_command_line_names_its_options(dse_cli: Callable[..., Any]) -> None:
    result = dse_cli("evaluate", "--chip", "h100-sxm", "--workload", "llama3.1-70b",
                     "--num-chips", "64", "--tp", "3")  # fmt: skip
    assert result.code == 2 and result.err.startswith("dse: error: --tp: expected a divisor")
    result = dse_cli("evaluate", "--chip", "h100-sxm", "--workload", "llama3.1-70b",
                     "--num-chips", "64", "--pue", "0.5")  # fmt: skip
    assert result.code == 2 and result.err.startswith("dse: error: --pue: expected"), result.err


def _strings(path: Path) -> list[tuple[int, str]]:
    with path.open("rb") as handle:
        tokens = tokenize.tokenize(handle.readline)
        return [(t.start[0], t.string) for t in tokens if t.type == tokenize.STRING]


def test_no_module_outside_the_command_line_names_a_flag() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{line}: {FLAG.search(text)[0]}"  # type: ignore[index]
        for path in sorted(PACKAGE.rglob("*.py"))
        if "cli" not in path.relative_to(PACKAGE).parts
        for line, text in _strings(path)
        if FLAG.search(text)
    ]
    assert found == []
    optuna = (PACKAGE / "search" / "optuna_engine.py").read_text()
    assert "subprocess" not in optuna  # workers start through the library, not the CLI


class ToyEngine(Engine):
    """Random designs in one batch: the smallest engine there is."""

    name = "toy"

    def __init__(self, pop_size: int = 8) -> None:
        self.pop_size = pop_size

    def run(self, problem: Problem, evals: int, seed: int, record: Record) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        levels = problem.space.radices
        X = np.column_stack([rng.integers(0, n, evals) for n in levels])
        record(problem.evaluate(X))
        return {"toy_pop_size": self.pop_size}


def test_registered_engine_runs_from_the_command_line(
    dse_cli: Callable[..., Any], small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.ENGINES, "toy", ToyEngine)
    out = tmp_path / "toy.csv"
    result = dse_cli("search", small, "--workload", "llama3.1-70b", "--engine", "toy",
                     "--evals", "40", "--pop-size", "5", "--out", out, "--format", "json")  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["rows"] == 40 and result.json()["toy_pop_size"] == 5
    frame, meta = read_results(out)
    assert meta["engine"] == "toy" and len(frame) == 40 and "pareto" in frame
    wrong = dse_cli("search", small, "--engine", "toy", "--sampler", "tpe", "--out", out)
    assert wrong.code == 2 and "--sampler: expected only with" in wrong.err, wrong.err
    assert "toy" in dse_cli("search", "--help").out


def test_entry_point_engine_runs_from_the_command_line(
    dse_cli: Callable[..., Any], small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = importlib.metadata.EntryPoint(
        name="toy-plugin", value=f"{__name__}:ToyEngine", group=registry.ENTRY_POINT_GROUP
    )
    real = importlib.metadata.entry_points

    def entry_points(**selection: Any) -> Any:
        if selection.get("group") == registry.ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints([point])
        return real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "ENGINES", dict(registry.ENGINES))
    assert "toy-plugin" in registry.engine_names()
    out = tmp_path / "plugin.parquet"
    result = dse_cli("search", small, "--workload", "llama3.1-70b", "--engine", "toy-plugin",
                     "--evals", "30", "--out", out, "--format", "json")  # fmt: skip
    assert result.code == 0, result.err
    assert read_results(out)[1]["engine"] == "toy"
    unknown = dse_cli("search", small, "--engine", "nope", "--out", out)
    assert unknown.code == 2 and "toy-plugin" in unknown.err


class ToyExecutor(InProcess):
    name = "toy-executor"


def test_registered_executor_runs_a_sweep(
    dse_cli: Callable[..., Any], small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(EXECUTORS, "toy-executor", ToyExecutor)
    out = tmp_path / "exec.csv"
    result = dse_cli("sweep", small, "--workload", "llama3.1-70b", "--samples", "50",
                     "--executor", "toy-executor", "--out", out, "--format", "json")  # fmt: skip
    assert result.code == 0, result.err
    frame = dse.sweep(small, "llama3.1-70b", samples=50, executor="toy-executor")
    pd.testing.assert_frame_equal(frame, read_results(out)[0])


def test_provenance_records_the_request_not_the_command_line(
    small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["notebook.py", "--secret-flag"])
    frame = dse.sweep(small, "llama3.1-70b", samples=20, seed=4, pue=1.2)
    meta = frame.attrs["dse"]
    assert "command" not in meta and "secret" not in json.dumps(meta)
    assert meta["request"]["function"] == "dse.sweep"
    assert meta["request"]["arguments"]["seed"] == 4 and meta["request"]["arguments"]["out"] is None
    assert meta["request"]["arguments"]["settings"] == {"pue": 1.2}
    assert meta["settings"] == {"pue": 1.2} and meta["versions"]["dse"] == dse.__version__


def test_load_functions_take_ids_and_paths(small: Path) -> None:
    chip = dse.load_chip("h100-sxm")
    assert dse.load_chip(chip) is chip and chip.id == "h100-sxm"
    assert dse.load_workload("llama3.1-70b").id == "llama3.1-70b"
    assert dse.load_space(small).id == "small"
    with pytest.raises(dse.InputError, match="unknown chip"):
        dse.load_chip("h1000")
