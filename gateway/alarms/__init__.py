"""School one-button alarms inside the gateway: the device store, the alarm workflow and
linkage (service), the events stream's source (stream) and outbound webhooks.

The box protocol itself — body, signatures, the device record — is :mod:`adapters.alarms`;
the HTTP side is :mod:`gateway.api.alarms` and :mod:`gateway.api.stream`; the wall's
pop-up is ``gateway/web/alarms.js``. See docs/alarms.md.
"""
