"""Every flag of both entry points has one line of help, and shows its default at most once."""
import argparse
import re

import pytest

from cli.args import finetune_parser, pretrain_parser


def _tool_parsers():
    from preprocess.face_crop import get_parser as face_crop
    from tools.extract_features import get_parser as extract_features
    from tools.predict import get_parser as predict
    return [face_crop, extract_features, predict]


@pytest.mark.parametrize('make', [finetune_parser, pretrain_parser] + _tool_parsers())
def test_every_flag_has_help_and_one_default(make):
    parser = make()
    formatter = parser._get_formatter()
    missing, twice = [], []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not (action.help or '').strip():
            missing.append(action.option_strings[0])
        text = formatter._get_help_string(action).replace('%(default)s', 'X')
        if len(re.findall(r'default', text, flags=re.I)) > 1:
            twice.append((action.option_strings[0], text))
    assert not missing, f'flags without help: {missing}'
    assert not twice, f'defaults shown twice: {twice}'
    # the rendered page too: no option line says "default" twice
    page = parser.format_help()
    for block in re.split(r'\n(?=  -)', page):
        assert len(re.findall(r'\(default: ', block)) <= 1, block


def test_defaults_are_shown():
    page = finetune_parser().format_help()
    assert re.search(r'--epochs EPOCHS\s+training epochs \(default: 100\)', page)
    assert re.search(r'--num_frames NUM_FRAMES\s+frames per clip \(default: 16\)', page)


def test_predict_help_names_the_face_track():
    from tools.predict import get_parser
    page = get_parser().format_help()
    assert 'Haar cascade' not in page and '(default: None)' not in page
    assert re.search(r'--face_crop\s+follow one face through each video', page)
    assert '--render OUT.mp4' in page and '--plot OUT.png' in page
