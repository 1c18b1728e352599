"""A webhook receiver for the `webhook` expiry handler, Python standard library only.

    WEBHOOK_SECRET=<secret> PORT=8080 python3 examples/webhook-receiver/python/receiver.py

WEBHOOK_SECRET may hold two secrets, `old,new`, while you rotate them: a request
signed with either is accepted. The check is checkout_signature.py beside this
file (docs/webhook-verification.md).
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from checkout_signature import verify_checkout_signature

SECRETS = os.environ.get("WEBHOOK_SECRET", "")
if not SECRETS:
    sys.exit("set WEBHOOK_SECRET (two, comma-separated, during a rotation)")
MAX_BODY_BYTES = 64 * 1024  # an expiry event is far smaller

# Stands in for your database: record the key where the effect lands, in the same transaction.
handled = set()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/expired":
            return self.answer(404)
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return self.answer(413)
        # The body exactly as received: the signature covers these bytes.
        raw_body = self.rfile.read(length)
        if not verify_checkout_signature(raw_body, self.headers.get("checkout-signature"), SECRETS):
            return self.answer(400)
        event = json.loads(raw_body)
        # The same expiry comes again after a retry or a replay: act once per idempotencyKey.
        if event["idempotencyKey"] not in handled:
            handled.add(event["idempotencyKey"])
            print(f"expired {event['id']} generation {event['generation']} (key {event['idempotencyKey']})", flush=True)
        self.answer(204)

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass  # one line per expiry above is enough


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Receiver)
print(f"listening on http://127.0.0.1:{server.server_address[1]}/expired", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
