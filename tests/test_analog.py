"""Analog in-memory compute tiles (docs/model.md §1.9, §2.9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dse.catalog.chips import load_chip
from dse.catalog.technology import load_technology
from dse.catalog.workloads import load_workload
from dse.designs import Designs, from_chips
from dse.model.evaluate import evaluate, infeasibility_reasons
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
    """The catalog's analog reference chip, chips/ibm-hermes-pcm.toml: IBM HERMES, 64 PCM
    cores of 256 x 256 in 14 nm (Le Gallo et al., Nat. Electron. 6, 680 (2023)), 63.1 TOPS at
    9.76 TOPS/W for 8-bit MVMs (one-phase read). Its die micrograph (Fig. 1a) is marked 12 mm
    x 12 mm: 144 mm2; IBM's announcement gives 400 GOPS/mm2 at that peak, 63.1 / 0.400 = 158
    mm2 (the text of neither paper prints a whole-chip area).

    What is independent of what:

    * peak: NOT independent. The PCM tile's MVM latency in chips/technology/analog.toml was
      derived from this very 63.1 TOPS; the check only shows the chip file and the tile
      compose to it (64 tiles x 65,536 MACs / 133 ns x 2).
    * efficiency: independent. The tile's MAC energy comes from the HERMES *core* paper
      (Khaddam-Aljameh et al., JSSC 57, 1027 (2022): 10.5 TOPS/W); the chip paper's 9.76
      TOPS/W is a separate measurement on the 64-core chip. Within 10 % (7.6 %).
    * area: independent, within 10 %. The tiles' 39.7 mm2 come from the core paper's 1.59
      TOPS/mm2; the rest of the die is one digital unit (3.5 mm2 at N16), 1 MB of SRAM
      (6.9 mm2), the per-die uncore and host I/O (docs/model.md §1.3). The terms that follow
      what a die carries are near zero here: HBM PHYs and controllers scale with the stacks
      (0), SerDes and link controllers with the link bandwidth (0.3 GB/s). What remains is
      the fixed uncore (33.2 mm2 at N7, 84 mm2 at N16: command processors, NoC, misc) and
      15 mm2 of host I/O, both estimates for GPUs. The model gives 149 mm2, +3.6 % over the
      printed 144 mm2 and -5.5 % under the density-derived 158 mm2. Before the link
      controllers followed the links (a fixed 45 mm2 at N7 for every die), it gave 179 mm2
      (+24 %).
    """
    chip = load_chip("ibm-hermes-pcm")
    assert chip.hbm_stacks == 0 and chip.analog_cell == "pcm" and chip.analog_tiles == 64
    designs = from_chips([chip], 1)
    s = evaluate_silicon(designs)
    tops = s.analog.peak_flop_s[0] / 1e12
    tops_per_w = 1.0 / (s.analog.energy_pj_per_flop[0] * 1e-12) / 1e12
    assert tops == pytest.approx(63.1, rel=0.10)
    assert tops_per_w == pytest.approx(9.76, rel=0.10)
    assert chip.published["die_area_mm2"] == 12 * 12
    assert s.analog.area_mm2[0] == pytest.approx(64 * 0.986 / 1.59, rel=0.01)
    area_mm2 = s.die_area_mm2[0]
    assert area_mm2 == pytest.approx(144, rel=0.10), f"modeled {area_mm2:.1f} mm2 vs 144 mm2"
    assert area_mm2 == pytest.approx(63.1 / 0.400, rel=0.10), f"{area_mm2:.1f} vs 158 mm2"
    assert area_mm2 == pytest.approx(149.2, abs=0.1)  # the figure the docs and notes quote
    assert s.analog.weight_capacity[0] == 64 * 256 * 256
    # No HBM: memory is the SRAM plus the arrays' weights at 4 effective bits, read on chip.
    assert s.hbm_capacity_gb[0] == 0 and s.hbm_cost_usd[0] == 0 and s.interposer_cost_usd[0] == 0
    assert s.memory_capacity_gb[0] == pytest.approx(1e-3 + 64 * 65536 * 4 / 8 / 1e9)
    assert s.memory_bandwidth_tb_s[0] == pytest.approx(128 * 1e9 / 1e12)


def test_a_die_without_hbm_or_links_pays_for_neither() -> None:
    """docs/model.md §1.3: the HBM PHYs and controllers follow the stacks, the SerDes and the
    link controllers follow the off-package link bandwidth. The same die (HERMES, N16) with
    five HBM2 stacks and H100-class links (900 GB/s scale-up, 50 GB/s scale-out) is larger by
    exactly those blocks; without them it carries only the fixed uncore and host I/O."""
    technology = load_technology()
    area = technology.silicon["area"]
    chip = load_chip("ibm-hermes-pcm")
    bare = from_chips([chip, chip], 1)
    full = bare.replace(
        hbm_stacks=np.array([0.0, 5.0]),
        scale_up_bandwidth_gb_s=np.array([0.1, 900.0]),
        scale_out_bandwidth_gb_s=np.array([0.1, 50.0]),
    )
    s = evaluate_silicon(full)
    extra_mm2 = s.die_area_mm2[1] - s.die_area_mm2[0]
    links_gb_s = (900.0 - 0.1) + 2 * (50.0 - 0.1)
    phy_mm2 = 5 * technology.memories[chip.hbm_generation].phy_area_mm2
    serdes_mm2 = area["serdes_mm2_per_gb_s"] * links_gb_s
    controllers_mm2 = extra_mm2 - phy_mm2 - serdes_mm2
    scale = technology.nodes["n16"].logic_scale_vs_n7
    assert controllers_mm2 == pytest.approx(
        area["link_controller_mm2_per_gb_s_at_n7"] * links_gb_s / scale, rel=1e-6
    )
    # The link controllers are a sizeable block at N16 (H100's 18 NVLink4 controllers,
    # ~16 mm2 at N7), not a rounding term: the bare die's uncore is smaller by them.
    assert controllers_mm2 > 40.0
    assert s.die_area_mm2[0] < s.die_area_mm2[1] - phy_mm2 - serdes_mm2


def test_a_chip_without_hbm_is_infeasible_with_a_reason_not_nan() -> None:
    """hbm_stacks = 0 (weights on chip): every figure stays finite, and a workload that does
    not fit in the SRAM and arrays fails g_memory with a reason that says so."""
    import dse
    from dse.model.evaluate import infeasibility_reasons

    chip = load_chip("ibm-hermes-pcm")
    m = evaluate(from_chips([chip, load_chip("h100-sxm")], 1024), load_workload("llama3.1-8b"))
    for name, values in {**m.columns, **m.constraints}.items():
        assert np.all(np.isfinite(values)), name
    assert not m.feasible[0] and m.constraints["g_memory"][0] > 0
    reasons = infeasibility_reasons(m, 0)
    assert any("on-chip memory" in r and "no HBM" in r for r in reasons)
    assert not any("on-chip memory" in r for r in infeasibility_reasons(m, 1))
    record = dse.evaluate("ibm-hermes-pcm", "llama3.1-8b", 64).to_dict()
    assert record["feasible"] is False and np.isfinite(record["cost_usd"])


def test_hbm_stacks_zero_only_where_written(tmp_path: Path) -> None:
    """A chip file may say hbm_stacks = 0 explicitly; negative counts stay errors."""
    from dse.errors import InputError

    text = (Path(__file__).parents[1] / "chips" / "ibm-hermes-pcm.toml").read_text()
    (tmp_path / "bad.toml").write_text(text.replace("hbm_stacks = 0", "hbm_stacks = -1"))
    with pytest.raises(InputError, match="hbm_stacks"):
        load_chip(tmp_path / "bad.toml")


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
    # On one plan (the same writes per step) RRAM uses 100x more of its endurance than PCM.
    from dse.model.plans import candidate_plans

    plan = candidate_plans(w, tp=4, pp=4, microbatch=1, recompute="none", zero_stage=1)
    pinned = evaluate(_designs(["pcm", "rram"], [2000, 2000]), w, plans=plan)
    g = pinned.constraints["g_endurance"]
    assert g[1] > 0 > g[0]
    assert g[1] == pytest.approx((g[0] + 1.0) * 100 - 1.0)
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
    """spaces/aimc.toml (docs/framework.md §4): hybrids are feasible; RRAM's 1e6-cycle
    endurance binds: its designs either keep the weights stationary (one write per step over
    975,062 steps, g_endurance = -0.025, the search sharding the weights to get there) or, where
    no plan that fits keeps them resident, fail g_endurance."""
    import dse
    from dse.model.training.analog import steps_per_run

    df = dse.sweep("aimc", "llama3.1-70b", method="random", samples=600, seed=1)
    analog = (df["analog_tiles"] > 0) & (df["analog_cell"].astype(str) != "none")
    assert (df["feasible"] & analog).any() and (df["feasible"] & ~analog).any()
    rram = analog & (df["analog_cell"].astype(str) == "rram")
    g = df.loc[rram, "g_endurance"]
    assert (g > 0).any() and (g <= 0).any()
    steps = steps_per_run(load_workload("llama3.1-70b"))
    assert steps == pytest.approx(975_062, abs=1) and np.allclose(g[g <= 0], steps / 1e6 - 1.0)
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
    docs/model.md §2.9, on random designs of spaces/aimc.toml. The plan is the fastest that
    fits counting the arrays' time and rewrites, among the plans whose writes the cells
    survive where there are any: checked plan by plan on the first designs, and the bounded
    search against the exhaustive one on all."""
    from dse.catalog.workloads import flops_per_token
    from dse.model.plans import candidate_plans
    from dse.model.training.analog import digital_view, take
    from dse.model.training.grid import build_grid
    from dse.model.training.memory import op_checkpoint
    from dse.model.training.step import step_model
    from dse.settings import load_settings
    from dse.space import load_space

    space = load_space("aimc")
    designs = space.decode(space.random(0, 300, seed=3))
    silicon = evaluate_silicon(designs)
    # RRAM designs first: theirs is the choice endurance steers.
    present = np.flatnonzero(silicon.analog.present)
    rram = choices("analog_cell").index("rram")
    first = present[designs.analog_cell[present] == rram][:4]
    keep = np.concatenate([first, np.setdiff1d(present, first)])[:40]
    designs, silicon = designs.take(keep), take(silicon, keep)
    assert len(designs) == 40
    w, s = load_workload("llama3.1-70b"), load_settings()
    plans = candidate_plans(w, max_tp=int(np.max(designs.scale_up_domain)))
    view = digital_view(w)
    g = build_grid(designs, silicon, view.precision, plans, s, slice(0, len(designs)))
    digital = step_model(g, view, s)
    shape = (len(designs), len(plans))
    digital_s = np.broadcast_to(digital.step_s, shape)
    fits = np.broadcast_to(digital.fits, shape)
    chips_used = np.broadcast_to(digital.lay.dp * digital.lay.replica, shape)
    slots = np.broadcast_to(digital.slots, shape)
    microbatches = np.broadcast_to(digital.lay.microbatches, shape)
    metrics = evaluate(designs, w, s, plans)
    exhaustive = evaluate(designs, w, s, plans, exhaustive=True)
    assert np.array_equal(metrics.training.plan_index, exhaustive.training.plan_index)
    matmul, _ = flops_per_token(w)
    tokens = w.global_batch_sequences * w.seq_len
    a = silicon.analog
    op_share = op_checkpoint(w).recomputed_share

    def arrays(i: int, k: int) -> tuple[float, float]:
        """(seconds the arrays add to the step, weight writes per step) of plan k."""
        tp, pp, ep = plans.tp[k], plans.pp[k], plans.ep[k]
        # forward redone: whole layers under full and offload, op's share of the linears
        redo = {2: 4.0 / 3.0, 4: 4.0 / 3.0, 3: 1.0 + op_share / 3.0}.get(
            int(plans.recompute[k]), 1.0
        )
        flops = 2.0 / 3.0 * tokens * matmul * redo / chips_used[i, k]
        resident = (w.total_params - w.expert_params) / (tp * pp) + w.expert_params / (pp * ep)
        capacity = a.weight_capacity[i]
        rate = a.peak_flop_s[i] * min(1.0, resident / capacity)
        bubble = slots[i, k] / (microbatches[i, k] + slots[i, k])
        analog_s = flops / rate / (1.0 - bubble)
        writes = 1.0 if resident <= capacity else 2.0 * resident / capacity
        stream_s = (
            min(resident, capacity)
            * a.effective_bits[i]
            / 8.0
            / (silicon.hbm_bandwidth_tb_s[i] * 1e12 * s.hbm_efficiency)
        )
        return analog_s + writes * max(a.rows[i] * a.row_write_s[i], stream_s), writes

    chosen = metrics.training.plan_index
    for i in range(len(designs)):
        k = int(chosen[i])
        extra, writes = arrays(i, k)
        step = digital_s[i, k] + extra
        assert metrics.columns["step_time_s"][i] == pytest.approx(step, rel=1e-9)
        endurance = metrics.training.steps[i] * writes / a.endurance_cycles[i] - 1.0
        assert metrics.constraints["g_endurance"][i] == pytest.approx(endurance, rel=1e-9)
        if i < 4 and fits[i].any():
            fitting = np.flatnonzero(fits[i])
            lasts = [
                j
                for j in fitting
                if metrics.training.steps[i] * arrays(i, j)[1] / a.endurance_cycles[i] <= 1.0
            ]
            totals = [digital_s[i, j] + arrays(i, j)[0] for j in (lasts or fitting)]
            assert step == pytest.approx(min(totals), rel=1e-9)
    steered = metrics.constraints["g_endurance"][:4]
    assert np.all(designs.analog_cell[:4] == rram) and np.any(steered <= 0)


def test_step_lower_bounds_hold_on_analog_designs() -> None:
    """The bounded plan search skips a cell only if its lower bound exceeds the best step; on
    an analog design the digital units run one of each linear layer's three GEMMs, the logits'
    too (the bound used to count three for the logits, and skipped plans that would win)."""
    from dse.model.plans import candidate_plans
    from dse.model.training.analog import digital_view, take
    from dse.model.training.grid import build_grid
    from dse.model.training.plan_search import plan_bounds, step_lower_bound
    from dse.model.training.step import step_model
    from dse.settings import load_settings
    from dse.space import load_space

    space = load_space("aimc")
    designs = space.decode(space.random(0, 200, seed=7))
    silicon = evaluate_silicon(designs)
    keep = np.flatnonzero(silicon.analog.present)[:60]
    designs, silicon = designs.take(keep), take(silicon, keep)
    s = load_settings()
    for workload in ("llama3.1-8b", "mixtral-8x7b"):
        view = digital_view(load_workload(workload))
        plans = candidate_plans(view, max_tp=int(np.max(designs.scale_up_domain)))
        g = build_grid(designs, silicon, view.precision, plans, s, slice(0, len(designs)))
        bound = step_lower_bound(g, plan_bounds(plans, view, s), s)
        m = step_model(g, view, s)
        step = np.broadcast_to(m.step_s, bound.shape)
        runs = np.isfinite(bound)
        assert runs.any() and np.all(bound[runs] <= step[runs]), workload


def _pcm_ladder(tiles: list[int]) -> Designs:
    """H100-based PCM designs with ``tiles`` tiles each, on 1,024 chips, the TDP out of the way
    (more tiles also draw power that would throttle the digital units under a TDP)."""
    d = _designs(["pcm"] * len(tiles), tiles)
    return d.replace(tdp_w=np.full(len(tiles), 5000.0))


def test_plan_search_weighs_array_capacity() -> None:
    """§2.9 Weights per chip are bounded by the arrays' capacity through time: a chip whose
    share of the weights overflows its arrays rewrites them every pass. As the arrays shrink,
    the search shards the weights over more chips (tensor × pipeline parallelism) to keep
    them resident, instead of keeping the digital units' favourite plan and paying rewrites."""
    from dse.model.plans import candidate_plans
    from dse.model.training.analog import weights_per_chip

    w = load_workload("llama3.1-8b")
    tiles = [250, 1000, 32000]
    designs = _pcm_ladder(tiles)
    m = evaluate(designs, w)
    shards = m.plan["tp"] * m.plan["pp"]
    assert shards[0] > shards[1] > shards[2]
    # With the fewest tiles the chosen plan holds more of its weights in the arrays than the
    # plan chosen for the most tiles would.
    plans = candidate_plans(w, max_tp=8)
    index = m.training.plan_index
    capacity = m.silicon.analog.weight_capacity
    chosen = weights_per_chip(w, plans.tp[index[0]], plans.pp[index[0]], plans.ep[index[0]])
    favourite = weights_per_chip(w, plans.tp[index[2]], plans.pp[index[2]], plans.ep[index[2]])
    assert chosen / capacity[0] < favourite / capacity[0]
    # The plan chosen is faster than any with the large-array design's sharding.
    pinned = evaluate(
        designs.take(np.array([0])),
        w,
        plans=candidate_plans(w, max_tp=8, tp=int(plans.tp[index[2]]), pp=int(plans.pp[index[2]])),
    )
    assert m.columns["step_time_s"][0] < pinned.columns["step_time_s"][0]


def test_plan_search_prefers_plans_the_cells_survive() -> None:
    """§2.9 Endurance bounds the plan the way memory does. Llama 3.1 8B on 1,024 RRAM designs
    (1e6 cycles) over 975,062 steps: a plan whose share of the weights overflows the arrays
    rewrites them twice per step per capacity's worth and wears the cells out. With 2,000
    tiles the fastest plan (what the search picks when the cells never wear out) overflows;
    the search takes a slower plan sharded enough to keep the weights stationary
    (g_endurance = -0.025). With 250 tiles no candidate plan keeps them resident: the search
    takes the fastest plan that fits, and g_endurance > 0 flags the design."""
    from dataclasses import replace
    from types import MappingProxyType

    from dse.model.plans import candidate_plans

    w = load_workload("llama3.1-8b")
    designs = _pcm_ladder([2000, 250]).replace(
        analog_cell=np.full(2, choices("analog_cell").index("rram"))
    )
    technology = load_technology()
    cells = dict(technology.analog_cells)
    cells["rram"] = replace(cells["rram"], endurance_cycles=1e30)
    unworn = replace(technology, analog_cells=MappingProxyType(cells))
    worn, free = evaluate(designs, w), evaluate(designs, w, technology=unworn)
    g = worn.constraints["g_endurance"]
    # 2,000 tiles: the fastest plan wears the cells out; the chosen one does not.
    assert g[0] <= 0 and worn.training.fits[0]
    assert free.columns["step_time_s"][0] < worn.columns["step_time_s"][0]
    tp, pp = int(free.plan["tp"][0]), int(free.plan["pp"][0])
    assert tp * pp < worn.plan["tp"][0] * worn.plan["pp"][0]
    fastest = evaluate(
        designs.take(np.array([0])), w, plans=candidate_plans(w, max_tp=8, tp=tp, pp=pp)
    )
    assert fastest.constraints["g_endurance"][0] > 0
    assert fastest.columns["step_time_s"][0] == pytest.approx(free.columns["step_time_s"][0])
    # 250 tiles: nothing lasts; the plan is the fastest that fits, and the design is flagged.
    assert g[1] > 0 and not worn.feasible[1]
    assert worn.training.plan_index[1] == free.training.plan_index[1]
    assert worn.columns["step_time_s"][1] == free.columns["step_time_s"][1]
    assert "endurance" in " ".join(infeasibility_reasons(worn, 1))
    # The bounded search (enough cells to take it: it skips the plans that do not last on a
    # design that has one) returns what the exhaustive one does.
    many = designs.take(np.tile(np.arange(2), 20))
    bounded, exhaustive = evaluate(many, w), evaluate(many, w, exhaustive=True)
    assert np.array_equal(bounded.training.plan_index, exhaustive.training.plan_index)
    assert np.array_equal(bounded.training.plan_index[:2], worn.training.plan_index)


def test_more_array_capacity_is_never_slower() -> None:
    """Physical sense: more tiles (capacity and rate) never lengthen the step or the run."""
    tiles = [125, 250, 500, 1000, 2000, 4000, 8000, 16000, 32000]
    for workload in ("llama3.1-8b", "llama3.1-70b"):
        m = evaluate(_pcm_ladder(tiles), load_workload(workload))
        step = m.columns["step_time_s"]
        assert np.all(np.diff(step) <= 1e-12 * step[:-1]), workload


def test_settings_drawn_per_design_reach_the_analog_rows() -> None:
    """dse sensitivity / dse robust draw settings per design; on a batch mixing digital and
    analog designs the analog rows take their own draws (it used to fail to broadcast)."""
    from dataclasses import replace

    from dse.settings import load_settings

    w = load_workload("llama3.1-8b")
    designs = _designs(["none", "pcm", "sram-cim"], [0, 2000, 8000])
    s = load_settings()
    drawn = replace(s, goodput=np.array([0.9, 0.8, 0.7]), hbm_efficiency=np.array([0.9, 0.8, 0.7]))
    m = evaluate(designs, w, drawn)
    for i, goodput in enumerate((0.9, 0.8, 0.7)):
        one = evaluate(
            designs.take(np.array([i])),
            w,
            replace(s, goodput=goodput, hbm_efficiency=goodput),
        )
        assert m.columns["training_days"][i] == pytest.approx(one.columns["training_days"][0])
