"""``python -m routerpc_emulator``: serve the emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from .server import run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m routerpc_emulator",
        description="OpenRouter-compatible HTTP emulator (serves /api/v1).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port, 0 = any free (default %(default)s)"
    )
    parser.add_argument(
        "--require-key",
        default=os.environ.get("ROUTERPC_EMULATOR_KEY"),
        help="accept /api/v1 requests only with 'Authorization: Bearer <key>' "
        "(default: $ROUTERPC_EMULATOR_KEY, unset = any or no key)",
    )
    parser.add_argument(
        "--stream-delay-ms",
        type=float,
        default=0.0,
        help="pause between streamed chunks in milliseconds (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.stream_delay_ms < 0:
        parser.error("--stream-delay-ms must not be negative")
    run(
        host=args.host,
        port=args.port,
        require_key=args.require_key or None,
        stream_delay_s=args.stream_delay_ms / 1000,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
