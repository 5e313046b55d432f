"""``POST /api/v1/chat/completions``: validate, route, apply the requested fault, deliver.

The steps run in OpenRouter's order so that clients see errors with the right precedence: an
unparsable or invalid body is a 400, then (after an optional ``slow-first-byte`` delay) routing may
answer 404, and only a routable request reaches its provider, which is where injected faults live.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from .chat_request import ChatRequest, RequestError, parse_chat_request
from .delivery import send_garbage_sse, send_stream, send_unary
from .errors import error_response
from .faults import (
    FAULT_HEADER,
    KEY_HEADER,
    Fault,
    FaultError,
    FaultKind,
    bad_gateway_response,
    first_byte_delay_s,
    oversized_bytes,
    select_fault,
    status_fault_response,
)
from .generations import Outcome, Provenance, generation_stats
from .responses import Completion, build_completion, echo_answer
from .routing import Candidate, RoutingFailure, plan_route
from .state import STATE, EmulatorState


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    started = time.monotonic()
    raw = await request.read()
    try:
        body: object = json.loads(raw)
    except ValueError:
        state.requests.record(request.path, None, request.headers)
        return error_response(400, "Invalid JSON in request body")
    state.requests.record(request.path, body, request.headers)
    try:
        chat = parse_chat_request(body)
        fault = select_fault(request.headers.get(FAULT_HEADER), chat.model_fault)
        delay_s = _first_byte_delay(request, fault)
        size = oversized_bytes(request.headers) if _is(fault, FaultKind.OVERSIZED) else None
    except (RequestError, FaultError) as exc:
        return error_response(400, str(exc))
    if delay_s:
        await asyncio.sleep(delay_s)

    plan = plan_route(chat.routing, state.catalogue)
    if isinstance(plan, RoutingFailure):
        return web.json_response(plan.error_body(), status=plan.status)
    served_by = plan.first

    refusal = _provider_fault(request, state, fault, served_by)
    if refusal is not None:
        return refusal
    if _is(fault, FaultKind.GARBAGE_SSE):
        return await send_garbage_sse(request)

    completion = build_completion(chat, served_by, echo_answer(chat, size))
    provenance = _provenance(request, chat)

    def on_finished(delivered: Completion, outcome: Outcome) -> None:
        latency_ms = (time.monotonic() - started) * 1000
        state.generations.put(generation_stats(delivered, outcome, provenance, latency_ms))

    if chat.stream:
        return await send_stream(request, completion, fault, state.stream_delay_s, on_finished)
    return await send_unary(request, completion, fault, on_finished)


def _provider_fault(
    request: web.Request, state: EmulatorState, fault: Fault | None, served_by: Candidate
) -> web.Response | None:
    if fault is None:
        return None
    provider = served_by.endpoint.provider_name
    if fault.kind is FaultKind.FAIL_FIRST:
        key = "|".join((fault.name, served_by.model.id, request.headers.get(KEY_HEADER, "")))
        return (
            bad_gateway_response(provider) if state.failures.should_fail(key, fault.count) else None
        )
    return status_fault_response(fault, provider)


def _first_byte_delay(request: web.Request, fault: Fault | None) -> float:
    return first_byte_delay_s(request.headers) if _is(fault, FaultKind.SLOW_FIRST_BYTE) else 0.0


def _is(fault: Fault | None, kind: FaultKind) -> bool:
    return fault is not None and fault.kind is kind


def _provenance(request: web.Request, chat: ChatRequest) -> Provenance:
    return Provenance(
        http_referer=request.headers.get("HTTP-Referer"),
        user_agent=request.headers.get("User-Agent"),
        session_id=chat.session_id or request.headers.get("X-Session-Id"),
        external_user=chat.user,
        origin=request.headers.get("Origin", ""),
    )
