"""Analog in-memory compute tiles (docs/model.md §1.9, §2.9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dse.catalog.chips import load_chip
from dse.catalog.technology import load_technology
from dse.catalog.workloads import load_workload
from dse.designs import Designs, from_chips
from dse.model.evaluate import evaluate
from dse.model.silicon import evaluate_silicon
from dse.parameters import choices


def _designs(cells: list[str], tiles: list[int], node: str = "n4", chips: int = 1024) -> Designs:
    base = from_chips([load_chip("h100-sxm")] * len(cells), chips)
    codes = [choices("analog_cell").index(c) for c in cells]
    return base.replace(
        analog_cell=np.array(codes),
        analog_tiles=np.array(tiles, dtype=float),
        node=np.full(len(cells), choices("node").index(node)),
    )


def test_every_cell_has_sources_and_a_digital_entry_first() -> None:
    cells = load_technology().analog_cells
    assert next(iter(cells)) == "none" and cells["none"].rows == 0
    for cell in cells.values():
        for key in ("rows", "mvm_latency_ns", "mac_energy_fj", "endurance_cycles"):
            assert cell.sources[key].startswith("["), (cell.id, key)


def test_ibm_hermes_reproduced_from_its_paper() -> None:
    """IBM HERMES, 64 PCM cores of 256 x 256 in 14 nm (Le Gallo et al., Nat. Electron. 6, 680
    (2023)): 63.1 TOPS at 9.76 TOPS/W for 8-bit MVMs (one-phase read). The tile's figures come
    from the HERMES core paper (Khaddam-Aljameh et al., JSSC 2022: 10.5 TOPS/W, 1.59 TOPS/mm2);
    the chip-level efficiency is an independent check. Within 10 %."""
    s = evaluate_silicon(_designs(["pcm"], [64], node="n16"))
    tops = s.analog.peak_flop_s[0] / 1e12
    tops_per_w = 1.0 / (s.analog.energy_pj_per_flop[0] * 1e-12) / 1e12
    assert tops == pytest.approx(63.1, rel=0.10)
    assert tops_per_w == pytest.approx(9.76, rel=0.10)
    # 64 cores at the core paper's 1.59 TOPS/mm2 (0.986 TOPS each): 39.7 mm2 of AIMC cores.
    assert s.analog.area_mm2[0] == pytest.approx(64 * 0.986 / 1.59, rel=0.10)
    assert s.analog.weight_capacity[0] == 64 * 256 * 256


def test_tiles_add_area_capacity_and_peak() -> None:
    s = evaluate_silicon(_designs(["none", "pcm", "pcm", "none"], [0, 1000, 2000, 5000]))
    assert s.analog.area_mm2[0] == 0 and s.analog.area_mm2[3] == 0  # "none" has no tiles
    assert s.analog.area_mm2[2] == pytest.approx(2 * s.analog.area_mm2[1])
    assert s.die_area_mm2[1] == pytest.approx(s.die_area_mm2[0] + s.analog.area_mm2[1])
    assert s.analog.weight_capacity[2] == 2000 * 65536
    assert s.unit_cost_usd[2] > s.unit_cost_usd[1] > s.unit_cost_usd[0]


def test_digital_designs_are_unchanged_by_the_analog_parameters() -> None:
    w = load_workload("llama3.1-8b")
    plain = evaluate(_designs(["none"], [0]), w)
    mixed = evaluate(_designs(["none", "pcm"], [0, 4000]), w)
    for name, values in plain.columns.items():
        assert mixed.columns[name][0] == values[0], name
    assert mixed.constraints["g_endurance"][0] == -1.0
    assert mixed.constraints["g_precision"][0] == -1.0


def test_analog_design_runs_matmuls_in_the_arrays() -> None:
    w = load_workload("llama3.1-70b")
    m = evaluate(_designs(["none", "pcm", "rram", "sram-cim"], [0, 2000, 2000, 20000]), w)
    energy = m.columns["energy_mwh"]
    # The forward and input-gradient matmuls at ~0.1 pJ/FLOP instead of the node's digital
    # energy: less energy per run.
    assert energy[1] < energy[0] and energy[2] < energy[0]
    assert m.columns["peak_tflop_s"][1] > m.columns["peak_tflop_s"][0]
    g = m.constraints["g_endurance"]
    # 70B over 32 chips per replica overflows the arrays: reprogrammed every step; RRAM's 1e6
    # cycles do not last the run, PCM's 1e8 do.
    assert g[2] > 0 > g[1]
    assert g[2] == pytest.approx((g[1] + 1.0) * 100 - 1.0)
    assert np.all(m.constraints["g_precision"][1:] == 0.0)


def test_training_algorithms_scale_the_matmul_flops(tmp_path: Path) -> None:
    """docs/model.md §2.10: FLOPs per token relative to backprop's 3 GEMMs per linear layer."""
    from dse.catalog.workloads import (
        ALGORITHMS,
        flops_per_token,
        training_algorithms,
        with_algorithm,
    )

    assert tuple(training_algorithms()) == ALGORITHMS
    w = load_workload("llama3.1-8b")
    assert w.training_algorithm == "backprop" and w.linear_gemms == 3.0
    base = flops_per_token(w)
    ff = with_algorithm(w, "forward_forward")
    eqprop = with_algorithm(w, "equilibrium_propagation")
    assert flops_per_token(ff)[0] == pytest.approx(base[0] * 4 / 3)
    assert flops_per_token(eqprop)[0] == pytest.approx(base[0] * 26 / 3)
    assert eqprop.analog_linear_gemms == 24 and eqprop.input_gradient_gemms == 0
    # A workload file names its algorithm under [training].
    original = Path(__file__).parents[1] / "workloads" / "llama3.1-8b.toml"
    body = original.read_text().replace("[training]", '[training]\nalgorithm = "forward_forward"')
    (tmp_path / "ff.toml").write_text(body)
    assert load_workload(tmp_path / "ff.toml").linear_gemms == 4.0


def test_backprop_free_training_on_analog_tiles() -> None:
    """Equilibrium propagation's relaxation passes run in the arrays: on an analog design the
    digital units keep only the two weight updates per linear layer."""
    from dse.catalog.workloads import with_algorithm

    w = with_algorithm(load_workload("llama3.1-8b"), "equilibrium_propagation")
    m = evaluate(_designs(["none", "pcm"], [0, 4000]), w)
    assert np.all(np.isfinite(m.columns["cost_usd"]))
    assert m.columns["energy_mwh"][1] < m.columns["energy_mwh"][0]


def test_aimc_space_has_feasible_analog_designs_and_endurance_binds() -> None:
    """spaces/aimc.toml (docs/framework.md §4): hybrids are feasible; RRAM's endurance
    excludes its designs with tiles."""
    import dse

    df = dse.sweep("aimc", "llama3.1-70b", method="random", samples=600, seed=1)
    analog = (df["analog_tiles"] > 0) & (df["analog_cell"].astype(str) != "none")
    assert (df["feasible"] & analog).any() and (df["feasible"] & ~analog).any()
    rram = analog & (df["analog_cell"].astype(str) == "rram")
    assert rram.any() and (df.loc[rram, "g_endurance"] > 0).all()
    assert (df.loc[~analog, "g_endurance"] == -1.0).all()


def test_analog_design_beside_h100() -> None:
    """``dse compare h100-sxm aimc-sram-cim-n2``: the hybrid trains Llama 3.1 70B faster and
    cheaper on the same cluster (docs/framework.md §4)."""
    from dse.compare import compare

    h100, hybrid = compare(["h100-sxm", "aimc-sram-cim-n2"], load_workload("llama3.1-70b"), 4096)
    assert hybrid["feasible"] and hybrid["peak_tflop_s"] > 5 * h100["peak_tflop_s"]
    assert hybrid["ratio_to_first"]["cost_usd"] < 0.7
    assert hybrid["ratio_to_first"]["energy_mwh"] < 0.5


def test_analog_step_matches_a_scalar_reference() -> None:
    """STYLE 5: the vectorized §2.9 composition against a plain per-design reading of
    docs/model.md §2.9, on random designs of spaces/aimc.toml."""
    from dse.catalog.workloads import flops_per_token
    from dse.model.plans import candidate_plans
    from dse.model.training import evaluate_training
    from dse.model.training.analog import digital_view, take
    from dse.settings import load_settings
    from dse.space import load_space

    space = load_space("aimc")
    designs = space.decode(space.random(0, 300, seed=3))
    silicon = evaluate_silicon(designs)
    keep = np.flatnonzero(silicon.analog.present)[:40]
    designs, silicon = designs.take(keep), take(silicon, keep)
    assert len(designs) == 40
    w, s = load_workload("llama3.1-70b"), load_settings()
    plans = candidate_plans(w, max_tp=int(np.max(designs.scale_up_domain)))
    digital = evaluate_training(designs, silicon, digital_view(w), plans, s)
    metrics = evaluate(designs, w, s, plans)
    matmul, _ = flops_per_token(w)
    tokens = w.global_batch_sequences * w.seq_len
    for i in range(len(designs)):
        a = silicon.analog
        k = int(digital.plan_index[i])
        tp, pp, ep = plans.tp[k], plans.pp[k], plans.ep[k]
        redo = 4.0 / 3.0 if plans.recompute[k] == 2 else 1.0
        flops = 2.0 / 3.0 * tokens * matmul * redo / digital.chips_used[i]
        resident = (w.total_params - w.expert_params) / (tp * pp) + w.expert_params / (pp * ep)
        capacity = a.weight_capacity[i]
        rate = a.peak_flop_s[i] * min(1.0, resident / capacity)
        analog_s = flops / rate / (1.0 - digital.bubble_fraction[i])
        writes = 1.0 if resident <= capacity else 2.0 * resident / capacity
        stream_s = (
            min(resident, capacity)
            * a.effective_bits[i]
            / 8.0
            / (silicon.hbm_bandwidth_tb_s[i] * 1e12 * s.hbm_efficiency)
        )
        write_s = writes * max(a.rows[i] * a.row_write_s[i], stream_s)
        step = digital.step_time_s[i] + analog_s + write_s
        assert metrics.columns["step_time_s"][i] == pytest.approx(step, rel=1e-9)
        endurance = digital.steps[i] * writes / a.endurance_cycles[i] - 1.0
        assert metrics.constraints["g_endurance"][i] == pytest.approx(endurance, rel=1e-9)
