import hashlib
import hmac
import re
import time


def verify_checkout_signature(raw_body, header, secrets, tolerance_seconds=300, now=None):
    """True when the Checkout-Signature header signs exactly raw_body (bytes, as
    received) with one of secrets (a list, or a comma-separated string as
    WEBHOOK_SECRET holds), at most tolerance_seconds away from now."""
    if isinstance(secrets, str):
        secrets = secrets.split(",")
    secrets = [s for s in secrets if s]
    if not header or not secrets:
        return False
    timestamps, signatures = [], []
    for part in header.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "t":
            timestamps.append(value)
        elif key == "v1" and re.fullmatch(r"[0-9a-f]{64}", value):
            signatures.append(value)
    # Exactly one t; two would make the header ambiguous.
    if len(timestamps) != 1 or not re.fullmatch(r"[0-9]{1,15}", timestamps[0]) or not signatures:
        return False
    t = int(timestamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance_seconds:
        return False
    signed = str(t).encode() + b"." + raw_body
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        for candidate in signatures:
            # Compare every entry in constant time: the time taken does not tell which matched.
            matched = hmac.compare_digest(expected, candidate) or matched
    return matched
