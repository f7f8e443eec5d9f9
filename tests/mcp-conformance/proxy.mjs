// A pass-through HTTP proxy on 127.0.0.1 that adds toolgate's API key to every
// request: the conformance suite sends no credentials. Everything else (method,
// path, Host, Origin, the body, a streamed response) passes through unchanged.
//
//   node proxy.mjs <listen-port> <upstream-port> <key>
import http from "node:http";

const [listenPort, upstreamPort, key] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  const headers = { ...req.headers, "x-tool-api-key": key };
  const up = http.request(
    { host: "127.0.0.1", port: Number(upstreamPort), method: req.method, path: req.url, headers },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  up.on("error", () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
  res.on("close", () => up.destroy());
});
server.listen(Number(listenPort), "127.0.0.1", () => console.log("ready"));
