"""The ``routerpc`` command: ``serve``, ``emulator``, ``chat``, ``models``, ``endpoints``.

Every failure prints one line to stderr and exits non-zero; no traceback reaches a user for a
configuration or call error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

__all__ = ["main"]

_SERVE_FLAGS: dict[str, tuple[type, str]] = {
    "host": (str, "address to listen on (ROUTERPC_HOST; default 0.0.0.0)"),
    "port": (int, "gRPC port (ROUTERPC_PORT; default 50051; 0 picks a free one)"),
    "upstream_url": (str, "OpenRouter base URL (ROUTERPC_UPSTREAM_URL)"),
    "upstream_client": (
        str,
        "aiohttp (default, least CPU), httpx, httpx-http2 or httpx-aiohttp "
        "(ROUTERPC_UPSTREAM_CLIENT)",
    ),
    "event_loop": (str, "uvloop (default) or asyncio (ROUTERPC_EVENT_LOOP)"),
    "http_referer": (str, "HTTP-Referer attribution header (ROUTERPC_HTTP_REFERER)"),
    "app_title": (str, "X-OpenRouter-Title attribution header (ROUTERPC_APP_TITLE)"),
    "connect_timeout": (float, "seconds to connect upstream (ROUTERPC_CONNECT_TIMEOUT; 5)"),
    "read_timeout": (float, "seconds without an upstream byte (ROUTERPC_READ_TIMEOUT; 120)"),
    "request_timeout": (float, "cap on one upstream call (ROUTERPC_REQUEST_TIMEOUT; 600)"),
    "pool_size": (int, "max upstream connections (ROUTERPC_POOL_SIZE; 256)"),
    "max_message_bytes": (int, "largest gRPC message (ROUTERPC_MAX_MESSAGE_BYTES; 16 MiB)"),
    "max_upstream_response_bytes": (
        int,
        "largest upstream reply (ROUTERPC_MAX_UPSTREAM_RESPONSE_BYTES; 32 MiB)",
    ),
    "grace_period": (float, "drain seconds on SIGTERM (ROUTERPC_GRACE_PERIOD; 25)"),
    "callers_file": (str, "callers, credentials and policy, YAML/TOML (ROUTERPC_CALLERS_FILE)"),
    "tls_cert": (str, "server certificate PEM (ROUTERPC_TLS_CERT)"),
    "tls_key": (str, "server key PEM (ROUTERPC_TLS_KEY)"),
    "tls_client_ca": (str, "client CA PEM: require mTLS (ROUTERPC_TLS_CLIENT_CA)"),
    "max_attempts": (int, "upstream attempts per call (ROUTERPC_MAX_ATTEMPTS; 3)"),
    "retry_base_delay": (float, "first retry backoff (ROUTERPC_RETRY_BASE_DELAY; 0.25)"),
    "retry_max_delay": (float, "largest retry backoff (ROUTERPC_RETRY_MAX_DELAY; 4)"),
    "retry_budget_ratio": (float, "retry share of requests (ROUTERPC_RETRY_BUDGET_RATIO; 0.2)"),
    "max_concurrent_upstream": (int, "upstream calls at once (ROUTERPC_MAX_CONCURRENT_UPSTREAM)"),
    "max_queued": (int, "calls waiting for a slot (ROUTERPC_MAX_QUEUED; 256)"),
    "drain_delay": (float, "NOT_SERVING seconds before refusing calls (ROUTERPC_DRAIN_DELAY; 1)"),
    "catalog_ttl": (float, "models/endpoints cache seconds (ROUTERPC_CATALOG_TTL; 60)"),
    "metrics_port": (int, "Prometheus metrics HTTP port (ROUTERPC_METRICS_PORT; off)"),
    "metrics_host": (str, "metrics listen address (ROUTERPC_METRICS_HOST; 0.0.0.0)"),
    "workers": (int, "processes sharing the port (ROUTERPC_WORKERS; default: one per core)"),
    "log_level": (str, "debug, info, warning or error (ROUTERPC_LOG_LEVEL)"),
    "log_format": (str, "text or json (ROUTERPC_LOG_FORMAT)"),
}


def _fail(message: str, code: int = 1) -> int:
    print(f"routerpc: {message}", file=sys.stderr)
    return code


def _cannot_serve(host: str, port: int, error: OSError) -> int:
    # A worker start-up failure is an OSError with a message but no strerror.
    return _fail(f"cannot serve on {host}:{port}: {error.strerror or error}", 1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="routerpc", description="typed gRPC gateway to OpenRouter"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    for name, (kind, text) in _SERVE_FLAGS.items():
        serve.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=text)
    serve.add_argument(
        "--emulator",
        action="store_true",
        default=None,
        help="serve from the built-in emulator even when OPENROUTER_API_KEY is set",
    )
    serve.add_argument(
        "--allow-byok",
        action="store_true",
        default=None,
        help="without a callers file, accept a caller's own key in x-openrouter-api-key",
    )

    emulator = commands.add_parser("emulator", help="run the OpenRouter emulator alone")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8080)
    emulator.add_argument("--require-key", default=None, help="answer 401 without this key")

    target = argparse.ArgumentParser(add_help=False)
    target.add_argument(
        "--target",
        default=os.environ.get("ROUTERPC_TARGET", "127.0.0.1:50051"),
        help="gateway host:port (ROUTERPC_TARGET)",
    )
    target.add_argument("--timeout", type=float, default=120.0, help="call deadline in seconds")

    chat = commands.add_parser("chat", parents=[target], help="send one chat through the gateway")
    chat.add_argument("text")
    chat.add_argument("--model", default="openai/gpt-4o")
    chat.add_argument(
        "--quantization",
        action="append",
        default=[],
        help="allowed quantization (repeatable): fp8, fp16, int4, ...",
    )
    chat.add_argument(
        "--provider", action="append", default=[], help="provider slug to try first (repeatable)"
    )
    chat.add_argument("--sort", choices=["price", "throughput", "latency", "exacto"])
    chat.add_argument("--system", default=None)
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")

    hashing = commands.add_parser(
        "hash-token", help="print the token_sha256 entry for a caller token (read from stdin)"
    )
    hashing.set_defaults(command="hash-token")

    commands.add_parser("models", parents=[target], help="list available models")
    endpoints = commands.add_parser(
        "endpoints", parents=[target], help="list a model's provider endpoints"
    )
    endpoints.add_argument("model")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from routerpc_gateway.config import Settings
    from routerpc_gateway.logs import configure_logging
    from routerpc_gateway.loops import run_loop
    from routerpc_gateway.server import serve
    from routerpc_gateway.workers import available_cpus, run_workers

    overrides: dict[str, Any] = {
        k: v for k, v in vars(args).items() if k in _SERVE_FLAGS and v is not None
    }
    if args.emulator:
        overrides["emulator"] = True
    if args.allow_byok:
        overrides["allow_byok"] = True
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        return _fail(f"invalid configuration: {where}: {first['msg']}", 2)
    configure_logging(settings.log_level, settings.log_format)
    workers = settings.workers or available_cpus()
    try:
        if workers > 1 and settings.worker_index is None:
            return run_workers(settings, workers)
        run_loop(serve(settings), settings.event_loop)
    except ValueError as error:  # the callers file
        return _fail(f"invalid configuration: callers_file: {error}", 2)
    except OSError as error:
        return _cannot_serve(settings.host, settings.port, error)
    return 0


def _hash_token(args: argparse.Namespace) -> int:
    from routerpc_gateway.callers import hash_token

    token = sys.stdin.readline().strip()
    if not token:
        return _fail("hash-token reads the token from standard input; got nothing", 2)
    print(hash_token(token))
    return 0


def _emulator(args: argparse.Namespace) -> int:
    from routerpc_emulator import run

    try:
        run(host=args.host, port=args.port, require_key=args.require_key)
    except OSError as error:
        return _cannot_serve(args.host, args.port, error)
    return 0


def _money(value: float) -> str:
    return f"${value:.6f}"


def _chat(args: argparse.Namespace) -> int:
    from routerpc import ChatRequestBuilder, RouterClient, RouterError

    builder = ChatRequestBuilder().with_model(args.model)
    if args.system:
        builder = builder.with_system(args.system)
    builder = builder.with_text(args.text)
    try:
        if args.quantization:
            builder = builder.with_quantizations(*args.quantization)
        if args.provider:
            builder = builder.with_provider_order(*args.provider)
        if args.sort:
            builder = builder.with_sort(args.sort)
        request = builder.build()
    except ValueError as error:
        return _fail(str(error).replace("\n", ";"), 2)
    try:
        with RouterClient(args.target, timeout=args.timeout) as client:
            if args.no_stream:
                result = client.chat(request)
                print(result.text)
                provider, quantization, usage = result.provider, result.quantization, result.usage
            else:
                provider, quantization, usage = "", None, None
                for chunk in client.stream_chat(request):
                    print(chunk.text, end="", flush=True)
                    provider = chunk.provider or provider
                    if chunk.quantization:
                        quantization = chunk.quantization
                    if chunk.usage is not None:
                        usage = chunk.usage
                print()
    except RouterError as error:
        detail = f" [{error.reason}]" if error.reason else ""
        return _fail(f"{error.grpc_code.name}: {error.message}{detail}")
    served = provider or "unknown provider"
    if quantization:
        served += f" ({quantization.name.lower()})"
    line = f"-- served by {served}"
    if usage is not None:
        line += (
            f"; tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
            f" = {usage.total_tokens}"
        )
        if usage.HasField("cost"):
            line += f"; cost {_money(usage.cost)}"
    print(line)
    return 0


def _models(args: argparse.Namespace) -> int:
    from routerpc import RouterClient, RouterError

    try:
        with RouterClient(args.target, timeout=args.timeout) as client:
            models = client.list_models()
            rows = []
            for model in models:
                endpoints = client.list_endpoints(model.id)
                kinds = sorted({e.quantization_name or "-" for e in endpoints})
                rows.append((model.id, str(model.context_length), ",".join(kinds)))
    except RouterError as error:
        return _fail(f"{error.grpc_code.name}: {error.message}")
    _table(("MODEL", "CONTEXT", "QUANTIZATIONS"), rows)
    return 0


def _endpoints(args: argparse.Namespace) -> int:
    from routerpc import RouterClient, RouterError

    try:
        with RouterClient(args.target, timeout=args.timeout) as client:
            endpoints = client.list_endpoints(args.model)
    except RouterError as error:
        return _fail(f"{error.grpc_code.name}: {error.message}")
    rows = [
        (
            e.tag,
            e.quantization_name or "-",
            _per_million(e.pricing.prompt),
            _per_million(e.pricing.completion),
            str(e.context_length),
            f"{e.uptime_last_30m:.1f}%" if e.HasField("uptime_last_30m") else "-",
        )
        for e in endpoints
    ]
    _table(("PROVIDER", "QUANT", "$/M IN", "$/M OUT", "CONTEXT", "UPTIME"), rows)
    return 0


def _per_million(price: str) -> str:
    try:
        return f"{float(price) * 1e6:.2f}"
    except ValueError:
        return "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``routerpc`` console script."""
    args = _parser().parse_args(argv)
    handlers = {
        "hash-token": _hash_token,
        "serve": _serve,
        "emulator": _emulator,
        "chat": _chat,
        "models": _models,
        "endpoints": _endpoints,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
