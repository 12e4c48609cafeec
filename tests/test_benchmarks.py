"""Smoke test of benchmarks/train_step.py: tiny models, CPU, one step - fields and sane values, no timing."""
import json

import pytest

from benchmarks import train_step
from tools.flops import finetune_cost, pretrain_flops

FRAMES, SIZE = 8, 64


def test_train_step_benchmark_json(tmp_path):
    """In-process run (one subprocess per configuration is the default; too slow for a test)."""
    out = tmp_path / 'perf.json'
    rc = train_step.main(['--device', 'cpu', '--models', 'T', 'PT', '--phases', 'train', 'infer',
                          '--dtypes', 'fp32', '--steps', '1', '--warmup', '1', '--batch_size', '2',
                          '--num_frames', str(FRAMES), '--input_size', str(SIZE), '--in_process', '--peak_size', '256',
                          '--json', str(out)])
    assert rc == 0
    from models.layers import get_attention_backend
    assert get_attention_backend() == 'sdpa'  # restored after the naive runs
    data = json.loads(out.read_text())
    meta = data['meta']
    for key in ('device', 'device_name', 'torch', 'command', 'matmul_peak_tflops', 'batch_size'):
        assert key in meta
    assert meta['matmul_peak_tflops']['fp32'] > 0

    expected_flops = {
        'svfap_tiny_patch16_160': finetune_cost('svfap_tiny_patch16_160', {}, FRAMES, SIZE)[1],
        'pretrain_svfap_tiny_patch16_160': pretrain_flops('pretrain_svfap_tiny_patch16_160', {}, 0.9, FRAMES, SIZE),
    }
    results = data['results']
    assert {(r['model'], r['phase']) for r in results} == {(m, p) for m in expected_flops for p in ('train', 'infer')}
    for r in results:
        assert r['status'] == 'ok', r.get('error')
        assert r['fvcore_flops_per_clip'] == expected_flops[r['model']]
        factor = 3 if r['phase'] == 'train' else 1
        assert r['flops_per_step'] == 2 * factor * r['fvcore_flops_per_clip'] * 2
        assert set(r['backends']) == {'sdpa', 'naive'}
        for b in r['backends'].values():
            assert b['clips_per_s'] > 0 and b['step_time_s'] > 0
            assert b['achieved_tflops'] > 0 and 0 < b['mfu']
            assert b['peak_mem_mb'] is None or b['peak_mem_mb'] > 0
        assert r['sdpa_speedup'] > 0
        assert r['clips_per_s'] == r['backends']['sdpa']['clips_per_s']
        if r['phase'] == 'train':
            assert r['optimizer'] == 'AdamW' and r['fused_adamw'] is False  # fused on CUDA only


def test_model_flops_is_tools_flops():
    assert train_step.model_flops('svfap_tiny_patch16_160', FRAMES, SIZE) == \
        finetune_cost('svfap_tiny_patch16_160', {}, FRAMES, SIZE)[1]


@pytest.mark.parametrize('dtype', ['fp32'])
def test_matmul_peak_positive(dtype):
    peaks = train_step.matmul_peak('cpu', [dtype], n=128, reps=1)
    assert peaks[dtype] > 0


def test_decoding_benchmark_runs(tmp_path):
    """The decoding benchmark runs end to end at a tiny size (the numbers come from full runs)."""
    from benchmarks import decoding
    rows = decoding.main(['--rounds', '1', '--seconds', '3', '--size', '64'])
    assert rows and all(ex == 1.0 for _, res in rows for r, (ms, ex, kind) in res.items()
                        if r != 'decord (raw)')                                  # frame-exact


def test_published_pipeline_benchmark_checks_pixels_and_runs():
    """The published items written out in the benchmark give the same pixels as ours for the same
    frames, and both items of both pipelines run (the numbers come from full runs)."""
    pytest.importorskip('decord')
    from benchmarks import published_pipeline
    rates, pixels = published_pipeline.main(['--rounds', '1', '--clips', '1', '--videos', '1',
                                             '--num_sample', '2'])
    assert pixels['pre-training'] < 0.01 and pixels['fine-tuning'] < 0.01
    assert len(rates) == 2 * (1 + 2 * 2) and all(v[0] > 0 for v in rates.values())


def test_resize_filters_benchmark_runs(capsys):
    from benchmarks import resize_filters
    resize_filters.main(['--rounds', '1'])
    rows = [ln.split('|') for ln in capsys.readouterr().out.splitlines() if 'torch uint8' in ln]
    assert len(rows) == 4 and all(float(r[3]) < 0.5 for r in rows)   # PIL's pixels
