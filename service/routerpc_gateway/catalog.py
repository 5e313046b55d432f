"""The models and endpoints lists, cached briefly, and what they tell about a served response.

OpenRouter names the provider that served a completion but not the quantization it served at;
the endpoints list of the model does. Lookups share one in-flight fetch per key, entries expire
after ``catalog_ttl`` seconds, and the cache holds a bounded number of models.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from routerpc import FieldViolation, pb
from routerpc._gen import enums
from routerpc_gateway import responses
from routerpc_gateway.errors import invalid_argument
from routerpc_gateway.upstream import Upstream

__all__ = ["Catalog"]

_MAX_ENTRIES = 1024
_MAX_ANSWERS = 4096
_DOT_SEGMENTS = frozenset({".", ".."})
_QUANTIZATIONS = {int(member): member for member in enums.Quantization}
"""Members by number: calling the enum class costs more than the rest of a lookup."""


class _TtlCache:
    """Async single-flight TTL cache with a size bound."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[float, asyncio.Future[Any]]] = OrderedDict()

    async def get(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        entry = self._entries.get(key)
        if (
            entry is not None
            and entry[0] > now
            and not (entry[1].done() and entry[1].exception() is not None)
        ):
            self._entries.move_to_end(key)
            if entry[1].done():
                return entry[1].result()  # the common case: no task, no shield
            return await asyncio.shield(entry[1])
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._entries[key] = (now + self.ttl, future)
        while len(self._entries) > _MAX_ENTRIES:
            self._entries.popitem(last=False)
        try:
            value = await load()
        except BaseException as error:
            self._entries.pop(key, None)
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        future.set_result(value)
        return value


@dataclass(frozen=True, slots=True)
class _Endpoints:
    """A fetched endpoints list, with the quantizations it serves by provider name and by tag
    (lowercased): indexed once per fetch rather than scanned on every completion."""

    listed: list[pb.Endpoint]
    served: dict[str, frozenset[int]]
    expires: float
    """When the cache entry holding this list expires (``time.monotonic``)."""

    @classmethod
    def of(cls, listed: list[pb.Endpoint], expires: float) -> _Endpoints:
        served: dict[str, set[int]] = {}
        for endpoint in listed:
            for name in {endpoint.provider_name.lower(), endpoint.tag.lower()}:
                served.setdefault(name, set()).add(endpoint.quantization)
        return cls(listed, {name: frozenset(v) for name, v in served.items()}, expires)


class Catalog:
    """Cached ``/models`` and ``/models/{author}/{slug}/endpoints``."""

    def __init__(self, upstream: Upstream, ttl: float) -> None:
        self._upstream = upstream
        self._cache = _TtlCache(ttl)
        self._answers: dict[tuple[str, str, tuple[int, ...]], tuple[float, Any]] = {}
        """Served quantizations already worked out, until their list expires: most
        completions ask the same question as the one before."""

    async def models(self, *, seconds: float) -> list[pb.Model]:
        """Every model in the upstream catalogue."""

        async def load() -> list[pb.Model]:
            body = await self._upstream.get("models", seconds=seconds)
            return [responses.model(m) for m in body.get("data") or []]

        result: list[pb.Model] = await self._cache.get("models", load)
        return result

    async def endpoints(self, model: str, *, seconds: float) -> list[pb.Endpoint]:
        """A model's provider endpoints."""
        return (await self._endpoints(model, seconds=seconds)).listed

    async def _endpoints(self, model: str, *, seconds: float) -> _Endpoints:
        if not _DOT_SEGMENTS.isdisjoint(model.split("/")):
            # The slug pattern admits "../..", which the URL would resolve to a path outside
            # /models: a caller must never pick the upstream path the gateway's key is sent to.
            raise invalid_argument(
                "invalid ListEndpointsRequest: model",
                [FieldViolation("model", "author and slug may not be '.' or '..'", "model.path")],
            )

        async def load() -> _Endpoints:
            expires = time.monotonic() + self._cache.ttl  # as the cache's entry, set just before
            body = await self._upstream.get(f"models/{model}/endpoints", seconds=seconds)
            data = body.get("data") or {}
            listed = [responses.endpoint(e) for e in data.get("endpoints") or []]
            return _Endpoints.of(listed, expires)

        result: _Endpoints = await self._cache.get(f"endpoints:{model}", load)
        return result

    async def served_quantization(
        self,
        model: str,
        provider: str,
        requested: Sequence[int],
        *,
        seconds: float,
    ) -> Any:
        """The quantization ``provider`` serves ``model`` at, when the catalogue says so
        unambiguously (narrowed by the request's own quantization filter); else UNSPECIFIED.

        Best effort by design: a failed lookup must never fail a completion that succeeded.
        Typed ``Any`` because the proto stubs type enum fields as a NewType no IntEnum satisfies.
        """
        if not model or not provider:
            return enums.Quantization.UNSPECIFIED
        question = (model, provider, tuple(requested))
        known = self._answers.get(question)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        try:
            endpoints = await self._endpoints(model.split(":", 1)[0], seconds=seconds)
        except Exception:
            return enums.Quantization.UNSPECIFIED
        candidates = endpoints.served.get(provider.lower(), frozenset())
        if requested:
            candidates &= set(requested)
        answer = (
            _QUANTIZATIONS[next(iter(candidates))]
            if len(candidates) == 1
            else enums.Quantization.UNSPECIFIED
        )
        if len(self._answers) >= _MAX_ANSWERS:
            self._answers.clear()
        self._answers[question] = (endpoints.expires, answer)
        return answer
