"""ONVIF devices: discovery, onboarding by address and password, PTZ, events, health.

``discovery`` finds devices (WS-Discovery), ``device`` talks to one (onvif-zeep-async),
``ptz`` and ``events`` are its PTZ and PullPoint services, ``snapshot`` fetches its JPEG,
and ``manager`` ties them to the gateway's catalog, hub and event bus.
"""
