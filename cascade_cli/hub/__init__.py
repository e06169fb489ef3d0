"""The WebSocket hub and HTTP API of `cascade serve`."""
