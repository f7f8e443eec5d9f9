#!/usr/bin/env python3
"""`toolgate stdio` with the official MCP Python SDK's stdio client: the SDK starts
toolgate as a child process and speaks MCP over its stdin and stdout.

- without a key, the process owner is the caller with every scope;
- with `TOOLGATE_STDIO_KEY`, the key's scopes apply (tools, resources, prompts);
- calls are audited (the record names the caller) and logged to stderr, never to
  stdout, which carries only the protocol (the SDK would fail on anything else);
- `[server] stdio_require_key` makes a start without a key fail with a clear message.

    python stdio.py --binary target/debug/toolgate
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mcp import Client, MCPError
from mcp.client.stdio import StdioServerParameters, stdio_client

from interop import DEMO_TOOLS, SCOPED_KEY, check, config_with_scoped_key

ROOT = Path(__file__).resolve().parents[2]


async def exercise(binary: Path, config: Path, mode: str, errlog) -> None:
    params = StdioServerParameters(command=str(binary), args=["stdio", "--config", str(config)],
                                   env={"TOOLGATE_LOG": "info"})
    async with Client(stdio_client(params, errlog=errlog), mode=mode) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        check(DEMO_TOOLS <= names, f"{mode}: owner sees {sorted(names)}")
        rows = await c.call_tool("run_database_query", {"query": "SELECT 2 AS two"})
        check(rows.structured_content == {"columns": ["two"], "rows": [[2]], "truncated": False}, f"{mode}: {rows}")
        guide = (await c.read_resource("shop://guide")).contents[0]
        check("demo shop" in guide.text, f"{mode}: guide {guide}")
        prompt = await c.get_prompt("analyze_customers", {"country": "DE"})
        check(len(prompt.messages) == 2, f"{mode}: prompt {prompt}")

    scoped = StdioServerParameters(command=str(binary), args=["stdio", "--config", str(config)],
                                   env={"TOOLGATE_STDIO_KEY": SCOPED_KEY})
    async with Client(stdio_client(scoped, errlog=errlog), mode=mode) as c:
        names = sorted(t.name for t in (await c.list_tools()).tools)
        check(names == ["run_database_query", "run_system_audit"], f"{mode}: scoped key sees {names}")
        templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
        check("shop://countries/{country}/top-customers" not in templates, f"{mode}: scoped templates {templates}")
        try:
            await c.call_tool("echo", {"x": 1})
            check(False, f"{mode}: the scoped key called echo")
        except MCPError as e:
            check(e.error.code == -32003 and "no scope" in e.error.message, f"{mode}: echo refused with {e.error}")
    print(f"  ok  {mode}: owner and scoped key over stdio")


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "debug" / "toolgate")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = config_with_scoped_key(directory)
        audit = directory / "audit.db"
        config.write_text(config.read_text().replace("[server]\n", f'[audit]\npath = "{audit}"\ndurability = "sync"\n\n[server]\n', 1))
        errors = directory / "stderr.log"
        with errors.open("w") as errlog:
            for mode in ("2026-07-28", "legacy"):
                try:
                    await asyncio.wait_for(exercise(args.binary, config, mode, errlog), timeout=60)
                except BaseException:
                    print(errors.read_text()[-3000:], file=sys.stderr)
                    raise
        logged = errors.read_text()
        check('"tool call"' in logged or "tool call" in logged, f"no call log line on stderr: {logged[-2000:]}")
        listed = subprocess.run([str(args.binary), "audit", "list", "--db", str(audit)],
                                capture_output=True, text=True, timeout=30)
        check(listed.returncode == 0, f"audit list: {listed.stderr}")
        records = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        callers = {r["key"] for r in records}
        check(len(records) >= 4, f"audit records: {listed.stdout[:2000]}")
        check(any(c.startswith("stdio:") for c in callers) and "scoped" in callers, f"audit callers: {callers}")
        check({r["transport"] for r in records} == {"mcp"}, f"audit transports: {records}")

        strict = directory / "strict.toml"
        strict.write_text(config.read_text().replace("[server]\n", "[server]\nstdio_require_key = true\n", 1))
        refused = subprocess.run([str(args.binary), "stdio", "--config", str(strict)], stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=30)
        check(refused.returncode != 0 and "TOOLGATE_STDIO_KEY" in refused.stderr, f"strict start: {refused}")
        check(refused.stdout == "", f"stdout must carry only MCP: {refused.stdout!r}")
    print("mcp-interop: the Python SDK's stdio client drives `toolgate stdio`, scoped and audited")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
