"""The emulator speaks plain HTTP/JSON: it must not depend on the gateway, gRPC or protobuf."""

from __future__ import annotations

import ast
from pathlib import Path

import routerpc_emulator

FORBIDDEN_ROOTS = {"routerpc", "routerpc_gateway", "grpc", "grpc_status", "grpc_health"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_emulator_package_imports_no_gateway_grpc_or_protobuf() -> None:
    package_dir = Path(routerpc_emulator.__file__).parent
    sources = sorted(package_dir.glob("*.py"))
    assert len(sources) >= 10
    for source in sources:
        for name in imported_modules(source):
            root = name.split(".")[0]
            assert root not in FORBIDDEN_ROOTS, f"{source.name} imports {name}"
            assert not name.startswith("google.protobuf"), f"{source.name} imports {name}"


def test_public_api_is_exactly_the_documented_names() -> None:
    assert sorted(routerpc_emulator.__all__) == [
        "RunningEmulator",
        "create_app",
        "run",
        "start_emulator",
    ]
