"""Derived figures of catalog entries, as plain records for the command line and programs."""

from __future__ import annotations

from typing import Any

from dse.catalog.chips import FORMATS, Chip
from dse.catalog.workloads import Workload, flops_per_token, training_flops
from dse.designs import from_chips
from dse.model.economics import unit_price
from dse.model.silicon import evaluate_silicon
from dse.parameters import PARAMETERS
from dse.settings import load_settings
from dse.units import PICO, TERA


def chip_summary(chip: Chip) -> dict[str, Any]:
    """One chip's parameters, the silicon model's derived figures and the published ones.

    ``die_area_mm2`` is the published total silicon per package (None when unpublished);
    ``die_area_model_mm2`` is the model's estimate of the same quantity.
    """
    designs = from_chips([chip])
    s = evaluate_silicon(designs)
    formats = [fmt for fmt in FORMATS if chip.flops_per_cycle(fmt) > 0]
    published = chip.published
    summary: dict[str, Any] = {
        "id": chip.id,
        "name": chip.name,
        "vendor": chip.vendor,
        "year": chip.year,
    }
    if chip.same_silicon_as:  # its energy per FLOP is that part's (docs/model.md §1.7)
        summary["same_silicon_as"] = chip.same_silicon_as
    # Every declared chip parameter, as the chip file gives it and as the model's column.
    for p in PARAMETERS:
        if p.chip_carries and p.shown:
            if p.file_key != p.name and p.group is None:
                summary[p.file_key] = chip.file_value(p.file_key)
            summary[p.name] = p.chip_value(chip)
    summary.update(
        {
            "peak_tflop_s": {fmt: float(s.peak_flop_s[fmt][0]) / TERA for fmt in formats},
            "sustained_tflop_s": {fmt: float(s.sustained_flop_s(fmt)[0]) / TERA for fmt in formats},
            "hbm_bandwidth_tb_s": float(s.hbm_bandwidth_tb_s[0]),
            "hbm_capacity_gb": float(s.hbm_capacity_gb[0]),
            "full_load_power_w": float(s.full_load_power_w[formats[0]][0]),
            "die_area_mm2": published.get("die_area_mm2"),
            "die_area_model_mm2": float(s.silicon_area_mm2[0]),
            "die_area_per_die_model_mm2": float(s.die_area_mm2[0]),
            "dies_per_wafer": float(s.dies_per_wafer[0]),
            "die_yield": float(s.die_yield[0]),
            "die_cost_usd": float(s.die_cost_usd[0]),
            "hbm_cost_usd": float(s.hbm_cost_usd[0]),
            "interposer_cost_usd": float(s.interposer_cost_usd[0]),
            "unit_cost_usd": float(s.unit_cost_usd[0]),
            "unit_price_usd": float(unit_price(designs, s, load_settings())[0]),
            "published_price_usd": published.get("unit_price_usd"),
            "power_density_w_per_mm2": float(s.power_density_w_per_mm2[0]),
            "within_silicon_limits": bool(all(g[0] <= 0 for g in s.constraints.values())),
            "constraints": {name: float(g[0]) for name, g in s.constraints.items()},
        }
    )
    if s.hbm_capacity_gb[0] <= 0:  # no HBM: weights on chip (docs/model.md §1.2)
        summary["memory_capacity_gb"] = float(s.memory_capacity_gb[0])
        summary["memory_bandwidth_tb_s"] = float(s.memory_bandwidth_tb_s[0])
    a = s.analog
    if a.present[0]:  # the analog tiles (§1.9): 2 operations per MAC
        summary["analog_peak_tops"] = float(a.peak_flop_s[0]) / TERA
        summary["analog_tops_per_w"] = 1.0 / (float(a.energy_pj_per_flop[0]) * PICO) / TERA
        summary["analog_area_mm2"] = float(a.area_mm2[0])
        summary["analog_weight_capacity"] = float(a.weight_capacity[0])
    summary["published"] = dict(published)
    summary["source"] = chip.source
    return summary


def workload_summary(workload: Workload) -> dict[str, Any]:
    """One workload's shape, parameter counts and training FLOPs (docs/model.md §2.1–§2.2)."""
    matmul, attention = flops_per_token(workload)
    flops = training_flops(workload)
    return {
        "id": workload.id,
        "name": workload.name,
        "total_params": workload.total_params,
        "active_params": workload.active_params,
        "moe_k": workload.moe_k,
        "tokens": workload.tokens,
        "tokens_per_param": workload.tokens / workload.total_params,
        "seq_len": workload.seq_len,
        "global_batch_tokens": workload.global_batch_tokens,
        # "default": the file gives none (GPT-3's batch for the size, docs/catalog.md)
        "global_batch_source": "default" if workload.global_batch_default else "file",
        "precision": workload.precision,
        "training_flops": flops,
        "flops_per_token": matmul + attention,
        "attention_flops_fraction": attention / (matmul + attention),
        "six_p_t_ratio": flops / (6.0 * workload.active_params * workload.tokens),
        "shape": {
            "layers": workload.layers,
            "d_model": workload.d_model,
            "heads": workload.heads,
            "kv_heads": workload.kv_heads,
            "head_dim": workload.head_dim,
            "q_lora_rank": workload.q_lora_rank,
            "kv_lora_rank": workload.kv_lora_rank,
            "qk_rope_head_dim": workload.qk_rope_head_dim,
            "ffn_dim": workload.ffn_dim,
            "ffn_kind": workload.ffn_kind,
            "parallel_blocks": workload.parallel_blocks,
            "parallel_shared_norm": workload.parallel_shared_norm,
            "sliding_window": workload.sliding_window,
            "window_layers": workload.window_layers,
            "vocab_size": workload.vocab_size,
            "experts": workload.experts,
            "experts_per_token": workload.experts_per_token,
            "attention_layers": workload.attention_count,
            "mamba_layers": workload.mamba_layers,
            **_mamba_shape(workload),
            **({"moe_latent_dim": workload.moe_latent_dim} if workload.moe_latent_dim else {}),
        },
        "source": workload.source,
    }


def _mamba_shape(workload: Workload) -> dict[str, int]:
    """A hybrid's Mamba-2 shape (docs/model.md §2.11); nothing for a model without Mamba blocks."""
    if not workload.mamba_layers:
        return {}
    return {
        "mamba_heads": workload.mamba_heads,
        "mamba_head_dim": workload.mamba_head_dim,
        "mamba_state_dim": workload.mamba_state_dim,
        "mamba_groups": workload.mamba_groups,
        "mamba_chunk": workload.mamba_chunk,
    }
