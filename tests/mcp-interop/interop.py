#!/usr/bin/env python3
"""Interoperability: the official MCP Python SDK (`mcp` on PyPI) against a real toolgate.

Starts `toolgate serve` (the embedded demo) on a free port of 127.0.0.1 with a known
operator key and a second key scoped to `run_*`, then, once for the stateless
2026-07-28 revision and once for 2025-11-25 sessions (`mode="legacy"`), connects over
Streamable HTTP and checks that it can list the tools (with schemas), call each demo
tool, get a tool failure as an `isError` result, receive progress from `sleep`, and
that the scoped key sees only its tools. Then resources, resource templates, prompts
and completion: listed and read (text, binary, a template read through a SQL tool,
the derived schema and tool docs), filled in, completed from values and from a SQL
tool, absent for keys whose scopes do not cover them, and changed by a reload, which
reaches the client as `resources/updated` and `prompts/list_changed` (over a session
on 2025-11-25, through `subscriptions/listen` on 2026-07-28). Exits non-zero on the
first failure.

    tests/mcp-interop/run.sh                 # builds toolgate, makes the venv, runs this
    python interop.py --binary target/debug/toolgate
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[2]
KEY = "interop-operator-key-0123456789abcdef"
SCOPED_KEY = "interop-scoped-key"
ECHO_KEY = "interop-echo-key"
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415478da63f8cfc000000301010018dd8db00000000049454e44ae426082"
)
DEMO_TOOLS = {"echo", "sleep", "fail", "run_database_query", "run_system_audit"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_with_scoped_key(directory: Path, guide: str = "Version one.", extra_prompt: bool = False) -> Path:
    """The demo config plus a key that may call `run_*` only, a key for `echo`
    only, a binary resource, and (for the reload) a guide text and an extra prompt."""
    text = (ROOT / "crates/toolgate-config/src/demo.toml").read_text()
    for name, key, scopes in (("scoped", SCOPED_KEY, '["run_*"]'), ("echo-only", ECHO_KEY, '["echo"]')):
        digest = hashlib.sha256(key.encode()).hexdigest()
        text += f'\n[[keys]]\nname = "{name}"\nhash = "sha256:{digest}"\nscopes = {scopes}\n'
    (directory / "pixel.png").write_bytes(PIXEL)
    text += f"""
[[resources]]
name = "logo"
uri = "shop://logo.png"
file = "pixel.png"
scope = "run_database_query"
icons = [{{ src = "https://example.com/logo.svg", mime_type = "image/svg+xml", sizes = ["any"], theme = "dark" }}]

[[tools]]
name = "echo_titled"
kind = "builtin"
builtin = "echo"
title = "Echo, with a title"
icons = [{{ src = "data:image/png;base64,{base64.b64encode(PIXEL).decode()}", mime_type = "image/png", sizes = ["1x1"] }}]

[[resources]]
name = "changelog"
uri = "shop://changelog"
text = "{guide}"
scope = "run_database_query"
"""
    if extra_prompt:
        text += """
[[prompts]]
name = "added_by_reload"
description = "Appears after a reload."
scope = "run_database_query"
[[prompts.messages]]
text = "New."
"""
    path = directory / "toolgate.toml"
    path.write_text(text)
    return path


def start(binary: Path, config: Path, port: int) -> subprocess.Popen:
    return start_server([str(binary), "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"], port)


def start_server(command: list[str], port: int) -> subprocess.Popen:
    """Run `command` (a server on `port`) until its `/readyz` answers 200."""
    env = dict(os.environ, TOOLGATE_API_KEY=KEY, TOOLGATE_LOG="warn")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{command[0]} exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{command[0]} did not become ready within 30 s")


def stop(proc: subprocess.Popen) -> None:
    """End a server started by `start_server`: SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


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


async def exercise_content(url: str, mode: str) -> None:
    from mcp import MCPError
    from mcp.types import PromptReference, ResourceTemplateReference

    # Resource not found: -32002 until 2025-11-25, -32602 from 2026-07-28 (SEP-2164).
    not_found = -32602 if mode == "2026-07-28" else -32002

    async with client(url, KEY, mode) as c:
        listing = await c.list_resources()
        uris = [r.uri for r in listing.resources]
        if mode == "2026-07-28":
            # Listings depend on the key, and are fresh until a reload says otherwise.
            prompts_listing = await c.list_prompts()
            for what, page in (("resources", listing), ("prompts", prompts_listing), ("tools", await c.list_tools())):
                check(page.ttl_ms == 30000 and page.cache_scope == "private",
                      f"{mode}: {what} ttlMs {page.ttl_ms} cacheScope {page.cache_scope}")
        check({"shop://guide", "shop://logo.png", "toolgate://sources/demo/schema"} <= set(uris),
              f"{mode}: resources {uris}")
        check(uris == sorted(uris), f"{mode}: resources not in URI order: {uris}")
        templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
        check({"shop://countries/{country}/top-customers", "toolgate://tools/{name}"} <= templates,
              f"{mode}: templates {templates}")

        listed = {r.uri: r for r in (await c.list_resources()).resources}
        icon = listed["shop://logo.png"].icons[0]
        check(icon.src == "https://example.com/logo.svg" and icon.theme == "dark" and icon.sizes == ["any"],
              f"{mode}: resource icon {icon}")
        titled = next(t for t in (await c.list_tools()).tools if t.name == "echo_titled")
        check(titled.title == "Echo, with a title" and titled.icons[0].mime_type == "image/png",
              f"{mode}: tool title and icons {titled}")
        guide = (await c.read_resource("shop://guide")).contents[0]
        check(guide.mime_type == "text/markdown" and "demo shop" in guide.text, f"{mode}: guide {guide}")
        logo = (await c.read_resource("shop://logo.png")).contents[0]
        check(logo.mime_type == "image/png" and base64.b64decode(logo.blob) == PIXEL, f"{mode}: logo {logo}")
        schema = json.loads((await c.read_resource("toolgate://sources/demo/schema")).contents[0].text)
        tables = {t["name"]: [col["name"] for col in t["columns"]] for t in schema["tables"]}
        check("country" in tables.get("customers", []), f"{mode}: schema {sorted(tables)}")
        top = json.loads((await c.read_resource("shop://countries/DE/top-customers")).contents[0].text)
        check(top["rows"] and all(row[2] == "DE" for row in top["rows"]), f"{mode}: top customers {top}")
        doc = (await c.read_resource("toolgate://tools/top_customers")).contents[0]
        check(doc.mime_type == "text/markdown" and '"country"' in doc.text, f"{mode}: tool doc {doc}")

        prompts = {p.name: p for p in (await c.list_prompts()).prompts}
        check("analyze_customers" in prompts, f"{mode}: prompts {sorted(prompts)}")
        arg = prompts["analyze_customers"].arguments[0]
        check(arg.name == "country" and arg.required, f"{mode}: prompt argument {arg}")
        got = await c.get_prompt("analyze_customers", {"country": "FR"})
        first, second = got.messages[0].content, got.messages[1].content
        check(first.type == "resource" and first.resource.uri == "toolgate://sources/demo/schema",
              f"{mode}: embedded {first}")
        check(second.type == "text" and "from FR" in second.text, f"{mode}: text {second}")
        try:
            await c.get_prompt("analyze_customers", {})
            check(False, f"{mode}: a missing required argument was accepted")
        except MCPError as e:
            check(e.error.code == -32602, f"{mode}: missing argument {e.error}")

        done = await c.complete(PromptReference(type="ref/prompt", name="analyze_customers"),
                                {"name": "country", "value": "D"})
        check(done.completion.values == ["DE"], f"{mode}: prompt completion {done.completion}")
        done = await c.complete(ResourceTemplateReference(type="ref/resource", uri="toolgate://tools/{name}"),
                                {"name": "name", "value": "top"})
        check(done.completion.values == ["top_customers"], f"{mode}: tool-name completion {done.completion}")

    # `run_*` covers the guide, logo, schema and prompt (their scope is
    # run_database_query), not the template of top_customers.
    async with client(url, SCOPED_KEY, mode) as c:
        uris = {r.uri for r in (await c.list_resources()).resources}
        check("shop://guide" in uris and "toolgate://sources/demo/schema" in uris, f"{mode}: scoped sees {uris}")
        templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
        check("shop://countries/{country}/top-customers" not in templates, f"{mode}: scoped templates {templates}")
        try:
            await c.read_resource("shop://countries/DE/top-customers")
            check(False, f"{mode}: scoped key read a template outside its scopes")
        except MCPError as e:
            check(e.error.code == not_found, f"{mode}: out-of-scope read {e.error}")
    # `echo` covers none of them.
    async with client(url, ECHO_KEY, mode) as c:
        check((await c.list_resources()).resources == [], f"{mode}: echo key sees resources")
        check((await c.list_prompts()).prompts == [], f"{mode}: echo key sees prompts")
        for uri in ("toolgate://sources/demo/schema", "shop://guide", "toolgate://tools/top_customers"):
            try:
                await c.read_resource(uri)
                check(False, f"{mode}: echo key read {uri}")
            except MCPError as e:
                check(e.error.code == not_found, f"{mode}: echo key reading {uri}: {e.error}")
    if mode == "2026-07-28":
        # Discovery (`server/discover`, which the SDK's default mode probes) declares
        # what the server has.
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
        async with Client(streamable_http_client(url, http_client=http)) as c:
            caps = c.server_capabilities
            check(c.protocol_version == "2026-07-28", f"discover negotiated {c.protocol_version}")
            check(caps.resources is not None and caps.resources.subscribe and caps.resources.list_changed,
                  f"discover: resources {caps.resources}")
            check(caps.prompts is not None and caps.completions is not None, f"discover: {caps}")
    print(f"  ok  {mode}: resources, templates, prompts and completion, scoped")


async def exercise_reload(url: str, mode: str, directory: Path, proc: subprocess.Popen, round_: int) -> None:
    """Change the changelog and add a prompt, reload, and hear about both."""
    import anyio

    events: list[str] = []
    heard = anyio.Event()

    def note(what: str) -> None:
        events.append(what)
        if "updated:shop://changelog" in events and "prompts" in events:
            heard.set()

    def reload() -> None:
        config_with_scoped_key(directory, guide=f"Version {round_ + 2}.", extra_prompt=round_ % 2 == 0)
        proc.send_signal(signal.SIGHUP)

    if mode == "legacy":
        async def on_message(message) -> None:
            root = getattr(message, "root", message)
            method = getattr(root, "method", "")
            if method == "notifications/resources/updated":
                note(f"updated:{root.params.uri}")
            elif method == "notifications/prompts/list_changed":
                note("prompts")

        http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
        async with Client(streamable_http_client(url, http_client=http), mode="legacy", message_handler=on_message) as c:
            with warnings.catch_warnings():
                # Deprecated by 2026-07-28, and still how 2025-11-25 subscribes.
                warnings.simplefilter("ignore")
                await c.subscribe_resource("shop://changelog")
            reload()
            with anyio.fail_after(30):
                await heard.wait()
            text = (await c.read_resource("shop://changelog")).contents[0].text
            check(text == f"Version {round_ + 2}.", f"{mode}: changelog after reload: {text}")
    else:
        async with client(url, KEY, mode) as c:
            async with c.listen(prompts_list_changed=True, resource_subscriptions=["shop://changelog"]) as sub:
                reload()
                with anyio.fail_after(30):
                    async for event in sub:
                        kind = type(event).__name__
                        if kind == "ResourceUpdated":
                            note(f"updated:{event.uri}")
                        elif kind == "PromptsListChanged":
                            note("prompts")
                        if heard.is_set():
                            break
            text = (await c.read_resource("shop://changelog", cache_mode="bypass")).contents[0].text
            check(text == f"Version {round_ + 2}.", f"{mode}: changelog after reload: {text}")
    print(f"  ok  {mode}: a reload sent {sorted(set(events))}")


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
                await asyncio.wait_for(exercise_content(url, mode), timeout=60)
            for round_, mode in enumerate(("2026-07-28", "legacy")):
                await asyncio.wait_for(exercise_reload(url, mode, Path(tmp), proc, round_), timeout=60)
        finally:
            stop(proc)
    print("mcp-interop: the official Python SDK lists and calls toolgate's tools, resources and prompts over both revisions")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
