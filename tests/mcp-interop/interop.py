#!/usr/bin/env python3
"""Interoperability: the official MCP Python SDK (`mcp` on PyPI) against a real toolgate.

Starts `toolgate serve` (the embedded demo) on a free port of 127.0.0.1 with a known
operator key and a second key scoped to `run_*`, then, once for the stateless
2026-07-28 revision and once for 2025-11-25 sessions (`mode="legacy"`), connects over
Streamable HTTP and checks that it can list the tools (with schemas), call each demo
tool, get a tool failure as an `isError` result, receive progress from `sleep`, and
that the scoped key sees only its tools. Exits non-zero on the first failure.

    tests/mcp-interop/run.sh                 # builds toolgate, makes the venv, runs this
    python interop.py --binary target/debug/toolgate
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[2]
KEY = "interop-operator-key-0123456789abcdef"
SCOPED_KEY = "interop-scoped-key"
DEMO_TOOLS = {"echo", "sleep", "fail", "run_database_query", "run_system_audit"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_with_scoped_key(directory: Path) -> Path:
    """The demo config plus a key that may call `run_*` only."""
    text = (ROOT / "crates/toolgate-config/src/demo.toml").read_text()
    digest = hashlib.sha256(SCOPED_KEY.encode()).hexdigest()
    text += f'\n[[keys]]\nname = "scoped"\nhash = "sha256:{digest}"\nscopes = ["run_*"]\n'
    path = directory / "toolgate.toml"
    path.write_text(text)
    return path


def start(binary: Path, config: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, TOOLGATE_API_KEY=KEY, TOOLGATE_LOG="warn")
    proc = subprocess.Popen(
        [str(binary), "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"toolgate exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("toolgate did not become ready within 30 s")


def client(url: str, key: str, mode: str) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    return Client(streamable_http_client(url, http_client=http), mode=mode)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def as_json(result) -> object:
    text = result.content[0].text
    return json.loads(text)


async def exercise(url: str, mode: str) -> None:
    async with client(url, KEY, mode) as c:
        listing = await c.list_tools()
        tools = {t.name: t for t in listing.tools}
        check(DEMO_TOOLS <= tools.keys(), f"{mode}: demo tools missing from {sorted(tools)}")
        query = tools["run_database_query"]
        check(query.input_schema.get("required") == ["query"], f"{mode}: input schema {query.input_schema}")
        check(query.output_schema is not None, f"{mode}: run_database_query has no output schema")
        check(query.annotations.read_only_hint is True, f"{mode}: annotations {query.annotations}")

        echo = await c.call_tool("echo", {"hello": "python"})
        check(not echo.is_error and as_json(echo) == {"hello": "python"}, f"{mode}: echo {echo}")

        rows = await c.call_tool("run_database_query", {"query": "SELECT 1 AS one"})
        check(rows.structured_content == {"columns": ["one"], "rows": [[1]], "truncated": False},
              f"{mode}: query {rows.structured_content}")

        audit = await c.call_tool("run_system_audit", {"target": "localhost"})
        check(audit.structured_content["status"] in ("passed", "warning"), f"{mode}: audit {audit}")

        progress: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)

        slept = await c.call_tool("sleep", {"ms": 350}, progress_callback=on_progress)
        check(slept.structured_content == {"slept_ms": 350}, f"{mode}: sleep {slept}")
        check(len(progress) >= 2, f"{mode}: progress {progress}")

        failed = await c.call_tool("fail", {"message": "on purpose"})
        check(failed.is_error is True, f"{mode}: fail was not an error: {failed}")
        check(as_json(failed)["code"] == "tool_error", f"{mode}: fail {failed}")

    async with client(url, SCOPED_KEY, mode) as c:
        names = sorted(t.name for t in (await c.list_tools()).tools)
        check(names == ["run_database_query", "run_system_audit"], f"{mode}: scoped key sees {names}")
    print(f"  ok  {mode}: listed {len(tools)} tools, called 5, progress {len(progress)}x, scopes filtered")


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "debug" / "toolgate")
    args = p.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = config_with_scoped_key(Path(tmp))
        proc = start(args.binary, config, port)
        try:
            url = f"http://127.0.0.1:{port}/mcp"
            for mode in ("2026-07-28", "legacy"):
                await asyncio.wait_for(exercise(url, mode), timeout=60)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    print("mcp-interop: the official Python SDK lists and calls toolgate's tools over both revisions")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
