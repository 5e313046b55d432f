"""The ``routerpc`` console script: start-up failures, the built-in emulator, ``routerpc chat``."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest
from gateway_e2e import (
    ROUTERPC,
    Emulator,
    Gateway,
    clean_env,
    launch_gateway,
    seed_request,
    stop_process,
)

from routerpc import RouterClient

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_S = 30


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROUTERPC, *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        (("--port", "70000"), {}, "port"),
        ((), {"ROUTERPC_UPSTREAM_URL": "not-a-url"}, "upstream_url"),
        (("--upstream-url", "not-a-url"), {}, "upstream_url"),
        (("--grace-period", "-1"), {}, "grace_period"),
        (("--log-level", "loud"), {}, "log_level"),
        ((), {"ROUTERPC_PORT": "fifty"}, "port"),
        (("--event-loop", "trio"), {}, "event_loop"),
    ],
    ids=["port-70000", "env-url", "flag-url", "negative-grace", "log-level", "env-port", "loop"],
)
def test_serve_with_bad_configuration_exits_nonzero_with_one_line_naming_the_setting(
    args: tuple[str, ...], env: dict[str, str], setting: str
) -> None:
    done = _run("serve", "--host", "127.0.0.1", *args, env=clean_env(OPENROUTER_API_KEY="x", **env))

    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("routerpc: invalid configuration")
    assert setting in lines[0]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_serve_on_a_port_in_use_exits_nonzero_with_a_message_and_no_traceback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = _run("serve", "--host", "127.0.0.1", "--port", str(port))

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"routerpc: cannot serve on 127.0.0.1:{port}"), done.stderr


@pytest.fixture(scope="module")
def keyless_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """``routerpc serve`` with no OPENROUTER_API_KEY in its environment at all."""
    log = tmp_path_factory.mktemp("keyless") / "gateway-keyless.log"
    gateway = launch_gateway(log)  # clean_env() removes OPENROUTER_API_KEY
    try:
        yield gateway
    finally:
        stop_process(gateway.process)


def test_serve_without_a_key_says_in_its_first_log_line_that_it_uses_the_emulator(
    keyless_gateway: Gateway,
) -> None:
    first = keyless_gateway.log_text().splitlines()[0]

    assert "built-in OpenRouter emulator" in first
    assert "no OPENROUTER_API_KEY" in first


@pytest.mark.parametrize("no_stream", [False, True], ids=["stream", "no-stream"])
def test_chat_command_prints_the_echo_and_who_served_it(
    keyless_gateway: Gateway, no_stream: bool
) -> None:
    extra = ("--no-stream",) if no_stream else ()
    done = _run(
        "chat",
        "Hello",
        "--target",
        keyless_gateway.target,
        "--quantization",
        "fp8",
        "--quantization",
        "fp16",
        *extra,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Echo: Hello"
    assert lines[-1].startswith("-- served by ")
    assert "tokens:" in lines[-1]
    assert "cost $" in lines[-1]


def test_chat_command_with_an_unroutable_quantization_exits_nonzero_with_one_line(
    keyless_gateway: Gateway,
) -> None:
    done = _run("chat", "Hello", "--target", keyless_gateway.target, "--quantization", "int4")

    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("routerpc: NOT_FOUND: ")
    assert "int4" in lines[0]
    assert done.stdout.strip() == ""


def test_chat_command_with_an_unknown_quantization_fails_locally_with_one_line(
    keyless_gateway: Gateway,
) -> None:
    done = _run("chat", "Hello", "--target", keyless_gateway.target, "--quantization", "fp7")

    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("routerpc: ")
    assert "fp7" in lines[0]


def test_keyless_gateway_log_never_mentions_an_authorization_header(
    keyless_gateway: Gateway,
) -> None:
    log = keyless_gateway.log_text()
    assert "Bearer" not in log
    assert "Traceback" not in log


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_serve_runs_on_the_chosen_event_loop_and_relays_unary_and_streamed_calls(
    start_gateway: Callable[..., Gateway], emulator: Emulator, canary_key: str, loop: str
) -> None:
    """uvloop is the default; ``--event-loop asyncio`` keeps the standard loop. Either serves."""
    args = ("--workers", "1") + (() if loop == "uvloop" else ("--event-loop", "asyncio"))
    gateway = start_gateway(f"loop-{loop}", *args, upstream_url=emulator.base_url, key=canary_key)

    with RouterClient(gateway.target, timeout=10) as client:
        assert client.chat(seed_request()).text == "Echo: Hello!"
        streamed = "".join(chunk.text for chunk in client.stream_chat(seed_request()))
    assert streamed == "Echo: Hello!"
    assert f"routerpc listening on {gateway.target} ({loop} loop)" in gateway.log_text()
