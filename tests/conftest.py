"""Suite-wide guard: no gateway log written during the whole run may hold a secret or a prompt.

Tests give the gateway canary secrets (``sk-or-v1-canary-...`` keys, ``canary-token-...`` caller
tokens) and canary prompts (``canary-prompt-...``). When the session ends, every log file the run
wrote under pytest's temporary directory (emulator logs excepted: the emulator is a test double)
is scanned; any hit fails the run with the file and line named.
"""

from __future__ import annotations

import pytest
from leakscan import leaked_canaries


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        root = factory.getbasetemp()
    except (OSError, ValueError):
        return
    leaks = leaked_canaries(root)
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("SECRET OR PROMPT IN A GATEWAY LOG:", red=True)
            for leak in leaks[:50]:
                reporter.write_line(f"  {leak}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
