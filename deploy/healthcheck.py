"""Container health check for the routerpc image: exit 0 when the target reports SERVING.

    python /app/healthcheck.py                 # gRPC health of 127.0.0.1:$ROUTERPC_PORT (50051)
    python /app/healthcheck.py 10.0.0.7:50051  # gRPC health of another target
    python /app/healthcheck.py --service=routerpc.v1.RouterService
    python /app/healthcheck.py --http=http://127.0.0.1:8080/_emulator/health   # the emulator

The gateway's check calls the standard ``grpc.health.v1.Health/Check`` (the same service the
Kubernetes ``grpc:`` probes call), so a draining gateway (NOT_SERVING) fails it. Arguments never
contain spaces: podman 4.3's Docker-compatible API splits a compose healthcheck's arguments at
spaces. Exit codes: 0 healthy, 1 unhealthy or unreachable, 2 bad arguments.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Sequence

TIMEOUT_S = 3.0


def check_grpc(target: str, service: str) -> str | None:
    """``None`` when ``target`` reports SERVING for ``service``, else what went wrong."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            return f"{target}: health check failed: {code}"
    status: int = reply.status
    if status != health_pb2.HealthCheckResponse.SERVING:
        return f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
    return None


def check_http(url: str) -> str | None:
    """``None`` when ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as reply:
            status: int = reply.status
    except OSError as error:  # URLError and timeouts included
        return f"{url}: {error}"
    return None if status == 200 else f"{url}: HTTP {status}"


def main(argv: Sequence[str]) -> int:
    target = f"127.0.0.1:{os.environ.get('ROUTERPC_PORT', '50051')}"
    service = ""
    url: str | None = None
    for argument in argv:
        if argument.startswith("--http="):
            url = argument.removeprefix("--http=")
        elif argument.startswith("--service="):
            service = argument.removeprefix("--service=")
        elif argument.startswith("-"):
            print(f"healthcheck: unknown option {argument}", file=sys.stderr)
            return 2
        else:
            target = argument
    problem = check_http(url) if url is not None else check_grpc(target, service)
    if problem is not None:
        print(f"healthcheck: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
