// The official MCP TypeScript SDK's task client (2025-11-25 experimental tasks)
// against a running toolgate:
//
//   node tasks-client.mjs '{"url": "http://127.0.0.1:PORT/mcp", "key": "...",
//     "approver_key": "...", "rest": "http://127.0.0.1:PORT"}'
//
// 1. tools/list shows each tool's execution.taskSupport;
// 2. callToolStream runs `sleep` as a task: taskCreated, statuses, result;
// 3. a task is started, the client disconnects, a new client fetches its result;
// 4. tasks/get, tasks/list and tasks/cancel (a 10 s sleep, cancelled);
// 5. a gated tool is a task awaiting approval; an approver approves it over REST;
//    tasks/result then answers the call's result.
//
// Prints one JSON line with what it saw; exits non-zero on any failure.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';

const opts = JSON.parse(process.argv[2] ?? '{}');
const deadline = setTimeout(() => {
  console.error('tasks-client: gave up after 90 s');
  process.exit(3);
}, 90_000);

async function connect() {
  const client = new Client({ name: 'toolgate-tasks-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(opts.url), {
    requestInit: { headers: { 'X-Tool-API-Key': opts.key } },
  });
  await client.connect(transport);
  return client;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const report = {};

const first = await connect();
report.capabilities = first.getServerCapabilities();
const listed = await first.listTools();
report.task_support = Object.fromEntries(
  listed.tools.map((t) => [t.name, t.execution?.taskSupport ?? null]),
);

// 2. A task streamed to its end.
const events = [];
for await (const message of first.experimental.tasks.callToolStream(
  { name: 'sleep', arguments: { ms: 1500 } },
  CallToolResultSchema,
  { task: { ttl: 60000 } },
)) {
  if (message.type === 'taskCreated') events.push({ type: 'taskCreated', taskId: message.task.taskId, status: message.task.status });
  else if (message.type === 'taskStatus') events.push({ type: 'taskStatus', status: message.task.status });
  else if (message.type === 'result') events.push({ type: 'result', result: message.result });
  else if (message.type === 'error') events.push({ type: 'error', error: String(message.error) });
}
report.streamed = events;

// 3. Start, disconnect, fetch later from another connection.
let startedId;
for await (const message of first.experimental.tasks.callToolStream(
  { name: 'sleep', arguments: { ms: 2000 } },
  CallToolResultSchema,
  { task: { ttl: 60000 } },
)) {
  if (message.type === 'taskCreated') {
    startedId = message.task.taskId;
    break;
  }
}
await first.close();
const second = await connect();
report.after_reconnect = {
  taskId: startedId,
  status: (await second.experimental.tasks.getTask(startedId)).status,
  result: await second.experimental.tasks.getTaskResult(startedId, CallToolResultSchema),
};

// 4. get, list, cancel.
let longId;
for await (const message of second.experimental.tasks.callToolStream(
  { name: 'sleep', arguments: { ms: 10000 } },
  CallToolResultSchema,
  { task: { ttl: 60000 } },
)) {
  if (message.type === 'taskCreated') {
    longId = message.task.taskId;
    break;
  }
}
await sleep(300);
const listedTasks = await second.experimental.tasks.listTasks();
const cancelled = await second.experimental.tasks.cancelTask(longId);
report.cancel = {
  listed: listedTasks.tasks.map((t) => t.taskId),
  cancelled_status: cancelled.status,
  status_after: (await second.experimental.tasks.getTask(longId)).status,
};

// 5. An approval gate: the task waits until an approver says yes.
let gatedId;
let gatedStatus;
for await (const message of second.experimental.tasks.callToolStream(
  { name: 'refund', arguments: { order: 42 } },
  CallToolResultSchema,
  { task: { ttl: 60000 } },
)) {
  if (message.type === 'taskCreated') {
    gatedId = message.task.taskId;
    gatedStatus = message.task.statusMessage;
    break;
  }
}
const approve = await fetch(`${opts.rest}/api/v1/approvals/${gatedId}/approve`, {
  method: 'POST',
  headers: { 'X-Tool-API-Key': opts.approver_key, 'Content-Type': 'application/json' },
  body: JSON.stringify({ comment: 'approved by the SDK test' }),
});
report.approval = {
  taskId: gatedId,
  status_message: gatedStatus,
  approve_status: approve.status,
  result: await second.experimental.tasks.getTaskResult(gatedId, CallToolResultSchema),
};
// A plain call of a tool that needs a task is refused.
try {
  await second.callTool({ name: 'refund', arguments: { order: 1 } });
  report.plain_call_of_required = 'answered';
} catch (e) {
  report.plain_call_of_required = String(e.message ?? e);
}
await second.close();
clearTimeout(deadline);
console.log(JSON.stringify(report));
