"""Per-application mutable state, so that two emulators in one process never share anything."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from .catalogue import Catalogue
from .faults import FailFirstCounter
from .generations import GenerationStore
from .recording import RequestLog


@dataclass
class EmulatorState:
    catalogue: Catalogue
    require_key: str | None = None
    stream_delay_s: float = 0.0
    requests: RequestLog = field(default_factory=RequestLog)
    generations: GenerationStore = field(default_factory=GenerationStore)
    failures: FailFirstCounter = field(default_factory=FailFirstCounter)


STATE: web.AppKey[EmulatorState] = web.AppKey("routerpc_emulator_state", EmulatorState)
