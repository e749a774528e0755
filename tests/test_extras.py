"""Lean install: the core imports none of the optional packages, and a feature whose extra is
missing says which extra to install, in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import dse
from dse.errors import MissingExtraError
from dse.extras import EXTRAS

OPTIONAL = sorted(EXTRAS.values())


def test_the_core_imports_no_optional_package() -> None:
    code = (
        "import sys, json, dse, dse.cli, dse.search, dse.plot, dse.export, dse.api\n"
        "from dse.cli import _register_optional; _register_optional()\n"
        f"print(json.dumps([m for m in {OPTIONAL!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make an optional module unimportable, as on a core install."""

    def hide(module: str) -> None:
        for name in list(sys.modules):
            if name == module or name.startswith(module + "."):
                monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, module, None)

    return hide


def test_html_plot_names_the_html_extra(
    dse_cli: Callable[..., Any], without: Callable[[str], None], tmp_path: Path
) -> None:
    results = tmp_path / "results.csv"
    dse.sweep(dse.load_space("accelerator"), "llama3.1-70b", samples=200, out=results)
    without("plotly")
    result = dse_cli("plot", results, "--out", tmp_path / "front.html")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "pip install 'dse[html]'" in result.err and "'plotly'" in result.err
    assert dse_cli("plot", results, "--out", tmp_path / "front.png").code == 0


def test_dask_executor_names_the_dask_extra(without: Callable[[str], None]) -> None:
    without("distributed")
    with pytest.raises(MissingExtraError, match=r"pip install 'dse\[dask\]'"):
        dse.sweep("accelerator", "llama3.1-70b", samples=10, workers=2)


def test_postgres_storage_names_the_postgres_extra(
    dse_cli: Callable[..., Any], without: Callable[[str], None], tmp_path: Path
) -> None:
    without("psycopg")
    url = "postgresql+psycopg://dse@127.0.0.1:9/dse"
    result = dse_cli("search", "accelerator", "--workload", "llama3.1-70b", "--engine", "optuna",
                     "--evals", "4", "--storage", url, "--out", tmp_path / "s.csv")  # fmt: skip
    assert result.code == 2 and "pip install 'dse[postgres]'" in result.err, result.err
