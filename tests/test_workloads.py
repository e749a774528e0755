"""Workload shapes, parameter counts and FLOPs (issue 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.catalog.workloads import (
    flops_per_token,
    load_workload,
    shape_params,
    training_flops,
    workload_ids,
)

PUBLISHED_PARAMS = {
    "gpt3-175b": 175e9,
    "llama-65b": 65.2e9,
    "llama2-70b": 69e9,
    "llama3.1-405b": 405e9,
    "llama3.1-8b": 8.03e9,
    "mt-nlg-530b": 530e9,
    "bloom-176b": 176e9,
    "megatron-1t": 1.008e12,
}


@pytest.mark.parametrize(("workload_id", "params"), PUBLISHED_PARAMS.items())
def test_shape_gives_the_published_parameter_count(workload_id: str, params: float) -> None:
    workload = load_workload(workload_id)
    assert shape_params(workload)[0] == pytest.approx(params, rel=0.03)


def test_every_workload_loads_with_sane_flops() -> None:
    for workload_id in workload_ids():
        w = load_workload(workload_id)
        ratio = training_flops(w) / (6 * w.active_params * w.tokens)
        # attention adds 2·s·L·H·hd / N per token: a little at 2-8k tokens, more at 32k (Mixtral);
        # the input embedding is a lookup, no FLOPs: a benchmark cut to a few layers
        # (llama3.1-70b-proxy4) holds a fifth of its parameters there
        lookup = w.vocab_size * w.d_model / w.active_params
        assert 0.9 * (1 - lookup) < ratio < (1.5 if w.seq_len <= 8192 else 2.0), (
            workload_id,
            ratio,
        )
        assert w.active_params <= w.total_params


def test_mixture_of_experts_counts_active_parameters() -> None:
    mixtral = load_workload("mixtral-8x7b")
    total, active = shape_params(mixtral)
    assert total == pytest.approx(46.7e9, rel=0.02) and active == pytest.approx(12.9e9, rel=0.02)
    deepseek = load_workload("deepseek-v3")
    assert deepseek.moe_k == pytest.approx(671 / 37, rel=1e-6)
    assert deepseek.precision == "fp8"


def test_parameter_count_only_workload_is_compute_optimal(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        'name = "P"\nsource = "test"\n[model]\ntotal_params = 3e10\n[training]\nseq_len = 2048\nglobal_batch_tokens = 4e6\n'
    )
    w = load_workload(path)
    assert w.tokens == pytest.approx(20 * 3e10)
    assert w.total_params == 3e10
    assert training_flops(w) / (120 * 3e10**2) == pytest.approx(1.0, abs=0.3)


MLA_SHAPE = "[model]\nlayers = 2\nd_model = 256\nheads = 4\nffn_dim = 512\nvocab_size = 1000\n"


def test_deepseek_v3_shape_with_latent_attention_gives_its_published_counts() -> None:
    """MLA's projections (DeepSeek-V3 report, Sec. 2.1.1) make the shape 671B total / 37.5B
    active, where 128 full-rank heads of 128 would make it 688B / 55B."""
    deepseek = load_workload("deepseek-v3")
    total, active = shape_params(deepseek)
    assert total == pytest.approx(671e9, rel=0.002) and active == pytest.approx(37e9, rel=0.02)
    as_mha = deepseek.with_changes(q_lora_rank=0, kv_lora_rank=0, qk_rope_head_dim=0)
    assert shape_params(as_mha)[0] > 685e9
    # attention scores: QKᵀ over 128 + 64, PV over 128, against 2 x 128 for plain heads
    assert flops_per_token(deepseek)[1] / flops_per_token(as_mha)[1] == pytest.approx(320 / 256)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (
            "[model]\nlayers = 2\n[training]\nseq_len = 8\nglobal_batch_tokens = 64\n",
            "model.d_model",
        ),
        (
            "[model]\ntotal_params = -1\n[training]\nseq_len = 8\nglobal_batch_tokens = 64\n",
            "model.total_params",
        ),
        (
            "[model]\ntotal_params = 1e9\n[training]\nseq_len = 8\nglobal_batch_tokens = 4\n",
            "training.global_batch_tokens",
        ),
        (
            '[model]\ntotal_params = 1e9\n[training]\nseq_len = 8\nglobal_batch_tokens = 64\nprecision = "fp7"\n',
            "training.precision",
        ),
        (  # an MLA query rank without the key/value latent
            f"{MLA_SHAPE}q_lora_rank = 64\n[training]\nseq_len = 8\nglobal_batch_tokens = 64\n",
            "model.q_lora_rank",
        ),
        (  # grouped-query heads with MLA, which up-projects every head
            f"{MLA_SHAPE}kv_lora_rank = 32\nkv_heads = 2\n[training]\nseq_len = 8\nglobal_batch_tokens = 64\n",
            "model.kv_heads",
        ),
    ],
)
def test_bad_workload_files_name_the_key(dse, tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "w.toml"
    path.write_text('name = "W"\nsource = "test"\n' + body)
    result = dse("workloads", "show", path)
    assert result.code == 2 and key in result.err and str(path) in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_workloads_show_json_contract(dse) -> None:
    data = dse("workloads", "show", "llama3.1-405b", "--format", "json").json()
    for key in ("name", "total_params", "active_params", "tokens", "seq_len", "training_flops"):
        assert key in data
    assert data["training_flops"] == pytest.approx(6 * 405e9 * 15.6e12, rel=0.15)


NO_BATCH = 'name = "W"\nsource = "test"\n[model]\ntotal_params = {params}\n[training]\n{training}\n'


@pytest.mark.parametrize(
    ("params", "training", "batch"),
    [
        # GPT-3 Table 2.1 (arXiv:2005.14165): the largest GPT-3 model no larger than P.
        ("7e10", "seq_len = 4096", 488 * 4096),  # 13B's 2M tokens, whole sequences
        ("4e11", "seq_len = 2048", 1562 * 2048),  # 175B's 3.2M
        ("1e8", "seq_len = 2048", 244 * 2048),  # below 125M: the smallest's 0.5M
        ("1e9", "seq_len = 2048", 244 * 2048),  # 760M's 0.5M
        ("3e9", "seq_len = 1000", 1000 * 1000),  # 2.7B's 1M
        ("1e9", "seq_len = 1024\ntokens = 1e5", 97 * 1024),  # at most the run's tokens
    ],
)
def test_a_workload_without_a_batch_gets_the_documented_default(
    dse, tmp_path: Path, params: str, training: str, batch: int
) -> None:
    path = tmp_path / "w.toml"
    path.write_text(NO_BATCH.format(params=params, training=training))
    w = load_workload(path)
    assert w.global_batch_tokens == batch and w.global_batch_default
    shown = dse("workloads", "show", path, "--format", "json").json()
    assert shown["global_batch_tokens"] == batch and shown["global_batch_source"] == "default"
    table = dse("workloads", "show", path).out
    assert any(line.split() == ["global_batch_source", "default"] for line in table.splitlines())
    assert not w.with_changes(global_batch_tokens=4e6).global_batch_default


def test_a_published_batch_is_the_files(dse) -> None:
    shown = dse("workloads", "show", "llama3.1-405b", "--format", "json").json()
    assert shown["global_batch_tokens"] == 16e6 and shown["global_batch_source"] == "file"
    assert not load_workload("llama3.1-405b").global_batch_default


def test_a_workload_without_a_batch_evaluates(tmp_path: Path) -> None:
    import dse as api

    path = tmp_path / "w.toml"
    path.write_text(NO_BATCH.format(params="7e10", training="seq_len = 4096"))
    result = api.evaluate("h100-sxm", path, num_chips=1024)
    assert result.feasible and result.training_days > 0
