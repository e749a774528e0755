"""Help in groups (main options first, model settings by section with meaning, unit and
default), ``--settings FILE.toml``, ``dse -v``/``-q`` and shell completion."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dse.settings import Settings, setting_sections

EVALUATE = ("evaluate", "--chip", "h100-sxm", "--workload", "llama3.1-8b", "--num-chips", "64",
            "--format", "json")  # fmt: skip


@pytest.mark.parametrize("command", ["evaluate", "compare", "sweep", "search", "validate"])
def test_help_lists_main_options_first_then_settings_by_section(
    dse: Callable[..., Any], command: str
) -> None:
    result = dse(command, "--help")
    assert result.code == 0, result.err
    text = result.out
    headings = [
        "Options:",
        "Model settings:",
        "Model settings: efficiency:",
        "Model settings: memory per parameter:",
        "Model settings: cluster:",
        "Model settings: economics:",
    ]
    positions = [text.index(h) for h in headings]
    assert positions == sorted(positions)
    assert text.index("--format") < text.index("--settings")
    for section, names in setting_sections().items():
        for name in names:
            assert "--" + name.replace("_", "-") in text, (section, name)
    assert "Default: " not in text  # the old meaning-less help
    flat = " ".join(text.split())
    assert "Power usage effectiveness: facility power over IT power, in ratio >= 1." in flat
    assert "[default: 1.1 (P)]" in flat and "in USD/kWh" in flat


def test_settings_file_flat_or_in_sections(dse: Callable[..., Any], tmp_path: Path) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text("pue = 1.5\nelectricity_usd_per_kwh = 0.12\n")
    sections = tmp_path / "sections.toml"
    sections.write_text("[cluster]\npue = 1.5\n[economics]\nelectricity_usd_per_kwh = 0.12\n"
                        "[economics.sources]\nelectricity_usd_per_kwh = 'a quote'\n")  # fmt: skip
    by_options = dse(*EVALUATE, "--pue", "1.5", "--electricity-usd-per-kwh", "0.12").json()
    default = dse(*EVALUATE).json()
    for path in (flat, sections):
        result = dse(*EVALUATE, "--settings", path)
        assert result.code == 0, result.err
        assert result.json()["energy_mwh"] == by_options["energy_mwh"] != default["energy_mwh"]
        assert result.json()["cost_usd"] == by_options["cost_usd"]
    over = dse(*EVALUATE, "--settings", flat, "--pue", "1.1").json()
    assert over["energy_mwh"] < by_options["energy_mwh"]  # the option overrides the file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("puee = 1.2\n", "puee"),
        ("[cluster]\nprice = 3\n", "cluster.price"),
        ("[nowhere]\npue = 1.2\n", "nowhere"),
        ("pue = 0.5\n", "pue"),
    ],
)
def test_settings_file_errors_name_the_file_and_key(
    dse: Callable[..., Any], tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = dse(*EVALUATE, "--settings", path)
    assert result.code == 2 and "Traceback" not in result.err
    assert str(path) in result.err and message in result.err


def test_every_setting_has_help() -> None:
    from dse.settings import SETTING_HELP, setting_help

    missing = set(Settings.names()) - set(SETTING_HELP)
    assert not missing, f"add a meaning and unit to dse.settings.SETTING_HELP for {missing}"
    meaning, unit = setting_help("pue")
    assert "facility power" in meaning and unit == "ratio >= 1"


def test_verbose_shows_the_traceback_and_quiet_keeps_results(dse: Callable[..., Any]) -> None:
    plain = dse("evaluate", "--chip", "nope", "--workload", "llama3.1-8b", "--num-chips", "8")
    assert plain.code == 2 and "Traceback" not in plain.err
    verbose = dse("-v", "evaluate", "--chip", "nope", "--workload", "llama3.1-8b",
                  "--num-chips", "8")  # fmt: skip
    assert verbose.code == 2 and "Traceback" in verbose.err and "dse: error:" in verbose.err
    quiet = dse("-q", *EVALUATE)
    assert quiet.code == 0 and quiet.json()["feasible"] is True and quiet.err == ""


def test_shell_completion_script() -> None:
    env = {**os.environ, "_DSE_COMPLETE": "bash_source"}
    script = subprocess.run([sys.executable, "-m", "dse"], env=env, capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "_dse_completion" in script
    env = {**os.environ, "_DSE_COMPLETE": "bash_complete", "COMP_WORDS": "dse sw",
           "COMP_CWORD": "1"}  # fmt: skip
    words = subprocess.run([sys.executable, "-m", "dse"], env=env, capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert "sweep" in words


@pytest.mark.parametrize("group", [(), ("chips",), ("workloads",)])
def test_a_group_alone_prints_its_help(dse: Callable[..., Any], group: tuple[str, ...]) -> None:
    """``dse`` or ``dse chips`` without a command shows the help, not an error (click 8.2
    raises for it)."""
    result = dse(*group)
    assert result.code == 0, result.err
    assert result.out.startswith(f"Usage: dse {' '.join(group)}".rstrip() + " [OPTIONS]")
    assert "error" not in result.err
