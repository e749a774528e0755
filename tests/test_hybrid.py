"""Hybrid Mamba-2 models (docs/model.md §2.1-§2.7): Mamba-2 mixer blocks beside attention and
MLP or MoE blocks, as Nemotron-H and Nemotron 3 build them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dse.catalog.chips import load_chip
from dse.catalog.workloads import (
    load_workload,
    mamba_block_params,
    mixer_flops_per_token,
    shape_params,
    ssd_flops_per_token,
)
from dse.designs import from_chips
from dse.errors import InputError
from dse.model.evaluate import evaluate
from dse.model.plans import PER_OPERATOR_RECOMPUTE, RECOMPUTE, candidate_plans
from dse.settings import load_settings

WORKLOADS = Path(__file__).parents[1] / "workloads"


def _hybrid(**changes: object):
    """Nemotron-H 8B's blocks (24 MLP, 4 attention, 24 Mamba-2 of 128 heads of 64) on Llama
    3.1 8B's widths, its parameters counted from the shape."""
    shape = {"layers": 24, "attention_layers": 4, "mamba_layers": 24, "mamba_heads": 128}
    draft = load_workload("llama3.1-8b").with_changes(**{**shape, **changes})
    total, active = shape_params(draft)
    return draft.with_changes(total_params=total, active_params=active)


def _transformer(hybrid):
    """The same MLP blocks with an attention block each and no Mamba blocks."""
    draft = hybrid.with_changes(attention_layers=None, mamba_layers=0, mamba_heads=0)
    total, active = shape_params(draft)
    return draft.with_changes(total_params=total, active_params=active)


def test_a_hybrid_counts_the_parameters_of_each_kind_of_block() -> None:
    """§2.1 Embeddings, 4 attention blocks, 24 Mamba-2 blocks (in-projection to z, x, B, C and
    the heads' steps, a 4-tap convolution over x, B and C, out-projection) and 24 MLPs."""
    w = _hybrid()
    d, inner, bc, heads = 4096, 128 * 64, 2 * 8 * 128, 128
    mamba = d * (2 * inner + bc + heads) + 4 * (inner + bc) + inner * d
    assert mamba_block_params(w) == mamba
    attention = 2 * d * 32 * 128 + 2 * d * 8 * 128
    mlp = 3 * d * 14336
    embeddings = 2 * 128256 * d
    assert w.total_params == embeddings + 4 * attention + 24 * mamba + 24 * mlp


def test_the_mixers_flops_count_attention_blocks_and_ssd_scans() -> None:
    """§2.2 Attention's score FLOPs follow the attention blocks (4 of 24 layers' worth); each
    Mamba-2 block's scan counts ``3·(2·Q·N·G + H_m·(2·Q·P + 4·N·P))`` per token."""
    w = _hybrid()
    scores, scans = mixer_flops_per_token(w)
    full_scores, no_scans = mixer_flops_per_token(_transformer(w))
    assert scores == pytest.approx(full_scores * 4 / 24, rel=1e-12)
    assert no_scans == 0.0
    q, n, g, p, h = 128, 128, 8, 64, 128
    per_block = 3 * (2 * q * n * g + h * (2 * q * p + 4 * n * p))
    assert ssd_flops_per_token(w) == per_block
    assert scans == 24 * per_block


def _step_s(workload, chips: float = 64.0, **plan: object) -> float:
    designs = from_chips([load_chip("h100-sxm")], chips)
    pinned = candidate_plans(workload, **plan)
    return float(evaluate(designs, workload, load_settings(), pinned).columns["step_time_s"][0])


def test_mamba_blocks_grow_linearly_with_the_sequence_where_attention_grows_faster() -> None:
    """§2.6 From 4K to 64K tokens at the same tokens per step, a transformer's step grows with
    its attention's quadratic scores; a hybrid that keeps a sixth of the attention blocks and
    mixes the rest with linear-time Mamba scans grows far less (its longer micro-batches even
    pay fewer kernels' fixed times)."""
    plan = {"tp": 8, "pp": 1, "microbatch": 1, "recompute": "full", "zero_stage": 1, "cp": 1}
    growth = []
    for workload in (_transformer(_hybrid()), _hybrid()):
        steps = [
            _step_s(workload.with_changes(seq_len=s, global_batch_tokens=2**21), **plan)
            for s in (4096, 65536)
        ]
        growth.append(steps[1] / steps[0])
    assert growth[0] > 1.2 and growth[1] < growth[0] - 0.25


@pytest.mark.parametrize(
    "column", ["hbm_pin_rate_gbps", "scale_up_bandwidth_gb_s", "scale_out_bandwidth_gb_s"]
)
def test_more_bandwidth_never_slows_a_hybrid(column: str) -> None:
    workload = _hybrid(mamba_layers=24, experts=0)
    base = from_chips([load_chip("h100-sxm")] * 5, 256.0)
    factors = np.array([0.5, 0.75, 1.0, 1.5, 2.0])
    designs = base.replace(**{column: getattr(base, column) * factors, "tdp_w": 5000.0})
    days = evaluate(designs, workload).columns["training_days"]
    assert np.all(np.diff(days) <= 1e-9 * days[:-1]), (column, days)


def test_tensor_parallelism_splits_the_mamba_groups() -> None:
    """§2.3 Megatron-Core splits each Mamba block's heads and its groups of B and C over the
    tensor-parallel ranks: the search tries only the degrees that divide the 8 groups, and a
    pinned degree that does not is one line naming the rule."""
    w = _hybrid()
    assert set(np.unique(candidate_plans(w, max_tp=64).tp)) <= {1, 2, 4, 8}
    with pytest.raises(InputError, match=r"Mamba groups \(8\)"):
        candidate_plans(w, tp=16)


def test_context_parallelism_splits_the_mamba_heads() -> None:
    """§2.11 Under context parallelism Megatron-Core's Mamba blocks gather the sequence and
    split their heads over the cp ranks: the search keeps cp where the heads and groups per
    tensor-parallel rank split, and a pinned pair that does not is one line naming the rule."""
    w = _hybrid(seq_len=65536)  # 128 heads in 8 groups
    plans = candidate_plans(w, max_tp=8)
    tp, cp = plans.tp, plans.context_parallel
    assert (cp > 1).any()
    per_rank = 8 / tp
    assert np.all(((128 / tp) % cp == 0) & ((per_rank % cp == 0) | (cp % per_rank == 0)))
    with pytest.raises(InputError, match=r"Mamba heads per tensor-parallel rank \(16 at tp 8\)"):
        candidate_plans(w, tp=8, cp=32)


def test_mamba_all_to_alls_move_the_heads_inputs_and_outputs() -> None:
    """§2.11 The all-to-alls of a Mamba block under cp: z, x, B, C and dt there and y back,
    forward and backward, ``(cp − 1)/cp`` of each rank's buffer, inside the domain on its
    links and beyond it on the network; a group's B and C copied for each rank of its heads."""
    from dataclasses import replace

    from dse.model.training.collectives import mamba_context_parallel_time_s

    w = _hybrid()  # 128 heads of 64, 8 groups of state 128, a Mamba block per layer
    s = replace(
        load_settings(),
        collective_efficiency=1.0,
        collective_latency_us=0.0,
        scale_up_hop_latency_us=0.0,
        scale_out_hop_latency_us=0.0,
    )
    one = np.array([1.0])

    def seconds(tp: float, cp: float, domain: float) -> float:
        links = (one * domain, one * 1e9, one * 1e8)  # scale-up 10x the network
        t = mamba_context_parallel_time_s(w, 1000.0, one * tp, one * cp, 0.0, links, s)
        return float(t[0])

    inner, bc, heads = 128 * 64, 2 * 8 * 128, 128
    elements = 3 * inner + bc + heads  # z, x and y; B and C; dt
    buffer = 2 * 1000 * elements * 2.0  # forward and backward, 16-bit
    assert seconds(1, 4, 8) == pytest.approx(buffer * 3 / 4 / 1e9)  # all inside the domain
    assert seconds(1, 4, 2) == pytest.approx(buffer * 2 / 4 / 1e8)  # half of it beyond
    # tp 4 leaves 2 groups a rank; cp 8 copies each group's B and C for its 4 ranks
    split = (3 * inner + heads) / 4 + 4 * bc / 4
    assert seconds(4, 8, 64) == pytest.approx(2 * 1000 * split * 2.0 * 7 / 8 / 1e9)
    assert seconds(1, 1, 8) == 0.0


def test_per_operator_checkpoints_are_refused_for_hybrids() -> None:
    """§2.5 The per-operator policies name a transformer layer's projections, which a Mamba
    block does not have: the search leaves them out for a hybrid and a pinned one is refused."""
    w = _hybrid()
    searched = {RECOMPUTE[int(code)] for code in np.unique(candidate_plans(w).recompute)}
    assert searched and not searched & set(PER_OPERATOR_RECOMPUTE)
    with pytest.raises(InputError, match="hybrid Mamba models"):
        candidate_plans(w, recompute="op")


def test_mamba_blocks_hold_activations_and_full_recompute_drops_them() -> None:
    """§2.5 Each Mamba block keeps its projections' inputs, z/x/B/C/dt, the convolved x/B/C
    and the scan's output: more blocks hold more memory without recompute, and full
    recompute keeps only each layer's input."""
    plan = {"tp": 1, "pp": 1, "microbatch": 1, "zero_stage": 1, "cp": 1}
    designs = from_chips([load_chip("h100-sxm")], 64.0)

    def activations_gb(workload, recompute: str) -> float:
        pinned = candidate_plans(workload, recompute=recompute, **plan)
        result = evaluate(designs, workload, load_settings(), pinned)
        return float(result.training.memory_activations_gb[0])

    few, many = _hybrid(mamba_layers=12), _hybrid(mamba_layers=24)
    assert activations_gb(many, "none") > activations_gb(few, "none")
    assert activations_gb(many, "full") == pytest.approx(activations_gb(few, "full"), rel=1e-12)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("mamba_layers = 24", "model.mamba_heads"),
        ("mamba_heads = 64", "model.mamba_heads"),
        ("mamba_layers = 24\nmamba_heads = 60", "model.mamba_groups"),
        ("attention_layers = 0", "model.attention_layers"),
        ("attention_layers = 4\nparallel_blocks = true", "model.parallel_blocks"),
        ("attention_layers = 2\nsliding_window = 128\nwindow_layers = 4", "model.window_layers"),
    ],
)
def test_a_bad_hybrid_file_is_one_line(dse, tmp_path, extra: str, key: str) -> None:
    text = (WORKLOADS / "llama3.1-8b.toml").read_text()
    path = tmp_path / "w.toml"
    path.write_text(text.replace("[model]", f"[model]\n{extra}", 1))
    result = dse("evaluate", "--chip", "h100-sxm", "--workload", str(path), "--num-chips", "8")
    assert result.code != 0 and key in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1


def _latent(latent: int):
    """Qwen3-30B-A3B's MoE layers with the routed experts on a latent of ``latent`` (§2.12)."""
    draft = load_workload("qwen3-30b-a3b").with_changes(moe_latent_dim=latent, shared_experts=1)
    total, active = shape_params(draft)
    return draft.with_changes(total_params=total, active_params=active)


def test_a_latent_moe_counts_its_experts_on_the_latent_and_its_two_projections() -> None:
    """§2.12 Each routed expert reads and writes the latent (``m_w·d_l·f_e``), the shared expert
    the hidden state; each MoE layer adds the down and up projections ``2·d·d_l``."""
    w = _latent(512)
    d, f, layers = 2048, 768, 48
    routed, shared = 3 * 512 * f, 3 * d * f
    attention = 2 * d * 32 * 128 + 2 * d * 4 * 128
    base = 2 * 151936 * d + layers * (attention + d * 128 + 2 * d * 512 + shared)
    assert w.total_params == base + layers * 128 * routed
    assert w.active_params == base + layers * 8 * routed


def test_a_latent_moe_exchanges_its_latents() -> None:
    """§2.12 The dispatch and combine carry latent-wide tokens: at a pinned plan whose experts
    span two nodes, halving the latent halves the all-to-all's time."""
    plan = {"tp": 1, "pp": 1, "ep": 16, "microbatch": 1, "recompute": "none", "zero_stage": 1}
    designs = from_chips([load_chip("h100-sxm")], 64.0)
    times = []
    for latent in (1024, 512):
        w = _latent(latent)
        result = evaluate(designs, w, load_settings(), candidate_plans(w, **plan))
        times.append(float(result.training.moe_comm_time_s[0]))
    assert times[1] == pytest.approx(times[0] / 2.0, rel=0.05)


def test_a_latent_without_experts_is_one_line(dse, tmp_path) -> None:
    text = (WORKLOADS / "llama3.1-8b.toml").read_text()
    path = tmp_path / "w.toml"
    path.write_text(text.replace("[model]", "[model]\nmoe_latent_dim = 512", 1))
    result = dse("evaluate", "--chip", "h100-sxm", "--workload", str(path), "--num-chips", "8")
    assert result.code != 0 and "model.moe_latent_dim" in result.err
    assert len(result.err.strip().splitlines()) == 1


def _scan_grid(designs):
    """The rates :func:`~dse.model.training.compute.ssd_time_s` reads, for one design, and its
    sustained 16-bit rate (FLOP/s, shape ``(1,)``)."""
    from dse.model.silicon import evaluate_silicon
    from dse.model.training.grid import exp_per_sixteen_bit_flop, unit_cycles_per_sixteen_bit_flop

    rate = evaluate_silicon(designs).sustained_flop_s("bf16")
    grid = SimpleNamespace(
        attention_rate=rate,
        exp_rate=rate * exp_per_sixteen_bit_flop(designs),
        unit_cycle_rate=rate * unit_cycles_per_sixteen_bit_flop(designs),
    )
    return grid, rate


def test_the_ssd_scan_takes_the_published_triton_time() -> None:
    """§2.11 The scan's cycles per token and channel are NVIDIA's published B200 timing of
    mamba_ssm's Triton kernels at the clock the model has a B200 sustain, and the model times
    that shape back within 2 %, far slower than its FLOPs at the attention kernel's rate."""
    import pandas as pd

    from dse.model.silicon import evaluate_silicon
    from dse.model.training.compute import SSD_CYCLES_PER_TOKEN_CHANNEL, ssd_time_s

    data = pd.read_csv(Path(__file__).parents[1] / "data/measurements/published/ssd_mamba2.csv")
    row = data[
        (data["backend"] == "triton")
        & (data["pass"] == "forward_backward")
        & (data["gate"] == "none")
    ].iloc[0]
    chip = load_chip("b200")
    designs = from_chips([chip], 1)
    clock_hz = float(evaluate_silicon(designs).sustained_clock_ghz["bf16"][0]) * 1e9
    tokens = float(row["batch"] * row["seq_len"])
    channels = float(row["heads"] * row["head_dim"])
    cycles = float(row["time_ms"]) * 1e-3 * chip.compute_units * clock_hz / (tokens * channels)
    assert cycles == pytest.approx(SSD_CYCLES_PER_TOKEN_CHANNEL, rel=0.01)

    w = _hybrid(
        mamba_heads=int(row["heads"]),
        mamba_head_dim=int(row["head_dim"]),
        mamba_state_dim=int(row["state_dim"]),
        mamba_chunk=int(row["chunk_size"]),
        mamba_groups=int(row["groups"]),
    )
    grid, rate = _scan_grid(designs)
    flops = np.array(tokens * ssd_flops_per_token(w))
    modeled = float(ssd_time_s(flops, w, np.array(0.6), grid)[0])
    assert modeled == pytest.approx(float(row["time_ms"]) * 1e-3, rel=0.02)
    assert modeled > 20.0 * float(flops / (0.6 * rate[0]))


def test_more_compute_units_never_slow_a_hybrid() -> None:
    """§2.11 More SMs at the same clock run the scan's cycles, and everything else, faster."""
    workload = _hybrid(experts=0)
    base = from_chips([load_chip("h100-sxm")] * 4, 256.0)
    units = base.compute_units * np.array([0.5, 1.0, 1.5, 2.0])
    designs = base.replace(compute_units=units, tdp_w=5000.0)
    days = evaluate(designs, workload).columns["training_days"]
    assert np.all(np.diff(days) < 0.0), days


def test_a_chip_of_few_wide_units_runs_the_scan_at_its_rate_in_sm_units() -> None:
    """§2.11 A TPU's eight TensorCores are not eight SMs: its scan runs at its 16-bit rate counted
    in Blackwell SMs, within a factor of its rate's ratio to a B200's, not ~20x slower."""
    from dse.model.training.compute import ssd_time_s

    w = _hybrid()
    flops = np.array(8192.0 * ssd_flops_per_token(w))
    times, rates = [], []
    for chip in ("b200", "tpu-v7"):
        grid, rate = _scan_grid(from_chips([load_chip(chip)], 1))
        times.append(float(ssd_time_s(flops, w, np.array(0.6), grid)[0]))
        rates.append(float(rate[0]))
    assert times[1] / times[0] == pytest.approx(rates[0] / rates[1], rel=0.05)
