#!/usr/bin/env python3
"""The official MCP Python SDK against the example server built on toolgate's library
(crates/toolgate/examples/conformance): what the library lets a tool do, seen by a
real client.

- every content type a tool can answer (text, image, audio, embedded resource);
- log messages from a tool: over a 2025-11-25 session at the level it set with
  `logging/setLevel`, and on 2026-07-28 at the request's own `logLevel` (and none
  without one);
- progress;
- a tool asking the client: elicitation and sampling over a 2025-11-25 session, and
  the clear error the same tools give on 2026-07-28, which has no requests from
  server to client.

    python example.py --binary target/debug/examples/conformance
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import warnings
from pathlib import Path

from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from interop import KEY, check, free_port, start_server, stop

ROOT = Path(__file__).resolve().parents[2]


async def exercise(url: str, mode: str) -> None:
    logs: list[str] = []
    asked: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))

    async def on_elicit(context, params: types.ElicitRequestParams):
        asked.append(f"elicit:{params.message}")
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async def on_sample(context, params: types.CreateMessageRequestParams):
        asked.append("sample")
        return types.CreateMessageResult(role="assistant", model="test-model",
                                         content=types.TextContent(type="text", text="forty-two"))

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    stateless = mode == "2026-07-28"
    async with Client(streamable_http_client(url, http_client=http), mode=mode,
                      logging_callback=on_log, elicitation_callback=on_elicit, sampling_callback=on_sample,
                      log_level="info" if stateless else None) as c:
        image = (await c.call_tool("test_image_content", {})).content[0]
        check(image.type == "image" and image.mime_type == "image/png"
              and base64.b64decode(image.data).startswith(b"\x89PNG"), f"{mode}: image {image}")
        audio = (await c.call_tool("test_audio_content", {})).content[0]
        check(audio.type == "audio" and base64.b64decode(audio.data)[:4] == b"RIFF", f"{mode}: audio {audio}")
        mixed = (await c.call_tool("test_multiple_content_types", {})).content
        check([b.type for b in mixed] == ["text", "image", "resource"], f"{mode}: mixed {mixed}")
        check(json.loads(mixed[2].resource.text) == {"test": "data", "value": 123}, f"{mode}: embedded {mixed[2]}")

        if not stateless:
            with warnings.catch_warnings():
                # Deprecated by 2026-07-28, and still how 2025-11-25 sets a level.
                warnings.simplefilter("ignore")
                await c.set_logging_level("info")
        done = await c.call_tool("test_tool_with_logging", {})
        check(not done.is_error, f"{mode}: logging tool {done}")
        await asyncio.sleep(0.2)
        tool_logs = [m for m in logs if m.startswith("Tool ")]
        check(tool_logs == ["Tool execution started", "Tool processing data", "Tool execution completed"],
              f"{mode}: tool logs {logs}")

        seen: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(done)

        await c.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
        check(seen == [0, 50, 100], f"{mode}: progress {seen}")

        elicited = await c.call_tool("test_elicitation", {"message": "Who are you?"})
        sampled = await c.call_tool("test_sampling", {"prompt": "What is six times seven?"})
        if stateless:
            for name, result in (("elicitation", elicited), ("sampling", sampled)):
                check(result.is_error is True and "2026-07-28" in result.content[0].text,
                      f"{mode}: {name} should fail clearly: {result}")
            check(asked == [], f"{mode}: the client was asked {asked}")
        else:
            check(not elicited.is_error and "ada@example.com" in elicited.content[0].text, f"{mode}: {elicited}")
            check(not sampled.is_error and sampled.content[0].text == "LLM response: forty-two", f"{mode}: {sampled}")
            check(asked == ["elicit:Who are you?", "sample"], f"{mode}: asked {asked}")
    if stateless:
        # Without a logLevel, a 2026-07-28 request gets no log messages.
        quiet: list[str] = []

        async def on_quiet(params: types.LoggingMessageNotificationParams) -> None:
            quiet.append(str(params.data))

        http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
        async with Client(streamable_http_client(url, http_client=http), mode=mode, logging_callback=on_quiet) as c:
            await c.call_tool("test_tool_with_logging", {})
            await asyncio.sleep(0.2)
        check(quiet == [], f"{mode}: logs without a level: {quiet}")
    print(f"  ok  {mode}: content types, {len(logs)} log messages, progress, client requests")


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "debug" / "examples" / "conformance")
    args = p.parse_args()
    port = free_port()
    proc = start_server([str(args.binary), f"127.0.0.1:{port}"], port)
    try:
        for mode in ("2026-07-28", "legacy"):
            await asyncio.wait_for(exercise(f"http://127.0.0.1:{port}/mcp", mode), timeout=60)
    finally:
        stop(proc)
    print("mcp-interop: the Python SDK gets every content type, logs, progress and client requests from a library tool")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
