"""Mixture-of-Experts variants of a workload, with the paper's K = total / active parameters.

The paper's MoE rule is C_MoE ≈ 120·P²/K: a Mixture of Experts with ``P`` total parameters
trains with the FLOPs of ``P / K`` active ones. :func:`mixture_of_experts` builds such a
workload from a dense one, and is shared by the scaling analysis (``moe_k``) and the roadmap's
``model_partitioning`` lever.

Construction (documented assumption, fine-grained experts as in DeepSeekMoE, arXiv:2401.06066):

* every dense MLP of width ``ffn_dim`` becomes ``experts`` experts of width ``ffn_dim / 8``,
  ``experts_per_token`` of them routed per token; attention, embeddings and the layer count are
  kept (they stay active for every token);
* with ``a`` the share of the dense shape's parameters outside the MLPs and ``m = 1 − a``, a
  target of ``T`` total and ``T / K`` active parameters from a base of ``B`` parameters needs
  ``experts / 8 = (T/B − a) / m`` and ``experts_per_token / 8 = (T/(K·B) − a) / m``, rounded to
  whole experts;
* the counts are then set exactly: ``total_params = T`` and ``active_params = T / K``, so the
  training FLOPs divide by K whatever the rounding.

A workload that already is an MoE keeps its experts and routes fewer of them per token
(``experts_per_token`` scaled by K_old / K_new), with the counts set the same way.
"""

from __future__ import annotations

from pathlib import Path

from dse.catalog.workloads import Workload, shape_params
from dse.errors import InputError

GRANULARITY = 8
"""Experts per dense MLP width: each expert is ``ffn_dim / GRANULARITY`` wide."""


def mixture_of_experts(
    workload: Workload,
    k: float,
    total_params: float | None = None,
    source: str | Path = "moe_k",
) -> Workload:
    """``workload`` as an MoE with ``total_params`` (default: its own) and K = total / active.

    ``k == 1`` returns a dense workload with the total count (unchanged when it already is).
    Raises :class:`InputError` where K asks for fewer active parameters than the parts every
    token uses (attention, embeddings) hold.
    """
    if not k >= 1.0:
        raise InputError(source, "", "K = total / active parameters >= 1", k)
    total = float(total_params if total_params is not None else workload.total_params)
    active = total / k
    if workload.is_moe:
        routed = max(round(workload.experts_per_token * workload.moe_k / k), 1)
        return workload.with_changes(
            experts_per_token=min(routed, workload.experts),
            total_params=total,
            active_params=active,
            shape_only_params=False,
        )
    if k == 1.0:
        return workload.with_changes(total_params=total, active_params=total)
    shape_total, _ = shape_params(workload)
    mlp = workload.layers * workload.ffn_matrices * workload.d_model * workload.ffn_dim
    shared = 1.0 - mlp / shape_total  # share of the shape outside the MLPs (a)
    base = workload.total_params
    experts_share = (total / base - shared) / (1.0 - shared)
    active_share = (active / base - shared) / (1.0 - shared)
    if active_share <= 0.0:
        largest = total / base / shared
        raise InputError(
            source,
            "",
            f"K below {largest:.3g} for {workload.id} (attention and embeddings, "
            f"{shared:.0%} of its parameters, are active for every token)",
            k,
            argument=source if isinstance(source, str) and source.isidentifier() else None,
        )
    experts = max(round(GRANULARITY * experts_share), 1)
    per_token = min(max(round(GRANULARITY * active_share), 1), experts)
    return workload.with_changes(
        experts=experts,
        experts_per_token=per_token,
        shared_experts=0,
        moe_ffn_dim=max(round(workload.ffn_dim / GRANULARITY), 1),
        dense_layers=0,
        total_params=total,
        active_params=active,
        shape_only_params=False,
    )
