#!/usr/bin/env python3
"""toolgate against a FastAPI peer and a bare axum handler, same scenarios, same run.

Run it with `make bench` (bench/compare/run.sh builds the binaries and the peer's
virtual environment first, raises the fd limit and cleans up whatever happens). This
script needs Python 3.11+ (standard library only) and wrk; everything goes to
127.0.0.1, and every load is bounded in time.

Servers:
  toolgate     target/release/toolgate serve --config bench/compare/toolgate.toml
  fastapi_1w   uvicorn (uvloop, httptools) --workers 1, bench/compare/peer/app.py
  fastapi_2w   the same with --workers 2
  bare         bench/mcp/bare: a bare axum batch handler and a bare rmcp /mcp

Steps: start every server (one at a time, timing exec to the first 200 from /readyz);
run each scenario against each server that has it, interleaved (scenario by scenario)
so that drifting background load hits every server alike; read each server's peak
RSS (VmHWM); stop them; then, one server at a time on a fresh process, the 10,000
in-flight scenario. Print one table, write JSON and an SVG chart.

Settings (environment):
  BENCH_DURATION=20         seconds of measured load per scenario
  BENCH_WARMUP=2            seconds of unmeasured load before each scenario (0: none)
  BENCH_THREADS=2           wrk threads
  BENCH_INFLIGHT=10000      connections of the in-flight scenario (0: skip it)
  BENCH_INFLIGHT_SLEEP_MS=3000
  BENCH_STARTS=3            start-up timings per server (the median is reported)
  BENCH_KEEP_LOGS=1         keep the servers' full logs (toolgate's grow by ~100 MB a
                            minute under load); by default only their warn/error lines
  BENCH_SERVERS=toolgate,fastapi_1w,fastapi_2w,bare
  BENCH_SCENARIOS=healthz,batch_echo,batch_sleep,bad_key,single,jwt,sse,mcp,federated,inflight
  BENCH_OUT=target/bench    results.json, results.txt, server logs
  BENCH_SVG=docs/performance.svg
  BENCH_TOOLGATE, BENCH_BARE, BENCH_PEER_PYTHON: the binaries (run.sh sets them)
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import chart  # noqa: E402

HOST = "127.0.0.1"
KEY = "bench-key"
TICKS = os.sysconf("SC_CLK_TCK")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    p = Path(value) if value else default
    return p if p.is_absolute() else ROOT / p


DURATION = env_int("BENCH_DURATION", 20)
WARMUP = env_int("BENCH_WARMUP", 2)
THREADS = env_int("BENCH_THREADS", 2)
INFLIGHT = env_int("BENCH_INFLIGHT", 10_000)
INFLIGHT_SLEEP_MS = env_int("BENCH_INFLIGHT_SLEEP_MS", 3000)
STARTS = max(1, env_int("BENCH_STARTS", 3))
KEEP_LOGS = os.environ.get("BENCH_KEEP_LOGS", "") == "1"
OUT = env_path("BENCH_OUT", ROOT / "target" / "bench")
SVG = env_path("BENCH_SVG", ROOT / "docs" / "performance.svg")
TOOLGATE = env_path("BENCH_TOOLGATE", ROOT / "target" / "release" / "toolgate")
BARE = env_path("BENCH_BARE", ROOT / "target" / "bench-bare" / "release" / "bare-rmcp")
PEER_PYTHON = env_path("BENCH_PEER_PYTHON", OUT / "peer-venv" / "bin" / "python")


# === processes ===========================================================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def children_of() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (uvicorn's master and workers)."""
    kids = children_of()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def status_kib(pids: list[int], field_name: str) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass
class ServerSpec:
    name: str
    label: str
    kind: str  # toolgate | fastapi | bare
    binary: Path | None = None  # toolgate: another build (BENCH_TOOLGATE_BEFORE)
    config: Path | None = None  # ... and its config
    fixed_config: bool = False  # given by BENCH_TOOLGATE_BEFORE_CONFIG: used as it is

    def command(self, port: int) -> list[str]:
        addr = f"{HOST}:{port}"
        if self.kind == "toolgate":
            binary = self.binary or TOOLGATE
            config = self.config or HERE / "toolgate.toml"
            return [str(binary), "serve", "--config", str(config), "--listen", addr]
        if self.kind == "bare":
            return [str(BARE), addr]
        workers = "2" if self.name.endswith("2w") else "1"
        return [str(PEER_PYTHON), "-m", "uvicorn", "app:app", "--app-dir", str(HERE / "peer"),
                "--host", HOST, "--port", str(port), "--workers", workers,
                "--loop", "uvloop", "--http", "httptools"]


SERVERS = {
    "toolgate": ServerSpec("toolgate", "toolgate", "toolgate"),
    "fastapi_1w": ServerSpec("fastapi_1w", "FastAPI 1 worker", "fastapi"),
    "fastapi_2w": ServerSpec("fastapi_2w", "FastAPI 2 workers", "fastapi"),
    "bare": ServerSpec("bare", "bare axum", "bare"),
}
# A before/after comparison in one run: BENCH_TOOLGATE_BEFORE=<binary of the earlier
# build> (and BENCH_TOOLGATE_BEFORE_CONFIG=<its config>, when the current one uses
# settings it does not know) adds the server `toolgate_before`.
if os.environ.get("BENCH_TOOLGATE_BEFORE"):
    SERVERS["toolgate_before"] = ServerSpec(
        "toolgate_before", "toolgate (before)", "toolgate",
        Path(os.environ["BENCH_TOOLGATE_BEFORE"]),
        Path(os.environ["BENCH_TOOLGATE_BEFORE_CONFIG"])
        if os.environ.get("BENCH_TOOLGATE_BEFORE_CONFIG") else None,
        bool(os.environ.get("BENCH_TOOLGATE_BEFORE_CONFIG")))


class Server:
    """One server process (tree) on a free port of 127.0.0.1, its output in a file."""

    def __init__(self, spec: ServerSpec, tag: str, tmp: Path) -> None:
        self.spec = spec
        self.port = free_port()
        self.log_path = OUT / "logs" / f"{spec.name}-{tag}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")
        env = dict(os.environ)
        env["BENCH_AUDIT_DB"] = str(tmp / f"audit-{spec.name}-{tag}.db")
        env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")  # no __pycache__ in the source tree
        env.pop("TOOLGATE_API_KEY", None)  # the configured key only
        if spec.kind == "toolgate" and not otel_endpoint():
            env["OTEL_TRACES_EXPORTER"] = "none"  # tracing on, nothing exported
        self.cmd = spec.command(self.port)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.start_ms = self._wait_ready(t0)
        time.sleep(0.3)  # let uvicorn's second worker come up before its pids are taken
        self.pids = process_tree(self.proc.pid)

    def _wait_ready(self, t0: float) -> float:
        deadline = t0 + 60
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/readyz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return (time.perf_counter() - t0) * 1000
            except OSError:
                pass
            time.sleep(0.001)
        raise RuntimeError(f"{self.spec.name} was not ready within 60 s; see {self.log_path}")

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def refresh_pids(self) -> None:
        self.pids = process_tree(self.proc.pid)

    def stop(self) -> None:
        pids = process_tree(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in pids:  # workers left behind, if any
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


# === load ================================================================================

ECHO2 = '{"calls":[{"tool":"echo","arguments":{"n":1}},{"tool":"echo","arguments":{"n":2}}]}'
SLEEP2 = '{"calls":[{"tool":"sleep","arguments":{"ms":100}},{"tool":"sleep","arguments":{"ms":200}}]}'
ECHO1 = '{"calls":[{"tool":"echo","arguments":{"n":1}}]}'


@dataclass
class Load:
    """What wrk sends and what it expects back."""

    path: str
    method: str = "POST"
    body: str = ""
    key: str | None = KEY
    status: int = 200
    expect: str = ""
    mcp: bool = False  # bench/mcp/call.lua, 2026-07-28 stateless tools/call of `tool`
    note: str = ""
    tool: str = "echo"


@dataclass
class Scenario:
    id: str
    title: str
    conns: int
    loads: dict[str, Load]  # by server kind or name; a server missing here shows "—"
    seconds: int = DURATION
    warmup: int = WARMUP
    timeout_s: int = 10
    ideal: str = ""

    federated: bool = False  # toolgate runs it only with the upstream in its config

    def load_for(self, spec: ServerSpec) -> Load | None:
        if self.federated and spec.kind == "toolgate" and spec.name not in FEDERATED:
            return None
        return self.loads.get(spec.name) or self.loads.get(spec.kind)


# The `federated` scenario: toolgate in front of a local MCP server (a second bare
# rmcp process, `[sources.up] kind = "mcp"` added to toolgate's config) against the
# `bare` server called directly. Toolgate servers given that config, by name.
FEDERATED: set[str] = set()


def start_upstream(tmp: Path) -> "Server | None":
    """Start the federated scenario's upstream and give every toolgate without a
    config of its own a config that federates it."""
    if not BARE.exists():
        print("note: no bare rmcp binary: the federated scenario is skipped")
        return None
    upstream = Server(ServerSpec("upstream", "upstream", "bare"), "upstream", tmp)
    source = (f'\n[sources.up]\nkind = "mcp"\nurl = "{upstream.url("/mcp")}"\nprefix = "fed_"\n'
              'protocol = "2026-07-28"\n')
    for spec in SERVERS.values():
        if spec.kind == "toolgate" and not spec.fixed_config:
            # On top of whatever config it has (the jwt scenario's [auth], if any).
            config = tmp / f"{spec.name}-federated.toml"
            config.write_text((spec.config or HERE / "toolgate.toml").read_text() + source)
            spec.config = config
            FEDERATED.add(spec.name)
    return upstream


# The `jwt` scenario: an access token of the test identity provider (tests/idp, when
# `npm ci` was run there), checked by the same toolgate with an [auth] issuer added to
# its config. The token is fetched once; the JWKS once: no network on the hot path.
BENCH_RESOURCE = "http://toolgate.bench"
JWT: dict[str, object] = {}


def start_idp(tmp: Path) -> None:
    """Start tests/idp, fetch a client-credentials token, write toolgate's config with
    the issuer; on any failure leave JWT empty (the scenario is then skipped, saying so)."""
    idp_dir = ROOT / "tests" / "idp"
    if shutil.which("node") is None or not (idp_dir / "node_modules" / "oidc-provider").exists():
        print("note: no node or no tests/idp/node_modules (cd tests/idp && npm ci): the jwt scenario is skipped")
        return
    conf = tmp / "idp.json"
    conf.write_text(json.dumps({
        "keys": ["RS256"],
        "resources": {BENCH_RESOURCE: {"audience": BENCH_RESOURCE, "scope": "tools:all", "format": "jwt",
                                       "ttl": 86400}},
        "clients": [{"client_id": "bench", "client_secret": "bench-secret",
                     "grant_types": ["client_credentials"], "scope": "tools:all",
                     "token_endpoint_auth_method": "client_secret_post"}],
    }))
    proc = subprocess.Popen(["node", str(idp_dir / "server.mjs"), str(conf)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready = json.loads(proc.stdout.readline() or "{}")
    issuer = ready.get("issuer")
    if not issuer:
        print("note: the test identity provider did not start: the jwt scenario is skipped")
        proc.kill()
        return
    body = f"grant_type=client_credentials&client_id=bench&client_secret=bench-secret&resource={BENCH_RESOURCE}&scope=tools:all"
    host, port = issuer.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/token", body, {"content-type": "application/x-www-form-urlencoded"})
    token = json.loads(conn.getresponse().read()).get("access_token")
    conn.close()
    if not token:
        print("note: no token from the test identity provider: the jwt scenario is skipped")
        proc.kill()
        return
    config = tmp / "toolgate-jwt.toml"
    config.write_text((HERE / "toolgate.toml").read_text() + (
        f'\n[auth]\nresource = "{BENCH_RESOURCE}"\n\n[[auth.issuers]]\nname = "bench"\nissuer = "{issuer}"\n'
        f'\n[auth.issuers.grants]\n"tools:all" = ["*"]\n'))
    JWT.update(proc=proc, token=token, config=config)
    # Both builds of a before/after run take the token (an earlier build without
    # [auth] support would need BENCH_TOOLGATE_BEFORE_CONFIG).
    for name in ("toolgate", "toolgate_before"):
        if name in SERVERS and SERVERS[name].config is None:
            SERVERS[name].config = config


def scenarios() -> list[Scenario]:
    batch = "/api/v1/tools/execute"
    ok = '"success":true'
    inflight_body = '{"calls":[{"tool":"sleep","arguments":{"ms":%d}}]}' % INFLIGHT_SLEEP_MS
    inflight_seconds = max(DURATION, 3 * INFLIGHT_SLEEP_MS // 1000)
    return [
        Scenario("healthz", "GET /healthz", 64, {
            k: Load("/healthz", "GET", key=None, expect='"ok"') for k in ("toolgate", "fastapi", "bare")}),
        Scenario("batch_echo", "batch: echo + echo", 64, {
            k: Load(batch, body=ECHO2, expect=ok) for k in ("toolgate", "fastapi", "bare")}),
        Scenario("batch_sleep", "batch: sleep 100 ms + 200 ms", 256, {
            k: Load(batch, body=SLEEP2, expect=ok) for k in ("toolgate", "fastapi", "bare")},
            ideal="ideal: 1,280 req/s, p50/p99 200 ms"),
        Scenario("bad_key", "bad key, 403 expected", 64, {
            k: Load(batch, body=ECHO2, key="not-the-key", status=403, expect='"forbidden"')
            for k in ("toolgate", "fastapi")}),
        Scenario("single", "single call: echo", 64, {
            "toolgate": Load("/api/v1/tools/echo", body='{"n":1}', expect='"output"',
                             note="POST /api/v1/tools/echo"),
            "fastapi": Load(batch, body=ECHO1, expect=ok, note="a batch of one"),
            "bare": Load(batch, body=ECHO1, expect=ok, note="a batch of one")}),
        *([Scenario("jwt", "single call: echo, JWT access token", 64, {
            "toolgate": Load("/api/v1/tools/echo", body='{"n":1}', key=str(JWT["token"]), expect='"output"',
                             note="POST /api/v1/tools/echo, RS256 token of tests/idp")})] if JWT else []),
        Scenario("sse", "SSE: echo stream", 64, {
            "toolgate": Load("/api/v1/tools/echo/stream", body='{"n":1}', expect="event: done",
                             note="POST /api/v1/tools/echo/stream, whole stream read")}),
        Scenario("mcp", "MCP tools/call: echo", 64, {
            "toolgate": Load("/mcp", mcp=True, note="2026-07-28 stateless"),
            "bare": Load("/mcp", mcp=True, note="bare rmcp, no keys or logs")}),
        Scenario("federated", "MCP tools/call: echo of a local MCP server", 64, {
            "toolgate": Load("/mcp", mcp=True, tool="fed_echo",
                             note="through toolgate: [sources.up] kind = \"mcp\", a bare rmcp upstream"),
            "bare": Load("/mcp", mcp=True, note="the same server called directly")},
            federated=True),
        Scenario("inflight", f"{INFLIGHT:,} in flight: sleep {INFLIGHT_SLEEP_MS / 1000:g} s", INFLIGHT, {
            "toolgate": Load("/api/v1/tools/sleep", body='{"ms":%d}' % INFLIGHT_SLEEP_MS, expect='"slept_ms"',
                             note="POST /api/v1/tools/sleep"),
            "fastapi": Load(batch, body=inflight_body, expect=ok, note="a batch of one"),
            "bare": Load(batch, body=inflight_body, expect=ok, note="a batch of one")},
            seconds=inflight_seconds, warmup=0, timeout_s=60,
            ideal=f"ideal: {INFLIGHT * 1000 // max(INFLIGHT_SLEEP_MS, 1):,} req/s, "
                  f"p50 {INFLIGHT_SLEEP_MS} ms"),
    ]


def wrk(server: Server, sc: Scenario, load: Load, seconds: int) -> dict:
    conns = sc.conns
    env = dict(os.environ)
    if load.mcp:
        env |= {"BENCH_MODE": "mcp", "BENCH_KEY": KEY, "BENCH_TOOL": load.tool}
        script = ROOT / "bench" / "mcp" / "call.lua"
    else:
        env |= {"BENCH_METHOD": load.method, "BENCH_BODY": load.body, "BENCH_KEY": load.key or "",
                "BENCH_EXPECT_STATUS": str(load.status), "BENCH_EXPECT_BODY": load.expect}
        script = HERE / "request.lua"
    cmd = ["wrk", "-t", str(min(THREADS, conns)), "-c", str(conns), "-d", f"{seconds}s",
           "--timeout", f"{sc.timeout_s}s", "-s", str(script), server.url(load.path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + sc.timeout_s + 120)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (rc {proc.returncode}): {proc.stderr.strip()[-500:]}")
    r = json.loads(line.removeprefix("RESULT "))
    r.setdefault("statuses", "")
    return r


def established(port: int) -> int:
    """TCP connections in ESTABLISHED state whose local port is `port` (server side)."""
    want = f":{port:04X} "
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    parts = line.split(None, 4)
                    if parts[3] == "01" and (parts[1] + " ").endswith(want):
                        n += 1
        except OSError:
            pass
    return n


def toolgate_in_flight(server: Server) -> int | None:
    """The sum of toolgate's `toolgate_tool_calls_in_flight` gauges."""
    try:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=2)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return None
    return int(sum(float(l.rsplit(None, 1)[1]) for l in text.splitlines()
                   if l.startswith("toolgate_tool_calls_in_flight")))


class Sampler(threading.Thread):
    """While a load runs: the peak of the summed VmRSS of the server's processes (every
    100 ms) and, when `deep`, the peak of established connections to it and of the
    calls toolgate reports in flight (every 500 ms)."""

    def __init__(self, server: Server, deep: bool) -> None:
        super().__init__(daemon=True)
        self.server, self.deep, self.stop_flag = server, deep, threading.Event()
        self.peak, self.conns, self.in_flight = 0, 0, None

    def run(self) -> None:
        k = 0
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, status_kib(self.server.pids, "VmRSS"))
            if self.deep and k % 5 == 0:
                self.conns = max(self.conns, established(self.server.port))
                if self.server.spec.kind == "toolgate":
                    n = toolgate_in_flight(self.server)
                    if n is not None:
                        self.in_flight = max(self.in_flight or 0, n)
            k += 1
            self.stop_flag.wait(0.1)


def measure(server: Server, sc: Scenario, load: Load) -> dict:
    if sc.warmup:
        wrk(server, sc, load, sc.warmup)
    server.refresh_pids()
    sampler = Sampler(server, deep=sc.id == "inflight")
    sampler.start()
    before = cpu_ticks(server.pids)
    r = wrk(server, sc, load, sc.seconds)
    cpu = (cpu_ticks(server.pids) - before) / TICKS
    sampler.stop_flag.set()
    sampler.join()
    n = r["requests"]
    errors = r["failed"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    return {
        "requests": n,
        "rps": n / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0,
        "p50_ms": r["p50_us"] / 1000,
        "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "cpu_s": round(cpu, 3),
        "cpu_us_per_req": cpu * 1e6 / n if n else None,
        "errors": errors,
        "unexpected": r["failed"],
        "unexpected_statuses": r["statuses"],
        "connect_errors": r["connect_errors"],
        "read_errors": r["read_errors"],
        "write_errors": r["write_errors"],
        "timeouts": r["timeouts"],
        "rss_peak_sampled_kib": sampler.peak,
        "peak_established_connections": sampler.conns if sampler.deep else None,
        "peak_calls_in_flight": sampler.in_flight,
        "processes": len(server.pids),
        "note": load.note,
    }


def digest_log(path: Path) -> dict:
    """Size, lines and warn/error lines of a server's log. Unless BENCH_KEEP_LOGS=1 the
    log is then replaced by its warn/error lines (at most 200): toolgate's JSON lines
    run to gigabytes in a full run."""
    counts: dict[str, int] = {}
    kept: list[str] = []
    lines = 0
    try:
        size = path.stat().st_size
        with open(path, errors="replace") as f:
            for line in f:
                lines += 1
                for level in ("WARN", "ERROR", "CRITICAL"):
                    if f'"level":"{level.lower()}"' in line or line.startswith(level + ":"):
                        counts[level.lower()] = counts.get(level.lower(), 0) + 1
                        if len(kept) < 200:
                            kept.append(line)
    except OSError:
        return {}
    info = {"log": str(path), "log_bytes": size, "log_lines": lines, "log_problems": counts}
    if not KEEP_LOGS:
        path.write_text("".join(kept))
        info["log"] = f"{path} (its warn/error lines only; BENCH_KEEP_LOGS=1 keeps the whole log)"
    return info


# === context =============================================================================


def command_output(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def sysctl(name: str) -> str:
    try:
        return " ".join(Path("/proc/sys/" + name.replace(".", "/")).read_text().split())
    except OSError:
        return "unknown"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "memory_gib": round(mem_kib / 1024 / 1024, 1), "os": platform.platform(),
            "loadavg_start": os.getloadavg(),
            "sysctl": {k: sysctl(k) for k in ("net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog",
                                              "net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse")},
            "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def versions() -> dict:
    peer = subprocess.run([str(PEER_PYTHON), "-c", (
        "import sys, importlib.metadata as m; print(sys.version.split()[0]); "
        "[print(p, m.version(p)) for p in ('fastapi', 'starlette', 'pydantic', 'uvicorn', 'uvloop', "
        "'httptools', 'opentelemetry-sdk')]")], capture_output=True, text=True, timeout=60)
    lines = peer.stdout.split("\n")
    v = {"python": lines[0] if lines else "unknown"}
    for line in lines[1:]:
        if line.strip():
            name, ver = line.split()
            v[name] = ver
    v["rustc"] = command_output(["rustc", "--version"])
    v["toolgate"] = command_output([str(TOOLGATE), "--version"])
    v["wrk"] = command_output(["wrk", "-v"]).split(" Copyright")[0]
    return v


def otel_endpoint() -> str | None:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")


def otel_state() -> str:
    endpoint = otel_endpoint()
    if endpoint:
        return f"toolgate: OpenTelemetry on, exporting to {endpoint}"
    return ("toolgate: OpenTelemetry on, not exporting (OTEL_TRACES_EXPORTER=none); "
            "peer: SDK TracerProvider with no exporter")


# === the table ===========================================================================

COLUMNS = ["toolgate", "toolgate_before", "fastapi_1w", "fastapi_2w", "bare"]
RATIOS = [("toolgate_before", "vs before"), ("fastapi_1w", "vs FA 1w"),
          ("fastapi_2w", "vs FA 2w"), ("bare", "vs bare")]
# metric key, label, format, higher is better
METRICS = [
    ("rps", "req/s", "{:,.0f}", True),
    ("p50_ms", "p50 ms", "{:,.2f}", False),
    ("p99_ms", "p99 ms", "{:,.2f}", False),
    ("cpu_us_per_req", "CPU µs/req", "{:,.1f}", False),
    ("errors", "errors", "{:,}", None),
]


def ratio(tg: float | None, other: float | None, higher_better: bool | None) -> str:
    if higher_better is None or tg in (None, 0) or other in (None, 0):
        return "—"
    r = tg / other if higher_better else other / tg
    return f"{r:.2f}x"


def fmt(value, spec: str) -> str:
    return "—" if value is None else spec.format(value)


def table(results: dict, servers: list[str]) -> str:
    cols = [c for c in COLUMNS if c in servers]
    rats = [(c, l) for c, l in RATIOS if c in servers and "toolgate" in servers]
    head = ["scenario", "metric"] + [SERVERS[c].label for c in cols] + [l for _, l in rats]
    rows: list[list[str]] = []

    def add(label: str, metric: str, values: dict, spec: str, hb: bool | None) -> None:
        row = [label, metric] + [fmt(values.get(c), spec) for c in cols]
        row += [ratio(values.get("toolgate"), values.get(c), hb) for c, _ in rats]
        rows.append(row)

    for i, sc in enumerate(results["scenarios"], 1):
        per = sc["results"]
        title = f"{i}. {sc['title']} ({sc['conns']:,} conns)"
        for j, (key, label, spec, hb) in enumerate(METRICS):
            add(title if j == 0 else "", label, {s: (r[key] if r else None) for s, r in per.items()}, spec, hb)
        if sc["id"] == "inflight":
            add("", "peak RSS MiB", {s: (r["rss_hwm_kib"] / 1024 if r else None) for s, r in per.items()},
                "{:,.1f}", False)
        if sc.get("ideal"):
            rows.append(["   " + sc["ideal"], "", *[""] * (len(head) - 2)])
        rows.append(None)  # a rule
    srv = results["servers"]
    add("start to first ready /readyz", "ms", {s: srv[s].get("start_ms") for s in srv}, "{:,.1f}", False)
    add("peak RSS, all but in-flight (VmHWM)", "MiB", {s: srv[s]["rss_hwm_kib"] / 1024 for s in srv}, "{:,.1f}", False)

    widths = [max(len(r[i]) for r in [head] + [r for r in rows if r]) for i in range(len(head))]
    rule = "  ".join("-" * w for w in widths)

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    out = [line(head), rule]
    for r in rows:
        out.append(rule if r is None else line(r))
    return "\n".join(out)


# === main ================================================================================


def kill_stale_group(pgid_file: Path) -> None:
    """Kill what an earlier run left behind when it was killed with SIGKILL: the process
    group named in `pgid_file`, if every member is one of ours."""
    try:
        group = int(pgid_file.read_text())
    except (OSError, ValueError):
        return
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[2]) == group:
            members.append(cmdline)
    ours = ("toolgate", "uvicorn", "bare-rmcp", "wrk", "bench/compare/run.py", "multiprocessing")
    if members and all(any(tag in c for tag in ours) for c in members):
        print(f"killing {len(members)} process(es) left by an earlier run (process group {group})")
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pgid_file.unlink(missing_ok=True)


def raise_fd_limit(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(need, hard)))
        except (ValueError, PermissionError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> int:
    global INFLIGHT
    OUT.mkdir(parents=True, exist_ok=True)
    pgid_file = OUT / "run.pgid"
    kill_stale_group(pgid_file)
    try:  # own process group: run.sh kills the group (servers, wrk) whatever happens
        os.setpgid(0, 0)
    except OSError:
        pass
    if os.getpgid(0) == os.getpid():
        pgid_file.write_text(str(os.getpid()))
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    chosen = os.environ.get("BENCH_SERVERS", ",".join(SERVERS))
    needed = [TOOLGATE] + [BARE] * ("bare" in chosen) + [PEER_PYTHON] * ("fastapi" in chosen)
    for path in needed:
        if not path.exists():
            print(f"missing {path}: run `make bench` (it builds everything)", file=sys.stderr)
            return 2
    fd = raise_fd_limit(2 * INFLIGHT + 4096)
    if INFLIGHT and fd < INFLIGHT + 1024:
        print(f"note: the fd limit is {fd}; the in-flight scenario uses {fd - 1024} connections")
        INFLIGHT = fd - 1024
    servers = [s.strip() for s in os.environ.get("BENCH_SERVERS", ",".join(SERVERS)).split(",") if s.strip()]
    wanted = os.environ.get("BENCH_SCENARIOS", "").strip()
    idp_tmp = Path(tempfile.mkdtemp(prefix="toolgate-bench-idp-"))
    if "toolgate" in servers and (not wanted or "jwt" in wanted.split(",")):
        start_idp(idp_tmp)
    plan = [sc for sc in scenarios() if not wanted or sc.id in wanted.split(",")]
    if not INFLIGHT:
        plan = [sc for sc in plan if sc.id != "inflight"]

    settings = {k: v for k, v in os.environ.items() if k.startswith("BENCH_") and k not in (
        "BENCH_TOOLGATE", "BENCH_BARE", "BENCH_PEER_PYTHON")}
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([*(f"{k}={shlex.quote(v)}" for k, v in sorted(settings.items())), "make bench"]),
        "machine": machine(),
        "versions": versions(),
        "settings": {"duration_s": DURATION, "warmup_s": WARMUP, "wrk_threads": THREADS,
                     "inflight_connections": INFLIGHT, "inflight_sleep_ms": INFLIGHT_SLEEP_MS,
                     "servers": servers},
        "toolgate_config": "bench/compare/toolgate.toml",
        "toolgate_otel": otel_state(),
        "toolgate_logs": "JSON lines at the default filter (info,rmcp=warn), stderr to a file under BENCH_OUT",
        "peer": ("uvicorn --loop uvloop --http httptools, access log on (uvicorn's default, as a production "
                 "service keeps it), stdout and stderr to a file under BENCH_OUT; OpenTelemetry SDK "
                 "TracerProvider with no span processor or exporter"),
        "cpu_measure": "server utime+stime from /proc/PID/stat (summed over uvicorn's master and workers) "
                       "during the measured window, divided by the requests wrk completed",
    }
    m, v = meta["machine"], meta["versions"]
    print(f"date {meta['date']}   command: {meta['command']}")
    print(f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}, "
          f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}")
    print(f"sysctl: {', '.join(f'{k} {v}' for k, v in m['sysctl'].items())}; fd limit {m['fd_limit']}")
    print(f"versions: {v['rustc']}; {v['toolgate']}; Python {v['python']}, fastapi {v.get('fastapi')}, "
          f"starlette {v.get('starlette')}, pydantic {v.get('pydantic')}, uvicorn {v.get('uvicorn')}, "
          f"uvloop {v.get('uvloop')}, httptools {v.get('httptools')}, opentelemetry-sdk "
          f"{v.get('opentelemetry-sdk')}; {v['wrk']}")
    print(f"{meta['toolgate_otel']}")
    print(f"load: wrk -t{THREADS}, {DURATION} s per scenario after {WARMUP} s of warm-up, all on 127.0.0.1; "
          f"wrk shares the {m['nproc']} CPUs with the server", flush=True)

    results: dict = {"meta": meta, "servers": {}, "scenarios": []}
    for sc in plan:
        results["scenarios"].append({"id": sc.id, "title": sc.title, "conns": sc.conns, "seconds": sc.seconds,
                                     "ideal": sc.ideal, "results": {s: None for s in servers}})
    by_id = {s["id"]: s for s in results["scenarios"]}

    def progress(sc: Scenario, name: str, r: dict) -> None:
        extra = f" unexpected {r['unexpected_statuses']}" if r["unexpected_statuses"] else ""
        print(f"  {sc.id:<12} {name:<11} {r['rps']:>9,.0f} req/s  p50 {r['p50_ms']:>8.2f} ms  "
              f"p99 {r['p99_ms']:>8.2f} ms  cpu {fmt(r['cpu_us_per_req'], '{:.1f}'):>7} µs/req  "
              f"errors {r['errors']}{extra}", flush=True)

    with tempfile.TemporaryDirectory(prefix="toolgate-bench-") as tmpdir:
        tmp = Path(tmpdir)
        running: dict[str, Server] = {}
        try:
            if any(sc.federated for sc in plan) and any(SERVERS[n].kind == "toolgate" for n in servers):
                upstream = start_upstream(tmp)
                if upstream is not None:
                    running["upstream"] = upstream
            print(f"start-up: exec to the first 200 from /readyz, {STARTS} time(s) each (the median counts)",
                  flush=True)
            for name in servers:
                times = []
                for _ in range(STARTS):
                    srv = Server(SERVERS[name], "start", tmp)
                    running[name] = srv
                    times.append(round(srv.start_ms, 1))
                    running.pop(name).stop()
                results["servers"][name] = {"start_ms": statistics.median(times), "start_ms_runs": times,
                                            "command": srv.cmd}
                print(f"  {name:<11} {statistics.median(times):8.1f} ms  (runs: "
                      f"{', '.join(f'{t:.1f}' for t in times)})", flush=True)
            normal = [sc for sc in plan if sc.id != "inflight"]
            if normal:
                for name in servers:
                    srv = Server(SERVERS[name], "main", tmp)
                    running[name] = srv
                    results["servers"][name]["start_ms_main"] = round(srv.start_ms, 1)
                for sc in normal:
                    for name in servers:
                        load = sc.load_for(SERVERS[name])
                        if load is None:
                            continue
                        r = measure(running[name], sc, load)
                        by_id[sc.id]["results"][name] = r
                        progress(sc, name, r)
                for name in servers:
                    srv = running.pop(name)
                    srv.refresh_pids()
                    results["servers"][name]["rss_hwm_kib"] = status_kib(srv.pids, "VmHWM")
                    results["servers"][name]["processes"] = len(srv.pids)
                    srv.stop()
                    results["servers"][name] |= digest_log(srv.log_path)
            inflight = next((sc for sc in plan if sc.id == "inflight"), None)
            if inflight:
                print(f"{inflight.title}: a fresh server each, {inflight.seconds} s", flush=True)
                for name in servers:
                    load = inflight.load_for(SERVERS[name])
                    if load is None:
                        continue
                    srv = Server(SERVERS[name], "inflight", tmp)
                    running[name] = srv
                    r = measure(srv, inflight, load)
                    srv.refresh_pids()
                    r["rss_hwm_kib"] = status_kib(srv.pids, "VmHWM")
                    r["start_ms"] = srv.start_ms
                    running.pop(name).stop()
                    r |= digest_log(srv.log_path)
                    by_id["inflight"]["results"][name] = r
                    progress(inflight, name, r)
                    in_flight = (f", calls in flight (toolgate's gauge) {r['peak_calls_in_flight']:,}"
                                 if r["peak_calls_in_flight"] is not None else "")
                    print(f"  {'':<12} {name:<11} peak RSS {r['rss_hwm_kib'] / 1024:.1f} MiB (VmHWM, "
                          f"{r['processes']} process(es)); peak established connections "
                          f"{r['peak_established_connections']:,}{in_flight}", flush=True)
        finally:
            for srv in running.values():
                srv.stop()

    meta["machine"]["loadavg_end"] = os.getloadavg()
    for name in servers:  # servers measured only in the in-flight scenario
        results["servers"].setdefault(name, {"start_ms": None, "rss_hwm_kib": 0})

    text = table(results, servers)
    notes = [
        "ratios: how many times better toolgate is (req/s: toolgate / other; latency, CPU, memory, "
        "start: other / toolgate); below 1.00x the other server is better",
        "errors: responses with an unexpected status or body, plus wrk's socket errors and timeouts",
        "CPU µs/req: " + meta["cpu_measure"],
        meta["toolgate_otel"],
        "toolgate logs: " + meta["toolgate_logs"] + "; peer: " + meta["peer"],
        f"load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in meta['machine']['loadavg_end'])}",
    ]
    for sc in results["scenarios"]:
        for name, r in sc["results"].items():
            if r and r["errors"]:
                notes.append(f"{sc['id']} / {name}: {r['errors']} errors: unexpected {r['unexpected']} "
                             f"({r['unexpected_statuses'] or 'none'}), connect {r['connect_errors']}, read "
                             f"{r['read_errors']}, write {r['write_errors']}, timeouts {r['timeouts']}")
    for name, s in results["servers"].items():
        if s.get("log_problems"):
            notes.append(f"{name} log: {s['log_problems']} lines at warn/error; see {s.get('log')}")
    report = "\n".join([
        "",
        f"toolgate vs FastAPI, {meta['date']}, {m['nproc']} CPUs ({m['cpu']}), kernel {m['kernel']}",
        text, "", *("- " + n for n in notes)])
    print(report)

    results["table"] = text
    results["notes"] = notes
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "results.txt").write_text(report.lstrip("\n") + "\n")
    SVG.parent.mkdir(parents=True, exist_ok=True)
    SVG.write_text(chart.render(results))
    print(f"\nwrote {OUT / 'results.json'}, {OUT / 'results.txt'} and {SVG}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        pgid = OUT / "run.pgid"
        if pgid.exists() and pgid.read_text().strip() == str(os.getpid()):
            pgid.unlink()
