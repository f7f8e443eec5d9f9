#!/usr/bin/env python3
"""An MCP server built on the official Python SDK (`mcp`, pinned in requirements.txt),
run over stdio by toolgate's federation test (crates/toolgate/tests/api/federation.rs).

Tools: `add` (structured output), `report` (progress), `grow` (adds a tool and sends
`notifications/tools/list_changed`), `trace` (the `traceparent` its `_meta` carried),
`crash` (the process exits, so toolgate must restart it). It also writes a line to stderr at start, which toolgate logs.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("federated-python")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def report(steps: int, ctx: Context) -> str:
    """Report progress `steps` times, then finish."""
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps, f"step {i}")
        await asyncio.sleep(0.05)
    return f"done after {steps} steps"


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool `grown` and tell the client the list changed."""

    def grown() -> str:
        """A tool that appeared at run time."""
        return "grown"

    server.add_tool(grown, name="grown")
    # 2026-07-28: to `subscriptions/listen` streams; 2025-11-25: over the session.
    await ctx.notify_tools_changed()
    await ctx.session.send_tool_list_changed()
    return "grown added"


@server.tool()
def trace(ctx: Context) -> str:
    """The `traceparent` this call's `_meta` carried."""
    meta = ctx.request_context.meta or {}
    return str(meta.get("traceparent", ""))


@server.tool()
def crash() -> str:
    """End the process at once."""
    sys.stderr.write("crashing on request\n")
    sys.stderr.flush()
    os._exit(3)


if __name__ == "__main__":
    sys.stderr.write(f"federated-python starting, pid {os.getpid()}\n")
    sys.stderr.flush()
    server.run("stdio")
