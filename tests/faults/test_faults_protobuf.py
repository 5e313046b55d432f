"""Malformed, fuzzed and hostile protobuf input on Chat and StreamChat, sent byte for byte
through a gRPC channel with identity serializers.

Every call must end promptly (deadline 5 s; hostile-but-valid ones 15 s) with a status, never OK
for garbage, and the gateway must keep serving. The expected status is predicted exactly from
the bytes, with the same protobuf runtime and validation rules the gateway uses:

* bytes the protobuf runtime cannot parse are ``INVALID_ARGUMENT`` ("the request is not a
  valid ... message"): the gateway parses requests itself rather than leaving it to grpc, whose
  deserializer failure would be ``UNKNOWN`` with a traceback logged per request;
* bytes that parse but break the proto's validation rules are ``INVALID_ARGUMENT``;
* bytes that parse into a valid request go upstream and end as the upstream decides (recorded).

The statuses seen are written to ``protobuf-statuses.json`` in the suite's temporary directory.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from faults_support import CHAT, STREAM_CHAT, Caller, Launcher, Outcome
from gateway_e2e import Emulator, Gateway, seed_request
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routerpc import Role, pb
from routerpc._validation import field_violations

pytestmark = pytest.mark.e2e

CODE = grpc.StatusCode
TIMEOUT_S = 5.0
PROMPT_S = 4.0
"""Every garbage call must have its status well before its 5 s deadline."""
MIB = 1024 * 1024
METHODS = [CHAT, STREAM_CHAT]

Statuses = collections.Counter[str]


@pytest.fixture(scope="module")
def proto_gateway(launcher: Launcher, emulator: Emulator) -> Gateway:
    return launcher.start("protobuf", upstream_url=emulator.base_url)


@pytest.fixture(scope="module")
def proto_channel(proto_gateway: Gateway) -> Iterator[grpc.Channel]:
    options = [("grpc.max_receive_message_length", 64 * MIB)]
    with grpc.insecure_channel(proto_gateway.target, options=options) as channel:
        yield channel


@pytest.fixture(scope="module")
def statuses(faults_dir: Path) -> Iterator[dict[str, Statuses]]:
    """Per input family, how many calls ended in which status."""
    seen: dict[str, Statuses] = collections.defaultdict(collections.Counter)
    yield seen
    (faults_dir / "protobuf-statuses.json").write_text(json.dumps(seen, indent=1, sort_keys=True))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _as_stream_request(chat: bytes) -> bytes:
    """A StreamChatRequest whose field 1 (``request``) holds ``chat`` as is (even if broken)."""
    return b"\x0a" + _varint(len(chat)) + chat


UNDECODABLE = CODE.INVALID_ARGUMENT


def _undecodable(method: str, data: bytes) -> bool:
    kind: Any = pb.ChatRequest if method == CHAT else pb.StreamChatRequest
    try:
        kind.FromString(data)
    except DecodeError:
        return True
    return False


def _predicted(method: str, data: bytes) -> grpc.StatusCode | None:
    """The status the gateway must answer ``data`` with; None when it is a valid request."""
    kind: Any = pb.ChatRequest if method == CHAT else pb.StreamChatRequest
    try:
        message = kind.FromString(data)
    except DecodeError:
        return UNDECODABLE
    if field_violations(message):
        return CODE.INVALID_ARGUMENT
    return None


def _check(
    caller: Caller,
    channel: grpc.Channel,
    method: str,
    data: bytes,
    seen: Statuses,
    *,
    timeout: float = TIMEOUT_S,
) -> Outcome:
    expected = _predicted(method, data)
    outcome = caller.raw(channel, method, data, timeout=timeout)
    seen[f"{method.rsplit('/', 1)[1]} {outcome.code.name}"] += 1
    where = f"{method} {data[:64]!r}... ({len(data)} bytes)"
    assert outcome.code != CODE.DEADLINE_EXCEEDED, f"{where}: no status within {timeout}s"
    assert outcome.elapsed < timeout, where
    if expected is not None:
        assert outcome.code == expected, f"{where}: {outcome} (expected {expected.name})"
    if _undecodable(method, data):
        assert "is not a valid" in outcome.details, f"{where}: {outcome}"
    return outcome


def assert_serves(caller: Caller, gateway: Gateway) -> None:
    assert gateway.process.poll() is None, "the gateway process died"
    unary = caller.unary(gateway.target, seed_request().proto)
    assert unary.ok, f"after the garbage a normal chat failed: {unary}"
    streamed = caller.stream(gateway.target, seed_request().proto)
    assert streamed.ok, f"after the garbage a normal stream failed: {streamed}"


VALID_CHAT = seed_request().proto.SerializeToString()
VALID = {CHAT: VALID_CHAT, STREAM_CHAT: _as_stream_request(VALID_CHAT)}


@st.composite
def _mutated(draw: st.DrawFn, method: str) -> bytes:
    """A valid request with a few random byte flips, insertions, deletions or a truncation."""
    data = bytearray(VALID[method])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if edit == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at]
        else:
            del data[at:]
    return bytes(data)


# Fuzzing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS, ids=["Chat", "StreamChat"])
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_bytes_end_promptly_in_the_predicted_status(
    proto_channel: grpc.Channel,
    caller: Caller,
    statuses: dict[str, Statuses],
    method: str,
    data: st.DataObject,
) -> None:
    payload = data.draw(st.one_of(st.binary(max_size=2048), _mutated(method)), label="payload")
    _check(caller, proto_channel, method, payload, statuses["fuzzed"])


def test_the_gateway_keeps_serving_after_the_fuzzing(
    proto_gateway: Gateway, caller: Caller, statuses: dict[str, Statuses]
) -> None:
    assert sum(statuses["fuzzed"].values()) >= 2 * 100 or not statuses["fuzzed"], statuses
    assert_serves(caller, proto_gateway)


# Malformed by construction -------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS, ids=["Chat", "StreamChat"])
def test_every_truncation_of_a_valid_request_ends_in_its_status(
    proto_gateway: Gateway,
    proto_channel: grpc.Channel,
    caller: Caller,
    statuses: dict[str, Statuses],
    method: str,
) -> None:
    valid = VALID[method]
    outcomes = [
        _check(caller, proto_channel, method, valid[:cut], statuses["truncated"])
        for cut in range(len(valid))
    ]
    assert {o.code for o in outcomes} >= {CODE.INVALID_ARGUMENT}
    assert any("is not a valid" in o.details for o in outcomes), "no truncation was undecodable"
    assert_serves(caller, proto_gateway)


WIRE_FORMAT_CASES = {
    # ChatRequest: 1 model (string), 2 models (repeated string), 3 messages (repeated Message);
    # Message: 1 role (enum), 2 text (string). A known field on the wrong wire type is kept as
    # an unknown field by the runtime, so these parse; validation then decides.
    "model as a varint": b"\x08\x01",
    "models as a varint": b"\x10\x05",
    "messages as a varint": b"\x18\x05",
    "messages as a fixed64": b"\x19" + b"\x01" * 8,
    "messages as a fixed32": b"\x1d\x01\x02\x03\x04",
    "a valid request plus a message whose role is a string": VALID_CHAT + b"\x1a\x04\x0a\x02hi",
    # Not parseable at all.
    "start group": b"\x0b",
    "end group": b"\x0c",
    "field number 0": b"\x00\x01",
    "wire type 7": b"\x0f",
    "length far beyond the end": b"\x0a\x10abc",
    "huge varint length": b"\x0a" + b"\xff" * 9 + b"\x7f",
    "varint longer than 10 bytes": b"\x08" + b"\xff" * 11 + b"\x01",
    "length 2**64 - 1": b"\x0a" + _varint(2**64 - 1),
    "truncated tag": b"\x80",
    "a valid request, then junk": VALID_CHAT + b"\xff\xff\xff",
}


@pytest.mark.parametrize("method", METHODS, ids=["Chat", "StreamChat"])
def test_wrong_wire_types_and_impossible_lengths_end_in_their_status(
    proto_gateway: Gateway,
    proto_channel: grpc.Channel,
    caller: Caller,
    statuses: dict[str, Statuses],
    method: str,
) -> None:
    for chat in WIRE_FORMAT_CASES.values():
        # StreamChat: the broken bytes both as the whole message and as its ``request`` field.
        for data in (chat, _as_stream_request(chat)) if method == STREAM_CHAT else (chat,):
            _check(caller, proto_channel, method, data, statuses["wire format"])
    assert_serves(caller, proto_gateway)


# Valid but hostile ---------------------------------------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"k": value}
    return value


def _hostile() -> dict[str, tuple[bytes, set[grpc.StatusCode]]]:
    """Name -> (ChatRequest bytes, the statuses it may end in)."""
    cases: dict[str, tuple[bytes, set[grpc.StatusCode]]] = {}

    def variant(name: str, codes: set[grpc.StatusCode], edit: Any) -> None:
        request = seed_request().proto
        edit(request)
        cases[name] = (request.SerializeToString(), codes)

    def messages(count: int) -> Any:
        def edit(request: pb.ChatRequest) -> None:
            del request.messages[:]
            for _ in range(count):
                request.messages.add(role=Role.USER, text="hi")

        return edit

    variant("10,000 messages (the proto's maximum)", {CODE.OK}, messages(10_000))
    variant("10,001 messages", {CODE.INVALID_ARGUMENT}, messages(10_001))
    variant(
        "Struct nested 31 levels in extra_body",
        {CODE.OK},
        lambda r: r.extra_body.update({"vendor": _nested(30)}),
    )
    # Past upb's recursion limit: the runtime refuses to parse it.
    variant(
        "Struct nested 100 levels in extra_body",
        {CODE.INVALID_ARGUMENT},
        lambda r: r.extra_body.update({"vendor": _nested(100)}),
    )
    # 1 MiB of prompt is more context than any gpt-4o endpoint has: routing refuses it.
    variant(
        "a 1 MiB message text",
        {CODE.NOT_FOUND},
        lambda r: setattr(r.messages[0], "text", "x" * MIB),
    )
    variant("a 1 MiB model name", {CODE.INVALID_ARGUMENT}, lambda r: setattr(r, "model", "m" * MIB))
    # Above --max-message-bytes (16 MiB): grpc refuses to receive it.
    variant(
        "a 17 MiB message text",
        {CODE.RESOURCE_EXHAUSTED},
        lambda r: setattr(r.messages[0], "text", "x" * (17 * MIB)),
    )
    return cases


@pytest.mark.parametrize("method", METHODS, ids=["Chat", "StreamChat"])
def test_valid_but_hostile_requests_end_in_a_status_within_the_deadline(
    proto_gateway: Gateway,
    proto_channel: grpc.Channel,
    caller: Caller,
    statuses: dict[str, Statuses],
    method: str,
) -> None:
    for name, (chat, codes) in _hostile().items():
        data = chat if method == CHAT else _as_stream_request(chat)
        started = time.monotonic()
        outcome = _check(caller, proto_channel, method, data, statuses["hostile"], timeout=15)
        assert outcome.code in codes, f"{name}: {outcome} (expected one of {codes})"
        assert time.monotonic() - started < 10, f"{name}: {outcome}"
    assert_serves(caller, proto_gateway)
