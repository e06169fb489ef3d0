"""cascade: an operations toolkit for Redis, a WebSocket event hub and the HTTP APIs around them."""

__version__ = "0.1.0"
