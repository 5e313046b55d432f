"""``routerpc serve`` ends a failed start with one line that says why."""

from __future__ import annotations

import pytest

from routerpc_gateway import cli, logs, workers


def test_workers_that_never_became_ready_are_named_as_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The workers' start-up raises OSError with a message and no strerror; the line once ended
    # in ": None".
    def never_ready(settings: object, count: int) -> int:
        raise OSError(f"only 0 of {count} workers became ready")

    monkeypatch.setattr(workers, "run_workers", never_ready)
    monkeypatch.setattr(logs, "configure_logging", lambda level, fmt: None)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test-none")

    code = cli.main(["serve", "--host", "127.0.0.1", "--port", "50999", "--workers", "2"])

    assert code == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == "routerpc: cannot serve on 127.0.0.1:50999: only 0 of 2 workers became ready"
