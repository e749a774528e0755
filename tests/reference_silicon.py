"""A readable scalar reference of the silicon model (docs/model.md §1), one design at a time.

Written independently of dse/model/silicon.py from the equations in docs/model.md, with plain
``math``: the vectorized model must agree with it on random designs.
"""

from __future__ import annotations

import math
from typing import Any

from dse.catalog.technology import Technology


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), by direct summation."""
    return sum(math.comb(n, j) * p**j * (1.0 - p) ** (n - j) for j in range(0, min(k, n) + 1))


def silicon(row: dict[str, Any], tech: Technology) -> dict[str, float]:
    node = list(tech.nodes.values())[row["node"]]
    memory = list(tech.memories.values())[row["hbm_generation"]]
    area, wafer, yld = tech.silicon["area"], tech.silicon["wafer"], tech.silicon["yield"]
    package, power = tech.silicon["package"], tech.silicon["power"]
    dies = row["dies_per_package"]

    peak = {
        f: row["compute_units"] * row[f"{f}_flops_per_cycle_per_unit"] * row["clock_ghz"] * 1e9
        for f in ("bf16", "fp16", "fp8", "fp4")
    }
    bandwidth_tb_s = row["hbm_stacks"] * memory.pins_per_stack * row["hbm_pin_rate_gbps"] / 8 / 1000
    capacity_gb = row["hbm_stacks"] * row["hbm_stack_capacity_gb"]

    # §1.3 die area
    tensor = (
        max(row["bf16_flops_per_cycle_per_unit"], row["fp16_flops_per_cycle_per_unit"])
        + area["fp8_area_weight"] * row["fp8_flops_per_cycle_per_unit"]
        + area["fp4_area_weight"] * row["fp4_flops_per_cycle_per_unit"]
    )
    unit = (
        area["unit_base_mm2_at_n7"] + area["tensor_mm2_per_flop_per_cycle_at_n7"] * tensor
    ) / node.logic_scale_vs_n7
    units_per_die = (row["compute_units"] + row["spare_units"]) / dies
    sram_density = area["sram_mb_per_mm2_at_n7"] * 0.027 / node.sram_bitcell_um2
    links_gb_s = (row["scale_up_bandwidth_gb_s"] + 2 * row["scale_out_bandwidth_gb_s"]) / dies
    die = (
        units_per_die * unit
        + row["sram_mb"] / dies / sram_density
        + row["hbm_stacks"] / dies * memory.phy_area_mm2
        + (area["uncore_mm2_at_n7"] + area["link_controller_mm2_per_gb_s_at_n7"] * links_gb_s)
        / node.logic_scale_vs_n7
        + area["io_base_mm2"]
        + area["serdes_mm2_per_gb_s"] * links_gb_s
    )

    # §1.4 dies per wafer
    usable = wafer["diameter_mm"] - 2 * wafer["edge_loss_mm"]
    effective = (math.sqrt(die) + wafer["scribe_mm"]) ** 2
    dpw = math.floor(
        max(
            math.pi * (usable / 2) ** 2 / effective - math.pi * usable / math.sqrt(2 * effective),
            0.0,
        )
    )

    # §1.5 yield with harvesting
    def nb(a_mm2: float) -> float:
        return (1 + a_mm2 / 100 * node.defect_density_per_cm2 / yld["clustering_alpha"]) ** -yld[
            "clustering_alpha"
        ]

    n_units = round(units_per_die)
    spares = math.floor(row["spare_units"] / dies)
    n_units = max(n_units, spares + 1)
    fixed = max(die - units_per_die * unit, 0.0)
    die_yield = yld["systematic_yield"] * nb(fixed) * binomial_cdf(spares, n_units, 1 - nb(unit))

    # §1.6 cost
    die_cost = node.wafer_price_usd / max(dpw * die_yield, 1e-9)
    hbm_cost = capacity_gb * memory.cost_usd_per_gb
    interposer = (
        package["interposer_area_factor"]
        * (die * dies + row["hbm_stacks"] * package["hbm_footprint_mm2"])
        * package["interposer_usd_per_mm2"]
    )
    bonded = (dies * die_cost + hbm_cost + interposer) / package["bond_yield_per_component"] ** (
        dies + row["hbm_stacks"]
    )
    unit_cost = bonded * (1 + package["test_assembly_fraction"])

    # §1.7 power and the sustained clock at full bf16 load
    serdes = (
        (row["scale_up_bandwidth_gb_s"] + 2 * row["scale_out_bandwidth_gb_s"])
        * 1e9
        * 8
        * power["serdes_pj_per_bit"]
        * 1e-12
    )
    static = die * dies * node.leakage_w_per_mm2 + serdes
    hbm_full = (
        bandwidth_tb_s
        * 1e12
        * 8
        * memory.energy_pj_per_bit
        * 1e-12
        * power["full_load_hbm_utilization"]
    )
    compute = peak["bf16"] * node.energy_bf16_pj_per_flop * row["energy_per_flop_scale"] * 1e-12
    headroom = row["tdp_w"] - static - hbm_full
    ratio = (
        1.0
        if compute <= 0
        else min(max(headroom / compute, 0.0) ** (1 / power["dvfs_exponent"]), 1.0)
    )
    return {
        "peak_bf16": peak["bf16"],
        "peak_fp8": peak["fp8"],
        "hbm_bandwidth_tb_s": bandwidth_tb_s,
        "hbm_capacity_gb": capacity_gb,
        "die_area_mm2": die,
        "dies_per_wafer": dpw,
        "die_yield": die_yield,
        "unit_cost_usd": unit_cost,
        "sustained_clock_bf16": row["clock_ghz"] * ratio,
    }
