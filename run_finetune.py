"""SVFAP fine-tuning and evaluation (classification or regression), one process or torchrun.

    python run_finetune.py --config configs/finetune/dfew_base.yaml \
        --data_path splits/dfew/fold_1 --finetune pretrain/checkpoint-99.pth --output_dir out/dfew_f1
    torchrun --nproc_per_node 4 run_finetune.py --config ... (same flags)

``--data_path`` is a folder with ``train.csv``, ``val.csv`` (optional) and ``test.csv``. See
docs/training.md for the flags, recipes, resume semantics and outputs.
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from cli.args import fill_task_from_registry, finalize_args, finetune_parser, parse_args, resume_roles
from datasets.build import build_finetune_dataset
from datasets.config import DataConfig, resolve_task
from engine.checkpoint import auto_load, check_input_files, save_checkpoint
from engine.config import TrainConfig
from engine.data import build_eval_loader, seed_everything
from engine.distributed import DistEnv, is_main_process, run_with_process_group
from engine.errors import cli_main
from engine.evaluation import (evaluate, main_metric_name, metrics_summary, video_group_keys,
                               write_prediction_csvs)
from engine.finetune import build_criterion, build_mixup, make_finetune_loss, test_final_weights
from engine.logger import JsonlLogger, TensorboardLogger, print_run_header
from engine.model_utils import build_ema, count_parameters, create_model, load_initial_weights, wrap_model
from engine.run_lock import check_output_dirs
from engine.step import configure_backends
from engine.trainer import EpochHooks, broken_log_path, build_training, fit


def _split_lines(path: str) -> List[str]:
    with open(path) as f:
        return sorted(line.strip() for line in f if line.strip())


def _selects_on_validation(splits: Dict[str, Optional[str]], info) -> bool:
    """A validation split selects checkpoint-best.pth only when it is not the test split (said
    once, either way)."""
    if splits['val'] is None:
        print('| no val.csv: no model selection; the final model is the one tested')
        return False
    if info is not None and info.val_is_test:
        print(f'| NOTE: {info.name} has no validation split distinct from its test split '
              f'(registry: val_is_test); no checkpoint is selected on validation, the final '
              f'model is the one tested.')
        return False
    if _split_lines(splits['val']) == _split_lines(splits['test']):
        print(f'| NOTE: {splits["val"]} is identical to {splits["test"]}; it is not used for '
              f'model selection; the final model is the one tested.')
        return False
    return True


def _split_files(args) -> Dict[str, Optional[str]]:
    if not args.data_path:
        raise ValueError('--data_path (a folder with train.csv / val.csv / test.csv) is required')
    if os.path.isfile(args.data_path):
        raise ValueError(f'--data_path must be a folder containing train.csv, val.csv and '
                         f'test.csv (VideoMAE convention), got the file {args.data_path}')
    out = {}
    for split in ('train', 'val', 'test'):
        p = os.path.join(args.data_path, f'{split}.csv')
        out[split] = p if os.path.isfile(p) and _split_lines(p) else None  # empty = absent
    return out


def _group_keys(args, info, ds) -> Optional[List[str]]:
    """Registry ``video_level_key`` (AVCAffe): clip -> video key, from ``<data_path>/video_groups.txt``
    or the clip path."""
    if info is None or not info.video_level_key:
        return None
    return video_group_keys(ds.paths, os.path.join(args.data_path, 'video_groups.txt'))


def describe_training_set(train_ds, split: str, train_fraction: float, label_names) -> str:
    """What the run trains on: clips, the --train_fraction subset, and the class counts."""
    n, listed = train_ds.num_videos, train_ds.num_listed
    text = f'| training set: {n} clips from {split}'
    if train_fraction < 1.0:
        text += f' (--train_fraction {train_fraction:g}: {n} of {listed}, stratified)'
    labels = [e.label for e in train_ds.entries]
    if labels and isinstance(labels[0], int):
        counts = np.bincount(labels, minlength=len(label_names) or None)
        names = label_names if len(label_names) == len(counts) else [str(i) for i in range(len(counts))]
        text += '\n| classes: ' + ', '.join(f'{nm} {c}' for nm, c in zip(names, counts.tolist()))
    elif labels:
        arr = np.asarray(labels, dtype=np.float64)
        text += f'\n| targets: {arr.shape[1]} values, range {arr.min():.3g} .. {arr.max():.3g}'
    return text


def _save_predictions(res: Dict, args, test_ds, info, label_names, prefix: str) -> None:
    if not (args.save_predictions and args.output_dir):
        return
    files = write_prediction_csvs(res, test_ds.paths, args.task, label_names, args.output_dir,
                                  prefix=prefix,
                                  group_column=(info.video_level_key if info is not None and
                                                info.video_level_key else 'group'))
    if files:
        print(f'| {prefix} predictions: {files["videos"]} (per video), {files["views"]} (per view)')


def _run_test(tag: str, model, args, cfg: TrainConfig, test_ds, device, info, label_names, tb, step: int,
              save: bool = True) -> Dict:
    loader = build_eval_loader(test_ds, cfg, device.type == 'cuda',
                               distributed=args.distributed and args.dist_eval)
    t0 = time.time()
    res = evaluate(model, loader, device, args.amp, args.task,
                   distributed=args.distributed and args.dist_eval, info=info,
                   label_names=label_names, group_keys=_group_keys(args, info, test_ds), header=tag)
    grouped = f' -> {res["num_groups"]} {info.video_level_key} groups' if 'num_groups' in res else ''
    print(f'| {tag}: {res["num_videos"]} videos, {res["num_views"]} views{grouped}, '
          f'loss {res["loss"]:.4f}  {metrics_summary(res["metrics"])}  ({time.time() - t0:.1f}s)')
    if save:
        _save_predictions(res, args, test_ds, info, label_names, tag)
    if tb is not None:
        tb.scalars(dict(res['metrics'], loss=res['loss']), step, prefix=f'{tag}/')
    if is_main_process() and getattr(test_ds, 'skipped', None):
        print(f'| {tag}: {len(test_ds.skipped)} unreadable videos left out (--skip_broken_eval):')
        for p, reason in test_ds.skipped:
            print(f'|   {p}: {reason}')
    return res


class Validation(EpochHooks):
    """After every epoch: the validation split (when there is one distinct from the test split),
    and ``checkpoint-best.pth`` when the main metric (``--val_metric``, default the registry's)
    improves; without the metric, the lowest validation loss."""

    def __init__(self, args, cfg: TrainConfig, model_without_ddp, model_ema, val_ds, device, info,
                 label_names, tb, best: Optional[Dict] = None, test_ds=None):
        self.args, self.cfg = args, cfg
        self.model, self.model_ema, self.val_ds = model_without_ddp, model_ema, val_ds
        self.device, self.info, self.label_names, self.tb = device, info, label_names, tb
        self.best = best
        self.best_state: Optional[Dict] = None
        self.test_ds = test_ds if args.test_every_epoch else None
        self.optimistic: Optional[Dict] = None  # the best epoch chosen on the test split

    def after_epoch(self, epoch: int, global_step: int, record: Dict) -> None:
        if self.test_ds is not None:
            self._optimistic_test(epoch, record)
        if self.val_ds is None:
            return
        args, info = self.args, self.info
        loader = build_eval_loader(self.val_ds, self.cfg, self.device.type == 'cuda',
                                   distributed=args.distributed and args.dist_eval)
        vres = evaluate(self.model, loader, self.device, args.amp, args.task,
                        distributed=args.distributed and args.dist_eval, info=info,
                        label_names=self.label_names, group_keys=_group_keys(args, info, self.val_ds),
                        header=f'val epoch {epoch}')
        val_metric = main_metric_name(info, vres['metrics'], args.val_metric)
        record.update({f'val_{k}': v for k, v in vres['metrics'].items()})
        record['val_loss'] = vres['loss']
        print(f'| val epoch {epoch}: loss {vres["loss"]:.4f}  {metrics_summary(vres["metrics"])}')
        if self.tb is not None:
            self.tb.scalars(dict(vres['metrics'], loss=vres['loss']), epoch, prefix='val/')
        if val_metric is None:
            return
        # higher is better for every registry metric; without it, the lowest loss
        value = float(vres['metrics'][val_metric]) if val_metric in vres['metrics'] else -float(vres['loss'])
        if val_metric not in vres['metrics']:
            val_metric = 'neg_val_loss'
        if self.best is None or value > self.best['value']:
            self.best = {'metric': val_metric, 'value': value, 'epoch': epoch}
            self.best_state = {k: v.detach().to('cpu', copy=True) for k, v in self.model.state_dict().items()}
            if args.output_dir and args.save_ckpt:
                save_checkpoint(os.path.join(args.output_dir, 'checkpoint-best.pth'),
                                model=self.model, model_ema=self.model_ema, epoch=epoch,
                                global_step=global_step, args=self.cfg.flags, best=self.best)
            print(f'| new best {val_metric} {value:.4f} at epoch {epoch}')


    def _optimistic_test(self, epoch: int, record: Dict) -> None:
        """--test_every_epoch: the test split after every epoch, and its best epoch, as the published
        logs report it. Model selection on the test split: optimistic, never the result."""
        args = self.args
        res = _run_test(f'test_optimistic_epoch{epoch}', self.model, args, self.cfg, self.test_ds,
                        self.device, self.info, self.label_names, None, epoch, save=False)
        metric = main_metric_name(self.info, res['metrics'], args.val_metric)
        record.update({f'optimistic_test_{k}': v for k, v in res['metrics'].items()})
        if self.tb is not None:
            self.tb.scalars(res['metrics'], epoch, prefix='test_optimistic/')
        if metric is None or metric not in res['metrics']:
            return
        value = float(res['metrics'][metric])
        if self.optimistic is None or value > self.optimistic['value']:
            self.optimistic = {'metric': metric, 'value': value, 'epoch': epoch,
                               'metrics': dict(res['metrics'])}
            _save_predictions(res, args, self.test_ds, self.info, self.label_names,
                              'test_optimistic_best')
        print(f'| OPTIMISTIC (model selection on the test split, as the published logs; not a '
              f'result): epoch {epoch} {metric} {value:.4f}, best so far {self.optimistic["value"]:.4f} '
              f'at epoch {self.optimistic["epoch"]}')


def _load_for_eval(cfg: TrainConfig, model_without_ddp, model_ema, roles) -> None:
    """--eval: the weights of --resume, or of --output_dir's newest checkpoint (unless --finetune
    gave them); a warning when there are none."""
    loaded = None
    if cfg.resume or (cfg.auto_resume and not cfg.finetune):
        loaded = auto_load(cfg, model_without_ddp, model_ema=model_ema, roles=roles)
    if loaded is None and not cfg.finetune:
        print('| WARNING: --eval without --resume / --finetune and no checkpoint in '
              '--output_dir: testing randomly initialised weights')


def _final_record(tests: Dict[str, Dict], hooks: Validation) -> Dict:
    """The run's last log.jsonl record: the final test, the best test epoch (--test_every_epoch,
    optimistic), the EMA weights' and checkpoint-best.pth's tests."""
    res = tests['test']
    final = {'final_test': True, **{f'test_{k}': v for k, v in res['metrics'].items()},
             'test_loss': res['loss'], 'test_num_videos': res['num_videos']}
    if hooks.optimistic is not None:
        final.update({f'optimistic_best_test_{k}': v for k, v in hooks.optimistic['metrics'].items()})
        final['optimistic_best_epoch'] = hooks.optimistic['epoch']
    for tag in ('test_ema', 'test_best'):
        if tag in tests:
            final.update({f'{tag}_{k}': v for k, v in tests[tag]['metrics'].items()})
    if 'test_best' in tests:
        final['best'] = hooks.best
    return final


def run(args, env: DistEnv) -> Dict:
    args = finalize_args(args, env, fill_task_from_registry)
    cfg = TrainConfig.from_args(args)
    roles = resume_roles(finetune_parser())
    spec = resolve_task(args.data_set, args.task, args.nb_classes)
    info, label_names = spec.info, list(spec.label_names)
    if is_main_process():
        check_output_dirs(cfg)
    check_input_files(cfg)
    device = torch.device(args.device)
    configure_backends(device)
    splits = _split_files(args)
    if not args.eval and splits['train'] is None:
        raise FileNotFoundError(f'{args.data_path}/train.csv not found')
    if splits['test'] is None:
        raise FileNotFoundError(f'{args.data_path}/test.csv not found')

    use_val = not args.eval and _selects_on_validation(splits, info)

    # identical initial weights on every process, whatever the world size
    seed_everything(args.seed)
    model = create_model(cfg, pretrain=False)
    if args.finetune:
        load_initial_weights(model, args.finetune, args.output_dir)
    model, model_without_ddp = wrap_model(model, cfg)
    model_ema = build_ema(cfg, model_without_ddp)
    n_params = count_parameters(model_without_ddp)

    data_cfg = DataConfig.from_args(args)
    test_ds = build_finetune_dataset(splits['test'], 'test', data_cfg)
    val_ds = build_finetune_dataset(splits['val'], 'validation', data_cfg) if use_val else None
    if not (args.skip_broken_eval or args.eval) and is_main_process():  # now, not after the last epoch
        for ds in (test_ds, val_ds):
            if ds is not None:
                ds.check_readable()
    tb = TensorboardLogger(args.log_dir) if is_main_process() else None
    jsonl = JsonlLogger(args.output_dir)
    result: Dict = {'train_history': [], 'step_losses': {}}

    try:
        if args.eval:
            _load_for_eval(cfg, model_without_ddp, model_ema, roles)
            print_run_header(cfg, model_without_ddp, n_params, None)
            res = _run_test('test', model_without_ddp, args, cfg, test_ds, device, info, label_names,
                            tb, 0)
            result['test'] = res['metrics']
            jsonl.write({'eval_only': True, **{f'test_{k}': v for k, v in res['metrics'].items()},
                         'test_loss': res['loss'], 'test_num_videos': res['num_videos']})
            return result

        train_ds = build_finetune_dataset(splits['train'], 'train', data_cfg, broken_log_path(cfg.output_dir))
        if is_main_process():
            print(describe_training_set(train_ds, splits['train'], args.train_fraction, label_names))
        mixup_fn = build_mixup(cfg)
        criterion = build_criterion(cfg, mixup_fn)
        print(f'| criterion {type(criterion).__name__}; mixup '
              f'{"off" if mixup_fn is None else f"{args.mixup}/{args.cutmix} switch {args.mixup_switch_prob}"}')
        training = build_training(cfg, model, model_without_ddp, train_ds, args.layer_decay, model_ema,
                                  resume_roles=roles)
        print_run_header(cfg, model_without_ddp, n_params, training.steps_per_epoch, training.start_epoch)
        compute_loss = make_finetune_loss(model, criterion, mixup_fn, device,
                                          train_ds.batch_augment)
        hooks = Validation(args, cfg, model_without_ddp, model_ema, val_ds, device, info, label_names, tb,
                           best=(training.checkpoint or {}).get('best'), test_ds=test_ds)
        result.update(fit(cfg, training, compute_loss, tb, jsonl, n_params, hooks))

        tests = test_final_weights(
            lambda tag, m: _run_test(tag, m, args, cfg, test_ds, device, info, label_names, tb, args.epochs),
            model_without_ddp, model_ema if args.model_ema_eval else None, hooks.best, hooks.best_state,
            os.path.join(args.output_dir, 'checkpoint-best.pth') if args.output_dir else '')
        result.update({tag: r['metrics'] for tag, r in tests.items()})
        if hooks.optimistic is not None:
            result['optimistic_best_test'] = hooks.optimistic
        jsonl.write(_final_record(tests, hooks))
        return result
    finally:
        if tb is not None:
            tb.close()


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    return run_with_process_group(run, parse_args(finetune_parser(), argv))


if __name__ == '__main__':
    cli_main(main)
