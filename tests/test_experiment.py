"""The pre-trained vs scratch report: per-arm means/stds over seeds, markdown table and PNG plot."""
from tools.pretrain_vs_scratch import advantage_line, summarise, write_report


def test_summary_and_report(tmp_path):
    rows = []
    for fraction in (1.0, 0.1):
        for init, base in (('pretrained', 40.0), ('scratch', 20.0)):
            for seed in range(3):
                rows.append({'fraction': fraction, 'init': init, 'seed': seed, 'steps': 100,
                             'uar': base * fraction + seed, 'war': base * fraction + 2 * seed})
    summary = summarise(rows)
    by = {(s['fraction'], s['init']): s for s in summary}
    assert by[(1.0, 'pretrained')]['uar'] == 41.0 and by[(1.0, 'pretrained')]['uar_std'] == 1.0
    assert by[(0.1, 'scratch')]['war'] == 4.0 and by[(0.1, 'scratch')]['war_std'] == 2.0
    meta = {'device': 'CPU', 'torch': 'x', 'minutes': 1.0, 'fold': '1', 'train': 252, 'test': 70,
            'pretrain': '3 epochs', 'steps': '100', 'input': 'recipe'}
    md = tmp_path / 'report.md'
    png = write_report(str(md), rows, summary, 'python -m tools.pretrain_vs_scratch', meta)
    text = md.read_text()
    assert '| 100% | pretrained | 3 | 41.0 ± 1.0 | 42.0 ± 2.0 |' in text
    assert '| 10% | scratch | 3 | 3.0 ± 1.0 | 4.0 ± 2.0 |' in text
    line = 'pre-training advantage: +2.0 UAR at 10% labels, +20.0 UAR at 100% labels'
    assert advantage_line(summary) == line and text.rstrip().endswith(line)
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
