"""Energy and cost of a training run (docs/model.md §3). Pure functions over arrays of shape ``(n,)``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.designs import Designs, FloatArray
from dse.model.silicon import Silicon
from dse.model.training import Training
from dse.settings import Settings
from dse.units import HOURS_PER_YEAR, KWH_PER_MWH, SECONDS_PER_HOUR, W_PER_MW, WH_PER_MWH


@dataclass(frozen=True)
class Economics:
    """Energy, power and cost of each design's run; arrays of shape ``(n,)``."""

    cluster_power_mw: FloatArray
    energy_mwh: FloatArray
    unit_price_usd: FloatArray
    capex_usd: FloatArray
    hardware_cost_usd: FloatArray
    electricity_cost_usd: FloatArray
    cost_usd: FloatArray


def unit_price(designs: Designs, silicon: Silicon, settings: Settings) -> FloatArray:
    """§3.2 Price of one chip: modeled unit cost × its vendor's markup (the default markup
    where the vendor publishes no price), unless the design gives a price explicitly."""
    markup = np.where(
        np.isfinite(designs.price_markup), designs.price_markup, settings.price_to_cost_markup
    )
    modeled = silicon.unit_cost_usd * markup
    return np.where(np.isfinite(designs.unit_price_usd), designs.unit_price_usd, modeled)


ENERGY_SCOPES = ("facility", "it", "chips", "tdp")
"""What a power or energy figure counts (§3.1): the facility (the IT load × PUE), the IT load
(accelerators, hosts and network), the accelerators alone, or every accelerator at its TDP for
the whole run (a formula some reports use: chip-hours × TDP, which measures nothing)."""


def cluster_power_w(
    designs: Designs, silicon: Silicon, training: Training, settings: Settings, scope: str
) -> FloatArray:
    """§3.1 The cluster's mean power in W over the run, counted as ``scope`` says
    (:data:`ENERGY_SCOPES`); shape ``(n,)``.

    Accelerators = used chips at their average power + idle chips at static power; IT = that +
    host and network power per chip; facility = IT × PUE.
    """
    if scope == "tdp":
        return designs.num_chips * designs.tdp_w
    idle = designs.num_chips - training.chips_used
    chips_w = training.chips_used * training.avg_chip_power_w + idle * silicon.static_power_w
    if scope == "chips":
        return chips_w
    it_w = chips_w + designs.num_chips * settings.host_power_w_per_chip
    if scope == "it":
        return it_w
    if scope == "facility":
        return it_w * settings.pue
    raise ValueError(f"scope: expected one of {ENERGY_SCOPES}, got {scope!r}")


def evaluate_economics(
    designs: Designs, silicon: Silicon, training: Training, settings: Settings
) -> Economics:
    """§3.1 facility power and energy; §3.2 hardware amortized over the run plus electricity.

    Facility power: :func:`cluster_power_w`. Hardware cost = capex × run time / service life.
    """
    facility_w = cluster_power_w(designs, silicon, training, settings, "facility")
    hours = training.training_time_s / SECONDS_PER_HOUR
    energy_mwh = facility_w * hours / WH_PER_MWH
    price = unit_price(designs, silicon, settings)
    capex = designs.num_chips * price * (1.0 + settings.system_overhead_fraction)
    hardware = capex * hours / (settings.service_life_years * HOURS_PER_YEAR)
    electricity = energy_mwh * KWH_PER_MWH * settings.electricity_usd_per_kwh
    return Economics(
        cluster_power_mw=facility_w / W_PER_MW,
        energy_mwh=energy_mwh,
        unit_price_usd=price,
        capex_usd=capex,
        hardware_cost_usd=hardware,
        electricity_cost_usd=electricity,
        cost_usd=hardware + electricity,
    )
