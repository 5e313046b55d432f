"""The gateway process: a grpc.aio server with health, reflection and a graceful drain.

Shutdown order on SIGTERM or SIGINT (what Kubernetes and a terminal send): health turns
NOT_SERVING so load balancers stop sending, the server stops accepting and gives in-flight calls
and streams ``grace_period`` seconds to finish, then the upstream pool and the embedded emulator
close.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from routerpc import pb
from routerpc._validation import prepare
from routerpc_emulator import RunningEmulator, start_emulator
from routerpc_gateway.auth import Admission
from routerpc_gateway.callers import CallersStore
from routerpc_gateway.catalog import Catalog
from routerpc_gateway.config import Settings
from routerpc_gateway.loops import loop_kind
from routerpc_gateway.metrics import write_tallies, write_tallies_every
from routerpc_gateway.observe import CallObserver
from routerpc_gateway.registration import GenericOnly
from routerpc_gateway.servicer import RouterServicer
from routerpc_gateway.tracing import configure_tracing
from routerpc_gateway.upstream import create_upstream

__all__ = ["serve", "server_options"]

log = logging.getLogger("routerpc.gateway")


def start_metrics(settings: Settings, registry: Any = None) -> int | None:
    """Serve /metrics on its own port (a thread, off the event loop); the bound port."""
    if settings.metrics_port is None:
        return None
    from prometheus_client import REGISTRY, start_http_server

    server, _thread = start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=registry or REGISTRY
    )
    port: int = server.server_port
    log.info("metrics listening on %s:%d", settings.metrics_host, port)
    return port


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (and, with a client CA, required client certificates) when configured."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """Explicit message-size and keepalive settings (gRPC's defaults suit neither)."""
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_connection_idle_ms", 15 * 60_000),
        # Only workers of one master share a port; a lone server must fail on a taken port.
        ("grpc.so_reuseport", 0 if settings.worker_index is None else 1),
    ]


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then drain and close."""
    callers = CallersStore(settings.callers_file)  # a bad file stops start-up (ValueError)
    emulator: RunningEmulator | None = None
    if settings.use_emulator:
        emulator = await start_emulator(host="127.0.0.1", port=0)
        reason = "--emulator given" if settings.emulator else "no OPENROUTER_API_KEY set"
        log.info(
            "serving from the built-in OpenRouter emulator at %s (%s); no request leaves "
            "this machine",
            emulator.base_url,
            reason,
        )
        settings = settings.model_copy(update={"upstream_url": emulator.base_url})
    elif settings.worker_index is None:
        log.info("serving from the upstream at %s", settings.upstream_base)

    tracer = configure_tracing()  # before the server and the HTTP client exist
    upstream = create_upstream(settings)
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    tallies: Path | None = None
    writing: asyncio.Task[None] | None = None
    frozen = False
    try:
        server = grpc.aio.server(options=server_options(settings))
        # One wrapper observes every call registered through `observed` and authenticates it
        # inside, so refused calls are counted and logged too; health stays open.
        observed = CallObserver(Admission(callers)).registrar(server)
        pb.add_RouterServiceServicer_to_server(
            RouterServicer(settings, upstream, Catalog(upstream, settings.catalog_ttl)), observed
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, GenericOnly(server))
        reflection.enable_server_reflection(
            [pb.SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], observed
        )
        try:
            address = f"{settings.host}:{settings.port}"
            credentials = server_credentials(settings)
            if credentials is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, credentials)
        except RuntimeError:
            # grpc reports every bind failure (port taken, unknown or foreign address) as a bare
            # RuntimeError; the CLI turns OSError into its one-line "cannot serve on" message.
            raise OSError(
                errno.EADDRNOTAVAIL, "cannot bind (address in use or not available here)"
            ) from None
        # Signals are handled before anyone learns the server is up: a SIGTERM or SIGHUP sent
        # right after readiness must drain or reload, never kill the process.
        stop = stop or asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        loop.add_signal_handler(signal.SIGHUP, callers.reload)
        handled.append(signal.SIGHUP)
        # Each request type's first validation builds its twin and compiles its rules (10-40
        # ms): done here, before readiness, instead of in some caller's first call.
        prepare(
            m.input_type for m in pb.ROUTER_SERVICE_FILE.services_by_name["RouterService"].methods
        )
        # What start-up built lives as long as the process: out of the collector's sight, a
        # full collection walks only what calls made. Left in, the 80,000 start-up objects
        # made each full collection pause every call in flight for 60-70 ms.
        gc.collect()
        gc.freeze()
        frozen = True
        await server.start()
        for service in ("", pb.SERVICE_NAME):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        if settings.worker_index is None:
            start_metrics(settings)
        elif settings.metrics_dir is not None:
            tallies = settings.metrics_dir / f"worker-{settings.worker_index}.json"
            writing = asyncio.create_task(write_tallies_every(tallies))
        if settings.ready_fd is not None:
            os.write(settings.ready_fd, b"ready\n")
            os.close(settings.ready_fd)
            log.info(
                "worker %d serving on %s:%d (%s loop)",
                settings.worker_index,
                settings.host,
                port,
                loop_kind(),
            )
        else:
            log.info("routerpc listening on %s:%d (%s loop)", settings.host, port, loop_kind())
        if on_ready is not None:
            on_ready(port)

        await stop.wait()
        log.info(
            "draining: NOT_SERVING for %.1fs, then up to %.1fs for in-flight calls",
            settings.drain_delay,
            settings.grace_period,
        )
        await health_servicer.enter_graceful_shutdown()
        await asyncio.sleep(settings.drain_delay)
        await server.stop(settings.grace_period)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if writing is not None:
            writing.cancel()
        if tallies is not None:
            try:
                write_tallies(tallies)  # drained: the master's last scrape sees every call
            except OSError as error:
                log.warning("could not write this worker's last metrics: %s", error)
        if frozen:
            gc.unfreeze()  # an embedded server's start-up objects may become garbage now
        await upstream.aclose()
        if tracer is not None:
            tracer.shutdown()  # flush the last spans
        if emulator is not None:
            await emulator.close()
        log.info("stopped")
