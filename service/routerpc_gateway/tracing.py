"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` environment asks for it.

When ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set, or
``OTEL_TRACES_EXPORTER`` names ``otlp``, every RPC gets a server span (the official grpc
instrumentation) and every upstream call a client span (the official aiohttp-client and httpx
instrumentations), exported over OTLP/HTTP with the batch processor. The instrumentations record
no bodies and no headers, so no prompt and no key reaches a span.
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["configure_tracing"]

log = logging.getLogger("routerpc.gateway")


def _wanted() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    return bool(endpoint) or exporter == "otlp"


def configure_tracing() -> Any:
    """Install tracing if configured; the provider to shut down at exit, or None."""
    if not _wanted():
        return None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "routerpc")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    AioHttpClientInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    log.info("tracing: exporting spans over OTLP/HTTP")
    return provider
