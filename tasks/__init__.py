"""Inputs with known answers: games, prompt pairs, copy and IOI tasks, repeats, labelled texts, corpora."""
