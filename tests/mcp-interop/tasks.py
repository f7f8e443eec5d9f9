#!/usr/bin/env python3
"""MCP tasks on 2026-07-28 (the `io.modelcontextprotocol/tasks` extension) with the
official MCP Python SDK against a real toolgate.

The SDK has no tasks client of its own; it has the extension mechanism this script
uses to implement one (a `ResultClaim` for `resultType: "task"` that polls
`tasks/get`). Checked:

- a call of a tool whose `task_support` is `required` answers a task, and the
  claim resolves it to the call's result by polling `tasks/get`;
- the task can be fetched from a second, fresh client (the first one gone), and is
  the same job REST shows at `/api/v1/jobs/{id}`;
- `tasks/cancel` stops a 10 s task (`cancelled`, with the work stopped);
- a gated tool's task waits (`working`, "awaiting approval ...") until an approver
  approves over REST, then completes with the approved arguments' result; a denied
  one and one nobody decided in time fail with the denial;
- a client without the extension gets a plain result, never a task;
- another key's `tasks/get` of the task is refused.

    python tasks.py --binary target/debug/toolgate
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Literal

import anyio
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult, Request, RequestParams, Result

from interop import KEY, check, free_port, start, stop

ROOT = Path(__file__).resolve().parents[2]
APPROVER = "tasks-approver-key-0123456789abcdef"
OTHER = "tasks-other-key-0123456789abcdef01"


class TaskHandle(Result):
    result_type: Literal["task"]
    task_id: str
    status: str
    status_message: str | None = None
    poll_interval_ms: int | None = None


class TaskIdParams(RequestParams):
    task_id: str


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"


class CancelTask(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


class TaskState(Result):
    task_id: str
    status: str
    status_message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Empty(Result):
    pass


SEEN: list[dict[str, Any]] = []


async def get_task(session, task_id: str) -> TaskState:
    return await session.send_request(GetTask(params=TaskIdParams(task_id=task_id)), TaskState)


async def resolve(handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
    SEEN.append({"task_id": handle.task_id, "status": handle.status, "message": handle.status_message})
    while True:
        state = await get_task(ctx.session, handle.task_id)
        if state.status == "completed":
            return CallToolResult.model_validate(state.result, by_name=False)
        if state.status in ("failed", "cancelled"):
            raise RuntimeError(f"task {state.status}: {state.error}")
        await anyio.sleep((handle.poll_interval_ms or 500) / 1000)


class Tasks(ClientExtension):
    identifier = "io.modelcontextprotocol/tasks"

    def claims(self):
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=resolve)]


def client(url: str, key: str, tasks: bool) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    return Client(streamable_http_client(url, http_client=http), mode="2026-07-28", extensions=[Tasks()] if tasks else [])


def config(directory: Path) -> Path:
    text = (ROOT / "crates/toolgate-config/src/demo.toml").read_text()
    for name, key, scopes in (("approver", APPROVER, '["approve_refunds"]'), ("other", OTHER, '["*"]')):
        digest = hashlib.sha256(key.encode()).hexdigest()
        text += f'\n[[keys]]\nname = "{name}"\nhash = "sha256:{digest}"\nscopes = {scopes}\n'
    text += f"""
[[tools]]
name = "report"
kind = "builtin"
builtin = "sleep"
task_support = "required"
timeout_ms = 610000

[[tools]]
name = "refund"
kind = "builtin"
builtin = "echo"
approval = {{ approvers = ["approve_refunds"], timeout_ms = 60000 }}

[[tools]]
name = "deploy"
kind = "builtin"
builtin = "echo"
approval = {{ approvers = ["approve_refunds"], timeout_ms = 1000 }}

[jobs]
path = "{directory / 'jobs.db'}"
poll_ms = 50
"""
    path = directory / "tasks.toml"
    path.write_text(text)
    return path


def rest(port: int, method: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("X-Tool-API-Key", key)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def exercise(port: int) -> None:
    url = f"http://127.0.0.1:{port}/mcp"
    # A required-task tool, resolved by the claim.
    async with client(url, KEY, True) as c:
        result = await c.call_tool("report", {"ms": 1200})
        check(json.loads(result.content[0].text) == {"slept_ms": 1200}, f"task result: {result}")
        check(SEEN and SEEN[-1]["status"] == "working", f"the call answered a task: {SEEN}")
        first_id = SEEN[-1]["task_id"]
        # Start one and leave: the handle only.
        handle = await c.session.call_tool("report", {"ms": 1500}, allow_claimed=True)
        check(isinstance(handle, TaskHandle), f"a task handle: {handle!r}")
        later_id = handle.task_id
    # A fresh client fetches it after the first is gone.
    async with client(url, KEY, True) as c:
        for _ in range(100):
            state = await get_task(c.session, later_id)
            if state.status != "working":
                break
            await anyio.sleep(0.1)
        check(state.status == "completed", f"fetched later: {state}")
        check(json.loads(state.result["content"][0]["text"]) == {"slept_ms": 1500}, f"{state}")
        status, job = rest(port, "GET", f"/api/v1/jobs/{later_id}", KEY)
        check(status == 200 and job["state"] == "succeeded", f"the task is the job: {job}")
        # Cancel a long one.
        long = await c.session.call_tool("report", {"ms": 10000}, allow_claimed=True)
        await anyio.sleep(0.3)
        await c.session.send_request(CancelTask(params=TaskIdParams(task_id=long.task_id)), Empty)
        state = await get_task(c.session, long.task_id)
        check(state.status == "cancelled", f"cancelled: {state}")
        # An approval gate.
        gated = await c.session.call_tool("refund", {"order": 9}, allow_claimed=True)
        check("awaiting approval" in (gated.status_message or ""), f"awaiting approval: {gated}")
        state = await get_task(c.session, gated.task_id)
        check(state.status == "working", f"still waiting: {state}")
        status, body = rest(port, "POST", f"/api/v1/approvals/{gated.task_id}/approve", APPROVER, {"comment": "ok"})
        check(status == 200, f"approved: {status} {body}")
        for _ in range(100):
            state = await get_task(c.session, gated.task_id)
            if state.status != "working":
                break
            await anyio.sleep(0.1)
        check(state.status == "completed", f"approved task: {state}")
        check(json.loads(state.result["content"][0]["text"]) == {"order": 9}, f"{state}")
        # Denied, and timed out: the task fails with the denial.
        denied = await c.session.call_tool("refund", {"order": 10}, allow_claimed=True)
        status, body = rest(port, "POST", f"/api/v1/approvals/{denied.task_id}/deny", APPROVER, {"comment": "no"})
        check(status == 200, f"denied: {status} {body}")
        state = await get_task(c.session, denied.task_id)
        check(state.status == "failed" and state.error and "denied" in json.dumps(state.error), f"denied task: {state}")
        timed = await c.session.call_tool("deploy", {"env": "prod"}, allow_claimed=True)
        for _ in range(100):
            state = await get_task(c.session, timed.task_id)
            if state.status != "working":
                break
            await anyio.sleep(0.1)
        check(state.status == "failed" and "timed out" in json.dumps(state.error), f"timed-out task: {state}")
    # Without the extension: a plain result.
    async with client(url, KEY, False) as c:
        result = await c.call_tool("report", {"ms": 10})
        check(json.loads(result.content[0].text) == {"slept_ms": 10}, f"plain call: {result}")
    # Another key cannot see the task.
    async with client(url, OTHER, True) as c:
        try:
            await get_task(c.session, first_id)
            raise AssertionError("another key read the task")
        except AssertionError:
            raise
        except Exception as e:  # the SDK raises its McpError
            check("no task" in str(e), f"refused: {e}")


async def main() -> int:
    warnings.simplefilter("ignore")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "debug" / "toolgate")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start(args.binary, config(Path(tmp)), port)
        try:
            await asyncio.wait_for(exercise(port), timeout=90)
        finally:
            stop(proc)
    print("mcp-interop: the Python SDK runs tools as 2026-07-28 tasks: results, reconnects, cancel, approvals")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
