"""One unit vocabulary for the whole project: named scale factors instead of bare powers of ten.

Names follow the project's rule that units appear in every name: ``tdp_w``,
``hbm_bandwidth_tb_s``, ``energy_mwh``. Convert at the edges with these constants.
"""

from __future__ import annotations

KILO = 1e3
MEGA = 1e6
GIGA = 1e9
TERA = 1e12
PETA = 1e15

BITS_PER_BYTE = 8.0
PICO = 1e-12

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
SECONDS_PER_DAY = SECONDS_PER_HOUR * HOURS_PER_DAY
DAYS_PER_YEAR = 365.25
HOURS_PER_YEAR = HOURS_PER_DAY * DAYS_PER_YEAR

MM2_PER_CM2 = 100.0
MB_PER_MIB = 1.048576
GB_PER_GIB = 1.073741824
BYTES_PER_GIB = 2.0**30
"""Memory capacities (HBM stacks, SRAM) are binary: a "192 GB" HBM3e package holds 192 GiB
(DRAM dies of 2^k bits; docs/model.md §2.4)."""
W_PER_MW = 1e6
WH_PER_MWH = 1e6
KWH_PER_MWH = 1e3

UNIT_SUFFIXES = (
    ("_w_per_mm2", "W/mm²"),
    ("_usd", "USD"),
    ("_mwh", "MWh"),
    ("_kwh", "kWh"),
    ("_days", "days"),
    ("_hours", "h"),
    ("_tflop_s", "TFLOP/s"),
    ("_tb_s", "TB/s"),
    ("_gb_s", "GB/s"),
    ("_per_s", "/s"),
    ("_s", "s"),
    ("_mw", "MW"),
    ("_w", "W"),
    ("_gb", "GB"),
    ("_mb", "MB"),
    ("_mm2", "mm²"),
    ("_ghz", "GHz"),
)
"""Name suffix → unit, most specific first (``_tb_s`` before ``_s``)."""


def unit_of(name: str) -> str:
    """The unit a column or metric name states by its suffix (``cost_usd`` → ``USD``); an entry
    of a group, by the group's (``breakdown_s.compute`` → ``s``, but not a ``..._fraction`` or
    an ``error``, which are ratios); ``1`` for a dimensionless one (``mfu``)."""
    unit = next((unit for suffix, unit in UNIT_SUFFIXES if name.endswith(suffix)), "1")
    head, dot, member = name.rpartition(".")
    if unit == "1" and dot and not member.endswith(("fraction", "error")):
        return unit_of(head)  # an entry of a group states its unit by the group's name
    return unit
