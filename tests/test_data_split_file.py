"""Split files: parsing, validation errors (file:line), missing paths, writer."""
import os

import pytest

from datasets.split_file import (MissingPathsError, SplitFileError, read_split_file,
                                 write_split_file)


def _touch(p):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").close()
    return p


def _write(p, text):
    with open(p, "w") as f:
        f.write(text)
    return str(p)


def test_classification_with_data_root_and_spaces(tmp_path):
    root = tmp_path / "root"
    _touch(str(root / "subject 1" / "anger" / "sentence 1" / "s1_an_1.avi"))
    _touch(str(root / "clips" / "00001.mp4"))
    (root / "frames" / "00002").mkdir(parents=True)
    sf = _write(tmp_path / "train.txt",
                "subject 1/anger/sentence 1/s1_an_1.avi 0\n\nclips/00001.mp4 3\n"
                "frames/00002   6  \n")
    es = read_split_file(sf, "classification", num_classes=7, data_root=str(root))
    assert [e.label for e in es] == [0, 3, 6]
    assert es[0].path == os.path.join(str(root), "subject 1/anger/sentence 1/s1_an_1.avi")
    assert es[0].raw_path == "subject 1/anger/sentence 1/s1_an_1.avi"
    assert [e.line for e in es] == [1, 3, 4]


def test_relative_paths_without_root_used_as_given(tmp_path, monkeypatch):
    _touch(str(tmp_path / "v.mp4"))
    monkeypatch.chdir(tmp_path)
    sf = _write(tmp_path / "s.txt", "v.mp4 1\n")
    assert read_split_file(sf, num_classes=2)[0].path == "v.mp4"


def test_regression_values(tmp_path):
    _touch(str(tmp_path / "a.mp4"))
    sf = _write(tmp_path / "s.txt", f"{tmp_path}/a.mp4 0.5 -0.25 1e-3\n")
    (e,) = read_split_file(sf, "regression", num_outputs=3)
    assert e.label == (0.5, -0.25, 0.001)


def test_malformed_lines_name_file_and_line(tmp_path):
    _touch(str(tmp_path / "a.mp4"))
    a = f"{tmp_path}/a.mp4"
    sf = _write(tmp_path / "bad.txt", f"{a} 1\n{a} x\n{a}\n{a} 7\n{a} -1\n{a} 2.5\n")
    with pytest.raises(SplitFileError) as ei:
        read_split_file(sf, "classification", num_classes=7)
    msg = str(ei.value)
    for ln in (2, 3, 4, 5, 6):
        assert f"{sf}:{ln}:" in msg
    assert f"{sf}:1:" not in msg
    assert "out of range" in msg and "5 malformed" in msg
    assert [ln for ln, _ in ei.value.errors] == [2, 3, 4, 5, 6]


def test_regression_wrong_number_of_values(tmp_path):
    _touch(str(tmp_path / "a.mp4"))
    a = f"{tmp_path}/a.mp4"
    sf = _write(tmp_path / "bad.txt", f"{a} 0.1 0.2 0.3\n{a} 0.1 0.2\n{a} 0.1 0.2 0.3 0.4\n")
    with pytest.raises(SplitFileError) as ei:
        read_split_file(sf, "regression", num_outputs=3)
    msg = str(ei.value)
    assert f"{sf}:2:" in msg and f"{sf}:3:" in msg and f"{sf}:1:" not in msg
    assert "found 2" in msg and "found 4" in msg


def test_all_missing_paths_in_one_error(tmp_path):
    _touch(str(tmp_path / "ok.mp4"))
    lines = ["ok.mp4 0"] + [f"missing_{i}.mp4 1" for i in range(30)]
    sf = _write(tmp_path / "s.txt", "\n".join(lines) + "\n")
    with pytest.raises(MissingPathsError) as ei:
        read_split_file(sf, num_classes=2, data_root=str(tmp_path))
    msg = str(ei.value)
    assert "30 path(s) do not exist" in msg
    assert "missing_0.mp4" in msg and "missing_19.mp4" in msg and "missing_25.mp4" not in msg
    assert "and 10 more" in msg and f"{sf}:2:" in msg
    assert len(ei.value.missing) == 30
    # no check: reads fine
    assert len(read_split_file(sf, num_classes=2, data_root=str(tmp_path), check_paths=False)) == 31


def test_pretrain_optional_dummy_label(tmp_path):
    for n in ("a.mp4", "b.mp4"):
        _touch(str(tmp_path / n))
    sf = _write(tmp_path / "p.txt", "a.mp4 0\nb.mp4\n")
    es = read_split_file(sf, "pretrain", data_root=str(tmp_path))
    assert [os.path.basename(e.path) for e in es] == ["a.mp4", "b.mp4"]
    assert all(e.label is None for e in es)


def test_pretrain_paths_ending_in_a_number(tmp_path):
    """eNTERFACE'05 names folders 'subject 1/anger/sentence 1': no word of them is a dummy label."""
    for sub in ("subject 1/anger/sentence 1", "subject 1/anger/sentence 2", "subject 2/fear/sentence 5"):
        os.makedirs(tmp_path / sub)
    sf = _write(tmp_path / "p.txt", "subject 1/anger/sentence 1\n"       # no dummy label
                                    "subject 1/anger/sentence 2 0\n"     # dummy label 0
                                    "subject 2/fear/sentence 5 3\n")
    es = read_split_file(sf, "pretrain", data_root=str(tmp_path))
    assert [e.raw_path for e in es] == ["subject 1/anger/sentence 1", "subject 1/anger/sentence 2",
                                        "subject 2/fear/sentence 5"]
    # the project's writer adds the dummy label, so a reader without the files gets the same paths
    from datasets.split_file import write_split_file
    out = str(tmp_path / "w.txt")
    write_split_file(out, [(e.raw_path, 0) for e in es])
    again = read_split_file(out, "pretrain", data_root=str(tmp_path / "elsewhere"), check_paths=False)
    assert [e.raw_path for e in again] == [e.raw_path for e in es]


def test_missing_split_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="split file not found"):
        read_split_file(str(tmp_path / "nope.txt"))


def test_writer_round_trip_and_deterministic(tmp_path):
    rows_c = [("subject 1/anger/x.avi", 0), ("b/00002", 6)]
    rows_r = [("a.mp4", (0.1, 1 / 3, 2.0)), ("b.mp4", [0, -1.5, 1e-7])]
    p1, p2 = str(tmp_path / "c.txt"), str(tmp_path / "r.txt")
    assert write_split_file(p1, rows_c) == 2
    write_split_file(p2, rows_r)
    text = open(p2).read()
    write_split_file(p2, rows_r)
    assert open(p2).read() == text
    assert open(p1).read() == "subject 1/anger/x.avi 0\nb/00002 6\n"
    es = read_split_file(p1, num_classes=7, check_paths=False)
    assert [(e.raw_path, e.label) for e in es] == rows_c
    es = read_split_file(p2, "regression", num_outputs=3, check_paths=False)
    assert es[0].label == (0.1, 1 / 3, 2.0) and es[1].label == (0.0, -1.5, 1e-7)
    with pytest.raises(ValueError):
        write_split_file(str(tmp_path / "x.txt"), [("a\nb", 0)])


def test_bom_extra_column_and_missing_paths_in_one_report(tmp_path):
    """A BOM is not part of the first path; 'clip.mp4 0 3' is an extra column, not a missing path
    'clip.mp4 0'; malformed lines and missing paths come in one error."""
    clip = tmp_path / 'clip.mp4'
    clip.write_bytes(b'x')
    f = tmp_path / 'bom.csv'
    f.write_bytes('\ufeff'.encode('utf-8') + f'{clip} 2\n'.encode())
    assert [e.path for e in read_split_file(str(f), num_classes=7)] == [str(clip)]
    g = tmp_path / 'bad.csv'
    g.write_text(f'{clip} 0 3\n{tmp_path}/gone.mp4 1\n{clip} x\n')
    with pytest.raises(SplitFileError) as e:
        read_split_file(str(g), num_classes=7)
    msg = str(e.value)
    assert f'{g}:1: expected 1 numeric value(s) after the path, found 2' in msg and 'extra column' in msg
    assert f'{g}:3:' in msg and f'{g}:2: {tmp_path}/gone.mp4' in msg   # both kinds, one round
    assert e.value.missing == [(2, f'{tmp_path}/gone.mp4')]
