"""Labelled CSV datasets: parsed correctly, refused clearly."""
import numpy as np
import pytest

from interp.errors import InvalidInput
from tasks.labelled import load_labelled_csv, parse_labelled_csv, parse_position


def test_classification_and_regression(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text('text,label\n"Paris, France",city\nthe cat,animal\nLyon,city\n', encoding="utf-8")
    d = load_labelled_csv(f, position="last")
    assert d.texts == ["Paris, France", "the cat", "Lyon"] and d.classes == ["animal", "city"]
    assert d.labels.tolist() == [1, 0, 1] and d.position == "last" and len(d) == 3
    r = parse_labelled_csv("name,lat\nParis,48.85\nOslo,59.91\n", text_column="name", label_column="lat",
                           task="regression", position="1:3")
    assert np.allclose(r.labels, [48.85, 59.91]) and r.classes is None and r.position == (1, 3)
    assert parse_labelled_csv(b"\xef\xbb\xbftext,label\na,x\nb,y\n").texts == ["a", "b"]  # UTF-8 BOM


@pytest.mark.parametrize("data, match", [
    ("words,label\na,x\n", "no column 'text'; its columns are 'words', 'label'"),
    ("", "no column"),
    ("text,label\na,x\nb,x\n", "only one class"),
    ("text,label\na,x\n,y\n", "line 3 has an empty text"),
    ("text,label\na,x\nb,\n", "line 3 has an empty label"),
    ("text,label\n", "no rows"),
    (b"text,label\ncaf\xe9,x\nb,y\n", "not UTF-8 text \\(bad byte at line 2\\)"),
])
def test_bad_input_is_refused_clearly(data, match):
    with pytest.raises(InvalidInput, match=match):
        parse_labelled_csv(data)


def test_regression_and_position_errors(tmp_path):
    with pytest.raises(InvalidInput, match="not a number"):
        parse_labelled_csv("text,label\na,1\nb,north\n", task="regression")
    with pytest.raises(InvalidInput, match="nothing to predict"):
        parse_labelled_csv("text,label\na,1\nb,1.0\n", task="regression")
    with pytest.raises(InvalidInput, match="position rule"):
        parse_position("middle")
    assert parse_position("3") == 3 and parse_position(-1) == -1
    with pytest.raises(InvalidInput, match="No CSV file"):
        load_labelled_csv(tmp_path / "missing.csv")


def test_bracket_example_twins_end_in_the_same_token(tiny_handle):
    from interp.tokens import tokenize
    from tasks.labelled import bracket_example_csv

    ds = parse_labelled_csv(bracket_example_csv())
    assert len(ds) == 120 and ds.classes == ["closed", "open"] and ds.labels.sum() == 60
    batch = tokenize(tiny_handle, ds.texts)
    last = batch.tokens[range(len(ds)), batch.lengths - 1]
    assert (last[0::2] == last[1::2]).all()  # open/closed twins: the last token carries no label


def test_bracket_example_reads_many_different_tokens(tiny_handle):
    """The control task cannot be passed by memorising a handful of last tokens (the demo must not be a
    non-result): 60 different last words, each in one open/closed pair."""
    from tasks.labelled import LAST_ARGS, bracket_example_csv

    ds = parse_labelled_csv(bracket_example_csv())
    assert len(set(LAST_ARGS)) == 60 and {t.rsplit(" ", 1)[-1] for t in ds.texts} == set(LAST_ARGS)
