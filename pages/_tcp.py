"""Send the app's messages without Nagle's delay: TCP_NODELAY on the server's accepted connections.

Streamlit's server runs on asyncio, which turns off Nagle's algorithm (``TCP_NODELAY``) on the
sockets it wraps, but only when ``sock.proto`` is ``IPPROTO_TCP``; a socket returned by
``accept()`` reports ``proto`` 0 on Linux, so every browser's websocket kept Nagle on. A rerun
sends its elements as many small frames, and Nagle then holds one back until the browser
acknowledges the previous one, which a delayed ACK does only after ~40 ms: measured here, a
rerun of a two-element page took 45 ms from request to last message with Nagle and 6 ms without
(docs/BENCHMARKS.md, "Second speed pass"). :func:`enable_nodelay` makes asyncio set the option on
every TCP stream socket it wraps from then on; ``app.py`` calls it on its first run.
"""

from __future__ import annotations

import asyncio.base_events
import socket

__all__ = ["enable_nodelay"]

_MARK = "_perturb_app_nodelay"


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


setattr(_set_nodelay, _MARK, True)


def enable_nodelay() -> bool:
    """Turn Nagle's algorithm off on every TCP socket asyncio wraps from now on (accepted ones too).

    Returns whether asyncio's hook was found and replaced (``False`` on a Python without it: then
    nothing changes). Idempotent.
    """
    current = getattr(asyncio.base_events, "_set_nodelay", None)
    if current is None or not hasattr(socket, "TCP_NODELAY"):
        return False
    if not getattr(current, _MARK, False):
        asyncio.base_events._set_nodelay = _set_nodelay  # type: ignore[attr-defined]
    return True
