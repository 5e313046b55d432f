"""mTLS: a client certificate's common name is a credential (``mtls_subjects`` in the callers file).

Certificates are made with the openssl CLI in a temporary directory: a CA, a server certificate
for 127.0.0.1 (subjectAltName IP:127.0.0.1), client certificates CN=team-mtls and CN=stranger
signed by that CA, and a rogue CA that also issues a CN=team-mtls certificate. The server asks
for and verifies client certificates (``--tls-client-ca``); the gateway maps the verified
certificate's common name (gRPC's ``x509_common_name`` auth property) to a caller.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, seed_request
from grpc_health.v1 import health_pb2, health_pb2_grpc
from security_support import (
    Creds,
    Outcome,
    Pki,
    bearer,
    canary_token,
    make_pki,
    open_channel,
    rpc,
    write_yaml,
)

from routerpc import pb

pytestmark = pytest.mark.e2e

AUTH_FAILED = "missing or invalid credentials"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ["team-mtls", "stranger"])


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA, not trusted by the gateway, issuing the very same common name."""
    return make_pki(tmp_path_factory.mktemp("rogue-pki"), ["team-mtls"])


@pytest.fixture(scope="module")
def mtls_gateway(
    pki: Pki,
    module_gateways: Callable[..., Gateway],
    emulator: Emulator,
    creds: Creds,
    tmp_path_factory: pytest.TempPathFactory,
) -> Gateway:
    gateway_key, digests = creds.gateway_key, creds.digests
    callers = write_yaml(
        tmp_path_factory.mktemp("mtls") / "callers.yaml",
        {
            "callers": {
                "team-mtls": {"mtls_subjects": ["team-mtls"]},
                "team-token": {"token_sha256": [digests["mtls-token"]]},
            }
        },
    )
    return module_gateways(
        "mtls",
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--tls-client-ca",
        str(pki.ca),
        "--callers-file",
        str(callers),
        upstream_url=emulator.base_url,
        key=gateway_key,
    )


def chat(
    gateway: Gateway,
    credentials: grpc.ChannelCredentials | None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> Outcome:
    with open_channel(gateway.target, credentials) as channel:
        return rpc(
            pb.RouterServiceStub(channel).Chat, seed_request().proto, metadata=metadata, timeout=10
        )


def test_the_server_certificate_names_127_0_0_1(pki: Pki) -> None:
    import subprocess

    text = subprocess.run(
        ["openssl", "x509", "-in", str(pki.server_cert), "-noout", "-text"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text


def test_the_listed_common_name_is_a_credential(
    mtls_gateway: Gateway, pki: Pki, upstream: Emulator
) -> None:
    allowed = chat(mtls_gateway, pki.client_credentials("team-mtls"))
    assert allowed.ok, allowed.text
    assert len(upstream.requests()) == 1
    assert "caller=team-mtls" in mtls_gateway.log_text(), "the certificate identified the caller"


def test_a_trusted_certificate_with_an_unlisted_name_is_refused(
    mtls_gateway: Gateway, pki: Pki, upstream: Emulator
) -> None:
    refused = chat(mtls_gateway, pki.client_credentials("stranger"))
    assert (refused.code, refused.details) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)
    assert upstream.requests() == []


def test_without_a_client_certificate_the_handshake_fails(
    mtls_gateway: Gateway, pki: Pki, rogue: Pki, upstream: Emulator
) -> None:
    no_cert = chat(mtls_gateway, pki.client_credentials(None))
    assert no_cert.code == grpc.StatusCode.UNAVAILABLE, no_cert.text
    # Same common name, signed by a CA the gateway does not trust (the client trusts the server).
    forged = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=rogue.clients["team-mtls"][1].read_bytes(),
        certificate_chain=rogue.clients["team-mtls"][0].read_bytes(),
    )
    assert chat(mtls_gateway, forged).code == grpc.StatusCode.UNAVAILABLE
    assert chat(mtls_gateway, None).code == grpc.StatusCode.UNAVAILABLE, "no plaintext either"
    assert upstream.requests() == []


def test_tokens_and_certificates_together(
    mtls_gateway: Gateway, pki: Pki, upstream: Emulator, tokens: dict[str, str]
) -> None:
    """A presented token decides: a wrong one is refused even with a listed certificate, and a
    listed token identifies its caller over any trusted certificate."""
    wrong = chat(mtls_gateway, pki.client_credentials("team-mtls"), bearer(canary_token()))
    assert (wrong.code, wrong.details) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)
    assert upstream.requests() == []
    by_token = chat(mtls_gateway, pki.client_credentials("stranger"), bearer(tokens["mtls-token"]))
    assert by_token.ok, by_token.text
    assert "caller=team-token" in mtls_gateway.log_text()


def test_health_needs_the_handshake_but_no_listed_name(mtls_gateway: Gateway, pki: Pki) -> None:
    with open_channel(mtls_gateway.target, pki.client_credentials("stranger")) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_no_client_ca_means_no_client_certificate_identity(
    start_gateway: Callable[..., Gateway],
    pki: Pki,
    emulator: Emulator,
    gateway_key: str,
    tmp_path: Path,
) -> None:
    """TLS without ``--tls-client-ca``: client certificates are not verified, so a certificate
    naming a listed subject must not be taken as a credential."""
    callers = write_yaml(
        tmp_path / "callers.yaml", {"callers": {"team-mtls": {"mtls_subjects": ["team-mtls"]}}}
    )
    gateway = start_gateway(
        "tls-no-client-ca",
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--callers-file",
        str(callers),
        upstream_url=emulator.base_url,
        key=gateway_key,
    )
    refused = chat(gateway, pki.client_credentials("team-mtls"))
    assert (refused.code, refused.details) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)
