"""The REST API: one router per resource under /api/v1 (assembled in gateway.app)."""
