"""The suite-wide log guard finds what it is meant to find."""

from __future__ import annotations

from pathlib import Path

from leakscan import leaked_canaries


def test_the_leak_scan_finds_a_planted_canary_and_skips_emulator_logs(tmp_path: Path) -> None:
    (tmp_path / "gateway.log").write_bytes(b"ok\nkey sk-or-v1-canary-00ff in a line\n")
    (tmp_path / "emulator.log").write_bytes(b"canary-prompt-abc\n")
    assert leaked_canaries(tmp_path) == [f"{tmp_path / 'gateway.log'}:2: sk-or-v1-canary-00ff"]


def test_the_leak_scan_finds_prompts_and_tokens(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"canary-prompt-12ab\ncanary-token-xyz9\nclean\n")
    assert len(leaked_canaries(tmp_path)) == 2
