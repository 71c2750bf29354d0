"""Test builders shared by the pytest fixtures (tests/conftest.py) and the sweep's model directories
(tests/fuzz/model_dirs.py), so both build their tiny tokenizers from the same text."""

#: A small mixed corpus (prose, code, punctuation) for tiny BPE tokenizers.
TEXTS = [
    "the cat sat on the mat. the dog sat on the log.",
    "def add(a, b):\n    return a + b\n",
    "import os\nprint(os.getcwd())\n",
    "Hello, world! Hello again, world.",
] * 40
