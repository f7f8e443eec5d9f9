<?php

declare(strict_types=1);

// A fake toolgate for FakeServerTest, run by `php -S`. The first path segment picks
// the behaviour; the rest is the real API path (so the client's base URL has a prefix).

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
[, $scenario, $rest] = explode('/', $path, 3) + [null, '', ''];
$state = sys_get_temp_dir() . '/toolgate-fake-' . preg_replace('/[^a-z0-9]/', '', $_SERVER['HTTP_X_FAKE_RUN'] ?? 'x');
$hits = (int) @file_get_contents($state . '-' . $scenario) + 1;
file_put_contents($state . '-' . $scenario, (string) $hits);
header('X-Fake-Hits: ' . $hits);

function problem(int $status, array $doc, array $headers = []): void
{
    http_response_code($status);
    header('Content-Type: application/problem+json');
    foreach ($headers as $h) {
        header($h);
    }
    echo json_encode($doc);
}

switch ($scenario) {
    case 'upstream':
        problem(502, ['code' => 'upstream_error', 'status' => 502, 'title' => 'Upstream error', 'detail' => 'inventory failed', 'tool' => 'inventory', 'trace_id' => 'abc']);
        break;
    case 'html':
        http_response_code(502);
        header('Content-Type: text/html');
        header('X-Trace-Id: t1');
        echo '<html>bad gateway</html>';
        break;
    case 'retry':
        if ($hits <= 2) {
            problem(503, ['code' => 'overloaded', 'status' => 503, 'title' => 'Overloaded'], ['Retry-After: 0']);
        } else {
            header('Content-Type: application/json');
            echo json_encode(['tool' => 'echo', 'output' => ['hits' => $hits], 'duration_ms' => 0]);
        }
        break;
    case 'rate':
        problem(429, ['code' => 'rate_limited', 'status' => 429], ['Retry-After: 60']);
        break;
    case 'batch429':
        http_response_code(429);
        header('Content-Type: application/json');
        echo json_encode(['success' => false, 'error' => ['code' => 'overloaded', 'status' => 429],
            'data' => [['id' => '0', 'tool' => 't', 'ok' => false, 'duration_ms' => 0, 'error' => ['code' => 'overloaded', 'status' => 429]]]]);
        break;
    case 'echo':
    case 'echobatch':
        header('Content-Type: application/json');
        header('X-Trace-Id: trace');
        $headers = [];
        foreach ($_SERVER as $k => $v) {
            if (str_starts_with($k, 'HTTP_') || $k === 'CONTENT_TYPE') {
                $headers[strtolower(str_replace('_', '-', preg_replace('/^HTTP_/', '', $k)))] = $v;
            }
        }
        $seen = ['method' => $_SERVER['REQUEST_METHOD'], 'path' => $_SERVER['REQUEST_URI'], 'headers' => $headers, 'body' => file_get_contents('php://input')];
        echo json_encode($scenario === 'echo'
            ? ['tool' => 'echo', 'duration_ms' => 3, 'output' => $seen]
            : ['success' => true, 'data' => [['id' => '0', 'tool' => 'echo', 'ok' => true, 'duration_ms' => 0, 'output' => $seen]]]);
        break;
    case 'nodone':
        header('Content-Type: text/event-stream');
        echo "event: progress\nid: 1\ndata: {\"id\":\"0\",\"tool\":\"t\",\"progress\":1}\n\n";
        break;
    case 'events':
        header('Content-Type: text/event-stream');
        echo "event: result\nid: 1\ndata: {\"id\":\"0\",\"tool\":\"fail\",\"ok\":false,\"duration_ms\":0,\"error\":{\"code\":\"tool_error\",\"status\":500}}\n\n";
        echo ": keep-alive\n\n";
        echo "event: surprise\r\nid: 2\r\ndata: {}\r\n\r\n";
        echo "event: done\rid: 3\rdata: {\"success\":false,\"calls\":1,\"succeeded\":0,\"failed\":1}\r\r";
        echo "event: progress\nid: 4\ndata: {\"id\":\"0\",\"tool\":\"t\",\"progress\":1}\n\n";
        break;
    case 'notsse':
        header('Content-Type: application/json');
        echo '{}';
        break;
    default:
        problem(404, ['code' => 'not_found', 'status' => 404, 'title' => 'Not found', 'detail' => 'no route']);
}
