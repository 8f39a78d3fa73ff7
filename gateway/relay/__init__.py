"""Live view: WHEP sessions that pass the hub's H.264 through to WebRTC viewers."""
