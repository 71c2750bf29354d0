"""Othello: a bitboard engine (legal moves, flips, passes, game end), a vectorised random-game
generator, and per-move board-state labels in absolute and player-relative encodings.

Squares are numbered ``r * 8 + c`` with rows named A..H and columns 1..8 (``A1`` = 0, ``H8`` = 63), as in
Li et al. 2023. The four centre squares (D4 D5 E4 E5) start occupied, so the 60 others are the playable
moves. Start position: D4 and E5 white, D5 and E4 black; black moves first (legal: C4 D3 E6 F5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interp.errors import InvalidInput
from interp.model import Model
from interp.prompt_check import kind_of

EMPTY, BLACK, WHITE = 0, 1, 2
#: Absolute encoding class names (labels 0, 1, 2).
ABSOLUTE_CLASSES = ("empty", "black", "white")
#: Relative encoding, from the point of view of the player about to move (labels 0, 1, 2).
RELATIVE_CLASSES = ("empty", "mine", "theirs")
FULL = (1 << 64) - 1
CENTRE = (27, 28, 35, 36)
SQUARE_NAMES = tuple(f"{'ABCDEFGH'[s // 8]}{s % 8 + 1}" for s in range(64))
#: The 60 playable squares in board order; token id = 1 + index here (0 is padding).
PLAYABLE = tuple(s for s in range(64) if s not in CENTRE)
PAD_TOKEN = 0
SQUARE_TO_TOKEN = {s: i + 1 for i, s in enumerate(PLAYABLE)}
TOKEN_TO_SQUARE = {t: s for s, t in SQUARE_TO_TOKEN.items()}

_COL0 = sum(1 << (r * 8) for r in range(8))
_COL7 = _COL0 << 7
# Shift amount -> mask of bits allowed after the shift (no wrap across a row edge).
_DIRS = {1: FULL & ~_COL0, -1: FULL & ~_COL7, 8: FULL, -8: FULL,
         9: FULL & ~_COL0, -9: FULL & ~_COL7, 7: FULL & ~_COL7, -7: FULL & ~_COL0}


def square(name: str) -> int:
    """'C4' -> 19."""
    name = name.strip().upper()
    if len(name) != 2 or name[0] not in "ABCDEFGH" or name[1] not in "12345678":
        raise ValueError(f"{name!r} is not a square name like 'C4' (row A-H, column 1-8).")
    return "ABCDEFGH".index(name[0]) * 8 + int(name[1]) - 1


def _shift(b: int, d: int) -> int:
    return ((b << d) if d > 0 else (b >> -d)) & _DIRS[d]


def legal_mask(own: int, opp: int) -> int:
    """Bitboard of the moves legal for the owner of ``own``."""
    empty = FULL & ~(own | opp)
    moves = 0
    for d in _DIRS:
        x = _shift(own, d) & opp
        for _ in range(5):
            x |= _shift(x, d) & opp
        moves |= _shift(x, d) & empty
    return moves


def flips(own: int, opp: int, sq: int) -> int:
    """Bitboard of the opponent discs that playing ``sq`` turns over (0 if the move flips nothing)."""
    out, m = 0, 1 << sq
    for d in _DIRS:
        x, s = 0, _shift(m, d)
        while s & opp:
            x |= s
            s = _shift(s, d)
        if s & own:
            out |= x
    return out


def _bits(b: int) -> list[int]:
    return [i for i in range(64) if b >> i & 1]


@dataclass(frozen=True)
class Position:
    """A board (black and white bitboards) and the colour to move; ``pass``es are applied automatically."""
    black: int = (1 << 28) | (1 << 35)
    white: int = (1 << 27) | (1 << 36)
    to_move: int = BLACK

    def _own_opp(self, colour: int) -> tuple[int, int]:
        return (self.black, self.white) if colour == BLACK else (self.white, self.black)

    def legal_moves(self) -> list[int]:
        """Squares the player to move may play, ascending."""
        return _bits(legal_mask(*self._own_opp(self.to_move)))

    @property
    def game_over(self) -> bool:
        return not legal_mask(self.black, self.white) and not legal_mask(self.white, self.black)

    def play(self, sq: int) -> Position:
        """Play ``sq`` for the player to move; the next player is the opponent unless they must pass."""
        own, opp = self._own_opp(self.to_move)
        f = flips(own, opp, sq)
        if (own | opp) >> sq & 1 or not f:
            raise ValueError(f"{SQUARE_NAMES[sq]} is not legal for {ABSOLUTE_CLASSES[self.to_move]} here.")
        own, opp = own | f | (1 << sq), opp & ~f
        black, white = (own, opp) if self.to_move == BLACK else (opp, own)
        nxt = WHITE if self.to_move == BLACK else BLACK
        after = Position(black, white, nxt)
        if not after.legal_moves() and not after.game_over:
            after = Position(black, white, self.to_move)  # the opponent passes
        return after

    def board(self) -> np.ndarray:
        """[64] int8 absolute state: 0 empty, 1 black, 2 white."""
        return _to_board(np.array([self.black], np.uint64), np.array([self.white], np.uint64))[0]

    def __str__(self) -> str:
        rows = ["  " + "".join(str(c) for c in range(1, 9))]
        b = self.board()
        for r in range(8):
            rows.append("ABCDEFGH"[r] + " " + "".join(".XO"[b[r * 8 + c]] for c in range(8)))
        return "\n".join(rows)


def replay(moves: list[int] | np.ndarray) -> list[Position]:
    """Positions after each move of a game (moves < 0 are padding and end the game)."""
    pos, out = Position(), []
    for m in moves:
        if m < 0:
            break
        pos = pos.play(int(m))
        out.append(pos)
    return out


# ----------------------------------------------------------------------------- vectorised generator

_U = np.uint64
_DIRS_NP = [(d, _U(mask)) for d, mask in _DIRS.items()]
_BITS = (np.uint64(1) << np.arange(64, dtype=np.uint64))  # [64]


def _shift_np(b: np.ndarray, d: int, mask: np.uint64) -> np.ndarray:
    return ((b << _U(d)) if d > 0 else (b >> _U(-d))) & mask


def _legal_np(own: np.ndarray, opp: np.ndarray) -> np.ndarray:
    empty = ~(own | opp)
    moves = np.zeros_like(own)
    for d, mask in _DIRS_NP:
        x = _shift_np(own, d, mask) & opp
        for _ in range(5):
            x |= _shift_np(x, d, mask) & opp
        moves |= _shift_np(x, d, mask) & empty
    return moves


def _flips_np(own: np.ndarray, opp: np.ndarray, move_bit: np.ndarray) -> np.ndarray:
    out = np.zeros_like(own)
    for d, mask in _DIRS_NP:
        x = np.zeros_like(own)
        s = _shift_np(move_bit, d, mask)
        for _ in range(6):
            run = (s & opp) != 0
            x |= np.where(run, s, _U(0))
            s = np.where(run, _shift_np(s, d, mask), s)
        out |= np.where((s & own) != 0, x, _U(0))
    return out


def _to_board(black: np.ndarray, white: np.ndarray) -> np.ndarray:
    """[...] uint64 bitboards -> [..., 64] int8 absolute states."""
    b = ((black[..., None] & _BITS) != 0).astype(np.int8)
    w = ((white[..., None] & _BITS) != 0).astype(np.int8)
    return b * BLACK + w * WHITE


@dataclass
class Games:
    """A batch of random legal games and the state after every move.

    ``moves``: [n, 60] int8 squares (-1 = padding after the game ended); ``black``/``white``: [n, 60] uint64
    bitboards after each move; ``to_move``: [n, 60] int8 colour to move after each move (0 once over).
    """
    moves: np.ndarray
    black: np.ndarray
    white: np.ndarray
    to_move: np.ndarray

    def __len__(self) -> int:
        return len(self.moves)

    def tokens(self) -> np.ndarray:
        """[n, 60] int64 token ids (1..60 squares, 0 padding)."""
        return squares_to_tokens(self.moves)

    def absolute(self) -> np.ndarray:
        """[n, 60, 64] int8 labels after each move: 0 empty, 1 black, 2 white."""
        return _to_board(self.black, self.white)

    def relative(self) -> np.ndarray:
        """[n, 60, 64] int8 labels after each move: 0 empty, 1 mine, 2 theirs (player about to move)."""
        return to_relative(self.absolute(), self.to_move)

    def legal(self) -> np.ndarray:
        """[n, 60, 64] bool: squares legal for the player to move after each move (all False once over)."""
        own = np.where(self.to_move == BLACK, self.black, self.white)
        opp = np.where(self.to_move == BLACK, self.white, self.black)
        mask = _legal_np(own, opp)
        return ((mask[..., None] & _BITS) != 0) & (self.to_move[..., None] != 0)


def to_relative(absolute: np.ndarray, to_move: np.ndarray) -> np.ndarray:
    """Absolute labels [..., 64] + colour to move [...] -> relative labels (0 empty, 1 mine, 2 theirs)."""
    tm = to_move[..., None].astype(np.int8)
    return np.where(absolute == EMPTY, 0, np.where(absolute == tm, 1, 2)).astype(np.int8)


def squares_to_tokens(moves: np.ndarray) -> np.ndarray:
    lut = np.zeros(65, np.int64)
    for s, t in SQUARE_TO_TOKEN.items():
        lut[s] = t
    return lut[np.where(moves < 0, 64, moves)]


def tokens_to_squares(tokens: np.ndarray) -> np.ndarray:
    lut = np.full(61, -1, np.int64)
    for t, s in TOKEN_TO_SQUARE.items():
        lut[t] = s
    return lut[tokens]


def random_games(n: int, seed: int = 0, *, full_only: bool = False) -> Games:
    """``n`` games of uniformly random legal moves (with passes), seeded; vectorised over games.

    ``full_only`` keeps only games that last all 60 moves (drawing more as needed).
    """
    rng = np.random.default_rng(seed)
    if full_only:
        parts, have = [], 0
        while have < n:
            g = random_games(max(64, int((n - have) * 1.3)), int(rng.integers(2**31)))
            keep = g.moves[:, -1] >= 0
            parts.append(Games(*(a[keep] for a in (g.moves, g.black, g.white, g.to_move))))
            have += int(keep.sum())
        fields = ("moves", "black", "white", "to_move")
        return Games(*(np.concatenate([getattr(p, f) for p in parts])[:n] for f in fields))
    black = np.full(n, (1 << 28) | (1 << 35), np.uint64)
    white = np.full(n, (1 << 27) | (1 << 36), np.uint64)
    turn = np.full(n, BLACK, np.int8)
    moves = np.full((n, 60), -1, np.int8)
    hist_b, hist_w = np.zeros((n, 60), np.uint64), np.zeros((n, 60), np.uint64)
    hist_t = np.zeros((n, 60), np.int8)
    for t in range(60):
        own = np.where(turn == BLACK, black, white)
        opp = np.where(turn == BLACK, white, black)
        legal = _legal_np(own, opp)
        alive = (legal != 0) & (turn != 0)
        if not alive.any():
            break
        bits = (legal[:, None] & _BITS) != 0  # [n, 64]
        choice = np.argmax(np.where(bits, rng.random((n, 64)), -1.0), axis=1)  # uniform among legal
        mbit = np.where(alive, _BITS[choice], _U(0))
        f = _flips_np(own, opp, mbit)
        own, opp = own | f | mbit, opp & ~f
        black = np.where(turn == BLACK, own, opp)
        white = np.where(turn == BLACK, opp, own)
        moves[:, t] = np.where(alive, choice, -1)
        # next player: opponent if they can move, else the same player, else nobody (game over)
        nxt = np.where(turn == BLACK, WHITE, BLACK).astype(np.int8)
        n_own = np.where(nxt == BLACK, black, white)
        n_opp = np.where(nxt == BLACK, white, black)
        opp_can = _legal_np(n_own, n_opp) != 0
        me_can = _legal_np(n_opp, n_own) != 0
        turn = np.where(~alive, 0, np.where(opp_can, nxt, np.where(me_can, turn, 0))).astype(np.int8)
        hist_b[:, t], hist_w[:, t], hist_t[:, t] = black, white, turn
    return Games(moves, hist_b, hist_w, hist_t)


# ----------------------------------------------------------------------------- probing and editing helpers


def probe_rows(games: Games, seq_len: int = 59) -> tuple[np.ndarray, np.ndarray]:
    """(game, move) index pairs of positions a probe should see: the game is still on after that move.

    Returns ``game_idx`` [rows], ``move_idx`` [rows] over the first ``seq_len`` moves.
    """
    live = games.to_move[:, :seq_len] != 0  # [n, seq_len]
    g, t = np.nonzero(live)
    return g, t


def flip_square(board: np.ndarray, sq: int) -> np.ndarray:
    """Absolute board [64] with square ``sq``'s disc turned to the other colour."""
    if board[sq] == EMPTY:
        raise ValueError(f"{SQUARE_NAMES[sq]} is empty; only a disc can change colour.")
    out = board.copy()
    out[sq] = BLACK if board[sq] == WHITE else WHITE
    return out


def legal_moves_of(board: np.ndarray, to_move: int) -> list[int]:
    """Legal squares for ``to_move`` on an arbitrary absolute board [64] (no pass handling)."""
    black = sum(1 << int(i) for i in np.nonzero(board == BLACK)[0])
    white = sum(1 << int(i) for i in np.nonzero(board == WHITE)[0])
    return Position(black, white, to_move).legal_moves()


def topk_errors(probs: np.ndarray, legal: list[int]) -> int:
    """Li et al.'s intervention metric: with k = len(legal), how many of the model's top-k squares are not legal.

    ``probs`` [64] over squares (centre squares should be 0).
    """
    k = len(legal)
    top = np.argsort(-probs, kind="stable")[:k]
    return int(len(set(top.tolist()) - set(legal)))


# ----------------------------------------------------------------------------- probe datasets

#: Offset added to a probe seed so probe games come from a stream that training (seeds near 0) never drew.
PROBE_GAMES_SEED = 10_000_019
#: Vocabulary of an Othello-GPT: padding + the 60 playable squares.
N_TOKENS = 61
#: How to get the bundled Othello model when it is missing.
TRAIN_OTHELLO_COMMAND = ("python -m experiments run train-othello-gpt --preset bundled "
                         "--set out_model=models/othello-gpt")


def is_othello_model(handle: Model, seq_len: int = 59) -> bool:
    """The one test of "is this an Othello-GPT": its vocabulary is the move tokens (the ``othello`` kind of
    :func:`interp.prompt_check.vocab_kind`, 61 tokens) and it sees ``seq_len`` moves."""
    return (handle.info.d_vocab == N_TOKENS and handle.info.n_ctx >= seq_len
            and kind_of(handle) == "othello")


def check_othello_model(handle: Model, seq_len: int = 59) -> None:
    """Raise InvalidInput (saying how to get one) unless the model is an Othello-GPT."""
    if not is_othello_model(handle, seq_len):
        i = handle.info
        raise InvalidInput(f"{i.name} is not an Othello-GPT (vocabulary {i.d_vocab}, context {i.n_ctx}; expected "
                           f"the {N_TOKENS} move tokens and >= {seq_len} positions).",
                           "Use the bundled 'othello-gpt' (choose it on the Model page) or train it: "
                           f"`{TRAIN_OTHELLO_COMMAND}`.")


@dataclass
class OthelloProbeSet:
    """Probe rows of random games: the board after each live move, in both encodings, with the model input."""
    games: Games
    tokens: np.ndarray  # [games, seq_len] int64 move tokens (the model's input)
    game: np.ndarray  # [rows] game index of each row
    move: np.ndarray  # [rows] move index: the row is the board after this move
    absolute: np.ndarray  # [rows, 64] int64: 0 empty, 1 black, 2 white
    relative: np.ndarray  # [rows, 64] int64: 0 empty, 1 mine, 2 theirs (player about to move)

    def __len__(self) -> int:
        return len(self.game)

    @property
    def move_tokens(self) -> np.ndarray:
        """[rows] the token just played: the per-row input of the Hewitt & Liang control task."""
        return self.tokens[self.game, self.move]

    def labels(self, encoding: str) -> np.ndarray:
        """[rows, 64] labels in ``"relative"`` or ``"absolute"`` encoding."""
        if encoding not in ("relative", "absolute"):
            raise InvalidInput(f"encoding must be 'relative' or 'absolute', got {encoding!r}.")
        return self.relative if encoding == "relative" else self.absolute

    @staticmethod
    def classes(encoding: str) -> tuple[str, ...]:
        return RELATIVE_CLASSES if encoding == "relative" else ABSOLUTE_CLASSES


def othello_probe_set(n_games: int, seed: int = 0, seq_len: int = 59) -> OthelloProbeSet:
    """``n_games`` fresh random games (seed ``PROBE_GAMES_SEED + seed``) as probe rows over their first
    ``seq_len`` moves; rows of one game share a ``game`` id, so splits can keep games apart."""
    games = random_games(n_games, seed=PROBE_GAMES_SEED + seed)
    g, t = probe_rows(games, seq_len)
    absolute = games.absolute()[g, t]  # [rows, 64]
    relative = to_relative(absolute, games.to_move[g, t])
    return OthelloProbeSet(games, games.tokens()[:, :seq_len], g, t, absolute.astype(np.int64),
                           relative.astype(np.int64))
