"""Logit lens against the model's own logits, a hand computation, TransformerLens's own lens, and bad inputs."""
import numpy as np
import pytest
import torch

from interp import InvalidInput
from interp.backends.bridge import bridge_of
from plots.lens import grid_figure, kl_figure, trajectory_figure
from probes.lens.logit import (
    ResidStack,
    decode,
    lens_from_stack,
    lens_metrics,
    lens_readout,
    logit_lens,
    residual_stack,
    single_token_id,
    token_trajectory,
)

PROMPT = "the cat sat on the mat. the dog sat on the log."


def test_last_layer_reproduces_model_logits(tiny_handle):
    logits = tiny_handle.logits([PROMPT])
    stack = residual_stack(tiny_handle, PROMPT)
    assert isinstance(stack, ResidStack) and stack.resid.shape[0] == tiny_handle.info.n_layers + 1
    assert stack.sites[-1].kind == "resid_post" and stack.labels[0] == "resid_pre 0"
    torch.testing.assert_close(decode(tiny_handle, stack.resid[-1]), logits[0], atol=1e-5, rtol=1e-5)
    res = logit_lens(tiny_handle, tiny_handle.tokenize([PROMPT]).tokens[0])
    torch.testing.assert_close(res.kl_to_final[-1], torch.zeros_like(res.kl_to_final[-1]), atol=1e-5, rtol=0)
    final_top1 = logits[0].argmax(-1)
    assert torch.equal(res.topk_ids[-1, :, 0], final_top1)


def test_metrics_match_hand_computation():
    logits = torch.tensor([[[2.0, 1.0, 0.0]]])  # [L=1, pos=1, vocab=3]
    final = torch.tensor([[0.0, 0.0, 3.0]])
    m = lens_metrics(logits, final, torch.tensor([1]), k=2)
    p = torch.tensor([2.0, 1.0, 0.0]).exp() / torch.tensor([2.0, 1.0, 0.0]).exp().sum()
    q = torch.tensor([0.0, 0.0, 3.0]).softmax(-1)
    assert m["topk_ids"][0, 0].tolist() == [0, 1]
    assert abs(m["target_prob"].item() - p[1].item()) < 1e-6
    assert m["target_rank"].item() == 1 and m["target_logit"].item() == 1.0
    assert abs(m["kl_to_final"].item() - (q * (q.log() - p.log())).sum().item()) < 1e-5
    assert abs(m["entropy"].item() - (-(p * p.log()).sum()).item()) < 1e-6


def test_chunked_readout_matches_full_reference_and_never_holds_more_than_a_chunk(tiny_handle, monkeypatch):
    stack = residual_stack(tiny_handle, PROMPT)
    targets = torch.cat([stack.token_ids[1:], stack.token_ids[:1]])
    logits = decode(tiny_handle, stack.resid)  # [L, pos, vocab] (fine for a tiny model)
    ref = lens_metrics(logits, logits[-1], targets, k=3)
    rows_seen = []
    real = tiny_handle.readout

    def spy(x):
        rows_seen.append(x.shape[0])
        return real(x)

    monkeypatch.setattr(tiny_handle, "readout", spy)
    d_vocab = tiny_handle.info.d_vocab
    got = lens_readout(tiny_handle, stack.resid, targets, k=3, chunk_elements=3 * d_vocab)
    assert max(rows_seen) == 3 and len(rows_seen) > 3  # 3 positions per chunk, several chunks
    for key, value in ref.items():
        torch.testing.assert_close(got[key].to(value.dtype), value, atol=2e-5, rtol=1e-4, msg=key)


def test_agrees_with_transformer_lens_logit_lens(tiny_handle):
    from transformer_lens.tools.analysis.logit_lens import logit_lens as tl_logit_lens

    stack = residual_stack(tiny_handle, PROMPT)
    res = lens_from_stack(tiny_handle, stack, k=4)
    tokens = stack.token_ids[None]
    nxt = torch.cat([tokens[:, 1:], res.targets[-1:].view(1, 1)], dim=1)
    tl = tl_logit_lens(bridge_of(tiny_handle), tokens, positions=None, targets=nxt)
    assert tl.labels == ["0_pre", "1_pre", "final_post"]
    assert torch.equal(tl.readout.target_ranks[:, 0, :, 0], res.target_rank)
    torch.testing.assert_close(tl.readout.entropy[:, 0], res.entropy, atol=1e-4, rtol=1e-4)
    top = tl_logit_lens(bridge_of(tiny_handle), tokens, positions=None, top_k=4)
    assert torch.equal(top.readout.top_ids[:, 0], res.topk_ids)


def test_targets_default_next_token_chosen_token_and_per_position(tiny_handle):
    stack = residual_stack(tiny_handle, PROMPT)
    res = lens_from_stack(tiny_handle, stack)
    assert res.targets[:-1].tolist() == stack.token_ids[1:].tolist()
    assert res.target_is_next[:-1].all() and not res.target_is_next[-1]
    assert res.targets[-1] == res.topk_ids[-1, -1, 0]  # last position: the model's own prediction
    tid = single_token_id(tiny_handle, " cat")
    chosen = lens_from_stack(tiny_handle, stack, targets=" cat")
    assert (chosen.targets == tid).all() and chosen.target_tokens[0] == " cat"
    by_id = lens_from_stack(tiny_handle, stack, targets=tid)
    torch.testing.assert_close(by_id.target_prob, chosen.target_prob)
    per_pos = lens_from_stack(tiny_handle, stack, targets=res.targets)
    torch.testing.assert_close(per_pos.target_prob, res.target_prob)
    traj = token_trajectory(tiny_handle, stack, 3, " cat")
    torch.testing.assert_close(traj.prob, chosen.target_prob[:, 3])
    assert torch.equal(traj.rank, chosen.target_rank[:, 3]) and traj.token == " cat"


def test_positions_subset_equals_slice_of_full(tiny_handle):
    stack = residual_stack(tiny_handle, PROMPT)
    full = lens_from_stack(tiny_handle, stack)
    part = lens_from_stack(tiny_handle, stack, positions=[2, -1])
    last = stack.n_pos - 1
    assert part.positions == [2, last] and part.tokens == [stack.tokens[2], stack.tokens[last]]
    torch.testing.assert_close(part.kl_to_final, full.kl_to_final[:, [2, last]])
    assert torch.equal(part.topk_ids, full.topk_ids[:, [2, last]])
    table = full.table()
    assert len(table) == full.target_prob.numel() and {"top1", "kl_to_final", "target_rank"} <= set(table.columns)
    assert full.mean_kl().shape == (tiny_handle.info.n_layers + 1,) and full.mean_kl()[-1].abs() < 1e-4


@pytest.mark.parametrize("call, match", [
    (lambda h, s: residual_stack(h, "   "), "empty"),
    (lambda h, s: residual_stack(h, "the cat " * 200), "at most 64 tokens"),
    (lambda h, s: lens_from_stack(h, s, positions=[99]), "Position 99 does not exist"),
    (lambda h, s: token_trajectory(h, s, -99, " cat"), "does not exist"),
    (lambda h, s: lens_from_stack(h, s, targets="the cat sat"), "tokens"),
    (lambda h, s: lens_from_stack(h, s, targets=10_000), "does not exist"),
    (lambda h, s: lens_from_stack(h, s, targets=torch.tensor([1, 2])), "one per token"),
    (lambda h, s: token_trajectory(h, s, 0, ""), "No token"),
    (lambda h, s: grid_figure(lens_from_stack(h, s), "colour"), "Cannot colour"),
])
def test_bad_inputs_are_invalid_input(tiny_handle, call, match):
    stack = residual_stack(tiny_handle, PROMPT)
    with pytest.raises(InvalidInput, match=match):
        call(tiny_handle, stack)


def test_figures_have_labelled_axes_tokens_and_hover(tiny_handle):
    stack = residual_stack(tiny_handle, PROMPT)
    res = lens_from_stack(tiny_handle, stack)
    fig = grid_figure(res, "target_prob")
    heat = fig.data[0]
    assert heat.type == "heatmap" and np.asarray(heat.z).shape == (3, stack.n_pos)
    assert heat.text is not None and "top-1" in heat.customdata[0][0] and "KL to final" in heat.customdata[0][0]
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text and fig.layout.xaxis2.title.text
    assert list(fig.layout.yaxis.ticktext) == res.layer_labels
    assert len(fig.layout.xaxis.ticktext) == stack.n_pos
    kl_grid = grid_figure(res, "kl_to_final")
    assert "KL" in kl_grid.data[0].colorbar.title.text
    traj = trajectory_figure([token_trajectory(tiny_handle, stack, 2, " cat")])
    assert traj.layout.yaxis.type == "log" and traj.layout.yaxis2.autorange == "reversed"
    kl = kl_figure(res.layer_labels, {"logit lens": res.mean_kl().tolist()})
    assert kl.data[0].y[-1] is None  # KL 0 at the final layer is left off the log axis
    assert "KL" in kl.layout.yaxis.title.text


def test_compatibility_mode_changes_only_the_logit_offset(tiny_gpt2_dir, tiny_handle):
    """The raw bridge needs no compatibility mode; in it (folded norm, centred unembed) probabilities agree."""
    import warnings

    from interp import load_model

    compat = load_model(tiny_gpt2_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge_of(compat).enable_compatibility_mode()
    raw, folded = logit_lens(tiny_handle, PROMPT), logit_lens(compat, PROMPT)
    for key in ("target_prob", "kl_to_final", "entropy"):
        torch.testing.assert_close(getattr(folded, key), getattr(raw, key), atol=1e-4, rtol=1e-4)
    assert torch.equal(folded.target_rank, raw.target_rank) and torch.equal(folded.topk_ids, raw.topk_ids)
    diff = decode(compat, residual_stack(compat, PROMPT).resid) - decode(tiny_handle, residual_stack(tiny_handle,
                                                                                                  PROMPT).resid)
    spread = (diff - diff.mean(-1, keepdim=True)).abs().max()  # [layers, pos, vocab]: one offset per row only
    assert spread < 1e-4, spread
    logits = compat.logits([PROMPT])
    torch.testing.assert_close(decode(compat, residual_stack(compat, PROMPT).resid[-1]), logits[0], atol=1e-5,
                               rtol=1e-5)
