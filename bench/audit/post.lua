-- wrk script: POST a small echo call with the bench key.
wrk.method = "POST"
wrk.body = '{"user": "ada", "n": 42}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Tool-API-Key"] = "bench-key"
