"""Guard rails for long runs: how many designs, how long and how large, before a sweep or search.

The rate is measured, not assumed: a small batch of the problem's own designs (random rows of
its space) is timed through the model and written to a temporary file of the output's format,
which gives designs per second and bytes per row. Runs above :data:`MAX_DESIGNS` designs or
:data:`MAX_OUTPUT_BYTES` of output are refused unless the caller confirms.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dse.errors import InputError, TooLargeError
from dse.search.problem import Problem
from dse.search.sweep import sweep_total
from dse.units import GIGA, SECONDS_PER_DAY, SECONDS_PER_HOUR

MAX_DESIGNS = 50_000_000
"""Designs above which a run needs confirmation (``confirm=True``)."""
MAX_OUTPUT_BYTES = 10 * GIGA
"""Estimated output size (bytes) above which a run needs confirmation (``confirm=True``)."""
SAMPLE_DESIGNS = 1024
"""Designs timed to measure the model's rate (about 0.15 s at 7,000 designs/s)."""
WARMUP_DESIGNS = 64
ENGINE_OVERHEAD_S = {"pymoo": 0.3e-3, "optuna": 3.3e-3}
"""Engine time per evaluation (s) beside the model's, measured on a 2-core machine: pymoo
NSGA-II 5,000 evaluations in 3.4 s and optuna NSGA-II (in memory) 1,000 trials in 3.7 s, less
the model's time at the population's batch size. A database storage adds its own latency."""


@dataclass(frozen=True)
class Estimate:
    """What a run will cost before it starts.

    ``designs`` evaluated; ``rows`` written (None when only the Pareto set is kept, which is
    not known ahead); ``designs_per_s`` the measured rate; ``seconds`` the estimated wall time
    (s); ``bytes_per_row`` measured in the output's format; ``output_bytes`` the estimated file
    size (bytes; for a Pareto-only run, the size were every row kept: an upper bound).
    """

    designs: int
    rows: int | None
    designs_per_s: float
    seconds: float
    bytes_per_row: float
    output_bytes: float
    output_format: str
    parallel: int

    def over_limit(self) -> list[str]:
        """The limits this run breaks (empty when it may start without confirmation)."""
        broken = []
        if self.designs > MAX_DESIGNS:
            broken.append(f"more than {MAX_DESIGNS:,} designs")
        if self.rows is not None and self.output_bytes > MAX_OUTPUT_BYTES:
            broken.append(f"more than {_size(MAX_OUTPUT_BYTES)} of output")
        return broken

    def record(self) -> dict[str, Any]:
        """The estimate as a plain record (what a dry run prints)."""
        return {**asdict(self), "time": _duration(self.seconds), "size": self.size_text()}

    def size_text(self) -> str:
        size = _size(self.output_bytes)
        if self.rows is None:
            return f"Pareto set only (at most {size})"
        return size

    def text(self) -> str:
        """One line for a person: designs, time at the measured rate, output size."""
        rate = f"{self.designs_per_s:,.0f} designs/s"
        if self.parallel > 1:
            rate += f" x {self.parallel} processes, at best"
        return (
            f"{self.designs:,} designs, about {_duration(self.seconds)} at {rate}, "
            f"output {self.size_text()} of {self.output_format}"
        )


def check_limits(estimate: Estimate, confirmed: bool) -> None:
    """Raise :class:`TooLargeError` with the estimate when the run is too large and unconfirmed."""
    broken = estimate.over_limit()
    if broken and not confirmed:
        raise TooLargeError(estimate.text(), broken)


def estimate_sweep(
    problem: Problem,
    out: Path,
    *,
    method: str,
    samples: int | None,
    pareto_only: bool = False,
    parallel: int = 1,
) -> Estimate:
    """Estimate a sweep of ``problem`` written to ``out``; ``parallel`` processes (an optimistic
    linear speed-up)."""
    total = sweep_total(problem, method, samples)
    rate, per_row = measure(problem, out.suffix.lower(), min(total, SAMPLE_DESIGNS))
    return Estimate(
        designs=total,
        rows=None if pareto_only else total,
        designs_per_s=rate,
        seconds=total / (rate * parallel),
        bytes_per_row=per_row,
        output_bytes=total * per_row,
        output_format=out.suffix.lower().lstrip("."),
        parallel=parallel,
    )


def estimate_search(
    problem: Problem, out: Path, *, engine: str, evals: int, batch: int
) -> Estimate:
    """Estimate a search of ``evals`` evaluations in batches of ``batch`` designs by ``engine``."""
    if evals < 1:
        raise InputError.for_argument("evals", "a whole number >= 1", evals)
    rate, per_row = measure(problem, out.suffix.lower(), min(evals, SAMPLE_DESIGNS), batch)
    seconds = evals * (1.0 / rate + ENGINE_OVERHEAD_S.get(engine, 0.0))
    return Estimate(
        designs=evals,
        rows=evals,
        designs_per_s=evals / seconds,
        seconds=seconds,
        bytes_per_row=per_row,
        output_bytes=evals * per_row,
        output_format=out.suffix.lower().lstrip("."),
        parallel=1,
    )


def measure(
    problem: Problem, suffix: str, designs: int, batch: int | None = None
) -> tuple[float, float]:
    """Model rate (designs/s) over ``designs`` random designs evaluated in batches of ``batch``
    (default: all at once), and the bytes per row of their results in the ``suffix`` format."""
    from dse.export import concat_columns, results_columns, write_results

    space = problem.space
    problem.evaluate(space.random(0, min(WARMUP_DESIGNS, designs), seed=1))
    batch = batch or designs
    parts = []
    started = time.perf_counter()
    for start in range(0, designs, batch):
        parts.append(problem.evaluate(space.random(start, min(start + batch, designs), seed=0)))
    seconds = time.perf_counter() - started
    columns = concat_columns([results_columns(part) for part in parts])
    with tempfile.TemporaryDirectory(prefix="dse-estimate-") as folder:
        sample = Path(folder) / f"sample{suffix}"
        write_results(sample, columns, {})
        size = sample.stat().st_size
    return designs / max(seconds, 1e-9), size / designs


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < SECONDS_PER_HOUR:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * SECONDS_PER_DAY:
        return f"{seconds / SECONDS_PER_HOUR:.1f} h"
    return f"{seconds / SECONDS_PER_DAY:.1f} days"


def _size(size_bytes: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:,.1f} {unit}"
    return f"{size_bytes:.0f} B"
