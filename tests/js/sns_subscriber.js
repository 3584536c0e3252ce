// An HTTP subscriber as one is written for Amazon SNS, with AWS's own validator
// (npm "sns-validator", https://github.com/aws/aws-js-sns-message-validator): it checks
// the SigningCertURL (https, host pattern, .pem), fetches the certificate and verifies
// the signature; it confirms a SubscriptionConfirmation by GETting its SubscribeURL.
// Prints its port, then one JSON line per message. Usage: node sns_subscriber.js HOST_RE
"use strict";
const http = require("http");
const https = require("https");
const MessageValidator = require("sns-validator");

const validator = new MessageValidator(new RegExp(process.argv[2]));
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    let message;
    try {
      message = JSON.parse(body);
    } catch (err) {
      say({ ok: false, path: req.url, error: "not JSON: " + err.message });
      res.writeHead(400).end();
      return;
    }
    validator.validate(message, (err, valid) => {
      if (err) {
        say({ ok: false, path: req.url, type: message.Type, error: String(err) });
        res.writeHead(400).end();
        return;
      }
      const done = (extra) => {
        say(Object.assign({ ok: true, path: req.url, type: valid.Type,
                            messageId: valid.MessageId, message: valid.Message,
                            signatureVersion: valid.SignatureVersion }, extra));
        res.writeHead(200).end();
      };
      if (valid.Type === "SubscriptionConfirmation") {
        https.get(valid.SubscribeURL, (answer) => {
          answer.resume();
          answer.on("end", () => done({ confirmed: answer.statusCode }));
        }).on("error", (e) => done({ confirmed: String(e) }));
      } else {
        done({});
      }
    });
  });
});
server.listen(0, "127.0.0.1", () => say({ port: server.address().port }));
