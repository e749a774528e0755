"""Fast start (issue 13): ``dse --help`` and ``dse evaluate`` import none of the heavy packages
that only some commands need."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("scipy", "matplotlib", "plotly", "optuna", "pymoo", "dask", "numba", "pandas")
"""Packages ``dse --help`` and ``dse evaluate`` must leave unimported."""


EVALUATE = ["evaluate", "--chip", "h100-sxm", "--num-chips"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["evaluate", "--help"],
        [*EVALUATE, "16384", "--workload", "llama3.1-405b"],
        [*EVALUATE, "512", "--workload", "mixtral-8x7b", "--format", "json"],
    ],
)
def test_command_imports_no_heavy_package(argv: list[str]) -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from dse.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit as exit:\n"
        "        assert not exit.code, exit.code\n"
        f"loaded = {{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})\n"
        "print(json.dumps(sorted(loaded)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
