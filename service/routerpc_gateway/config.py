"""Gateway settings, from flags and the environment (pydantic-settings).

Every setting has an environment variable (``ROUTERPC_<NAME>``, except the OpenRouter key which
keeps its conventional ``OPENROUTER_API_KEY``) and a ``routerpc serve`` flag. Values are checked
at start-up; a bad one stops the process with one line naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_UPSTREAM_URL", "Settings"]

DEFAULT_UPSTREAM_URL = "https://openrouter.ai/api/v1"


class Settings(BaseSettings):
    """Everything ``routerpc serve`` can be told."""

    model_config = SettingsConfigDict(env_prefix="ROUTERPC_", extra="ignore", frozen=True)

    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 picks a free one).")
    upstream_url: HttpUrl = Field(
        HttpUrl(DEFAULT_UPSTREAM_URL),
        description="OpenRouter API base URL. Configuration only: callers can never change it.",
    )
    api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENROUTER_API_KEY", "ROUTERPC_API_KEY"),
        description="The OpenRouter key the gateway holds. Without one, the emulator is used.",
    )
    emulator: bool = Field(
        False, description="Serve from the built-in emulator even when a key is set."
    )
    upstream_client: Literal["aiohttp", "httpx", "httpx-http2", "httpx-aiohttp"] = Field(
        "aiohttp",
        description="HTTP client for upstream calls: aiohttp (least CPU, bench/RESULTS.md), "
        "httpx (HTTP/1.1), httpx-http2 (HTTP/2: ALPN over https, prior knowledge over http) or "
        "httpx-aiohttp (httpx over an aiohttp transport).",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="Event loop: uvloop (libuv, less CPU per call, bench/RESULTS.md; the "
        "standard loop where uvloop is not installed) or the standard library's asyncio loop.",
    )
    http_referer: str = Field("", description="HTTP-Referer attribution header for OpenRouter.")
    app_title: str = Field("", description="X-OpenRouter-Title attribution header.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to open an upstream connection.")
    request_timeout: float = Field(
        600.0,
        gt=0,
        description="Upper bound in seconds on one whole upstream call, whatever the caller's "
        "deadline (calls without a deadline get this one).",
    )
    read_timeout: float = Field(
        120.0, gt=0, description="Seconds without any upstream byte before a call is failed."
    )
    pool_size: int = Field(256, ge=1, le=100_000, description="Maximum open upstream connections.")
    max_message_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest gRPC message accepted or sent."
    )
    max_upstream_response_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest upstream reply read into memory."
    )
    grace_period: float = Field(
        25.0, ge=0, description="Seconds in-flight calls get to finish on SIGTERM."
    )
    callers_file: Path | None = Field(
        None,
        description="YAML or TOML file naming callers, their credentials and routing policy; "
        "re-read on SIGHUP. Without it, authentication is off (local use).",
    )
    tls_cert: Path | None = Field(None, description="Server certificate (PEM) to serve TLS.")
    tls_key: Path | None = Field(None, description="Server private key (PEM).")
    tls_client_ca: Path | None = Field(
        None, description="CA (PEM) for client certificates: enables and requires mTLS."
    )
    allow_byok: bool = Field(
        False,
        description="Without a callers file: let callers send their own OpenRouter key in "
        "`x-openrouter-api-key` metadata (with one, each caller's `byok` decides).",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="Upstream attempts per call (retries happen only before "
        "anything was relayed, and only for 408/429/5xx and connection failures).",
    )
    retry_base_delay: float = Field(0.25, gt=0, description="First retry backoff cap, seconds.")
    retry_max_delay: float = Field(4.0, gt=0, description="Largest retry backoff, seconds.")
    retry_budget_ratio: float = Field(
        0.2, ge=0, le=1, description="Retries may add at most this share of recent requests."
    )
    max_concurrent_upstream: int = Field(
        1024, ge=1, description="Upstream calls (and open streams) in flight at once."
    )
    max_queued: int = Field(
        256, ge=0, description="Calls waiting for an upstream slot before new ones are shed."
    )
    drain_delay: float = Field(
        1.0,
        ge=0,
        le=300,
        description="Seconds between turning health NOT_SERVING and refusing new calls on "
        "SIGTERM, so load balancers and health probes see the drain before connections close.",
    )
    catalog_ttl: float = Field(
        60.0, ge=0, description="Seconds the models and endpoints lists are cached."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Gateway processes sharing the port (SO_REUSEPORT); default: one per "
        "available core.",
    )
    worker_index: int | None = Field(
        None, ge=0, description="Internal: set by the master on each worker process."
    )
    ready_fd: int | None = Field(
        None, ge=0, description="Internal: the master's pipe a worker reports readiness on."
    )
    metrics_dir: Path | None = Field(
        None, description="Internal: where a worker writes its metrics for the master to sum."
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics over HTTP on this port (all workers summed); off "
        "when unset.",
    )
    metrics_host: str = Field("0.0.0.0", description="Address for the metrics endpoint.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    log_format: Literal["json", "text"] = Field("text")

    @model_validator(mode="after")
    def _tls_pairs(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca needs tls_cert and tls_key")
        for path in (self.tls_cert, self.tls_key, self.tls_client_ca, self.callers_file):
            if path is not None and not path.is_file():
                raise ValueError(f"no such file: {path}")
        return self

    @field_validator("upstream_url")
    @classmethod
    def _no_trailing_slash(cls, value: HttpUrl) -> HttpUrl:
        return HttpUrl(str(value).rstrip("/"))

    @property
    def upstream_base(self) -> str:
        """The upstream base URL without a trailing slash."""
        return str(self.upstream_url).rstrip("/")

    @property
    def use_emulator(self) -> bool:
        """Whether ``serve`` should start the embedded emulator (never in a worker: the master
        started it and passed its URL as the upstream)."""
        if self.worker_index is not None:
            return False
        return self.emulator or self.api_key is None or not self.api_key.get_secret_value()
