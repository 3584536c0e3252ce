// A fast HTTP subscriber for bench/subscribers.py: every POST is answered 200 at once and
// counted by its SNS message type, the x-amz-sns-message-type header (moto_server sends
// none: then the body's "Type"). On a SubscriptionConfirmation it GETs the SubscribeURL,
// as a real subscriber confirms (https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.confirm.html).
// It checks nothing else: its job is to not be the bottleneck.
//
// usage: node subscriber_receiver.js PORT
// GET /counts -> {"posts": {type: n}, "first": {type: ms}, "last": {type: ms}, ...}
//   (ms since the epoch); DELETE /counts resets everything.
"use strict";
const http = require("http");

const port = Number(process.argv[2]);
const CONFIRM_TRIES = 3;
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

let state;
function reset() {
  state = {
    posts: {}, // by message type
    first: {},
    last: {},
    untyped: 0, // POSTs without the x-amz-sns-message-type header
    duplicates: 0, // a Notification of a message this path had already received
    confirmed: 0, // SubscribeURL GETs answered 200
    confirmFailed: 0, // given up after CONFIRM_TRIES
    confirmRetries: 0,
    confirmFirst: 0,
    confirmLast: 0,
    firstError: "",
    perMessage: {}, // Notification message id -> paths that received it
  };
  state.seen = new Set(); // "message id path", not in the JSON
}
reset();

function noteError(text) {
  if (!state.firstError) state.firstError = String(text).slice(0, 300);
}

function confirm(url, tries) {
  const generation = state;
  http
    .get(url, { agent }, (res) => {
      res.resume();
      res.on("end", () => {
        if (generation !== state) return;
        if (res.statusCode === 200) {
          const now = Date.now();
          if (!state.confirmFirst) state.confirmFirst = now;
          state.confirmed += 1;
          state.confirmLast = now;
        } else {
          retry(url, tries, `SubscribeURL answered ${res.statusCode}`);
        }
      });
    })
    .on("error", (err) => {
      if (generation === state) retry(url, tries, `SubscribeURL: ${err.message}`);
    });
}

function retry(url, tries, why) {
  noteError(why);
  if (tries + 1 >= CONFIRM_TRIES) {
    state.confirmFailed += 1;
    return;
  }
  state.confirmRetries += 1;
  setTimeout(() => confirm(url, tries + 1), 500);
}

function counted(req, body) {
  const now = Date.now();
  let type = req.headers["x-amz-sns-message-type"];
  let messageId = req.headers["x-amz-sns-message-id"];
  let parsed = null;
  const parse = () => {
    if (parsed === null) {
      try {
        parsed = JSON.parse(body);
      } catch (err) {
        parsed = {};
        noteError(`unparsable body on ${req.url}: ${err.message}`);
      }
    }
    return parsed;
  };
  if (!type) {
    state.untyped += 1;
    type = parse().Type || "unknown";
  }
  state.posts[type] = (state.posts[type] || 0) + 1;
  if (!state.first[type]) state.first[type] = now;
  state.last[type] = now;
  if (type === "Notification") {
    messageId = messageId || parse().MessageId || "";
    const key = `${messageId} ${req.url}`;
    if (state.seen.has(key)) state.duplicates += 1;
    else {
      state.seen.add(key);
      state.perMessage[messageId] = (state.perMessage[messageId] || 0) + 1;
    }
  } else if (type === "SubscriptionConfirmation") {
    const url = parse().SubscribeURL;
    if (url) confirm(url, 0);
    else noteError(`SubscriptionConfirmation without SubscribeURL on ${req.url}`);
  }
}

const server = http.createServer((req, res) => {
  if (req.url === "/counts") {
    if (req.method === "DELETE") reset();
    const { seen, ...shown } = state;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(shown));
    return;
  }
  if (req.method !== "POST") {
    res.statusCode = 404;
    res.end();
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    res.end(); // 200, empty body, before any bookkeeping
    counted(req, Buffer.concat(chunks).toString());
  });
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 65000;
server.listen(port, "127.0.0.1");
