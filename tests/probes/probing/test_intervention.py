"""Interventions: exact arithmetic on activations, and edits through hooks that move outputs as intended."""
import numpy as np
import pytest
import torch

from interp.errors import InvalidInput
from interp.sites import Site
from probes.probing.intervention import add_direction, direction_edit, output_change, project_out, push_to_class
from probes.probing.linear import fit_logistic, split_indices


def test_add_and_project_out_arithmetic():
    act = torch.randn(2, 5, 8)
    d = torch.randn(8)
    assert torch.allclose(add_direction(act, d, 2.0) - act, 2 * d.expand_as(act))
    p = project_out(act, d * 7)
    assert torch.allclose(p @ d, torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(project_out(p, d), p, atol=1e-6)  # idempotent
    h = direction_edit(d, alpha=1.0, mode="subtract", positions=[1, 3])
    out = h(act)
    assert torch.allclose(out[0, 1], act[0, 1] - d) and torch.allclose(out[1, 3], act[1, 3] - d)
    assert torch.equal(out[0, 0], act[0, 0]) and torch.equal(out[1, 1], act[1, 1])
    with pytest.raises(InvalidInput):
        direction_edit(d, mode="rotate")


def test_push_to_class_makes_the_probe_read_the_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 16)).astype(np.float32) * 3 + 1
    y = np.stack([(x @ rng.normal(size=(16, 3))).argmax(1), (x @ rng.normal(size=(16, 3))).argmax(1)], 1)
    probe = fit_logistic(x, y, split_indices(2000, seed=0))
    xs = torch.from_numpy(x[:200])
    task = rng.integers(0, 2, 200)
    target = (probe.predict(xs)[np.arange(200), task] + 1) % 3  # a class the probe does not read now
    moved = push_to_class(xs, probe, task, target, margin=3.0)
    logits = probe.scores(moved)[torch.arange(200), torch.from_numpy(task)]
    assert (logits.argmax(-1).numpy() == target).all()
    top2 = logits.topk(2).values
    assert (top2[:, 0] - top2[:, 1] >= 3.0 - 1e-3).all()
    # the other task's reading barely moves for most rows (edits are along one task's directions)
    assert (moved - xs).norm(dim=-1).mean() < 3 * xs.norm(dim=-1).mean()


def test_edit_steers_the_model_output(tiny_handle):
    tokens = torch.tensor([[5, 17, 42, 9, 3, 11]])
    last = Site("resid_post", tiny_handle.info.n_layers - 1)
    clean = tiny_handle.logits(tokens)
    keep = direction_edit(torch.ones(tiny_handle.info.d_model), alpha=0.0)
    same = tiny_handle.run(tokens, edit={last: keep}).logits
    assert torch.allclose(clean, same, atol=1e-5)
    w_u = tiny_handle.weights().W_U.T  # [vocab, d]
    j = int(clean[0, -1].argmin())  # the token the model now likes least
    edited = tiny_handle.run(tokens, edit={last: direction_edit(w_u[j], alpha=50.0, positions=-1)}).logits
    assert int(edited[0, -1].argmax()) == j
    assert torch.allclose(edited[0, :-1], clean[0, :-1], atol=1e-5)  # earlier positions untouched
    ch = output_change(clean[0], edited[0])
    assert ch["top1_changed"] == pytest.approx(1 / 6) and ch["kl"] > 0
    with pytest.raises(InvalidInput, match="not a site"):
        tiny_handle.run(tokens, edit={"blocks.0.hook_nope": lambda a: a})
