"""Resumable sweeps: killed (SIGKILL) or interrupted (Ctrl-C) mid-way, the same command
resumes from the manifest and ends with every design evaluated exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dse.export import read_results
from tests.test_sweep import SMALL

ARGS = ["--workload", "llama3.1-70b", "--samples", "12000", "--seed", "2", "--chunk-size", "100"]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def command(space: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dse", "sweep", str(space), *ARGS, "--out", str(out), "--quiet",
            *extra]  # fmt: skip


def chunks_done(out: Path) -> int:
    try:
        return len(json.loads(out.with_name(out.name + ".manifest.json").read_text())["chunks"])
    except (OSError, ValueError):
        return 0


def interrupt(space: Path, out: Path, sig: signal.Signals) -> int:
    """Start the sweep, wait until at least one chunk is recorded, send ``sig``; the number
    of chunks recorded."""
    proc = subprocess.Popen(command(space, out), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while chunks_done(out) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    done = chunks_done(out)
    assert 3 <= done < 120, "the sweep should be stopped mid-way"
    assert not out.exists()
    return done


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_sweep_resumes_with_every_design_once(
    small: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    whole = tmp_path / "whole.parquet"
    subprocess.run(command(small, whole), check=True)
    out = tmp_path / "out.parquet"
    interrupt(small, out, sig)
    subprocess.run(command(small, out), check=True)
    expected, got = read_results(whole)[0], read_results(out)[0]
    assert len(got) == 12000
    pd.testing.assert_frame_equal(expected, got)
    assert not out.with_name("out.parquet.manifest.json").exists()
    assert not out.with_name("out.parquet.parts").exists()


def test_resume_refuses_another_command_unless_restarted(
    dse: Callable[..., Any], small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    manifest = tmp_path / "out.csv.manifest.json"
    manifest.write_text(json.dumps({"version": 1, "fingerprint": {"seed": 99}, "chunks": []}))
    result = dse("sweep", small, *ARGS[:6], "--samples", "500", "--out", out)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "manifest" in result.err and "--restart" in result.err and "seed" in result.err
    result = dse("sweep", small, *ARGS[:6], "--samples", "500", "--out", out, "--restart")
    assert result.code == 0, result.err
    assert len(read_results(out)[0]) == 500
    assert not manifest.exists()


def test_ctrl_c_inside_a_compiled_kernel_is_an_interrupt(
    dse_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """numba reports a KeyboardInterrupt raised while its kernel calls back into Python as a
    SystemError; the command line still exits as interrupted, and other SystemErrors stay."""
    import dse.cli

    def interrupted_kernel(**_: Any) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise SystemError("returned a result with an exception set") from interrupt

    monkeypatch.setattr(dse.cli.cli, "main", interrupted_kernel)
    result = dse_cli("chips", "list")
    assert (result.code, result.err.strip()) == (130, "dse: interrupted")

    def broken_kernel(**_: Any) -> None:
        raise SystemError("a real bug")

    monkeypatch.setattr(dse.cli.cli, "main", broken_kernel)
    with pytest.raises(SystemError, match="a real bug"):
        dse_cli("chips", "list")
