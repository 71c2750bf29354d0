"""The NDIF client, offline: every failure is one clear message within seconds (no key, NDIF unreachable, a local
model, a bad host, a key or model NDIF refuses, a stuck queue, a request too large), the key is never shown, and
through an in-process stand-in for NDIF's server (tests/interp/ndif_standin.py; no NDIF server runs here) runs,
gradients, weights, readout and whole sweeps give the local numbers, one request per sweep, with progress,
stopping, and finished requests kept."""
from __future__ import annotations

import dataclasses
import functools
import os
import time

import pytest
import torch

from interp import InvalidInput, ModelUnavailable, Site, load_model
from interp.backends.ndif import Endpoint, NdifRunner, RemoteStopped, translate, wait_for

HOSTED = "openai-community/gpt2"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.delenv("NDIF_HOST", raising=False)
    return monkeypatch


def _fails_fast(name, match, exc=ModelUnavailable):
    start = time.monotonic()
    with pytest.raises(exc, match=match) as info:
        load_model(name, backend="ndif")
    assert time.monotonic() - start < 5.0
    assert "\n" not in info.value.message  # one line, then the hint
    return info.value


def test_no_key_says_what_is_needed(env):
    err = _fails_fast(HOSTED, "NDIF_API_KEY is not set")
    assert "login.ndif.us" in err.hint


def test_unreachable_ndif_fails_within_seconds(env):
    env.setenv("NDIF_API_KEY", "secret-key-123")
    env.setenv("NDIF_HOST", "http://127.0.0.1:9")  # nothing listens there: what offline looks like
    err = _fails_fast(HOSTED, "cannot be reached")
    assert "secret-key-123" not in str(err) and "--backend nnsight" in err.hint


def test_local_models_and_bad_hosts_are_refused(env):
    env.setenv("NDIF_API_KEY", "k")
    _fails_fast("code-gpt2", "Hugging Face Hub id", InvalidInput)
    _fails_fast(os.getcwd(), "Hugging Face Hub id", InvalidInput)
    env.setenv("NDIF_HOST", "ftp://example.org")
    _fails_fast(HOSTED, "not an http", InvalidInput)


def test_the_key_is_never_shown():
    ep = Endpoint("https://api.ndif.us", "secret-key-123")
    assert "secret-key-123" not in repr(ep)
    assert "secret-key-123" not in repr(NdifRunner(None, ep, None))


def test_wait_reports_progress_stops_and_times_out():
    seen = []

    def polls(statuses, value="done"):
        it = iter(statuses)

        def poll():
            s = next(it)
            return (s == "COMPLETED", s, value if s == "COMPLETED" else None)
        return poll

    assert wait_for(polls(["QUEUED", "RUNNING", "COMPLETED"]), progress=lambda f, m: seen.append(m),
                    sleep=lambda s: None) == "done"
    assert seen[0].startswith("NDIF: queued") and seen[1].startswith("NDIF: running") and seen[-1] == "NDIF: completed"
    with pytest.raises(RemoteStopped, match="kept"):
        wait_for(polls(["QUEUED"] * 5), should_stop=lambda: True, sleep=lambda s: None)
    clock = iter(range(0, 10_000, 100))
    with pytest.raises(ModelUnavailable, match="without starting"):
        wait_for(polls(["QUEUED"] * 100), queue_timeout=250, clock=lambda: next(clock), sleep=lambda s: None)


def test_server_errors_become_one_clear_message():
    ep = Endpoint("https://api.ndif.us", "k")
    cases = {"Failed to send request: 401 Unauthorized: invalid API key": "refused the key",
             "Failed to send request: 413 Request Entity Too Large": "too large",
             "Failed to send request: Model openai-community/nope not found": "cannot run m",
             "Failed to send request: 503 Service Unavailable": "did not accept",
             "CUDA out of memory. Tried to allocate 80 GiB\nTraceback...": "too large for NDIF",
             "NameError: name 'x' is not defined": "could not run the request: NameError"}
    for text, want in cases.items():
        err = translate(RuntimeError(text), ep, "m")
        assert isinstance(err, ModelUnavailable) and want in str(err), text
    assert isinstance(translate(ConnectionRefusedError("refused"), ep, "m"), ModelUnavailable)
    assert "cannot be reached" in str(translate(ConnectionRefusedError("refused"), ep, "m"))
    bad = translate(RuntimeError("ValueError: [interp] grad_of must return one number"), ep, "m")
    assert isinstance(bad, InvalidInput) and str(bad).startswith("grad_of must")


# ----------------------------------------------------------------------------- through the stand-in server


@functools.cache
def _local():
    return load_model("code-gpt2", backend="nnsight")


def _remote(**kw):
    from interp.backends import nnsight as nb
    from tests.interp.ndif_standin import StandIn

    local = _local()
    StandIn.model, StandIn.fail_on, StandIn.posted = local._nn, None, 0
    runner = NdifRunner(local._nn, Endpoint("http://ndif.invalid", "secret-key-123"), local.layout,
                        transport=StandIn, interval=0.0,
                        model_key="stand-in:code-gpt2", **kw)
    info = dataclasses.replace(local.info, backend="ndif", path=None)
    return nb.NNsightModel(local._nn, local.tokenizer, info, local.layout, None, conv=local._conv, remote="ndif",
                           runner=runner)


def test_runs_through_the_stand_in_match_local_runs():
    local, remote = _local(), _remote()
    tokens = torch.tensor([[0, 11, 12, 13, 14], [0, 21, 22, 0, 0]])
    read = [Site("resid_pre", 1), Site("pattern", 2)]
    edit = {Site("z", 1): lambda z: z * 0.5}
    a, b = local.run(tokens, read=read, edit=edit), remote.run(tokens, read=read, edit=edit)
    torch.testing.assert_close(b.logits, a.logits)
    for s in read:
        torch.testing.assert_close(b[s], a[s])
    g = lambda lg: lg[:, -1, 7].sum()  # noqa: E731
    ga, gb = local.run(tokens, read=read, grad_of=g), remote.run(tokens, read=read, grad_of=g)
    for s in read:
        torch.testing.assert_close(gb.grads[s], ga.grads[s])
    torch.testing.assert_close(remote.readout(torch.randn(2, 192, generator=torch.Generator().manual_seed(0))),
                               local.readout(torch.randn(2, 192, generator=torch.Generator().manual_seed(0))))
    torch.testing.assert_close(remote.weights().W_O, local.weights().W_O)
    assert remote.info.backend == "ndif" and "secret" not in repr(remote.info.to_dict())
    with pytest.raises(InvalidInput, match="grad_of"):
        remote.run(tokens, read=read, grad=True)


def test_a_sweep_is_one_request_and_finished_requests_are_kept():
    from probes.patching.activation import run_sweeps
    from tasks.pairs import repeated_sequence_pairs

    local, remote = _local(), _remote()
    from tests.interp.ndif_standin import StandIn

    pairs = repeated_sequence_pairs(local, 2, 4, seed=1)
    want = run_sweeps(local, pairs, ("head_out", "resid_pre"))
    StandIn.fail_on = 4  # prepare (2 runs) and the first sweep finish; the second sweep's request fails
    with pytest.raises(ModelUnavailable, match="could not run the request: boom"):
        run_sweeps(remote, pairs, ("head_out", "resid_pre"))
    assert StandIn.posted == 4
    StandIn.fail_on = None
    messages = []
    got = run_sweeps(remote, pairs, ("head_out", "resid_pre"), progress=lambda f, m: messages.append(m))
    assert StandIn.posted == 5  # only the sweep that had failed is sent again
    for k in want:
        torch.testing.assert_close(got[k].values, want[k].values)
    assert any("NDIF: queued" in m for m in messages) and any("NDIF: running" in m for m in messages)


def test_stopping_and_oversized_weights(monkeypatch):
    remote = _remote(should_stop=lambda: True)
    with pytest.raises(RemoteStopped):
        remote.run(torch.tensor([[0, 5, 6]]))
    from interp.backends import nnsight as nb

    monkeypatch.setattr(nb, "MAX_REMOTE_WEIGHT_ELEMENTS", 1000)
    with pytest.raises(InvalidInput, match="needs a local model"):
        _remote().weights()


def test_training_through_the_readout_needs_a_local_model():
    resid = torch.randn(2, 192, requires_grad=True)
    with pytest.raises(InvalidInput, match="needs a local model"):
        _remote().readout(resid)


class _NdifRest:
    """NDIF's two read-only REST answers (/whoami, /status), served on 127.0.0.1 by a tiny HTTP server: enough to
    check what load_model(backend='ndif') makes of a refused key, an unknown key and an unhosted model."""

    def __init__(self, whoami: tuple[int, dict], deployments: dict):
        import http.server
        import json
        import threading

        answers = {"/whoami": whoami, "/status": (200, {"deployments": deployments})}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                code, body = answers.get(self.path, (404, {"detail": "no such path"}))
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


HOSTED_DEPLOYMENTS = {"gpt2": {"repo_id": HOSTED, "deployment_level": "HOT", "application_state": "RUNNING"},
                      "llama": {"repo_id": "meta-llama/Llama-3.1-8B", "deployment_level": "WARM"},
                      "cold": {"repo_id": "some/cold-model", "deployment_level": "COLD"},
                      "uncached": {"repo_id": "workbench-test/never-cached", "deployment_level": "HOT"}}


@pytest.mark.parametrize("whoami, name, want", [
    ((401, {"detail": "bad key"}), HOSTED, "refused the key"),
    ((200, {"email": None, "tags": []}), HOSTED, "does not recognise the key"),
    ((200, {"email": "me@example.org"}), "some/cold-model", "does not host 'some/cold-model'"),
    ((200, {"email": "me@example.org"}), "workbench-test/never-cached", "Hugging Face Hub cannot be reached"),
])
def test_refused_keys_and_unhosted_models_are_one_message(env, whoami, name, want):
    rest = _NdifRest(whoami, HOSTED_DEPLOYMENTS)
    try:
        env.setenv("NDIF_API_KEY", "secret-key-123")
        env.setenv("NDIF_HOST", rest.url)
        env.setenv("HF_HUB_OFFLINE", "1")
        err = _fails_fast(name, want)
        assert "secret-key-123" not in str(err)
        if "does not host" in want:
            assert HOSTED in err.hint and "meta-llama/Llama-3.1-8B" in err.hint and "cold" not in err.hint
    finally:
        rest.close()
