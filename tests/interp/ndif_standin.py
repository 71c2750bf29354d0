"""An in-process stand-in for NDIF's server, to test the workbench's NDIF client offline.

It is nnsight's own ``RemoteBackend`` with the two network calls replaced: ``_post`` deserialises the request
exactly as a server does (nnsight's ``RequestModel.deserialize``, with the working tree's modules hidden as
nnsight's ``remote="local"`` simulation hides them) and runs it against the local model; ``poll`` answers
QUEUED, then RUNNING, then COMPLETED with the saved values packed as a server packs them (``torch.save``,
zstd). What it cannot show: NDIF's own scheduling, limits and hosted models (no NDIF server runs here)."""
from __future__ import annotations

import io

import torch
from nnsight.intervention.backends.local import LocalSimulationBackend
from nnsight.intervention.backends.remote import RemoteBackend, RemoteError
from nnsight.schema.request import RequestModel
from nnsight.schema.response import ResponseModel, Status
from nnsight.tracing.tracer import dec, inc


class StandIn(RemoteBackend):
    """Class-level knobs: ``model`` (the nnsight model the 'server' holds), ``fail_on`` (the 1-based request that
    answers ERROR with ``error``), ``posted`` (requests received)."""

    model = None
    fail_on: int | None = None
    error = "boom"
    posted = 0
    script = ("QUEUED", "RUNNING")

    def _post(self, request, blob):
        type(self).posted += 1
        self._n = type(self).posted
        self._steps = list(self.script)
        hide = LocalSimulationBackend(self.model)
        hidden = hide._hide_local_modules()
        try:
            tracer = RequestModel.deserialize(blob, self.model._remoteable_persistent_objects(), self.compress)
        finally:
            hide._restore(hidden)
        if self.fail_on == self._n:
            self._saves = None
        else:
            shipped = dict(tracer.info.frame.f_locals)
            inc()
            try:
                tracer.execute(tracer.info.code)
            finally:
                dec()
            # what the block saved (pushed back into its frame), not what was shipped with it
            self._saves = {k: v for k, v in tracer.info.frame.f_locals.items()
                           if k not in shipped or v is not shipped[k]}
        return ResponseModel(id=f"job-{self._n}", status=Status.RECEIVED)

    def poll(self, tracer=None):
        if self._steps:
            self.status = Status(self._steps.pop(0))
            return None
        if self._saves is None:
            self.status = Status.ERROR
            raise RemoteError(self.error)
        buffer = io.BytesIO()
        torch.save(self._saves, buffer)
        data = buffer.getvalue()
        if self.compress:
            import zstandard as zstd

            data = zstd.ZstdCompressor().compress(data)
        self.status = Status.COMPLETED
        return self.handle(ResponseModel(id=f"job-{self._n}", status=Status.COMPLETED, data=data))
