"""Ray for sweeps: start a local cluster on this machine, or join an existing one at an address, with one call.

The only module that calls ``ray.init``/``ray.shutdown``. A local cluster is Ray's embedded default
(``ray.init(address="local")``: always a fresh one, never a cluster ``RAY_ADDRESS`` points at) with token auth
off (``RAY_AUTH_MODE=disabled``: Ray would otherwise write ``~/.ray/auth_token``, which changes every later
run), no dashboard and no usage reporting; it is shut down when the ``connected`` block ends. An address names
an existing cluster (``auto``, ``HOST:PORT`` of its GCS, or ``ray://HOST:PORT`` for Ray Client); the same tasks
run there unchanged. Every node must hold this repository at the same path (workers import it through
``PYTHONPATH``) and write to the same results folder (a shared filesystem), as Ray's own file-writing examples
assume.

Ray is imported only inside functions, so importing this module (the app, ``--help``) costs nothing.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from interp.errors import InvalidInput, WorkbenchError
from interp.loading import REPO_ROOT

#: ``HOST:PORT`` or ``ray://HOST:PORT``: a hostname, an IPv4 address or a bracketed IPv6 address, and a port.
_ADDRESS = re.compile(r"(?P<scheme>ray://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))"
                      r":(?P<port>\d{1,5})")
#: Seconds to wait for a TCP answer from an address before calling it unreachable.
CONNECT_TIMEOUT_S = 3.0
#: Object store of a local cluster: sweeps pass small things (configs, verdicts, pair shards), not tensors of GBs.
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2
#: The environment a worker needs: where the code and the experiment caches are, and quiet, offline libraries.
WORKER_ENV_KEYS = ("WORKBENCH_CACHE", "WORKBENCH_RESULTS", "HF_HUB_OFFLINE", "WORKBENCH_DEBUG")


@dataclass(frozen=True)
class ClusterInfo:
    """What a sweep ran on (recorded in its summary)."""

    address: str  # "local" or the address given
    nodes: int
    cpus: float
    started_here: bool  # True: this process started (and will stop) the cluster; False: joined or already up
    start_seconds: float  # time ray.init took (0 when Ray was already up)

    def to_dict(self) -> dict[str, object]:
        return {"address": self.address, "nodes": self.nodes, "cpus": self.cpus, "started_here": self.started_here,
                "start_seconds": round(self.start_seconds, 2)}


def check_address(address: str) -> str:
    """``address`` stripped if it names a cluster Ray can join (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) and,
    for the last two, something answers on that port; else InvalidInput, in seconds."""
    if isinstance(address, str):
        address = address.strip()
    shown = address if len(address) <= 80 else address[:77] + "..."
    hint = "Give auto (a cluster started on this machine with `ray start --head`), HOST:PORT of the head node " \
           "(port 6379 by default) or ray://HOST:10001, or omit --address for a local cluster."
    if not address:
        raise InvalidInput("--address is empty.", hint)
    if address == "auto":
        return address
    m = _ADDRESS.fullmatch(address)
    if m is None or "\x00" in address:
        raise InvalidInput(f"--address {shown!r} is not a Ray cluster address.", hint)
    host, port = m["host"], int(m["port"])
    if not 1 <= port <= 65535:
        raise InvalidInput(f"--address {shown!r}: port {port} is outside 1 .. 65535.", hint)
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidInput(f"--address {shown!r}: {host!r} is not an IPv6 address.", hint) from None
    try:
        grpc = _speaks_grpc(host, port)
    except OSError as e:
        raise InvalidInput(f"--address {shown}: nothing answers there ({e.strerror or type(e).__name__}).",
                           "Start the cluster first (`ray start --head` on the head node), check the host and "
                           "port, or omit --address for a local cluster.") from None
    if not grpc:
        raise InvalidInput(f"--address {shown}: something answers there, but not a Ray cluster (Ray speaks gRPC).",
                           "Give the head node's GCS port (6379 by default) or its Ray Client port (ray://, "
                           "10001 by default).")
    return address


#: The HTTP/2 connection preface and an empty SETTINGS frame: what a gRPC client sends first.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _speaks_grpc(host: str, port: int) -> bool:
    """Whether the server at ``host:port`` answers an HTTP/2 preface with a SETTINGS frame, as every gRPC server
    (Ray's GCS and Ray Client) does. Ray itself, pointed at another kind of server, retries for many minutes;
    this answers in at most a few seconds. OSError when nothing accepts the connection."""
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as conn:
        try:
            conn.sendall(_H2_PREFACE)
            head = b""
            deadline = time.monotonic() + CONNECT_TIMEOUT_S
            while len(head) < 9 and time.monotonic() < deadline:
                chunk = conn.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
        except (TimeoutError, ConnectionError):
            return False
    return len(head) == 9 and head[3] == 0x04 and head[5:9] == b"\x00\x00\x00\x00"  # type SETTINGS, stream 0


def worker_env() -> dict[str, str]:
    """Environment variables every task runs with: the repository on ``PYTHONPATH`` and the workbench's folders."""
    env = {"PYTHONPATH": str(REPO_ROOT), "TQDM_DISABLE": "1", "RAY_AUTH_MODE": "disabled"}
    env.update({k: os.environ[k] for k in WORKER_ENV_KEYS if k in os.environ})
    return env


@contextmanager
def connected(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[ClusterInfo]:
    """Ray, up for the block: joined at ``address``, or a local cluster of ``num_cpus`` CPUs (default: all).

    If Ray is already initialised in this process (a test's cluster, an outer sweep) it is used as it is and
    left running; otherwise it is started here and shut down when the block ends, however it ends."""
    import ray

    if ray.is_initialized():
        yield _info("existing", False, 0.0)
        return
    if address is not None:
        address = check_address(address)
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
        raise InvalidInput(f"--cpus {num_cpus!r} is invalid: expected a whole number >= 1.")
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if address is None:
        os.environ["RAY_AUTH_MODE"] = "disabled"
    t0 = time.perf_counter()
    try:
        if address is None:
            # "local": always a new cluster, even where RAY_ADDRESS or a `ray start` cluster would be picked up
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, runtime_env={"env_vars": worker_env()})
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                     runtime_env={"env_vars": worker_env()})
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        _restore(saved)
        where = address or "a local cluster"
        raise WorkbenchError(f"Ray could not start or join {where}: {_first_line(e)}",
                             "Check the address (python -m experiments sweep --help) and that the cluster runs "
                             "Ray 2.60 with this Python version.") from None
    finally:
        if address is not None:
            _restore(saved)
    try:
        yield _info(address or "local", address is None, time.perf_counter() - t0)
    finally:
        ray.shutdown()
        _restore(saved)


def _info(address: str, started_here: bool, seconds: float) -> ClusterInfo:
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return ClusterInfo(address, len(nodes), float(ray.cluster_resources().get("CPU", 0.0)), started_here, seconds)


def _restore(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]
