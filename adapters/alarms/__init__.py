"""School one-button alarm boxes (校园一键报警): the intake protocol and the device record.

A box (or its vendor's platform) calls ``POST /api/v1/alarms/{device}`` where ``device`` is
the box's 20-digit GB/T 28181 code (type 134, alarm input) or the vendor serial the
integrator mapped to one. The body is a small JSON object (:mod:`adapters.alarms.message`):
``{"type": "emergency", "nonce": "…", "time": 1732190000.5, "info": {…}}``.

Two ways to prove the request comes from the box:

- **Signed** (the normal way, :mod:`adapters.alarms.signature`): the headers
  ``X-Sharpeyes-Timestamp: <unix seconds>`` and
  ``X-Sharpeyes-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`` with the
  device's shared secret. The gateway refuses a timestamp further than the replay window
  from its clock and a signature it has already seen inside that window, so a captured
  request cannot be sent again; the body is covered, so it cannot be altered.
- **Query token** (weaker, for vendor platforms that can only call a fixed URL):
  ``?token=<the device's token>``. The token travels in the URL (proxies and access logs
  may keep it), proves nothing about the body and gives no replay protection: anyone who
  sees one request can send alarms as that box. Enable it per device only where signing is
  impossible, give it its own long random value, and prefer HTTPS end to end.
"""
