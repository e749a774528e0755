"""Docs that cannot drift: every shell command in README.md and docs/*.md runs here.

Code blocks fenced as ``sh``, ``bash`` or ``console`` (``$ `` lines) are read. Each ``dse``
command runs in-process in a temporary folder, in the order of its file, so that a block's
``sweep.parquet`` feeds the next block's ``dse pareto``. A command followed by a comment line
``# dse: error: TEXT`` must fail with exit status 2 and TEXT up to its first comma. Other commands are checked
as far as they can be here: ``python FILE.py`` names a file of the repository.

An HTML comment on the line before a fence steers its block:

- ``<!-- doc-test: A -> B; C -> D -->``: replace A by B (reduced sizes, local storage);
- ``<!-- doc-test: synopsis -->``: usage forms; every ``--option`` named must exist;
- ``<!-- doc-test: skip: REASON -->``: not run (a remote cluster or database); its ``dse``
  commands must still parse.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?:<!-- doc-test: (?P<marker>.*?) -->\n)?```(?P<lang>sh|bash|console)\n(?P<body>.*?)```", re.S
)
SHELL_ONLY = (
    "python3 -m venv",
    ". .venv/bin/activate",
    "pip ",
    "ruff ",
    "mypy",
    "eval ",
    "dask ",
    "export ",
)


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    body: str
    replace: list[tuple[str, str]] = field(default_factory=list)
    synopsis: bool = False
    skip: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass
class Command:
    text: str
    error: str | None  # expected error text, for a command documented as refused


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        block = Block(
            path, text[: match.start("lang")].count("\n") + 1, match["lang"], match["body"]
        )
        for directive in (match["marker"] or "").split(";"):
            directive = directive.strip()
            if directive == "synopsis":
                block.synopsis = True
            elif directive.startswith("skip"):
                block.skip = directive.partition(":")[2].strip() or "skipped"
            elif "->" in directive:
                old, new = (part.strip() for part in directive.split("->", 1))
                block.replace.append((old, new))
            elif directive:
                raise AssertionError(f"{path}: unknown doc-test directive {directive!r}")
        found.append(block)
    return found


def commands(block: Block) -> list[Command]:
    """The block's commands: continuation lines joined, ``$ `` prompts and comments removed,
    ``&&`` chains split; output lines of a console block left out."""
    lines = block.body.splitlines()
    if block.lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line)
    found: list[Command] = []
    for line in joined:
        if line.startswith("# dse: error: ") and found:
            # The message up to its first comma: machine-independent (e.g. the design count)
            found[-1].error = line[len("# dse: error: ") :].split(",")[0]
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for part in re.split(r"\s*&&\s*", line):
            for old, new in block.replace:
                part = part.replace(old, new)
            found.append(Command(part.strip(), None))
    return found


def dse_args(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    assert words[0] == "dse"
    return words[1:]


ALL = [block for path in DOCS for block in blocks(path)]


def test_doc_blocks_are_found() -> None:
    assert len(ALL) >= 15
    assert any(b.path.name == "README.md" for b in ALL)
    assert all(b.body.strip() for b in ALL)


def _click_command(args: list[str]) -> tuple[click.Command, list[str]]:
    from dse.cli import _register_optional, cli

    _register_optional()
    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        if sub is None:
            break
        command, rest = sub, rest[1:]
    return command, rest


@pytest.mark.parametrize("block", [b for b in ALL if b.synopsis], ids=lambda b: b.where)
def test_synopsis_names_only_real_options(block: Block) -> None:
    lines: list[str] = []
    for command in commands(block):
        if command.text.startswith("dse ") or not lines:
            lines.append(command.text)
        else:  # a usage form continued on the next line
            lines[-1] += " " + command.text
    for text in lines:
        command = Command(text, None)
        if not command.text.startswith("dse "):
            continue
        words = re.findall(r"(?<![\w-])--?[a-z][\w-]*", command.text)
        head = [w for w in command.text.split()[1:3] if re.fullmatch(r"[a-z]+", w)]
        target, _ = _click_command(head)
        known = {opt for p in target.params for opt in (*p.opts, *p.secondary_opts)}
        known |= {"--help", "-h"}
        unknown = [w for w in words if w not in known]
        assert not unknown, f"{block.where}: {command.text!r} names {unknown}"


@pytest.mark.parametrize("block", [b for b in ALL if b.skip], ids=lambda b: b.where)
def test_skipped_commands_still_parse(block: Block) -> None:
    for command in commands(block):
        if not command.text.startswith("dse ") or "..." in command.text:
            continue
        target, rest = _click_command(dse_args(command.text))
        target.make_context(target.name or "dse", rest, resilient_parsing=False)


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_runs(
    path: Path, dse: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = 0
    for block in blocks(path):
        if block.synopsis or block.skip:
            continue
        for command in commands(block):
            text = command.text
            if text.startswith("dse "):
                result = dse(*dse_args(text))
                where = f"{block.where}: {text}"
                if command.error is not None:
                    assert result.code == 2, f"{where} should fail: {result.out}"
                    assert command.error in result.err, f"{where}: {result.err}"
                else:
                    assert result.code == 0, f"{where}\n{result.err}"
                ran += 1
            elif text.startswith(("python ", "python3 ")) and text.split()[1].endswith(".py"):
                assert (ROOT / text.split()[1]).is_file(), f"{block.where}: {text}"
            elif text.startswith("python -m pytest"):
                continue
            else:
                assert text.startswith(SHELL_ONLY), f"{block.where}: unknown command {text!r}"
    if path.name in ("README.md", "search.md", "framework.md"):
        assert ran > 0


@pytest.mark.slow
def test_readme_sweep_figures_come_from_the_run(dse: Callable[..., Any], tmp_path: Path) -> None:
    """README quotes the feasible and front counts of its 20,000-design sweep."""
    readme = (ROOT / "README.md").read_text()
    quoted = re.search(
        r"evaluates 20,000 designs .*?: ([\d,]+) feasible, ([\d,]+) on the front", readme
    )
    assert quoted, "README no longer quotes the sweep's figures"
    out = tmp_path / "sweep.parquet"
    result = dse("sweep", "accelerator", "--workload", "llama3.1-70b", "--method", "random",
                 "--samples", "20000", "--seed", "1", "--out", out, "--format", "json")  # fmt: skip
    assert result.code == 0, result.err
    summary = result.json()
    assert f"{summary['feasible']:,}" == quoted[1] and f"{summary['pareto']:,}" == quoted[2]


def test_framework_flops_figures_come_from_the_run(dse: Callable[..., Any]) -> None:
    """docs/framework.md quotes the FLOPs ratio at both ends of the scaling run, and the
    MoE reduction."""
    text = " ".join((ROOT / "docs" / "framework.md").read_text().split())
    quoted = re.search(r"is ([\d.]+) at 10⁹ parameters and falls to ([\d.]+) at 10¹³", text)
    moe = re.search(r"go down by ([\d.]+)–([\d.]+)×", text)
    assert quoted and moe, "docs/framework.md no longer quotes the scaling figures"
    args = ("scaling", "--chip", "h100-sxm", "--from", "1e9", "--to", "1e13", "--points", "5",
            "--format", "json")  # fmt: skip
    dense = dse(*args).json()
    assert f"{dense[0]['flops_over_120p2']:.2f}" == quoted[1]
    assert f"{dense[-1]['flops_over_120p2']:.2f}" == quoted[2]
    sparse = dse(*args, "--moe-k", "8").json()
    ratios = [d["training_flops"] / s["training_flops"] for d, s in zip(dense, sparse, strict=True)]
    assert all(float(moe[1]) <= round(r, 1) <= float(moe[2]) for r in ratios), ratios
