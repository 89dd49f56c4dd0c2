"""pages/_tcp.py: asyncio sets TCP_NODELAY on the sockets a server accepts once enable_nodelay() ran."""

from __future__ import annotations

import asyncio
import asyncio.base_events
import socket

from pages import _tcp


async def _accepted_nodelay() -> int:
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    # a listening socket made as uvicorn (Streamlit's server) makes it: proto 0, so accepted ones are too
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(on_client, sock=listener)
    port = listener.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(accepted, 10)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def test_without_it_accepted_sockets_keep_nagle() -> None:
    """The reason for pages/_tcp.py (if this fails, asyncio fixed it and the module can go)."""
    if getattr(asyncio.base_events._set_nodelay, "_perturb_app_nodelay", False):
        return  # app.py already ran in this process (an AppTest): the hook is ours
    assert asyncio.run(_accepted_nodelay()) == 0


def test_enable_nodelay_covers_accepted_sockets(monkeypatch) -> None:
    monkeypatch.setattr(
        asyncio.base_events, "_set_nodelay", asyncio.base_events._set_nodelay
    )  # restored after
    assert _tcp.enable_nodelay()
    assert _tcp.enable_nodelay()  # idempotent
    assert asyncio.run(_accepted_nodelay()) != 0


def test_enable_nodelay_without_the_hook_changes_nothing(monkeypatch) -> None:
    monkeypatch.delattr(asyncio.base_events, "_set_nodelay")
    assert not _tcp.enable_nodelay()
