"""Logit lens against the model's own logits and a hand computation."""
import torch

from interp.capture import forward_logits
from probes.lens import decode, lens_metrics, logit_lens, residual_stack


def test_last_layer_reproduces_model_logits(tiny_handle):
    batch, logits = forward_logits(tiny_handle, ["the cat sat on the mat"])
    stack, names = residual_stack(tiny_handle, batch.tokens)
    assert names[-1].endswith("hook_resid_post") and stack.shape[0] == tiny_handle.cfg.n_layers + 1
    torch.testing.assert_close(decode(tiny_handle, stack[-1]), logits[0], atol=1e-5, rtol=1e-5)
    res = logit_lens(tiny_handle, batch.tokens[0])
    assert torch.allclose(res.kl_to_final[-1], torch.zeros_like(res.kl_to_final[-1]), atol=1e-5)


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
