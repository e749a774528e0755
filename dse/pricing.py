"""One price basis for every design, catalog or hypothetical (docs/model.md §3.2).

A chip's price is its modeled unit cost (§1.6) times its vendor's markup: the median, over the
vendor's catalog chips that publish a price, of published price / modeled unit cost. Designs
derived from a catalog chip (a space's ``base_chip``, a lever) inherit its vendor's markup, so
the same design costs the same everywhere, and more silicon or HBM never makes it cheaper.
Vendors with no published price use ``price_to_cost_markup`` (dse/defaults.toml).
"""

from __future__ import annotations

import statistics
from functools import cache

from dse.catalog.chips import chip_ids, load_chip


@cache
def vendor_markups() -> dict[str, float]:
    """Vendor → median published price over modeled unit cost of its priced catalog chips."""
    from dse.designs import from_chips
    from dse.model.silicon import evaluate_silicon

    chips = [load_chip(c) for c in chip_ids()]
    priced = [c for c in chips if c.published.get("unit_price_usd")]
    if not priced:
        return {}
    cost = evaluate_silicon(from_chips(priced, with_markup=False)).unit_cost_usd
    ratios: dict[str, list[float]] = {}
    for chip, unit_cost in zip(priced, cost, strict=True):
        price = float(chip.published["unit_price_usd"])  # type: ignore[arg-type]
        ratios.setdefault(chip.vendor, []).append(price / float(unit_cost))
    return {vendor: statistics.median(values) for vendor, values in ratios.items()}
