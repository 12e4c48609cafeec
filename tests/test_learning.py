"""A real learning assertion: a tiny model trained through the engine's own loop (run_finetune:
real mp4 files, the data pipeline, the optimizer and schedule, the epoch loop, the evaluation)
memorises a handful of clips."""

import run_finetune
from datasets.synthetic import generate_synthetic_dataset


def test_tiny_model_memorises_a_handful_of_clips(tmp_path):
    data = generate_synthetic_dataset(str(tmp_path / 'data'), num_labeled=14, num_unlabeled=0,
                                      num_frames=16, size=40, num_folds=2, label_noise=0.0,
                                      seed=0)
    # train on every clip and test on the same clips: training accuracy, measured by the engine
    rows = []
    for split in ('train', 'val', 'test'):
        with open(data['folds']['1'][split]) as f:
            rows += [line for line in f if line.strip()]
    assert len(rows) == 14 and len({r.split()[-1] for r in rows}) == 7
    run_dir = tmp_path / 'split'
    run_dir.mkdir()
    for name in ('train.csv', 'test.csv'):
        (run_dir / name).write_text(''.join(rows))
    result = run_finetune.main([
        '--model', 'svfap_tiny_patch16_160', '--data_set', 'synthetic', '--data_path', str(run_dir),
        '--num_frames', '8', '--sampling_rate', '2', '--input_size', '32', '--short_side_size', '32',
        '--test_num_segment', '1', '--test_num_crop', '1', '--batch_size', '7', '--epochs', '60',
        '--warmup_epochs', '2', '--lr', '2e-3', '--min_lr', '1e-5', '--warmup_lr', '1e-5',
        '--weight_decay', '0', '--layer_decay', '1.0', '--drop_path', '0', '--smoothing', '0',
        '--mixup', '0', '--cutmix', '0', '--aa', 'none', '--reprob', '0',
        '--train_crop_scale', '1', '1', '--device', 'cpu', '--num_workers', '0', '--amp', 'none',
        '--save_ckpt_freq', '1000', '--log_every', '1000', '--seed', '0',
        '--output_dir', str(tmp_path / 'run')])
    losses = [h['train_loss'] for h in result['train_history']]
    assert losses[0] > 1.7                      # starts at chance (ln 7 = 1.95)
    assert min(losses[-5:]) < 0.5 * losses[0]
    assert result['test']['war'] >= 90.0, result['test']
