# routerpc gateway (and its OpenRouter emulator) as one image.
#
#   podman build --format docker -t localhost/routerpc:latest .      # or: docker build -t ...
#   podman run --rm -p 127.0.0.1:50051:50051 localhost/routerpc:latest   # no key: own emulator
#   podman run --rm localhost/routerpc:latest emulator --host 0.0.0.0 --port 8080
#
# `--format docker` keeps HEALTHCHECK (the OCI image format has no such field). BASE may be any
# Debian-based Python 3.11 image with python3 -m venv; both stages must use the same one.
ARG BASE=python:3.11-slim

# Build stage: a runtime venv with exactly the hash-pinned dependencies, and wheels of the two
# local packages built with the pinned backend (hatchling) from a separate venv that never
# reaches the final image.
FROM ${BASE} AS build
WORKDIR /src
RUN python3 -m venv /opt/venv \
    && python3 -m venv /opt/buildtools
COPY requirements-runtime.lock requirements-build.lock ./
RUN /opt/buildtools/bin/pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes --only-binary=:all: -r requirements-build.lock \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes --only-binary=:all: -r requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY client/ client/
COPY service/ service/
COPY emulator/ emulator/
RUN /opt/buildtools/bin/pip wheel --no-cache-dir --disable-pip-version-check \
        --no-deps --no-build-isolation --wheel-dir /wheels ./client . \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --no-deps --no-index /wheels/*.whl \
    && /opt/venv/bin/pip check

# Runtime stage: the venv, the health check script, a non-root user; no compiler, no pip cache.
FROM ${BASE}
LABEL org.opencontainers.image.title="routerpc" \
      org.opencontainers.image.description="gRPC gateway with typed contracts in front of the OpenRouter routing API" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 routerpc \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin routerpc
COPY --from=build /opt/venv /opt/venv
COPY deploy/healthcheck.py /app/healthcheck.py
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ROUTERPC_HOST=0.0.0.0 \
    ROUTERPC_PORT=50051
USER 10001:10001
EXPOSE 50051
# The standard gRPC health service: fails while the gateway drains (NOT_SERVING). Exec form with
# no spaces in any argument (podman 4.3's Docker-compatible API splits arguments at spaces).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "/app/healthcheck.py"]
# Exec form: the Python process is PID 1 and receives SIGTERM itself, then drains.
ENTRYPOINT ["/opt/venv/bin/routerpc"]
CMD ["serve"]
