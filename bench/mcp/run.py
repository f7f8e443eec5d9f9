#!/usr/bin/env python3
"""Benchmark MCP `tools/call` of `echo` against a real toolgate, with every feature on
(keys, scopes, rate-limit check, bulkhead, deadline, JSON logs).

Bounded (each phase runs --seconds), 127.0.0.1 only. Needs `wrk` (Debian package:
`apt-get install wrk`); the load script is bench/mcp/call.lua. Python 3 standard
library only.

    python3 bench/mcp/run.py                    # builds the release binary first
    python3 bench/mcp/run.py --no-build --seconds 5 --log info,rmcp=warn

Phases, each against a fresh server so that one phase's state cannot skew the next:

0. bare:     the baseline: a bare rmcp server in axum with one echo tool and nothing
             else (bench/mcp/bare, its own cargo workspace), same load as phase 1.
1. mcp:      64 connections, 2026-07-28 stateless requests.
2. rest:     64 connections, POST /api/v1/tools/echo (the same tool over REST).
3. session:  64 connections sharing ONE 2025-11-25 session (every request carries
             the same Mcp-Session-Id); every failure is counted (must be 0).
4. latency:  1 connection, bare rmcp, MCP then REST, for unloaded latency.

For each phase: calls/s, failures, latency percentiles (from wrk), and server CPU per
call: (utime + stime of the server process, from /proc/PID/stat) / calls.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KEY = "bench-operator-key-0123456789abcdef"
HOST = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")


def args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=10, help="duration of each loaded phase")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--log", default="info", help="TOOLGATE_LOG for the server (default: info, as shipped)")
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "toolgate")
    p.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    p.add_argument("--bare", type=Path, default=HERE / "bare" / "target" / "release" / "bare-rmcp",
                   help="the bare rmcp baseline (bench/mcp/bare), measured when present")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--phases", default="bare,mcp,rest,session,bare_1conn,mcp_1conn,rest_1conn",
                   help="comma-separated subset of the phases to run")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    # Fields after the command name (which is in parentheses and may hold spaces).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / TICKS


class Server:
    """A server process on a free port of 127.0.0.1, its logs in a file: `toolgate
    serve` (embedded demo), or the bare rmcp baseline when `bare` is set."""

    def __init__(self, binary: Path, log: str, bare: bool = False) -> None:
        self.port = free_port()
        self.log_path = ROOT / "target" / "bench-mcp-server.log"
        self.log_file = open(self.log_path, "w")
        env = dict(os.environ, TOOLGATE_API_KEY=KEY, TOOLGATE_LOG=log)
        cmd = [str(binary), f"{HOST}:{self.port}"] if bare else [
            str(binary), "serve", "--listen", f"{HOST}:{self.port}"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self.log_file)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.ready(bare):
                return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{binary} did not become ready")

    def ready(self, bare: bool) -> bool:
        try:
            if bare:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return True
            with urllib.request.urlopen(self.url("/readyz"), timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log_file.close()


def open_session(server: Server) -> str:
    """initialize + notifications/initialized over raw HTTP; the session id."""
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "X-Tool-API-Key": KEY}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    req = urllib.request.Request(server.url("/mcp"), json.dumps(init).encode(), headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        session = r.headers["Mcp-Session-Id"]
        r.read()
    headers |= {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    req = urllib.request.Request(server.url("/mcp"), json.dumps(note).encode(), headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
    return session


def wrk(server: Server, mode: str, connections: int, threads: int, seconds: int, session: str = "") -> dict:
    env = dict(os.environ, BENCH_MODE=mode, BENCH_KEY=KEY, BENCH_SESSION=session)
    path = "/api/v1/tools/echo" if mode == "rest" else "/mcp"
    before = cpu_seconds(server.proc.pid)
    out = subprocess.run(
        ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "10s", "-s", str(HERE / "call.lua"), server.url(path)],
        env=env, capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    cpu = cpu_seconds(server.proc.pid) - before
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    calls = r["requests"]
    r["calls_per_s"] = round(calls / (r["duration_us"] / 1e6))
    r["cpu_us_per_call"] = round(cpu * 1e6 / calls, 1) if calls else None
    r["server_cpu_s"] = round(cpu, 2)
    return r


def phase(name: str, binary: Path, log: str, run, bare: bool = False) -> dict:
    server = Server(binary, log, bare)
    try:
        result = run(server)
    finally:
        server.stop()
    print(f"{name:<16} {result['calls_per_s']:>8} calls/s  cpu {result['cpu_us_per_call']:>7} us/call  "
          f"p50 {result['p50_us'] / 1000:.2f} ms  p99 {result['p99_us'] / 1000:.2f} ms  "
          f"failed {result['failed']} (+{result['status_errors']} status, {result['timeouts']} timeouts)",
          flush=True)
    return result


def main() -> int:
    a = args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "toolgate"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release"], cwd=HERE / "bare", check=True)
    c, t, s = a.connections, a.threads, a.seconds
    print(f"toolgate {a.binary}, TOOLGATE_LOG={a.log}, {c} connections, {s} s per phase, "
          f"{os.cpu_count()} CPUs (shared by server and wrk)")
    plan = {
        "bare": ("bare rmcp", lambda sv: wrk(sv, "mcp", c, t, s)),
        "bare_1conn": ("bare rmcp, 1 conn", lambda sv: wrk(sv, "mcp", 1, 1, max(3, s // 2))),
        "mcp": ("mcp 2026-07-28", lambda sv: wrk(sv, "mcp", c, t, s)),
        "rest": ("rest", lambda sv: wrk(sv, "rest", c, t, s)),
        "session": ("mcp 1 session", lambda sv: wrk(sv, "session", c, t, s, open_session(sv))),
        "mcp_1conn": ("mcp, 1 conn", lambda sv: wrk(sv, "mcp", 1, 1, max(3, s // 2))),
        "rest_1conn": ("rest, 1 conn", lambda sv: wrk(sv, "rest", 1, 1, max(3, s // 2))),
    }
    results = {}
    for key in a.phases.split(","):
        name, run = plan[key]
        bare = key.startswith("bare")
        if bare and not a.bare.exists():
            print(f"{name:<16} skipped: build it with `cargo build --release` in bench/mcp/bare")
            continue
        results[key] = phase(name, a.bare if bare else a.binary, a.log, run, bare)
    lost = 0
    if "session" in results:
        shared = results["session"]
        lost = shared["failed"] + shared["status_errors"] + shared["timeouts"] + shared["read_errors"]
        print(f"shared session: {shared['requests']} requests, {lost} failed")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
