"""Webhook receivers and signers built on the platforms' official SDKs, for tests/sdk.rs.

    receiver.py serve PLATFORM SECRET [MODE]   a receiver on 127.0.0.1:0; prints `ready PORT`
    receiver.py sign PLATFORM SECRET URL FILE [SECRET2]
                                               the headers the SDK (or the documented rule)
                                               writes for FILE's bytes, one `Name: value` a line

MODE is `correct` (default) or a receiver wrong in one known way:
    wrong-url     twilio: validates against the URL without its query string
    raw-key       standard-webhooks/svix: uses the whsec_ string itself as the HMAC key
    reserialize   elevenlabs: verifies json.dumps(json.loads(body)) instead of the raw bytes

A module that is not importable prints `skip: <why>` and exits 3, so the Rust tests can say
so and pass where the SDKs are not installed. Vapi and Bland ship no verifier: their receivers
follow the documented rules (a Bearer token; hex HMAC-SHA256 of the body).
"""

import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SKIP = 3


def need(module):
    try:
        return __import__(module, fromlist=["*"])
    except ImportError as e:
        print(f"skip: the Python module `{module}` is not importable ({e})", flush=True)
        sys.exit(SKIP)


class MultiDict(dict):
    """Form fields with repeated keys, as Flask and Django give them to RequestValidator."""

    def __init__(self, pairs):
        super().__init__()
        self.pairs = pairs
        for key, value in pairs:
            self[key] = value

    def getlist(self, key):
        return [v for k, v in self.pairs if k == key]


def verifier(platform, secret, mode):
    """A function (url, headers, raw body bytes) -> True when the request verifies."""
    if platform == "elevenlabs":
        need("elevenlabs")
        from elevenlabs.webhooks_custom import WebhooksClient

        client = WebhooksClient.__new__(WebhooksClient)

        def check(url, headers, body):
            text = body.decode("utf-8")
            if mode == "reserialize":
                text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
            try:
                client.construct_event(text, headers.get("elevenlabs-signature"), secret)
                return True
            except Exception:
                return False

        return check
    if platform == "twilio":
        need("twilio")
        from twilio.request_validator import RequestValidator

        validator = RequestValidator(secret)

        def check(url, headers, body):
            if mode == "wrong-url":
                parts = urlsplit(url)
                url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            params = MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            return validator.validate(url, params, headers.get("x-twilio-signature", ""))

        return check
    if platform in ("standard-webhooks", "svix"):
        need("standardwebhooks")
        from standardwebhooks.webhooks import Webhook

        key = secret.encode() if mode == "raw-key" else secret
        webhook = Webhook(key)

        def check(url, headers, body):
            if platform == "svix":
                # What the svix library does: its own names first, the standard ones after.
                headers = {k.replace("svix-", "webhook-"): v for k, v in headers.items()}
            try:
                webhook.verify(body, headers, json_parse=False)
                return True
            except Exception:
                return False

        return check
    if platform == "vapi":

        def check(url, headers, body):
            given = headers.get("authorization", "")
            return hmac.compare_digest(given.encode(), f"Bearer {secret}".encode())

        return check
    if platform == "bland":

        def check(url, headers, body):
            want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            return hmac.compare_digest(headers.get("x-webhook-signature", "").encode(), want.encode())

        return check
    print(f"skip: no SDK receiver for {platform}", flush=True)
    sys.exit(SKIP)


def readable(platform, body):
    """Whether the body parses as the platform sends it: 400 otherwise, as hookcli's listen."""
    try:
        if platform == "twilio":
            body.decode("utf-8")
        else:
            json.loads(body)
        return True
    except Exception:
        return False


def serve(platform, secret, mode):
    check = verifier(platform, secret, mode)
    ok = 200 if platform == "elevenlabs" else 204

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            url = f"http://{self.headers.get('host')}{self.path}"
            try:
                verified = check(url, headers, body)
            except Exception:
                # A body the receiver's own parsing chokes on (reserialize) is refused.
                verified = False
            if not verified:
                status = 401
            elif not readable(platform, body):
                status = 400
            else:
                status = ok
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


def sign(platform, secret, url, path, second=None):
    body = open(path, "rb").read()
    now = int(time.time())
    if platform == "twilio":
        need("twilio")
        from twilio.request_validator import RequestValidator

        params = MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        print(f"x-twilio-signature: {RequestValidator(secret).compute_signature(url, params)}")
    elif platform in ("standard-webhooks", "svix"):
        need("standardwebhooks")
        from datetime import datetime, timezone

        from standardwebhooks.webhooks import Webhook

        prefix = "svix" if platform == "svix" else "webhook"
        at = datetime.fromtimestamp(now, tz=timezone.utc)
        signatures = [Webhook(s).sign("msg_sdk_made", at, body.decode("utf-8")) for s in [second, secret] if s]
        print(f"{prefix}-id: msg_sdk_made")
        print(f"{prefix}-timestamp: {now}")
        print(f"{prefix}-signature: {' '.join(signatures)}")
    elif platform == "elevenlabs":
        # The SDK verifies and does not sign: this is the message construct_event checks (not
        # imported here: it takes seconds, and construct_event judges these in serve).
        digest = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        print(f"elevenlabs-signature: t={now},v0={digest}")
    elif platform == "vapi":
        print(f"authorization: Bearer {secret}")
    elif platform == "bland":
        print(f"x-webhook-signature: {hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}")
    else:
        print(f"skip: no SDK signer for {platform}", flush=True)
        sys.exit(SKIP)


if __name__ == "__main__":
    command, platform, secret = sys.argv[1:4]
    if command == "serve":
        serve(platform, secret, sys.argv[4] if len(sys.argv) > 4 else "correct")
    else:
        sign(platform, secret, sys.argv[4], sys.argv[5], sys.argv[6] if len(sys.argv) > 6 else None)
