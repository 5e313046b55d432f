"""OpenRouter-compatible HTTP emulator for offline use and tests (plain HTTP/JSON, no gRPC).

Public API (imported by the gateway and its tests; keep stable)::

    app = create_app(*, require_key=None, stream_delay_s=0.0)
    emu = await start_emulator(host="127.0.0.1", port=0, require_key=None, stream_delay_s=0.0)
    emu.base_url, emu.port; await emu.close()
    run(host="127.0.0.1", port=8080, require_key=None)

See ``emulator/README.md`` for endpoints, routing rules and fault injection.
"""

from .app import create_app
from .server import RunningEmulator, run, start_emulator

__all__ = ["RunningEmulator", "create_app", "run", "start_emulator"]
