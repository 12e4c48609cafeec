"""Flags of the entry points: YAML recipes parse, unknown keys are named, flags override, lr scaling."""
import glob
import os

import pytest

from cli.args import finalize_args, finetune_parser, parse_args, pretrain_parser, resolve_amp
from engine.distributed import DistEnv
from cli.config import ConfigError
from tests.helpers import repo_root

ROOT = repo_root()


def _configs(*patterns):
    out = []
    for p in patterns:
        out += sorted(q for q in glob.glob(os.path.join(ROOT, 'configs', p))
                      if not os.path.basename(q).startswith('_'))  # _*.yaml: shared includes
    return out


@pytest.mark.parametrize('path', _configs('finetune/*.yaml', 'quickstart/finetune*.yaml'))
def test_finetune_recipes_parse(path):
    args = parse_args(finetune_parser(), ['--config', path])
    assert args.model and args.data_set
    args = finalize_args(args, DistEnv(world_size=4))
    assert args.lr == pytest.approx(args.blr * args.batch_size * args.update_freq * 4 / 256)


@pytest.mark.parametrize('path', _configs('pretrain/*.yaml', 'quickstart/pretrain*.yaml'))
def test_pretrain_recipes_parse(path):
    args = parse_args(pretrain_parser(), ['--config', path])
    assert args.model.startswith('pretrain_')


def test_recipes_inherit_the_shared_recipe():
    """<dataset>_small = <dataset>_base with the small encoder; every dataset recipe takes the
    shared settings from _common.yaml (through _regression.yaml for the regression sets)."""
    from cli.config import load_config
    common = load_config(os.path.join(ROOT, 'configs', 'finetune', '_common.yaml'))
    for base in _configs('finetune/*_base.yaml'):
        b = load_config(base)
        s = load_config(base.replace('_base.yaml', '_small.yaml'))
        assert {k: v for k, v in s.items() if k != 'model'} == {k: v for k, v in b.items() if k != 'model'}
        assert (b['model'], s['model']) == ('svfap_base_patch16_160', 'svfap_small_patch16_160')
        with open(base) as f:
            assert '_base_:' in f.read(), base
        shared = {k for k in common if k not in ('smoothing', 'mixup', 'cutmix', 'sampling_rate')}
        assert {k: b[k] for k in shared} == {k: common[k] for k in shared}, base


def test_unknown_config_key_is_named(tmp_path):
    cfg = tmp_path / 'bad.yaml'
    cfg.write_text('batch_size: 4\nbatch_sise: 8\n')
    with pytest.raises(ConfigError, match='batch_sise'):
        parse_args(finetune_parser(), ['--config', str(cfg)])


def test_command_line_overrides_config(tmp_path):
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('batch_size: 4\nlayer_decay: 0.5\nopt_betas: [0.8, 0.9]\namp: true\n'
                   'stage_depths: [2, 1]\n')
    args = parse_args(finetune_parser(), ['--config', str(cfg), '--batch_size', '6'])
    assert args.batch_size == 6 and args.layer_decay == 0.5 and args.opt_betas == [0.8, 0.9]
    assert args.stage_depths == [2, 1]
    assert resolve_amp(args.amp, 'cpu') == 'none'  # amp: true is bf16/fp16 on GPUs only
    assert resolve_amp('bf16', 'cpu') == 'bf16'


def test_lr_flags():
    p = finetune_parser()
    a = parse_args(p, ['--batch_size', '8', '--update_freq', '2', '--blr', '1e-3', '--device', 'cpu'])
    a = finalize_args(a, DistEnv(world_size=2))
    assert a.lr == pytest.approx(1e-3 * 32 / 256) and a.total_batch_size == 32
    a = parse_args(finetune_parser(), ['--lr', '5e-4', '--device', 'cpu'])
    a = finalize_args(a, DistEnv(world_size=8))
    assert a.lr == 5e-4
    a = parse_args(finetune_parser(), ['--no_auto_resume', '--no_dist_eval', '--amp', 'fp16'])
    assert a.auto_resume is False and a.dist_eval is False and a.amp == 'fp16'
    with pytest.raises(SystemExit):
        parse_args(finetune_parser(), ['--amp', 'int8'])


def test_fraction_flags_reach_the_dataset_builders(tmp_path):
    from datasets.build import build_finetune_dataset, build_pretrain_dataset
    from datasets.config import DataConfig
    from tests.helpers import make_tiny_dataset
    data = make_tiny_dataset(str(tmp_path / 'syn'))
    train = data['folds']['1']['train']
    full = parse_args(finetune_parser(), ['--data_set', 'synthetic', '--num_frames', '8'])
    part = parse_args(finetune_parser(), ['--data_set', 'synthetic', '--num_frames', '8',
                                          '--train_fraction', '0.5'])
    n_full = len(build_finetune_dataset(train, 'train', DataConfig.from_args(full)))
    ds_a = build_finetune_dataset(train, 'train', DataConfig.from_args(part))
    ds_b = build_finetune_dataset(train, 'train', DataConfig.from_args(part))
    assert len(ds_a) < n_full and ds_a.paths == ds_b.paths  # deterministic for a seed
    pre = parse_args(pretrain_parser(), ['--data_set', 'synthetic-pretrain', '--num_frames', '8',
                                         '--input_size', '32', '--pretrain_fraction', '0.5'])
    assert len(build_pretrain_dataset(data['pretrain'], DataConfig.from_args(pre))) == data['num_unlabeled'] // 2


def test_finetuning_says_what_it_trains_on(tmp_path):
    from datasets.build import build_finetune_dataset
    from datasets.config import DataConfig
    from run_finetune import describe_training_set
    from tests.helpers import make_tiny_dataset
    data = make_tiny_dataset(str(tmp_path / 'syn'))
    train = data['folds']['1']['train']
    args = parse_args(finetune_parser(), ['--data_set', 'synthetic', '--num_frames', '8',
                                          '--train_fraction', '0.5'])
    ds = build_finetune_dataset(train, 'train', DataConfig.from_args(args))
    names = ['neutral', 'happy', 'sad', 'angry', 'surprise', 'disgust', 'fear']
    text = describe_training_set(ds, train, 0.5, names)
    n_all = sum(1 for _ in open(train))
    assert text.splitlines()[0] == (f'| training set: {ds.num_videos} clips from {train} '
                                    f'(--train_fraction 0.5: {ds.num_videos} of {n_all}, stratified)')
    counts = dict(kv.rsplit(' ', 1) for kv in text.splitlines()[1][len('| classes: '):].split(', '))
    assert list(counts) == names and sum(int(c) for c in counts.values()) == ds.num_videos


def test_published_schedule_and_transform_defaults():
    """The published code's details are the defaults: min_lr scaled by total batch / 256 like the lr,
    warm-up from 0, frames squashed, RandAugment before the crop; each can be switched off."""
    from cli.args import finalize_args
    from datasets.config import DataConfig
    a = parse_args(finetune_parser(), ['--config', os.path.join(ROOT, 'configs', 'finetune', 'dfew_base.yaml')])
    a = finalize_args(a, DistEnv(world_size=4))
    assert a.total_batch_size == 96 and abs(a.lr - 1e-3 * 96 / 256) < 1e-12
    assert abs(a.min_lr - 1e-6 * 96 / 256) < 1e-15 and a.warmup_lr == 0.0
    cfg = DataConfig.from_args(a)
    assert cfg.resize_mode == 'squash' and cfg.aug_order == 'published' and cfg.erase_mode == 'clip'
    b = parse_args(finetune_parser(), ['--blr', '1e-3', '--no_scale_min_lr', '--resize_mode', 'short_side',
                                       '--aug_order', 'crop_first'])
    b = finalize_args(b, DistEnv(world_size=1))
    assert b.min_lr == 1e-6
    assert DataConfig.from_args(b).resize_mode == 'short_side'
    p = parse_args(pretrain_parser(), ['--config', os.path.join(ROOT, 'configs', 'pretrain', 'voxceleb2_base.yaml')])
    p = finalize_args(p, DistEnv(world_size=4))
    assert abs(p.min_lr - 1e-5) < 1e-15 and p.warmup_lr == 0.0   # total batch 256: scale 1


@pytest.mark.parametrize('extra', [[], ['--augment_on', 'device']], ids=['workers', 'device'])
def test_num_sample_runs_end_to_end(tmp_path, extra):
    """--num_sample 2 in both entry points, the batch augmented by the workers or on the training
    device: each step sees batch_size x 2 clips, the loss is finite."""
    import json
    import run_finetune
    import run_pretrain
    from tests.helpers import make_tiny_dataset, tiny_finetune_argv, tiny_pretrain_argv
    data = make_tiny_dataset(str(tmp_path / 'syn'))
    fold = os.path.dirname(data['folds']['1']['test'])
    run_pretrain.main(tiny_pretrain_argv(data['pretrain'], str(tmp_path / 'pt'),
                                         extra=['--epochs', '1', '--num_sample', '2'] + extra))
    res = run_finetune.main(tiny_finetune_argv(fold, str(tmp_path / 'ft'),
                                               extra=['--epochs', '1', '--num_sample', '2'] + extra))
    for d in ('pt', 'ft'):
        rec = json.loads(open(tmp_path / d / 'log.jsonl').readline())
        assert rec['train_steps'] >= 1 and rec['train_loss'] == rec['train_loss']   # not NaN
    assert 'uar' in res['test']


def test_pretrain_fraction_scales_the_epochs_as_table_1(tmp_path, capsys):
    """--pretrain_fraction 0.5: twice the epochs (the same steps as the whole set), unless
    --no_scale_epochs; the run says which."""
    import json
    import run_pretrain
    from tests.helpers import make_tiny_dataset, tiny_pretrain_argv
    data = make_tiny_dataset(str(tmp_path / 'syn'), num_unlabeled=8)
    for extra, epochs in (([], 2), (['--no_scale_epochs'], 1)):
        out = tmp_path / f'pt{epochs}'
        res = run_pretrain.main(tiny_pretrain_argv(data['pretrain'], str(out), extra=[
            '--epochs', '1', '--warmup_epochs', '1', '--max_steps_per_epoch', '1',
            '--pretrain_fraction', '0.5', '--vis_every', '0'] + extra))
        text = capsys.readouterr().out
        assert len(res['train_history']) == epochs
        saved = json.load(open(out / 'args.json'))
        assert saved['epochs'] == epochs and saved['warmup_epochs'] == epochs
        assert ('epochs 1 -> 2' in text) == (epochs == 2)
        assert ('WARNING: --pretrain_fraction 0.5 with --no_scale_epochs' in text) == (epochs == 1)


def test_finalize_is_the_one_step_that_derives_values(capsys):
    """The entry points derive every value in finalize_args: the parsed flags stay as parsed, the
    process's place and the entry point's own step are applied, and the result is read-only."""
    from cli.args import fill_task_from_registry, scale_epochs_to_fraction
    parsed = parse_args(finetune_parser(), ['--data_set', 'dfew', '--blr', '1e-3', '--batch_size', '4'])
    before = dict(vars(parsed))
    a = finalize_args(parsed, DistEnv(distributed=True, rank=1, world_size=2, local_rank=1),
                      fill_task_from_registry)
    assert vars(parsed) == before
    assert (a.task, a.nb_classes, a.output_activation, a.short_side_size) == ('classification', 7, 'none', 160)
    assert (a.distributed, a.rank, a.world_size, a.gpu, a.device) == (True, 1, 2, 1, 'cpu')
    assert a.lr == pytest.approx(1e-3 * 8 / 256)
    with pytest.raises(AttributeError, match=r'read-only \(--lr\)'):
        a.lr = 1.0
    with pytest.raises(AttributeError, match='read-only'):
        del a.epochs
    r = finalize_args(parse_args(finetune_parser(), ['--data_set', 'werewolf-xl', '--blr', '1e-3']),
                      DistEnv(), fill_task_from_registry)
    assert (r.task, r.nb_classes, r.mixup, r.cutmix, r.smoothing) == ('regression', 3, 0.0, 0.0, 0.0)
    p = finalize_args(parse_args(pretrain_parser(), ['--pretrain_fraction', '0.1', '--epochs', '100',
                                                     '--warmup_epochs', '5']),
                      DistEnv(), scale_epochs_to_fraction)
    assert (p.epochs, p.warmup_epochs, p.save_ckpt_freq, p.vis_every) == (1000, 50, 100, 50)
    assert 'epochs 100 -> 1000' in capsys.readouterr().out
