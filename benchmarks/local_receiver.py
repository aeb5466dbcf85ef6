"""A local HTTP receiver in a process of its own, for the benchmarks that measure a sender (webhooks, pushes).

It answers every POST with a fixed reply and does nothing else, so what the benchmark measures is the sender;
in a process of its own it takes none of the sender's CPU time.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import socket
from collections.abc import Iterator

from aiohttp import web


def _serve(
    port_out: multiprocessing.connection.Connection, path: str, status: int, body: bytes, content_type: str | None
) -> None:
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, body=body or None, content_type=content_type)

    async def main() -> None:
        app = web.Application()
        app.router.add_post(path, accept)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        port_out.send(sock.getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


@contextlib.contextmanager
def receiving(path: str, *, status: int = 204, body: bytes = b"", content_type: str | None = None) -> Iterator[str]:
    """The URL of a receiver answering POSTs to ``path``, for the duration of the block."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, path, status, body, content_type), daemon=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{parent.recv()}{path}"
    finally:
        server.terminate()
        server.join(5)
