"""Hostile and careless input (issue 16): unreadable, special, huge or deeply nested files,
hostile paths, damaged results metadata, a full disk and two sweeps on one output. Each ends in
one line on stderr and exit status 2 (or a valid result), never a traceback or a hang."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dse.export import read_results
from dse.files import MAX_TOML_BYTES, MAX_TOML_DEPTH, OutputLock
from tests.test_sweep import SMALL

ROOT = Path(__file__).resolve().parents[1]
CHIP = ROOT / "chips" / "h100-sxm.toml"
SWEEP = ["--workload", "llama3.1-70b", "--samples", "300", "--chunk-size", "100", "--quiet"]


def one_line(result: Any, *fragments: str) -> str:
    """The single error line of a failed command, checked to hold every fragment."""
    assert result.code == 2, (result.out, result.err)
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("dse: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_chip_file_without_read_permission(
    dse: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "locked.toml"
    path.write_bytes(CHIP.read_bytes())
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: simulate the refusal the kernel would give
        real_open = os.open

        def refuse(name: Any, *args: Any, **kwargs: Any) -> int:
            if Path(name) == path:
                raise PermissionError(errno.EACCES, "Permission denied", str(name))
            return real_open(name, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    one_line(dse("chips", "show", path), str(path), "permission denied")


@pytest.mark.parametrize("suffix", [".toml", ""])
def test_path_longer_than_the_os_allows(dse: Callable[..., Any], suffix: str) -> None:
    name = "a" * 5000 + suffix
    one_line(dse("chips", "show", name))
    one_line(dse("workloads", "show", f"/tmp/{'b' * 300}/w.toml"), "a name too long")


def test_directory_and_device_as_chip_files(dse: Callable[..., Any], tmp_path: Path) -> None:
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    one_line(dse("chips", "show", folder), "a directory")
    one_line(dse("chips", "show", "/dev/zero"), "a device")


def test_oversized_toml_is_refused_before_reading(dse: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as handle:
        handle.truncate(MAX_TOML_BYTES + 1)  # sparse: no disk used
    one_line(dse("chips", "show", path), str(path), f"at most {MAX_TOML_BYTES:,} bytes")


DEEP = 50_000


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * DEEP + "]" * DEEP,
        "a = " + "{b = " * DEEP + "1" + "}" * DEEP,
        "a" + ".b" * DEEP + " = 1",
        "[" + ".".join(["t"] * DEEP) + "]\nx = 1",
    ],
    ids=["arrays", "inline-tables", "dotted-keys", "table-header"],
)
@pytest.mark.parametrize("command", [("chips", "show"), ("workloads", "show"), ("sweep",)])
def test_toml_nested_50000_levels(
    dse: Callable[..., Any], tmp_path: Path, text: str, command: tuple[str, ...]
) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(text)
    extra = ["--out", str(tmp_path / "out.csv"), *SWEEP] if command == ("sweep",) else []
    one_line(dse(*command, path, *extra), str(path), f"at most {MAX_TOML_DEPTH} levels")


def test_sweep_whose_parts_folder_is_a_file(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.parts"
    parts.write_text("mine")
    for extra in ([], ["--restart"]):
        one_line(dse("sweep", small, "--out", out, *SWEEP, *extra), str(parts), "a file")
    assert parts.read_text() == "mine" and not out.exists()


def results_table(meta: Any) -> pa.Table:
    table = pa.table(
        {
            "cost_usd": [1.0, 2.0],
            "energy_mwh": [2.0, 1.0],
            "training_days": [3.0, 3.0],
            "feasible": [True, True],
        }
    )
    return table.replace_schema_metadata({"dse": json.dumps(meta)})


@pytest.mark.parametrize(
    "meta, key",
    [
        ({"objectives": [{"maximize": False}]}, "objectives[0].name"),
        ({"objectives": [{"name": ""}]}, "objectives[0].name"),
        ({"objectives": ["cost_usd"]}, "objectives[0]"),
        ({"objectives": 5}, "objectives"),
        ({"objectives": [{"name": "cost_usd", "maximize": "yes"}]}, "objectives[0].maximize"),
        (["a", "b"], "metadata.dse"),
    ],
)
@pytest.mark.parametrize("command", ["plot", "pareto"])
def test_parquet_metadata_validated(
    dse: Callable[..., Any], tmp_path: Path, meta: Any, key: str, command: str
) -> None:
    path = tmp_path / "results.parquet"
    pq.write_table(results_table(meta), path)
    extra = ["--out", str(tmp_path / "plot.png")] if command == "plot" else []
    one_line(dse(command, path, *extra), str(path), key)


def test_valid_parquet_metadata_still_read(tmp_path: Path) -> None:
    path = tmp_path / "results.parquet"
    meta = {"objectives": [{"name": "cost_usd"}, {"name": "energy_mwh", "maximize": True}]}
    pq.write_table(results_table(meta), path)
    frame, read = read_results(path)
    assert read == meta and len(frame) == 2


@pytest.mark.parametrize(
    "text", ['["a", "b"]', "[1, 2]", "[[1, 2]]", '"text"', "[" * 100_000 + "]" * 100_000, "{"]
)
@pytest.mark.parametrize("command", ["plot", "pareto"])
def test_results_json_that_is_not_a_list_of_records(
    dse: Callable[..., Any], tmp_path: Path, text: str, command: str
) -> None:
    path = tmp_path / "results.json"
    path.write_text(text)
    extra = ["--out", str(tmp_path / "plot.png")] if command == "plot" else []
    one_line(dse(command, path, *extra), str(path))


@pytest.mark.parametrize("text", ['["a", "b"]', "5", "{", '{"objectives": [{}]}'])
def test_results_sidecar_metadata_validated(
    dse: Callable[..., Any], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"cost_usd": 1.0, "energy_mwh": 1.0, "training_days": 1.0}]))
    (tmp_path / "results.json.meta.json").write_text(text)
    one_line(dse("pareto", path), "results.json.meta.json")


def test_oversized_results_file(
    dse: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.csv"
    path.write_text("cost_usd,energy_mwh,training_days\n1,2,3\n")
    monkeypatch.setattr("dse.export.results_limit_bytes", lambda: 10)
    one_line(dse("pareto", path), str(path), "at most 10 bytes")


def test_plot_into_a_missing_folder(dse: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"cost_usd": 1.0, "energy_mwh": 1.0, "training_days": 1.0}]))
    one_line(dse("plot", path, "--out", tmp_path / "nowhere" / "plot.png"), "nowhere")


def test_fifo_inputs_answer_within_10_s(small: Path, tmp_path: Path) -> None:
    """A FIFO no one writes to, given as each kind of input file (and as an optuna storage
    file): one line, exit 2, no hang."""
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    base = [sys.executable, "-m", "dse"]
    out = ["--out", str(tmp_path / "out.csv")]
    optuna = ["--workload", "llama3.1-70b", "--engine", "optuna", "--evals", "8", "--storage"]
    commands = {
        "chip": [*base, "chips", "show", str(fifo)],
        "workload": [*base, "workloads", "show", str(fifo)],
        "space": [*base, "sweep", str(fifo), *out, *SWEEP],
        "sweep --workload": [*base, "sweep", str(small), *out, *SWEEP[2:], "--workload", str(fifo)],
        "journal": [*base, "search", str(small), *out, *optuna, f"journal://{fifo}"],
        "sqlite": [*base, "search", str(small), *out, *optuna, f"sqlite:///{fifo}"],
    }
    running = {
        name: subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for name, command in commands.items()
    }
    try:
        for name, proc in running.items():
            _, err = proc.communicate(timeout=10)
            lines = err.strip().splitlines()
            assert proc.returncode == 2 and len(lines) == 1, (name, err)
            assert "a FIFO" in lines[0] and str(fifo) in lines[0], (name, err)
    finally:
        for proc in running.values():
            proc.kill()
            proc.wait()


def test_second_sweep_on_the_same_output_refuses(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    with OutputLock(out):
        for extra in ([], ["--restart"]):
            one_line(dse("sweep", small, "--out", out, *SWEEP, *extra), "in use by process")
        assert not out.exists()
    result = dse("sweep", small, "--out", out, *SWEEP)
    assert result.code == 0, result.err
    assert not (tmp_path / "out.parquet.lock").exists()


def test_lock_file_left_by_a_killed_run_does_not_block(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    (tmp_path / "out.csv.lock").write_text("12345\n")
    assert dse("sweep", small, "--out", out, *SWEEP).code == 0


def enospc_after(calls: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """``real``, except that every call after the first ``calls`` fails as on a full disk."""
    count = {"n": 0}

    def write(*args: Any, **kwargs: Any) -> Any:
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    return write


def test_disk_full_while_recording_chunks_then_resume(
    dse: Callable[..., Any], small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.parquet"
    manifest = tmp_path / "out.parquet.manifest.json"
    monkeypatch.setattr(pq, "write_table", enospc_after(2, pq.write_table))
    line = one_line(dse("sweep", small, "--out", out, *SWEEP), "no space left on device")
    assert "chunk-" in line and "resumes" in line
    assert len(json.loads(manifest.read_text())["chunks"]) == 2
    assert not list(tmp_path.glob("**/*.tmp")) and not out.exists()
    monkeypatch.undo()
    assert dse("sweep", small, "--out", out, *SWEEP).code == 0
    assert_same_as_fresh(dse, small, out, tmp_path)


def test_disk_full_while_writing_the_output_then_resume(
    dse: Callable[..., Any], small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.parquet"
    real = pq.ParquetWriter.write_table
    # The size estimate writes one sample table, the sweep its part; then the output fails.
    monkeypatch.setattr(pq.ParquetWriter, "write_table", enospc_after(2, real))
    one_line(dse("sweep", small, "--out", out, *SWEEP), str(out), "no space left on device")
    assert not out.exists() and (tmp_path / "out.parquet.manifest.json").exists()
    assert not list(tmp_path.glob(".out.parquet.*"))
    monkeypatch.undo()
    assert dse("sweep", small, "--out", out, *SWEEP).code == 0
    assert_same_as_fresh(dse, small, out, tmp_path)


def assert_same_as_fresh(dse: Callable[..., Any], small: Path, out: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.parquet"
    assert dse("sweep", small, "--out", fresh, *SWEEP).code == 0
    resumed, _ = read_results(out)
    expected, _ = read_results(fresh)
    assert len(resumed) == 300
    assert resumed.equals(expected)
    assert not (tmp_path / "out.parquet.parts").exists()


@pytest.mark.parametrize("kind", ["fifo", "folder", "garbage"])
def test_damaged_manifest(dse: Callable[..., Any], small: Path, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out.csv"
    manifest = tmp_path / "out.csv.manifest.json"
    if kind == "fifo":
        os.mkfifo(manifest)
    elif kind == "folder":
        manifest.mkdir()
    else:
        manifest.write_text('{"fingerprint": 1, "chunks": "x"}')
    one_line(dse("sweep", small, "--out", out, *SWEEP), str(manifest))


def test_space_naming_a_workload_path_with_a_nul_character(
    dse: Callable[..., Any], tmp_path: Path
) -> None:
    space = tmp_path / "space.toml"
    space.write_text('workload = "w\\u0000.toml"\n' + SMALL)
    one_line(dse("sweep", space, "--out", tmp_path / "out.csv", *SWEEP[2:]), "workload")
