"""Token display: split UTF-8 characters are shown as bytes with the merged character, whitespace is exact."""
from __future__ import annotations

from interp.token_display import token_pieces


def test_gpt2_style_byte_tokens_show_bytes_and_the_merged_character(gpt2_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gpt2_tokenizer_dir))
    ids = tok("x 😀\n\n    y", add_special_tokens=False)["input_ids"]
    pieces = token_pieces(tok, ids)
    assert "".join(p.merged if p.partial and p.index == p.group[0] else ("" if p.partial else p.text)
                   for p in pieces) == "x 😀\n\n    y"
    partial = [p for p in pieces if p.partial]
    assert partial and all("⟨" in p.text and "😀" in p.merged for p in partial)
    assert all("�" not in p.text for p in pieces)


def test_special_tokens_are_flagged(tiny_handle):
    ids = [tiny_handle.bos_token_id] + tiny_handle.tokenizer("the cat", add_special_tokens=False)["input_ids"]
    pieces = token_pieces(tiny_handle.tokenizer, ids)
    assert pieces[0].special and not any(p.special for p in pieces[1:])
    assert "".join(p.text for p in pieces[1:]) == "the cat"


def test_visible_text_draws_whitespace(tiny_tokenizer):
    from interp.token_display import visible, visible_tokens

    assert visible("\n    ") == "↵····" and visible("\tx") == "→x" and visible("") == "∅" and visible("cat") == "cat"
    ids = tiny_tokenizer("def f():\n    return", add_special_tokens=False)["input_ids"]
    shown = visible_tokens(tiny_tokenizer, ids)
    assert len(shown) == len(ids) and all(s.strip() for s in shown)  # no blank cells
    assert "".join(shown).replace("·", " ").replace("↵", "\n") == "def f():\n    return"
