"""§2.7 Communication: tensor, pipeline, context and expert parallelism per micro-batch, and
the data-parallel gradient reduction per step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from dse.catalog.workloads import Workload
from dse.designs import FloatArray
from dse.model.training.compute import Compute, kv_heads_per_rank
from dse.model.training.grid import Grid, recomputed_layer_share, recomputed_moe_share
from dse.model.training.memory import (
    Memory,
    activation_offload_time_s,
    expert_offload_time_s,
    offload_time_s,
)
from dse.model.training.parallelism import Layout
from dse.settings import Settings

TREE_BUS_BANDWIDTH_RATIO = 0.92
"""[P] Bus bandwidth of NCCL's tree all-reduce over the ring's: its cost model takes
``busBw * .92`` for ``NCCL_ALGO_TREE`` with ``ncclFuncAllReduce`` (NVIDIA/nccl
``src/graph/tuning.cc``, ``ncclTopoTuneModel``; the per-channel tree caps are left out)."""

DP_BUCKET_PARAMS = 40e6
"""[P] Least parameters per gradient bucket of Megatron-Core's data-parallel reduction; a bucket
holds ``max(40e6, 1e6 · dp)`` parameters (``DistributedDataParallel``, ``bucket_size`` default),
each reduce-scattered and all-gathered as one collective."""
DP_BUCKET_PARAMS_PER_RANK = 1e6
"""[P] Parameters per data-parallel rank in that bucket-size rule."""


def scale_up_share(g: Grid, members: FloatArray | float) -> FloatArray | float:
    """§2.7 Share of a chip's scale-up bandwidth that a transfer among ``members`` chips of one
    scale-up domain can use: all of it through switches; on a full mesh of direct links
    (``scale_up_mesh``) the bandwidth of each of the domain's ``n`` chips is split evenly over
    its ``n − 1`` links, and the transfer has only the links to its ``m − 1`` peers,
    ``(m − 1)/(n − 1)`` of it (one link, ``1/(n − 1)``, for a send to one neighbour)."""
    if not np.any(g.mesh):
        return 1.0
    links = np.maximum(g.domain - 1.0, 1.0)
    share = np.clip((np.asarray(members, dtype=float) - 1.0) / links, 1.0 / links, 1.0)
    return np.where(g.mesh, share, 1.0)


def ring_bus_bytes(bytes_: FloatArray, group: FloatArray, settings: Settings) -> FloatArray:
    """§2.7 Bytes each rank sends in a ring all-gather or reduce-scatter of ``bytes_`` (the full
    buffer) over ``group`` ranks, over the achieved fraction of link bandwidth."""
    return (group - 1.0) / group * bytes_ / settings.collective_efficiency


def ring_latency_s(
    group: FloatArray, domains: FloatArray | float, settings: Settings
) -> FloatArray:
    """§2.7 Latency (s) of one ring all-gather or reduce-scatter over ``group`` ranks spread over
    ``domains`` scale-up domains, NCCL's cost model (``src/graph/tuning.cc``): a base latency and
    one hop per step, of which ``domains − 1`` cross the scale-out network; none for one rank."""
    steps = group - 1.0
    out_steps = np.clip(np.asarray(domains, dtype=float) - 1.0, 0.0, steps)
    latency_us = (
        settings.collective_latency_us
        + (steps - out_steps) * settings.scale_up_hop_latency_us
        + out_steps * settings.scale_out_hop_latency_us
    )
    return np.where(group > 1.0, latency_us * 1e-6, 0.0)


def ring_time(
    bytes_: FloatArray,
    group: FloatArray,
    bandwidth_b_s: FloatArray,
    settings: Settings,
    domains: FloatArray | float = 1.0,
    messages: FloatArray | float = 1.0,
    latency_scale: FloatArray | float = 1.0,
) -> FloatArray:
    """§2.7 α–β time (s) of ``messages`` ring all-gathers or reduce-scatters that together move
    ``bytes_`` (the full buffers) over ``group`` ranks in ``domains`` scale-up domains: each
    message pays :func:`ring_latency_s` (times the family's ``latency_scale``,
    ``collective_latency_scale``), the bytes pay the bandwidth."""
    bandwidth_s = ring_bus_bytes(bytes_, group, settings) / bandwidth_b_s
    return messages * latency_scale * ring_latency_s(group, domains, settings) + bandwidth_s


def all_reduce_time(
    bytes_: FloatArray,
    group: FloatArray,
    bandwidth_b_s: FloatArray,
    settings: Settings,
    domains: FloatArray | float = 1.0,
    messages: FloatArray | float = 1.0,
    in_network: np.ndarray | bool = False,
    latency_scale: FloatArray | float = 1.0,
) -> FloatArray:
    """§2.7 α–β time (s) of ``messages`` all-reduces that together reduce ``bytes_`` over
    ``group`` ranks in ``domains`` scale-up domains, by the faster of NCCL's two algorithms
    under its own cost model (``src/graph/tuning.cc``): the ring (a reduce-scatter and an
    all-gather, :func:`ring_time` twice) and the double binary tree, whose latency grows with
    ``2·((group/domains − 1) + ⌊log₂ domains⌋)`` levels of ``tree_level_latency_us`` and whose
    bytes are ``2·bytes_`` (up the tree and down) at :data:`TREE_BUS_BANDWIDTH_RATIO` of the
    ring's bus bandwidth: the tree for small buffers over many domains, the ring for large.
    Where ``in_network`` (switches that reduce, :func:`in_network_all_reduce_time`) and the
    group spans domains, also that algorithm. Every latency is the family's ``latency_scale``
    times NCCL's."""
    ring = 2.0 * ring_time(bytes_, group, bandwidth_b_s, settings, domains, messages, latency_scale)
    spans = np.maximum(np.asarray(domains, dtype=float), 1.0)
    levels = 2.0 * (np.maximum(group / spans - 1.0, 0.0) + np.floor(np.log2(spans)))
    tree_latency = messages * latency_scale * levels * settings.tree_level_latency_us * 1e-6
    tree_b_s = TREE_BUS_BANDWIDTH_RATIO * settings.collective_efficiency * bandwidth_b_s
    best = np.minimum(ring, tree_latency + 2.0 * bytes_ / tree_b_s)
    if np.any(in_network):
        switched = in_network_all_reduce_time(
            bytes_, group, bandwidth_b_s, settings, spans, messages, latency_scale
        )
        best = np.where(np.logical_and(in_network, spans > 1.0), np.minimum(best, switched), best)
    return np.where(group > 1.0, best, 0.0)


def in_network_all_reduce_time(
    bytes_: FloatArray,
    group: FloatArray,
    bandwidth_b_s: FloatArray,
    settings: Settings,
    domains: FloatArray,
    messages: FloatArray | float = 1.0,
    latency_scale: FloatArray | float = 1.0,
) -> FloatArray:
    """§2.7 All-reduce (s) through switches that reduce (InfiniBand SHARP, NCCL's CollNet
    Direct): the ranks of a domain reduce-scatter there, each sends its ``1/m`` share to the
    switch tree once and receives the sum once, at the same time, then the domain all-gathers:
    ``bytes_`` over the hierarchical bandwidth where the ring moves ``2·(n − 1)/n·bytes_``.
    Latency as NCCL's cost model for CollNet Direct (``src/graph/tuning.cc``): the base, a
    scale-up step each way and one network traversal, times the family's ``latency_scale``.
    The scale-out links, not the scale-up ones, are taken to limit the hierarchical bandwidth
    (``m·B_out < B_up``: eight 400 Gb/s NICs under a 450 GB/s NVLink domain); NCCL's further
    CollNet efficiency factors are left out."""
    per_domain = group / domains
    up_steps = np.where(per_domain > 1.0, 2.0, 0.0)
    latency_us = (
        settings.collective_latency_us
        + up_steps * settings.scale_up_hop_latency_us
        + settings.scale_out_hop_latency_us
    )
    latency_s = messages * latency_scale * latency_us * 1e-6
    return latency_s + bytes_ / (settings.collective_efficiency * bandwidth_b_s)


def overlapped(
    comm_s: FloatArray,
    compute_s: FloatArray,
    overlap: FloatArray | float,
    slowdown: float = 0.0,
) -> FloatArray:
    """§2.7 Time a step pays for communication overlapped with compute: a fraction ``overlap``
    is hidden, but never more than the compute it hides behind, and the hidden part still
    slows that compute by ``slowdown`` of its time (:func:`with_contention`)."""
    exposed = np.maximum(comm_s * (1.0 - overlap), comm_s - compute_s)
    return with_contention(exposed, comm_s - exposed, slowdown)


def with_contention(exposed_s: FloatArray, hidden_s: FloatArray, slowdown: float) -> FloatArray:
    """§2.7 Exposed communication plus the compute time its hidden part costs (s): a collective
    running beside compute takes SMs (one thread block per NCCL channel) and HBM bandwidth
    from it, which slows the compute by ``slowdown`` (``overlap_slowdown``) of the hidden
    time::

        T_paid = T_exp + κ · T_hidden
    """
    return exposed_s + slowdown * hidden_s


def all_to_all_time_s(
    w: Workload,
    tokens: FloatArray | float,
    ep: FloatArray,
    domain: FloatArray,
    up_b_s: FloatArray,
    out_b_s: FloatArray,
    settings: Settings,
    pods: tuple[FloatArray, FloatArray] | None = None,
) -> FloatArray:
    """§2.7 One MoE dispatch or combine all-to-all of ``tokens`` tokens per rank (s).

    Each token goes to ``k`` experts spread evenly over the ``ep`` ranks of its expert group,
    which is contiguous in rank order: copies for ranks in the own scale-up domain travel on
    it, the others on the scale-out network (:func:`network_copies`), both at once; copies a
    remote domain forwards inside it travel on its scale-up links. fp8 training dispatches in fp8 and
    combines in 16-bit (1.75 bytes per element forward and backward together); 16-bit
    training moves 2 bytes. ``pods``: the fabric's pod size (chips) and oversubscription
    ``r``; the copies for ranks beyond the pod leave it at ``1/r`` of the NIC bandwidth
    (:func:`pod_ring_bandwidth`).
    """
    k = float(w.experts_per_token)
    element_b = 1.75 if w.precision in ("fp8", "fp4") else 2.0
    remote = network_copies(w, ep, domain)
    local = k * (ep - 1.0) / ep - remote  # own domain, plus copies forwarded in remote ones
    token_b = tokens * w.routed_dim * element_b  # §2.12 a latent MoE sends its latents
    scale_up = token_b * np.maximum(local, 0.0) / up_b_s
    scale_out = token_b * remote / out_b_s
    if pods is not None:
        # copies to ranks in other pods share the pod's uplinks, 1/r of its chips' NICs
        pod_chips, oversubscription = pods
        leaving = np.minimum(k * (ep - np.minimum(ep, pod_chips)) / ep, remote)
        scale_out = token_b * np.maximum(remote, leaving * oversubscription) / out_b_s
    return np.maximum(scale_up, scale_out) / settings.collective_efficiency


def network_copies(w: Workload, ep: FloatArray, domain: FloatArray) -> FloatArray:
    """§2.7 Copies of one token that a MoE dispatch of workload ``w`` sends over the scale-out
    network (:func:`dispatch_network_copies`)."""
    route = float(w.route_max_domains or 0)
    k = float(w.experts_per_token)
    return dispatch_network_copies(k, hierarchical_experts(w), route, ep, domain)


def hierarchical_experts(w: Workload) -> float:
    """The workload's experts where its dispatcher is ``hierarchical``, else 0 (the argument of
    :func:`dispatch_network_copies` that selects the dispatcher)."""
    return float(w.experts) if w.moe_dispatcher == "hierarchical" else 0.0


def dispatch_network_copies(
    k: float,
    hierarchical_experts: float,
    route_max_domains: float,
    ep: FloatArray,
    domain: FloatArray,
) -> FloatArray:
    """§2.7 Copies of one token that a MoE dispatch to ``k`` experts sends over the scale-out
    network, for an expert group of ``ep`` ranks in scale-up domains of ``domain`` chips (any
    shapes that broadcast). The ``alltoall`` dispatcher (``hierarchical_experts`` 0) sends one
    per expert outside the own domain, ``k·(e − min(e, S))/e``. The ``hierarchical`` one
    (DeepEP, HybridEP; ``hierarchical_experts`` = the workload's ``E`` experts) sends one per
    remote domain that holds any of the token's experts and forwards it inside: with the
    group over ``D = e/min(e, S)`` domains, ``E/D`` experts each, and the ``k`` experts of
    uniform routing drawn without replacement,
    ``(D − 1)·(1 − Π_{i<k} (E − E/D − i)/(E − i))``, never more than the former. Node-limited
    routing (``route_max_domains`` = M > 0, DeepSeek-V3) caps either at M."""
    in_domain = np.minimum(ep, domain)
    if hierarchical_experts:
        domains = ep / in_domain
        missed = np.ones_like(domains)
        for i in range(int(k)):
            elsewhere = np.maximum(hierarchical_experts - hierarchical_experts / domains - i, 0.0)
            missed = missed * elsewhere / (hierarchical_experts - i)
        remote = (domains - 1.0) * (1.0 - missed)
    else:
        remote = k * (ep - in_domain) / ep
    if route_max_domains:
        remote = np.minimum(remote, route_max_domains)
    return remote


def context_parallel_time_s(
    w: Workload,
    tokens: FloatArray | float,
    tp: FloatArray,
    cp: FloatArray,
    redone: FloatArray | float,
    links: tuple[FloatArray, FloatArray, FloatArray],
    settings: Settings,
    latency_scale: FloatArray | float = 1.0,
) -> FloatArray:
    """§2.7 K/V exchange of one layer's context-parallel attention, forward and backward (s).

    Each of the ``cp`` ranks holds the K and V of its chunk (``tokens`` tokens, ``K_V`` bytes
    in 16-bit; with MLA the up-projected keys and values, which Megatron-Core exchanges) and
    receives the other ranks' cp − 1 chunks in the forward pass, again for the share
    ``redone`` of the layers whose attention recompute repeats. The backward pass moves
    K and V once more and their gradients: cp − 1 hops in 16-bit by ring
    (:data:`~dse.catalog.workloads.CONTEXT_PARALLEL`), cp hops of fp32 gradients with PyTorch's
    all-gather variant. ``links``: the scale-up domain's size, its and the scale-out network's
    bandwidth per chip (B/s); the cp group follows tp in rank order, so it stays on the scale-up
    links while tp·cp fits there. Each exchange also pays its latency
    (:func:`context_parallel_latency_s`), times the family's ``latency_scale``. A hybrid's
    layer exchanges for its share of attention blocks; its Mamba blocks' all-to-alls are
    :func:`mamba_context_parallel_time_s`."""
    domain, up_b_s, out_b_s = links
    kv_b: FloatArray | float
    if w.is_mla:  # every head's key (h_d + h_r) and value (h_d), in 16-bit
        kv_b = tokens * (w.heads / tp) * w.key_value_width * 2.0
    else:
        heads = w.heads / tp if w.repeat_kv else kv_heads_per_rank(w, tp)
        kv_b = 2.0 * tokens * heads * w.head_dim * 2.0
    gradients = 2.0 * cp * kv_b if w.context_parallel == "allgather" else (cp - 1.0) * kv_b
    moved = (2.0 + redone) * (cp - 1.0) * kv_b + gradients
    in_domain = tp * cp <= domain
    bandwidth = np.where(in_domain, up_b_s, out_b_s)
    latency_s = context_parallel_latency_s(w, cp, redone, in_domain, settings) * latency_scale
    exchange_s = moved / (bandwidth * settings.collective_efficiency) + latency_s
    return exchange_s * w.attention_share if w.is_hybrid else exchange_s


def mamba_context_parallel_time_s(
    w: Workload,
    tokens: FloatArray | float,
    tp: FloatArray,
    cp: FloatArray,
    redone: FloatArray | float,
    links: tuple[FloatArray, FloatArray, FloatArray],
    settings: Settings,
    latency_scale: FloatArray | float = 1.0,
) -> FloatArray:
    """§2.11 All-to-alls of one layer's share of Mamba-2 blocks under context parallelism,
    forward and backward (s): Megatron-Core's ``MambaContextParallel`` gathers the whole
    sequence and splits the heads over the ``cp`` ranks before the convolution and the scan
    (``z``, ``x``, ``B``, ``C`` and ``dt``, each by its own all-to-all; a group's ``B`` and
    ``C`` repeated ``r = max(cp·tp/G, 1)`` times for the ranks of its heads) and scatters the
    output back (``y``), six all-to-alls of the rank's ``tokens`` tokens::

        E = 3·H_m·P/t + 2·r·G·N/t + H_m/t     elements per token, in 16-bit

    again backward (the gradients) and on the recomputed share ``redone``. Each sends
    ``(cp − 1)/cp`` of its buffer, the part for the ranks inside the scale-up domain on its
    links and the rest on the scale-out network, both at once (the cp ranks follow tp in rank
    order, ``S/tp`` of them share a domain), and pays a base latency and a hop. The
    all-to-alls sit between the in-projection and the scan and between the scan and the
    out-projection, so nothing hides them. ``links``: the domain's size, its and the
    scale-out network's bandwidth per chip (B/s)."""
    domain, up_b_s, out_b_s = links
    repeat = np.maximum(cp * tp / w.mamba_groups, 1.0)
    elements = (
        3.0 * w.mamba_inner + 2.0 * repeat * w.mamba_groups * w.mamba_state_dim + w.mamba_heads
    ) / tp
    buffer_b = (2.0 + redone) * tokens * elements * 2.0
    in_domain = np.minimum(cp, np.maximum(domain / tp, 1.0))
    local = (in_domain - 1.0) / cp
    remote = (cp - in_domain) / cp
    bandwidth_s = np.maximum(local / up_b_s, remote / out_b_s) * buffer_b
    hop_us = np.where(
        remote > 0.0, settings.scale_out_hop_latency_us, settings.scale_up_hop_latency_us
    )
    calls = (2.0 + redone) * MAMBA_CP_ALL_TO_ALLS
    latency_s = calls * (settings.collective_latency_us + hop_us) * 1e-6 * latency_scale
    exchange_s = bandwidth_s / settings.collective_efficiency + latency_s
    return np.where(cp > 1.0, exchange_s * w.mamba_share, 0.0)


MAMBA_CP_ALL_TO_ALLS = 6
"""All-to-alls of a Mamba-2 block's forward pass under context parallelism: ``z``, ``x``,
``B``, ``C`` and ``dt`` to the heads' ranks and ``y`` back (Megatron-Core
``megatron/core/ssm/mamba_context_parallel.py``, ``pre_conv_ssm`` and ``post_conv_ssm``)."""


def context_parallel_peers(w: Workload, g: Grid) -> FloatArray | float:
    """§2.7 Chips of a scale-up domain that one context-parallel exchange reaches at once: the
    ring's neighbour (2, with the sender), or the ``cp`` ranks the all-gather variant gathers
    from (the part of them inside the domain)."""
    if w.context_parallel == "allgather":
        return np.minimum(g.cp, np.maximum(g.domain / g.tp, 1.0))
    return 2.0


def context_parallel_latency_s(
    w: Workload,
    cp: FloatArray,
    redone: FloatArray | float,
    in_domain: np.ndarray,
    settings: Settings,
) -> FloatArray:
    """§2.7 Latency (s) of one layer's context-parallel exchanges, forward and backward, at NCCL's
    cost model (``src/graph/tuning.cc``), the base and hop latencies every other collective
    pays. The ring passes its chunks in ``cp − 1`` steps forward, again on the recomputed share
    ``redone``, and ``cp − 1`` backward (K/V and their gradients sent together), each step its
    own send/receive (Transformer Engine's ``cp_comm_type = "p2p"``): a base latency and one
    hop. The all-gather variant all-gathers K/V forward, on recompute and backward (a base
    latency and ``cp − 1`` hops each) and passes the gradients in ``cp`` steps. The hop is
    NVLink's inside the scale-up domain (``in_domain``), the network's across it."""
    hop_us = np.where(
        in_domain, settings.scale_up_hop_latency_us, settings.scale_out_hop_latency_us
    )
    step_us = settings.collective_latency_us + hop_us
    if w.context_parallel == "allgather":
        gather_us = settings.collective_latency_us + (cp - 1.0) * hop_us
        latency_us = (2.0 + redone) * gather_us + cp * step_us
    else:
        latency_us = (2.0 + redone) * (cp - 1.0) * step_us
    return np.where(cp > 1.0, latency_us * 1e-6, 0.0)


def tensor_parallel_collectives(w: Workload, redone: FloatArray | float) -> FloatArray | float:
    """§2.7 Tensor-parallel collectives of one layer per micro-batch, each moving the layer's
    activations: with sequence parallelism an all-gather before and a reduce-scatter after each
    of attention and the MLP, forward and backward (8), and the forward's 4 again for the share
    ``redone`` of the layer that recompute repeats; MLA with a query latent gathers its latents
    before attention instead (:func:`latent_gathers`), 6 and 3. A parallel block reduce-scatters
    its two branches' summed outputs once and gathers each normalization's output: 3 of the 4 forward
    collectives (GPT-NeoX, Falcon-180B: a normalization per branch), 2 of 4 where both branches
    read one (GPT-J, PaLM); the backward pass mirrors the forward. A hybrid's layer gathers and
    reduce-scatters around each of its blocks, its attention and Mamba blocks (whose
    in-projection is column-parallel and out-projection row-parallel) as its MLP."""
    if w.is_hybrid:  # an all-gather and a reduce-scatter around each block
        return w.blocks_per_layer * (4.0 + 2.0 * redone)
    if not w.parallel_blocks:
        if w.is_mla and w.q_lora_rank:  # attention gathers its latents instead
            return 6.0 + 3.0 * redone
        return 8.0 + 4.0 * redone
    norms = 1.0 if w.parallel_shared_norm else 2.0
    return (norms + 1.0) / 4.0 * (8.0 + 4.0 * redone)


def latent_gathers(w: Workload) -> tuple[float, float]:
    """§2.7 What MLA's attention gathers over tensor (sequence) parallelism besides or instead of
    the layer's normalized input: the summed width per token and the number of tensors. Its down
    projections run on each rank's share of the tokens and its up projections gather their
    inputs, the query latent, the key/value latent and the rotary key (Megatron-Core
    ``MLASelfAttention``: ``_qkv_down_projection``, ``get_query_key_value_tensors``); without a
    query latent the query projection gathers the input as usual. Each gather is an all-gather
    forward, again where recompute repeats the forward, and a reduce-scatter backward. ``(0, 0)``
    for other attention and for parallel blocks (whose shared gathers are not split out)."""
    if not w.is_mla or w.parallel_blocks:
        return 0.0, 0.0
    widths = [width for width in (w.q_lora_rank, w.kv_lora_rank, w.qk_rope_head_dim) if width]
    return float(sum(widths)), float(len(widths))


@dataclass(frozen=True)
class StageCommunication:
    """Exposed seconds per micro-batch on one stage, ``(n, k)`` (``cp_s`` may be a scalar 0):
    the tensor-parallel collectives, pipeline p2p, MoE all-to-all, ring attention and the copies
    of offloaded activations over the host link (§2.5)."""

    tp_s: FloatArray
    pp_s: FloatArray
    moe_s: FloatArray
    cp_s: FloatArray | float
    host_s: FloatArray

    @property
    def total_s(self) -> FloatArray:
        """All of them together (s)."""
        return self.tp_s + self.pp_s + self.moe_s + self.cp_s + self.host_s


def stage_communication(
    g: Grid, lay: Layout, comp: Compute, mem: Memory, w: Workload, s: Settings
) -> StageCommunication:
    """§2.7 TP collectives, pipeline p2p, MoE all-to-all and ring attention of one micro-batch,
    each with the overlap its stack achieves; §2.5 the host copies of offloaded activations."""
    activation_msg = lay.tokens_mb * w.d_model * 2.0
    # the tp ranks are adjacent in rank order; a group larger than the domain crosses it over
    # all the domain's NICs at once, the tier every collective group takes
    tp_b_s, _, tp_domains = data_parallel_tier(g, g.tp, np.ones_like(g.tp))
    redone = recomputed_layer_share(g.rc, g.rc_share)
    tp_collectives = tensor_parallel_collectives(w, redone) * lay.layers_per_stage
    tp_one = ring_time(activation_msg, g.tp, tp_b_s, s, tp_domains, latency_scale=g.latency_scale)
    tp_all = tp_collectives * tp_one
    latent_width, latent_tensors = latent_gathers(w)
    if latent_tensors:
        gathers = (2.0 + redone) * lay.layers_per_stage
        latent_b = lay.tokens_mb * latent_width * 2.0
        tp_all = tp_all + gathers * ring_time(
            latent_b, g.tp, tp_b_s, s, tp_domains, latent_tensors, g.latency_scale
        )
    # recomputing whole layers, or the MoE layer alone, dispatches the routed tokens again
    moe_redone = recomputed_moe_share(g.rc, g.rc_share)
    tp_all = np.where(g.tp > 1, tp_all, 0.0) + expert_tensor_parallel_s(g, lay, w, moe_redone, s)
    tp_s = overlapped(tp_all, comp.matmul_s * comp.matmul_redo, s.tp_overlap, s.overlap_slowdown)
    # Placement tp-cp-ep-dp-pp (Megatron-Core's default): pipeline neighbours are tp·cp·dp ranks
    # apart, so they share a scale-up domain only when the whole job does; tp-pp-dp: tp ranks
    # apart, in one domain when a whole pipeline (tp·pp ranks) fits in it.
    pipeline_ranks = np.where(g.pp_inner, g.tp * g.pp, lay.replica * lay.dp)
    pp_out_b_s = g.out_b_s
    if g.pods_split:
        stage_stride = np.where(g.pp_inner, g.tp, lay.replica * lay.dp / g.pp)
        pp_out_b_s = g.out_b_s / pod_p2p_slowdown(g, pipeline_ranks, stage_stride)
    pp_b_s = np.where(pipeline_ranks <= g.domain, g.up_b_s * scale_up_share(g, 2.0), pp_out_b_s)
    pp_all = np.where(g.pp > 1, 2.0 * g.vp * activation_msg / g.tp / pp_b_s, 0.0)
    # the interleaved schedule posts each chunk's sends and receives ahead and waits for them
    # only when the next chunk needs them, behind the chunk in hand (Megatron-Core's
    # overlap_p2p_comm); plain 1F1B waits for its batched send and receive
    pp_s = np.where(g.vp > 1, overlapped(pp_all, comp.total_s, 1.0, s.overlap_slowdown), pp_all)
    moe_s = np.zeros_like(pp_s)
    if w.is_moe:
        count = moe_token_collectives(w, lay.layers_per_stage, moe_redone)
        # the ep ranks of an expert group are etp apart in rank order (expert order etp-ep-edp)
        expert_domain = np.maximum(g.domain / g.etp, 1.0)
        one = all_to_all_time_s(
            w,
            lay.tokens_mb / g.tp,
            g.ep,
            expert_domain,
            g.up_b_s * scale_up_share(g, np.minimum(g.ep, expert_domain)),
            g.out_b_s,
            s,
            (g.pod_chips / g.etp, g.oversubscription) if g.pods_split else None,
        )
        # DualPipe overlaps one micro-batch's all-to-all with another's compute in full.
        hidden_share = np.where(g.dual, 1.0, s.moe_comm_overlap)
        moe_s = overlapped(count * one, comp.total_s, hidden_share, s.overlap_slowdown)
    cp_s: FloatArray | float = 0.0
    if np.any(g.cp > 1):
        # attention recompute repeats the forward exchange on the layers it applies to
        attention_redone = np.where(comp.attention_redo > 1.0, g.rc_share, 0.0)
        exchange = context_parallel_time_s(
            w,
            lay.tokens_mb,
            g.tp,
            g.cp,
            attention_redone,
            (g.domain, g.up_b_s * scale_up_share(g, context_parallel_peers(w, g)), g.out_b_s),
            s,
            g.latency_scale,
        )
        # a ring step's send hides behind the attention on the chunk in hand; the all-gather
        # variant is waited for before attention
        hidden = 0.0 if w.context_parallel == "allgather" else 1.0
        cp_s = overlapped(
            lay.layers_per_stage * exchange,
            comp.attention_s * comp.attention_redo,
            hidden,
            s.overlap_slowdown,
        )
        if w.mamba_layers:  # §2.11 the Mamba blocks' head all-to-alls, on every layer redone
            mamba_peers = np.minimum(g.cp, np.maximum(g.domain / g.tp, 1.0))
            mamba_s = mamba_context_parallel_time_s(
                w,
                lay.tokens_mb,
                g.tp,
                g.cp,
                redone,
                (g.domain, g.up_b_s * scale_up_share(g, mamba_peers), g.out_b_s),
                s,
                g.latency_scale,
            )
            cp_s = cp_s + lay.layers_per_stage * mamba_s
    host_s = (
        offload_time_s(g, lay, comp.total_s, w)
        + activation_offload_time_s(g, lay, mem, comp.total_s)
        + expert_offload_time_s(g, lay, mem, comp.total_s)
    )
    return StageCommunication(tp_s, pp_s, moe_s, cp_s, host_s)


def expert_tensor_parallel_s(
    g: Grid, lay: Layout, w: Workload, redone: FloatArray | float, s: Settings
) -> FloatArray | float:
    """§2.7 Expert tensor parallelism's collectives of one micro-batch on one stage (s): in each
    MoE layer the ``etp`` ranks that split an expert all-gather the tokens dispatched to them
    before the experts and reduce-scatter the experts' outputs after them, forward and backward
    (4), and the forward's 2 again for the share ``redone`` that recompute repeats
    (Megatron-Core's ``MoEAlltoAllTokenDispatcher`` with ``expert_tensor_parallel_size`` > 1).
    Each gathers the ``k`` routed copies of the rank's ``tokens/t`` tokens from every one of
    the ``etp`` ranks, in 16-bit; the ranks are adjacent in rank order, so the group takes the
    tier a tensor-parallel group of its size takes. 0 where ``etp`` is 1."""
    if not w.is_moe or not np.any(g.etp > 1):
        return 0.0
    count = moe_token_collectives(w, lay.layers_per_stage, redone)
    gathered_b = expert_gathered_bytes(w, lay.tokens_mb, g.tp, g.etp)
    b_s, _, domains = data_parallel_tier(g, g.etp, np.ones_like(g.etp))
    one = ring_time(gathered_b, g.etp, b_s, s, domains, latency_scale=g.latency_scale)
    return np.where(g.etp > 1, count * one, 0.0)


def moe_token_collectives(
    w: Workload, layers_per_stage: FloatArray, redone: FloatArray | float
) -> FloatArray:
    """§2.7 Collectives per micro-batch on a stage that move each MoE layer's routed tokens
    (the all-to-all, or the ``etp`` ranks' gathers): before and after the experts, forward and
    backward (4), and the forward's 2 again for the share ``redone`` that recompute repeats."""
    moe_fraction = (w.layers - w.dense_layers) / w.layers
    return (4.0 + 2.0 * redone) * layers_per_stage * moe_fraction


def expert_gathered_bytes(
    w: Workload, tokens_mb: FloatArray, tp: FloatArray, etp: FloatArray
) -> FloatArray:
    """§2.7 Bytes of one ``etp`` all-gather of a MoE layer: the ``k`` routed copies of each of
    the ``etp`` ranks' ``tokens/t`` tokens, in 16-bit."""
    return etp * tokens_mb / tp * w.experts_per_token * w.routed_dim * 2.0


def _buckets(params: FloatArray, dp: FloatArray) -> FloatArray:
    """Gradient buckets of ``params`` parameters at data parallelism ``dp`` (at least one)."""
    bucket = np.maximum(DP_BUCKET_PARAMS, DP_BUCKET_PARAMS_PER_RANK * dp)
    return np.maximum(np.ceil(params / bucket), 1.0)


def data_parallel_stride(g: Grid) -> FloatArray:
    """§2.4 Ranks between neighbouring data-parallel ranks in rank order: ``t`` with the default
    placement, ``t·p`` with ``tp-pp-dp``; shape ``(1, k)``."""
    return g.tp * np.where(g.pp_inner, g.pp, 1.0)


def data_parallel_tier(
    g: Grid, group: FloatArray, stride: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """§2.7 Bandwidth (bytes/s), ranks per scale-up domain and domains spanned of a collective
    group (data-parallel; tensor-parallel at stride 1) of ``group`` ranks ``stride`` ranks apart
    in rank order: the scale-up links where the ``stride·group`` ranks share a domain, else
    hierarchical — the ranks sharing a domain reduce there first, then cross the scale-out
    network over their own NICs in parallel, at what the fabric's pod uplinks leave them where
    the group spans pods (:func:`pod_ring_bandwidth`)."""
    per_domain = np.clip(g.domain / stride, 1.0, group)
    out_b_s = g.out_b_s
    if g.pods_split:
        domains_per_pod = np.maximum(np.clip(g.pod_chips / stride, 1.0, group) / per_domain, 1.0)
        out_b_s = pod_ring_bandwidth(g, stride * group, domains_per_pod)
    up_b_s = g.up_b_s * scale_up_share(g, per_domain)
    b_s = np.where(stride * group <= g.domain, up_b_s, np.minimum(up_b_s, out_b_s * per_domain))
    return b_s, per_domain, group / per_domain


def pod_ring_bandwidth(g: Grid, span: FloatArray, members_per_pod: FloatArray) -> FloatArray:
    """§2.7 Scale-out bandwidth (bytes/s) per rank of rings over ranks spanning ``span`` chips
    with ``members_per_pod`` consecutive members in each pod of the fabric. A ring leaves a pod
    once per ``members_per_pod`` of its links, and every chip of the pod is in one such ring,
    so the pod sends ``1/members_per_pod`` of its chips' ring traffic over uplinks worth
    ``1/r`` of their NICs: the rings slow by ``r/members_per_pod`` where that exceeds 1, and
    not at all inside one pod."""
    slowdown = np.maximum(g.oversubscription / members_per_pod, 1.0)
    return np.where(span > g.pod_chips, g.out_b_s / slowdown, g.out_b_s)


def pod_p2p_slowdown(g: Grid, span: FloatArray, stride: FloatArray) -> FloatArray:
    """§2.7 How much slower pipeline sends cross the fabric when the pipeline spans ``span``
    chips and neighbouring stages are ``stride`` chips apart: a pod holding several stages sends
    only its last stage's ``stride`` chips out, over uplinks worth ``1/r`` of its ``P`` chips'
    NICs (``r·stride/P``, at least 1, at most ``r`` once every chip's neighbour lies outside)."""
    crowded = np.clip(g.oversubscription * stride / g.pod_chips, 1.0, g.oversubscription)
    return np.where(span > g.pod_chips, crowded, 1.0)


def data_parallel_exposed_s(
    g: Grid,
    lay: Layout,
    stage_s: FloatArray,
    pipeline_s: FloatArray,
    w: Workload,
    s: Settings,
) -> FloatArray:
    """§2.7 The gradient reduction (ZeRO 0-2) or weight gathers and gradient reduce-scatters
    (FSDP) of one step over the sharding group (every data-parallel rank, or ``dp_shard·c``
    of them with hybrid sharding), hierarchical over the scale-up domain, plus hybrid
    sharding's all-reduce across the groups (:func:`replica_all_reduce_s`), minus what hides
    behind compute (s): ZeRO 0-2's behind one micro-batch's pass on the stage (``stage_s``,
    :func:`bucketed_exposed_s`), FSDP's layer by layer over the step (``pipeline_s``)."""
    tier = data_parallel_tier(g, lay.shard_dp, data_parallel_stride(g))
    # the experts' ranks are e·e_t apart: their own tier, found once for every collective
    expert_tier = (
        data_parallel_tier(g, lay.expert_shard, expert_data_parallel_stride(g))
        if w.is_moe
        else tier
    )
    buckets = _buckets((w.total_params - w.expert_params) / lay.model_parallel, lay.shard_dp)
    ring = partial(ring_time, latency_scale=g.latency_scale)
    # One reduce-scatter of every gradient bucket, or its all-gather (same bytes).
    once = _gradient_collectives(g, lay, w, s, ring, (tier, expert_tier))
    # ZeRO 1: the accumulated gradients reduce-scattered once per step and the updated weights
    # all-gathered; ZeRO 0 (DDP) all-reduces the gradients, by ring or tree; ZeRO-2 holds no
    # full gradient across micro-batches, so each micro-batch's gradients are reduce-scattered
    # as its backward pass makes them. Hybrid sharding all-reduces each reduced shard across
    # the groups (replicas_s per reduction).
    reductions = np.where(g.zero == 2, lay.microbatches, 1.0)
    layers = lay.layers_per_stage
    zero_reduce_s, zero_gather_s = reductions * once, once
    if np.any(g.zero == 0):
        all_reduce = partial(
            all_reduce_time, in_network=g.in_network, latency_scale=g.latency_scale
        )
        all_reduced = _gradient_collectives(g, lay, w, s, all_reduce, (tier, expert_tier))
        zero_reduce_s = np.where(g.zero == 0, all_reduced, zero_reduce_s)
        zero_gather_s = np.where(g.zero == 0, 0.0, zero_gather_s)
    gather_s, reduce_s = fsdp_layer_collectives_s(g, lay, w, s, (tier, expert_tier))
    if g.dp_shard is not None:
        per_bucket, per_layer = replica_all_reduce_s(g, lay, w, s, (buckets, layers))
        zero_reduce_s = zero_reduce_s + reductions * per_bucket
        reduce_s = reduce_s + per_layer / layers
    # the reduction behind the backward pass of the micro-batch that makes the gradients (each
    # one's with ZeRO-2, the last one's otherwise), the gather behind the next step's first forward
    hide = partial(
        bucketed_exposed_s, buckets=buckets, overlap=s.dp_overlap, slowdown=s.overlap_slowdown
    )
    zero_s = hide(zero_reduce_s, reductions * stage_s * 2.0 / 3.0) + hide(
        zero_gather_s, stage_s / 3.0
    )
    layer_s = pipeline_s / (lay.microbatches * layers)
    fsdp_s = fsdp_exposed_s(gather_s, reduce_s, layer_s, layers, s.overlap_slowdown)
    return np.where(g.fsdp, lay.microbatches * fsdp_s, zero_s)


def fsdp_layer_collectives_s(
    g: Grid,
    lay: Layout,
    w: Workload,
    s: Settings,
    tiers: tuple[tuple[FloatArray, FloatArray, FloatArray], ...],
) -> tuple[FloatArray, FloatArray]:
    """§2.7 FSDP's weight all-gather and gradient reduce-scatter of one layer (s, each): the
    shared parameters over the sharding group on the data-parallel tier, an MoE layer's local
    experts over their own sharding group on the experts' tier (``tiers``: the two
    :func:`data_parallel_tier` results; the ranks holding shards of one expert are ``e·e_t``
    apart, :func:`expert_data_parallel_stride`, so with experts inside a scale-up domain their
    gathers cross the network)."""
    layers = lay.layers_per_stage
    groups = [((w.total_params - w.expert_params) / lay.model_parallel, lay.shard_dp, tiers[0])]
    if w.is_moe:
        groups.append((w.expert_params / (g.pp * g.expert_ranks), lay.expert_shard, tiers[1]))

    def per_layer(bytes_per_param: float) -> FloatArray:
        total: FloatArray = np.zeros(())
        for params, group, (b_s, _, domains) in groups:
            bytes_ = params * bytes_per_param
            total = total + ring_time(bytes_, group, b_s, s, domains, layers, g.latency_scale)
        return total / layers

    return per_layer(s.weight_bytes_per_param), per_layer(s.grad_reduce_bytes_per_param)


def bucketed_exposed_s(
    comm_s: FloatArray,
    window_s: FloatArray,
    buckets: FloatArray,
    overlap: float,
    slowdown: float = 0.0,
) -> FloatArray:
    """§2.7 Exposed time (s) of a data-parallel collective issued bucket by bucket as the compute
    of ``window_s`` (a micro-batch's backward for the gradient reduction, its forward for the
    weight gather) makes each bucket ready (Megatron-Core's ``overlap_grad_reduce`` and
    ``overlap_param_gather``, PyTorch DDP's gradient buckets, DeepSpeed's ``overlap_comm``): a
    fraction ``overlap`` of it (``dp_overlap``) hides, at most the window, and never the one
    bucket issued after the window's compute (the reduction's last, the gather's first); the
    hidden part slows the compute by ``slowdown`` of its time (:func:`with_contention`)::

        T_exp = max(T − min(o·T, W), T / K)
    """
    hidden = np.minimum(overlap * comm_s, window_s)
    exposed = np.maximum(comm_s - hidden, comm_s / buckets)
    return with_contention(exposed, comm_s - exposed, slowdown)


def _gradient_collectives(
    g: Grid,
    lay: Layout,
    w: Workload,
    s: Settings,
    collective: Callable[..., FloatArray],
    tiers: tuple[tuple[FloatArray, FloatArray, FloatArray], ...],
) -> FloatArray:
    """§2.7 Time (s) of one ``collective`` (:func:`ring_time` or :func:`all_reduce_time`) of a
    stage's gradients in buckets: the shared parameters' over the sharding group on the
    data-parallel tier, the experts' over theirs on the experts' own tier (``tiers``: the two
    :func:`data_parallel_tier` results, bandwidth, ranks per domain, domains spanned;
    :func:`expert_data_parallel_stride`)."""
    (b_s, _, domains), (expert_b_s, _, expert_domains) = tiers
    shared_params = (w.total_params - w.expert_params) / lay.model_parallel
    shared_grad = shared_params * s.grad_reduce_bytes_per_param
    buckets = _buckets(shared_params, lay.shard_dp)
    time_s = collective(shared_grad, lay.shard_dp, b_s, s, domains, buckets)
    if w.is_moe:
        expert_params = w.expert_params / (g.pp * g.expert_ranks)
        expert_buckets = _buckets(expert_params, lay.expert_shard)
        time_s = time_s + collective(
            expert_params * s.grad_reduce_bytes_per_param,
            lay.expert_shard,
            expert_b_s,
            s,
            expert_domains,
            expert_buckets,
        )
    return time_s


def expert_data_parallel_stride(g: Grid) -> FloatArray:
    """§2.4 Ranks between neighbouring expert-data-parallel ranks in rank order: the expert
    groups of ``e·e_t`` ranks are innermost (Megatron-Core's expert order etp-ep-edp, MoE
    parallel folding), so the ranks that hold the same expert shard are ``e·e_t`` apart, times
    ``p`` with ``tp-pp-dp``; shape ``(1, k)``."""
    return g.expert_ranks * np.where(g.pp_inner, g.pp, 1.0)


def replica_all_reduce_s(
    g: Grid, lay: Layout, w: Workload, s: Settings, messages: tuple[FloatArray, ...]
) -> tuple[FloatArray, ...]:
    """§2.7 Hybrid sharding's gradient all-reduce (s), once for each count of ``messages``
    (the tiers are found once): each rank's 1/``shard_dp`` shard of the stage's gradients (the
    experts' 1/``expert_shard``) all-reduced (:func:`all_reduce_time`: ring or tree) across the
    ``r = D/dp_shard`` sharding groups (the same shard on every group; PyTorch FSDP
    ``HYBRID_SHARD``). A group's ranks are ``t·dp_shard·c`` apart in rank order (an expert
    shard's ``e·e_t·expert_shard``, :func:`expert_data_parallel_stride`), so this all-reduce
    crosses the slower tier wherever the groups fill a scale-up domain
    (:func:`data_parallel_tier`); 0 where ``r = 1``."""
    stride = data_parallel_stride(g) * lay.shard_dp
    replicas = lay.replicas + 0.0 * lay.shard_dp
    shard_b = (w.total_params - w.expert_params) / lay.model_parallel / lay.shard_dp
    groups = [(shard_b, replicas, data_parallel_tier(g, replicas, stride))]
    if w.is_moe:
        expert_b = w.expert_params / (g.pp * g.expert_ranks) / lay.expert_shard
        expert_replicas = lay.expert_dp / lay.expert_shard
        expert_stride = expert_data_parallel_stride(g) * lay.expert_shard
        groups.append(
            (expert_b, expert_replicas, data_parallel_tier(g, expert_replicas, expert_stride))
        )

    def over_groups(count: FloatArray) -> FloatArray:
        total: FloatArray = np.zeros(())
        for params, ranks, (b_s, _, domains) in groups:
            grads_b = params * s.grad_reduce_bytes_per_param
            total = total + all_reduce_time(
                grads_b, ranks, b_s, s, domains, count, g.in_network, g.latency_scale
            )
        return total

    return tuple(over_groups(count) for count in messages)


def fsdp_exposed_s(
    gather_s: FloatArray,
    reduce_s: FloatArray,
    layer_s: FloatArray,
    layers: FloatArray,
    slowdown: float = 0.0,
) -> FloatArray:
    """§2.7 Exposed FSDP (ZeRO-3) time of one micro-batch on one stage (s): each layer's weights
    gathered for its forward and again for its backward pass (``gather_s`` each), its gradients
    reduce-scattered after its backward (``reduce_s``; with hybrid sharding also the reduced
    shard's all-reduce across the groups, :func:`replica_all_reduce_s`, as FSDP's
    post-backward hook issues it after the reduce-scatter), every collective prefetched behind the
    compute of the neighbouring layer (PyTorch FSDP's forward and backward prefetch, Zhao et
    al. 2023, arXiv:2304.11277, Sec. 3.3; Megatron-FSDP's double buffer). Only the first
    gather and what a layer's collectives take beyond its compute (``layer_s``: a third forward,
    two thirds backward) show, and what hides slows the compute by ``slowdown`` of its time
    (:func:`with_contention`)::

        T_fsdp = g + L · (max(g − c/3, 0) + max(g + r − 2c/3, 0))
    """
    forward = np.maximum(gather_s - layer_s / 3.0, 0.0)
    backward = np.maximum(gather_s + reduce_s - 2.0 * layer_s / 3.0, 0.0)
    hidden = layers * (2.0 * gather_s + reduce_s - forward - backward)
    return with_contention(gather_s + layers * (forward + backward), hidden, slowdown)
