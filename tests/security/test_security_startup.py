"""A bad callers file stops ``routerpc serve`` at start: a non-zero exit and exactly one line on
stderr, starting "routerpc: invalid configuration", with no traceback.

The cases run as parallel processes (each ``routerpc`` start costs about a second of CPU), as a
single process and, for two of them, with ``--workers 2``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest
from gateway_e2e import ROUTERPC, clean_env
from security_support import WAIT_S

pytestmark = pytest.mark.e2e

GOOD_DIGEST = "0" * 64

# name, file name (None: the file does not exist), content, a phrase the line must contain.
# More malformed files are covered without processes in test_policy_unit.py.
CASES: list[tuple[str, str | None, str, str]] = [
    ("unknown-field", "callers.yaml", "callers:\n  a:\n    tokens: [secret]\n", "callers.a.tokens"),
    ("bad-digest", "callers.yaml", "callers:\n  a:\n    token_sha256: [abc123]\n", "token_sha256"),
    ("invalid-yaml", "callers.yaml", "callers:\n  a: [\n", "not valid yaml"),
    (
        "unknown-field-toml",
        "callers.toml",
        f'[callers.a]\ntoken = ["{GOOD_DIGEST}"]\n',
        "callers.a.token",
    ),
    ("missing-file", None, "", "no such file"),
]
WITH_WORKERS = ("bad-digest", "invalid-yaml")
"""Also run with ``--workers 2``, where the master reads the file before starting workers."""

RUNS = [(c[0], c[3], 1) for c in CASES] + [(c[0], c[3], 2) for c in CASES if c[0] in WITH_WORKERS]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Run]:
    folder = tmp_path_factory.mktemp("bad-callers")
    processes = {}
    for name, file_name, content, _ in CASES:
        path = folder / name / (file_name or "absent.yaml")
        path.parent.mkdir()
        if file_name is not None:
            path.write_text(content)
        for workers in (1, 2) if name in WITH_WORKERS else (1,):
            processes[name, workers] = subprocess.Popen(
                [
                    ROUTERPC,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--workers",
                    str(workers),
                    "--callers-file",
                    str(path),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=clean_env(OPENROUTER_API_KEY="sk-or-v1-canary-0123456789abcdef"),
            )
    results = {}
    try:
        for key, process in processes.items():
            out, err = process.communicate(timeout=WAIT_S * 2)
            results[key] = Run(
                process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
            )
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
    return results


@pytest.mark.parametrize(
    ("name", "phrase", "workers"), RUNS, ids=[f"{n}-{w}-workers" for n, _, w in RUNS]
)
def test_a_bad_callers_file_stops_serve_with_one_line(
    runs: dict[tuple[str, int], Run], name: str, phrase: str, workers: int
) -> None:
    run = runs[name, workers]
    assert run.code != 0
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("routerpc: invalid configuration"), lines[0]
    assert phrase in lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    assert "listening" not in run.stderr + run.stdout, "nothing was served"
    if name == "unknown-field":
        assert "secret" not in lines[0], "no value from the file is echoed"
