"""Property-based tests of the one set of input validators (interp.validate): indices, prompts, token tensors,
hook names and probe data either come back canonical or raise InvalidInput; nothing else escapes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from interp import validate
from interp.errors import InvalidInput

FAST = settings(max_examples=150, deadline=None, database=None,  # no .hypothesis folder in the repo
                suppress_health_check=[HealthCheck.too_slow])

integers = st.integers(min_value=-(2**40), max_value=2**40)
int_like = st.one_of(
    integers,
    integers.map(np.int64),
    st.integers(-(2**31), 2**31 - 1).map(np.int32),
    st.integers(0, 255).map(np.uint8),
    integers.map(lambda i: torch.tensor(i)),
)
not_int = st.one_of(
    st.booleans(), st.booleans().map(np.bool_), st.none(), st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=False).map(np.float64), st.text(max_size=5), st.binary(max_size=3),
    st.lists(st.integers(), max_size=2), st.complex_numbers(max_magnitude=10),
    st.floats(-5, 5).map(lambda f: torch.tensor(f)), st.just(torch.tensor([1])),
)


@FAST
@given(v=int_like, n=st.integers(1, 50))
def test_integer_scalars_of_any_library_are_indices(v, n):
    i = int(v.item()) if isinstance(v, torch.Tensor) else int(v)
    if 0 <= i < n:
        got = validate.layer_index(v, n)
        assert got == i and type(got) is int
    else:
        with pytest.raises(InvalidInput, match=f"0..{n - 1}"):
            validate.layer_index(v, n)


@FAST
@given(v=not_int)
def test_bools_floats_none_nan_strings_are_never_indices(v):
    with pytest.raises(InvalidInput):
        validate.layer_index(v, 10)
    with pytest.raises(InvalidInput):
        validate.head_index(0, v, 10, 10)


def test_floats_are_not_truncated():
    for v in (1.5, 1.0, np.float32(1.0), torch.tensor(1.0)):
        with pytest.raises(InvalidInput, match="whole number"):
            validate.layer_index(v, 4)


@FAST
@given(text=st.text(max_size=40))
def test_prompts_are_nonblank_encodable_text(text):
    ok = bool(text.strip())
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        ok = False
    if ok:
        assert validate.prompt_list(text) == [text]  # a str is ONE prompt
    else:
        with pytest.raises(InvalidInput):
            validate.prompt_text(text)


@FAST
@given(before=st.text(max_size=5), after=st.text(max_size=5), cp=st.integers(0xD800, 0xDFFF))
def test_lone_surrogates_are_refused_with_their_position(before, after, cp):
    text = "x" + before + chr(cp) + after
    with pytest.raises(InvalidInput, match="surrogate"):
        validate.prompt_text(text)


@FAST
@given(bad=st.one_of(st.none(), st.integers(), st.binary(), st.just([]), st.lists(st.none(), min_size=1, max_size=3),
                     st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)))
def test_non_text_prompts_are_refused(bad):
    with pytest.raises(InvalidInput):
        validate.prompt_list(bad)


token_arrays = hnp.arrays(dtype=st.sampled_from([np.int64, np.int32, np.int16, np.uint8, np.float32, np.float64,
                                                 np.bool_]),
                          shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
                          )


@FAST
@given(arr=token_arrays, vocab=st.integers(1, 300), as_torch=st.booleans())
def test_token_tensors_are_int_2d_nonempty_and_in_vocab(arr, vocab, as_torch):
    x = torch.from_numpy(arr.copy()) if as_torch else arr
    integral = np.issubdtype(arr.dtype, np.integer)
    good = (integral and arr.ndim in (1, 2) and arr.size > 0 and (arr.ndim == 1 or arr.shape[0] > 0)
            and int(arr.min()) >= 0 and int(arr.max()) < vocab)
    if good:
        t = validate.token_tensor(x, vocab)
        assert t.dtype == torch.long and t.ndim == 2
        assert np.array_equal(t.numpy(), arr.reshape(t.shape).astype(np.int64))
    else:
        with pytest.raises(InvalidInput):
            validate.token_tensor(x, vocab)


@FAST
@given(name=st.text(min_size=1, max_size=30))
def test_a_bare_hook_name_is_one_name(name):
    assert validate.hook_name_list(name) == [name]


@FAST
@given(names=st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=4))
def test_hook_name_lists_hold_only_text(names):
    if all(isinstance(n, str) for n in names):
        assert validate.hook_name_list(names) == names
    else:
        with pytest.raises(InvalidInput, match="hook name must be text"):
            validate.hook_name_list(names)


# ----------------------------------------------------------------------------- probe inputs

features = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
                      elements=st.floats(allow_nan=True, allow_infinity=True, width=32))


@FAST
@given(x=features)
def test_features_are_finite_2d_nonempty(x):
    good = x.ndim == 2 and x.size > 0 and bool(np.isfinite(x).all())
    if good:
        assert validate.features(x) is x  # no copy (memmaps stay memmaps)
    else:
        with pytest.raises(InvalidInput):
            validate.features(x)


@FAST
@given(y=hnp.arrays(np.float64, st.integers(1, 8),
                   elements=st.one_of(st.integers(-2, 3).map(float), st.floats(-3, 3), st.just(float("nan")),
                                      st.just(float("inf")))),
       n=st.integers(1, 8))
def test_class_labels_are_whole_nonnegative_and_one_per_row(y, n):
    good = len(y) == n and bool(np.isfinite(y).all()) and bool((y == np.round(y)).all()) and bool((y >= 0).all())
    if good:
        out = validate.labels(y, n)
        assert out.dtype == np.int64 and np.array_equal(out, y.astype(np.int64))
    else:
        with pytest.raises(InvalidInput):
            validate.labels(y, n)


def test_string_labels_and_mismatched_lengths_are_refused():
    with pytest.raises(InvalidInput, match="numbers"):
        validate.labels(np.array(["a", "b"]), 2)
    with pytest.raises(InvalidInput, match="3 labels for 4"):
        validate.labels([0, 1, 0], 4)


@FAST
@given(a=st.floats(allow_nan=True, allow_infinity=True), b=st.floats(allow_nan=True, allow_infinity=True))
def test_split_fractions_are_in_the_unit_interval_and_leave_a_test_part(a, b):
    good = all(math.isfinite(v) and 0 < v <= 1 for v in (a, b)) and a + b < 1
    if good:
        assert validate.split_fractions((a, b)) == (a, b)
    else:
        with pytest.raises(InvalidInput):
            validate.split_fractions((a, b))


@FAST
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4))
def test_regularisation_grids_are_finite_and_nonnegative(values):
    good = bool(values) and all(math.isfinite(v) and v >= 0 for v in values)
    if good:
        assert validate.grid(values, "l2") == values
    else:
        with pytest.raises(InvalidInput):
            validate.grid(values, "l2")
