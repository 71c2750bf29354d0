"""The induction and causal-LM trainers on training.checkpoint: one atomic file holding the history and the RNG
state (dropout resumes identically), damaged checkpoints and token caches rebuilt with a message, non-finite
losses stopped naming the step, configs validated."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp import InvalidInput
from training.checkpoint import read_checkpoint
from training.guards import TrainingDiverged
from training.induction import InductionTrainConfig, train_induction
from training.lm import TrainSettings, cached_tokens, train_causal_lm

TINY = dict(n_layers=2, d_model=16, n_heads=2, d_vocab=32, seq_len=16, batch_size=2, steps=8, eval_every=4,
            checkpoint_every=2, eval_batch=2, seg_min=2, seg_max=4)


def test_induction_checkpoint_is_one_file_with_history_and_rng(tmp_path):
    train_induction(InductionTrainConfig(**TINY), work_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no history.json beside it
    payload = read_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 8 and "torch" in payload["rng"]
    assert '"steps": [0, 4, 8]' in payload["extra_json"]


def test_induction_damaged_checkpoint_is_reported_and_training_starts_afresh(tmp_path, capsys):
    c = InductionTrainConfig(**TINY)
    full = train_induction(c)
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    again = train_induction(c, work_dir=tmp_path)
    assert again.resumed_from == 0 and "damaged" in capsys.readouterr().out
    assert again.history.icl_score == full.history.icl_score


@pytest.mark.parametrize("bad, needle", [
    (dict(steps=0), "steps=0"), (dict(eval_every=0), "eval_every=0"), (dict(n_heads=0), "n_heads=0"),
    (dict(n_heads=3), "not divisible"), (dict(seg_min=5, seg_max=3), "seg_min 5 is larger than seg_max 3"),
    (dict(lr=float("inf")), "lr=inf"), (dict(lr=0.0), "lr=0.0"), (dict(seed=-1), "seed=-1"),
])
def test_induction_config_is_validated(bad, needle):
    with pytest.raises(InvalidInput) as err:
        train_induction(InductionTrainConfig(**{**TINY, **bad}))
    assert needle in str(err.value)


def test_induction_non_finite_loss_stops_naming_the_step():
    c = InductionTrainConfig(**{**TINY, "lr": 1e6, "warmup": 0})  # the largest rate accepted
    with pytest.raises(TrainingDiverged, match=r"step \d+: the loss is (nan|inf)"):
        train_induction(c)


def _tiny_lm(seed: int = 0, dropout: float = 0.3):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2, resid_pdrop=dropout,
                     embd_pdrop=dropout, attn_pdrop=dropout)
    return GPT2LMHeadModel(cfg)


def test_causal_lm_resume_equals_uninterrupted_with_dropout(tmp_path):
    """Dropout draws from torch's global RNG: without the RNG state in the checkpoint a resumed run differs."""
    tokens = np.random.default_rng(0).integers(0, 50, 2000).astype(np.uint16)
    s = TrainSettings(steps=12, batch_size=2, seq_len=8, warmup=2, checkpoint_every=4, eval_every=6, eval_batches=1)
    torch.manual_seed(1)
    full_model = _tiny_lm()
    full = train_causal_lm(full_model, tokens, tokens, s)

    class Stop(Exception):
        pass

    def stop_after_6(step: int, loss: float) -> None:
        if step + 1 == 6:
            raise Stop

    torch.manual_seed(1)
    model = _tiny_lm()
    with pytest.raises(Stop):
        train_causal_lm(model, tokens, tokens, s, checkpoint=tmp_path / "ck.pt", on_step=stop_after_6)
    assert read_checkpoint(tmp_path / "ck.pt")["step"] == 4
    torch.manual_seed(12345)  # whatever the RNG holds now, the checkpoint's state must win
    resumed_model = _tiny_lm()
    resumed = train_causal_lm(resumed_model, tokens, tokens, s, checkpoint=tmp_path / "ck.pt")
    assert resumed.train_loss == full.train_loss and resumed.eval_loss == full.eval_loss
    for a, b in zip(resumed_model.state_dict().values(), full_model.state_dict().values()):
        assert torch.equal(a, b)


def test_causal_lm_non_finite_loss_stops_naming_the_step():
    tokens = np.random.default_rng(0).integers(0, 50, 500).astype(np.uint16)
    model = _tiny_lm(dropout=0.0)
    with torch.no_grad():
        model.transformer.wte.weight[7] = float("nan")
    s = TrainSettings(steps=5, batch_size=2, seq_len=8, warmup=1)
    with pytest.raises(TrainingDiverged, match=r"step 1: the loss is nan"):
        train_causal_lm(model, np.full(500, 7, dtype=np.uint16), tokens, s)


def test_too_little_text_for_one_window_is_a_clear_error():
    with pytest.raises(InvalidInput, match="fewer than one window"):
        train_causal_lm(_tiny_lm(), np.arange(5, dtype=np.uint16), None, TrainSettings(steps=1, batch_size=1,
                                                                                       seq_len=8))


def _build(tokenizer_factory, calls):
    def build():
        calls.append(1)
        return tokenizer_factory(), {"train": np.arange(40, dtype=np.uint16), "heldout": np.arange(10, dtype=np.uint16)}
    return build


@pytest.mark.parametrize("damage", ["truncate_array", "garbage_tokenizer", "no_manifest", "manifest_disagrees"])
def test_token_cache_damage_is_detected_and_rebuilt(tmp_path, tiny_tokenizer, damage):
    calls: list[int] = []
    messages: list[str] = []
    build = _build(lambda: tiny_tokenizer, calls)
    tok, arrays = cached_tokens(tmp_path / "c", build, log=messages.append)
    assert calls == [1] and len(arrays["train"]) == 40
    cached_tokens(tmp_path / "c", build, log=messages.append)
    assert calls == [1] and not messages  # read back, not rebuilt
    c = tmp_path / "c"
    if damage == "truncate_array":
        (c / "train.npy").write_bytes((c / "train.npy").read_bytes()[:90])
    elif damage == "garbage_tokenizer":
        (c / "tokenizer" / "tokenizer.json").write_text("{not json")
    elif damage == "no_manifest":
        (c / "tokens.json").unlink()
    else:
        np.save(c / "heldout.npy", np.arange(3, dtype=np.uint16))
    tok, arrays = cached_tokens(c, build, log=messages.append)
    assert calls == [1, 1] and len(arrays["heldout"]) == 10
    assert messages and ("damaged" in messages[0] or "incomplete" in messages[0])
    assert len(tok) == len(tiny_tokenizer)
