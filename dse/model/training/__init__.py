"""The training model: a workload on ``n`` clusters of designed chips (docs/model.md §2).

Everything is evaluated on a grid of shape ``(n, k)``: designs along the first axis (arrays of
shape ``(n, 1)``), candidate plans along the second (``(1, k)``). One module per mechanism,
each a pure function over the grid:

========================  ======================================================  =========
module                    mechanism                                               section
========================  ======================================================  =========
``grid``                  the (designs × plans) grid, matmul rates per format     §2.3
``parallelism``           data parallelism, micro-batches, MoE folding            §2.4
``memory``                static state (ZeRO-1/FSDP) and activations              §2.1 §2.5
``compute``               GEMM roofline, layer linears, attention, memory-bound   §2.3 §2.6
``collectives``           TP, PP, CP, MoE all-to-all and DP communication         §2.7
``schedule``              1F1B, interleaved 1F1B and DualPipe                     §2.5 §2.7
``power``                 average chip power at the chosen plan                   §3.1
``step``                  composition, plan choice and results                    §2.4 §2.8
========================  ======================================================  =========
"""

from dse.model.training.collectives import (
    all_to_all_time_s,
    context_parallel_time_s,
    overlapped,
    ring_time,
)
from dse.model.training.compute import OPERAND_BYTES, gemm_time_s, layer_linear_time_s
from dse.model.training.grid import (
    FFN,
    FULL,
    MLA_UP_PROJ,
    MOE,
    NONE,
    OFFLOAD,
    OP,
    QKV_CONTEXT,
    QKV_LINEAR1,
    SELECTIVE,
    precision_flop_s,
)
from dse.model.training.schedule import interleaved_in_flight, pipeline_bubble_slots
from dse.model.training.step import CHUNK_CELLS, Training, evaluate_training

__all__ = [
    "CHUNK_CELLS",
    "FFN",
    "FULL",
    "MLA_UP_PROJ",
    "MOE",
    "NONE",
    "OFFLOAD",
    "OP",
    "OPERAND_BYTES",
    "QKV_CONTEXT",
    "QKV_LINEAR1",
    "SELECTIVE",
    "Training",
    "all_to_all_time_s",
    "context_parallel_time_s",
    "evaluate_training",
    "gemm_time_s",
    "interleaved_in_flight",
    "layer_linear_time_s",
    "overlapped",
    "pipeline_bubble_slots",
    "precision_flop_s",
    "ring_time",
]
