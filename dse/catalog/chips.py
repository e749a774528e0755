"""The chip catalog: one TOML file per accelerator under ``chips/`` (schema in docs/catalog.md).

A :class:`Chip` holds the architecture parameters the model uses, the published datasheet
figures it is checked against, and the sources. Of the published figures only the unit price
enters the model (as the chip's price, docs/model.md §3.2); the rest are for checking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from dse.catalog._paths import catalog_ids, resolve
from dse.catalog._schema import Field, Table, check
from dse.catalog.technology import load_technology
from dse.errors import InputError
from dse.files import read_toml

FORMATS: tuple[str, ...] = ("bf16", "fp16", "fp8", "fp4")
"""Number formats the model knows, widest first. ``fp16`` stands in for 16-bit training on chips
without bf16 (V100)."""

BOUNDS: dict[str, tuple[float, float]] = {
    "dies_per_package": (1, 64),
    "compute_units": (1, 1_000_000),  # Cerebras WSE-3: 900,000 cores
    "spare_units": (0, 1_000_000),
    "clock_ghz": (0.1, 10.0),
    "sram_mb": (0.01, 100_000.0),  # WSE-3: 44 GB
    "tdp_w": (1.0, 100_000.0),  # WSE-3: 23 kW
    "flops_per_cycle_per_unit": (1.0, 1_000_000.0),
    "hbm_stacks": (1, 16),
    "hbm_pin_rate_gbps": (0.1, 100.0),
    "hbm_stack_capacity_gb": (0.1, 1024.0),
    "scale_up_bandwidth_gb_s": (0.1, 1_000_000.0),
    "scale_up_domain": (1, 1_000_000),
    "scale_out_bandwidth_gb_s": (0.01, 1_000_000.0),
    "num_chips": (1, 10_000_000),
    "unit_price_usd": (1.0, 1e9),
    # Design parameters that chip files do not give (from the chip's family and vendor):
    "gemm_efficiency_scale": (0.5, 1.2),  # families.toml; the fit searches 0.6-1.2
    "energy_per_flop_scale": (0.05, 5.0),  # over the node's; catalog chips' span 0.4-2
    "price_markup": (0.1, 100.0),  # price over modeled unit cost
}
"""Physical range (inclusive) of each architecture and cluster parameter, in its unit: what
a chip file, a space's ``[fixed]`` values and its dimensions may hold. Far beyond any chip
built, well short of values that make the model's arithmetic overflow."""

_PUBLISHED_MAX = {
    "die_area_mm2": 100_000.0,
    "transistors_b": 100_000.0,
    "peak_tflop_s": 1e7,
    "hbm_bandwidth_tb_s": 1000.0,
    "hbm_capacity_gb": 100_000.0,
    "tdp_w": 100_000.0,
    "unit_price_usd": 1e9,
}


def _bounded(name: str, kind: str = "number", required: bool = True) -> Field:
    low, high = BOUNDS[name]
    return Field(kind, required=required, minimum=low, maximum=high)


def _published(name: str, kind: str = "number") -> Field:
    choices = FORMATS if kind == "numbers" else None
    return Field(kind, required=False, positive=True, maximum=_PUBLISHED_MAX[name], choices=choices)


CHIP_SCHEMA = Table(
    {
        "name": Field("str"),
        "vendor": Field("str"),
        "family": Field("str", required=False, default="unknown"),
        "year": Field("int", minimum=1990, maximum=2100),
        "source": Field("str"),
        "notes": Field("str", required=False, default=""),
        "architecture": Table(
            {
                "node": Field("str"),
                "dies_per_package": _bounded("dies_per_package", "int"),
                "compute_units": _bounded("compute_units", "int"),
                "compute_units_physical": _bounded("compute_units", "int", required=False),
                "clock_ghz": _bounded("clock_ghz"),
                "sram_mb": _bounded("sram_mb"),
                "tdp_w": _bounded("tdp_w"),
                "flops_per_cycle_per_unit": Field(
                    "numbers",
                    minimum=BOUNDS["flops_per_cycle_per_unit"][0],
                    maximum=BOUNDS["flops_per_cycle_per_unit"][1],
                    choices=FORMATS,
                ),
            }
        ),
        "memory": Table(
            {
                "hbm_generation": Field("str"),
                "hbm_stacks": _bounded("hbm_stacks", "int"),
                "hbm_pin_rate_gbps": _bounded("hbm_pin_rate_gbps", required=False),
                "hbm_stack_capacity_gb": _bounded("hbm_stack_capacity_gb", required=False),
            }
        ),
        "interconnect": Table(
            {
                "scale_up_bandwidth_gb_s": _bounded("scale_up_bandwidth_gb_s"),
                "scale_up_domain": _bounded("scale_up_domain", "int"),
                "scale_out_bandwidth_gb_s": _bounded("scale_out_bandwidth_gb_s"),
            }
        ),
        "published": Table(
            {
                "die_area_mm2": _published("die_area_mm2"),
                "transistors_b": _published("transistors_b"),
                "peak_tflop_s": _published("peak_tflop_s", "numbers"),
                "hbm_bandwidth_tb_s": _published("hbm_bandwidth_tb_s"),
                "hbm_capacity_gb": _published("hbm_capacity_gb"),
                "tdp_w": _published("tdp_w"),
                "unit_price_usd": _published("unit_price_usd"),
                "price_note": Field("str", required=False, default=""),
            },
            required=False,
        ),
    }
)


@dataclass(frozen=True)
class Chip:
    """One accelerator package: architecture parameters plus published figures.

    All per-package quantities (compute units, SRAM, HBM stacks) count the whole package; the
    silicon model divides by ``dies_per_package`` where it needs per-die figures.
    """

    id: str
    path: Path
    name: str
    vendor: str
    family: str
    year: int
    source: str
    notes: str
    node: str
    dies_per_package: int
    compute_units: int
    compute_units_physical: int
    clock_ghz: float
    sram_mb: float
    tdp_w: float
    flops_per_cycle_per_unit: MappingProxyType[str, float]
    hbm_generation: str
    hbm_stacks: int
    hbm_pin_rate_gbps: float
    hbm_stack_capacity_gb: float
    scale_up_bandwidth_gb_s: float
    scale_up_domain: int
    scale_out_bandwidth_gb_s: float
    published: MappingProxyType[str, object]

    def flops_per_cycle(self, fmt: str) -> float:
        """Dense FLOPs per cycle per unit in ``fmt``; 0 when the chip lacks the format."""
        return float(self.flops_per_cycle_per_unit.get(fmt, 0.0))


def chip_ids() -> list[str]:
    """Ids of the shipped chips."""
    return catalog_ids("chips")


def load_chip(name: str | Path) -> Chip:
    """Load a chip by catalog id or TOML path, validated against the schema and the technology."""
    path = resolve("chips", name)
    values = check(read_toml(path), CHIP_SCHEMA, path)
    arch, memory, links = values["architecture"], values["memory"], values["interconnect"]
    technology = load_technology()
    if arch["node"] not in technology.nodes:
        raise InputError(path, "architecture.node", f"one of {technology.node_ids()}", arch["node"])
    generation = technology.memories.get(memory["hbm_generation"])
    if generation is None:
        raise InputError(
            path,
            "memory.hbm_generation",
            f"one of {technology.memory_ids()}",
            memory["hbm_generation"],
        )
    physical = arch["compute_units_physical"] or arch["compute_units"]
    if physical < arch["compute_units"]:
        raise InputError(
            path,
            "architecture.compute_units_physical",
            f"at least compute_units ({arch['compute_units']})",
            physical,
        )
    rates = arch["flops_per_cycle_per_unit"]
    wider = 0.0
    for fmt in FORMATS:  # widest first: a narrower format is never slower than a wider one
        if fmt in rates:
            if rates[fmt] < wider:
                raise InputError(
                    path,
                    f"architecture.flops_per_cycle_per_unit.{fmt}",
                    f"at least the wider formats' rate ({wider:g})",
                    rates[fmt],
                )
            wider = max(wider, rates[fmt])
    for key in ("compute_units", "sram_mb"):
        if arch[key] < arch["dies_per_package"]:
            raise InputError(path, f"architecture.{key}", "at least one per die", arch[key])
    return Chip(
        id=path.stem,
        path=path,
        name=values["name"],
        vendor=values["vendor"],
        family=values["family"],
        year=values["year"],
        source=values["source"],
        notes=values["notes"],
        node=arch["node"],
        dies_per_package=arch["dies_per_package"],
        compute_units=arch["compute_units"],
        compute_units_physical=physical,
        clock_ghz=float(arch["clock_ghz"]),
        sram_mb=float(arch["sram_mb"]),
        tdp_w=float(arch["tdp_w"]),
        flops_per_cycle_per_unit=MappingProxyType(
            {fmt: float(v) for fmt, v in arch["flops_per_cycle_per_unit"].items()}
        ),
        hbm_generation=memory["hbm_generation"],
        hbm_stacks=memory["hbm_stacks"],
        hbm_pin_rate_gbps=float(memory["hbm_pin_rate_gbps"] or generation.pin_rate_gbps),
        hbm_stack_capacity_gb=float(
            memory["hbm_stack_capacity_gb"] or generation.stack_capacity_gb
        ),
        scale_up_bandwidth_gb_s=float(links["scale_up_bandwidth_gb_s"]),
        scale_up_domain=links["scale_up_domain"],
        scale_out_bandwidth_gb_s=float(links["scale_out_bandwidth_gb_s"]),
        published=MappingProxyType(
            {k: v for k, v in values["published"].items() if v not in (None, "")}
        ),
    )
