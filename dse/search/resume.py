"""Resumable sweeps: a manifest of completed chunks and one Parquet part file per chunk.

Beside the output ``OUT`` a sweep keeps ``OUT.manifest.json`` (the command's fingerprint and
the completed chunks with their counts) and ``OUT.parts/`` (each completed chunk's kept rows:
all of them, or its Pareto set with ``--pareto-only``). A part is moved into place before the
manifest names it, and the manifest is replaced atomically after each chunk, so a sweep
interrupted at any moment (Ctrl-C, SIGKILL) resumes with the same command and evaluates each
remaining chunk once. On success both are removed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import InputError
from dse.export import Columns

VERSION = 1


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def parts_path(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


class Manifest:
    """Completed chunks of one sweep command, identified by its ``fingerprint``."""

    def __init__(self, out: Path, fingerprint: Mapping[str, Any], restart: bool = False) -> None:
        self.path = manifest_path(out)
        self.parts = parts_path(out)
        self.fingerprint = json.loads(json.dumps(dict(fingerprint), default=str))
        self.done: dict[int, dict[str, int]] = {}
        if restart:
            self.remove()
        if self.path.exists():
            self._load()
        elif self.parts.exists():
            shutil.rmtree(self.parts)
        self.parts.mkdir(parents=True, exist_ok=True)

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            recorded = data["fingerprint"]
            done = {int(c["start"]): c for c in data["chunks"]}
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(
                self.path, "", "a sweep manifest (or --restart to start over)", "unreadable"
            ) from None
        if recorded != self.fingerprint:
            differs = sorted(
                k
                for k in set(recorded) | set(self.fingerprint)
                if recorded.get(k) != self.fingerprint.get(k)
            )
            raise InputError(
                self.path,
                "fingerprint",
                "the same command as the interrupted sweep (or --restart to start over)",
                f"a different {', '.join(differs)}",
            )
        self.done = {s: c for s, c in done.items() if self._part(s).exists()}

    def _part(self, start: int) -> Path:
        return self.parts / f"chunk-{start:014d}.parquet"

    def add(self, start: int, stop: int, n_feasible: int, columns: Columns) -> None:
        """Record a completed chunk: write its part file, then the manifest, both atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        part = self._part(start)
        temp = part.with_name(part.name + ".tmp")
        pq.write_table(pa.table(dict(columns)), temp)
        os.replace(temp, part)
        self.done[start] = {"start": start, "stop": stop, "feasible": n_feasible}
        self._write()

    def _write(self) -> None:
        data = {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "chunks": [self.done[s] for s in sorted(self.done)],
        }
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text(json.dumps(data, indent=1))
        os.replace(temp, self.path)

    def read(self, start: int) -> Columns:
        """The kept rows of the completed chunk starting at ``start``."""
        import pyarrow.parquet as pq

        table = pq.read_table(self._part(start))
        return {
            name: np.asarray(table.column(name).to_numpy(zero_copy_only=False))
            for name in table.column_names
        }

    def remove(self) -> None:
        """Delete the manifest and the part files (after success, or with ``--restart``)."""
        self.path.unlink(missing_ok=True)
        if self.parts.exists():
            shutil.rmtree(self.parts)
