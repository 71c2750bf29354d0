"""Per-layer features of texts at a position rule: padding never leaks in, bad positions are named."""
import numpy as np
import pytest

from interp.errors import InvalidInput
from interp.sites import Site
from probes.probing.layers import capture_texts, probe_site, probe_sites, read_spans


def test_probe_sites_name_embeddings_then_blocks():
    assert probe_site(0) == Site("resid_pre", 0) and probe_site(2) == Site("resid_post", 1)
    assert [str(s) for s in probe_sites(2)] == ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post",
                                                "blocks.1.hook_resid_post"]


def test_read_spans_rules_and_errors():
    lengths = np.array([5, 3])
    assert [a.tolist() for a in read_spans(lengths, "last")] == [[4, 2], [5, 3]]
    assert [a.tolist() for a in read_spans(lengths, 1)] == [[1, 1], [2, 2]]
    assert [a.tolist() for a in read_spans(lengths, -2)] == [[3, 1], [4, 2]]
    assert [a.tolist() for a in read_spans(lengths, (1, 3))] == [[1, 1], [3, 3]]
    with pytest.raises(InvalidInput, match=r"outside text 2 \('b'\): it has 3 tokens"):
        read_spans(lengths, 3, texts=["a", "b"])
    with pytest.raises(InvalidInput, match="outside text 2"):
        read_spans(lengths, (2, 4))
    with pytest.raises(InvalidInput, match="outside text 1"):
        read_spans(lengths, -6)
    with pytest.raises(InvalidInput, match="Unknown position rule"):
        read_spans(lengths, "middle")


def test_capture_texts_matches_single_runs(tiny_handle):
    texts = ["the cat sat on the mat. the dog sat", "hello", "def add(a, b):"]
    got = capture_texts(tiny_handle, texts, "last", batch_size=2)  # padded batches
    assert list(got.features) == ["L0", "L1", "L2"] and got.features["L2"].shape == (3, 32)
    for i, text in enumerate(texts):
        cap = tiny_handle.run(text, read=probe_sites(2))
        for layer, h in enumerate(probe_sites(2)):
            np.testing.assert_allclose(got.features[f"L{layer}"][i], cap[h][0, -1].numpy(), atol=1e-4)
        assert got.token_ids[i] == int(cap.tokens[0, -1])
    span = capture_texts(tiny_handle, texts, (1, 3))
    cap = tiny_handle.run(texts[0], read=probe_sites(2))
    np.testing.assert_allclose(span.features["L1"][0], cap[Site("resid_post", 0)][0, 1:3].mean(0).numpy(),
                               atol=1e-4)
    assert span.token_ids[0] == int(cap.tokens[0, 2])  # the span's last token


def test_capture_texts_names_bad_rows(tiny_handle):
    with pytest.raises(InvalidInput, match="outside text 2"):
        capture_texts(tiny_handle, ["the cat sat on the mat", "hi"], 4)
    with pytest.raises(InvalidInput, match="Text 2 .* longer than the 64 tokens"):
        capture_texts(tiny_handle, ["short", "the cat " * 100])
    with pytest.raises(InvalidInput, match="No texts"):
        capture_texts(tiny_handle, [])
