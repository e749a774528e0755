"""numba kernels of the bounded plan search's bookkeeping (dse.model.training.plan_search).

Imported only for chunks large enough to repay numba's import and (cached) compilation; the
physics stays in the numpy mechanisms. Each kernel loops over designs, so no ``(n, k)``
temporaries are made beyond the matrix of bounds itself.

The plans come grouped by their layout (plan_search.PlanGroups): a group's bound, computed from
the least of each of its plans' rows, is at most the bound of every plan in it, so a plan's own
bound is computed only where its group's is within a round's window ("expanding" the group).
``rows`` is the tuple of plan rows that plan_search.kernel_rows makes, for the plans in group
order or for the groups; ``design`` the tuple of design columns of plan_search.kernel_designs;
``consts`` the workload's and the search's scalars; ``hierarchical`` the hierarchical
dispatcher's experts, None for the all-to-all (numba then compiles the loop over plans without
that branch, which would stop it vectorizing: half the throughput).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dse.model.training.plan_search import (
    K_BATCH_DP,
    K_CP,
    K_DATA_PARALLEL,
    K_DP_STEP,
    K_EP,
    K_EP_OVER_TP,
    K_HELD,
    K_HOST,
    K_INVERSE,
    K_MICROBATCH,
    K_PINNED_DP,
    K_REPLICA,
    K_STAGE,
    K_STATE,
    K_TP,
    KERNEL_BLOCK,
)

BLOCK = KERNEL_BLOCK
"""Plans whose bounds are computed together (plan_search.KERNEL_BLOCK)."""
MAX_ORDERED = 8
"""Blocks :func:`lower_bounds` expands in order of their bound before one pass over the rest."""
_LARGEST = np.finfo(np.float64).max
"""The largest finite bound: ``bound <= min(high, _LARGEST)`` is ``bound <= high`` and finite."""


@njit(cache=True, nogil=True, error_model="numpy")
def _hierarchical_copies(k: float, experts: float, domains: float) -> float:
    """§2.7 One copy per remote domain holding any of the token's ``k`` experts
    (collectives.dispatch_network_copies)."""
    missed = 1.0
    for j in range(int(k)):
        missed *= max(experts - experts / domains - j, 0.0) / (experts - j)
    return (domains - 1.0) * (1.0 - missed)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _data_parallel_ranks(
    chips: float, replica: float, batch_dp: float, pinned_dp: float, pinned: bool, step: float
) -> float:
    """§2.4 layout: D = min(⌊N/(t·p·c)⌋, ⌊B/b⌋) (or the pinned D), rounded down to whole
    expert groups of ``step`` ranks; 0 where not even one group fits."""
    searched = min(np.floor(chips / replica), batch_dp)
    dp = pinned_dp if pinned else searched
    return np.floor(dp / step) * step if dp >= step else 0.0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _data_parallel_s_per_b(
    tp: float,
    weight_dp: float,
    inverse_weight_dp: float,
    domain: float,
    inverse_domain: float,
    inverse_up: float,
    inverse_out: float,
) -> float:
    """§2.7 Seconds per byte of the data-parallel collectives: the scale-up links where the
    ``tp·weight_dp`` ranks share a domain, else the domain's scale-out links in parallel."""
    per_domain = max(min(tp * inverse_domain, 1.0), inverse_weight_dp)
    return inverse_up if tp * weight_dp <= domain else max(inverse_up, inverse_out * per_domain)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _all_to_all_s(
    per_byte_s: float,
    ep: float,
    inverse_ep: float,
    experts_per_token: float,
    route_max_domains: float,
    hierarchical_experts: float | None,
    domain: float,
    inverse_up: float,
    inverse_out: float,
) -> float:
    """§2.7 A micro-batch's expert all-to-all on the stage (s): the copies beyond the domain on
    scale-out, the others on scale-up, both at once (plan_search.moe_lower_bound);
    ``per_byte_s`` is the plan's bytes coefficient."""
    remote = experts_per_token * (ep - min(ep, domain)) * inverse_ep
    if hierarchical_experts is not None:  # None (all-to-all) prunes this branch
        remote = _hierarchical_copies(experts_per_token, hierarchical_experts, ep / min(ep, domain))
    remote = min(remote, route_max_domains) if route_max_domains > 0.0 else remote
    local = max(experts_per_token * (ep - 1.0) * inverse_ep - remote, 0.0)
    return per_byte_s * max(local * inverse_up, remote * inverse_out)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ring_latency(group: float, base_us: float, hop_us: float) -> float:
    """§2.7 At least the latency (s) of a ring collective over ``group`` ranks
    (plan_search._ring_latency_lower_bound)."""
    return (base_us + (group - 1.0) * hop_us) * 1e-6 if group > 1.0 else 0.0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _design_row(design: tuple, i: int, tp_searched: bool) -> tuple:
    """Design ``i``'s scalars for :func:`_fill`: chips, the largest tp, the scale-up domain,
    the seconds per byte of its scale-up and scale-out links, the HBM bytes, the family's
    collective latency scale."""
    _, chips, domain, inverse_up, inverse_out, capacity, _, latency_scale = design
    return (
        chips[i],
        max(domain[i], 1.0) if tp_searched else np.inf,
        domain[i],
        inverse_up[i],
        inverse_out[i],
        capacity[i],
        latency_scale[i],
    )


@njit(cache=True, nogil=True, error_model="numpy")
def _fill(
    out: np.ndarray,
    first: int,
    last: int,
    design: tuple,
    i: int,
    rows: np.ndarray,
    consts: tuple,
    hierarchical: float | None,
) -> None:
    """Design ``i``'s bound of the plans (or groups) of the blocks ``first:last`` of the rows
    ``rows`` (plan_search.kernel_rows, ``(blocks, 38, BLOCK)``) into the rows of ``out``
    ``(≥ last − first, BLOCK)`` (block ``b`` into row ``b − first``; one call per run of blocks,
    its set-up a tenth of a block's time): the layout (plan_search.data_parallel_layout), the
    micro-batches and the data-parallel part (plan_search.data_parallel_lower_bound) follow the
    numpy code; the loop over plans has no branch (but loop-invariant ones), so that it runs on
    vector units. Its index is unsigned: numba then checks no negative index, which would stop
    the loop vectorizing."""
    if (
        first < 0
        or last > rows.shape[0]
        or last - first > out.shape[0]
        or rows.shape[2] != BLOCK
        or out.shape[1] != BLOCK
    ):
        return
    tp_searched, pinned, experts_per_token, route_max_domains = consts[:4]
    sequences, scale, (base_us, hop_us) = consts[4:7]
    chips, top_tp, domain, inverse_up, inverse_out, capacity, latency_scale = _design_row(
        design, i, tp_searched
    )
    f = design[0][i]
    # the activations of the format the design runs (memory_bounds' rows)
    fixed = K_HELD if design[6][i] else K_HELD + 2
    inverse_domain = 1.0 / domain
    dp_b, state, c, host = K_DATA_PARALLEL, K_STATE, K_STAGE, K_HOST
    for b in range(first, last):
        m = rows[b]
        row = out[b - first]
        for j in range(BLOCK):
            p = np.uint64(j)
            replica, tp, ep = m[K_REPLICA, p], m[K_TP, p], m[K_EP, p]
            dp = _data_parallel_ranks(
                chips, replica, m[K_BATCH_DP, p], m[K_PINNED_DP, p], pinned, m[K_DP_STEP, p]
            )
            runs = (
                (dp >= 1.0)
                & (dp * replica <= chips)
                & (dp * m[K_MICROBATCH, p] <= sequences)
                & (tp <= top_tp)
            )
            dp = max(dp, 1.0)
            inverse_dp = 1.0 / dp
            microbatches = sequences * inverse_dp * m[K_INVERSE, p]
            weight_dp = dp * m[K_CP, p]
            inverse_weight_dp = inverse_dp * m[K_INVERSE + 1, p]
            inverse_bw = _data_parallel_s_per_b(
                tp, weight_dp, inverse_weight_dp, domain, inverse_domain, inverse_up, inverse_out
            )
            expert_inverse = min(m[K_EP_OVER_TP, p] * inverse_weight_dp, 1.0)
            inverse_etp = m[K_INVERSE + 3, p]
            # the experts' ranks are ep·etp apart: their ZeRO 0-2 and FSDP traffic over their own tier
            expert_inverse_bw = inverse_bw
            if experts_per_token > 0.0:
                expert_inverse_bw = _data_parallel_s_per_b(
                    ep / inverse_etp,
                    1.0 / expert_inverse,
                    expert_inverse,
                    domain,
                    inverse_domain,
                    inverse_up,
                    inverse_out,
                )
            ring_share = 1.0 - inverse_weight_dp
            per_step_s = (m[dp_b, p] + microbatches * m[dp_b + 2, p]) * ring_share * inverse_bw + (
                m[dp_b + 1, p] + microbatches * m[dp_b + 4, p]
            ) * (1.0 - expert_inverse) * expert_inverse_bw
            # FSDP: the step lasts at least as long as all its gathers and reduce-scatters
            # ... and each of them pays at least a ring's latency (plan_search._ring_latency_lower_bound)
            latency_s = _ring_latency(weight_dp, base_us, hop_us)
            if experts_per_token > 0.0:
                latency_s += _ring_latency(1.0 / expert_inverse, base_us, hop_us)
            fsdp_s = microbatches * (
                m[dp_b + 3, p] * ring_share * inverse_bw
                + m[dp_b + 5, p] * (1.0 - expert_inverse) * expert_inverse_bw
                + m[dp_b + 6, p] * latency_scale * latency_s
            )
            stage = (
                f[0] * m[c, p]
                + f[1] * m[c + 1, p]
                + f[2] * m[c + 2, p]
                + f[3] * m[c + 3, p]
                + f[4] * m[c + 4, p]
                + f[5] * m[c + 5, p]
            )
            if experts_per_token > 0.0:
                stage += _all_to_all_s(
                    m[state + 4, p],
                    ep,
                    m[K_INVERSE + 2, p],
                    experts_per_token,
                    route_max_domains,
                    hierarchical,
                    max(domain * inverse_etp, 1.0),  # the ep ranks of a group are etp apart
                    inverse_up,
                    inverse_out,
                )
                # the MoE layers' host time beyond the experts' GEMMs (plan_search.moe_host_lower_bound)
                stage += max(m[host, p] - (f[0] * m[host + 1, p] + m[host + 2, p]), 0.0)
            value = (max(stage * (microbatches + m[state + 3, p]), fsdp_s) + per_step_s) * scale
            least_b = (
                m[fixed, p]
                + m[state, p] * inverse_weight_dp
                + m[state + 1, p] * expert_inverse
                + min(m[state + 2, p], microbatches) * m[fixed + 1, p]
            )
            row[p] = value if runs & (least_b * scale <= capacity) else np.inf


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _block_least(
    i: int, b: int, k: int, pool: np.ndarray, least: np.ndarray, slot: np.ndarray
) -> float:
    """The least bound of block ``b``'s plans (of ``k``, padding left out) for design ``i``,
    which it holds in ``pool[slot[i, b]]``; recorded in ``least``."""
    s = slot[i, b]
    m = np.inf
    for j in range(min(BLOCK, k - b * BLOCK)):
        m = min(m, pool[s, j])
    least[i, b] = m
    return m


@njit(cache=True, nogil=True, error_model="numpy")
def _expand(
    i: int,
    b: int,
    k: int,
    pool: np.ndarray,
    least: np.ndarray,
    slot: np.ndarray,
    used: np.ndarray,
    design: tuple,
    rows: np.ndarray,
    consts: tuple,
    hierarchical: float | None,
) -> float:
    """The bounds of block ``b``'s plans (of ``k``) for design ``i``, into the pool's next free
    slot (``used[0]``); their least, which replaces the block's bound in ``least``. The whole
    block is computed, padding included (plan_search.kernel_rows), so that the loop never runs
    scalar."""
    s = used[0]
    used[0] = s + 1
    slot[i, b] = s
    _fill(pool[s : s + 1], b, b + 1, design, i, rows, consts, hierarchical)
    return _block_least(i, b, k, pool, least, slot)


@njit(cache=True, nogil=True, error_model="numpy")
def lower_bounds(
    design: tuple,
    rows: np.ndarray,
    group_rows: np.ndarray,
    group_of: np.ndarray,
    consts: tuple,
    hierarchical: float | None,
    first: float,
    pool: np.ndarray,
    least: np.ndarray,
    slot: np.ndarray,
    used: np.ndarray,
    groups: np.ndarray,
) -> np.ndarray:
    """Each block's bound for every design into ``least`` ``(n, ⌈k/BLOCK⌉)`` (the least bound
    of the groups with a plan in it, :func:`_fill` of ``group_rows`` into the buffer
    ``groups``), and the plans' bounds of the blocks needed to know each design's least plan
    bound and every plan within ``first`` × it; returns that threshold ``(n,)`` (infinite where
    no plan can run and fit). A block's plan bounds (plans in group order) go to the next free
    row of ``pool`` ``(n·⌈k/BLOCK⌉, BLOCK)``, ``used[0]`` of which are taken, and its row to
    ``slot`` ``(n, ⌈k/BLOCK⌉)`` (−1: not expanded); ``least`` holds an expanded block's plans'
    least bound, else the block's bound, at most every bound of its plans. The books are
    compact: a design's few expanded blocks lie together, so that the pool's pages touched are
    a tenth of a dense ``(n, k)`` matrix's, and chunks can be larger. The buffers are reused
    between calls: fresh pages cost more than the bounds themselves."""
    n, blocks = least.shape
    k = group_of.shape[0]
    high = np.empty(n)
    used[0] = 0
    for i in range(n):
        _fill(groups, 0, group_rows.shape[0], design, i, group_rows, consts, hierarchical)
        for b in range(blocks):
            bound = np.inf
            for g in range(group_of[b * BLOCK], group_of[min(b * BLOCK + BLOCK, k) - 1] + 1):
                bound = min(bound, groups[g // BLOCK, g % BLOCK])
            least[i, b] = bound
            slot[i, b] = -1
        # Expand the blocks in order of their bound until the next bound is at least the least
        # plan bound found (those blocks hold no plan below it): a few blocks, the bounds being
        # tight; after MAX_ORDERED of them, a pass over the blocks (every block, where no plan
        # found yet can run and fit: a design where little fits would search block by block).
        m, b = np.inf, -1
        for _ in range(MAX_ORDERED):
            b, bound = -1, np.inf
            for c in range(blocks):
                if slot[i, c] < 0 and least[i, c] < bound:
                    b, bound = c, least[i, c]
            if b < 0 or bound >= m:
                break
            m = min(
                m,
                _expand(i, b, k, pool, least, slot, used, design, rows, consts, hierarchical),
            )
        every = m == np.inf and b >= 0
        # every block within the first round's window (every block, where none fits yet)
        for b in range(blocks):
            if slot[i, b] < 0 and (every or least[i, b] <= m * first):
                m = min(
                    m,
                    _expand(i, b, k, pool, least, slot, used, design, rows, consts, hierarchical),
                )
        high[i] = m * first
    return high


@njit(cache=True, nogil=True, error_model="numpy")
def select(
    design: tuple,
    rows: np.ndarray,
    order: np.ndarray,
    consts: tuple,
    hierarchical: float | None,
    pool: np.ndarray,
    least: np.ndarray,
    slot: np.ndarray,
    used: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The cells with ``low < bound <= high`` (finite) of their row, as (design, plan index)
    pairs, design by design; one pass, into buffers of every cell's size whose untouched pages
    cost nothing. Only the blocks whose least bound (``least``: at most the least of the
    block, since bounds raised later only skip fewer) is within ``high`` are read, each
    expanded first where it was not (:func:`lower_bounds`)."""
    n, blocks, k = least.shape[0], least.shape[1], order.shape[0]
    out_design = np.empty(n * k, np.int64)
    out_plan = np.empty(n * k, np.int64)
    c = 0
    for i in range(n):
        lo, hi = low[i], min(high[i], _LARGEST)
        if not hi > lo:
            continue
        for b in range(blocks):
            if not least[i, b] <= hi:
                continue
            if slot[i, b] < 0 and not (
                _expand(i, b, k, pool, least, slot, used, design, rows, consts, hierarchical) <= hi
            ):
                continue
            s = slot[i, b]
            for j in range(min(BLOCK, k - b * BLOCK)):
                if lo < pool[s, j] <= hi:
                    out_design[c] = i
                    out_plan[c] = order[b * BLOCK + j]
                    c += 1
    return out_design[:c].copy(), out_plan[:c].copy()


@njit(cache=True, nogil=True, error_model="numpy")
def all_bounds(
    design: tuple,
    rows: np.ndarray,
    k: int,
    consts: tuple,
    hierarchical: float | None,
    pool: np.ndarray,
    least: np.ndarray,
    slot: np.ndarray,
    used: np.ndarray,
) -> None:
    """Every plan's bound of every design into the books: design ``i``'s block ``b`` in row
    ``i·⌈k/BLOCK⌉ + b`` of ``pool``, so that the pool is the dense ``(n, BLOCK·⌈k/BLOCK⌉)``
    matrix of the bounds (plans in group order, the first ``k`` columns); each block's least
    into ``least``: every block expanded."""
    n, blocks = least.shape
    for i in range(n):
        _fill(pool[i * blocks : (i + 1) * blocks], 0, blocks, design, i, rows, consts, hierarchical)
        for b in range(blocks):
            slot[i, b] = i * blocks + b
            _block_least(i, b, k, pool, least, slot)
    used[0] = n * blocks


@njit(cache=True, nogil=True)
def update(
    design: np.ndarray,
    plan: np.ndarray,
    step_s: np.ndarray,
    fits: np.ndarray,
    valid: np.ndarray,
    over: np.ndarray,
    best_s: np.ndarray,
    best_plan: np.ndarray,
    least_over: np.ndarray,
    least_plan: np.ndarray,
) -> None:
    """Fold evaluated cells into each design's best plan that fits and its valid plan needing
    least memory; ties go to the lower plan index, as ``argmin`` breaks them."""
    for c in range(design.shape[0]):
        i, p = design[c], plan[c]
        if fits[c]:
            s = step_s[c]
            if s < best_s[i] or (s == best_s[i] and p < best_plan[i]):
                best_s[i] = s
                best_plan[i] = p
        if valid[c]:
            o = over[c]
            if o < least_over[i] or (o == least_over[i] and p < least_plan[i]):
                least_over[i] = o
                least_plan[i] = p
