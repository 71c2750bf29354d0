"""What both lens experiments share, so neither imports the other: the text windows they read (the same
held-out windows, so their per-layer numbers match), the prompts drawn as grids, and the per-layer table."""
from __future__ import annotations

import torch

from interp.errors import InvalidInput
from interp.model import Model
from interp.tokens import tokenize
from plots.lens import grid_figure
from probes.lens.logit import logit_lens
from probes.lens.tuned import LensEval

#: Short prompts drawn as nostalgebraist grids (code, since the bundled model reads Python).
FIGURE_PROMPTS = (
    "def __init__(self, name, value=None):\n    self.name = name\n    self.value = value\n",
    "import os\nimport sys\n\nfor path in sys.argv[1:]:\n    print(os.path.basename(path))\n",
    "The quick brown fox jumps over the lazy dog.",
)


def token_windows(tokenizer, docs: list[str], n: int, seq_len: int, seed: int) -> torch.Tensor:
    """``n`` windows of ``seq_len`` tokens [n, seq_len] from documents in a seeded order (EOS between documents).

    Only as many documents are tokenized as the windows need (about 4x their tokens), so this is fast on a
    large corpus; the same seed gives the same windows.
    """
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(docs), generator=gen).tolist()
    need = max(4 * n * seq_len, seq_len + 1)
    ids: list[int] = []
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    for i in order:
        ids.extend(tokenizer(docs[i], add_special_tokens=False)["input_ids"])
        ids.append(eos)
        if len(ids) >= need:
            break
    if len(ids) <= seq_len:
        raise InvalidInput(f"The text has {len(ids)} tokens, fewer than one window of {seq_len}.",
                           "Read more text (a larger max_chars, or 0 for all) or use a shorter seq_len.")
    stream = torch.tensor(ids, dtype=torch.long)
    starts = torch.randint(0, len(ids) - seq_len, (n,), generator=gen)
    return torch.stack([stream[s:s + seq_len] for s in starts.tolist()])  # [n, seq_len]


def heldout_windows(tokenizer, docs: list[str], n: int, seq_len: int, seed: int) -> torch.Tensor:
    """The held-out windows both lens experiments evaluate on (seed + 1), so their per-layer numbers match."""
    return token_windows(tokenizer, docs, n, seq_len, seed + 1)




def layer_table(evals: list[LensEval]) -> str:
    """Markdown table: one row per lens layer, KL / top-1 agreement / next-token probability per lens."""
    head = "| layer | " + " | ".join(f"{e.lens}: KL (nats) | {e.lens}: top-1 = final | {e.lens}: p(next)"
                                      for e in evals) + " |"
    sep = "|---|" + "---|" * (3 * len(evals))
    rows = [f"| {lbl} | " + " | ".join(f"{e.kl_to_final[i]:.3f} | {e.top1_agreement[i]:.3f} | "
                                       f"{e.next_token_prob[i]:.3f}" for e in evals) + " |"
            for i, lbl in enumerate(evals[0].layer_labels)]
    return "\n".join([head, sep, *rows])


def prompt_record(handle: Model, prompt: str, k: int, lens=None) -> tuple[dict, object, object]:
    """One prompt's lens trajectory (first n_ctx tokens) as JSON-able data, plus its probability and KL grids."""
    tokens = tokenize(handle, prompt, truncate=True).tokens[0]  # [pos], BOS first
    res = logit_lens(handle, tokens, k=k, translators=lens)
    rec = {"prompt": prompt, "lens": res.lens, "tokens": res.tokens, "targets": res.target_tokens,
           "top1": res.topk_tokens[..., 0].tolist(), "top1_prob": res.topk_probs[..., 0],
           "target_prob": res.target_prob, "target_rank": res.target_rank, "kl_to_final": res.kl_to_final}
    return rec, grid_figure(res, "target_prob"), grid_figure(res, "kl_to_final")
