"""Every case of clients/conformance.json, against a real toolgate, sync and async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import CONFORMANCE
from harness import run_case_async, run_case_sync

CASES: list[dict[str, Any]] = CONFORMANCE["cases"]
IDS = [c["name"] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sync_client(server: str, case: dict[str, Any]) -> None:
    run_case_sync(server, case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_async_client(server: str, case: dict[str, Any]) -> None:
    asyncio.run(run_case_async(server, case))
