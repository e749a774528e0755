"""The bounded plan search against the exhaustive one (issue 13): same plan, every metric."""

from __future__ import annotations

import numpy as np
import pytest

from dse.catalog.chips import load_chip
from dse.catalog.technology import load_technology
from dse.catalog.workloads import load_workload
from dse.designs import Designs, from_chips
from dse.model.evaluate import Metrics, evaluate
from dse.model.plans import candidate_plans
from dse.model.training import plan_search

RELATIVE = 1e-9


def _random_designs(n: int, seed: int) -> Designs:
    """Designs around today's chips, from clusters too small for the model to huge ones, with
    small and large scale-up domains, so that some designs fit no plan at all."""
    rng = np.random.default_rng(seed)
    technology = load_technology()
    base = from_chips([load_chip("h100-sxm")]).take(np.zeros(n, dtype=np.int64))
    return base.replace(
        node=rng.integers(0, len(technology.nodes), n),
        hbm_generation=rng.integers(0, len(technology.memories), n),
        compute_units=rng.integers(64, 257, n).astype(float),
        spare_units=rng.integers(0, 17, n).astype(float),
        clock_ghz=rng.uniform(1.0, 2.2, n),
        sram_mb=rng.uniform(32, 256, n),
        tdp_w=rng.uniform(400, 1200, n),
        fp8_flops_per_cycle_per_unit=rng.choice([0.0, 8192.0], n),
        hbm_stacks=rng.integers(1, 13, n).astype(float),
        scale_up_domain=rng.choice([1.0, 4.0, 8.0, 16.0, 72.0], n),
        scale_up_bandwidth_gb_s=rng.uniform(400, 1800, n),
        scale_out_bandwidth_gb_s=rng.uniform(25, 400, n),
        num_chips=np.round(np.exp(rng.uniform(np.log(8), np.log(32768), n))),
        unit_price_usd=np.full(n, np.nan),
        fabric_pod_chips=rng.choice([1e7, 64.0, 512.0, 3072.0], n),
        fabric_oversubscription=rng.choice([1.0, 2.0, 7.0], n),
        in_network_reduction=rng.integers(0, 2, n).astype(float),
    )


def _bounds_and_model(w, plans, seed: int):  # -> (Grid, PlanBounds, StepModel)
    """200 random designs against ``plans``: the grid, the plan search's bounds and the step
    model, for comparing the bounds with the model cell by cell."""
    from dse.model.silicon import evaluate_silicon
    from dse.model.training.grid import build_grid
    from dse.model.training.step import step_model
    from dse.settings import load_settings

    settings = load_settings()
    designs = _random_designs(200, seed=seed)
    grid = build_grid(
        designs, evaluate_silicon(designs), w.precision, plans, settings, slice(0, 200)
    )
    return grid, plan_search.plan_bounds(plans, w, settings), step_model(grid, w, settings)


def _assert_same(fast: Metrics, exhaustive: Metrics) -> None:
    np.testing.assert_array_equal(fast.training.plan_index, exhaustive.training.plan_index)
    for name, values in exhaustive.plan.items():
        np.testing.assert_array_equal(fast.plan[name], values, err_msg=name)
    for group in ("columns", "constraints"):
        for name, values in getattr(exhaustive, group).items():
            np.testing.assert_allclose(
                getattr(fast, group)[name], values, rtol=RELATIVE, atol=0, err_msg=name
            )
    for name in type(exhaustive.training).__dataclass_fields__:
        np.testing.assert_allclose(
            getattr(fast.training, name),
            getattr(exhaustive.training, name),
            rtol=RELATIVE,
            atol=0,
            err_msg=name,
        )
    np.testing.assert_array_equal(fast.feasible, exhaustive.feasible)


@pytest.mark.parametrize(
    ("workload", "n", "books"),
    [
        ("gpt3-175b", 700, "numba"),  # dense, multi-head attention
        ("llama3.1-70b", 700, "numba"),  # dense, grouped-query attention
        ("llama3.1-70b", 300, "numpy"),  # the books without numba
        ("mixtral-8x7b", 600, "numba"),  # MoE, every layer
        ("mixtral-8x7b", 100, "numpy"),
        ("deepseek-v3", 520, "numba"),  # MoE with dense layers, shared experts, fp8, routing
        ("qwen3-30b-a3b", 400, "numba"),  # fine-grained MoE: host-bound layers (§2.6)
        ("qwen3-30b-a3b", 100, "numpy"),
    ],
)
def test_bounded_search_agrees_with_exhaustive_search(
    workload: str, n: int, books: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if books == "numpy":
        monkeypatch.setattr(plan_search, "_compiled_kernels", lambda: None)
    w = load_workload(workload)
    designs = _random_designs(n, seed=n + len(workload))
    plans = candidate_plans(w, max_tp=72)
    fast = evaluate(designs, w, plans=plans)
    exhaustive = evaluate(designs, w, plans=plans, exhaustive=True)
    _assert_same(fast, exhaustive)
    # The random designs reach both outcomes: a plan that fits, and none (least memory).
    assert fast.training.fits.any() and not fast.training.fits.all()


def test_bounded_search_agrees_with_exhaustive_search_under_the_hierarchical_dispatcher() -> None:
    """The numba bounds compile the hierarchical dispatcher's branch only for such workloads
    (None prunes it for the all-to-all); both variants must stay safe lower bounds."""
    w = load_workload("qwen3-30b-a3b").with_changes(moe_dispatcher="hierarchical")
    plans = candidate_plans(w, max_tp=72)
    designs = _random_designs(560, seed=11)
    _assert_same(
        evaluate(designs, w, plans=plans), evaluate(designs, w, plans=plans, exhaustive=True)
    )


def test_bounded_search_with_long_sequences_searches_context_parallelism() -> None:
    w = load_workload("llama3.1-8b").with_changes(seq_len=131072, global_batch_tokens=16e6)
    plans = candidate_plans(w, max_tp=72)
    assert (plans.context_parallel > 1).any()
    designs = _random_designs(520, seed=7)
    _assert_same(
        evaluate(designs, w, plans=plans), evaluate(designs, w, plans=plans, exhaustive=True)
    )


def test_bounded_search_agrees_with_exhaustive_search_with_attention_blocks() -> None:
    """§2.6 A kernel in large blocks with a split backward: the bound takes the lesser of the
    matmuls' and exponentials' overheads, and stays a lower bound as context parallelism
    shortens each rank's sequence."""
    w = load_workload("gpt-oss-20b").with_changes(
        seq_len=131072,
        global_batch_tokens=16e6,
        attention_blocks=(1024.0, 1024.0, 2048.0, 2048.0, 2048.0, 512.0),
        attention_backward="split",
    )
    plans = candidate_plans(w, max_tp=72)
    assert (plans.context_parallel > 1).any()
    designs = _random_designs(520, seed=13)
    _assert_same(
        evaluate(designs, w, plans=plans), evaluate(designs, w, plans=plans, exhaustive=True)
    )


def test_ties_between_plans_go_to_the_lower_plan_index() -> None:
    # Two copies of every plan: each tie must resolve to the first copy, as argmin does.
    w = load_workload("llama3.1-70b")
    single = candidate_plans(w, max_tp=8)
    doubled = type(single)(
        **{
            name: (np.concatenate([value, value]) if isinstance(value, np.ndarray) else value)
            for name, value in vars(single).items()
        }
    )
    designs = _random_designs(600, seed=3)
    fast = evaluate(designs, w, plans=doubled)
    _assert_same(fast, evaluate(designs, w, plans=doubled, exhaustive=True))
    assert (fast.training.plan_index < len(single)).all()


def test_results_do_not_depend_on_the_other_designs_of_the_batch() -> None:
    w = load_workload("mixtral-8x7b")
    designs = _random_designs(600, seed=11)
    batch = evaluate(designs, w)
    picked = np.array([5, 77, 420])
    alone = evaluate(designs.take(picked), w)
    for name, values in alone.columns.items():
        np.testing.assert_array_equal(values, batch.columns[name][picked], err_msg=name)


@pytest.mark.parametrize("workload", ["gpt3-175b", "qwen3-30b-a3b"])
def test_the_lazy_books_find_every_cell_of_a_window(workload: str) -> None:
    """The numba books compute a plan's bound only where its block's bound (the least of its
    layout groups' bounds) is within a window. The first threshold must be the one all bounds
    give, a block's bound at most its plans' bounds, and every window must yield exactly the
    cells a full scan of all bounds finds, also after earlier windows expanded some blocks."""
    from dse.model.training import _kernels
    from dse.settings import load_settings

    settings = load_settings()
    w = load_workload(workload)
    grid, bounds, _ = _bounds_and_model(w, candidate_plans(w, max_tp=72), seed=3)
    n, k = grid.chips.shape[0], bounds.tp.shape[0]
    full = plan_search.compiled_lower_bounds(grid, settings, bounds, _kernels, np.empty((n, k)))
    books, high = plan_search.open_books(grid, settings, bounds, _kernels)
    some = np.isfinite(full).any(axis=1)
    assert 0.5 < some.mean() < 1.0  # a few designs fit no plan: infinite threshold
    np.testing.assert_array_equal(high, full.min(axis=1) * plan_search.FIRST_THRESHOLD)
    order, least, slot, used = books[2], books[6], books[7], books[8]
    expanded = slot >= 0
    assert 0 < expanded.mean() < 0.5  # lazy: most blocks never computed
    # compact: the expanded blocks hold the pool's first rows, one each
    np.testing.assert_array_equal(np.sort(slot[expanded]), np.arange(used[0]))
    in_order = full[:, order]
    for b in range(least.shape[1]):
        block = in_order[:, b * _kernels.BLOCK : (b + 1) * _kernels.BLOCK]
        assert (least[:, b] <= block.min(axis=1)).all()
        held = slot[:, b] >= 0  # an expanded block's row of the pool holds its plans' bounds
        pooled = books[5][slot[held, b], : block.shape[1]]
        np.testing.assert_array_equal(pooled, block[held])
    rng = np.random.default_rng(5)
    finite = np.where(np.isfinite(full), full, 0.0)
    scale = np.where(some, np.where(np.isfinite(full), full, np.inf).min(axis=1), 1.0)
    low, top = np.full(n, -np.inf), np.zeros(n)
    for _ in range(4):
        top = top + rng.uniform(0.5, 1.5, n) * scale
        top[rng.random(n) < 0.05] = np.inf
        design, plan = _kernels.select(*books, low, top)
        within = (full > low[:, None]) & (full <= top[:, None]) & np.isfinite(full)
        assert design.size == within.sum() > 0
        found = np.zeros_like(within)
        found[design, plan] = True
        np.testing.assert_array_equal(found, within)
        expanded = slot >= 0
        np.testing.assert_array_equal(np.sort(slot[expanded]), np.arange(used[0]))
        low = np.minimum(top, finite.max(axis=1))
        top = np.minimum(top, finite.max(axis=1))


@pytest.mark.parametrize(
    "workload",
    ["llama3.1-70b", "mixtral-8x7b", "deepseek-v3", "qwen3-30b-a3b", "nemotron-3-nano-30b-a3b"],
)
def test_the_bounds_never_exceed_the_step_time_nor_skip_a_plan_that_fits(workload: str) -> None:
    from dse.model.training import _kernels
    from dse.settings import load_settings

    settings = load_settings()
    w = load_workload(workload)
    plans = candidate_plans(w, max_tp=72)
    grid, bounds, model = _bounds_and_model(w, plans, seed=5)
    runs = model.lay.valid
    # The layout the bound derives from the cluster and the plan is the model's (§2.4).
    valid, dp = plan_search.data_parallel_layout(grid, bounds)
    np.testing.assert_array_equal(valid, runs)
    np.testing.assert_array_equal(dp[runs], np.broadcast_to(model.lay.dp, dp.shape)[runs])
    # numpy: step time only, infinite exactly where the plan cannot run
    bound = plan_search.step_lower_bound(grid, bounds, settings)
    np.testing.assert_array_equal(np.isfinite(bound), runs)
    assert (bound[runs] <= model.step_s[runs]).all()
    # Tight: most of the step time.
    assert np.median((bound / model.step_s)[runs]) > 0.75
    # Each part bounds its exact counterpart: the stage time of one micro-batch (compute,
    # including the MoE layers' host time beyond their experts' GEMMs, and the communication no
    # overlap hides, the MoE all-to-all's over the links of the design's domain) ...
    features = plan_search._design_features(grid, settings, bounds.exp_per_attention_flop)
    host = plan_search.moe_host_lower_bound(features, bounds)
    stage = features @ bounds.coefficients + plan_search.moe_lower_bound(grid, bounds) + host
    exact_stage = model.stage_s  # the slowest stage (§2.7)
    assert (stage[runs] <= np.broadcast_to(exact_stage, stage.shape)[runs] * (1 + 1e-12)).all()
    # The host part is there exactly for MoE, and where the host time shows it holds most of it.
    assert (host[runs] > 0).any() == w.is_moe
    exact_host = np.broadcast_to(model.comp.moe_host_s, host.shape)
    shown = runs & (exact_host > 0.1 * np.broadcast_to(model.comp.total_s, host.shape))
    if workload == "qwen3-30b-a3b":
        assert shown.any() and np.median(host[shown] / exact_host[shown]) > 0.5
    # A hybrid's Mamba-2 scans count at least their kernels' cycles (§2.11), so its bounds stay
    # as tight as a transformer's.
    ssd = plan_search._design_features(grid, settings, 0.0)[:, 5:] * bounds.coefficients[5]
    assert (ssd[runs] > 0).all() if w.mamba_layers else (ssd == 0).all()
    # The MoE all-to-all's part alone bounds the exposed all-to-all, close to it.
    moe = plan_search.moe_lower_bound(grid, bounds)
    exact_moe = np.broadcast_to(model.comm.moe_s, moe.shape)
    assert (moe[runs] <= exact_moe[runs] * (1 + 1e-12)).all()
    exposed = runs & (exact_moe > 0)
    assert w.is_moe == exposed.any()
    if w.is_moe:
        # (a hybrid's bound counts fewer MoE layers per stage than its exact stage where pp > 1:
        # Nemotron 3 Nano's median ratio 1 at pp 1, 0.92 at pp 2, 0.5 at pp 16; still a bound)
        assert np.median(moe[exposed] / exact_moe[exposed]) > (0.8 if w.mamba_layers else 0.99)
    # ... and the exposed data-parallel traffic (§2.7), for MoE too; FSDP's gathers and
    # reduce-scatters all together never take longer than the step.
    microbatches = bounds.sequences / (dp * bounds.layout[plan_search.MICROBATCH])
    dp_part, fsdp_part = plan_search.data_parallel_lower_bound(grid, bounds, dp, microbatches)
    exact_dp = np.broadcast_to(model.dp_s, dp_part.shape)
    assert (dp_part[runs] <= exact_dp[runs] * (1 + 1e-12)).all()
    assert (fsdp_part[runs] <= model.step_s[runs] * (1 + 1e-12)).all()
    zero1 = runs & (exact_dp > 0) & (plans.zero_stage == 1)
    assert np.median(dp_part[zero1] / exact_dp[zero1]) > 0.5
    fsdp = runs & (plans.zero_stage == 3)
    assert fsdp_part[fsdp].any() and (fsdp_part[runs & ~fsdp] == 0).all()
    # Where FSDP's traffic is much of the step, its part (bytes over each kind's own tier, and
    # every collective's ring latency) holds much of the step.
    step = np.broadcast_to(model.step_s, exact_dp.shape)
    heavy = fsdp & (exact_dp > 0.3 * step)
    assert heavy.any() and np.median(fsdp_part[heavy] / step[heavy]) > 0.45
    # numba: step time, and infinite only where the plan cannot run or cannot fit.
    compiled = np.empty((grid.chips.shape[0], len(plans)))
    plan_search.compiled_lower_bounds(grid, settings, bounds, _kernels, compiled)
    fits = model.fits
    assert fits.any() and (runs & ~fits).any()
    assert np.isfinite(compiled[fits]).all()
    finite = np.isfinite(compiled)
    assert (compiled[finite] <= model.step_s[finite]).all()
    np.testing.assert_allclose(compiled[finite], bound[finite], rtol=1e-12)
    # The memory bound, in the format each design runs, prunes nearly every plan that does not fit.
    assert np.isinf(compiled[runs & ~fits]).mean() > 0.99


@pytest.mark.parametrize("workload", ["llama3.1-70b", "mixtral-8x7b"])
def test_the_bounds_hold_with_hybrid_sharding(workload: str) -> None:
    """Plans that pin dp_shard (§2.1) keep the layout, memory and step-time bounds: numpy and
    numba, every bound at most the exact step time, infinite exactly where the plan cannot run
    (numpy) or cannot run or fit (numba)."""
    from dse.model.training import _kernels
    from dse.settings import load_settings

    settings = load_settings()
    w = load_workload(workload)
    plans = candidate_plans(w, max_tp=72, dp_shard=4)
    grid, bounds, model = _bounds_and_model(w, plans, seed=9)
    runs = model.lay.valid
    valid, dp = plan_search.data_parallel_layout(grid, bounds)
    np.testing.assert_array_equal(valid, runs)
    assert (np.broadcast_to(model.lay.dp, dp.shape)[runs] % 4 == 0).all()
    bound = plan_search.step_lower_bound(grid, bounds, settings)
    np.testing.assert_array_equal(np.isfinite(bound), runs)
    assert (bound[runs] <= model.step_s[runs]).all()
    compiled = np.empty((grid.chips.shape[0], len(plans)))
    plan_search.compiled_lower_bounds(grid, settings, bounds, _kernels, compiled)
    fits = model.fits
    assert fits.any() and np.isfinite(compiled[fits]).all()
    finite = np.isfinite(compiled)
    assert (compiled[finite] <= model.step_s[finite]).all()


@pytest.mark.parametrize(
    ("workload", "pinned"),
    [
        ("llama3.1-70b", {"tp": 8}),  # tp pinned: no scale-up-domain rule
        ("llama3.1-70b", {"dp": 16}),  # dp pinned instead of derived
        ("mixtral-8x7b", {"recompute": "full"}),
        ("deepseek-v3", {"schedule": "dualpipe"}),
        ("llama3.1-70b", {"offload_layers": 10}),  # activation offload: the memory bound
        ("mixtral-8x7b", {"recompute": "full", "recompute_layers": 2}),  # partial recompute
        ("llama3.1-70b", {"placement": "tp-pp-dp"}),  # pipelines inside the domain
        ("llama3.1-70b", {"recompute": "ffn"}),  # AXLearn's checkpointing, never searched
        ("llama3.1-70b", {"dp_shard": 8}),  # hybrid sharding: no data-parallel bound
        ("mixtral-8x7b", {"dp_shard": 4}),  # ... with expert shards
        ("llama3.1-70b", {"dp": 32, "dp_shard": 16, "zero_stage": 3}),
        ("mixtral-8x7b", {"etp": 2}),  # experts split: their all-to-all over S/etp per domain
        ("deepseek-v3", {"etp": 4, "zero_stage": 1}),
        ("qwen3-30b-a3b", {"recompute": "moe"}),  # the MoE layers' host time repeated (§2.6)
        ("nemotron-3-nano-30b-a3b", {"recompute": "full"}),  # Mamba-2 scans in the bound (§2.11)
    ],
)
def test_bounded_search_agrees_with_exhaustive_search_on_partly_pinned_plans(
    workload: str, pinned: dict[str, object]
) -> None:
    w = load_workload(workload)
    plans = candidate_plans(w, max_tp=72, **pinned)  # type: ignore[arg-type]
    assert len(plans) >= plan_search.MIN_PLANS
    designs = _random_designs(600, seed=len(pinned) + len(workload))
    _assert_same(
        evaluate(designs, w, plans=plans), evaluate(designs, w, plans=plans, exhaustive=True)
    )


def test_the_search_interleaves_up_to_eight_virtual_stages_where_the_layers_split() -> None:
    # Llama 3.1 405B: 126 layers, so 16 stages hold ⌈126/16⌉ = 8 layers each (8 virtual stages
    # of one layer, Meta's 16K-GPU plan), 8 stages hold 16, and 32 stages hold 4 (no vp 8).
    w = load_workload("llama3.1-405b")
    plans = candidate_plans(w, max_tp=8)
    vp, pp = plans.virtual_stages, plans.pp
    assert set(np.unique(vp[pp == 16])) == {1.0, 2.0, 4.0, 8.0}
    assert 8.0 in vp[pp == 8]
    assert 8.0 not in vp[pp == 32] and 4.0 in vp[pp == 32]
    assert (vp[pp < 4] == 1).all()
    per_stage = np.ceil(w.layers / pp)
    assert (per_stage % vp == 0).all()
    # Not powers of two alone: Mixtral 8x22B's 56 layers on 8 stages are 7 a stage, which
    # interleave only by 7; Llama 3 70B's 80 on 16 stages are 5 a stage.
    mixtral = candidate_plans(load_workload("mixtral-8x22b"), max_tp=8)
    assert set(np.unique(mixtral.virtual_stages[mixtral.pp == 8])) == {1.0, 7.0}
    llama = candidate_plans(load_workload("llama3.1-70b"), max_tp=8)
    assert set(np.unique(llama.virtual_stages[llama.pp == 16])) == {1.0, 5.0}


@pytest.mark.parametrize(("workload", "etp"), [("mixtral-8x7b", 2), ("deepseek-v3", 4)])
def test_the_bounds_hold_with_expert_tensor_parallelism(workload: str, etp: int) -> None:
    """Plans that split each expert over ``etp`` ranks (§2.4) keep safe bounds, numpy and
    numba, and their all-to-all part stays tight: the ep ranks of an expert group are etp
    apart, so S/etp of them share a scale-up domain (§2.7), and the etp ranks' gathers of the
    tokens count with the tensor-parallel traffic no overlap hides."""
    from dse.model.training import _kernels
    from dse.settings import load_settings

    settings = load_settings()
    w = load_workload(workload)
    plans = candidate_plans(w, max_tp=72, etp=etp)
    grid, bounds, model = _bounds_and_model(w, plans, seed=13)
    runs = model.lay.valid
    bound = plan_search.step_lower_bound(grid, bounds, settings)
    np.testing.assert_array_equal(np.isfinite(bound), runs)
    assert (bound[runs] <= model.step_s[runs]).all()
    features = plan_search._design_features(grid, settings, bounds.exp_per_attention_flop)
    stage = features @ bounds.coefficients + plan_search.moe_lower_bound(grid, bounds)
    exact_stage = np.broadcast_to(model.stage_s, stage.shape)
    assert (stage[runs] <= exact_stage[runs] * (1 + 1e-12)).all()
    moe = plan_search.moe_lower_bound(grid, bounds)
    exact_moe = np.broadcast_to(model.comm.moe_s, moe.shape)
    exposed = runs & (exact_moe > 0)
    assert exposed.any() and (moe[runs] <= exact_moe[runs] * (1 + 1e-12)).all()
    assert np.median(moe[exposed] / exact_moe[exposed]) > 0.99
    compiled = np.empty((grid.chips.shape[0], len(plans)))
    plan_search.compiled_lower_bounds(grid, settings, bounds, _kernels, compiled)
    finite = np.isfinite(compiled)
    assert np.isfinite(compiled[model.fits]).all()
    assert (compiled[finite] <= model.step_s[finite]).all()
    np.testing.assert_allclose(compiled[finite], bound[finite], rtol=1e-12)
