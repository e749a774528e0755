"""The workload catalog: one TOML file per LLM training run under ``workloads/`` (docs/model.md §2).

A :class:`Workload` is a transformer's shape plus its training run. Parameter counts follow
from the shape (§2.1) unless the file overrides them; a workload given by ``total_params``
alone gets a standard shape (d_model = 128 × layers, 12·L·d² ≈ P) and ``tokens = 20 × P``.
A workload without ``global_batch_tokens`` gets GPT-3's batch for its size
(:data:`DEFAULT_BATCH_TOKENS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from dse.catalog._paths import catalog_ids, resolve
from dse.catalog._schema import Field, Table, check
from dse.errors import InputError
from dse.files import read_toml

PRECISIONS = ("bf16", "fp8", "fp4")
ALGORITHMS_PATH = Path(__file__).parents[1] / "algorithms.toml"
ALGORITHMS = ("backprop", "forward_forward", "equilibrium_propagation")
"""Ids of the training algorithms (``dse/algorithms.toml``, checked by the tests)."""
ALGORITHM_SCHEMA = Table(
    {
        "name": Field("str"),
        "forward_gemms": Field(minimum=0.0, maximum=10_000.0),
        "input_gradient_gemms": Field(minimum=0.0, maximum=10_000.0),
        "weight_gradient_gemms": Field(minimum=0.0, maximum=10_000.0),
    },
    sourced=True,
)

_ALGORITHM_GEMMS = ("forward_gemms", "input_gradient_gemms", "weight_gradient_gemms")


@cache
def training_algorithms() -> dict[str, dict[str, float | str]]:
    """The training algorithms of ``dse/algorithms.toml`` by id (docs/model.md §2.10):
    GEMMs per linear layer and token as multiples of one forward GEMM."""
    data = read_toml(ALGORITHMS_PATH)
    return check(data, Table({}, open_keys=True, entry=ALGORITHM_SCHEMA), ALGORITHMS_PATH)


FFN_KINDS = ("swiglu", "gelu")
CHINCHILLA_TOKENS_PER_PARAM = 20.0
"""Compute-optimal tokens per parameter (Hoffmann et al. 2022, arXiv:2203.15556)."""
STANDARD_ASPECT_RATIO = 128.0
"""d_model / layers of the standard shape for parameter-count-only workloads (GPT-3: 12288/96)."""
STANDARD_HEAD_DIM = 128
DEFAULT_BATCH_TOKENS: tuple[tuple[float, float], ...] = (
    (125e6, 0.5e6),
    (350e6, 0.5e6),
    (760e6, 0.5e6),
    (1.3e9, 1e6),
    (2.7e9, 1e6),
    (6.7e9, 2e6),
    (13e9, 2e6),
    (175e9, 3.2e6),
)
"""(parameters, global batch in tokens) of the GPT-3 models: Brown et al. 2020, 'Language
Models are Few-Shot Learners', arXiv:2005.14165, Table 2.1 ("Batch Size" column, in tokens).
A workload that publishes no ``global_batch_tokens`` trains on the batch of the largest GPT-3
model no larger than its ``total_params`` (the smallest's below 125M; 3.2M tokens from 175B
up), rounded down to whole sequences (:func:`default_batch_tokens`)."""

ATTENTION_KERNELS = ("flash", "flash2", "materialized")
"""How a run computes attention. ``flash``: a fused kernel that keeps the softmax statistics
only and recomputes the scores in the backward pass (FlashAttention, Dao et al. 2022,
arXiv:2205.14135; memory-efficient attention, Rabe & Staats 2021, arXiv:2112.05682): every
stack since 2022 (Megatron-Core/Transformer Engine, torchtitan, MaxText's splash attention,
xFormers). ``flash2``: FlashAttention-2's kernel (Dao 2023, arXiv:2307.08691), which on Hopper
and later reaches only the family's ``flash2_attention_ratio`` of the measured kernel's
efficiency (PyTorch's SDPA before torch 2.11). ``materialized``: the score matrix and its softmax are stored, as in Megatron-LM and
DeepSpeed before FlashAttention (Korthikanti et al. 2022, arXiv:2205.05198, Sec. 4.1)."""

ATTENTION_PRECISIONS = ("bf16", "fp8")
"""The format of a fused attention kernel's score matmuls (docs/model.md §2.6). ``bf16``: 16-bit,
every stack's default. ``fp8``: FP8 dot-product attention (Transformer Engine's
``fp8_dot_product_attention`` / NeMo's ``FP8_DPA``; cuDNN's FP8 SDPA), where the chip's family
has a measured FP8 attention kernel (``fp8_attention_efficiency_scale``); the softmax stays on
the special-function units."""

FP8_CASTS = ("fused", "separate")
"""How an fp8/fp4 run casts its GEMM operands (docs/model.md §2.6). ``fused``: the kernel that
produces a linear layer's input (norm, activation function) writes it in the training format
(Transformer Engine's LayerNormLinear and LayerNormMLP, XLA's fusion on TPUs, Intel Gaudi's
Transformer Engine). ``separate``: the 16-bit tensors are cast by kernels of their own, reading
each tensor and writing its low-precision copy and transpose (torchao's Float8Linear in
torchtitan, NVIDIA's MXFP8 / NVFP4 recipes outside Transformer Engine's fused layers)."""

COMPILERS = ("eager", "compiled")
"""How the training stack runs the memory-bound operators (docs/model.md §2.6). ``eager``: one
kernel per operator, each reading and writing HBM (PyTorch eager, with the fused kernels of its
libraries: Transformer Engine, Apex). ``compiled``: a graph compiler fuses chains of them into
few kernels (torch.compile; JAX/XLA on GPUs). TPUs and Trainium always compile, and their
family scales were fitted on those runs as ``eager``: the scale holds what their compilers do."""

CONTEXT_PARALLEL = ("ring", "allgather")
"""How context parallelism exchanges keys and values (docs/model.md §2.7). ``ring``: each rank
passes its K/V chunk to the next while it computes attention on the chunk in hand, and the
backward pass passes K/V and their gradients the same way, in 16-bit (Liu et al. 2023, Ring
Attention; Megatron-Core / Transformer Engine's ``cp_comm_type = "p2p"``). ``allgather``: the
K/V chunks are all-gathered before attention, with the all-gather exposed (Llama 3's context
parallelism: "the all-gather communication latency is exposed in the critical path", Llama
Team 2024, arXiv:2407.21783, Sec. 3.3.2; PyTorch's experimental ``context_parallel`` with
``rotate_method = "allgather"``, torchtitan's default, whose collectives a compiled block waits
for at once), and the backward pass all-gathers them again and passes the gradients around the
ring in fp32 (PyTorch's ``_templated_ring_attention_backward``)."""

EMBEDDINGS = ("lookup", "one_hot")
"""How a run finds its tokens' rows of the embedding table (docs/model.md §2.6). ``lookup``: a
gather (every PyTorch stack; a few bytes a token, left out). ``one_hot``: the one-hot matrix of
the token ids times the table on the matrix units (MaxText's ``use_iota_embed``, set where a
gather, and the scatter of its gradient, run slowly on a TPU): a GEMM forward and one for the
table's gradient, ``4·V·d`` FLOPs a token on the first pipeline stage."""

ATTENTION_BLOCK_KEYS = ("q", "kv", "q_dkv", "kv_dkv", "q_dq", "kv_dq")
"""The tiles (tokens) of a block-sparse fused attention kernel, in JAX's splash attention's names
(``block_q``, ``block_kv``, ``block_q_dkv``, ...; MaxText's ``sa_block_*``): the forward
kernel's query and key blocks, the backward (dK/dV, or the fused backward) kernel's, and the
separate dQ kernel's (docs/model.md §2.6). A workload's ``training.attention_blocks`` gives
``q`` and ``kv``; a backward block left out is the forward one (``q_dkv`` ← ``q``, ``kv_dkv``
← ``kv``, ``q_dq`` ← ``q_dkv``, ``kv_dq`` ← ``kv_dkv``)."""

ATTENTION_BACKWARDS = ("fused", "split")
"""How a fused attention kernel's backward pass is computed (docs/model.md §2.6). ``fused``:
one kernel recomputes the scores once and makes dQ, dK and dV (FlashAttention-2, cuDNN, splash
attention with ``use_fused_bwd_kernel``): five score matmuls. ``split``: a dK/dV kernel and a
separate dQ kernel, each recomputing the scores and their gradient (splash attention's default,
``sa_use_fused_bwd_kernel = False`` in MaxText): seven score matmuls and one more
exponential per score."""

ATTENTION_BLOCKS_FIELD = Field(
    "numbers", required=False, positive=True, maximum=1 << 24, choices=ATTENTION_BLOCK_KEYS
)
"""The ``attention_blocks`` table of a workload file or a validation run's facts (tokens)."""

MOE_PERMUTATIONS = ("fused", "gather")
"""How a run permutes its routed tokens to their experts and back (docs/model.md §2.6).
``fused``: one kernel each way, reading and writing each copy once (Transformer Engine's
``moe_permute``/``moe_unpermute``, the all-to-all dispatchers' fused kernels): ``8·d·(1 + k)``
bytes a token, forward and backward. ``gather``: MaxText's sparse-matmul path (``permute``,
``unpermute``: ``jnp.repeat`` and a row gather by the sorted expert ids, a second gather to
unsort, a weighted sum over the ``k`` copies; the backward gathers by the inverse orders):
``8·d·(3k + 1)``."""

EXPERT_BIAS_ADDS = ("fused", "eager")
"""How a run adds its routed experts' output bias, scaled by each token's router probability
(workloads with ``expert_bias``; docs/model.md §2.6). ``fused``: inside the experts' GEMM or
activation kernels, at no cost of its own (Transformer Engine's op fuser, a packed grouped bias,
XLA's fusion). ``eager``: Megatron-Core's ``TEGroupedMLP._apply_bias``, a multiply and an add per
local expert in eager PyTorch and a concatenation, each with its backward (the only path from
2025-09-22 until Transformer Engine 2.15's op fuser could scale the bias, 2026-04)."""

MOE_DISPATCHERS = ("alltoall", "hierarchical")
"""How the MoE layers send tokens to their experts' ranks (docs/model.md §2.7). ``alltoall``: one
copy per remote expert, an all-to-all over the expert group (NCCL; Megatron-Core's ``alltoall``
dispatcher). ``hierarchical``: a token crosses the scale-out network once per remote scale-up
domain that holds any of its experts and is forwarded inside it on the scale-up links
(DeepEP's internode kernels, HybridEP; Megatron-Core's ``flex`` dispatcher)."""

WORKLOAD_BOUNDS: dict[str, tuple[float, float]] = {
    "layers": (1, 10_000),
    "d_model": (1, 1_000_000),
    "heads": (1, 100_000),
    "kv_heads": (1, 100_000),
    "head_dim": (1, 100_000),
    "q_lora_rank": (0, 1_000_000),
    "kv_lora_rank": (0, 1_000_000),
    "qk_rope_head_dim": (0, 100_000),
    "ffn_dim": (1, 10_000_000),
    "vocab_size": (1, 100_000_000),
    "experts": (1, 100_000),
    "experts_per_token": (1, 100_000),
    "shared_experts": (0, 100_000),
    "moe_ffn_dim": (1, 10_000_000),
    "moe_latent_dim": (0, 1_000_000),
    "dense_layers": (0, 10_000),
    "route_max_domains": (0, 100_000),
    "sliding_window": (0, 100_000_000),
    "window_layers": (0, 10_000),
    "mtp_layers": (0, 100),
    "attention_layers": (0, 10_000),
    "mamba_layers": (0, 10_000),
    "mamba_heads": (0, 100_000),
    "mamba_head_dim": (1, 100_000),
    "mamba_state_dim": (1, 100_000),
    "mamba_groups": (1, 100_000),
    "mamba_chunk": (1, 100_000),
    "total_params": (1.0, 1e16),
    "active_params": (1.0, 1e16),
    "tokens": (1.0, 1e18),
    "seq_len": (1, 100_000_000),
    "global_batch_tokens": (1.0, 1e12),
}
"""Physical range (inclusive) of each number of a workload file: far beyond any model trained
(10,000 layers, 10¹⁶ parameters, 10¹⁸ tokens), short of overflowing the model's arithmetic."""


def _count(name: str, **options: object) -> Field:
    low, high = WORKLOAD_BOUNDS[name]
    kind = "number" if isinstance(low, float) else "int"
    settings: dict[str, object] = {"required": False, **options}
    return Field(kind, minimum=low, maximum=high, **settings)  # type: ignore[arg-type]


WORKLOAD_SCHEMA = Table(
    {
        "name": Field("str"),
        "source": Field("str"),
        "notes": Field("str", required=False, default=""),
        "model": Table(
            {
                "layers": _count("layers"),
                "d_model": _count("d_model"),
                "heads": _count("heads"),
                "kv_heads": _count("kv_heads"),
                "head_dim": _count("head_dim"),
                "q_lora_rank": _count("q_lora_rank", default=0),
                "kv_lora_rank": _count("kv_lora_rank", default=0),
                "qk_rope_head_dim": _count("qk_rope_head_dim", default=0),
                "ffn_dim": _count("ffn_dim"),
                "ffn_kind": Field("str", required=False, default="gelu", choices=FFN_KINDS),
                "vocab_size": _count("vocab_size"),
                "tied_embeddings": Field("bool", required=False, default=False),
                "parallel_blocks": Field("bool", required=False, default=False),
                "parallel_shared_norm": Field("bool", required=False, default=False),
                "expert_bias": Field("bool", required=False, default=False),
                "experts": _count("experts"),
                "experts_per_token": _count("experts_per_token"),
                "shared_experts": _count("shared_experts", default=0),
                "moe_ffn_dim": _count("moe_ffn_dim"),
                "moe_latent_dim": _count("moe_latent_dim", default=0),
                "dense_layers": _count("dense_layers", default=0),
                "route_max_domains": _count("route_max_domains", default=0),
                "sliding_window": _count("sliding_window", default=0),
                "window_layers": _count("window_layers", default=0),
                "mtp_layers": _count("mtp_layers", default=0),
                "attention_layers": _count("attention_layers"),
                "mamba_layers": _count("mamba_layers", default=0),
                "mamba_heads": _count("mamba_heads", default=0),
                "mamba_head_dim": _count("mamba_head_dim", default=64),
                "mamba_state_dim": _count("mamba_state_dim", default=128),
                "mamba_groups": _count("mamba_groups", default=8),
                "mamba_chunk": _count("mamba_chunk", default=128),
                "total_params": _count("total_params"),
                "active_params": _count("active_params"),
            }
        ),
        "training": Table(
            {
                "tokens": _count("tokens"),
                "seq_len": _count("seq_len", required=True),
                "global_batch_tokens": _count("global_batch_tokens"),
                "precision": Field("str", required=False, default="bf16", choices=PRECISIONS),
                "algorithm": Field(
                    "str",
                    required=False,
                    default="backprop",
                    choices=ALGORITHMS,
                ),
                "attention": Field(
                    "str", required=False, default="flash", choices=ATTENTION_KERNELS
                ),
                "dropout": Field("number", required=False, default=0.0, minimum=0.0, maximum=0.99),
                "fp8_casts": Field("str", required=False, default="fused", choices=FP8_CASTS),
                "attention_precision": Field(
                    "str", required=False, default="bf16", choices=ATTENTION_PRECISIONS
                ),
                "expert_bias_add": Field(
                    "str", required=False, default="fused", choices=EXPERT_BIAS_ADDS
                ),
                "moe_permutation": Field(
                    "str", required=False, default="fused", choices=MOE_PERMUTATIONS
                ),
                "embedding": Field("str", required=False, default="lookup", choices=EMBEDDINGS),
                "attention_blocks": ATTENTION_BLOCKS_FIELD,
                "attention_backward": Field(
                    "str", required=False, default="fused", choices=ATTENTION_BACKWARDS
                ),
                "context_parallel": Field(
                    "str", required=False, default="ring", choices=CONTEXT_PARALLEL
                ),
                "compiler": Field("str", required=False, default="eager", choices=COMPILERS),
                "moe_dispatcher": Field(
                    "str", required=False, default="alltoall", choices=MOE_DISPATCHERS
                ),
                "repeat_kv": Field("bool", required=False, default=False),
                "sequence_parallel": Field("bool", required=False, default=True),
            }
        ),
    }
)

MAX_PARAMS_OVER_SHAPE = 1.25
"""Most a given parameter count may exceed the one the file's shape implies (the catalog's
largest is 1.08, Gopher). More would count model FLOPs that the shape's matmuls never do
(MFU > 1). A shape derived from ``total_params`` alone is exempt (its rounding)."""

_SHAPE_KEYS = ("layers", "d_model", "heads", "ffn_dim", "vocab_size")


@dataclass(frozen=True)
class Workload:
    """A transformer training run. Counts are plain numbers; shapes are whole numbers.

    ``experts == 0`` means a dense model. ``total_params`` and ``active_params`` include the
    embeddings; ``matmul_params`` (see :func:`param_counts`) are those touched by matmuls.
    """

    id: str
    name: str
    source: str
    notes: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn_dim: int
    ffn_kind: str
    vocab_size: int
    tied_embeddings: bool
    experts: int
    experts_per_token: int
    shared_experts: int
    moe_ffn_dim: int
    dense_layers: int
    route_max_domains: int
    """Node-limited routing: a token's experts lie in at most this many scale-up domains
    (DeepSeek-V3: 4 nodes); 0 = unlimited."""
    total_params: float
    active_params: float
    tokens: float
    seq_len: int
    global_batch_tokens: float
    precision: str
    shape_only_params: bool  # True when the counts came from the shape, not an override
    global_batch_default: bool = False
    """True when the file gives no ``global_batch_tokens`` and the batch is the documented
    default (:data:`DEFAULT_BATCH_TOKENS`)."""
    training_algorithm: str = "backprop"
    """``dse/algorithms.toml`` id (docs/model.md §2.10)."""
    dropout: float = 0.0
    """Dropout probability of the attention and MLP outputs (and, with materialized attention, of
    the attention probabilities); masks are stored only when it is above 0 (§2.5)."""
    attention_kernel: str = "flash"
    """How attention is computed (:data:`ATTENTION_KERNELS`): ``flash`` stores no score matrix
    for the backward pass, ``materialized`` stores it (docs/model.md §2.5); ``flash2`` is
    FlashAttention-2's kernel, a fused one that is slower than the measured kernel on chips
    where a faster one exists (Hopper: ``flash2_attention_ratio``, docs/model.md §2.6)."""
    fp8_casts: str = "fused"
    """How an fp8/fp4 run casts its GEMM operands (:data:`FP8_CASTS`, docs/model.md §2.6)."""
    attention_precision: str = "bf16"
    """The format of the fused attention's score matmuls (:data:`ATTENTION_PRECISIONS`,
    docs/model.md §2.6)."""
    expert_bias: bool = False
    """The routed experts' linear layers carry biases (gpt-oss), the output one scaled by the
    token's router probability (docs/model.md §2.6)."""
    expert_bias_add: str = "fused"
    """How the run adds that bias (:data:`EXPERT_BIAS_ADDS`, docs/model.md §2.6)."""
    moe_permutation: str = "fused"
    """How the run permutes its routed tokens (:data:`MOE_PERMUTATIONS`, docs/model.md §2.6)."""
    embedding: str = "lookup"
    """How the run finds its tokens' embeddings (:data:`EMBEDDINGS`, docs/model.md §2.6)."""
    attention_blocks: tuple[float, ...] = ()
    """The fused attention kernel's blocks (tokens), :data:`ATTENTION_BLOCK_KEYS` in order
    (:func:`attention_block_sizes`); empty: the measured per-sequence overhead
    ``attention_overhead_tokens`` stands for them (docs/model.md §2.6)."""
    attention_backward: str = "fused"
    """One backward attention kernel or a split dK/dV and dQ pair (:data:`ATTENTION_BACKWARDS`,
    docs/model.md §2.6)."""
    context_parallel: str = "ring"
    """How context parallelism exchanges keys and values (:data:`CONTEXT_PARALLEL`, §2.7)."""
    compiler: str = "eager"
    """Whether the memory-bound operators run eagerly or fused by a graph compiler
    (:data:`COMPILERS`, docs/model.md §2.6)."""
    moe_dispatcher: str = "alltoall"
    """How the MoE layers send tokens to their experts' ranks (:data:`MOE_DISPATCHERS`, §2.7)."""
    sequence_parallel: bool = True
    """With tensor parallelism, the operators on the residual stream (normalizations, residual
    additions, dropout) run on each rank's share of the tokens (Megatron-LM's sequence
    parallelism, Korthikanti et al. 2022, in every current stack); False: every tensor-parallel
    rank holds and processes the whole residual stream (Megatron-LM before 2022, Megatron-
    DeepSpeed, GPT-NeoX), docs/model.md §2.5-2.6."""
    repeat_kv: bool = False
    """The training code repeats each key/value head for its group of query heads before
    attention (torchtitan's Llama ``repeat_kv``), so context parallelism exchanges the ``H/t``
    repeated heads rather than the ``H_kv/t`` grouped ones (§2.7)."""
    sliding_window: int = 0
    """Tokens each query attends to in the sliding-window layers (a query sees itself and the
    ``sliding_window − 1`` tokens before it; gpt-oss: 128, Mistral 7B: 4,096); 0 = none."""
    window_layers: int = 0
    """How many of the layers use the sliding window (gpt-oss: every other one); the rest
    attend causally over the whole sequence (docs/model.md §2.2, §2.6)."""
    mtp_layers: int = 0
    """Multi-token-prediction modules after the last layer (DeepSeek-V3: 1), each a
    transformer layer and a second pass through the output layer that only the pipeline's last
    stage runs (docs/model.md §2.7); left out of the parameter counts, as published."""
    parallel_blocks: bool = False
    """Attention and MLP read the layer's input side by side and their outputs join the residual
    together (GPT-J, GPT-NeoX/Pythia, PaLM, Falcon): fewer tensor-parallel collectives than
    sequential blocks (docs/model.md §2.7)."""
    parallel_shared_norm: bool = False
    """A parallel block's two branches read one normalization of the input (GPT-J, PaLM) rather
    than one each (GPT-NeoX, Falcon-180B): one gather and one stored output fewer."""
    forward_gemms: float = 1.0
    """Forward-type GEMMs per linear layer and token (forward pass, relaxation iterations)."""
    input_gradient_gemms: float = 1.0
    """Input-gradient GEMMs per linear layer and token (0 without backpropagation)."""
    weight_gradient_gemms: float = 1.0
    """Weight-update GEMMs per linear layer and token."""
    q_lora_rank: int = 0
    """Multi-head Latent Attention (MLA): rank of the queries' low-rank compression (DeepSeek-V3:
    1,536); 0 = queries projected at full rank (DeepSeek-V2-Lite). Only with ``kv_lora_rank``."""
    kv_lora_rank: int = 0
    """MLA: rank of the compressed key/value latent (DeepSeek-V3: 512); 0 = no MLA, the
    attention is multi-head or grouped-query (docs/model.md §2.1)."""
    qk_rope_head_dim: int = 0
    """MLA: the decoupled rotary part of each query and key head (DeepSeek-V3: 64), beside its
    ``head_dim`` (128) part that the latent up-projects; values are ``head_dim`` wide."""
    attention_layers: int | None = None
    """Hybrid models (docs/model.md §2.11): how many attention blocks the model has, ``None`` for
    one in each of its ``layers`` (every transformer). A hybrid's ``layers`` count its MLP or MoE
    blocks; its attention and Mamba blocks are spread over them, so one of the model's layers
    holds ``attention_layers / layers`` attention blocks and ``mamba_layers / layers`` Mamba
    blocks on average (Nemotron-H 8B: 24 MLP, 4 attention, 24 Mamba-2 blocks)."""
    mamba_layers: int = 0
    """Hybrid models: how many Mamba-2 mixer blocks (Dao & Gu 2024, arXiv:2405.21060) the model
    has; 0 for a transformer (docs/model.md §2.11)."""
    mamba_heads: int = 0
    """Mamba-2: SSM heads of each Mamba block (its inner width is ``mamba_heads ·
    mamba_head_dim``)."""
    mamba_head_dim: int = 64
    """Mamba-2: channels per SSM head (``headdim``, P; 64 in Mamba-2 and Nemotron-H)."""
    mamba_state_dim: int = 128
    """Mamba-2: state size per head (``d_state``, N; 128 in Nemotron-H)."""
    mamba_groups: int = 8
    """Mamba-2: groups sharing one B and C projection (``ngroups``, G; 8 in Nemotron-H)."""
    mamba_chunk: int = 128
    """Mamba-2: tokens per chunk of the SSD algorithm (``chunk_size``, Q; 128 in Nemotron-H)."""
    moe_latent_dim: int = 0
    """Latent MoE (Nemotron 3 Super; docs/model.md §2.12): the width of the latent the routed
    experts read and write, each MoE layer projecting the routed tokens down to it before the
    dispatch and up from it after the combine; 0 = the experts work on ``d_model``."""
    analog_linear: bool = False
    """True for the view of an analog design's digital units: the forward-type and
    input-gradient GEMMs run in the analog tiles (docs/model.md §2.9). Set by the model only."""

    @property
    def linear_gemms(self) -> float:
        """GEMMs per linear layer and token of the training algorithm (backprop: 3)."""
        return self.forward_gemms + self.input_gradient_gemms + self.weight_gradient_gemms

    @property
    def analog_linear_gemms(self) -> float:
        """GEMMs per linear layer and token that analog tiles can run (forward and input
        gradient)."""
        return self.forward_gemms + self.input_gradient_gemms

    @property
    def digital_linear_gemms(self) -> float:
        """GEMMs per linear layer and token on the digital units: all of them, or the weight
        updates alone on an analog design (§2.9)."""
        return self.weight_gradient_gemms if self.analog_linear else self.linear_gemms

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def eager_expert_bias(self) -> bool:
        """The run adds its routed experts' bias in eager PyTorch (Megatron-Core's
        ``TEGroupedMLP._apply_bias``, §2.6): the workload has one and ``expert_bias_add`` is
        ``eager``."""
        return self.expert_bias and self.expert_bias_add == "eager"

    @property
    def is_mla(self) -> bool:
        """Multi-head Latent Attention (``kv_lora_rank`` > 0)."""
        return self.kv_lora_rank > 0

    @property
    def attention_count(self) -> int:
        """Attention blocks of the model: ``attention_layers``, or one per layer."""
        return self.layers if self.attention_layers is None else self.attention_layers

    @property
    def is_hybrid(self) -> bool:
        """Some layers mix tokens with Mamba blocks or have no attention (§2.11)."""
        return self.mamba_layers > 0 or self.attention_count != self.layers

    @property
    def attention_share(self) -> float:
        """Attention blocks per layer (1 in a transformer)."""
        return self.attention_count / self.layers

    @property
    def mamba_share(self) -> float:
        """Mamba blocks per layer (0 in a transformer)."""
        return self.mamba_layers / self.layers

    @property
    def blocks_per_layer(self) -> float:
        """Residual blocks per layer, each with its normalization and residual addition: the
        MLP's and the mixers' (2 in a sequential transformer layer)."""
        return 1.0 + self.attention_share + self.mamba_share

    def per_layer_mixers(self, attention: Any, mamba: Any) -> Any:
        """A per-layer quantity of the token mixers (§2.11): one attention block's
        ``attention`` in a transformer; in a hybrid, its shares of attention and Mamba blocks,
        ``a·attention + m·mamba`` (any numbers or arrays that broadcast)."""
        if not self.is_hybrid:
            return attention
        return self.attention_share * attention + self.mamba_share * mamba

    @property
    def routed_dim(self) -> int:
        """Width of the tokens the routed experts read, write and exchange: the latent of a
        latent MoE (§2.12), else ``d_model``."""
        return self.moe_latent_dim or self.d_model

    @property
    def mamba_inner(self) -> int:
        """Mamba-2: the inner width ``H_m · P`` (twice ``d_model`` in Mamba-2's default)."""
        return self.mamba_heads * self.mamba_head_dim

    @property
    def mamba_bc_width(self) -> int:
        """Mamba-2: the width of the B and C projections together, ``2·G·N``."""
        return 2 * self.mamba_groups * self.mamba_state_dim

    @property
    def mamba_in_width(self) -> int:
        """Mamba-2: the in-projection's outputs per token, ``z``, ``x``, ``B``, ``C`` and the
        heads' step sizes ``dt``: ``2·H_m·P + 2·G·N + H_m``."""
        return 2 * self.mamba_inner + self.mamba_bc_width + self.mamba_heads

    @property
    def qk_head_dim(self) -> int:
        """Width of each query and key head: ``head_dim`` plus MLA's rotary part (§2.2)."""
        return self.head_dim + self.qk_rope_head_dim

    @property
    def key_value_width(self) -> int:
        """Width of one head's key plus its value, the query/key width plus the value width that
        each score's matmuls run over: ``2·h_d``, and ``h_d + h_r + h_d`` with MLA's rotary
        part ``h_r`` (DeepSeek-V3: 192 + 128; §2.2, §2.7)."""
        return self.qk_head_dim + self.head_dim

    @property
    def ffn_matrices(self) -> int:
        return 3 if self.ffn_kind == "swiglu" else 2

    @property
    def moe_k(self) -> float:
        """Total over active parameters: the factor K by which MoE divides the compute."""
        return self.total_params / self.active_params

    @property
    def expert_params(self) -> float:
        """Parameters of the routed experts (sharded by expert parallelism)."""
        if not self.is_moe:
            return 0.0
        moe_layers = self.layers - self.dense_layers
        per_expert = self.ffn_matrices * self.routed_dim * self.moe_ffn_dim
        derived = moe_layers * self.experts * per_expert
        return derived * self.total_params / max(shape_params(self)[0], 1.0)

    @property
    def global_batch_sequences(self) -> float:
        return max(round(self.global_batch_tokens / self.seq_len), 1)

    def with_changes(self, **changes: object) -> Workload:
        """A copy with some fields replaced (used by levers and command-line overrides)."""
        values = dict(vars(self))
        if "global_batch_tokens" in changes:  # a batch given is no longer the default
            values["global_batch_default"] = False
        values.update(changes)
        return Workload(**values)


def with_algorithm(w: Workload, algorithm: str) -> Workload:
    """``w`` trained with ``algorithm`` (an id of ``dse/algorithms.toml``, §2.10)."""
    return w.with_changes(training_algorithm=algorithm, **_algorithm_gemms(algorithm))


def _algorithm_gemms(algorithm: str) -> dict[str, Any]:
    entry = training_algorithms()[algorithm]
    return {key: float(entry[key]) for key in _ALGORITHM_GEMMS}


def shape_params(w: Workload) -> tuple[float, float]:
    """§2.1 Total and active parameters derived from the shape (embeddings included).

    Per layer: attention d·(H·hd) for Q and O, d·(KV·hd) for K and V; MLP m·d·f with m = 3 for
    SwiGLU and 2 for GELU; MoE layers hold ``experts`` routed plus ``shared_experts`` expert
    MLPs of width ``moe_ffn_dim`` and a router d·E. Embeddings V·d, twice when untied.
    """
    d, hd = w.d_model, w.head_dim
    if w.is_mla:
        attention = sum(int(p.inputs * p.outputs) for p in mla_projections(w))
    else:
        attention = 2 * d * w.heads * hd + 2 * d * w.kv_heads * hd
    dense_mlp = w.ffn_matrices * d * w.ffn_dim
    embeddings = w.vocab_size * d * (1 if w.tied_embeddings else 2)
    mixers = w.layers * attention
    if w.is_hybrid:
        mixers = w.attention_count * attention + w.mamba_layers * mamba_block_params(w)
    if not w.experts:
        total = embeddings + mixers + w.layers * dense_mlp
        return float(total), float(total)
    moe_layers = w.layers - w.dense_layers
    expert = w.ffn_matrices * d * w.moe_ffn_dim
    base = embeddings + mixers + w.dense_layers * dense_mlp + moe_layers * d * w.experts
    if w.moe_latent_dim:  # §2.12 routed experts in the latent, its two projections per layer
        routed = w.ffn_matrices * w.moe_latent_dim * w.moe_ffn_dim
        base += moe_layers * (2 * d * w.moe_latent_dim + w.shared_experts * expert)
        total = base + moe_layers * w.experts * routed
        return float(total), float(base + moe_layers * w.experts_per_token * routed)
    total = base + moe_layers * (w.experts + w.shared_experts) * expert
    active = base + moe_layers * (w.experts_per_token + w.shared_experts) * expert
    return float(total), float(active)


def mamba_block_params(w: Workload) -> int:
    """§2.11 Parameters of one Mamba-2 mixer block (Dao & Gu 2024, arXiv:2405.21060, Sec. 7;
    Megatron-Core ``MambaMixer``): the in-projection ``d → 2·H_m·P + 2·G·N + H_m``, the
    depthwise causal convolution over ``x``, ``B`` and ``C`` (4 taps each), and the
    out-projection ``H_m·P → d``; the heads' ``A``, ``D`` and step biases and the gated norm's
    weights (``3·H_m + H_m·P``) are left out, as the normalizations are everywhere."""
    conv_channels = w.mamba_inner + w.mamba_bc_width
    return (
        w.d_model * w.mamba_in_width + MAMBA_CONV_TAPS * conv_channels + w.mamba_inner * w.d_model
    )


MAMBA_CONV_TAPS = 4
"""[P] Taps of Mamba-2's depthwise causal convolution (``d_conv`` = 4 in Mamba-2, Nemotron-H and
Megatron-Core's ``MambaMixer``)."""


@dataclass(frozen=True)
class Projection:
    """One linear layer of attention: ``inputs`` → ``outputs`` features per token, and what
    tensor parallelism splits: ``outputs`` (column-parallel), ``inputs`` (row-parallel) or
    ``tokens`` (run on each rank's sequence-parallel share of the tokens)."""

    inputs: float
    outputs: float
    split: str


def mla_projections(w: Workload) -> tuple[Projection, ...]:
    """§2.1 Multi-head Latent Attention's linear layers in forward order (DeepSeek-AI 2024,
    DeepSeek-V2, arXiv:2405.04434, Sec. 2.1.2-2.1.3; Megatron-Core ``MLASelfAttention``):

    - queries: down to ``q_lora_rank`` and up to ``H·(h_d + h_r)``, or one projection to it
      where ``q_lora_rank`` is 0;
    - keys and values: down to the latent ``kv_lora_rank`` plus the shared rotary key ``h_r``,
      then the latent up to ``H·2·h_d`` (each head's key part and value);
    - the output projection from ``H·h_d``.

    The down projections run on each rank's sequence-parallel tokens (Megatron gathers the
    small latents, not the layer's input), the up projections are column-parallel, the output
    projection row-parallel."""
    d, heads, hd = float(w.d_model), float(w.heads), float(w.head_dim)
    qk = float(w.qk_head_dim)
    queries: tuple[Projection, ...]
    if w.q_lora_rank:
        queries = (
            Projection(d, float(w.q_lora_rank), "tokens"),
            Projection(float(w.q_lora_rank), heads * qk, "outputs"),
        )
    else:
        queries = (Projection(d, heads * qk, "outputs"),)
    latent = float(w.kv_lora_rank)
    keys_values = (
        Projection(d, latent + w.qk_rope_head_dim, "tokens"),
        Projection(latent, heads * 2.0 * hd, "outputs"),
    )
    return (*queries, *keys_values, Projection(heads * hd, d, "inputs"))


def standard_shape(total_params: float) -> dict[str, int]:
    """The standard shape for a parameter count: d ≈ 128·L, GELU MLP of 4·d, 12·L·d² ≈ P.

    d is rounded to a multiple of 8 heads of 128 so that tensor parallelism up to 8 (and
    beyond, for large models) divides the heads.
    """
    layers = max(round((total_params / (12.0 * STANDARD_ASPECT_RATIO**2)) ** (1.0 / 3.0)), 2)
    quantum = 8 * STANDARD_HEAD_DIM
    d_model = max(round(STANDARD_ASPECT_RATIO * layers / quantum), 1) * quantum
    return {
        "layers": layers,
        "d_model": d_model,
        "heads": d_model // STANDARD_HEAD_DIM,
        "ffn_dim": 4 * d_model,
        "vocab_size": 50257,
    }


def workload_ids() -> list[str]:
    """Ids of the shipped workloads."""
    return catalog_ids("workloads")


def load_workload(name: str | Path) -> Workload:
    """Load a workload by catalog id or TOML path, validated."""
    path = resolve("workloads", name)
    values = check(read_toml(path), WORKLOAD_SCHEMA, path)
    return build_workload(path.stem, values, path)


def build_workload(workload_id: str, values: dict, source: str | Path) -> Workload:
    """Turn validated TOML values into a :class:`Workload` (shared by files and the CLI).

    Each rule a value breaks raises one :class:`InputError` line naming ``source`` and the
    key."""
    model = dict(values["model"])
    given = _complete_shape(model, source)
    _check_attention_shape(model, source)
    _check_window(source, model)
    _check_experts(model, source)
    _check_mamba(model, source)
    draft = _draft_workload(workload_id, values, model, source)
    total, active = _parameter_counts(draft, model, bool(given), source)
    tokens, batch_tokens, defaulted = _training_budget(values["training"], total, source)
    overridden = model["total_params"] is not None or model["active_params"] is not None
    return draft.with_changes(
        total_params=total,
        active_params=active,
        tokens=tokens,
        shape_only_params=not overridden,
        global_batch_tokens=batch_tokens,
        global_batch_default=defaulted,
    )


def _complete_shape(model: dict[str, Any], source: str | Path) -> list[str]:
    """The shape keys the file gives; with none, ``model`` gets the standard shape of its
    ``total_params`` (in place). A partial shape is an error."""
    given = [key for key in _SHAPE_KEYS if model[key] is not None]
    if not given:
        if model["total_params"] is None:
            raise InputError(
                source,
                "model",
                f"either the shape ({', '.join(_SHAPE_KEYS)}) or total_params",
                "neither",
            )
        model.update(standard_shape(model["total_params"]))
    elif len(given) < len(_SHAPE_KEYS):
        missing = next(key for key in _SHAPE_KEYS if model[key] is None)
        raise InputError(
            source,
            f"model.{missing}",
            "a whole number > 0 (the shape is incomplete)",
            "nothing (missing)",
        )
    return given


def _check_attention_shape(model: dict[str, Any], source: str | Path) -> None:
    """Heads that split d_model (or a given head_dim), kv heads that split the heads, and a
    shared norm only in parallel blocks."""
    heads = model["heads"]
    if model["d_model"] % heads and model["head_dim"] is None:
        raise InputError(
            source,
            "model.heads",
            f"a divisor of d_model ({model['d_model']}) or head_dim given",
            heads,
        )
    kv_heads = model["kv_heads"] or heads
    if heads % kv_heads:
        raise InputError(source, "model.kv_heads", f"a divisor of heads ({heads})", kv_heads)
    _check_latent_attention(model, source)
    if model["parallel_shared_norm"] and not model["parallel_blocks"]:
        raise InputError(
            source,
            "model.parallel_shared_norm",
            "false unless parallel_blocks = true (a sequential block normalizes two inputs)",
            True,
        )


def _check_latent_attention(model: dict[str, Any], source: str | Path) -> None:
    """MLA's query rank and rotary head go with its key/value latent, and it up-projects every
    head's key and value (no grouped-query heads)."""
    if not model["kv_lora_rank"]:
        for key in ("q_lora_rank", "qk_rope_head_dim"):
            if model[key]:
                raise InputError(
                    source,
                    f"model.{key}",
                    "0 unless kv_lora_rank > 0 (Multi-head Latent Attention)",
                    model[key],
                )
        return
    if model["kv_heads"] not in (None, model["heads"]):
        raise InputError(
            source,
            "model.kv_heads",
            f"heads ({model['heads']}) or nothing: MLA up-projects every head's key and value",
            model["kv_heads"],
        )


def _check_experts(model: dict[str, Any], source: str | Path) -> None:
    """A Mixture of Experts names its routing and expert width, routes to at most its experts
    and keeps at least one MoE layer."""
    experts = model["experts"] or 0
    if model["moe_latent_dim"] and not experts:
        raise InputError(
            source,
            "model.moe_latent_dim",
            "0 unless experts > 0 (a latent MoE)",
            model["moe_latent_dim"],
        )
    if not experts:
        return
    for key in ("experts_per_token", "moe_ffn_dim"):
        if model[key] is None:
            raise InputError(
                source,
                f"model.{key}",
                "a whole number > 0 for a Mixture of Experts",
                "nothing (missing)",
            )
    if model["experts_per_token"] > experts:
        raise InputError(
            source,
            "model.experts_per_token",
            f"at most experts ({experts})",
            model["experts_per_token"],
        )
    if model["dense_layers"] >= model["layers"]:
        raise InputError(
            source,
            "model.dense_layers",
            f"fewer than layers ({model['layers']})",
            model["dense_layers"],
        )


def _check_mamba(model: dict[str, Any], source: str | Path) -> None:
    """A hybrid's Mamba blocks name their heads, which its groups split; its blocks mix tokens
    with attention, Mamba or both; and it is built of sequential blocks without MLA (the model
    has no such hybrid, docs/model.md §2.11)."""
    mamba, heads = model["mamba_layers"], model["mamba_heads"]
    if mamba and not heads:
        raise InputError(source, "model.mamba_heads", "a whole number > 0 with mamba_layers", heads)
    if heads and not mamba:
        raise InputError(
            source, "model.mamba_heads", "0 unless mamba_layers > 0 (a hybrid model)", heads
        )
    if heads % model["mamba_groups"]:
        raise InputError(
            source,
            "model.mamba_groups",
            f"a divisor of mamba_heads ({heads})",
            model["mamba_groups"],
        )
    if model["attention_layers"] == 0 and not mamba:
        raise InputError(
            source,
            "model.attention_layers",
            "a whole number > 0 unless mamba_layers > 0 (the layers must mix tokens)",
            0,
        )
    hybrid = mamba or model["attention_layers"] not in (None, model["layers"])
    for key, expected in (("parallel_blocks", "false"), ("kv_lora_rank", "0")):
        if hybrid and model[key]:
            raise InputError(
                source,
                f"model.{key}",
                f"{expected} in a hybrid model (attention_layers or mamba_layers given)",
                model[key],
            )


def _draft_workload(
    workload_id: str, values: dict, model: dict[str, Any], source: str | Path
) -> Workload:
    """The workload of the checked values, its parameter counts and tokens still 0."""
    training = values["training"]
    heads, experts = model["heads"], model["experts"] or 0
    return Workload(
        id=workload_id,
        name=values["name"],
        source=values["source"],
        notes=values["notes"],
        layers=model["layers"],
        d_model=model["d_model"],
        heads=heads,
        kv_heads=model["kv_heads"] or heads,
        head_dim=model["head_dim"] or model["d_model"] // heads,
        ffn_dim=model["ffn_dim"],
        ffn_kind=model["ffn_kind"],
        vocab_size=model["vocab_size"],
        tied_embeddings=model["tied_embeddings"],
        experts=experts,
        experts_per_token=model["experts_per_token"] or 0,
        shared_experts=model["shared_experts"] if experts else 0,
        moe_ffn_dim=model["moe_ffn_dim"] or 0,
        moe_latent_dim=model["moe_latent_dim"] if experts else 0,
        dense_layers=model["dense_layers"] if experts else 0,
        route_max_domains=model["route_max_domains"] if experts else 0,
        q_lora_rank=model["q_lora_rank"],
        kv_lora_rank=model["kv_lora_rank"],
        qk_rope_head_dim=model["qk_rope_head_dim"],
        total_params=0.0,
        active_params=0.0,
        tokens=0.0,
        seq_len=training["seq_len"],
        global_batch_tokens=float(training["global_batch_tokens"] or training["seq_len"]),
        precision=training["precision"],
        shape_only_params=True,
        training_algorithm=training["algorithm"],
        attention_kernel=training["attention"],
        dropout=float(training["dropout"]),
        fp8_casts=training["fp8_casts"],
        attention_precision=training["attention_precision"],
        expert_bias=bool(model["expert_bias"]) and experts > 0,
        expert_bias_add=training["expert_bias_add"],
        moe_permutation=training["moe_permutation"],
        embedding=training["embedding"],
        attention_blocks=attention_block_sizes(
            training["attention_blocks"], source, "training.attention_blocks"
        ),
        attention_backward=training["attention_backward"],
        context_parallel=training["context_parallel"],
        compiler=training["compiler"],
        moe_dispatcher=training["moe_dispatcher"],
        repeat_kv=training["repeat_kv"],
        sequence_parallel=training["sequence_parallel"],
        parallel_blocks=model["parallel_blocks"],
        parallel_shared_norm=model["parallel_shared_norm"],
        sliding_window=model["sliding_window"],
        window_layers=model["window_layers"],
        mtp_layers=model["mtp_layers"],
        attention_layers=model["attention_layers"],
        mamba_layers=model["mamba_layers"],
        mamba_heads=model["mamba_heads"],
        mamba_head_dim=model["mamba_head_dim"],
        mamba_state_dim=model["mamba_state_dim"],
        mamba_groups=model["mamba_groups"],
        mamba_chunk=model["mamba_chunk"],
        **_algorithm_gemms(training["algorithm"]),
    )


def _parameter_counts(
    draft: Workload, model: dict[str, Any], shape_given: bool, source: str | Path
) -> tuple[float, float]:
    """Total and active parameters: the file's where given (within MAX_PARAMS_OVER_SHAPE of
    the shape's count when the shape is given too), else the shape's."""
    shape_total, shape_active = shape_params(draft)
    total = float(model["total_params"] or shape_total)
    if model["active_params"] is not None:
        active = float(model["active_params"])
    elif not draft.experts:
        active = total
    else:
        active = shape_active
    for key, count, derived in (
        ("total_params", total, shape_total),
        ("active_params", active, shape_active),
    ):
        if shape_given and model[key] is not None and count > MAX_PARAMS_OVER_SHAPE * derived:
            raise InputError(
                source,
                f"model.{key}",
                f"at most {MAX_PARAMS_OVER_SHAPE:g} x the count of the shape ({derived:.4g})",
                count,
            )
    if active > total:
        raise InputError(
            source, "model.active_params", f"at most total_params ({total:.4g})", active
        )
    return total, active


def _training_budget(
    training: dict[str, Any], total: float, source: str | Path
) -> tuple[float, float, bool]:
    """Tokens (Chinchilla's 20 per parameter unless given), the global batch in tokens
    (:func:`default_batch_tokens` unless given) and whether it was defaulted."""
    seq_len = training["seq_len"]
    tokens = float(training["tokens"] or CHINCHILLA_TOKENS_PER_PARAM * total)
    defaulted = training["global_batch_tokens"] is None
    batch = (
        default_batch_tokens(total, seq_len, tokens)
        if defaulted
        else training["global_batch_tokens"]
    )
    if batch < seq_len:
        raise InputError(
            source, "training.global_batch_tokens", f"at least seq_len ({seq_len})", batch
        )
    if tokens < batch:
        raise InputError(
            source,
            "training.tokens",
            f"at least one global batch ({batch:.4g} tokens)",
            tokens,
        )
    return tokens, float(batch), defaulted


def default_batch_tokens(total_params: float, seq_len: int, tokens: float = math.inf) -> float:
    """The global batch (tokens) of a workload that publishes none: GPT-3's batch for its size
    (:data:`DEFAULT_BATCH_TOKENS`), at most the run's ``tokens``, rounded to a whole number of
    ``seq_len`` sequences (rounded down), at least one."""
    batch = DEFAULT_BATCH_TOKENS[0][1]
    for params, size in DEFAULT_BATCH_TOKENS:
        if total_params >= params:
            batch = size
    batch = min(batch, tokens)
    return float(max(math.floor(batch / seq_len), 1) * seq_len)


def _check_window(source: str | Path, model: dict[str, Any]) -> None:
    """A sliding window needs the layers that use it, and those layers a window."""
    window, windowed = model["sliding_window"], model["window_layers"]
    attention = model["attention_layers"]
    if attention is not None and windowed > attention:
        raise InputError(
            source,
            "model.window_layers",
            f"at most attention_layers ({attention})",
            windowed,
        )
    if windowed > model["layers"]:
        raise InputError(
            source, "model.window_layers", f"at most layers ({model['layers']})", windowed
        )
    if bool(window) != bool(windowed):
        key, given = ("window_layers", windowed) if window else ("sliding_window", window)
        raise InputError(
            source,
            f"model.{key}",
            "a whole number > 0: sliding_window and window_layers go together",
            given,
        )


def attention_block_sizes(
    blocks: dict[str, float] | None, source: str | Path, key: str
) -> tuple[float, ...]:
    """The six blocks of :data:`ATTENTION_BLOCK_KEYS` (tokens) from a table that gives at least
    ``q`` and ``kv``, the backward blocks it leaves out taken from the forward ones; ``()`` for
    no table. Raises :class:`~dse.errors.InputError` naming ``key`` when ``q`` or ``kv`` is
    missing."""
    if not blocks:
        return ()
    for name in ("q", "kv"):
        if name not in blocks:
            raise InputError(
                source, f"{key}.{name}", "a block size in tokens (q and kv are needed)", "nothing"
            )
    q_dkv = blocks.get("q_dkv", blocks["q"])
    kv_dkv = blocks.get("kv_dkv", blocks["kv"])
    return tuple(
        float(v)
        for v in (
            blocks["q"],
            blocks["kv"],
            q_dkv,
            kv_dkv,
            blocks.get("q_dq", q_dkv),
            blocks.get("kv_dq", kv_dkv),
        )
    )


def attention_keys(w: Workload) -> tuple[float, float]:
    """§2.2 Keys per query that the model FLOPs count in a full-attention layer and in a
    sliding-window layer, in PaLM's convention (twice the keys a causal query attends to on
    average): ``s`` and ``2·w − w²/s`` with ``w = min(sliding_window, s)`` (a causal window
    computes ``s·w − w²/2`` scores per sequence)."""
    s = float(w.seq_len)
    window = min(float(w.sliding_window), s) if w.window_layers else s
    return s, 2.0 * window - window * window / s


def _counted_keys(w: Workload) -> tuple[float, float]:
    """§2.2 Keys per query summed over the full-attention layers and over the sliding-window
    layers (:func:`attention_keys` times each kind's layer count)."""
    full_keys, window_keys = attention_keys(w)
    return (w.attention_count - w.window_layers) * full_keys, w.window_layers * window_keys


def windowed_attention_share(w: Workload) -> float:
    """§2.2 Share of the model's attention FLOPs in its sliding-window layers (0 without)."""
    full, windowed = _counted_keys(w)
    if not full + windowed:  # no attention blocks (a pure Mamba model)
        return 0.0
    return windowed / (full + windowed)


def flops_per_token(w: Workload) -> tuple[float, float]:
    """§2.2 Model FLOPs per training token: (matmul part, sequence-mixing part).

    Matmuls: 6 FLOPs per active parameter that a matmul touches (the input-embedding lookup
    is no matmul, so untied models drop V·d), times the training algorithm's GEMMs per linear
    layer over backpropagation's 3 (§2.10). Attention scores: 12·L·H·hd·s (PaLM's
    convention, arXiv:2204.02311 App. B: QKᵀ and AV over the full sequence, ×3 for backward),
    6·L·H·(h_qk + h_v)·s where MLA's query/key heads are wider than its values;
    a sliding-window layer counts its window's keys instead (:func:`attention_keys`).
    The sequence-mixing part is attention's scores and a hybrid's Mamba-2 scans
    (:func:`mixer_flops_per_token`).
    """
    lookup = 0.0 if w.tied_embeddings else w.vocab_size * w.d_model
    # §2.10 other training algorithms: their GEMMs per linear layer over backprop's three
    # (attention scores are recomputed with every pass).
    passes = w.linear_gemms / 3.0
    matmul = 6.0 * max(w.active_params - lookup, 0.0) * passes
    scores, scans = mixer_flops_per_token(w)
    return matmul, scores + scans


def mixer_flops_per_token(w: Workload) -> tuple[float, float]:
    """§2.2 Model FLOPs per training token of the sequence mixers beyond their projections:
    attention's scores, ``6·H·(h_qk + h_v)·k`` per attention block with ``k`` counted keys
    (:func:`attention_keys`), and the Mamba-2 blocks' SSD scans (:func:`ssd_flops_per_token`),
    each times the training algorithm's GEMMs per linear layer over backpropagation's 3."""
    passes = w.linear_gemms / 3.0
    scores = 6.0 * w.heads * w.key_value_width * sum(_counted_keys(w)) * passes
    return scores, w.mamba_layers * ssd_flops_per_token(w) * passes


def ssd_flops_per_token(w: Workload) -> float:
    """§2.11 Model FLOPs per token of one Mamba-2 block's SSD scan, forward and backward, in the
    chunked algorithm (Dao & Gu 2024, arXiv:2405.21060, Sec. 6): within each chunk of ``Q``
    tokens the ``G`` groups' C·Bᵀ (``2·Q·N`` FLOPs a token each) and its masked product with
    the heads' inputs (``2·Q·P`` a token and head); across chunks each head's chunk states
    Bᵀ·X and their read-out C·h (``2·N·P`` a token and head each). The backward pass counts
    twice the forward, as for the linear layers: ``3·(2·Q·N·G + H_m·(2·Q·P + 4·N·P))``; 0
    without Mamba blocks."""
    if not w.mamba_layers:
        return 0.0
    q, n, p = float(w.mamba_chunk), float(w.mamba_state_dim), float(w.mamba_head_dim)
    forward = 2.0 * q * n * w.mamba_groups + w.mamba_heads * (2.0 * q * p + 4.0 * n * p)
    return 3.0 * forward


def training_flops(w: Workload) -> float:
    """§2.2 Model FLOPs of the whole run: tokens × (matmul + attention) per token."""
    matmul, attention = flops_per_token(w)
    return w.tokens * (matmul + attention)
