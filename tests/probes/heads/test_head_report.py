"""Head report: every detector plus the ablation effect on the scan's own rows, and one row's patterns."""
import numpy as np
import pytest
import torch

from interp.backends.bridge import bridge_of
from interp.errors import InvalidInput
from interp.tokens import tokenize
from probes.heads.ablation import ablate_heads
from probes.heads.detectors import SCORE_NAMES, capture_patterns, repeated_batch, scan_heads
from probes.heads.report import ABLATION_SCORE, ICL_SCORE, head_report


@pytest.fixture(scope="module")
def gqa_dir():
    from tests.fuzz.model_dirs import gqa_dir as build

    return build


def test_report_combines_scan_ablation_and_example(tiny_handle):
    seen = []
    rep = head_report(tiny_handle, seq_len=5, n_batch=3, seed=2, ablation="zero",
                      progress=lambda f, m: seen.append(f))
    assert set(rep.scores.scores) == set(SCORE_NAMES) | {ABLATION_SCORE, ICL_SCORE}
    scan = scan_heads(tiny_handle, seq_len=5, n_batch=3, seed=2)
    for k in SCORE_NAMES:
        torch.testing.assert_close(rep.scores.scores[k], scan.scores[k])
    rows = repeated_batch(tiny_handle, 3, 5, seed=2)  # [3, 11]: BOS + A + A
    assert rows.shape == (3, 11) and torch.equal(rows[:, 1:6], rows[:, 6:])
    direct = ablate_heads(tiny_handle, rows, 5, mode="zero")
    torch.testing.assert_close(rep.scores.scores[ABLATION_SCORE], direct.effect)
    torch.testing.assert_close(rep.scores.scores[ICL_SCORE], direct.icl_effect)
    assert rep.baseline_icl == pytest.approx(direct.baseline_icl)
    assert rep.baseline_second_loss == pytest.approx(direct.baseline_second)
    assert rep.example_patterns.shape == (2, 4, 11, 11)  # [layer, head, q, k] of row 0
    expected = capture_patterns(tiny_handle, tokenize(tiny_handle, rows[:1]))[:, 0]
    np.testing.assert_allclose(rep.pattern(1, 3), expected[1, 3].numpy(), atol=2e-3)
    assert len(rep.example_tokens) == 11 and rep.scores.settings["ablation"] == "zero"
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert "ablation_effect" in rep.scores.table().columns


def test_report_without_ablation_and_bad_input(tiny_handle):
    rep = head_report(tiny_handle, seq_len=4, n_batch=2, ablation="off")
    assert ABLATION_SCORE not in rep.scores.scores and rep.baseline_icl is None
    with pytest.raises(InvalidInput, match="layers 0..1, heads 0..3"):
        rep.pattern(2, 0)
    with pytest.raises(InvalidInput, match="Ablation must be one of"):
        head_report(tiny_handle, ablation="resample")
    with pytest.raises(InvalidInput, match="seq_len must be in 2..31"):
        head_report(tiny_handle, seq_len=40)


def test_ablation_reports_progress_per_layer(tiny_handle):
    calls = []
    ablate_heads(tiny_handle, repeated_batch(tiny_handle, 2, 4), 4, progress=lambda f, m: calls.append((f, m)))
    assert calls == [(0.5, "ablated layer 1/2"), (1.0, "ablated layer 2/2")]


def test_pattern_accepts_numpy_indices_and_refuses_floats(tiny_handle):
    rep = head_report(tiny_handle, seq_len=4, n_batch=2, ablation="off")
    np.testing.assert_array_equal(rep.pattern(np.int64(1), torch.tensor(2)), rep.pattern(1, 2))
    for bad in (1.5, 1.0, True, None, float("nan"), "1"):
        with pytest.raises(InvalidInput):
            rep.pattern(bad, 0)


@pytest.mark.parametrize("kind", ["llama", "qwen2", "mistral"])
def test_grouped_query_models_report_every_query_head(gqa_dir, kind):
    from interp import load_model
    from probes.heads.detectors import k_composition_scores

    handle = load_model(gqa_dir(kind))
    assert bridge_of(handle).W_K.shape[1] == 2 and handle.info.n_heads == 4  # 2 KV heads shared by 4 query heads
    rep = head_report(handle, seq_len=6, n_batch=2, ablation="zero")
    table = rep.scores.table()
    assert len(table) == 2 * 4 and table[list(SCORE_NAMES) + [ABLATION_SCORE]].notna().all().all()
    kc = k_composition_scores(handle)
    assert kc.shape == (2, 4, 2, 4) and bool(torch.isfinite(kc).all()) and float(kc[0, :, 1].min()) > 0
