"""NDIF: the nnsight backend on the National Deep Inference Fabric's servers, for Hub models it hosts.

Nothing here speaks a protocol of its own: requests are nnsight's (``RemoteBackend``, non-blocking, so this module
polls, reports the queue and running status, and can stop waiting). What is added is what a workbench user needs
around it: the key comes from ``NDIF_API_KEY`` only (never printed, never written anywhere); every failure is one
message that says what is needed (no key, a key NDIF refuses, NDIF unreachable -- found in seconds by one TCP
connect, never a hang --, a model NDIF does not host, a queue that does not move, a request too large); a
multi-run analysis goes as ONE request (:meth:`NdifRunner.call`, nnsight's ``session``); and the result of every
finished request is kept, so re-running an analysis after a failure resends only what had not finished.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import torch

from interp.backends import nnsight_body
from interp.errors import InvalidInput, ModelUnavailable, WorkbenchError
from interp.loading.hub import cached_snapshot, hub_reachable, looks_like_hub_id
from interp.types import Progress

DEFAULT_HOST = "https://api.ndif.us"
KEY_ENV, HOST_ENV = "NDIF_API_KEY", "NDIF_HOST"
KEY_HINT = (f"Get a key at https://login.ndif.us and export {KEY_ENV}=<key> (only read from the environment: the "
            "workbench never stores it).")
CONNECT_TIMEOUT = 3.0  # seconds: one TCP connect decides "unreachable"
QUEUE_TIMEOUT = 900.0  # seconds a request may wait before it runs
POLL_INTERVAL = 1.0
WAITING = ("RECEIVED", "QUEUED", "PROVISIONING", "DEPLOYING", "DISPATCHED")


class RemoteStopped(WorkbenchError):
    """The user stopped waiting for an NDIF request (what finished before is kept)."""


@dataclass(frozen=True)
class Endpoint:
    """Where NDIF is and the key to use; the key never appears in a repr, a log or a results folder."""

    host: str
    key: str = field(repr=False)


def endpoint() -> Endpoint:
    """NDIF's host (``NDIF_HOST``, default api.ndif.us) and the key in ``NDIF_API_KEY``; ModelUnavailable without a
    key, InvalidInput for a host that is not an http(s) URL."""
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise ModelUnavailable(f"NDIF needs an API key, and {KEY_ENV} is not set.", KEY_HINT)
    host = os.environ.get(HOST_ENV, "").strip().rstrip("/") or DEFAULT_HOST
    url = urlparse(host)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise InvalidInput(f"{HOST_ENV}={host[:80]!r} is not an http(s) URL.", f"Unset it to use {DEFAULT_HOST}.")
    return Endpoint(host, key)


def reachable(host: str, timeout: float = CONNECT_TIMEOUT) -> bool:
    """One TCP connect to NDIF's host (no retries, no request): False offline, within ``timeout`` seconds."""
    url = urlparse(host)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _unreachable(ep: Endpoint, why: str = "") -> ModelUnavailable:
    return ModelUnavailable(f"NDIF ({ep.host}) cannot be reached{': ' + why if why else ''}.",
                            "Check the network connection (NDIF needs one), or run the model here: "
                            "--backend nnsight or --backend bridge.")


def _get(ep: Endpoint, path: str, *, key: bool = False, timeout: float = 10.0) -> Any:
    import httpx

    headers = {"ndif-api-key": ep.key} if key else None
    try:
        response = httpx.get(f"{ep.host}{path}", headers=headers, timeout=httpx.Timeout(CONNECT_TIMEOUT, read=timeout))
    except httpx.HTTPError as e:
        raise _unreachable(ep, type(e).__name__) from None
    if response.status_code in (401, 403):
        raise ModelUnavailable(f"NDIF refused the key in {KEY_ENV} ({response.status_code}).", KEY_HINT)
    if response.status_code >= 400:
        raise ModelUnavailable(f"NDIF answered {path} with {response.status_code}.", "Try again later.")
    try:
        return response.json()
    except ValueError:
        raise ModelUnavailable(f"NDIF answered {path} with something that is not JSON.", "Try again later.") from None


def hosted_models(ep: Endpoint | None = None) -> list[str]:
    """Hub ids of the models NDIF runs now (its ``/status``), sorted; ModelUnavailable when it cannot be asked."""
    ep = ep or Endpoint(os.environ.get(HOST_ENV, "").strip().rstrip("/") or DEFAULT_HOST, "")
    if not reachable(ep.host):
        raise _unreachable(ep)
    status = _get(ep, "/status")
    deployments = status.get("deployments", {}) if isinstance(status, dict) else {}
    names = {str(v.get("repo_id") or k) for k, v in deployments.items() if isinstance(v, dict)
             and v.get("deployment_level", "HOT") in ("HOT", "WARM")}
    return sorted(names)


def check_key(ep: Endpoint) -> None:
    """ModelUnavailable when NDIF does not recognise the key (its ``/whoami`` names nobody)."""
    who = _get(ep, "/whoami", key=True)
    if not isinstance(who, dict) or not who.get("email"):
        raise ModelUnavailable(f"NDIF does not recognise the key in {KEY_ENV}.", KEY_HINT)


# ----------------------------------------------------------------------------- loading


def load_remote(name: str, *, local_names: list[str] = ()) -> Any:  # -> NNsightModel
    """An :class:`~interp.backends.nnsight.NNsightModel` whose runs go to NDIF: ``name`` is a Hub id NDIF hosts.

    Checked in this order, each failing in seconds with one message: a Hub name (not a bundled model or a
    directory), a key in ``NDIF_API_KEY``, NDIF reachable, the key recognised, the model hosted, its config and
    tokenizer readable from the Hub (or its cache). Nothing is downloaded but those small files.
    """
    if name in local_names or os.path.exists(name) or not looks_like_hub_id(name):
        raise InvalidInput(f"NDIF runs models it hosts, named by their Hugging Face Hub id (such as "
                           f"openai-community/gpt2); {name[:80]!r} is not one.",
                           "Run local models with --backend nnsight or --backend bridge.")
    ep = endpoint()
    if not reachable(ep.host):
        raise _unreachable(ep, "no connection")
    check_key(ep)
    hosted = hosted_models(ep)
    if name not in hosted:
        shown = ", ".join(hosted[:8]) + (" ..." if len(hosted) > 8 else "") if hosted else "none right now"
        raise ModelUnavailable(f"NDIF does not host {name!r}.", f"Models NDIF runs now: {shown}.")
    if cached_snapshot(name) is None and not hub_reachable():
        raise ModelUnavailable(f"{name}'s config and tokenizer are needed here, and the Hugging Face Hub cannot be "
                               "reached.", "Connect to the network (or download the model's config once).")
    return _remote_model(name, ep)


def _remote_model(name: str, ep: Endpoint) -> Any:
    from nnsight import TransformersModel

    from interp.backends import hf_sites
    from interp.backends import nnsight as nb

    try:
        with nb._quiet():
            nn = TransformersModel(name, task="text-generation", attn_implementation="eager")
    except Exception as e:  # the Hub and transformers fail in many ways; one line says which
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelUnavailable(f"Could not read {name}'s config and tokenizer: {line}", "Check the name.") from None
    module = nn._module
    dtype = getattr(module.config, "dtype", None) or torch.float32
    dtype = dtype if isinstance(dtype, torch.dtype) else getattr(torch, str(dtype), torch.float32)
    adapter, layout = nb.mapped(module.config, name, dtype)
    tokenizer = nb.configured_tokenizer(copy.deepcopy(nn.tokenizer), adapter)
    call, softmax = nb.find_attention_ops(nn, layout, None)
    layout = hf_sites.Layout(**{**layout.__dict__, "attention_op": call, "softmax_op": softmax,
                                "order": hf_sites.event_order(module, layout, fake=True)})
    n_params = sum(p.numel() for p in module.parameters())
    arch = (getattr(module.config, "architectures", None) or [type(module).__name__])[0]
    info = nb.model_info(adapter.cfg, name=name, source="hub", path=None, sha256="", architecture=arch,
                         n_params=n_params, dtype=dtype, device="cpu", backend="ndif")
    runner = NdifRunner(nn, ep, layout)
    return nb.NNsightModel(nn, tokenizer, info, layout, adapter, conv=nb.conv1d_paths(module), remote="ndif",
                           runner=runner)


# ----------------------------------------------------------------------------- running


def wait_for(poll: Callable[[], tuple[bool, str, Any]], *, progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None, queue_timeout: float = QUEUE_TIMEOUT,
             interval: float = POLL_INTERVAL, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> Any:
    """Poll a submitted request until it is done: ``poll() -> (done, status, value)``. Reports each status through
    ``progress(fraction, message)``; RemoteStopped when ``should_stop()``; ModelUnavailable when it waits in the queue
    longer than ``queue_timeout`` seconds."""
    start = clock()
    while True:
        done, status, value = poll()
        if done:
            if progress is not None:
                progress(1.0, "NDIF: completed")
            return value
        waited = clock() - start
        if progress is not None:
            progress(0.5 if status == "RUNNING" else 0.0, f"NDIF: {status.lower() or 'sent'} ({waited:.0f} s)")
        if should_stop is not None and should_stop():
            raise RemoteStopped("Stopped waiting for NDIF; results of requests that had finished are kept.",
                                "NDIF may still run the request; run the analysis again to resend only the rest.")
        if status in WAITING and waited > queue_timeout:
            raise ModelUnavailable(f"The NDIF request waited {waited:.0f} s without starting (status {status}).",
                                   "NDIF is busy: try again later, or with a smaller model.")
        sleep(interval)


def translate(e: BaseException, ep: Endpoint, name: str) -> Exception:
    """A failed NDIF request as one clear workbench error (the server's own words, first line only).

    nnsight reports a refused submission as ``Failed to send request: <server's reason>`` and a job that failed
    on the server with the server's error text; a workbench check that failed there carries ``MARK``."""
    from interp.backends.nnsight import unsendable

    text = str(e)
    if nnsight_body.MARK in text:
        return InvalidInput(text.split(nnsight_body.MARK, 1)[1].strip().splitlines()[0])
    if unsendable(e):
        return InvalidInput(f"An edit or metric holds something that cannot be sent to NDIF ({text[:120]}).",
                            "Use tensors, numbers and plain functions in edits and metrics.")
    first = (text.strip().splitlines() or [type(e).__name__])[0][:300]
    if isinstance(e, (OSError, ConnectionError)) or type(e).__name__ in (
            "ConnectError", "ConnectTimeout", "WebSocketException", "WebSocketConnectionClosedException",
            "WebSocketAddressException", "ReadTimeout", "ReadError"):
        return _unreachable(ep, first)
    low = first.lower()
    if low.startswith("failed to send request"):
        if any(w in low for w in ("401", "403", "api key", "api-key", "unauthori", "forbidden")):
            return ModelUnavailable(f"NDIF refused the key in {KEY_ENV}: {first}", KEY_HINT)
        if any(w in low for w in ("413", "too large", "entity")):
            return ModelUnavailable(f"The request is too large for NDIF: {first}",
                                    "Send fewer or shorter prompts per run (smaller batches, fewer sites read).")
        if any(w in low for w in ("404", "not found", "not hosted", "not deployed", "unknown model")):
            return ModelUnavailable(f"NDIF cannot run {name}: {first}", "See which models NDIF hosts (Model page).")
        return ModelUnavailable(f"NDIF did not accept the request: {first}", "Try again later.")
    if "out of memory" in low:
        return ModelUnavailable(f"The request is too large for NDIF ({first}).",
                                "Send fewer or shorter prompts per run (smaller batches, fewer sites read).")
    return ModelUnavailable(f"NDIF could not run the request: {first}", "Try again; if it persists, run locally.")


@dataclass
class NdifRunner:
    """Sends runs of one model to NDIF and waits for them (see the module docstring)."""

    nn: Any
    ep: Endpoint
    layout: Any
    progress: Progress | None = None
    should_stop: Callable[[], bool] | None = None
    queue_timeout: float = QUEUE_TIMEOUT
    interval: float = POLL_INTERVAL
    finished: dict[str, Any] = field(default_factory=dict, repr=False)  # request digest -> saved values
    transport: Any = None  # nnsight's RemoteBackend (None) or a class like it (tests: an in-process stand-in)
    sent: int = 0  # requests submitted
    model_key: str | None = None  # nnsight's name of the model on NDIF (class path + Hub id); computed once

    def _backend(self) -> Any:
        from nnsight.intervention.backends.remote import RemoteBackend

        cls = self.transport or RemoteBackend
        if self.model_key is None:
            with self._errors():
                self.model_key = self.nn.to_model_key()
        backend = cls(self.model_key, host=self.ep.host, api_key=self.ep.key,
                      env=self.nn._remoteable_get_env(), blocking=False)
        self.sent += 1
        backend.display.enabled = False  # progress goes through self.progress
        return backend

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except WorkbenchError:
            raise
        except Exception as e:
            raise translate(e, self.ep, str(self.nn.repo_id)) from None

    def _wait(self, backend: Any, digest: str) -> dict:
        def poll() -> tuple[bool, str, Any]:
            value = backend.poll()
            status = getattr(backend.status, "value", str(backend.status or ""))
            return value is not None, status, value

        with self._errors():
            saved = wait_for(poll, progress=self.progress, should_stop=self.should_stop,
                             queue_timeout=self.queue_timeout, interval=self.interval)
        self.finished[digest] = saved
        return saved

    def __call__(self, kwargs: dict, steps: list, edits: dict, options: dict) -> dict:
        """One :meth:`Model.run` as one request."""
        from interp.backends import nnsight as nb

        digest = _digest(kwargs, steps, edits, options)
        if digest in self.finished:
            return self.finished[digest]["result"]
        nn, backend = self.nn, self._backend()
        run_plan = nnsight_body.run_plan
        nb.ship_by_value()
        with self._errors(), nn.trace(**kwargs, backend=backend) as tracer:
            result = nnsight_body_save({})
            run_plan(nn, tracer, steps, edits, result, **options)
        return self._wait(backend, digest)["result"]

    def call(self, model: Any, fn: Callable, args: tuple, kwargs: dict) -> Any:
        """``fn(model, *args, **kwargs)`` as ONE request: every run inside happens on NDIF, in an nnsight session.
        ``progress`` and ``should_stop`` in ``kwargs`` stay here and watch the request."""
        progress, should_stop = kwargs.pop("progress", None), kwargs.pop("should_stop", None)
        from interp.backends import nnsight as nb

        digest = _digest(fn, args, kwargs)
        if digest not in self.finished:
            inner = model.in_session()
            nn, backend = self.nn, self._backend()
            nb.ship_by_value()
            with self._errors(), nn.session(backend=backend):
                out = nnsight_body_save([])
                out.append(fn(inner, *args, **kwargs))
            held = self.progress, self.should_stop
            self.progress, self.should_stop = progress or self.progress, should_stop or self.should_stop
            try:
                self._wait(backend, digest)
            finally:
                self.progress, self.should_stop = held
        return self.finished[digest]["out"][0]

    def fetch_parameters(self, paths: list[str]) -> dict[str, torch.Tensor | None]:
        """The named parameters, fetched in one request; InvalidInput (one line) when they are too big to ship."""
        from interp.backends.nnsight import MAX_REMOTE_WEIGHT_ELEMENTS

        module = self.nn._module
        sizes = {}
        for p in paths:
            owner, _, attr = p.rpartition(".")
            with contextlib.suppress(AttributeError):
                t = getattr(module.get_submodule(owner), attr, None)
                if isinstance(t, torch.Tensor):
                    sizes[p] = t.numel()
        total = sum(sizes.values())
        if total > MAX_REMOTE_WEIGHT_ELEMENTS:
            raise InvalidInput(f"This analysis needs all of {self.nn.repo_id}'s weight matrices ({total / 1e9:.1f} "
                               "billion numbers), which stay on NDIF; it needs a local model.",
                               "Run it with --backend nnsight or bridge on a model that fits here.")
        names = list(sizes)
        digest = _digest("parameters", names)
        if digest not in self.finished:
            nn, backend = self.nn, self._backend()
            with self._errors(), nn.session(backend=backend):
                got = nnsight_body_save({})
                for p in names:
                    got[p] = nn.get(p).detach().cpu()
            self._wait(backend, digest)
        fetched = self.finished[digest]["got"]
        return {p: fetched.get(p) for p in paths}

    def readout(self, resid: torch.Tensor) -> torch.Tensor:
        """The final norm and unembedding applied on NDIF (one request)."""
        digest = _digest("readout", resid)
        if digest not in self.finished:
            nn, backend = self.nn, self._backend()
            ln, unembed = self.layout.ln_final, self.layout.unembed
            with self._errors(), nn.session(backend=backend):
                x = resid
                if ln is not None:
                    x = nn.get(ln)(x)
                logits = nnsight_body_save(nn.get(unembed)(x).detach().cpu())  # noqa: F841 (returned by name)
            self._wait(backend, digest)
        return self.finished[digest]["logits"]


def nnsight_body_save(value: Any) -> Any:
    import nnsight

    return nnsight.save(value)


def _digest(*parts: Any) -> str:
    """A digest of a request's content, to recognise a request that already finished: tensors by their bytes,
    functions by their code, defaults and closure, models by their info, other objects by their fields (to a
    bounded depth; anything else by its type)."""
    h = hashlib.sha256()
    seen: set[int] = set()

    def feed(x: Any, depth: int) -> None:
        if depth > 6 or id(x) in seen:
            h.update(b"^")
            return
        if isinstance(x, torch.Tensor):
            h.update(str((x.dtype, tuple(x.shape))).encode())
            h.update(x.detach().cpu().float().contiguous().numpy().tobytes())
            return
        if isinstance(x, (str, int, float, bool, type(None))):
            h.update(repr(x).encode())
            return
        seen.add(id(x))
        info = getattr(x, "info", None)
        if hasattr(info, "to_dict"):  # a Model
            h.update(repr(sorted(info.to_dict().items())).encode())
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                feed(str(k), depth + 1)
                feed(x[k], depth + 1)
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                feed(v, depth + 1)
            h.update(b"]")
        elif callable(x) and hasattr(x, "__code__"):
            h.update(x.__code__.co_code + repr(x.__code__.co_consts).encode())
            feed(list(x.__defaults__ or ()), depth + 1)
            for cell in x.__closure__ or ():
                with contextlib.suppress(ValueError):
                    feed(cell.cell_contents, depth + 1)
        elif hasattr(x, "__dict__") and not isinstance(x, type):
            h.update(type(x).__qualname__.encode())
            feed({k: v for k, v in vars(x).items() if not k.startswith("_")}, depth + 1)
        else:
            h.update(type(x).__qualname__.encode())

    feed(list(parts), 0)
    return h.hexdigest()
