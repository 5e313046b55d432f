"""OpenRouter errors → gRPC statuses (``routerpc_gateway.errors``).

Bodies follow ``shared/reference/openrouter-api.md`` §4.4 (routing exhaustion), §6 (mid-stream
errors) and §7 (error shape, status table). Each status is also decoded with the client's
``error_from_status``, so the gateway and the client agree on what crosses the wire.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from routerpc import FieldViolation, error_from_status
from routerpc_gateway.errors import (
    GATEWAY_DOMAIN,
    HTTP_TO_GRPC,
    UPSTREAM_DOMAIN,
    GatewayError,
    grpc_code_for_http,
    invalid_argument,
    parse_retry_after,
    upstream_error,
)

S = grpc.StatusCode


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    found = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(found) == 1
    info = error_details_pb2.ErrorInfo()
    found[0].Unpack(info)
    return info


def retry_info(status: status_pb2.Status) -> error_details_pb2.RetryInfo | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info
    return None


def envelope(code: Any, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


# The table ---------------------------------------------------------------------------------

TABLE = [
    (400, S.INVALID_ARGUMENT, "BAD_REQUEST"),
    (401, S.UNAUTHENTICATED, "UPSTREAM_UNAUTHENTICATED"),
    (402, S.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS"),
    (403, S.PERMISSION_DENIED, "FORBIDDEN"),
    (404, S.NOT_FOUND, "NOT_FOUND"),
    (408, S.DEADLINE_EXCEEDED, "UPSTREAM_TIMEOUT"),
    (413, S.INVALID_ARGUMENT, "PAYLOAD_TOO_LARGE"),
    (422, S.INVALID_ARGUMENT, "UNPROCESSABLE"),
    (429, S.RESOURCE_EXHAUSTED, "RATE_LIMITED"),
    (500, S.INTERNAL, "UPSTREAM_INTERNAL"),
    (502, S.UNAVAILABLE, "PROVIDER_ERROR"),
    (503, S.UNAVAILABLE, "UPSTREAM_UNAVAILABLE"),
    (504, S.DEADLINE_EXCEEDED, "UPSTREAM_TIMEOUT"),
    (524, S.DEADLINE_EXCEEDED, "UPSTREAM_TIMEOUT"),
    (529, S.UNAVAILABLE, "PROVIDER_OVERLOADED"),
]


@pytest.mark.parametrize(("http", "code", "reason"), TABLE, ids=[str(row[0]) for row in TABLE])
def test_http_status_maps_to_grpc(http: int, code: grpc.StatusCode, reason: str) -> None:
    """The README's error table, row by row: code, default reason, domain, httpStatus."""
    assert HTTP_TO_GRPC[http] == code
    assert grpc_code_for_http(http) == code

    error = upstream_error(http, envelope(http, "upstream said no"))
    assert (error.code, error.reason, error.domain) == (code, reason, UPSTREAM_DOMAIN)
    assert error.message == "upstream said no"
    assert error.metadata["httpStatus"] == str(http)

    status = error.to_status()
    assert status.code == code.value[0]
    decoded = error_from_status(status)
    assert decoded.code == code
    assert (decoded.reason, decoded.domain) == (reason, UPSTREAM_DOMAIN)
    assert decoded.metadata["httpStatus"] == str(http)


@pytest.mark.parametrize(
    ("http", "code"),
    [
        (409, S.ABORTED),
        (412, S.FAILED_PRECONDITION),
        (418, S.INVALID_ARGUMENT),
        (451, S.INVALID_ARGUMENT),
        (501, S.UNAVAILABLE),
        (599, S.UNAVAILABLE),
        (302, S.UNKNOWN),
    ],
)
def test_statuses_outside_the_table_fall_back_by_class(http: int, code: grpc.StatusCode) -> None:
    assert grpc_code_for_http(http) == code
    assert upstream_error(http, None).code == code


# Routing exhaustion ------------------------------------------------------------------------

EXHAUSTED = {
    "error": {
        "code": 404,
        "message": "No endpoints found matching your routing preferences.",
        "availability": {
            "code": "constraint_filtered",
            "retryable": False,
            "requested_models": ["openai/gpt-4o"],
            "excluded_by": ["quantization", "max_price"],
            "constraint": {"field": "provider.quantizations", "detail": "no endpoint at fp4"},
            "docs_url": "https://openrouter.ai/docs/api_reference/errors-and-debugging",
        },
        "metadata": {"previous_errors": [{"provider": "Groq", "code": 404, "status": "x"}]},
    }
}


def test_routing_exhaustion_is_not_found_with_the_availability_code() -> None:
    error = upstream_error(404, EXHAUSTED)
    assert error.code == S.NOT_FOUND
    assert error.domain == UPSTREAM_DOMAIN == "openrouter.ai"
    assert error.reason == "CONSTRAINT_FILTERED"
    assert error.message == "No endpoints found matching your routing preferences."

    decoded = error_from_status(error.to_status())
    assert decoded.code == S.NOT_FOUND
    assert (decoded.reason, decoded.domain) == ("CONSTRAINT_FILTERED", "openrouter.ai")
    metadata = decoded.metadata
    assert json.loads(metadata["availabilityExcludedBy"]) == ["quantization", "max_price"]
    assert json.loads(metadata["availabilityConstraint"]) == {
        "field": "provider.quantizations",
        "detail": "no endpoint at fp4",
    }
    assert metadata["availabilityCode"] == "constraint_filtered"
    assert metadata["availabilityRetryable"] == "false"
    assert json.loads(metadata["availabilityRequestedModels"]) == ["openai/gpt-4o"]
    assert metadata["httpStatus"] == "404"
    assert json.loads(metadata["previousErrors"])[0]["provider"] == "Groq"
    assert "docsUrl" not in metadata  # only the documented availability fields are copied


@pytest.mark.parametrize(
    ("availability_code", "reason"),
    [("privacy_restricted", "PRIVACY_RESTRICTED"), ("no_endpoints", "NO_ENDPOINTS")],
)
def test_availability_code_becomes_the_reason(availability_code: str, reason: str) -> None:
    body = envelope(404, "No endpoints found matching your data policy (Zero data retention).")
    body["error"]["availability"] = {"code": availability_code, "excluded_by": ["data_policy:zdr"]}
    error = upstream_error(404, body)
    assert (error.code, error.reason) == (S.NOT_FOUND, reason)
    assert json.loads(error.metadata["availabilityExcludedBy"]) == ["data_policy:zdr"]


def test_error_type_wins_over_the_availability_code() -> None:
    body = envelope(429, "All providers are at capacity", metadata={"error_type": "overloaded"})
    body["error"]["availability"] = {"code": "capacity_exhausted", "retryable": True}
    assert upstream_error(429, body).reason == "OVERLOADED"


def test_no_endpoints_message_without_codes() -> None:
    body = envelope(404, "No endpoints found that support tool use. To learn more ...")
    error = upstream_error(404, body)
    assert (error.code, error.reason) == (S.NOT_FOUND, "NO_ENDPOINTS_FOUND")


def test_availability_example_shape_with_http_status_instead_of_code() -> None:
    """DOCS availability examples carry ``http_status`` (not ``code``) at the error level."""
    body = {
        "error": {
            "http_status": 429,
            "error_type": "capacity_exhausted",
            "message": "Capacity exhausted",
            "availability": {"code": "capacity_exhausted", "retryable": True},
        }
    }
    error = upstream_error(200, body)
    assert (error.code, error.reason) == (S.RESOURCE_EXHAUSTED, "CAPACITY_EXHAUSTED")
    assert error.metadata["httpStatus"] == "429"


# Retry-After -------------------------------------------------------------------------------


def test_rate_limit_with_retry_after_carries_retry_info() -> None:
    error = upstream_error(429, envelope(429, "Rate limit exceeded"), retry_after="2")
    assert error.code == S.RESOURCE_EXHAUSTED
    assert error.retry_after == 2.0
    info = retry_info(error.to_status())
    assert info is not None
    assert (info.retry_delay.seconds, info.retry_delay.nanos) == (2, 0)
    assert error_from_status(error.to_status()).retry_delay == 2.0


def test_fractional_retry_after() -> None:
    info = retry_info(upstream_error(503, None, retry_after="1.5").to_status())
    assert info is not None
    assert (info.retry_delay.seconds, info.retry_delay.nanos) == (1, 500_000_000)


@pytest.mark.parametrize("header", [None, "", "soon"])
def test_no_retry_info_without_a_usable_retry_after(header: str | None) -> None:
    error = upstream_error(429, envelope(429, "Rate limit exceeded"), retry_after=header)
    assert error.retry_after is None
    assert retry_info(error.to_status()) is None
    assert error_from_status(error.to_status()).retry_delay is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("", None),
        (None, None),
        ("abc", None),
        ("-1", None),
        ("inf", None),
        ("-inf", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # HTTP-date form is not used by OpenRouter
        ("5", 5.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("3600", 3600.0),
        ("3601", 3600.0),
        ("1e9", 3600.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


# In-body and mid-stream errors ---------------------------------------------------------------


def _chunk(error: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "gen-123",
        "object": "chat.completion.chunk",
        "created": 1750000000,
        "model": "openai/gpt-4o",
        "provider": "OpenAI",
        "error": error,
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }


def test_mid_stream_502_is_unavailable() -> None:
    error = upstream_error(200, _chunk({"code": 502, "message": "Provider returned error"}))
    assert error.code == S.UNAVAILABLE
    assert error.reason == "PROVIDER_ERROR"
    assert error.metadata["httpStatus"] == "502"
    assert error.message == "Provider returned error"


def test_mid_stream_error_type_is_the_reason() -> None:
    body = _chunk(
        {
            "code": 429,
            "message": "Rate limit exceeded",
            "metadata": {"error_type": "rate_limit_exceeded", "provider_code": "429"},
        }
    )
    error = upstream_error(200, body)
    assert (error.code, error.reason) == (S.RESOURCE_EXHAUSTED, "RATE_LIMIT_EXCEEDED")
    assert error.metadata["providerCode"] == "429"


def test_string_error_code_is_handled() -> None:
    """The streaming doc's older example uses ``"code": "server_error"`` (a string)."""
    error = upstream_error(200, _chunk({"code": "server_error", "message": "Internal error"}))
    assert error.code == S.UNAVAILABLE
    assert error.metadata["httpStatus"] == "502"
    assert error.message == "Internal error"
    assert error_from_status(error.to_status()).code == S.UNAVAILABLE


def test_string_error_code_with_an_http_error_status_keeps_the_status() -> None:
    error = upstream_error(500, envelope("server_error", "Internal Server Error"))
    assert (error.code, error.metadata["httpStatus"]) == (S.INTERNAL, "500")


@pytest.mark.parametrize(
    "body",
    [None, [], "Bad Gateway", {"error": "Bad Gateway"}, {"error": None}, {"detail": "x"}],
    ids=["none", "list", "text", "error-string", "error-null", "no-error"],
)
def test_bodies_without_an_error_object(body: Any) -> None:
    error = upstream_error(502, body)
    assert error.code == S.UNAVAILABLE
    assert error.message == "upstream returned HTTP 502"
    assert error.metadata == {"httpStatus": "502"}


# Metadata ----------------------------------------------------------------------------------

SECRET_RAW = '{"error":{"message":"prompt was: my password is hunter2","type":"invalid"}}'


def test_raw_provider_body_is_never_copied() -> None:
    body = envelope(
        502,
        "Provider returned error",
        metadata={
            "provider_name": "Fireworks",
            "raw": SECRET_RAW,
            "isDownstreamPipeClean": True,
            "isErrorUpstreamFault": False,
        },
    )
    error = upstream_error(502, body)
    assert "raw" not in error.metadata
    assert error.metadata["providerName"] == "Fireworks"
    assert error.metadata["isDownstreamPipeClean"] == "true"
    assert error.metadata["isErrorUpstreamFault"] == "false"
    wire = error.to_status().SerializeToString()
    assert b"hunter2" not in wire
    assert b"hunter2" not in repr(error.__dict__).encode()


def test_metadata_values_are_strings() -> None:
    body = envelope(
        403,
        "Your input was flagged",
        metadata={
            "reasons": ["violence"],
            "flagged_input": "some text",
            "provider_name": "OpenAI",
            "model_slug": "openai/gpt-4o",
            "count": 3,
            "ratio": 0.5,
            "nothing": None,
            "nested": {"b": 1, "a": [True]},
        },
    )
    metadata = upstream_error(403, body).metadata
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    assert metadata["reasons"] == '["violence"]'
    assert metadata["flaggedInput"] == "some text"
    assert metadata["modelSlug"] == "openai/gpt-4o"
    assert (metadata["count"], metadata["ratio"], metadata["nothing"]) == ("3", "0.5", "null")
    assert metadata["nested"] == '{"a":[true],"b":1}'


def _huge_error() -> dict[str, Any]:
    body = envelope(
        502,
        "\u00e9\U0001f600 provider echoed everything " * 2000,
        metadata={f"field_{i}_" + "k" * 100: "\U0001f600" * 3000 for i in range(200)},
    )
    body["error"]["availability"] = {
        "code": "model_unavailable_upstream",
        "excluded_by": ["geo"] * 2000,
        "constraint": {"field": "x", "detail": "y"},
    }
    return body


def test_metadata_is_bounded_and_the_documented_keys_survive() -> None:
    status = upstream_error(502, _huge_error()).to_status()
    metadata = dict(error_info(status).metadata)
    assert all(len(k) <= 64 for k in metadata)
    assert all(len(v.encode()) <= 1024 for v in metadata.values())
    assert sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) <= 2048
    assert metadata["httpStatus"] == "502"
    assert metadata["availabilityCode"] == "model_unavailable_upstream"
    assert json.loads(metadata["availabilityConstraint"]) == {"field": "x", "detail": "y"}
    assert metadata["availabilityExcludedBy"].endswith("\u2026")  # clipped, and says so


def test_the_status_fits_in_grpc_trailers() -> None:
    """gRPC clients drop a call whose trailers pass 8 KiB (soft) / 16 KiB (hard), turning the real
    error into RESOURCE_EXHAUSTED; the status travels base64-encoded plus the message again."""
    status = upstream_error(502, _huge_error()).to_status()
    assert len(status.message.encode()) <= 1024
    assert status.message.endswith("\u2026")
    assert len(status.SerializeToString()) <= 4096
    assert error_from_status(status).code == S.UNAVAILABLE


def test_many_violations_fit_in_grpc_trailers_in_order() -> None:
    violations = [
        FieldViolation(f"messages[{i}].role", "value must not be in list [0]", "enum.not_in")
        for i in range(10_000)
    ]
    fields = ", ".join(v.field for v in violations)
    status = invalid_argument(f"invalid ChatRequest: {fields}", violations).to_status()
    assert len(status.SerializeToString()) <= 4096
    decoded = error_from_status(status)
    assert decoded.code == S.INVALID_ARGUMENT
    assert decoded.reason == "INVALID_REQUEST"
    assert decoded.domain == GATEWAY_DOMAIN
    kept = [v.field for v in decoded.field_violations]
    assert kept
    assert kept == [f"messages[{i}].role" for i in range(len(kept))]


def test_small_errors_are_sent_unchanged() -> None:
    violations = [FieldViolation("messages", "at least 1 item", "repeated.min_items")]
    error = invalid_argument("invalid ChatRequest: messages", violations)
    decoded = error_from_status(error.to_status())
    assert decoded.message == "invalid ChatRequest: messages"
    assert [(v.field, v.description, v.reason) for v in decoded.field_violations] == [
        ("messages", "at least 1 item", "repeated.min_items")
    ]
    assert decoded.metadata == {}


def test_lone_surrogates_from_upstream_json_do_not_break_the_status() -> None:
    body = json.loads(
        '{"error": {"code": 400, "message": "bad \\ud800 emoji", '
        '"metadata": {"provider_name": "\\udc00X", "error_type": "invalid_prompt"}}}'
    )
    status = upstream_error(400, body).to_status()
    assert status.code == S.INVALID_ARGUMENT.value[0]
    assert status.message.startswith("bad ")
    assert error_info(status).metadata["providerName"].endswith("X")
    assert error_info(status).reason == "INVALID_PROMPT"


def test_reason_is_bounded() -> None:
    body = envelope(400, "x", metadata={"error_type": "a" * 500})
    assert len(error_info(upstream_error(400, body).to_status()).reason) <= 63


def test_gateway_error_defaults() -> None:
    error = GatewayError(S.UNAVAILABLE, "upstream unreachable", reason="UPSTREAM_UNREACHABLE")
    status = error.to_status()
    assert status.code == S.UNAVAILABLE.value[0]
    assert status.message == "upstream unreachable"
    info = error_info(status)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "UPSTREAM_UNREACHABLE",
        GATEWAY_DOMAIN,
        {},
    )
    assert retry_info(status) is None
    assert len(status.details) == 1
