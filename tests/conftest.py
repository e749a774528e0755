"""Shared fixtures: run the ``dse`` command line in-process and capture what a user would see."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from dse.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def dse(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Call ``dse ARGS...`` as the console script would; returns exit code, stdout, stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as stop:
            code = int(stop.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def dse_cli(dse: Callable[..., Result]) -> Callable[..., Result]:
    """The ``dse`` fixture under a name that leaves ``dse`` free for the package."""
    return dse
