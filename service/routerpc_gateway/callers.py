"""The callers file: who may call the gateway, and the routing policy each caller gets.

YAML (``.yaml``/``.yml``) or TOML (``.toml``), validated by pydantic, re-read on SIGHUP (a file
that fails validation is logged and the previous one stays in force). Example::

    require_auth: true
    callers:
      team-x:
        token_sha256: ["<hex of sha256(token)>"]   # `routerpc hash-token` prints it
        mtls_subjects: ["team-x"]                  # client certificate common names
        byok: false                                # may send its own OpenRouter key
        defaults:                                  # fill what the request left unset
          data_collection: deny
          zdr: true
          quantizations: [fp8, fp16]
        limits:                                    # ceilings every request must respect
          mode: reject                             # or narrow
          models: ["openai/*", "meta-llama/*"]
          quantizations: [fp8, fp16, bf16]
          providers: [azure, deepinfra]
          ignored_providers: [chutes]
          max_price: {prompt: 5, completion: 15}
          max_tokens: 4096

Tokens are stored only as SHA-256 hex digests, never in clear.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "Caller",
    "CallersFile",
    "CallersStore",
    "Defaults",
    "Limits",
    "Price",
    "hash_token",
    "load_callers",
]

log = logging.getLogger("routerpc.gateway")

Quant = Literal[
    "int4",
    "int8",
    "fp4",
    "mxfp4",
    "nvfp4",
    "fp6",
    "fp8",
    "mxfp8",
    "fp16",
    "bf16",
    "fp32",
    "unknown",
]


def hash_token(token: str) -> str:
    """The digest stored for a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    """USD caps (prompt and completion per million tokens), as in ``provider.max_price``."""

    prompt: float | None = Field(None, ge=0)
    completion: float | None = Field(None, ge=0)
    image: float | None = Field(None, ge=0)
    audio: float | None = Field(None, ge=0)
    request: float | None = Field(None, ge=0)


class Defaults(_Strict):
    """Provider preferences applied when the request did not set them."""

    order: list[str] | None = None
    allow_fallbacks: bool | None = None
    require_parameters: bool | None = None
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool | None = None
    enforce_distillable_text: bool | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    quantizations: list[Quant] | None = None
    sort: Literal["price", "throughput", "latency", "exacto"] | None = None
    max_price: Price | None = None


class Limits(_Strict):
    """Ceilings enforced on every request. ``mode: reject`` refuses a request that exceeds one
    (PERMISSION_DENIED naming the rule); ``mode: narrow`` narrows it to the ceiling instead
    (never widening what the caller asked for)."""

    mode: Literal["reject", "narrow"] = "reject"
    models: list[str] | None = None
    quantizations: list[Quant] | None = None
    providers: list[str] | None = None
    ignored_providers: list[str] | None = None
    max_price: Price | None = None
    max_tokens: int | None = Field(None, ge=1)


class Caller(_Strict):
    """One caller: its credentials and its policy."""

    token_sha256: list[str] = []
    mtls_subjects: list[str] = []
    byok: bool = False
    defaults: Defaults | None = None
    limits: Limits | None = None

    @field_validator("token_sha256")
    @classmethod
    def _hex_digests(cls, values: list[str]) -> list[str]:
        for value in values:
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
                raise ValueError("token_sha256 entries are 64-character hex SHA-256 digests")
        return [v.lower() for v in values]


class CallersFile(_Strict):
    """The whole file."""

    require_auth: bool = True
    callers: dict[str, Caller] = {}

    @field_validator("callers")
    @classmethod
    def _one_caller_per_credential(cls, callers: dict[str, Caller]) -> dict[str, Caller]:
        """A token or subject listed for two callers would silently get the later one's policy."""
        seen: dict[str, str] = {}
        for name, caller in callers.items():
            for kind, values in (
                ("token_sha256", caller.token_sha256),
                ("mtls_subjects", caller.mtls_subjects),
            ):
                for value in values:
                    first = seen.setdefault(f"{kind}:{value}", name)
                    if first != name:
                        raise ValueError(f"{name}: a {kind} entry is already listed for {first}")
        return callers


def load_callers(path: Path) -> CallersFile:
    """Parse and validate; raises ``ValueError`` with one readable line on any problem."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    try:
        raw: Any = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        kind = "toml" if path.suffix == ".toml" else "yaml"
        raise ValueError(f"{path} is not valid {kind}: {_one_line(error)}") from None
    try:
        return CallersFile.model_validate(raw or {})
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = f"{loc}: " if loc else ""  # a whole-file problem has no location
        raise ValueError(f"{path}: {where}{_one_line(first['msg'])}") from None


def _one_line(error: Exception | str) -> str:
    """A parser's complaint as one line, without the file excerpt PyYAML quotes (lines of the
    file, a caret) after it."""
    text = str(error)
    if isinstance(error, yaml.MarkedYAMLError) and error.problem:
        text = error.problem
        mark = error.problem_mark
        if mark is not None:
            text += f" (line {mark.line + 1}, column {mark.column + 1})"
        if error.context:
            text = f"{error.context}: {text}"
    return " ".join(text.split())


class CallersStore:
    """The callers file in force, with lookups by credential; ``reload()`` swaps it atomically."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._apply(load_callers(path) if path is not None else CallersFile(require_auth=False))

    def _apply(self, config: CallersFile) -> None:
        self.config = config
        self._by_token = {
            digest: name for name, c in config.callers.items() for digest in c.token_sha256
        }
        self._by_subject = {
            subject: name for name, c in config.callers.items() for subject in c.mtls_subjects
        }

    @property
    def auth_required(self) -> bool:
        return self.config.require_auth

    def reload(self) -> bool:
        """Re-read the file; on failure keep the current one. Whether the new one took effect."""
        if self._path is None:
            return False
        try:
            self._apply(load_callers(self._path))
        except ValueError as error:
            log.error("callers file not reloaded, keeping the previous one: %s", error)
            return False
        log.info("callers file reloaded: %d callers", len(self.config.callers))
        return True

    def by_token(self, token: str) -> tuple[str, Caller] | None:
        name = self._by_token.get(hash_token(token))
        return (name, self.config.callers[name]) if name is not None else None

    def by_subject(self, subject: str) -> tuple[str, Caller] | None:
        name = self._by_subject.get(subject)
        return (name, self.config.callers[name]) if name is not None else None
