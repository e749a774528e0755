"""Regenerate docs/model.md from docs/source/model.tmpl.md (run inside the project's environment:
`python docs/source/render.py`).

Fill placeholders in a Markdown template with tables copied from the TOML files and with
verbatim command output. Placeholders (each alone on a line):
  {{node:KEY}}                 node | value | source, every node of nodes.toml
  {{memory:KEY}}               generation | value | source
  {{silicon:SECTION[:k1,k2]}}  key | value | source
  {{defaults:SECTION}}         key (option) | value | source
  {{cmd:COMMAND}}              fenced code block with the command's stdout+stderr
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
nodes = tomllib.loads((ROOT / "chips/technology/nodes.toml").read_text())
memory = tomllib.loads((ROOT / "chips/technology/memory.toml").read_text())
silicon = tomllib.loads((ROOT / "chips/technology/silicon.toml").read_text())
defaults = tomllib.loads((ROOT / "dse/defaults.toml").read_text())


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def fmt(v):
    if isinstance(v, bool):
        return str(v).lower()
    return repr(v) if isinstance(v, float) else str(v)


def per_entry(table, key, label):
    rows = [f"| {label} | `{key}` | source |", "|---|---|---|"]
    for ident, entry in table.items():
        rows.append(
            f"| {ident} ({cell(entry['name'])}) | {fmt(entry[key])} | {cell(entry['sources'][key])} |"
        )
    return "\n".join(rows)


def section(table, name, keys=None, options=False):
    sec = table[name]
    keys = keys or [k for k in sec if k != "sources"]
    head = (
        "| key (`dse evaluate` option) | value | source |"
        if options
        else "| key | value | source |"
    )
    rows = [head, "|---|---|---|"]
    for k in keys:
        label = f"`{k}` (`--{k.replace('_', '-')}`)" if options else f"`{k}`"
        rows.append(f"| {label} | {fmt(sec[k])} | {cell(sec['sources'][k])} |")
    return "\n".join(rows)


def run(cmd):
    out = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True)
    text = (out.stdout + out.stderr).rstrip("\n")
    return f"```text\n$ {cmd}\n{text}\n```"


def fill(match):
    kind, _, arg = match.group(1).partition(":")
    if kind == "node":
        return per_entry(nodes, arg, "node")
    if kind == "memory":
        return per_entry(memory, arg, "generation")
    if kind == "silicon":
        name, _, keys = arg.partition(":")
        return section(silicon, name, keys.split(",") if keys else None)
    if kind == "defaults":
        return section(defaults, arg, options=True)
    if kind == "cmd":
        return run(arg)
    raise SystemExit(f"unknown placeholder {match.group(0)}")


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/source/model.tmpl.md"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs/model.md"
    target.write_text(re.sub(r"^\{\{(.+?)\}\}$", fill, source.read_text(), flags=re.M))
