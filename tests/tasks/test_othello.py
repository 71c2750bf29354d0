"""Othello engine against hand-checked positions; the vectorised generator against the engine."""
import numpy as np
import pytest

from tasks.othello import (
    BLACK,
    EMPTY,
    SQUARE_NAMES,
    WHITE,
    Position,
    flips,
    legal_mask,
    random_games,
    replay,
    square,
    squares_to_tokens,
    to_relative,
    tokens_to_squares,
)


def names(squares):
    return [SQUARE_NAMES[s] for s in squares]


def bb(*squares):
    return sum(1 << square(s) for s in squares)


def test_opening_moves_and_first_reply():
    p = Position()
    assert names(p.legal_moves()) == ["C4", "D3", "E6", "F5"]
    q = p.play(square("D3"))  # flips D4
    b = q.board()
    assert [b[square(s)] for s in ("D3", "D4", "D5", "E4", "E5")] == [BLACK, BLACK, BLACK, BLACK, WHITE]
    assert q.to_move == WHITE
    assert names(q.legal_moves()) == ["C3", "C5", "E3"]


def test_illegal_moves_are_refused():
    with pytest.raises(ValueError, match="not legal"):
        Position().play(square("A1"))
    with pytest.raises(ValueError, match="not legal"):
        Position().play(square("D4"))  # occupied


def test_flips_in_all_eight_directions():
    ring = ["C3", "C4", "C5", "D3", "D5", "E3", "E4", "E5"]  # around D4
    far = ["B2", "B4", "B6", "D2", "D6", "F2", "F4", "F6"]   # two steps out in each direction
    f = flips(bb(*far), bb(*ring), square("D4"))
    assert f == bb(*ring)
    # runs longer than one disc, and a run not closed by an own disc is not flipped
    own, opp = bb("A1", "H8"), bb("A2", "A3", "A4", "B2", "C3", "D4", "E5", "F6", "A6")
    assert flips(own, opp, square("A5")) == bb("A2", "A3", "A4")
    assert flips(own, opp, square("G7")) == bb("B2", "C3", "D4", "E5", "F6")
    assert flips(own, bb("A6", "A7"), square("A5")) == 0  # A8 is empty: nothing brackets


def test_no_wrap_around_row_edges():
    # A7 black, A8 white: B1 is the next index after A8 but not its neighbour
    assert flips(bb("A7"), bb("A8"), square("B1")) == 0
    assert legal_mask(bb("A7"), bb("A8")) == 0
    assert legal_mask(bb("B1"), bb("A8")) == 0


def test_pass_then_game_end():
    p = Position(black=bb("A1", "H8"), white=bb("A2", "H7"), to_move=BLACK)
    assert names(p.legal_moves()) == ["A3", "H6"]
    assert legal_mask(p.white, p.black) == 0
    q = p.play(square("A3"))
    assert q.to_move == BLACK and not q.game_over  # white has no move: white passes
    r = q.play(square("H6"))
    assert r.game_over and r.white == 0


def test_generator_matches_engine_and_is_seeded():
    g = random_games(300, seed=1)
    assert np.array_equal(g.moves, random_games(300, seed=1).moves)
    assert not np.array_equal(g.moves, random_games(300, seed=2).moves)
    ab, legal = g.absolute(), g.legal()
    lengths = (g.moves >= 0).sum(1)
    assert (lengths >= 9).all() and (lengths == 60).mean() > 0.9
    for i in range(60):
        positions = replay(g.moves[i])
        assert len(positions) == lengths[i]
        for t, p in enumerate(positions):
            assert np.array_equal(p.board(), ab[i, t])
            if p.game_over:
                assert g.to_move[i, t] == 0 and not legal[i, t].any()
            else:
                assert g.to_move[i, t] == p.to_move
                assert np.nonzero(legal[i, t])[0].tolist() == p.legal_moves()
    # every played move was legal in the previous position
    assert all(legal[i, t, g.moves[i, t + 1]] for i in range(300) for t in range(lengths[i] - 1))


def test_relative_encoding_and_tokens():
    g = random_games(5, seed=0)
    rel, ab = g.relative(), g.absolute()
    i, t = 0, 0  # after black's first move white is to move: black discs are "theirs"
    assert g.to_move[i, t] == WHITE
    assert ((ab[i, t] == BLACK) == (rel[i, t] == 2)).all() and ((ab[i, t] == WHITE) == (rel[i, t] == 1)).all()
    assert ((ab == EMPTY) == (rel == 0)).all()
    assert to_relative(np.array([[0, 1, 2]]), np.array([BLACK])).tolist() == [[0, 1, 2]]
    tok = squares_to_tokens(g.moves)
    assert tok.min() >= 0 and tok.max() <= 60 and tok[g.moves >= 0].min() >= 1
    assert np.array_equal(tokens_to_squares(tok), np.where(g.moves < 0, -1, g.moves))


def test_probe_set_rows_labels_and_model_check(tiny_handle):
    from interp.errors import InvalidInput
    from tasks.othello import RELATIVE_CLASSES, check_othello_model, othello_probe_set, probe_rows, to_relative

    d = othello_probe_set(6, seed=1)
    g, t = probe_rows(d.games, 59)
    assert np.array_equal(d.game, g) and np.array_equal(d.move, t) and d.tokens.shape == (6, 59)
    assert d.absolute.shape == (len(d), 64) and d.absolute.dtype == np.int64
    assert np.array_equal(d.relative, to_relative(d.games.absolute()[g, t], d.games.to_move[g, t]))
    assert np.array_equal(d.move_tokens, d.games.tokens()[g, t]) and (d.move_tokens > 0).all()
    assert d.labels("relative") is d.relative and d.classes("relative") == RELATIVE_CLASSES
    assert np.array_equal(othello_probe_set(6, seed=1).absolute, d.absolute)  # seeded
    from interp import load_model
    from tasks.othello import is_othello_model

    check_othello_model(load_model("othello-gpt"))
    assert not is_othello_model(tiny_handle)
    with pytest.raises(InvalidInput, match="(?s)not an Othello-GPT.*train-othello-gpt"):
        check_othello_model(tiny_handle)
