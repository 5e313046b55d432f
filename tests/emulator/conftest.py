"""Fixtures for the emulator tests: an emulator on a free 127.0.0.1 port and an httpx client.

The emulator package is not installed into the venv, so its source directory is put on
``sys.path`` here (and this directory too, for ``emulator_test_support``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

_HERE = Path(__file__).resolve().parent
EMULATOR_SRC = _HERE.parents[1] / "emulator"
for _path in (EMULATOR_SRC, _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from routerpc_emulator import RunningEmulator, start_emulator  # noqa: E402


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    emu = await start_emulator(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
async def client(emulator: RunningEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emulator.base_url, timeout=10.0) as http:
        yield http
