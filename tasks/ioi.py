"""Indirect-object-identification (IOI) prompt pairs in the style of Wang et al. 2022.

Clean: ``When Mary and John went to the store, John gave a drink to`` -> `` Mary`` (the indirect object, IO),
wrong answer `` John`` (the subject, S). Corrupted: the same sentence with three fresh distinct names (Wang's
"ABC" distribution), so no name is repeated and neither clean name occurs. Names are kept only when they are
one token with a leading space under the tokenizer, so clean and corrupted prompts align token for token.
"""
from __future__ import annotations

import random

from interp.errors import InvalidInput
from interp.validate import count, seed_value
from tasks.pairs import PromptPair

# BABA and ABBA templates after Wang et al. 2022 (Appendix); {A} is the IO, {B} the subject named twice.
TEMPLATES: tuple[str, ...] = (
    "Then, {B} and {A} went to the {place}. {B} gave a {obj} to",
    "Then, {A} and {B} went to the {place}. {B} gave a {obj} to",
    "When {B} and {A} got a {obj} at the {place}, {B} decided to give it to",
    "When {A} and {B} got a {obj} at the {place}, {B} decided to give it to",
    "After {B} and {A} went to the {place}, {B} gave a {obj} to",
    "After {A} and {B} went to the {place}, {B} gave a {obj} to",
    "While {B} and {A} were working at the {place}, {B} gave a {obj} to",
    "While {A} and {B} were working at the {place}, {B} gave a {obj} to",
)
PLACES: tuple[str, ...] = ("store", "garden", "restaurant", "school", "hospital", "office", "house", "station")
OBJECTS: tuple[str, ...] = ("ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack")
NAMES: tuple[str, ...] = (
    "Mary", "John", "Tom", "James", "Dan", "Sid", "Martha", "Alice", "Bob", "Paul", "Kate", "Anna", "Mike", "Lisa",
    "Sarah", "Jack", "David", "Laura", "Steve", "Emma", "Ben", "Amy", "Kevin", "Helen", "Peter", "Rachel", "Mark",
    "Susan", "George", "Linda", "Frank", "Grace", "Henry", "Jane", "Eric", "Ruth", "Adam", "Clara", "Victor", "Rose",
)


def single_token_names(tokenizer, names: tuple[str, ...] = NAMES) -> list[str]:
    """The names that are exactly one token with a leading space (`` Mary``)."""
    return [n for n in names if len(tokenizer(" " + n, add_special_tokens=False)["input_ids"]) == 1]


def ioi_pairs(tokenizer, n: int = 24, *, seed: int = 0) -> list[PromptPair]:
    """``n`` seeded clean/ABC-corrupted IOI pairs (templates cycled, names, places and objects drawn)."""
    n = count(n, "The number of IOI pairs", low=1, high=100_000)
    seed = seed_value(seed)
    names = single_token_names(tokenizer)
    if len(names) < 5:
        raise InvalidInput(f"Only {len(names)} IOI names are single tokens under this tokenizer; IOI needs 5.",
                           "Use a GPT-2-style BPE tokenizer.")
    rng = random.Random(f"ioi:{seed}")
    pairs = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)]
        place, obj = rng.choice(PLACES), rng.choice(OBJECTS)
        a, b, c, d, e = rng.sample(names, 5)
        clean = template.format(A=a, B=b, place=place, obj=obj)
        # ABC: fresh IO and subject, and the second subject mention is a third new name
        first, second = template.split("{B}", 1)[0], "{B}".join(template.split("{B}")[1:2])
        rest = "{B}".join(template.split("{B}")[2:])
        corrupted = (first + d + second + e + rest).format(A=c, place=place, obj=obj)
        pairs.append(PromptPair(clean, corrupted, " " + a, " " + b))
    return pairs
