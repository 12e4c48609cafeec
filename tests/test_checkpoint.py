"""Checkpoint loading: authors' released layouts (synthetic, from the reference key lists), our own
checkpoints, and files that must be refused with a CheckpointError naming the file / keys."""
import argparse
import os

import pytest
import timm
import torch

import models  # noqa: F401  (registers the models)
from models.checkpoint import CheckpointError, load_checkpoint

REFERENCE = os.environ.get('SVFAP_REFERENCE_DIR', '/work/shared/reference')
FINETUNE_TSV = os.path.join(REFERENCE, 'state_dict_finetune_base_7cls.tsv')
PRETRAIN_TSV = os.path.join(REFERENCE, 'state_dict_pretrain_base.tsv')
PRETRAIN_ONLY = {'mask_token', 'encoder_to_decoder.weight', 'encoder.norm.weight', 'encoder.norm.bias'}

needs_reference = pytest.mark.skipif(not os.path.isfile(FINETUNE_TSV) or not os.path.isfile(PRETRAIN_TSV),
                                     reason='reference key lists not available')


def read_tsv(path):
    with open(path) as f:
        rows = [line.rstrip('\n').split('\t') for line in f][1:]
    return [(key, tuple(int(d) for d in shape.split('x'))) for key, shape in rows if key]


def synthetic_state(path, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=gen) for key, shape in read_tsv(path)}


def authors_file(state):
    """Wrapped like the released files: weights under 'model' next to optimizer, epoch, scaler, args."""
    return {'model': state, 'optimizer': {}, 'epoch': 99, 'scaler': {},
            'args': argparse.Namespace(model='svfap_base_patch16_160', lr=1e-3, input_size=160, num_frames=16)}


def empty_model(name, **kwargs):
    """A model with uninitialised storage (fast to build; every tensor is overwritten by the load)."""
    with torch.device('meta'):
        model = timm.create_model(name, **kwargs)
    return model.to_empty(device='cpu')


@pytest.fixture(scope='module')
def finetune_file(tmp_path_factory):
    state = synthetic_state(FINETUNE_TSV, 1)
    path = tmp_path_factory.mktemp('ckpt') / 'authors_finetune.pth'
    torch.save(authors_file(state), path)
    return path, state


@pytest.fixture(scope='module')
def pretrain_file(tmp_path_factory):
    state = synthetic_state(PRETRAIN_TSV, 2)
    path = tmp_path_factory.mktemp('ckpt') / 'authors_pretrain.pth'
    torch.save(authors_file(state), path)
    return path, state


# ---------------------------------------------------------------------------------------------- authors' layout

@needs_reference
def test_authors_finetune_checkpoint_loads_exactly(finetune_file):
    path, state = finetune_file
    model = empty_model('svfap_base_patch16_160', num_classes=7)
    report = load_checkpoint(model, path, verbose=False)
    assert report.skipped == {} and report.initialised == []
    assert len(report.loaded) == len(state) == len(model.state_dict())
    for key in ('blocks.20.cross_attn.kv.weight', 'temporal_downsamples.1.weight', 'head.bias'):
        assert torch.equal(model.state_dict()[key], state[key])


@needs_reference
def test_module_prefix_and_entry(finetune_file):
    _, state = finetune_file
    model = empty_model('svfap_base_patch16_160', num_classes=7)
    wrapped = {'module': {'module.' + k: v for k, v in state.items()}, 'epoch': 3}
    report = load_checkpoint(model, wrapped, verbose=False)
    assert report.skipped == {} and report.initialised == []
    assert torch.equal(model.blocks[3].attn.q_bias, state['blocks.3.attn.q_bias'])


@needs_reference
def test_authors_pretrain_checkpoint_into_pretrain_model(pretrain_file):
    path, state = pretrain_file
    model = empty_model('pretrain_svfap_base_patch16_160')
    report = load_checkpoint(model, path, verbose=False)
    assert report.skipped == {} and report.initialised == []
    assert torch.equal(model.mask_token, state['mask_token'])
    assert torch.equal(model.encoder.norm.weight, state['encoder.norm.weight'])


@needs_reference
def test_finetune_from_pretrain_checkpoint_reports_skipped(pretrain_file, capsys):
    path, state = pretrain_file
    model = empty_model('svfap_base_patch16_160', num_classes=7)
    report = load_checkpoint(model, path, verbose=True)
    expected_skipped = {k for k in state if k.startswith('decoder.')} | PRETRAIN_ONLY
    assert set(report.skipped) == expected_skipped
    assert 'fusion' in report.skipped['encoder.norm.weight']
    assert sorted(report.initialised) == ['fc_norm.bias', 'fc_norm.weight', 'head.bias', 'head.weight']
    assert torch.equal(model.blocks[15].cross_attn.q.weight, state['encoder.blocks.15.cross_attn.q.weight'])
    assert torch.equal(model.patch_embed.proj.weight, state['encoder.patch_embed.proj.weight'])
    printed = capsys.readouterr().out
    assert 'decoder.head.weight' in printed and 'head.weight' in printed


@needs_reference
def test_head_with_other_class_count_is_skipped(finetune_file):
    path, state = finetune_file
    model = empty_model('svfap_base_patch16_160', num_classes=11)
    report = load_checkpoint(model, path, verbose=False)
    assert set(report.skipped) == {'head.weight', 'head.bias'}
    assert '(7, 512)' in report.skipped['head.weight'] and '(11, 512)' in report.skipped['head.weight']
    assert report.initialised == ['head.weight', 'head.bias']
    assert torch.equal(model.fc_norm.weight, state['fc_norm.weight'])


# ---------------------------------------------------------------------------------------------- our checkpoints

@pytest.mark.parametrize('name', ['svfap_tiny_patch16_160', 'pretrain_svfap_tiny_patch16_160'])
def test_own_checkpoint_round_trip(name, tmp_path):
    torch.manual_seed(0)
    source = timm.create_model(name, init_values=0.1)
    path = tmp_path / 'checkpoint-1.pth'
    torch.save({'model': source.state_dict(), 'optimizer': {}, 'epoch': 1,
                'args': argparse.Namespace(model=name)}, path)
    torch.manual_seed(1)
    target = timm.create_model(name, init_values=0.1)
    report = load_checkpoint(target, path, verbose=False)
    assert report.skipped == {} and report.initialised == []
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_own_pretrain_checkpoint_into_classifier(tmp_path):
    source = timm.create_model('pretrain_svfap_tiny_patch16_160')
    target = timm.create_model('svfap_tiny_patch16_160', num_classes=4)
    report = load_checkpoint(target, {'model': source.state_dict()}, verbose=False)
    assert 'encoder.norm.weight' in report.skipped and 'decoder.head.weight' in report.skipped
    assert sorted(report.initialised) == ['fc_norm.bias', 'fc_norm.weight', 'head.bias', 'head.weight']
    assert torch.equal(target.blocks[-1].mlp.fc2.weight, source.encoder.blocks[-1].mlp.fc2.weight)


# ---------------------------------------------------------------------------------------------- refused files

def test_text_file_is_refused(tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('this is not a checkpoint\n')
    with pytest.raises(CheckpointError, match='notes.pth'):
        load_checkpoint(timm.create_model('svfap_tiny_patch16_160'), path)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'model': timm.create_model('svfap_tiny_patch16_160').state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='cut.pth'):
        load_checkpoint(timm.create_model('svfap_tiny_patch16_160'), path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match='nowhere.pth'):
        load_checkpoint(timm.create_model('svfap_tiny_patch16_160'), tmp_path / 'nowhere.pth')


class _Arbitrary:
    pass


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / 'unsafe.pth'
    torch.save({'model': {}, 'args': _Arbitrary()}, path)
    with pytest.raises(CheckpointError, match='unsafe.pth.*weights_only'):
        load_checkpoint(timm.create_model('svfap_tiny_patch16_160'), path)


def test_shape_mismatch_names_keys_and_shapes(tmp_path):
    state = timm.create_model('svfap_tiny_patch16_160').state_dict()
    state['blocks.1.mlp.fc1.weight'] = torch.zeros(10, 96)
    state['patch_embed.proj.bias'] = torch.zeros(5)
    path = tmp_path / 'wrong_shape.pth'
    torch.save({'model': state}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(timm.create_model('svfap_tiny_patch16_160'), path)
    message = str(err.value)
    assert 'wrong_shape.pth' in message
    assert 'blocks.1.mlp.fc1.weight: checkpoint (10, 96) vs model (384, 96)' in message
    assert 'patch_embed.proj.bias: checkpoint (5,) vs model (96,)' in message


def test_unexpected_and_missing_keys(tmp_path):
    model = timm.create_model('svfap_tiny_patch16_160')
    state = dict(model.state_dict())
    state['blocks.0.attn.k_bias'] = torch.zeros(96)
    with pytest.raises(CheckpointError, match='blocks.0.attn.k_bias'):
        load_checkpoint(model, {'model': state}, verbose=False)
    state = dict(model.state_dict())
    del state['blocks.2.norm1.weight']
    with pytest.raises(CheckpointError, match='blocks.2.norm1.weight'):
        load_checkpoint(model, {'model': state}, verbose=False)
    report = load_checkpoint(model, {'model': state}, verbose=False, strict=False)
    assert report.initialised == ['blocks.2.norm1.weight']
