"""The aiohttp application: routes, authentication and OpenRouter-shaped errors for every path.

OpenRouter routes live under ``/api/v1``; emulator-only test support lives under ``/_emulator`` and
is never authenticated (it is not part of the emulated API):

* ``GET /_emulator/health`` -> ``{"status": "ok"}``
* ``GET /_emulator/requests[?limit=N]`` -> ``{"data": [...]}`` the last received chat requests,
  oldest first (see ``recording.py``); ``DELETE`` clears them (and the ``fail-first`` counters).
* ``GET /_emulator/catalogue`` -> the raw catalogue including the data-policy facts that
  OpenRouter's public endpoint listing does not show.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .catalogue import Catalogue, default_catalogue
from .chat import chat_completions
from .errors import error_response
from .listing import endpoints_json, model_json, models_json
from .state import STATE, EmulatorState

API_PREFIX = "/api/v1"
MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Generous, because real prompts carry base64 images and files; aiohttp's default is 1 MiB."""
_log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    *,
    require_key: str | None = None,
    stream_delay_s: float = 0.0,
    catalogue: Catalogue | None = None,
) -> web.Application:
    """Build the emulator; ``require_key`` turns on bearer-key checks for ``/api/v1``."""
    if stream_delay_s < 0:
        raise ValueError("stream_delay_s must not be negative")
    app = web.Application(
        middlewares=[_errors_as_json, _authenticate], client_max_size=MAX_REQUEST_BYTES
    )
    app[STATE] = EmulatorState(
        catalogue=catalogue or default_catalogue(),
        require_key=require_key,
        stream_delay_s=stream_delay_s,
    )
    app.router.add_post(f"{API_PREFIX}/chat/completions", chat_completions)
    app.router.add_get(f"{API_PREFIX}/models", list_models)
    app.router.add_get(f"{API_PREFIX}/models/{{author}}/{{slug}}/endpoints", list_endpoints)
    app.router.add_get(f"{API_PREFIX}/model/{{author}}/{{slug}}", get_model)
    app.router.add_get(f"{API_PREFIX}/generation", get_generation)
    app.router.add_get("/_emulator/health", health)
    app.router.add_get("/_emulator/requests", recorded_requests)
    app.router.add_delete("/_emulator/requests", clear_recorded_requests)
    app.router.add_get("/_emulator/catalogue", raw_catalogue)
    return app


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes and crashes answer in OpenRouter's error envelope, not aiohttp's text."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, exc.reason, headers=headers)
    except ConnectionResetError:
        raise  # the client went away; there is nobody left to answer
    except Exception:
        _log.exception("emulator handler failed for %s %s", request.method, request.path)
        return error_response(500, "Internal Server Error", {"error_type": "server"})


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.app[STATE].require_key
    if (
        key is not None
        and request.path.startswith(API_PREFIX)
        and request.headers.get("Authorization", "").strip() != f"Bearer {key}"
    ):
        return error_response(401, "Missing Authentication header")
    return await handler(request)


async def list_models(request: web.Request) -> web.Response:
    raw = request.query.get("supported_parameters", "")
    required = frozenset(part.strip() for part in raw.split(",") if part.strip())
    models = list(request.app[STATE].catalogue.models)
    return web.json_response(models_json(models, required))


async def list_endpoints(request: web.Request) -> web.Response:
    model_id = _model_id(request)
    model = request.app[STATE].catalogue.get(model_id)
    if model is None:
        return error_response(404, f"Model not found: {model_id}")
    return web.json_response({"data": endpoints_json(model)})


async def get_model(request: web.Request) -> web.Response:
    model_id = _model_id(request)
    model = request.app[STATE].catalogue.get(model_id)
    if model is None:
        return error_response(404, f"Model not found: {model_id}")
    return web.json_response({"data": model_json(model)})


async def get_generation(request: web.Request) -> web.Response:
    generation_id = request.query.get("id", "").strip()
    if not generation_id:
        return error_response(400, "Missing required query parameter: id")
    stats = request.app[STATE].generations.get(generation_id)
    if stats is None:
        return error_response(404, f"Generation {generation_id} not found")
    return web.json_response({"data": stats})


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def recorded_requests(request: web.Request) -> web.Response:
    raw = request.query.get("limit")
    try:
        limit = int(raw) if raw else None
    except ValueError:
        return error_response(400, "limit must be an integer")
    entries = request.app[STATE].requests.entries(limit)
    return web.json_response({"data": entries, "count": len(entries)})


async def clear_recorded_requests(request: web.Request) -> web.Response:
    state = request.app[STATE]
    cleared = state.requests.clear()
    state.failures.clear()
    return web.json_response({"cleared": cleared})


async def raw_catalogue(request: web.Request) -> web.Response:
    return web.json_response({"data": request.app[STATE].catalogue.as_json()})


def _model_id(request: web.Request) -> str:
    """Path ``{author}/{slug}``, minus a ``:variant`` suffix, which names the same endpoints."""
    slug = request.match_info["slug"].split(":", 1)[0]
    return f"{request.match_info['author']}/{slug}"
