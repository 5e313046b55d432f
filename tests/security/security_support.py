"""Helpers for the security end-to-end tests: canary secrets, callers files, certificates, calls.

A plain module (not conftest) so test files can import it by a unique name. Every RPC made through
``rpc()`` is checked on the spot for any registered secret in what the caller could read (status
message, details, trailing metadata) and kept in ``RECEIVED`` for the final sweep in
test_secrets.py.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from gateway_e2e import ROUTERPC, Gateway, clean_env, describe_error

from routerpc import RouterError, error_from_rpc

KNOWN_SECRETS: set[str] = set()
"""Every token and key handed to a gateway or a client in this session."""

RECEIVED: list[str] = []
"""Everything a caller could read from every call made through ``rpc()``."""

WAIT_S = 15.0


def canary_token() -> str:
    """A caller token the suite-wide log guard (tests/leakscan.py) also recognises."""
    token = f"canary-token-{secrets.token_hex(12)}"
    KNOWN_SECRETS.add(token)
    return token


def canary_key() -> str:
    """An OpenRouter-shaped key the suite-wide log guard also recognises."""
    key = f"sk-or-v1-canary-{secrets.token_hex(16)}"
    KNOWN_SECRETS.add(key)
    return key


def hash_tokens(*tokens: str) -> list[str]:
    """``routerpc hash-token`` for each token (read on stdin), run in parallel; the digests."""
    processes = [
        subprocess.Popen(
            [ROUTERPC, "hash-token"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        for _ in tokens
    ]
    digests = []
    for process, token in zip(processes, tokens, strict=True):
        out, err = process.communicate(token.encode() + b"\n", timeout=WAIT_S)
        assert process.returncode == 0, err.decode()
        digest = out.decode().strip()
        assert len(digest) == 64
        assert token not in out.decode() + err.decode()
        digests.append(digest)
    return digests


def write_yaml(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False))
    return path


@dataclass(frozen=True)
class Creds:
    """The session's secrets: the gateways' key, caller tokens by name and their digests."""

    gateway_key: str
    tokens: dict[str, str]
    digests: dict[str, str]


# Calls ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one RPC gave its caller."""

    code: grpc.StatusCode
    details: str
    trailers: tuple[tuple[str, Any], ...]
    response: Any = None
    error: RouterError | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK

    @property
    def reason(self) -> str:
        return self.error.reason if self.error is not None else ""

    @property
    def info(self) -> dict[str, str]:
        return self.error.metadata if self.error is not None else {}


def _assert_no_secret(text: str, where: str) -> None:
    leaked = [s for s in KNOWN_SECRETS if s in text]
    assert not leaked, f"a secret reached the caller in {where}: {text!r}"


def rpc(
    method: Any, request: Any, *, metadata: Iterable[tuple[str, str]] = (), **kw: Any
) -> Outcome:
    """Call a unary method (``stub.Chat`` ...) with a bounded deadline; never raises RpcError."""
    kw.setdefault("timeout", WAIT_S)
    try:
        response, call = method.with_call(request, metadata=tuple(metadata), **kw)
    except grpc.RpcError as failure:
        call_: Any = failure
        outcome = Outcome(
            call_.code(),
            call_.details() or "",
            tuple(call_.trailing_metadata() or ()),
            error=error_from_rpc(failure),
            text=describe_error(failure) + "\n" + describe_error(error_from_rpc(failure)),
        )
    else:
        trailers = tuple(call.trailing_metadata() or ())
        outcome = Outcome(grpc.StatusCode.OK, "", trailers, response=response, text=repr(trailers))
    RECEIVED.append(outcome.text)
    _assert_no_secret(outcome.text, "a status, its details or trailing metadata")
    return outcome


def rpc_stream(
    method: Any, request: Any, *, metadata: Iterable[tuple[str, str]] = (), **kw: Any
) -> Outcome:
    """Call a server-streaming method and drain it; never raises RpcError."""
    kw.setdefault("timeout", WAIT_S)
    call = method(request, metadata=tuple(metadata), **kw)
    items = []
    try:
        items = list(call)
    except grpc.RpcError as failure:
        outcome = Outcome(
            call.code(),
            call.details() or "",
            tuple(call.trailing_metadata() or ()),
            response=items,
            error=error_from_rpc(failure),
            text=describe_error(failure),
        )
    else:
        trailers = tuple(call.trailing_metadata() or ())
        outcome = Outcome(call.code(), "", trailers, response=items, text=repr(trailers))
    RECEIVED.append(outcome.text)
    _assert_no_secret(outcome.text, "a stream's status or trailing metadata")
    return outcome


def assert_log_clean(gateway: Gateway) -> None:
    """No known secret, nor the last 12 characters of one, in the gateway's log."""
    text = gateway.log_text()
    assert "routerpc listening on" in text, "the scanned log must be the gateway's"
    leaked = [s for s in KNOWN_SECRETS if s in text or s[-12:] in text]
    assert not leaked, f"secret (or its tail) in {gateway.log_path}"


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def wait_for(check: Callable[[], bool], timeout_s: float = WAIT_S, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step_s)
    return check()


# Certificates ---------------------------------------------------------------------------------


@dataclass
class Pki:
    """A throw-away CA, a server certificate for 127.0.0.1, and client certificates."""

    root: Path
    clients: dict[str, tuple[Path, Path]] = field(default_factory=dict)

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    def client_credentials(self, name: str | None) -> grpc.ChannelCredentials:
        if name is None:
            return grpc.ssl_channel_credentials(root_certificates=self.ca.read_bytes())
        cert, key = self.clients[name]
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=key.read_bytes(),
            certificate_chain=cert.read_bytes(),
        )


def _openssl(*args: str | Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, timeout=WAIT_S, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _signed(pki: Pki, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
    key, csr, cert, ext = (pki.root / f"{name}.{s}" for s in ("key", "csr", "pem", "ext"))
    ext.write_text(extensions)
    _openssl("req", *_EC, "-keyout", key, "-out", csr, "-subj", subject)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", pki.ca, "-CAkey", pki.root / "ca.key",
        "-CAcreateserial", "-days", "2", "-sha256", "-out", cert, "-extfile", ext,
    )  # fmt: skip
    return cert, key


def make_pki(root: Path, client_names: Iterable[str]) -> Pki:
    """openssl: CA, server cert (SAN IP:127.0.0.1, serverAuth), one client cert per CN."""
    root.mkdir(parents=True, exist_ok=True)
    pki = Pki(root)
    _openssl(
        "req", "-x509", *_EC, "-keyout", root / "ca.key", "-out", pki.ca, "-days", "2",
        "-subj", "/CN=routerpc-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _signed(
        pki,
        "server",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n",
    )
    for name in client_names:
        pki.clients[name] = _signed(
            pki,
            f"client-{name}",
            f"/O=routerpc tests/CN={name}",
            "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n",
        )
    return pki


def open_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    options: Iterable[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel with its own connections (never one shared with an earlier test's channel)."""
    opts = [("grpc.use_local_subchannel_pool", 1), *options]
    if credentials is None:
        return grpc.insecure_channel(target, options=opts)
    return grpc.secure_channel(target, credentials, options=opts)
