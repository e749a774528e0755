"""Notes on a roadmap step, generated from the numbers: which parts of cost, time and energy
shrank, which did not, and which grew, so that a lever short of its nominal factor says why.
"""

from __future__ import annotations

from collections.abc import Mapping

from dse.framework.state import Outcome

SAME = 0.02
"""A part whose before/after ratio is within 2% of 1 counts as unchanged."""
SHARE_SHOWN = 0.02
"""Parts below 2% of the total, before and after, are left out of a note."""
MEETS = 0.995
"""A step within 0.5% of its nominal factor meets it (rounding, not a shortfall or a gain)."""


def factor(before: float, after: float) -> float:
    """Improvement factor ``before / after`` (> 1 means the quantity shrank); 1 when both are 0."""
    if after > 0:
        return before / after
    return 1.0 if before <= 0 else float("inf")


def parts_note(label: str, before: Mapping[str, float], after: Mapping[str, float]) -> str:
    """``label F×: shrank …; unchanged …; grew …`` over the additive parts of one quantity.

    Shrinking parts show their factor; unchanged ones their share of the new total; growing ones
    their factor (or ``new``) and share; a part that vanished is ``gone``.
    """
    total_before, total_after = sum(before.values()), sum(after.values())
    shrank, same, grew = [], [], []
    for name in after:
        b, a = before.get(name, 0.0), after[name]
        share = a / total_after if total_after > 0 else 0.0
        if max(b / max(total_before, 1e-300), share) < SHARE_SHOWN:
            continue
        f = factor(b, a)
        if b <= 0:
            grew.append(f"{name} new ({share:.0%})")
        elif a <= 0:
            shrank.append(f"{name} gone")
        elif f > 1 + SAME:
            shrank.append(f"{name} {f:.2f}x")
        elif f < 1 - SAME:
            grew.append(f"{name} {f:.2f}x ({share:.0%})")
        else:
            same.append(f"{name} ({share:.0%})")
    groups = [("shrank", shrank), ("unchanged", same), ("grew", grew)]
    body = "; ".join(f"{word}: {', '.join(items)}" for word, items in groups if items)
    return f"{label} {factor(total_before, total_after):.2f}x — {body}"


def step_note(before: Outcome, after: Outcome, nominal: float) -> str:
    """The note of one step: its cost factor against ``nominal`` and, where it falls short,
    the parts of cost, time and energy that explain it."""
    cost = factor(before.cost_usd, after.cost_usd)
    head = f"{cost:.2f}x on cost vs nominal {nominal:g}x"
    if not after.feasible:
        head += " (infeasible: no parallelism plan fits in memory)"
    if cost >= nominal / MEETS:
        return f"{head}: exceeds it"
    if cost >= nominal * MEETS:
        return f"{head}: meets it"
    unchanged = all(
        abs(factor(before_part, after_part) - 1.0) <= SAME
        for b, a in (
            (before.cost_usd_parts, after.cost_usd_parts),
            (before.time_days, after.time_days),
            (before.energy_mwh_parts, after.energy_mwh_parts),
        )
        for before_part, after_part in ((b.get(k, 0.0), v) for k, v in a.items())
    )
    if unchanged:
        return f"{head}: no part of cost, time or energy changed in the model"
    notes = [head, parts_note("cost", before.cost_usd_parts, after.cost_usd_parts)]
    for label, b, a in (
        ("time", before.time_days, after.time_days),
        ("energy", before.energy_mwh_parts, after.energy_mwh_parts),
    ):
        if any(abs(factor(b.get(k, 0.0), v) - 1.0) > SAME for k, v in a.items()):
            notes.append(parts_note(label, b, a))
    return " | ".join(notes)
