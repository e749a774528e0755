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
                "elementwise_bytes_per_activation_byte": Field(minimum=0.0, maximum=1000.0),
                "hbm_efficiency": _EFFICIENCY,
                "collective_efficiency": _EFFICIENCY,
                "dp_overlap": _FRACTION,
                "tp_overlap": _FRACTION,
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
                "grad_reduce_bytes_per_param": Field(minimum=0.1, maximum=64.0),
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
    elementwise_bytes_per_activation_byte: float
    hbm_efficiency: float
    collective_efficiency: float
    dp_overlap: float
    tp_overlap: float
    goodput: float
    memory_reserve_fraction: float
    active_idle_power_fraction: float
    weight_bytes_per_param: float
    grad_bytes_per_param: float
    optimizer_bytes_per_param: float
    distributed_optimizer: bool
    grad_reduce_bytes_per_param: float
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
