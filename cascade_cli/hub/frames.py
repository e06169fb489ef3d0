"""Pure: WebSocket frames a server sends (RFC 6455: unmasked, no extensions).

An unmasked server frame is the same bytes for every client, so the hub frames an event once per
broadcast and writes the same bytes to every subscriber that negotiated no compression.
"""

from __future__ import annotations

import struct

_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")

OP_TEXT = 0x1
OP_CLOSE = 0x8


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final (FIN) frame carrying `payload`; write the result to the transport as is."""
    first = 0x80 | opcode
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return _SHORT.pack(first, 126, size) + payload
    return _LONG.pack(first, 127, size) + payload


def text_frame(payload: bytes) -> bytes:
    """A text frame; `payload` must be UTF-8 (JSON encoded by the hub always is)."""
    return frame(payload, OP_TEXT)
