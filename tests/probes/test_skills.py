"""LM skill scores against a direct computation on a tiny model."""
import pytest
import torch

from interp import InvalidInput
from probes.skills import SkillCase, score_skills, skills_summary, skills_table


def test_scores_match_teacher_forced_log_probs(tiny_handle):
    case = SkillCase("copy", "the cat sat on the", " mat.")
    [s] = score_skills(tiny_handle, (case,))
    tok = tiny_handle.tokenizer
    p = tok(case.prompt, add_special_tokens=False)["input_ids"]
    e = tok(case.expected, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[tiny_handle.bos_token_id] + p + e])
    logits = tiny_handle.logits(ids)
    logp = logits[0].log_softmax(-1)
    want = sum(float(logp[len(p) + i, t]) for i, t in enumerate(e))
    assert s.logprob == pytest.approx(want, abs=1e-4)
    assert s.first_prob == pytest.approx(float(logp[len(p), e[0]].exp()), abs=1e-6)
    first_greedy = int(logp[len(p)].argmax())
    assert (s.first_rank == 0) == (first_greedy == e[0])
    assert s.greedy == all(int(logp[len(p) + i].argmax()) == t for i, t in enumerate(e))


def test_tables_and_bad_cases(tiny_handle):
    scores = score_skills(tiny_handle)
    df = skills_table(scores)
    assert len(df) == len(scores) and df["p(first token)"].between(0, 1).all()
    summary = skills_summary(scores)
    assert summary["cases"].sum() == len(scores)
    with pytest.raises(InvalidInput):
        score_skills(tiny_handle, ())
    with pytest.raises(InvalidInput):
        score_skills(tiny_handle, (SkillCase("x", "", "y"),))
