"""Measure what the training model assumes, on a real GPU: GEMM efficiency by shape and format,
attention, memory-bound operators, achieved HBM and host bandwidth, and board power under load.

Run on a machine with a CUDA GPU and PyTorch (the project's device machine)::

    OUT=/tmp/gpu python benchmarks/device/measure_gpu.py

Each section writes one CSV under ``$OUT`` as soon as it is done, so a run cut short still
returns what it measured. Method (docs/model.md §2.3, data/measurements/README.md):

- Times are medians of CUDA-event timings from ``triton.testing.do_bench``, which flushes the
  L2 cache before every repetition, after warm-up; inputs are random normal, never zeros.
- Rates count the useful FLOPs of the operation (2·M·N·K for a GEMM; attention as in
  FlashAttention: 4·b·h·s²·d forward, halved when causal, backward 2.5× forward) over the median
  time. Bandwidths count each byte read once plus each byte written once.
- Power is the board power that ``nvidia-smi`` reports every 100 ms while one operation runs in
  a loop for a few seconds; energy per FLOP is that power over the achieved FLOP rate.
- Clocks, power limit and every other setting of the card are left as found.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from triton.testing import do_bench

OUT = Path(os.environ.get("OUT", "/tmp/gpu_measurements"))
DEV = torch.device("cuda")
GIGA, TERA = 1e9, 1e12


def median_ms(fn: Callable[[], object], warmup: int = 5, rep: int = 25) -> float:
    """Median time of ``fn`` in ms (CUDA events, L2 flushed before each repetition)."""
    return float(do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))


def write_csv(name: str, rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    path = OUT / name
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path} ({len(rows)} rows)", flush=True)


def environment() -> dict[str, object]:
    props = torch.cuda.get_device_properties(0)
    smi = subprocess.run(
        [
            "nvidia-smi",
            "--query-gpu=name,driver_version,power.limit,clocks.max.sm,clocks.max.mem,memory.total",
            "--format=csv,noheader",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "device": props.name,
        "multiprocessors": props.multi_processor_count,
        "memory_gb": props.total_memory / GIGA,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "nvidia_smi": smi,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# ---- GEMM ----------------------------------------------------------------------------------


def _fp8_operands(m: int, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a = torch.randn(m, k, device=DEV).to(torch.float8_e4m3fn)
    b = torch.randn(n, k, device=DEV).to(torch.float8_e4m3fn).t()  # column-major, as cuBLASLt needs
    one = torch.ones((), device=DEV)
    return a, b, one


def gemm_fn(fmt: str, m: int, n: int, k: int) -> Callable[[], object]:
    """A GEMM C[m, n] = A[m, k] · B[k, n] in ``fmt`` (bf16 out for fp8)."""
    if fmt == "fp8":
        a, b, one = _fp8_operands(m, n, k)
        return lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32}[fmt]
    a = torch.randn(m, k, device=DEV, dtype=dtype)
    b = torch.randn(k, n, device=DEV, dtype=dtype)
    return lambda: a @ b


def gemm_grid(formats: tuple[str, ...], sizes: tuple[int, ...]) -> list[dict[str, object]]:
    rows = []
    for fmt in formats:
        for m in sizes:
            for n in sizes:
                for k in sizes:
                    try:
                        ms = median_ms(gemm_fn(fmt, m, n, k))
                    except Exception as exc:  # one bad shape must not end the run
                        print(f"gemm {fmt} {m}x{n}x{k}: {exc}", file=sys.stderr)
                        continue
                    rows.append(
                        {
                            "format": fmt,
                            "m": m,
                            "n": n,
                            "k": k,
                            "time_ms": ms,
                            "tflop_s": 2.0 * m * n * k / (ms * 1e-3) / TERA,
                        }
                    )
                    torch.cuda.empty_cache()
    return rows


def layer_gemms() -> list[dict[str, object]]:
    """The forward and both backward GEMMs of real transformer layers, per tensor-parallel rank.

    Layouts follow autograd: forward Y = X·Wᵀ, input gradient dX = dY·W, weight gradient
    dW = dYᵀ·X (a transposed, column-major operand).
    """
    models = {  # d_model, ffn_dim, heads, kv_heads, head_dim (config.json of each model)
        "llama3-8b": (4096, 14336, 32, 8, 128),
        "llama3-70b": (8192, 28672, 64, 8, 128),
        "llama3-405b": (16384, 53248, 128, 8, 128),
        "gpt3-175b": (12288, 49152, 96, 96, 128),
    }
    rows = []
    for name, (d, ffn, heads, kv, hd) in models.items():
        for tp in (1, 2, 4, 8):
            if heads % tp or (kv % tp and kv >= tp):
                continue
            kv_rank = max(kv // tp, 1)
            linears = {
                "qkv": (d, (heads // tp + 2 * kv_rank) * hd),
                "attn_out": ((heads // tp) * hd, d),
                "mlp_up": (d, 2 * ffn // tp if "llama" in name else ffn // tp),
                "mlp_down": (ffn // tp, d),
            }
            for tokens in (2048, 8192):
                for linear, (k_in, n_out) in linears.items():
                    rows.extend(_three_gemms(name, tp, tokens, linear, k_in, n_out))
    return rows


def _three_gemms(
    model: str, tp: int, tokens: int, linear: str, k_in: int, n_out: int
) -> list[dict[str, object]]:
    x = torch.randn(tokens, k_in, device=DEV, dtype=torch.bfloat16)
    w = torch.randn(n_out, k_in, device=DEV, dtype=torch.bfloat16)
    dy = torch.randn(tokens, n_out, device=DEV, dtype=torch.bfloat16)
    passes = {
        "forward": lambda: x @ w.t(),
        "input_grad": lambda: dy @ w,
        "weight_grad": lambda: dy.t() @ x,
    }
    flops = 2.0 * tokens * k_in * n_out
    rows = []
    for name, fn in passes.items():
        ms = median_ms(fn)
        rows.append(
            {
                "model": model,
                "tp": tp,
                "tokens": tokens,
                "linear": linear,
                "pass": name,
                "m": tokens,
                "n": n_out,
                "k": k_in,
                "time_ms": ms,
                "tflop_s": flops / (ms * 1e-3) / TERA,
            }
        )
    return rows


def batched_gemms() -> list[dict[str, object]]:
    """MoE experts as one batched GEMM (E experts × m tokens each): efficiency vs tokens/expert."""
    rows = []
    for d, ffn, experts in ((7168, 2048, 32), (4096, 1536, 32), (2048, 768, 64)):
        for m in (16, 32, 64, 128, 256, 512, 1024, 2048, 4096):
            x = torch.randn(experts, m, d, device=DEV, dtype=torch.bfloat16)
            w = torch.randn(experts, d, ffn, device=DEV, dtype=torch.bfloat16)
            ms = median_ms(lambda x=x, w=w: torch.bmm(x, w))
            rows.append(
                {
                    "experts": experts,
                    "tokens_per_expert": m,
                    "d_model": d,
                    "expert_ffn_dim": ffn,
                    "time_ms": ms,
                    "tflop_s": 2.0 * experts * m * d * ffn / (ms * 1e-3) / TERA,
                }
            )
    return rows


# ---- attention -----------------------------------------------------------------------------


def attention() -> list[dict[str, object]]:
    rows = []
    tokens = 32768
    for hd in (64, 128):
        heads = 2048 // hd  # model width 2048 per rank, as with tp 4..8 on 8k-16k models
        for seq in (1024, 2048, 4096, 8192, 16384, 32768):
            batch = max(tokens // seq, 1)
            for causal in (True, False):
                q, k, v = (
                    torch.randn(
                        batch, heads, seq, hd, device=DEV, dtype=torch.bfloat16, requires_grad=True
                    )
                    for _ in range(3)
                )
                out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                grad = torch.randn_like(out)
                fwd_ms = median_ms(
                    lambda q=q, k=k, v=v, c=causal: F.scaled_dot_product_attention(
                        q, k, v, is_causal=c
                    )
                )
                both_ms = median_ms(
                    lambda q=q, k=k, v=v, c=causal, g=grad: torch.autograd.grad(
                        F.scaled_dot_product_attention(q, k, v, is_causal=c), (q, k, v), g
                    )
                )
                flops_fwd = 4.0 * batch * heads * seq * seq * hd * (0.5 if causal else 1.0)
                rows.append(
                    {
                        "head_dim": hd,
                        "heads": heads,
                        "seq_len": seq,
                        "batch": batch,
                        "causal": causal,
                        "forward_ms": fwd_ms,
                        "forward_backward_ms": both_ms,
                        "forward_tflop_s": flops_fwd / (fwd_ms * 1e-3) / TERA,
                        "forward_backward_tflop_s": 3.5 * flops_fwd / (both_ms * 1e-3) / TERA,
                    }
                )
                del q, k, v, out, grad
                torch.cuda.empty_cache()
    return rows


# ---- memory-bound operators and bandwidth ----------------------------------------------------


def bandwidth() -> list[dict[str, object]]:
    rows = []
    for gib in (0.25, 1.0, 4.0):
        n = int(gib * 2**30 / 2)
        src = torch.randn(n, device=DEV, dtype=torch.bfloat16)
        dst = torch.empty_like(src)
        ops = {
            "copy": (lambda s=src, t=dst: t.copy_(s), 2 * src.nbytes),
            "read_sum": (lambda s=src: s.sum(dtype=torch.float32), src.nbytes),
            "write_fill": (lambda t=dst: t.fill_(1.0), dst.nbytes),
        }
        for name, (fn, nbytes) in ops.items():
            ms = median_ms(fn)
            rows.append(
                {"operation": name, "buffer_gib": gib, "time_ms": ms, "tb_s": nbytes / ms / 1e9}
            )
        del src, dst
        torch.cuda.empty_cache()
    host = torch.randn(int(2**30 / 4), dtype=torch.float32).pin_memory()
    device = torch.empty_like(host, device=DEV)
    for name, fn in (
        ("host_to_device", lambda: device.copy_(host, non_blocking=True)),
        ("device_to_host", lambda: host.copy_(device, non_blocking=True)),
    ):
        ms = median_ms(fn)
        rows.append(
            {"operation": name, "buffer_gib": 1.0, "time_ms": ms, "tb_s": host.nbytes / ms / 1e9}
        )
    return rows


def memory_bound_ops() -> list[dict[str, object]]:
    """Transformer operators that move bytes rather than FLOPs, as eager PyTorch runs them."""
    tokens, d, ffn, vocab = 8192, 8192, 28672 // 8, 128256 // 8
    x = torch.randn(tokens, d, device=DEV, dtype=torch.bfloat16)
    w = torch.ones(d, device=DEV, dtype=torch.bfloat16)
    gate_up = torch.randn(tokens, 2 * ffn, device=DEV, dtype=torch.bfloat16)
    logits = torch.randn(tokens, vocab, device=DEV, dtype=torch.bfloat16)
    target = torch.randint(0, vocab, (tokens,), device=DEV)
    residual = torch.randn_like(x)
    ops: dict[str, tuple[Callable[[], object], int]] = {
        "rms_norm": (lambda: F.rms_norm(x, (d,), w), 2 * x.nbytes),
        "layer_norm": (lambda: F.layer_norm(x, (d,)), 2 * x.nbytes),
        "residual_add": (lambda: x + residual, 3 * x.nbytes),
        "swiglu": (
            lambda: F.silu(gate_up[:, :ffn]) * gate_up[:, ffn:],
            gate_up.nbytes + gate_up.nbytes // 2,
        ),
        "gelu": (lambda: F.gelu(gate_up), 2 * gate_up.nbytes),
        "softmax": (lambda: torch.softmax(logits, dim=-1), 2 * logits.nbytes),
        "cross_entropy": (lambda: F.cross_entropy(logits, target), logits.nbytes),
        "dropout": (lambda: F.dropout(x, 0.1, training=True), 2 * x.nbytes),
    }
    rows = []
    for name, (fn, nbytes) in ops.items():
        ms = median_ms(fn)
        rows.append(
            {"operator": name, "time_ms": ms, "min_bytes": nbytes, "tb_s": nbytes / ms / 1e9}
        )
    rows.extend(_adam_step())
    return rows


FLOOR_TOKENS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
"""Token counts of :func:`memory_bound_floor`: from far below a short MLPerf step's per-rank
share (2,048 tokens at context parallelism 4) to a long-sequence micro-batch."""


def _per_launch_ms(fn: Callable[[], object], launches: int = 100) -> float:
    """Median time (ms) of one ``fn`` when ``launches`` of them replay from one CUDA graph: the
    kernels' own duration without the host's launch cost (a graph-captured step's case). L2 is
    flushed before each replay, not between its kernels: at small sizes all but the first find
    their inputs in L2, as a layer's next kernel often does."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up outside the capture (allocator, lazy init)
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(launches):
            fn()
    return median_ms(graph.replay) / launches


def memory_bound_floor() -> list[dict[str, object]]:
    """The fixed time of a small memory-bound kernel: RMSNorm, a residual add and SwiGLU of a
    4,096-wide layer at :data:`FLOOR_TOKENS`, each timed alone (host launch included, L2
    flushed) and back to back inside a CUDA graph. Fitting ``t = t0 + bytes/B`` over the token
    counts gives the floor ``t0`` per kernel that docs/model.md §2.6 leaves out of the
    memory-bound operators (the suspect of the strong-scaled MLPerf steps, §5)."""
    rows = []
    for tokens in FLOOR_TOKENS:
        for name, (fn, nbytes) in _layer_operators(tokens).items():
            rows.append(
                {
                    "operator": name,
                    "tokens": tokens,
                    "min_bytes": nbytes,
                    "time_ms": median_ms(fn),
                    "graph_time_ms": _per_launch_ms(fn),
                }
            )
    return rows


def _layer_operators(tokens: int) -> dict[str, tuple[Callable[[], object], int]]:
    """RMSNorm, residual add and SwiGLU of ``tokens`` tokens of a Llama 3.1 8B layer (d 4,096,
    FFN 14,336), each with the least bytes it moves."""
    d, ffn = 4096, 14336
    weight = torch.ones(d, device=DEV, dtype=torch.bfloat16)
    x = torch.randn(tokens, d, device=DEV, dtype=torch.bfloat16)
    residual = torch.randn_like(x)
    gate_up = torch.randn(tokens, 2 * ffn, device=DEV, dtype=torch.bfloat16)
    return {
        "rms_norm": (lambda: F.rms_norm(x, (d,), weight), 2 * x.nbytes),
        "residual_add": (lambda: x + residual, 3 * x.nbytes),
        "swiglu": (
            lambda: F.silu(gate_up[:, :ffn]) * gate_up[:, ffn:],
            gate_up.nbytes + gate_up.nbytes // 2,
        ),
    }


def _adam_step() -> list[dict[str, object]]:
    """Fused AdamW over 1e9 fp32 parameters in 8 tensors: the optimizer's time per parameter."""
    params = [torch.randn(125_000_000, device=DEV, requires_grad=True) for _ in range(8)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    opt.step()
    ms = median_ms(opt.step, warmup=20, rep=200)
    n = sum(p.numel() for p in params)
    nbytes = n * 4 * (4 + 3)  # read param, grad, m, v; write param, m, v
    return [
        {
            "operator": "adamw_fused_fp32",
            "time_ms": ms,
            "min_bytes": nbytes,
            "tb_s": nbytes / ms / 1e9,
        }
    ]


# ---- power -----------------------------------------------------------------------------------


class PowerSampler:
    """Board power (W) and SM clock (MHz) from ``nvidia-smi`` every 100 ms while running."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PowerSampler:
        self._proc = subprocess.Popen(
            [
                "nvidia-smi",
                "--query-gpu=power.draw,clocks.sm",
                "--format=csv,noheader,nounits",
                "-lms",
                "100",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                power, clock = (float(v) for v in line.split(","))
            except ValueError:
                continue
            self.samples.append((power, clock))

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.terminate()
        self._proc.wait()


def power_under_load(seconds: float = 5.0) -> list[dict[str, object]]:
    n = 8192
    loads: dict[str, tuple[Callable[[], object], float, float]] = {}
    a = torch.randn(n, n, device=DEV, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=DEV, dtype=torch.bfloat16)
    loads["gemm_bf16_8192"] = (lambda: a @ b, 2.0 * n**3, 0.0)
    a8, b8, one = _fp8_operands(n, n, n)
    loads["gemm_fp8_8192"] = (
        lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16),
        2.0 * n**3,
        0.0,
    )
    src = torch.randn(2**30, device=DEV, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    loads["hbm_copy_2gib"] = (lambda: dst.copy_(src), 0.0, 2.0 * src.nbytes)
    rows = [_idle_power()]
    for name, (fn, flops, nbytes) in loads.items():
        rows.append(_sustain(name, fn, flops, nbytes, seconds))
    return rows


def _idle_power() -> dict[str, object]:
    torch.cuda.synchronize()
    time.sleep(1.0)
    with PowerSampler() as sampler:
        time.sleep(2.0)
    power = [p for p, _ in sampler.samples]
    clock = [c for _, c in sampler.samples]
    return {
        "load": "idle",
        "seconds": 2.0,
        "avg_power_w": sum(power) / max(len(power), 1),
        "avg_sm_clock_mhz": sum(clock) / max(len(clock), 1),
        "tflop_s": 0.0,
        "tb_s": 0.0,
        "pj_per_flop": float("nan"),
        "pj_per_byte": float("nan"),
    }


def _sustain(
    name: str, fn: Callable[[], object], flops: float, nbytes: float, seconds: float
) -> dict[str, object]:
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    with PowerSampler() as sampler:
        start = time.perf_counter()
        calls = 0
        while time.perf_counter() - start < seconds:
            for _ in range(20):
                fn()
            calls += 20
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    steady = sampler.samples[len(sampler.samples) // 5 :]  # skip the ramp
    power = sum(p for p, _ in steady) / max(len(steady), 1)
    clock = sum(c for _, c in steady) / max(len(steady), 1)
    flop_s = flops * calls / elapsed
    byte_s = nbytes * calls / elapsed
    return {
        "load": name,
        "seconds": elapsed,
        "avg_power_w": power,
        "avg_sm_clock_mhz": clock,
        "tflop_s": flop_s / TERA,
        "tb_s": byte_s / TERA,
        "pj_per_flop": power / flop_s * 1e12 if flop_s else float("nan"),
        "pj_per_byte": power / byte_s * 1e12 if byte_s else float("nan"),
    }


# ---- main ------------------------------------------------------------------------------------


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    env = environment()
    (OUT / "environment.json").write_text(json.dumps(env, indent=2))
    print(json.dumps(env), flush=True)
    sections: list[tuple[str, Callable[[], list[dict[str, object]]]]] = [
        ("power.csv", power_under_load),
        ("bandwidth.csv", bandwidth),
        ("memory_bound.csv", memory_bound_ops),
        ("memory_bound_floor.csv", memory_bound_floor),
        ("attention.csv", attention),
        ("layer_gemm.csv", layer_gemms),
        ("moe_batched_gemm.csv", batched_gemms),
        (
            "gemm.csv",
            lambda: gemm_grid(("bf16", "fp8"), (256, 512, 1024, 2048, 4096, 8192, 16384)),
        ),
    ]
    for name, section in sections:
        start = time.perf_counter()
        try:
            rows = section()
        except Exception as exc:
            print(f"{name}: failed: {exc!r}", file=sys.stderr, flush=True)
            continue
        write_csv(name, rows)
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
        torch.cuda.empty_cache()
    summary(OUT)


def summary(out: Path) -> None:
    """A short table of the headline figures (the tool returns the end of the output)."""
    for name in ("power.csv", "bandwidth.csv", "memory_bound.csv"):
        path = out / name
        if path.exists():
            print(path.read_text())
    path = out / "gemm.csv"
    if path.exists():
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        for fmt in ("bf16", "fp8"):
            square = [r for r in rows if r["format"] == fmt and r["m"] == r["n"] == r["k"]]
            print(fmt, [(r["m"], round(float(r["tflop_s"]))) for r in square])


if __name__ == "__main__":
    main()
