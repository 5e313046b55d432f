"""Caller authentication: bearer tokens and/or mTLS client certificates, for every RPC but health.

The check runs inside each method handler's wrapper, with the call's context (an aio
interceptor alone sees only the method name and metadata, not the TLS peer). A missing or wrong
credential gets UNAUTHENTICATED with one fixed message, whichever part was wrong. The caller it
finds is put in ``current_caller`` for the servicer's policy. Health stays open so load
balancers and kubelets can probe without credentials.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from routerpc_gateway.callers import Caller, CallersStore

__all__ = ["AUTH_FAILED", "Admission", "Identity", "current_caller"]

AUTH_FAILED = "missing or invalid credentials"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: a named caller from the callers file, or nobody (auth off)."""

    name: str
    caller: Caller | None


ANONYMOUS = Identity("anonymous", None)
current_caller: contextvars.ContextVar[Identity] = contextvars.ContextVar(
    "current_caller", default=ANONYMOUS
)


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip() or None
    return None


def _subjects(context: grpc.aio.ServicerContext[Any, Any]) -> list[str]:
    properties = context.auth_context() or {}
    names = []
    for key in ("x509_common_name", "x509_subject"):
        names += [value.decode(errors="replace") for value in properties.get(key, [])]
    return names


def identify(store: CallersStore, context: grpc.aio.ServicerContext[Any, Any]) -> Identity | None:
    """The caller behind ``context``, ANONYMOUS when auth is off, None when it must be refused."""
    if not store.auth_required and not store.config.callers:
        return ANONYMOUS  # no callers file: authentication is off, credentials are ignored
    token = _bearer(context.invocation_metadata())
    if token is not None:
        found = store.by_token(token)
        if found is not None:
            return Identity(*found)
        return None  # a wrong token is refused even when a certificate would pass
    for subject in _subjects(context):
        found = store.by_subject(subject)
        if found is not None:
            return Identity(*found)
    return None if store.auth_required else ANONYMOUS


class Admission:
    """The check every call but health passes before its handler runs (an ``observe.Gate``).

    It runs inside the gateway's one call wrapper (``observe.CallObserver``, which leaves
    health alone), before the request is even decoded, so a refused call is still
    counted and logged but costs no parsing, and no second wrapper layer sits in every call
    and every streamed message.
    """

    refusal = AUTH_FAILED

    def __init__(self, store: CallersStore) -> None:
        self._store = store

    def admit(self, context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
        """Set ``current_caller`` and name it; None when the call must end UNAUTHENTICATED."""
        identity = identify(self._store, context)
        if identity is None:
            return None
        current_caller.set(identity)
        return identity.name
