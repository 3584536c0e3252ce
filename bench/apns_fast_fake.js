// A fast APNs stand-in for throughput benchmarks: HTTP/2 over TLS, answers every
// POST /3/device/<token> with 200 and an apns-id, and counts what it answered.
// It checks nothing else (the strict fakes in pushgate.fakes do): its job is to not be
// the bottleneck, so that h2load and pushgate are measured against the same ceiling.
//
// usage: node apns_fast_fake.js CERT KEY PORT STATS_PORT
// GET http://127.0.0.1:STATS_PORT/ -> {"count": N, "first": t, "last": t} (ms since epoch);
// DELETE resets.
"use strict";
const fs = require("fs");
const http = require("http");
const http2 = require("http2");
const crypto = require("crypto");

const [cert, key, port, statsPort] = process.argv.slice(2);
let count = 0, first = 0, last = 0;

const server = http2.createSecureServer({
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  allowHTTP1: false,
  settings: { maxConcurrentStreams: 1000 },
});
server.on("stream", (stream, headers) => {
  const ok = headers[":method"] === "POST" && headers[":path"].startsWith("/3/device/");
  stream.on("data", () => {});
  stream.on("end", () => {
    if (ok) {
      const now = Date.now();
      if (count === 0) first = now;
      count += 1;
      last = now;
    }
    stream.respond({
      ":status": ok ? 200 : 404,
      "apns-id": headers["apns-id"] || crypto.randomUUID(),
    }, { endStream: true });
  });
});
server.listen(Number(port), "127.0.0.1");

http.createServer((req, res) => {
  if (req.method === "DELETE") { count = 0; first = 0; last = 0; }
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ count, first, last }));
}).listen(Number(statsPort), "127.0.0.1");
