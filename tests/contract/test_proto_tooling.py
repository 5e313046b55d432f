"""Repository gates on the contract and the code around it.

buf lint, buf format, breaking-change detection against ``main``, codegen drift (and proof that
the drift check can fail), ruff and strict mypy. Each runs the real tool from the venv.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GENERATED = ROOT / "client" / "routerpc" / "_gen"

# Hand-written code ruff must keep clean.
RUFF_PATHS = ("client", "service", "emulator", "scripts", "tests", "bench")
# Strict mypy (configured in pyproject.toml) over every hand-written package, the scripts and
# the benchmark.
MYPY_PATHS = (
    "client/routerpc",
    "service/routerpc_gateway",
    "emulator/routerpc_emulator",
    "scripts",
    "bench",
)


def _tool(name: str) -> str:
    """A tool installed next to this interpreter, else on PATH."""
    beside = BIN / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed next to {sys.executable} nor on PATH")
    return found


def _env() -> dict[str, str]:
    """PATH with the venv's bin first: protoc finds its mypy plugins there, as in scripts/test."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300, check=False
    )


# buf -----------------------------------------------------------------------------------------


def test_buf_lint_passes() -> None:
    result = _run(_tool("buf"), "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_format_would_change_nothing_in_our_protos() -> None:
    result = _run(_tool("buf"), "format", "-d", "--path", "proto/routerpc")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def _main_has_protos() -> bool:
    probe = subprocess.run(
        ["git", "cat-file", "-e", "main:proto/routerpc"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_protos_make_no_breaking_change_against_main() -> None:
    # A fresh clone (CI) always has main with the protos; only a repo without it may skip.
    if not _main_has_protos():
        pytest.skip("no commit on branch main contains proto/routerpc to compare against")
    result = _run(_tool("buf"), "breaking", "--against", ".git#branch=main")
    assert result.returncode == 0, result.stdout + result.stderr


# Codegen drift -------------------------------------------------------------------------------


def test_committed_generated_code_matches_a_fresh_generation() -> None:
    result = _run(sys.executable, "scripts/generate.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout


@pytest.fixture(scope="module")
def generate_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("routerpc_generate", ROOT / "scripts/generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh_generation(
    generate_script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("PATH", _env()["PATH"])
    out = tmp_path / "fresh" / "_gen"
    generate_script.generate(out)
    return out


def _committed_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "committed" / "_gen"
    shutil.copytree(GENERATED, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_drift_check_reports_an_edited_generated_file(
    generate_script: ModuleType, fresh_generation: Path, tmp_path: Path
) -> None:
    committed = _committed_copy(tmp_path)
    assert generate_script._differences(committed, fresh_generation) == []

    edited = committed / "routerpc" / "v1" / "provider_pb2.py"
    edited.write_text(edited.read_text() + "\n# hand edit\n")

    assert generate_script._differences(committed, fresh_generation) == [
        "differs: routerpc/v1/provider_pb2.py"
    ]


def test_drift_check_reports_missing_and_extra_generated_files(
    generate_script: ModuleType, fresh_generation: Path, tmp_path: Path
) -> None:
    committed = _committed_copy(tmp_path)
    (committed / "enums.py").unlink()
    (committed / "routerpc" / "v1" / "stale_pb2.py").write_text("")

    assert generate_script._differences(committed, fresh_generation) == [
        "missing from committed tree: enums.py",
        "only in committed tree: routerpc/v1/stale_pb2.py",
    ]


def test_generate_check_exits_nonzero_when_a_proto_changed_without_regenerating(
    tmp_path: Path,
) -> None:
    # The script finds proto/ and client/routerpc/_gen relative to itself, so a copy of that
    # layout is a repository of its own; edit a proto there and leave the generated code alone.
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "proto", repo / "proto")
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    shutil.copytree(GENERATED, repo / "client" / "routerpc" / "_gen")
    assert _run(sys.executable, "scripts/generate.py", "--check", cwd=repo).returncode == 0

    proto = repo / "proto" / "routerpc" / "v1" / "provider.proto"
    text = proto.read_text()
    marker = "  QUANTIZATION_UNKNOWN = 12;\n"
    assert marker in text
    proto.write_text(
        text.replace(marker, marker + "  // 2-bit integer.\n  QUANTIZATION_INT2 = 13;\n")
    )

    result = _run(sys.executable, "scripts/generate.py", "--check", cwd=repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "generated code is stale" in result.stdout
    assert "differs: enums.py" in result.stdout
    assert "differs: routerpc/v1/provider_pb2.py" in result.stdout


# Python gates --------------------------------------------------------------------------------


def test_ruff_check_is_clean() -> None:
    result = _run(_tool("ruff"), "check", *RUFF_PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_would_change_nothing() -> None:
    result = _run(_tool("ruff"), "format", "--check", *RUFF_PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run(sys.executable, "-m", "mypy", *MYPY_PATHS)
    assert result.returncode == 0, result.stdout + result.stderr
