"""Shared by the graph tests: a 2-layer ReLU GPT-2 whose MLPs are exactly their neurons' transcoder, and its graph."""
from __future__ import annotations

import pytest

from interp import load_model
from learned.transcoder import transcoder_from_mlp
from probes.graph.attribution import GraphSettings, attribute

PROMPT = "the cat sat on the mat"


@pytest.fixture(scope="session")
def relu_handle(relu_gpt2_dir):
    return load_model(relu_gpt2_dir)


@pytest.fixture(scope="session")
def exact(relu_handle):
    return transcoder_from_mlp(relu_handle.weights(), relu_handle.info)


@pytest.fixture(scope="session")
def graph(relu_handle, exact):
    return attribute(relu_handle, exact, PROMPT, GraphSettings(batch_size=48), transcoder_name="exact")
