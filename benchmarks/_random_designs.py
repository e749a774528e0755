"""Random design points around today's chips, shared by the benchmark scripts."""

from __future__ import annotations

import numpy as np

from dse.catalog.chips import load_chip
from dse.catalog.technology import load_technology
from dse.designs import Designs, from_chips


def random_designs(n: int, seed: int = 0) -> Designs:
    """``n`` designs varying compute, clock, node, HBM, TDP, links and cluster size."""
    rng = np.random.default_rng(seed)
    technology = load_technology()
    base = from_chips([load_chip("h100-sxm")]).take(np.zeros(n, dtype=np.int64))
    return base.replace(
        node=rng.integers(0, len(technology.nodes), n),
        hbm_generation=rng.integers(0, len(technology.memories), n),
        compute_units=rng.integers(64, 257, n).astype(float),
        spare_units=rng.integers(0, 17, n).astype(float),
        clock_ghz=rng.uniform(1.0, 2.2, n),
        sram_mb=rng.uniform(32, 256, n),
        tdp_w=rng.uniform(400, 1200, n),
        fp8_flops_per_cycle_per_unit=rng.choice([0.0, 8192.0], n),
        hbm_stacks=rng.integers(4, 13, n).astype(float),
        scale_up_bandwidth_gb_s=rng.uniform(400, 1800, n),
        scale_out_bandwidth_gb_s=rng.uniform(25, 100, n),
        num_chips=np.round(np.exp(rng.uniform(np.log(256), np.log(32768), n))),
        unit_price_usd=np.full(n, np.nan),
    )
