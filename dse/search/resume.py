"""Resumable sweeps: a manifest of completed chunks and one Parquet part file per chunk.

Beside the output ``OUT`` a sweep keeps ``OUT.manifest.json`` (the command's fingerprint and
the completed chunks with their counts) and ``OUT.parts/`` (each completed chunk's kept rows:
all of them, or its Pareto set with ``pareto_only``). A part is moved into place before the
manifest names it, and the manifest is replaced atomically after each chunk, so a sweep
interrupted at any moment (Ctrl-C, SIGKILL) resumes with the same command and evaluates each
remaining chunk once. On success both are removed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import InputError
from dse.export import Columns
from dse.files import exists, is_file, open_input, read_json, results_limit_bytes, writing

VERSION = 1
MANIFEST = "a sweep manifest (or `restart=True` to start over)"
PART = "a sweep part file (or `restart=True` to start over)"
RECORDS = "room for the sweep's records (free space, then the same command resumes)"


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
        if exists(self.parts) and not self.parts.is_dir():
            raise InputError(
                self.parts, "", "a folder of the sweep's part files, or nothing", "a file"
            )
        if restart:
            self.remove()
        if exists(self.path):
            self._load()
        else:
            self._remove_parts()
        with writing(self.parts, RECORDS):
            self.parts.mkdir(parents=True, exist_ok=True)

    def _load(self) -> None:
        data = read_json(self.path, MANIFEST)
        try:
            recorded = dict(data["fingerprint"])
            done = {int(c["start"]): dict(c) for c in data["chunks"]}
        except (ValueError, KeyError, TypeError, IndexError):
            raise InputError(self.path, "", MANIFEST, "unreadable") from None
        if recorded != self.fingerprint:
            differs = sorted(
                k
                for k in set(recorded) | set(self.fingerprint)
                if recorded.get(k) != self.fingerprint.get(k)
            )
            raise InputError(
                self.path,
                "fingerprint",
                "the same request as the interrupted sweep (or `restart=True` to start over)",
                f"a different {', '.join(differs)}",
            )
        self.done = {s: c for s, c in done.items() if is_file(self._part(s))}

    def _part(self, start: int) -> Path:
        return self.parts / f"chunk-{start:014d}.parquet"

    def add(self, start: int, stop: int, n_feasible: int, columns: Columns) -> None:
        """Record a completed chunk: write its part file, then the manifest, both atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        part = self._part(start)
        temp = part.with_name(part.name + ".tmp")
        try:
            with writing(part, RECORDS):
                pq.write_table(pa.table(dict(columns)), temp)
                os.replace(temp, part)
        finally:
            with suppress(OSError):
                temp.unlink(missing_ok=True)
        self.done[start] = {"start": start, "stop": stop, "feasible": n_feasible}
        self._write()

    def _write(self) -> None:
        data = {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "chunks": [self.done[s] for s in sorted(self.done)],
        }
        temp = self.path.with_name(self.path.name + ".tmp")
        try:
            with writing(self.path, RECORDS):
                temp.write_text(json.dumps(data, indent=1))
                os.replace(temp, self.path)
        finally:
            with suppress(OSError):
                temp.unlink(missing_ok=True)

    def read(self, start: int) -> Columns:
        """The kept rows of the completed chunk starting at ``start``."""
        import pyarrow.parquet as pq

        part = self._part(start)
        with open_input(part, results_limit_bytes(), PART) as handle:
            try:
                table = pq.read_table(handle)
            except ValueError:
                raise InputError(part, "", PART, "a damaged Parquet file") from None
        return {
            name: np.asarray(table.column(name).to_numpy(zero_copy_only=False))
            for name in table.column_names
        }

    def remove(self) -> None:
        """Delete the manifest and the part files (after success, or with ``restart``)."""
        with writing(self.path, RECORDS):
            self.path.unlink(missing_ok=True)
        self._remove_parts()

    def _remove_parts(self) -> None:
        if self.parts.is_dir():
            with writing(self.parts, RECORDS):
                shutil.rmtree(self.parts)
