"""The silicon model: one accelerator package from its design parameters (docs/model.md §1).

Pure functions over :class:`~dse.designs.Designs`; every result is an array of shape ``(n,)``
(or a dict of them keyed by number format). Sections of docs/model.md are named in each
function's docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np

from dse.catalog.chips import FORMATS, Chip
from dse.catalog.technology import Technology, load_technology
from dse.designs import Designs, FloatArray
from dse.model._special import betainc
from dse.units import BITS_PER_BYTE, GIGA, MEGA, MM2_PER_CM2, PICO, TERA

# Energy per FLOP of each format comes from the node table; fp16 shares the bf16 datapath.
_ENERGY_KEY = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "fp4": "fp4"}
_BITCELL_N7_UM2 = 0.027


@dataclass(frozen=True)
class TechArrays:
    """Technology tables as arrays indexed by the design's integer codes."""

    node: dict[str, FloatArray]
    memory: dict[str, FloatArray]
    silicon: Any
    analog: dict[str, FloatArray]


@cache
def _tech_arrays(technology: Technology) -> TechArrays:
    node_keys = [
        k for k in vars(next(iter(technology.nodes.values()))) if k not in ("id", "name", "sources")
    ]
    memory_keys = [
        k
        for k in vars(next(iter(technology.memories.values())))
        if k not in ("id", "name", "sources")
    ]
    node = {
        k: np.array([float(getattr(n, k)) for n in technology.nodes.values()]) for k in node_keys
    }
    memory = {
        k: np.array([float(getattr(m, k)) for m in technology.memories.values()])
        for k in memory_keys
    }
    cells = list(technology.analog_cells.values())
    analog_keys = [
        k for k in vars(cells[0]) if k not in ("id", "name", "sources", "reference_node")
    ]
    analog = {k: np.array([float(getattr(c, k)) for c in cells]) for k in analog_keys}
    # The node a tile's area was published at, as its SRAM bitcell area (the area's scale).
    analog["reference_bitcell_um2"] = np.array(
        [technology.nodes[c.reference_node].sram_bitcell_um2 for c in cells]
    )
    analog["sram_bytes_per_cycle_per_unit"] = np.array(technology.sram_bytes_per_cycle_per_unit)
    return TechArrays(node=node, memory=memory, silicon=technology.silicon, analog=analog)


@dataclass(frozen=True)
class Silicon:
    """The silicon model's results for ``n`` designs; every array has shape ``(n,)``.

    Areas are per die unless named ``silicon_area`` (all dies of a package). Peak rates are at
    the nominal clock; ``sustained_clock_ghz`` is the clock the TDP allows at full tensor load.
    """

    clock_ghz: FloatArray
    peak_flop_s: dict[str, FloatArray]
    sustained_clock_ghz: dict[str, FloatArray]
    hbm_bandwidth_tb_s: FloatArray
    hbm_capacity_gb: FloatArray
    memory_bandwidth_tb_s: FloatArray  # what training reads: HBM, or on-chip without (§1.2)
    memory_capacity_gb: FloatArray
    unit_area_mm2: FloatArray
    die_area_mm2: FloatArray
    silicon_area_mm2: FloatArray
    dies_per_wafer: FloatArray
    die_yield: FloatArray
    die_cost_usd: FloatArray
    hbm_cost_usd: FloatArray
    interposer_cost_usd: FloatArray
    unit_cost_usd: FloatArray
    static_power_w: FloatArray
    hbm_power_full_w: FloatArray
    compute_power_peak_w: dict[str, FloatArray]
    full_load_power_w: dict[str, FloatArray]
    energy_pj_per_flop: dict[str, FloatArray]
    hbm_energy_pj_per_bit: FloatArray
    power_density_w_per_mm2: FloatArray
    constraints: dict[str, FloatArray]
    dvfs_exponent: float | FloatArray  # dynamic power ∝ clock^exponent (§1.7); (n,) when drawn
    analog: Analog  # the analog in-memory tiles (§1.9)

    @property
    def sixteen_bit_peak_flop_s(self) -> FloatArray:
        """Dense 16-bit peak FLOP/s: bf16, or fp16 where the chip lacks bf16; shape ``(n,)``."""
        return np.maximum(self.peak_flop_s["bf16"], self.peak_flop_s["fp16"])

    def sustained_flop_s(self, fmt: str) -> FloatArray:
        """Dense FLOP/s in ``fmt`` at the sustained (TDP-limited) clock, shape ``(n,)``."""
        return self.peak_flop_s[fmt] * self.sustained_clock_ghz[fmt] / self.clock_ghz


@dataclass(frozen=True)
class Analog:
    """§1.9 The analog in-memory compute tiles of ``n`` designs; arrays of shape ``(n,)``.

    ``weight_capacity`` counts weights (tiles × rows × cols); ``peak_flop_s`` is 2 FLOPs per
    MAC of every tile at once; energies include the converters. Designs without tiles have
    zeros (and ``present`` False).
    """

    present: np.ndarray
    tiles: FloatArray
    area_mm2: FloatArray
    weight_capacity: FloatArray
    peak_flop_s: FloatArray
    energy_pj_per_flop: FloatArray
    full_load_power_w: FloatArray
    rows: FloatArray
    devices_per_weight: FloatArray
    row_write_s: FloatArray
    write_energy_pj: FloatArray
    endurance_cycles: FloatArray
    effective_bits: FloatArray


def analog_tiles(designs: Designs, tech: TechArrays) -> Analog:
    """§1.9 Area, weight capacity, peak MAC rate and energies of the analog tiles.

    A tile's area scales from its published node with the SRAM bitcell area (crossbar and
    pitch-matched converters shrink like memory); its MVM latency and MAC energy do not scale
    (converter-limited). Peak = tiles × rows × cols MACs per MVM latency.
    """
    cell = designs.analog_cell
    a = tech.analog
    tiles = designs.analog_tiles * (a["rows"][cell] > 0)
    weights_per_tile = a["rows"][cell] * a["cols"][cell]
    area = (
        tiles
        * a["tile_area_mm2"][cell]
        * tech.node["sram_bitcell_um2"][designs.node]
        / a["reference_bitcell_um2"][cell]
    )
    macs_per_s = tiles * weights_per_tile / (a["mvm_latency_ns"][cell] * 1e-9)
    energy_pj = a["mac_energy_fj"][cell] * 1e-3 / 2.0  # per FLOP: 2 FLOPs per MAC
    peak = 2.0 * macs_per_s
    return Analog(
        present=tiles > 0,
        tiles=tiles,
        area_mm2=area,
        weight_capacity=tiles * weights_per_tile,
        peak_flop_s=peak,
        energy_pj_per_flop=energy_pj,
        full_load_power_w=peak * energy_pj * PICO,
        rows=a["rows"][cell],
        devices_per_weight=a["devices_per_weight"][cell],
        row_write_s=a["row_write_us"][cell] * 1e-6,
        write_energy_pj=a["write_energy_pj"][cell],
        endurance_cycles=a["endurance_cycles"][cell],
        effective_bits=a["effective_bits"][cell],
    )


def training_memory(
    designs: Designs, tech: TechArrays, analog: Analog, hbm_tb_s: FloatArray, hbm_gb: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """§1.2 The memory the training model holds its state in and streams from: bandwidth (TB/s)
    and capacity (GB). HBM where the chip has it; a chip without HBM (``hbm_stacks = 0``, its
    weights in the analog arrays and on-chip SRAM) has its SRAM (``sram_mb``) plus the arrays'
    weights at their effective bits, read at the SRAM's bandwidth (bytes per cycle per compute
    unit, analog.toml, at the nominal clock)."""
    on_chip = designs.hbm_stacks <= 0
    sram_tb_s = (
        designs.compute_units
        * tech.analog["sram_bytes_per_cycle_per_unit"]
        * designs.clock_ghz
        * GIGA
        / TERA
    )
    arrays_gb = analog.weight_capacity * analog.effective_bits / BITS_PER_BYTE / GIGA
    sram_gb = designs.sram_mb * MEGA / GIGA
    return (
        np.where(on_chip, sram_tb_s, hbm_tb_s),
        np.where(on_chip, sram_gb + arrays_gb, hbm_gb),
    )


def peak_flop_s(designs: Designs) -> dict[str, FloatArray]:
    """§1.1 Peak dense FLOP/s per format = units × FLOPs per cycle per unit × clock."""
    return {
        fmt: designs.compute_units * designs.flops_per_cycle(fmt) * designs.clock_ghz * GIGA
        for fmt in FORMATS
    }


def hbm(designs: Designs, tech: TechArrays) -> tuple[FloatArray, FloatArray]:
    """§1.2 HBM bandwidth (TB/s) and capacity (GB) from generation, stacks and pin rate."""
    pins = tech.memory["pins_per_stack"][designs.hbm_generation]
    bandwidth_tb_s = designs.hbm_stacks * pins * designs.hbm_pin_rate_gbps / BITS_PER_BYTE / 1e3
    capacity_gb = designs.hbm_stacks * designs.hbm_stack_capacity_gb
    return bandwidth_tb_s, capacity_gb


def area_weighted_flops_per_cycle(designs: Designs, tech: TechArrays) -> FloatArray:
    """§1.3 FLOPs per cycle per unit that set the tensor datapath's area: the 16-bit rate plus
    the fp8 and fp4 rates at their (smaller) area weights."""
    area = tech.silicon["area"]
    sixteen_bit = np.maximum(
        designs.bf16_flops_per_cycle_per_unit, designs.fp16_flops_per_cycle_per_unit
    )
    return (
        sixteen_bit
        + area["fp8_area_weight"] * designs.fp8_flops_per_cycle_per_unit
        + area["fp4_area_weight"] * designs.fp4_flops_per_cycle_per_unit
    )


def die_area(designs: Designs, tech: TechArrays) -> tuple[FloatArray, FloatArray]:
    """§1.3 Area of one compute unit and of one die (mm²) at the design's node.

    die = units per die × unit area + SRAM + HBM PHYs + uncore logic + I/O, where logic scales
    with the node's density and PHYs/SerDes do not. The uncore is a fixed part (command
    processors, NoC, misc logic) plus the link controllers, which follow the die's off-package
    link bandwidth like the SerDes they drive: a die without links pays for neither.
    """
    area = tech.silicon["area"]
    scale = tech.node["logic_scale_vs_n7"][designs.node]
    tensor_flops = area_weighted_flops_per_cycle(designs, tech)
    unit_mm2 = (
        area["unit_base_mm2_at_n7"] + area["tensor_mm2_per_flop_per_cycle_at_n7"] * tensor_flops
    ) / scale
    dies = designs.dies_per_package
    units_per_die = (designs.compute_units + designs.spare_units) / dies
    sram_density = (
        area["sram_mb_per_mm2_at_n7"]
        * _BITCELL_N7_UM2
        / tech.node["sram_bitcell_um2"][designs.node]
    )
    sram_mm2 = designs.sram_mb / dies / sram_density
    phy_mm2 = designs.hbm_stacks / dies * tech.memory["phy_area_mm2"][designs.hbm_generation]
    links_gb_s = serdes_gb_s(designs) / dies
    uncore_mm2 = (
        area["uncore_mm2_at_n7"] + area["link_controller_mm2_per_gb_s_at_n7"] * links_gb_s
    ) / scale
    io_mm2 = area["io_base_mm2"] + area["serdes_mm2_per_gb_s"] * links_gb_s
    die_mm2 = units_per_die * unit_mm2 + sram_mm2 + phy_mm2 + uncore_mm2 + io_mm2
    return unit_mm2, die_mm2 + analog_tiles(designs, tech).area_mm2 / dies


def serdes_gb_s(designs: Designs) -> FloatArray:
    """§1.3/§1.7 Off-package link bandwidth a package drives, both directions (GB/s): the
    scale-up figure is already bidirectional, the scale-out one is per direction."""
    return designs.scale_up_bandwidth_gb_s + 2.0 * designs.scale_out_bandwidth_gb_s


def dies_per_wafer(die_area_mm2: FloatArray, tech: TechArrays) -> FloatArray:
    """§1.4 Gross dies per wafer with scribe lanes and edge loss (Chiplet Actuary form).

    DPW = π (d'/2)² / A' − π d' / √(2 A'), with A' = (√A + s)² and d' = d − 2e.
    """
    wafer = tech.silicon["wafer"]
    usable = wafer["diameter_mm"] - 2.0 * wafer["edge_loss_mm"]
    effective = (np.sqrt(die_area_mm2) + wafer["scribe_mm"]) ** 2
    count = np.pi * (usable / 2.0) ** 2 / effective - np.pi * usable / np.sqrt(2.0 * effective)
    return np.maximum(np.floor(count), 0.0)


def negative_binomial_yield(
    area_mm2: FloatArray, defects_per_cm2: FloatArray, alpha: float
) -> FloatArray:
    """§1.5 Stapper's negative-binomial yield (1 + A·D0/α)^−α of a region of ``area_mm2``."""
    return (1.0 + area_mm2 / MM2_PER_CM2 * defects_per_cm2 / alpha) ** (-alpha)


def die_yield(
    designs: Designs, unit_mm2: FloatArray, die_mm2: FloatArray, tech: TechArrays
) -> FloatArray:
    """§1.5 Yield of a die whose spare compute units are harvested.

    Y = Y0 × Y_NB(non-redundant area) × P(defective units ≤ spares), the last a binomial over
    the die's units with each unit's own negative-binomial yield.
    """
    alpha = tech.silicon["yield"]["clustering_alpha"]
    d0 = tech.node["defect_density_per_cm2"][designs.node]
    dies = designs.dies_per_package
    units = (designs.compute_units + designs.spare_units) / dies
    spares = np.floor(designs.spare_units / dies)
    fixed_mm2 = np.maximum(die_mm2 - units * unit_mm2, 0.0)
    unit_good = negative_binomial_yield(unit_mm2, d0, alpha)
    # P(binomial(units, 1 − y_unit) ≤ spares), as the regularized incomplete beta function.
    units = np.maximum(np.round(units), spares + 1.0)
    harvest = betainc(units - spares, spares + 1.0, unit_good)
    return (
        tech.silicon["yield"]["systematic_yield"]
        * negative_binomial_yield(fixed_mm2, d0, alpha)
        * harvest
    )


def evaluate_silicon(
    designs: Designs, technology: Technology | TechArrays | None = None
) -> Silicon:
    """Run the whole silicon model (§1.1–§1.8) on ``designs``; ``technology`` may be tables
    already laid out per design (dse/uncertainty/perturb.py)."""
    if isinstance(technology, TechArrays):
        tech = technology
    else:
        tech = _tech_arrays(technology or load_technology())
    peaks = peak_flop_s(designs)
    bandwidth_tb_s, capacity_gb = hbm(designs, tech)
    unit_mm2, die_mm2 = die_area(designs, tech)
    analog = analog_tiles(designs, tech)
    memory_tb_s, memory_gb = training_memory(designs, tech, analog, bandwidth_tb_s, capacity_gb)
    silicon_mm2 = die_mm2 * designs.dies_per_package
    cost = _package_cost(designs, tech, unit_mm2, die_mm2, capacity_gb)
    power = _full_load_power(designs, tech, peaks, bandwidth_tb_s, silicon_mm2, analog)
    density = designs.tdp_w / silicon_mm2
    limits = tech.silicon["power"]
    constraints = {
        "g_die_area": die_mm2 / tech.silicon["wafer"]["reticle_limit_mm2"] - 1.0,
        "g_power_density": density / limits["max_power_density_w_per_mm2"] - 1.0,
        "g_tdp_headroom": (power.static_power_w + power.hbm_power_full_w) / designs.tdp_w - 1.0,
    }
    return Silicon(
        clock_ghz=designs.clock_ghz,
        peak_flop_s=peaks,
        hbm_bandwidth_tb_s=bandwidth_tb_s,
        hbm_capacity_gb=capacity_gb,
        memory_bandwidth_tb_s=memory_tb_s,
        memory_capacity_gb=memory_gb,
        unit_area_mm2=unit_mm2,
        die_area_mm2=die_mm2,
        silicon_area_mm2=silicon_mm2,
        **cost._asdict(),
        **power._asdict(),
        power_density_w_per_mm2=density,
        constraints=constraints,
        dvfs_exponent=limits["dvfs_exponent"],
        analog=analog,
    )


class _PackageCost(NamedTuple):
    """§1.6 the parts of a package's cost, each ``(n,)``, named as in :class:`Silicon`."""

    dies_per_wafer: FloatArray
    die_yield: FloatArray
    die_cost_usd: FloatArray
    hbm_cost_usd: FloatArray
    interposer_cost_usd: FloatArray
    unit_cost_usd: FloatArray


def _package_cost(
    designs: Designs,
    tech: TechArrays,
    unit_mm2: FloatArray,
    die_mm2: FloatArray,
    capacity_gb: FloatArray,
) -> _PackageCost:
    """§1.6 cost: die, HBM, interposer, bonding losses, test and assembly."""
    dies = designs.dies_per_package
    dpw = dies_per_wafer(die_mm2, tech)
    yield_ = die_yield(designs, unit_mm2, die_mm2, tech)
    wafer_usd = tech.node["wafer_price_usd"][designs.node]
    die_usd = wafer_usd / np.maximum(dpw * yield_, 1e-9)
    hbm_usd = capacity_gb * tech.memory["cost_usd_per_gb"][designs.hbm_generation]
    package = tech.silicon["package"]
    interposer_mm2 = package["interposer_area_factor"] * (
        die_mm2 * dies + designs.hbm_stacks * package["hbm_footprint_mm2"]
    )
    # A single die without HBM (weights on chip, §1.2) needs no 2.5D interposer.
    interposer_mm2 = np.where((designs.hbm_stacks > 0) | (dies > 1), interposer_mm2, 0.0)
    interposer_usd = interposer_mm2 * package["interposer_usd_per_mm2"]
    bonded = (dies * die_usd + hbm_usd + interposer_usd) / package["bond_yield_per_component"] ** (
        dies + designs.hbm_stacks
    )
    unit_usd = bonded * (1.0 + package["test_assembly_fraction"])
    return _PackageCost(dpw, yield_, die_usd, hbm_usd, interposer_usd, unit_usd)


class _FullLoadPower(NamedTuple):
    """§1.7 power at full tensor load, ``(n,)`` each; the per-format ones keyed by format;
    named as in :class:`Silicon`."""

    static_power_w: FloatArray
    hbm_power_full_w: FloatArray
    hbm_energy_pj_per_bit: FloatArray
    energy_pj_per_flop: dict[str, FloatArray]
    compute_power_peak_w: dict[str, FloatArray]
    full_load_power_w: dict[str, FloatArray]
    sustained_clock_ghz: dict[str, FloatArray]


def _full_load_power(
    designs: Designs,
    tech: TechArrays,
    peaks: dict[str, FloatArray],
    bandwidth_tb_s: FloatArray,
    silicon_mm2: FloatArray,
    analog: Analog,
) -> _FullLoadPower:
    """§1.7 power at full tensor load and the clock the TDP sustains, per format."""
    power = tech.silicon["power"]
    hbm_pj_per_bit = tech.memory["energy_pj_per_bit"][designs.hbm_generation]
    hbm_full_w = (
        bandwidth_tb_s
        * TERA
        * BITS_PER_BYTE
        * hbm_pj_per_bit
        * PICO
        * power["full_load_hbm_utilization"]
    )
    serdes_w = (serdes_gb_s(designs)) * GIGA * BITS_PER_BYTE * power["serdes_pj_per_bit"] * PICO
    static_w = silicon_mm2 * tech.node["leakage_w_per_mm2"][designs.node] + serdes_w
    energy: dict[str, FloatArray] = {}
    compute_w: dict[str, FloatArray] = {}
    full_w: dict[str, FloatArray] = {}
    clocks: dict[str, FloatArray] = {}
    # The analog tiles run at their fixed rate: their full-load power comes off the headroom.
    headroom_w = designs.tdp_w - static_w - hbm_full_w - analog.full_load_power_w
    for fmt in FORMATS:
        energy[fmt] = (
            tech.node[f"energy_{_ENERGY_KEY[fmt]}_pj_per_flop"][designs.node]
            * designs.energy_per_flop_scale
        )
        compute_w[fmt] = peaks[fmt] * energy[fmt] * PICO
        full_w[fmt] = static_w + hbm_full_w + compute_w[fmt] + analog.full_load_power_w
        ratio = np.clip(headroom_w / np.maximum(compute_w[fmt], 1e-12), 0.0, None) ** (
            1.0 / power["dvfs_exponent"]
        )
        # A format the chip lacks draws no tensor power, so it throttles nothing.
        ratio = np.where(compute_w[fmt] > 0, np.minimum(ratio, 1.0), 1.0)
        clocks[fmt] = designs.clock_ghz * ratio
    return _FullLoadPower(static_w, hbm_full_w, hbm_pj_per_bit, energy, compute_w, full_w, clocks)


def tdp_energy_scale(chip: Chip, technology: Technology | None = None) -> float:
    """The energy-per-FLOP scale of a catalog chip from its TDP (docs/model.md §1.7), over the
    node's energy per FLOP: κ (its family's ``peak_clock_power_ratio``) times the scale at
    which its datasheet dense peak draws exactly its TDP.

    The node tables give one energy per FLOP per process node; the architectures differ
    (systolic arrays move fewer operands than SIMT cores, Blackwell's tensor cores less than
    Hopper's), and the vendor's TDP says by how much: the scale at which none of the chip's
    formats exceeds the TDP at its peak rate. Where the datasheet peak is quoted at a clock the
    chip does not hold at its TDP (κ > 1, NVIDIA's, measured on an H200), the tensor units draw
    κ times that at the datasheet clock, so the most power-hungry format sustains κ^(−1/x) of
    it (x the DVFS exponent) and the others as their power allows. Designs derived from the
    chip keep the scale.
    """
    technology = technology or load_technology()
    designs = underived_rows(chip, 1, technology)
    at_tdp = float(energy_scale_at_tdp(designs, evaluate_silicon(designs, technology))[0])
    return at_tdp * peak_clock_power_ratio(chip, technology)


def peak_clock_power_ratio(chip: Chip, technology: Technology) -> float:
    """§1.7 κ of ``chip``'s family (chips/technology/families.toml): its tensor units' power at
    the datasheet clock over the power its TDP leaves them."""
    return float(technology.family(chip.family).peak_clock_power_ratio)


def chip_energy_scale(chip: Chip, technology: Technology | None = None) -> float:
    """§1.7 A catalog chip's energy-per-FLOP scale: its twin's at its clock where it names one
    (:func:`same_silicon_energy_scale`), else the one from its TDP (:func:`tdp_energy_scale`)."""
    if chip.same_silicon_as:
        return same_silicon_energy_scale(chip, technology)
    return tdp_energy_scale(chip, technology)


def same_silicon_energy_scale(chip: Chip, technology: Technology | None = None) -> float:
    """§1.7 The energy-per-FLOP scale of a chip whose tensor units are those of another (its
    ``same_silicon_as``: the same die at another TDP, or the same SM design on the same node):
    the other's scale (:func:`chip_energy_scale`, which may itself come from a twin) at this
    chip's clock. Power goes as clock^x (``dvfs_exponent``) and FLOPs as the clock, so the
    energy per FLOP goes as clock^(x−1):

        e = e_twin · (f / f_twin)^(x − 1)

    Where the chip's datasheet clock is more than its TDP sustains at that energy, the chip
    throttles under full tensor load (:func:`_full_load_power`), as the lower-power parts of one
    die do."""
    from dse.catalog.chips import load_chip

    technology = technology or load_technology()
    twin = load_chip(chip.same_silicon_as)
    exponent = float(technology.silicon["power"]["dvfs_exponent"])
    factor = float(twin_energy_factor(chip, twin, exponent, technology))
    return chip_energy_scale(twin, technology) * factor


def twin_energy_factor(
    chip: Chip, twin: Chip, exponent: float | FloatArray, technology: Technology
) -> float | FloatArray:
    """§1.7 ``chip``'s energy-per-FLOP scale over its ``twin``'s (the same silicon) at their
    datasheet clocks: ``(f / f_twin)^(x − 1)`` with ``x`` the DVFS exponent, times the twin's
    node's 16-bit energy per FLOP over the chip's (1 on the same node: the scale is relative to
    the node, the twin's energy per FLOP is absolute)."""
    nodes = technology.nodes
    node = nodes[twin.node].energy_bf16_pj_per_flop / nodes[chip.node].energy_bf16_pj_per_flop
    return (chip.clock_ghz / twin.clock_ghz) ** (np.asarray(exponent) - 1.0) * node


def underived_rows(chip: Chip, n: int, technology: Technology) -> Designs:
    """``n`` copies of ``chip`` as designs (one chip each) with its derived parameters at 1.0,
    as :func:`energy_scale_at_tdp` needs them."""
    from dse.parameters import chip_values

    row = chip_values(chip, technology, with_markup=False, derived=False)
    return Designs.from_columns({k: np.full(n, v) for k, v in {**row, "num_chips": 1.0}.items()})


def energy_scale_at_tdp(designs: Designs, silicon: Silicon) -> FloatArray:
    """§1.7 Per design, the largest scale of its energy per FLOP at which no format it has draws
    more than its TDP at peak (1 where it has none), shape ``(n,)``; ``silicon`` is evaluated
    at scale 1."""
    headroom_w = (
        designs.tdp_w
        - silicon.static_power_w
        - silicon.hbm_power_full_w
        - silicon.analog.full_load_power_w
    )
    scales = np.full(len(designs), np.inf)
    for watts in silicon.compute_power_peak_w.values():
        scales = np.minimum(
            scales, np.where(watts > 0, headroom_w / np.maximum(watts, 1e-300), np.inf)
        )
    return np.where(np.isfinite(scales), scales, 1.0)
