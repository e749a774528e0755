"""Technology tables: process nodes, HBM generations and node-independent silicon constants.

Read from ``chips/technology/*.toml`` (docs/model.md §1). Every value in those files carries a
source; the records here hold the values and keep the sources beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dse.catalog._paths import data_dir
from dse.catalog._schema import Field, Table, check
from dse.errors import InputError
from dse.files import read_toml

_POSITIVE = Field(positive=True)
_FRACTION = Field(positive=True, maximum=1.0)

NODE_SCHEMA = Table(
    {
        "name": Field("str"),
        "year_hvm": Field("int", minimum=1990),
        "wafer_price_usd": _POSITIVE,
        "defect_density_per_cm2": _POSITIVE,
        "logic_scale_vs_n7": _POSITIVE,
        "sram_bitcell_um2": _POSITIVE,
        "energy_bf16_pj_per_flop": _POSITIVE,
        "energy_fp8_pj_per_flop": _POSITIVE,
        "energy_fp4_pj_per_flop": _POSITIVE,
        "leakage_w_per_mm2": Field(minimum=0.0),
    },
    sourced=True,
)

MEMORY_SCHEMA = Table(
    {
        "name": Field("str"),
        "year": Field("int", minimum=1990),
        "pins_per_stack": Field("int", positive=True),
        "pin_rate_gbps": _POSITIVE,
        "stack_capacity_gb": _POSITIVE,
        "energy_pj_per_bit": _POSITIVE,
        "cost_usd_per_gb": _POSITIVE,
        "phy_area_mm2": _POSITIVE,
    },
    sourced=True,
)

ANALOG_SCHEMA = Table(
    {
        "name": Field("str"),
        "reference_node": Field("str"),
        "rows": Field("int", minimum=0),
        "cols": Field("int", minimum=0),
        "devices_per_weight": Field("int", minimum=0),
        "effective_bits": Field(minimum=1.0, maximum=32.0),
        "mvm_latency_ns": _POSITIVE,
        "mac_energy_fj": Field(minimum=0.0),
        "tile_area_mm2": Field(minimum=0.0),
        "row_write_us": Field(minimum=0.0),
        "write_energy_pj": Field(minimum=0.0),
        "endurance_cycles": _POSITIVE,
    },
    sourced=True,
)
MIN_TRAINING_BITS_SCHEMA = Table({"value": Field(minimum=1.0, maximum=32.0)}, sourced=True)
SRAM_BANDWIDTH_SCHEMA = Table({"value": Field(minimum=1.0, maximum=1e6)}, sourced=True)
ANALOG_FILE_SCHEMA = Table(
    {
        "min_training_bits": MIN_TRAINING_BITS_SCHEMA,
        "sram_bytes_per_cycle_per_unit": SRAM_BANDWIDTH_SCHEMA,
    },
    open_keys=False,
)

FAMILY_SCHEMA = Table(
    {
        "gemm_efficiency_scale": Field(minimum=0.3, maximum=1.1),
        "peak_clock_power_ratio": Field(required=False, minimum=1.0, maximum=6.0),
        "flash2_attention_ratio": Field(required=False, minimum=0.2, maximum=1.0),
        "attention_efficiency_scale": Field(required=False, minimum=0.3, maximum=1.5),
        "fp8_attention_efficiency_scale": Field(required=False, minimum=0.2, maximum=1.5),
        "hbm_efficiency_scale": Field(required=False, minimum=0.3, maximum=1.5),
        "collective_efficiency_scale": Field(required=False, minimum=0.2, maximum=1.4),
        "collective_latency_scale": Field(required=False, minimum=0.5, maximum=5.0),
        "memory_reserve_fraction": Field(required=False, minimum=0.0, maximum=0.9),
    },
    sourced=True,
)

SILICON_SCHEMA = Table(
    {
        "wafer": Table(
            {
                "diameter_mm": _POSITIVE,
                "edge_loss_mm": Field(minimum=0.0),
                "scribe_mm": Field(minimum=0.0),
                "reticle_limit_mm2": _POSITIVE,
            },
            sourced=True,
        ),
        "yield": Table(
            {"clustering_alpha": _POSITIVE, "systematic_yield": _FRACTION}, sourced=True
        ),
        "area": Table(
            {
                "unit_base_mm2_at_n7": Field(minimum=0.0),
                "tensor_mm2_per_flop_per_cycle_at_n7": _POSITIVE,
                "fp8_area_weight": Field(minimum=0.0),
                "fp4_area_weight": Field(minimum=0.0),
                "sram_mb_per_mm2_at_n7": _POSITIVE,
                "uncore_mm2_at_n7": Field(minimum=0.0),
                "link_controller_mm2_per_gb_s_at_n7": Field(minimum=0.0),
                "io_base_mm2": Field(minimum=0.0),
                "serdes_mm2_per_gb_s": Field(minimum=0.0),
            },
            sourced=True,
        ),
        "package": Table(
            {
                "hbm_footprint_mm2": _POSITIVE,
                "interposer_area_factor": Field(minimum=1.0),
                "interposer_usd_per_mm2": Field(minimum=0.0),
                "bond_yield_per_component": _FRACTION,
                "test_assembly_fraction": Field(minimum=0.0),
            },
            sourced=True,
        ),
        "power": Table(
            {
                "dvfs_exponent": Field(minimum=1.0, maximum=4.0),
                "serdes_pj_per_bit": Field(minimum=0.0),
                "full_load_hbm_utilization": Field(minimum=0.0, maximum=1.0),
                "max_power_density_w_per_mm2": _POSITIVE,
            },
            sourced=True,
        ),
    }
)


@dataclass(frozen=True)
class Node:
    """One process node; fields as in ``chips/technology/nodes.toml``."""

    id: str
    name: str
    year_hvm: int
    wafer_price_usd: float
    defect_density_per_cm2: float
    logic_scale_vs_n7: float
    sram_bitcell_um2: float
    energy_bf16_pj_per_flop: float
    energy_fp8_pj_per_flop: float
    energy_fp4_pj_per_flop: float
    leakage_w_per_mm2: float
    sources: MappingProxyType[str, str]


@dataclass(frozen=True)
class Memory:
    """One HBM generation; fields as in ``chips/technology/memory.toml``."""

    id: str
    name: str
    year: int
    pins_per_stack: int
    pin_rate_gbps: float
    stack_capacity_gb: float
    energy_pj_per_bit: float
    cost_usd_per_gb: float
    phy_area_mm2: float
    sources: MappingProxyType[str, str]

    @property
    def stack_bandwidth_gb_s(self) -> float:
        """Bandwidth of one stack at the generation's pin rate, GB/s."""
        return self.pins_per_stack * self.pin_rate_gbps / 8.0


@dataclass(frozen=True)
class AnalogCell:
    """One analog in-memory compute cell technology and its tile; fields as in
    ``chips/technology/analog.toml`` (docs/model.md §1.9)."""

    id: str
    name: str
    reference_node: str
    rows: int
    cols: int
    devices_per_weight: int
    effective_bits: float
    mvm_latency_ns: float
    mac_energy_fj: float
    tile_area_mm2: float
    row_write_us: float
    write_energy_pj: float
    endurance_cycles: float
    sources: MappingProxyType[str, str]


@dataclass(frozen=True)
class Family:
    """One architecture family; fields as in ``chips/technology/families.toml``."""

    id: str
    gemm_efficiency_scale: float
    sources: MappingProxyType[str, str]
    flash2_attention_ratio: float = 1.0
    """The FlashAttention-2 kernel's attention efficiency over the measured kernel's on this
    family (docs/model.md §2.6): below 1 where a faster kernel exists (Hopper's FlashAttention-3
    and cuDNN attention), 1 where FlashAttention-2 is the state of the art."""
    attention_efficiency_scale: float = math.nan
    """The family's fused-attention efficiency over the reference (Hopper's measured
    ``attention_efficiency``), where its own attention kernels are measured (docs/model.md §2.6):
    NaN where none is, so attention follows the family's ``gemm_efficiency_scale``."""
    fp8_attention_efficiency_scale: float = math.nan
    """The family's FP8 fused-attention efficiency over its 16-bit one (docs/model.md §2.6), at
    the chip's fp8 rate, where an FP8 attention kernel is measured; NaN where none is, so an
    ``attention_precision = "fp8"`` workload's attention runs at the 16-bit rate."""
    hbm_efficiency_scale: float = 1.0
    """The share of the HBM bandwidth this family's memory-bound kernels reach, over Hopper's
    (``hbm_efficiency``, docs/model.md §2.6): below 1 where the same kernels, timed on both,
    reach less of the datasheet bandwidth on this family; 1 where none is published."""
    collective_efficiency_scale: float = 1.0
    """The share of link bandwidth this family's collective library reaches, over NCCL's
    ``collective_efficiency`` (docs/model.md §2.7): below 1 where the vendor's own collective
    benchmarks fall short of NCCL's fraction of its links, 1 where none is published."""
    collective_latency_scale: float = 1.0
    """This family's collective library's fixed latencies over NCCL's cost model's (docs/model.md
    §2.7): above 1 where the vendor's own size sweeps, fitted from 64 KiB up, show a larger fixed
    cost than NCCL's latencies on the same chips, 1 where none is read."""
    memory_reserve_fraction: float = math.nan
    """Share of the HBM (its binary capacity) that this family's runtime keeps from programs,
    where it is published (XLA:TPU's allocation limit, docs/model.md §2.4); NaN where none is:
    the settings' ``memory_reserve_fraction`` (an eager allocator's workspace and
    fragmentation) applies."""
    peak_clock_power_ratio: float = 1.0
    """κ: the tensor units' power at the datasheet clock over the power the TDP leaves them, on
    this family's chips under sustained GEMMs (docs/model.md §1.7): above 1 where the datasheet
    peak is quoted at a clock the chip does not hold at its TDP (NVIDIA's, measured on an H200),
    1 where the datasheet peak is taken as sustained."""


@dataclass(frozen=True, eq=False)
class Technology:
    """All technology tables: nodes, memories and families by id (in file order), silicon
    constants."""

    nodes: MappingProxyType[str, Node]
    memories: MappingProxyType[str, Memory]
    silicon: MappingProxyType[str, Any]
    families: MappingProxyType[str, Family]
    analog_cells: MappingProxyType[str, AnalogCell]
    min_training_bits: float
    """Fewest effective bits of an analog matmul that training tolerates (analog.toml)."""
    sram_bytes_per_cycle_per_unit: float = 128.0
    """On-chip SRAM bandwidth per compute unit and clock cycle (bytes) of a chip without HBM
    (analog.toml; docs/model.md §1.2)."""

    def family(self, family_id: str) -> Family:
        """A family by id; an id not in the table gets its vendor's values (the entry named by
        the id's part before the first ``-``: ``amd`` for ``amd-cdna5``), else the ``unknown``
        family's (docs/model.md §2.3)."""
        vendor = family_id.split("-", 1)[0]
        return self.families.get(family_id) or self.families.get(vendor) or self.families["unknown"]

    def calibrated(self, family_id: str) -> bool:
        """Whether ``family_id`` has an entry of its own, its efficiency scale fitted on its own
        published runs ([C]); a family that takes its vendor's or the ``unknown`` entry does
        not, and its predictions get the wider intervals of a family left out (docs/model.md
        §4)."""
        return family_id in self.families and "-" in family_id

    def node_ids(self) -> list[str]:
        return list(self.nodes)

    def memory_ids(self) -> list[str]:
        return list(self.memories)


def _entries(path: Path, schema: Table) -> dict[str, dict[str, Any]]:
    data = read_toml(path)
    return check(data, Table({}, open_keys=True, entry=schema), path)


@cache
def load_technology(folder: Path | None = None) -> Technology:
    """Load and validate the technology tables (cached: they are read once per process)."""
    folder = folder or data_dir("chips") / "technology"
    nodes = {
        key: Node(id=key, **{**values, "sources": MappingProxyType(values["sources"])})
        for key, values in _entries(folder / "nodes.toml", NODE_SCHEMA).items()
    }
    memories = {
        key: Memory(id=key, **{**values, "sources": MappingProxyType(values["sources"])})
        for key, values in _entries(folder / "memory.toml", MEMORY_SCHEMA).items()
    }
    silicon = check(read_toml(folder / "silicon.toml"), SILICON_SCHEMA, folder / "silicon.toml")
    families = {
        key: Family(
            id=key,
            **{k: v for k, v in values.items() if v is not None and k != "sources"},
            sources=MappingProxyType(values["sources"]),
        )
        for key, values in _entries(folder / "families.toml", FAMILY_SCHEMA).items()
    }
    analog_path = folder / "analog.toml"
    analog_data = dict(read_toml(analog_path))
    top = check(
        {key: analog_data.pop(key, None) or {} for key in ANALOG_FILE_SCHEMA.fields},
        ANALOG_FILE_SCHEMA,
        analog_path,
    )
    bits = top["min_training_bits"]["value"]
    sram_bytes = top["sram_bytes_per_cycle_per_unit"]["value"]
    analog_cells = {
        key: AnalogCell(id=key, **{**values, "sources": MappingProxyType(values["sources"])})
        for key, values in check(
            analog_data, Table({}, open_keys=True, entry=ANALOG_SCHEMA), analog_path
        ).items()
    }
    for key, cell in analog_cells.items():
        if cell.reference_node not in nodes:
            raise InputError(
                analog_path, f"{key}.reference_node", f"one of {list(nodes)}", cell.reference_node
            )
    return Technology(
        MappingProxyType(nodes),
        MappingProxyType(memories),
        MappingProxyType(silicon),
        MappingProxyType(families),
        MappingProxyType(analog_cells),
        float(bits),
        float(sram_bytes),
    )
