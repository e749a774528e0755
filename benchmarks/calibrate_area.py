"""Fit the two compute-unit area coefficients of chips/technology/silicon.toml [area].

Die area is linear in ``unit_base_mm2_at_n7`` (b) and ``tensor_mm2_per_flop_per_cycle_at_n7``
(c): A = units/scale · (b + c·f) + rest. This script fits b and c once, jointly, to the chips
whose die area is published (relative least squares), prints the fit and every chip's error
with the coefficients currently in the file. It changes no file: copy the fit by hand.

Run: python benchmarks/calibrate_area.py
"""

from __future__ import annotations

import numpy as np

from dse.catalog.chips import chip_ids, load_chip
from dse.catalog.technology import load_technology
from dse.designs import from_chips
from dse.model.silicon import (
    _tech_arrays,
    area_weighted_flops_per_cycle,
    die_area,
    evaluate_silicon,
)

REFERENCE_DIES = ("v100", "a100-40gb", "h100-sxm")


def main() -> None:
    technology = load_technology()
    tech = _tech_arrays(technology)
    area = tech.silicon["area"]
    chips = [load_chip(i) for i in chip_ids()]
    # One chip per physical die (GV100, GA100, GH100); the other GH100/GA100 variants would
    # only repeat the same die.
    known = [load_chip(i) for i in REFERENCE_DIES]
    print("fitted on:", ", ".join(REFERENCE_DIES))
    designs = from_chips(known)
    unit_mm2, die_mm2 = die_area(designs, tech)
    units = (designs.compute_units + designs.spare_units) / designs.dies_per_package
    scale = tech.node["logic_scale_vs_n7"][designs.node]
    flops = area_weighted_flops_per_cycle(designs, tech)
    rest = die_mm2 - units * unit_mm2
    target = (
        np.array([float(c.published["die_area_mm2"]) for c in known]) / designs.dies_per_package
    )
    # relative residuals: (units/scale·(b + c·f) + rest − target) / target
    A = np.column_stack([units / scale, units / scale * flops]) / target[:, None]
    y = (target - rest) / target
    (b, c), *_ = np.linalg.lstsq(A, y, rcond=None)
    print(f"fit: unit_base_mm2_at_n7 = {b:.3f}   tensor_mm2_per_flop_per_cycle_at_n7 = {c:.6f}")
    print(
        f"in file: {area['unit_base_mm2_at_n7']:.3f}   {area['tensor_mm2_per_flop_per_cycle_at_n7']:.6f}\n"
    )
    s = evaluate_silicon(from_chips(chips))
    print(f"{'chip':12s} {'model mm2':>10s} {'published':>10s} {'error':>8s}")
    for i, chip in enumerate(chips):
        published = chip.published.get("die_area_mm2")
        model = s.silicon_area_mm2[i]
        error = f"{model / float(published) - 1:+.1%}" if published else "-"
        print(f"{chip.id:12s} {model:10.0f} {published or '-':>10} {error:>8s}")


if __name__ == "__main__":
    main()
