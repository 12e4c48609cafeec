"""The quickstart end to end (tiny preset): shell script -> data -> pre-training -> fine-tuning ->
test -> report, all real files."""
import csv
import json
import os
import subprocess
import sys

import pytest

from tools.quickstart import QUICKSTART_STYLE, main as quickstart_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_tiny_end_to_end(tmp_path):
    out = tmp_path / 'qs'
    env = dict(os.environ, SVFAP_SKIP_SETUP='1', OMP_NUM_THREADS='1',
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'quickstart.sh'), '--preset', 'tiny',
                           '--out', str(out), '--device', 'cpu',
                           '--style', 'pose=0.25'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    # the report: metrics and the confusion matrix over the 7 synthetic classes
    assert 'UAR ' in log and 'WAR ' in log and 'confusion matrix' in log
    for name in ('happy', 'sad', 'neutral', 'angry', 'surprise', 'disgust', 'fear'):
        assert name in log
    # artefacts a user is pointed to
    assert (out / 'pretrain' / 'checkpoint-last.pth').is_file()
    assert (out / 'finetune' / 'checkpoint-last.pth').is_file()
    assert (out / 'reconstruction.png').stat().st_size > 1000
    tb_files = [f for _, _, fs in os.walk(out) for f in fs if f.startswith('events.out.tfevents')]
    assert len(tb_files) >= 2
    with open(out / 'finetune' / 'test_predictions.csv') as f:
        rows = list(csv.DictReader(f))
    test_lines = (out / 'data' / 'fold_1' / 'test.csv').read_text().split('\n')
    assert len(rows) == len([l for l in test_lines if l.strip()])
    # --style merges onto the preset's look: the set was rendered with both
    with open(out / 'data' / 'meta.json') as f:
        style = json.load(f)['params']['style']
    assert style['pose'] == 0.25 and style['face_scale'] == QUICKSTART_STYLE['face_scale']
    for r in rows:
        probs = [float(v) for k, v in r.items() if k.startswith('prob_')]
        assert len(probs) == 7 and abs(sum(probs) - 1) < 1e-4


@pytest.mark.parametrize('item, message', [('glare=2', "unknown render style key(s) ['glare']"),
                                           ('pose=wide', "'wide' is not a number"),
                                           ('pose', 'expected KEY=VALUE')])
def test_quickstart_bad_style_is_one_line_and_writes_nothing(tmp_path, item, message):
    out = tmp_path / 'qs'
    with pytest.raises(SystemExit) as e:
        quickstart_main(['--preset', 'tiny', '--out', str(out), '--device', 'cpu', '--style', item])
    assert message in str(e.value) and '\n' not in str(e.value)
    assert not out.exists()
