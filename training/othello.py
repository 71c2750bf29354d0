"""Othello-GPT's data, tokenizer, model and legal-move evaluation (Li et al. 2023's synthetic setting).

Games are generated on the fly from a seed per step (``tasks.othello.random_games``), so the data is
unlimited, a resumed run sees the same batches, and the whole run is reproducible from its config.
"""
from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from tasks.othello import PAD_TOKEN, PLAYABLE, SQUARE_NAMES, SQUARE_TO_TOKEN, random_games, tokens_to_squares

N_VOCAB = 61  # pad + 60 squares
SEQ_LEN = 59  # a game's first 59 moves predict moves 2..60


def othello_tokenizer():
    """Word-level HF tokenizer: '<pad>' = 0, square names ('A1'..'H8' minus the centre) = 1..60."""
    vocab = {"<pad>": PAD_TOKEN} | {SQUARE_NAMES[s]: SQUARE_TO_TOKEN[s] for s in PLAYABLE}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<pad>")


def othello_gpt(n_layer: int = 8, n_embd: int = 512, n_head: int = 8, seed: int = 0):
    """A randomly initialised GPT2LMHeadModel for Othello move sequences (no dropout, tied embeddings)."""
    cfg = GPT2Config(vocab_size=N_VOCAB, n_positions=SEQ_LEN + 1, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                     bos_token_id=PAD_TOKEN, eos_token_id=PAD_TOKEN, pad_token_id=PAD_TOKEN,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(cfg)
    return model


def game_batch(n: int, seed: int) -> torch.Tensor:
    """[n, 59] int64 tokens of ``n`` random games (seeded)."""
    return torch.from_numpy(random_games(n, seed).tokens()[:, :SEQ_LEN])


@torch.no_grad()
def legal_top1(logits: torch.Tensor, legal: np.ndarray) -> float:
    """Fraction of in-game positions whose top-1 predicted square is legal.

    ``logits``: [n, pos, 61]; ``legal``: [n, pos, 64] bool legal squares after each move (all False once over).
    """
    sq = tokens_to_squares(logits.argmax(-1).cpu().numpy())  # [n, pos]  (-1 for pad)
    live = legal.any(-1)
    hit = np.take_along_axis(legal, np.clip(sq, 0, 63)[..., None], -1)[..., 0] & (sq >= 0)
    return float(hit[live].mean())


@torch.no_grad()
def evaluate_legal(model: torch.nn.Module, n_games: int = 500, seed: int = 12345, device: str = "cpu") -> float:
    """Legal-move top-1 accuracy on ``n_games`` fresh random games (held out by seed)."""
    g = random_games(n_games, seed)
    x = torch.from_numpy(g.tokens()[:, :SEQ_LEN]).to(device)
    was = model.training
    model.eval()
    acc = legal_top1(model(x).logits, g.legal()[:, :SEQ_LEN])
    model.train(was)
    return acc
