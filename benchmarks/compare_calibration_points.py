"""Compare the shipped defaults with another calibration point on every published figure.

    python benchmarks/compare_calibration_points.py --set elementwise_bytes_per_activation_byte=16 \
        --set dp_overlap=0 --set goodput=0.738 --scale nvidia-ampere=1.05 --scale google-tpu=0.95

The calibration (dse/calibration.py, benchmarks/calibrate_training.py) picks one point of its
grid; where two points fit almost equally well, which one ships is a choice that docs/model.md
§4 records. This prints, for the shipped defaults and for the point given (settings with
``--set``, chip-family scales with ``--scale``; everything else as shipped), the numbers that
choice rests on: the mean |ln(predicted / reported)| of the figures other than full runs and
energy (close to the calibration's steady-state score, which also keeps the full runs' MFU and
throughput figures; here each family at the scale given rather than profiled out), the
median |error| of all figures, the published-plan figures within ±15 %, and the figures the
training-model tests pin (DeepSeek-V3's GPU-hours, the GPT-3 175B projection); and first the
score by which the calibration's own grid search ranks the two settings (every family at scale
1, then each fitted family shifted by its median log error: :func:`dse.calibration.
stage_one_score`), which does not depend on the family scales given. About 20 s.
"""

from __future__ import annotations

import argparse
import math
import statistics

from dse.calibration import stage_one_score
from dse.catalog.technology import load_technology
from dse.errors import InputError
from dse.settings import Settings, load_settings
from dse.validation import Comparison, validate

PINNED = ("deepseek-v3", "gpt3-megatron")


def shipped_scales() -> dict[str, float]:
    """Each family's and vendor's ``gemm_efficiency_scale`` as shipped
    (chips/technology/families.toml)."""
    families = load_technology().families
    return {name: family.gemm_efficiency_scale for name, family in families.items()}


def summary(rows: list[Comparison]) -> dict[str, float]:
    """The numbers a calibration point is judged by (see the module docstring)."""
    steady = [
        abs(math.log1p(r.error))
        for r in rows
        if r.run_type != "full_run" and r.metric != "energy_mwh"
    ]
    plans = [abs(r.error) for r in rows if r.plan_published and r.run_type != "full_run"]
    out = {
        "steady-state mean |ln error|": statistics.fmean(steady),
        "median |error| (all figures)": statistics.median(abs(r.error) for r in rows),
        "published-plan figures within ±15 %": float(sum(e <= 0.15 for e in plans)),
        "published-plan figures (steady state)": float(len(plans)),
    }
    for r in rows:
        if r.run in PINNED:
            out[f"{r.run} {r.metric} error"] = r.error
    return out


def parse_pairs(pairs: list[str], option: str) -> dict[str, float]:
    """``key=value`` strings as a mapping; a malformed one is a usage error."""
    values: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            values[key] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key:
            raise SystemExit(f"{option}: expected key=number, got {pair!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE")
    parser.add_argument("--scale", action="append", default=[], metavar="FAMILY=VALUE")
    args = parser.parse_args()
    base = load_settings()
    overrides = parse_pairs(args.set, "--set")
    try:
        other: Settings = base.with_overrides(**overrides)
    except InputError as exc:
        raise SystemExit(f"--set: {exc}") from None
    scales, given_scales = shipped_scales(), parse_pairs(args.scale, "--scale")
    unknown = sorted(set(given_scales) - set(scales))
    if unknown:
        raise SystemExit(f"--scale: expected one of {sorted(scales)}, got {unknown}")
    other_scales = {**scales, **given_scales}
    shipped = {"stage-1 score (families profiled out)": stage_one_score(base)}
    given = {"stage-1 score (families profiled out)": stage_one_score(other)}
    shipped.update(summary(validate(base)))
    given.update(summary(validate(other, family_scales=other_scales)))
    print(f"{'':40s} {'shipped':>10s} {'given':>10s}")
    for key, value in shipped.items():
        print(f"{key:40s} {value:10.4f} {given[key]:10.4f}")


if __name__ == "__main__":
    main()
