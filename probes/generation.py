"""Next-token sampling made visible: temperature, top-k and top-p on the model's distribution, and seeded generation.

Here rather than in ``tasks/`` because it analyses a model's output (the distribution it emits at each step, before
and after each transformation) and returns plain results; ``tasks/`` holds inputs with known answers. Our own few
lines rather than Hugging Face's ``generate``: the page shows every intermediate distribution, and the token
``i`` of a run is drawn with its own generator seeded from (seed, i), so stepping one token at a time and
generating n at once give the same text. The order is Hugging Face's: temperature, then top-k, then top-p on what
top-k kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from interp import validate
from interp.errors import InvalidInput
from interp.model import Model
from interp.prompt_check import check_prompt

#: Longest run the app and library generate in one call (no KV cache: each token re-runs the whole context).
MAX_NEW_TOKENS = 256
MAX_TEMPERATURE = 100.0


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen. ``temperature`` 0 means greedy (always the most likely token); ``top_k`` 0
    and ``top_p`` 1.0 switch those truncations off."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    def checked(self, d_vocab: int | None = None) -> Sampling:
        """The same settings validated (InvalidInput naming the bad one)."""
        t = validate.number(self.temperature, "Temperature", low=0.0, high=MAX_TEMPERATURE)
        k = validate.count(self.top_k, "Top-k", low=0, high=d_vocab)
        p = validate.number(self.top_p, "Top-p", low=0.0, high=1.0, low_open=True)
        seed = validate.count(self.seed, "Seed", low=0, high=2**31 - 1)
        return Sampling(t, k, p, seed)


@dataclass(frozen=True)
class Distribution:
    """The next-token distribution at each stage: raw softmax, after temperature, after top-k and top-p."""

    raw: torch.Tensor  # [vocab] softmax(logits), float64
    tempered: torch.Tensor  # [vocab] softmax(logits / T) (one-hot on the argmax for T = 0)
    final: torch.Tensor  # [vocab] after top-k and top-p, renormalised: what is sampled from
    kept: torch.Tensor  # [vocab] bool, the tokens that survive the truncations


def with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last axis (float64); T = 0 is the limit: all mass on the first argmax."""
    logits = logits.double()
    if temperature == 0:
        out = torch.zeros_like(logits)
        out.scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
        return out
    return torch.softmax(logits / temperature, dim=-1)


def top_k_mask(probs: torch.Tensor, k: int) -> torch.Tensor:
    """``[vocab]`` bool: the ``k`` most probable tokens (ties broken toward the lower id); all when k is 0."""
    if k <= 0 or k >= probs.shape[-1]:
        return torch.ones_like(probs, dtype=torch.bool)
    order = _descending(probs)
    mask = torch.zeros_like(probs, dtype=torch.bool)
    mask[order[:k]] = True
    return mask


def top_p_mask(probs: torch.Tensor, p: float) -> torch.Tensor:
    """``[vocab]`` bool: the nucleus, the fewest most-probable tokens whose probabilities sum to at least ``p``
    (a token is kept when the tokens ranked above it sum to less than p; the top token is always kept)."""
    if p >= 1.0:
        return probs > 0 if bool((probs > 0).any()) else torch.ones_like(probs, dtype=torch.bool)
    order = _descending(probs)
    before = torch.cumsum(probs[order], 0) - probs[order]  # [vocab] mass ranked above each token
    keep_sorted = before < p
    keep_sorted[0] = True
    mask = torch.zeros_like(probs, dtype=torch.bool)
    mask[order[keep_sorted]] = True
    return mask


def _descending(probs: torch.Tensor) -> torch.Tensor:
    """Token ids by decreasing probability, equal probabilities by increasing id (deterministic)."""
    return torch.sort(-probs, stable=True).indices


def distribution(logits: torch.Tensor, sampling: Sampling) -> Distribution:
    """``logits [vocab]`` -> each stage of the next-token distribution under ``sampling``."""
    if logits.ndim != 1 or not bool(torch.isfinite(logits).all()):
        raise InvalidInput("Next-token logits must be one finite value per vocabulary token.")
    s = sampling.checked(logits.shape[0])
    raw = torch.softmax(logits.double(), dim=-1)
    tempered = with_temperature(logits, s.temperature)
    kept = top_k_mask(tempered, s.top_k)
    after_k = torch.where(kept, tempered, torch.zeros_like(tempered))
    after_k = after_k / after_k.sum()
    kept = kept & top_p_mask(after_k, s.top_p)
    final = torch.where(kept, tempered, torch.zeros_like(tempered))
    return Distribution(raw=raw, tempered=tempered, final=final / final.sum(), kept=kept)


def draw(final: torch.Tensor, seed: int, index: int) -> int:
    """A token id drawn from ``final`` with a generator seeded from (seed, index): the same every time."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(index))
    return int(torch.multinomial(final.double(), 1, generator=gen))


@dataclass(frozen=True)
class Row:
    """One token of a step's probability table."""

    token: str
    token_id: int
    raw: float
    tempered: float
    final: float
    kept: bool


@dataclass(frozen=True)
class GenStep:
    """One generated token: what was drawn and the distribution it was drawn from (the most likely rows)."""

    index: int  # 0 for the first generated token
    token_id: int
    token: str
    probability: float  # of the drawn token under the final distribution
    n_kept: int  # tokens that survived top-k / top-p
    table: tuple[Row, ...]


@dataclass(frozen=True)
class Generation:
    prompt: str
    sampling: Sampling
    steps: tuple[GenStep, ...]
    text: str  # the prompt followed by the generated tokens
    stopped: str | None = None  # why generation ended before the asked number of tokens


def table(model: Model, dist: Distribution, rows: int = 10) -> tuple[Row, ...]:
    """The ``rows`` most likely tokens after temperature, with their probability at each stage."""
    order = _descending(dist.tempered)[:rows]
    names = model.to_str_tokens(order)
    return tuple(Row(names[i], int(t), float(dist.raw[t]), float(dist.tempered[t]), float(dist.final[t]),
                     bool(dist.kept[t])) for i, t in enumerate(order.tolist()))


def _context(model: Model, prompt: str, previous: tuple[int, ...] | list[int]) -> torch.Tensor:
    """``[1, pos]``: the prompt's tokens (BOS first) followed by the ``previous`` generated ids, checked."""
    validate.prompt_text(prompt)
    check = check_prompt(model, prompt)
    if check.too_long:
        raise InvalidInput(check.length_message or "The prompt is too long.")
    prev = validate.token_tensor(torch.as_tensor(list(previous), dtype=torch.long), model.info.d_vocab,
                                 model.info.name) if len(previous) else torch.zeros(1, 0, dtype=torch.long)
    return torch.cat([model.tokenize(prompt).tokens, prev.to(model.device)], dim=1)


def _last_logits(model: Model, ids: torch.Tensor) -> torch.Tensor:  # [vocab]
    return model.run(ids, logit_positions=torch.tensor([ids.shape[1] - 1])).logits[0, -1].float()  # type: ignore


def next_distribution(model: Model, prompt: str, sampling: Sampling = Sampling(),
                      previous: tuple[int, ...] | list[int] = ()) -> Distribution:
    """The distribution the next token would be drawn from after ``prompt`` and the ``previous`` ids (no draw)."""
    ids = _context(model, prompt, previous)
    if ids.shape[1] >= model.info.n_ctx:
        raise InvalidInput(f"The context is full ({model.info.n_ctx} tokens): {model.info.name} cannot read one more.")
    return distribution(_last_logits(model, ids), sampling.checked(model.info.d_vocab))


def generate(model: Model, prompt: str, n_tokens: int, sampling: Sampling = Sampling(), *,
             previous: tuple[int, ...] | list[int] = (), table_rows: int = 10) -> Generation:
    """``n_tokens`` tokens after ``prompt`` (and after the ``previous`` token ids generated before), each drawn from
    the model's distribution under ``sampling``.

    Token i of a run (counting ``previous``) is drawn with the generator seeded from (seed, i), so stepping one
    token at a time (passing what was generated so far as ``previous``) gives exactly the text of generating n at
    once. Stops early, saying why, at the model's end-of-text token or its context length."""
    n_tokens = validate.count(n_tokens, "Tokens to generate", low=1, high=MAX_NEW_TOKENS)
    table_rows = validate.count(table_rows, "Table rows", low=1, high=model.info.d_vocab)
    s = sampling.checked(model.info.d_vocab)
    ids = _context(model, prompt, previous)  # [1, pos]
    eos = getattr(model.tokenizer, "eos_token_id", None)
    steps: list[GenStep] = []
    stopped = None
    for i in range(len(previous), len(previous) + n_tokens):
        if ids.shape[1] >= model.info.n_ctx:
            stopped = f"the context is full ({model.info.n_ctx} tokens)"
            break
        dist = distribution(_last_logits(model, ids), s)
        tid = draw(dist.final, s.seed, i)
        steps.append(GenStep(i, tid, model.to_str_tokens(torch.tensor([tid]))[0], float(dist.final[tid]),
                             int(dist.kept.sum()), table(model, dist, table_rows)))
        ids = torch.cat([ids, torch.tensor([[tid]], device=ids.device)], dim=1)
        if eos is not None and tid == eos:
            stopped = "the model produced its end-of-text token"
            break
    new = [*map(int, previous), *(st.token_id for st in steps)]
    text = prompt + model.tokenizer.decode(new)
    return Generation(prompt, s, tuple(steps), text, stopped)
