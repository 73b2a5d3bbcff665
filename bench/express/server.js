// The receiver the platform's documents show (seeds/001 "Verify Webhooks"), with the official
// SDK's verify: raw body, Retell.verify(body, apiKey, signature), parse, answer 204. The
// per-event console.log of the docs is left out so the bench measures HTTP + verify, not a TTY.
// Usage: HOOKCLI_SECRET=KEY PORT=3000 node server.js   (prints "listening on URL" when ready)
const express = require("express");
const Retell = require("retell-sdk");

const key = process.env.HOOKCLI_SECRET;
if (!key) {
  console.error("set HOOKCLI_SECRET to the signing key");
  process.exit(2);
}
const app = express();
app.use(express.raw({ type: "application/json", limit: "25mb" }));

app.post("/webhook", (req, res) => {
  const rawBody = req.body.toString("utf-8");
  if (!Retell.verify(rawBody, key, req.headers["x-retell-signature"] || "")) {
    return res.status(401).send();
  }
  const { event } = JSON.parse(rawBody);
  if (typeof event !== "string") {
    return res.status(400).send();
  }
  res.status(204).send();
});

const server = app.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.error(`listening on http://127.0.0.1:${server.address().port}/webhook`);
});
