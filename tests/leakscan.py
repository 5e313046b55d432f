"""The canary scan behind the suite-wide log guard in conftest.py."""

from __future__ import annotations

import re
from pathlib import Path

CANARIES = re.compile(rb"sk-or-v1-canary-[0-9a-f]+|canary-token-[0-9a-z]+|canary-prompt-[0-9a-f]+")


def leaked_canaries(root: Path) -> list[str]:
    """``file:line: canary`` for every canary found in a non-emulator log under ``root``."""
    found = []
    for path in sorted(root.rglob("*.log")):
        if "emulator" in path.name:
            continue
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            for match in CANARIES.finditer(line):
                found.append(f"{path}:{number}: {match.group().decode()}")
    return found
