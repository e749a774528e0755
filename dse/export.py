"""Results files: one row per design point, written in batches, atomically, with provenance.

Columns, in order: the design parameters (categoricals by id, e.g. ``node = "n3"``), the metric
columns of ``dse evaluate``, their 80 % prediction intervals (``<metric>_low``/``<metric>_high``
for :data:`~dse.intervals.INTERVAL_METRICS`, dse/intervals.py; not objectives), the plan
(flattened as ``tp``, ``pp``, ``dp``, ``dp_shard``, ``ep``, ``etp``, ``microbatch``, ``recompute``,
``zero_stage``, ...),
the ``g_*`` constraint columns, ``feasible`` and ``pareto``.

The format follows the suffix: ``.csv``, ``.parquet`` or ``.json`` (a list of records). Provenance
(a JSON object) travels as Parquet key-value metadata under the key ``dse``, or in a
``FILE.meta.json`` beside a CSV or JSON file. Files are written to a temporary name in the same
folder and moved into place only when complete, so a failed run leaves nothing under the name.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import secrets
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dse._version import __version__
from dse.catalog.technology import load_technology
from dse.errors import InputError
from dse.files import (
    exists,
    open_input,
    parse_json,
    read_json,
    reason,
    results_limit_bytes,
    writing,
)
from dse.intervals import interval_columns
from dse.model.evaluate import PLAN_COLUMNS
from dse.model.plans import PLACEMENTS, RECOMPUTE, SCHEDULES
from dse.parameters import CATEGORICAL, RESULTS, choices
from dse.space import INTEGER_PARAMETERS

if TYPE_CHECKING:
    from dse.search.problem import Evaluation

SUFFIXES = (".csv", ".parquet", ".json")
METADATA_KEY = "dse"
DESIGN_COLUMNS = RESULTS
"""Design parameter columns of a results file (their declarations' ``in_results``): the price
is the ``unit_price_usd`` metric (the given price where a space fixes one, else the modeled
one)."""

Columns = dict[str, np.ndarray]
WRITABLE = "room to write the results file (a writable folder with free space)"


def results_columns(evaluation: Evaluation) -> Columns:
    """A batch as results columns (name → array of shape ``(n,)``); ``pareto`` all False."""
    technology = load_technology()
    ids = {name: np.array(choices(name, technology)) for name in CATEGORICAL}
    designs, metrics = evaluation.designs, evaluation.metrics
    out: Columns = {}
    for name in DESIGN_COLUMNS:
        column = getattr(designs, name)
        if name in CATEGORICAL:
            out[name] = ids[name][column]
        elif name in INTEGER_PARAMETERS:
            out[name] = np.round(column).astype(np.int64)
        else:
            out[name] = column
    out.update(metrics.columns)
    out.update(
        interval_columns(
            metrics.columns,
            moe=evaluation.moe,
            searched=evaluation.plan_searched,
            new_family=evaluation.new_family,
            hybrid=evaluation.hybrid,
        )
    )
    for name in PLAN_COLUMNS:
        out[name] = metrics.plan[name]
    out["recompute"] = np.array(RECOMPUTE)[metrics.plan["recompute"]]
    out["schedule"] = np.array(SCHEDULES)[metrics.plan["schedule"]]
    out["placement"] = np.array(PLACEMENTS)[metrics.plan["placement"]]
    out.update(metrics.constraints)
    out["feasible"] = np.asarray(evaluation.feasible, dtype=bool)
    out["pareto"] = np.zeros(len(evaluation), dtype=bool)
    return out


def concat_columns(parts: list[Columns]) -> Columns:
    """Stack batches of columns end to end (all with the same names)."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def provenance(request: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """Provenance record: the given fields, the ``request`` that produced the file (the API
    function and its arguments, as JSON values), the versions of the packages that decide the
    numbers, and the time."""
    return {
        **fields,
        "request": json.loads(json.dumps(dict(request or {}), default=str)),
        "versions": versions(),
        "dse_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


VERSIONED = ("numpy", "pandas", "pymoo", "optuna", "moocore", "pyarrow")
"""Distributions whose versions a results file records beside dse's."""


def versions() -> dict[str, str]:
    """Versions of Python, dse and the :data:`VERSIONED` distributions (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "dse": __version__}
    for name in VERSIONED:
        with suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def check_suffix(path: Path, option: str = "out") -> str:
    """The file format of ``path`` from its suffix, or an :class:`InputError`."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            option,
            "",
            f"a file name ending in one of {list(SUFFIXES)}",
            str(path),
            argument=_argument(option),
        )
    return suffix


def _argument(option: str) -> str | None:
    """``option`` when it names a function argument (``"out"``) rather than a file."""
    return option if option.isidentifier() else None


def meta_path(path: Path) -> Path:
    """Where the provenance of a CSV or JSON results file lives: ``FILE.meta.json``."""
    return path.with_name(path.name + ".meta.json")


class AtomicFile:
    """A new file written under a temporary name in the target folder, moved in on commit.

    Creating it checks that the folder is writable, so a long run fails before it starts.
    """

    def __init__(self, path: Path, option: str = "out") -> None:
        self.path = Path(path)
        self.temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            self.temp.open("xb").close()
        except OSError as error:
            raise InputError(
                option,
                "",
                "a path in a writable folder",
                f"{path} ({reason(error)})",
                argument=_argument(option),
            ) from None

    def commit(self) -> None:
        with writing(self.path, "a writable file"):
            os.replace(self.temp, self.path)

    def discard(self) -> None:
        with suppress(OSError):
            self.temp.unlink(missing_ok=True)


class ResultsWriter:
    """Append batches of results columns to ``path``; the file appears only on success.

    Use as a context manager: leaving the block by an exception removes every temporary file.
    ``meta`` is the provenance; :meth:`close` adds ``extra`` fields known only at the end.
    """

    def __init__(self, path: Path, meta: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.format = check_suffix(self.path)
        self.meta = dict(meta)
        self.rows = 0
        self.closed = False
        self._file = AtomicFile(self.path)
        self._meta_file = AtomicFile(meta_path(self.path)) if self.format != ".parquet" else None
        self._parquet: Any = None
        self._text: IO[str] | None = None
        if self.format != ".parquet":
            with writing(self.path, WRITABLE):
                self._text = self._file.temp.open("w", encoding="utf-8", newline="")

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            if not self.closed:
                self.close()
        else:
            self.abort()

    def write(self, columns: Mapping[str, np.ndarray]) -> None:
        """Append one batch (name → array of shape ``(n,)``, the same names every time)."""
        n = len(next(iter(columns.values())))
        with writing(self.path, WRITABLE):
            self._write(columns, n)
        self.rows += n

    def _write(self, columns: Mapping[str, np.ndarray], n: int) -> None:
        if self.format == ".parquet":
            self._write_parquet(columns)
        elif self.format == ".csv":
            assert self._text is not None
            pd.DataFrame(columns).to_csv(self._text, header=self.rows == 0, index=False)
        else:
            assert self._text is not None
            if n:
                text = pd.DataFrame(columns).to_json(orient="records", double_precision=15)
                self._text.write("[\n" if self.rows == 0 else ",\n")
                self._text.write(text[1:-1].replace("},{", "},\n{"))

    def _write_parquet(self, columns: Mapping[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(dict(columns))
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._file.temp, table.schema)
        self._parquet.write_table(table)

    def close(self, **extra: Any) -> None:
        """Finish the file with ``extra`` provenance fields and move it (and its meta) in place."""
        self.meta.update(extra, rows=self.rows)
        self.closed = True
        try:
            with writing(self.path, WRITABLE):
                self._finish()
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> None:
        if self.format == ".parquet":
            if self._parquet is None:
                raise ValueError("no columns were written")
            self._parquet.add_key_value_metadata({METADATA_KEY: json.dumps(self.meta)})
            self._parquet.close()
        else:
            assert self._text is not None and self._meta_file is not None
            if self.format == ".json":
                self._text.write("[\n]\n" if self.rows == 0 else "\n]\n")
            self._text.close()
            self._meta_file.temp.write_text(json.dumps(self.meta, indent=2) + "\n")
        self._file.commit()
        if self._meta_file is not None:
            self._meta_file.commit()

    def abort(self) -> None:
        """Remove the temporary files; nothing appears under the output name."""
        with suppress(OSError, ValueError):
            if self._parquet is not None:
                self._parquet.close()
        self._parquet = None
        with suppress(OSError, ValueError):
            if self._text is not None and not self._text.closed:
                self._text.close()
        self._file.discard()
        if self._meta_file is not None:
            self._meta_file.discard()


def write_results(path: Path, columns: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write a whole results table at once (atomically, with provenance)."""
    with ResultsWriter(path, meta) as writer:
        writer.write(columns)


def read_results(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A results file (CSV, Parquet or JSON) and its provenance (empty when there is none).

    The file is read through :func:`~dse.files.open_input` (regular files of at most
    :func:`~dse.files.results_limit_bytes`); its columns and provenance are validated.
    """
    path = Path(path)
    suffix = check_suffix(path, str(path))
    expected = f"a readable {suffix} results file"
    with open_input(path, results_limit_bytes(), "a results file") as handle:
        try:
            frame, meta = _read_table(handle, suffix, path)
        except InputError:
            raise
        except (ValueError, TypeError, RecursionError) as error:  # TypeError: JSON [1.5, true]
            raise InputError(path, "", expected, _first_line(error)) from None
    _check_names(frame, path)
    if suffix == ".parquet":
        return frame, check_meta(meta, path, f"metadata.{METADATA_KEY}")
    sidecar = meta_path(path)
    if not exists(sidecar):
        return frame, {}
    return frame, check_meta(read_json(sidecar, "a JSON object of provenance"), sidecar)


def _read_table(handle: IO[bytes], suffix: str, path: Path) -> tuple[pd.DataFrame, Any]:
    """The table in ``handle`` and, for Parquet, its provenance metadata (else None)."""
    if suffix == ".csv":
        return pd.read_csv(handle), None
    if suffix == ".json":
        return pd.read_json(handle, orient="records", dtype=False, convert_axes=False), None
    import pyarrow.parquet as pq

    source = pq.ParquetFile(handle)
    raw = (source.metadata.metadata or {}).get(METADATA_KEY.encode())
    meta = parse_json(raw, path, "JSON provenance metadata") if raw else {}
    return source.read().to_pandas(), meta


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _check_names(frame: pd.DataFrame, path: Path) -> None:
    unnamed = [name for name in frame.columns if not isinstance(name, str) or not name]
    if unnamed:
        raise InputError(
            path, "", "a table of named columns (JSON: a list of objects)", f"columns {unnamed[:3]}"
        )


def check_meta(meta: Any, source: str | Path, prefix: str = "") -> dict[str, Any]:
    """Validate a results file's provenance: a JSON object whose ``objectives``, if present,
    is a list of ``{"name": column, "maximize": bool}`` objects."""
    if not isinstance(meta, dict):
        raise InputError(source, prefix, "a JSON object of provenance", type(meta).__name__)
    objectives = meta.get("objectives")
    if objectives is None:
        return meta
    key = f"{prefix}.objectives" if prefix else "objectives"
    if not isinstance(objectives, list):
        raise InputError(source, key, "a list of {name, maximize} objects", objectives)
    for i, objective in enumerate(objectives):
        item = f"{key}[{i}]"
        if not isinstance(objective, dict):
            raise InputError(source, item, "an object {name, maximize}", objective)
        name = objective.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(source, f"{item}.name", "a column name", name or "nothing (missing)")
        if not isinstance(objective.get("maximize", False), bool):
            raise InputError(source, f"{item}.maximize", "true or false", objective["maximize"])
    return meta
