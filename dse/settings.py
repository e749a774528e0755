"""Model defaults (efficiencies, memory, cluster, economics) from ``dse/defaults.toml``.

One flat, frozen record; each field is also a command-line option of ``dse evaluate``. The
file's sources stay beside the values in ``Settings.sources``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from dse.catalog._schema import Field, Table, check
from dse.errors import InputError
from dse.files import read_toml

_FRACTION = Field(minimum=0.0, maximum=1.0)
_EFFICIENCY = Field(minimum=0.01, maximum=1.0)  # below 1 %, times would be absurd, not useful
_BYTES_PER_PARAM = Field(minimum=0.0, maximum=64.0)

SETTINGS_SCHEMA = Table(
    {
        "efficiency": Table(
            {
                "gemm_efficiency_max": _EFFICIENCY,
                "gemm_kernel_latency_us": Field(minimum=0.0, maximum=1e6),
                "attention_efficiency": _EFFICIENCY,
                "attention_overhead_tokens": Field(minimum=0.0, maximum=1e7),
                "elementwise_bytes_per_activation_byte": Field(minimum=0.0, maximum=1000.0),
                "compiled_elementwise_fraction": _FRACTION,
                "elementwise_kernel_latency_us": Field(minimum=0.0, maximum=1e6),
                "hbm_efficiency": _EFFICIENCY,
                "collective_efficiency": _EFFICIENCY,
                "collective_latency_us": Field(minimum=0.0, maximum=1e6),
                "scale_up_hop_latency_us": Field(minimum=0.0, maximum=1e6),
                "scale_out_hop_latency_us": Field(minimum=0.0, maximum=1e6),
                "tree_level_latency_us": Field(minimum=0.0, maximum=1e6),
                "dp_overlap": _FRACTION,
                "tp_overlap": _FRACTION,
                "moe_comm_overlap": _FRACTION,
                "overlap_slowdown": _FRACTION,
                "moe_kernel_overhead_us": Field(minimum=0.0, maximum=1e4),
                "step_overhead_ms": Field(minimum=0.0, maximum=1e5),
                "goodput": _EFFICIENCY,
                "memory_reserve_fraction": Field(minimum=0.0, maximum=0.9),
                "active_idle_power_fraction": _FRACTION,
            },
            sourced=True,
        ),
        "memory": Table(
            {
                "weight_bytes_per_param": Field(minimum=0.1, maximum=64.0),
                "grad_bytes_per_param": _BYTES_PER_PARAM,
                "optimizer_bytes_per_param": _BYTES_PER_PARAM,
                "distributed_optimizer": Field("bool"),
                "sharded_weight_copy": Field("bool"),
                "offload_expert_inputs": Field("bool"),
                "grad_reduce_bytes_per_param": Field(minimum=0.1, maximum=64.0),
                "logits_bytes_per_element": Field(minimum=0.0, maximum=16.0),
            },
            sourced=True,
        ),
        "cluster": Table(
            {
                "host_power_w_per_chip": Field(minimum=0.0, maximum=100_000.0),
                "pue": Field(minimum=1.0, maximum=10.0),
            },
            sourced=True,
        ),
        "economics": Table(
            {
                "electricity_usd_per_kwh": Field(minimum=0.0, maximum=100.0),
                "service_life_years": Field(minimum=0.1, maximum=100.0),
                "system_overhead_fraction": Field(minimum=0.0, maximum=100.0),
                "price_to_cost_markup": Field(minimum=0.01, maximum=1000.0),
            },
            sourced=True,
        ),
    }
)

DEFAULTS_PATH = Path(__file__).with_name("defaults.toml")


@dataclass(frozen=True)
class Settings:
    """Every default of the training and economics models; see ``dse/defaults.toml``."""

    gemm_efficiency_max: float
    gemm_kernel_latency_us: float
    attention_efficiency: float
    attention_overhead_tokens: float
    elementwise_bytes_per_activation_byte: float
    compiled_elementwise_fraction: float
    elementwise_kernel_latency_us: float
    hbm_efficiency: float
    collective_efficiency: float
    collective_latency_us: float
    scale_up_hop_latency_us: float
    scale_out_hop_latency_us: float
    tree_level_latency_us: float
    dp_overlap: float
    tp_overlap: float
    moe_comm_overlap: float
    overlap_slowdown: float
    moe_kernel_overhead_us: float
    step_overhead_ms: float
    goodput: float
    memory_reserve_fraction: float
    active_idle_power_fraction: float
    weight_bytes_per_param: float
    grad_bytes_per_param: float
    optimizer_bytes_per_param: float
    distributed_optimizer: bool
    sharded_weight_copy: bool
    offload_expert_inputs: bool
    grad_reduce_bytes_per_param: float
    logits_bytes_per_element: float
    host_power_w_per_chip: float
    pue: float
    electricity_usd_per_kwh: float
    service_life_years: float
    system_overhead_fraction: float
    price_to_cost_markup: float
    sources: MappingProxyType[str, str]

    @classmethod
    def names(cls) -> list[str]:
        """The settable fields (all but ``sources``)."""
        return [f.name for f in fields(cls) if f.name != "sources"]

    def with_overrides(self, source: str = "command line", **overrides: Any) -> Settings:
        """A copy with the given fields replaced, checked against the same rules as the file."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        for key, value in changes.items():
            spec = _field_spec(key)
            if spec is None:
                raise InputError(source, key, f"one of {self.names()}", key)
            flat = {key: value}
            check(flat, Table({key: spec}), source, "")
        return replace(self, **changes)

    @property
    def per_design(self) -> bool:
        """Whether some setting is given per design (an array of shape ``(n,)``)."""
        return any(
            isinstance(value, np.ndarray) and value.ndim
            for value in (getattr(self, name) for name in self.names())
        )

    def at_rows(self, rows: slice, *, column: bool = False) -> Settings:
        """These settings for the designs ``rows`` of a batch. Settings given per design
        (arrays of shape ``(n,)``, as ``dse sensitivity`` and ``dse robust`` draw them) are cut
        to the rows, as a column ``(rows, 1)`` for the (designs × plans) grid when ``column``;
        plain values pass unchanged."""
        changes: dict[str, Any] = {}
        for name in self.names():
            value = getattr(self, name)
            if isinstance(value, np.ndarray) and value.ndim:
                changes[name] = value[rows][:, None] if column else value[rows]
        return replace(self, **changes) if changes else self


def _field_spec(name: str) -> Field | None:
    for section in SETTINGS_SCHEMA.fields.values():
        assert isinstance(section, Table)
        spec = section.fields.get(name)
        if isinstance(spec, Field):
            return spec
    return None


@cache
def load_settings(path: Path = DEFAULTS_PATH) -> Settings:
    """Read and validate the defaults file (cached)."""
    values = check(read_toml(path), SETTINGS_SCHEMA, path)
    flat: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for section in values.values():
        sources.update(section.pop("sources"))
        flat.update(section)
    return Settings(**flat, sources=MappingProxyType(sources))


SETTING_HELP: dict[str, tuple[str, str]] = {
    "gemm_efficiency_max": ("fraction of the sustained tensor rate compute-bound GEMMs reach", "1"),
    "gemm_kernel_latency_us": ("fixed time of one GEMM kernel (launch, fill, drain)", "µs"),
    "attention_efficiency": (
        "FlashAttention forward+backward tensor FLOPs over the sustained rate, long sequences",
        "1",
    ),
    "attention_overhead_tokens": (
        "sequence length s0 at which causal attention runs at half its long-sequence rate",
        "tokens",
    ),
    "elementwise_bytes_per_activation_byte": (
        "HBM bytes moved by memory-bound operators per stored activation byte",
        "bytes/byte",
    ),
    "compiled_elementwise_fraction": (
        "share of the eager memory-bound HBM traffic a graph compiler's fused kernels move",
        "1",
    ),
    "elementwise_kernel_latency_us": (
        "fixed time of one memory-bound kernel (launch, fill, drain)",
        "µs",
    ),
    "hbm_efficiency": ("achieved over peak HBM bandwidth", "1"),
    "collective_efficiency": ("collective bus bandwidth over link bandwidth", "1"),
    "collective_latency_us": ("fixed latency of one ring collective (launch, setup)", "µs"),
    "scale_up_hop_latency_us": ("latency of one ring step on the scale-up links", "µs"),
    "scale_out_hop_latency_us": ("latency of one ring step across the scale-out network", "µs"),
    "tree_level_latency_us": ("latency of one level of an all-reduce tree, either tier", "µs"),
    "dp_overlap": ("fraction of the data-parallel gradient reduction hidden by compute", "1"),
    "tp_overlap": ("fraction of tensor-parallel communication hidden by compute", "1"),
    "moe_comm_overlap": ("fraction of the MoE dispatch and combine all-to-all hidden", "1"),
    "overlap_slowdown": (
        "compute time lost per second of communication hidden behind it (shared SMs and HBM)",
        "1",
    ),
    "moe_kernel_overhead_us": (
        "exposed host time of each kernel of a MoE layer (the dispatcher syncs the host)",
        "µs",
    ),
    "step_overhead_ms": (
        "fixed time of each optimizer step beyond its micro-batches (optimizer, clipping, sync)",
        "ms",
    ),
    "goodput": ("productive fraction of wall time (failures, restarts, checkpoints)", "1"),
    "memory_reserve_fraction": (
        "HBM kept free for workspace and fragmentation (chips whose family states no reserve)",
        "1",
    ),
    "active_idle_power_fraction": (
        "power of a busy chip between tensor operations, over full-load power",
        "1",
    ),
    "weight_bytes_per_param": ("weights in HBM", "bytes/param"),
    "grad_bytes_per_param": ("gradients in HBM", "bytes/param"),
    "optimizer_bytes_per_param": (
        "optimizer state (Adam: master weights + moments)",
        "bytes/param",
    ),
    "distributed_optimizer": ("shard the optimizer state over data-parallel ranks", "on/off"),
    "sharded_weight_copy": (
        "ZeRO-3 keeps a 16-bit weight shard beside the fp32 master (off: cast as gathered)",
        "on/off",
    ),
    "offload_expert_inputs": (
        "keep the routed experts' inputs in host memory (Megatron-Core's expert_fc1 offloading)",
        "on/off",
    ),
    "grad_reduce_bytes_per_param": (
        "gradient bytes sent in the data-parallel reduction",
        "bytes/param",
    ),
    "logits_bytes_per_element": (
        "bytes held per logit from the forward pass to the backward",
        "bytes",
    ),
    "host_power_w_per_chip": ("host CPUs, memory, NICs, fans, switches per accelerator", "W"),
    "pue": ("power usage effectiveness: facility power over IT power", "ratio >= 1"),
    "electricity_usd_per_kwh": ("electricity price", "USD/kWh"),
    "service_life_years": ("hardware depreciation period (cost amortized over the run)", "years"),
    "system_overhead_fraction": ("servers, network, storage as a fraction of chip price", "1"),
    "price_to_cost_markup": ("chip price over manufacturing cost when none is published", "ratio"),
}
"""Each setting's meaning and unit, for help texts (``1`` is a fraction or dimensionless). A
setting missing here is described by its source note in ``dse/defaults.toml``."""


def setting_help(name: str) -> tuple[str, str]:
    """A setting's meaning and unit: from :data:`SETTING_HELP`, else the first clause of its
    source note and the unit its name states."""
    if name in SETTING_HELP:
        return SETTING_HELP[name]
    from dse.units import unit_of

    note = setting_source(name).split("]", 1)[-1].strip()
    meaning = note.split(";")[0].split(":")[0].split(" (")[0].strip() or name.replace("_", " ")
    return meaning, unit_of(name)


def setting_sections() -> dict[str, list[str]]:
    """The settings by section of ``dse/defaults.toml`` (efficiency, memory, cluster,
    economics), in file order."""
    return {
        section: list(table.fields)
        for section, table in SETTINGS_SCHEMA.fields.items()
        if isinstance(table, Table)
    }


def setting_source(name: str) -> str:
    """The source note of a setting from ``dse/defaults.toml`` (with its [P]/[E]/[M]/[C] tag)."""
    return str(load_settings().sources.get(name, ""))


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file, flat (``pue = 1.2``) or in the sections of
    ``dse/defaults.toml`` (``[cluster] pue = 1.2``); ``sources`` tables are ignored. Unknown
    keys are errors naming the file and key; values are checked like the defaults'."""
    values = read_toml(Path(path))
    flat: dict[str, Any] = {}
    sections = setting_sections()
    for key, value in values.items():
        if isinstance(value, dict):
            if key not in sections:
                raise InputError(path, key, f"a setting or a section of {list(sections)}", key)
            for name, inner in value.items():
                if name == "sources":
                    continue
                if name not in sections[key]:
                    raise InputError(path, f"{key}.{name}", f"a setting of [{key}]", name)
                flat[name] = inner
        else:
            flat[key] = value
    load_settings().with_overrides(str(path), **flat)  # checks names and values
    return flat
