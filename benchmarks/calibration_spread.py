"""The spread of the calibrated [C] constants over the cross-validation folds.

Refits the calibration (dse/calibration.py) leaving out one source (or family) at a time and
prints, per constant, the values the folds chose: their minimum, maximum and standard
deviation. chips/technology/uncertainty.toml takes the ranges of the [C] constants from here.

    python benchmarks/calibration_spread.py [source|family|run]
"""

from __future__ import annotations

import statistics
import sys

from dse.calibration import GRID, GROUPINGS, _fit, prediction_tables
from dse.settings import load_settings


def main(by: str = "source") -> None:
    base = load_settings()
    tables = prediction_tables(base)
    groups = [GROUPINGS[by](r) for r in tables.grid[0]]
    values: dict[str, list[float]] = {}
    for group in sorted(set(groups)):
        fold = _fit(tables, [g != group for g in groups], base.goodput)
        chosen = tables.settings[fold.setting]
        for key in GRID:
            values.setdefault(key, []).append(float(getattr(chosen, key)))
        values.setdefault("goodput", []).append(fold.goodput)
        for family, scale in fold.scales.items():
            values.setdefault(f"families.{family}", []).append(scale)
        for vendor, scale in fold.vendor_scales.items():
            values.setdefault(f"vendors.{vendor}", []).append(scale)
    print(f"{len(set(groups))} folds, left out by {by}")
    for key, vs in values.items():
        print(
            f"{key:45s} min {min(vs):.4g}  max {max(vs):.4g}  "
            f"sd {statistics.pstdev(vs):.3g}  mean {statistics.fmean(vs):.4g}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
