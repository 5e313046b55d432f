"""The suite-wide log guard finds what it is meant to find."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from leakscan import leaked_canaries


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Outside pytest's temporary tree, which the suite-wide guard itself scans."""
    with tempfile.TemporaryDirectory(prefix="leakscan-") as folder:
        yield Path(folder)


def test_the_leak_scan_finds_a_planted_canary_and_skips_emulator_logs(scratch: Path) -> None:
    (scratch / "gateway.log").write_bytes(b"ok\nkey sk-or-v1-canary-00ff in a line\n")
    (scratch / "emulator.log").write_bytes(b"canary-prompt-abc\n")
    assert leaked_canaries(scratch) == [f"{scratch / 'gateway.log'}:2: sk-or-v1-canary-00ff"]


def test_the_leak_scan_finds_prompts_and_tokens(scratch: Path) -> None:
    (scratch / "a.log").write_bytes(b"canary-prompt-12ab\ncanary-token-xyz9\nclean\n")
    assert len(leaked_canaries(scratch)) == 2
