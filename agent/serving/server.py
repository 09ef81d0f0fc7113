"""Serving: the protocol over stdio or streamable HTTP on loopback on a thread of its own, the
workcell's jobs on the main thread."""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

from erarm.agent import interrupts
from erarm.agent.brains import api_key_from_env
from erarm.agent.brains.base import Brain
from erarm.agent.redaction import guard
from erarm.agent.serving.jobs import Bench, ServerOptions
from erarm.agent.serving.protocol import build_server
from erarm.robots.base import Workcell
from erarm.robots.errors import ConfigError, ErarmError

HTTP_PATH = "/mcp"


def loopback_socket(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (port 0: a free one), or a one-line error."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {err.strerror or err}") from None
    sock.set_inheritable(False)
    return sock


class _ClientLines:
    """The client's lines on stdin; when they end (the client closed the pipe, or was killed)
    `gone` runs at once, so a motion halts then rather than when its answer fails to send."""

    def __init__(self, gone: Callable[[], None]):
        self.gone = gone

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        source = anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8",
                                                  errors="replace"))
        async for line in source:
            yield line
        self.gone()


async def _serve_stdio(server: MCPServer, gone: Callable[[], None]) -> None:
    """The SDK's stdio transport, reading the client's lines through `_ClientLines`."""
    async with stdio_server(stdin=_ClientLines(gone)) as (read_stream, write_stream):
        await server._lowlevel_server.run(read_stream, write_stream,
                                          server._lowlevel_server.create_initialization_options())


def _protocol(server: MCPServer, sock: socket.socket | None, gone: Callable[[], None]) -> None:
    """Serve the protocol until its transport ends: stdio (the client closed it) or HTTP."""
    if sock is None:
        anyio.run(_serve_stdio, server, gone)
        return
    import uvicorn

    from erarm.agent.serving.auth import SESSION_IDLE_S

    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host="127.0.0.1",
                                     session_idle_timeout=SESSION_IDLE_S)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    anyio.run(uvicorn.Server(config).serve, [sock])


def serve(cell: Workcell, brain: Brain, options: ServerOptions,
          sock: socket.socket | None = None) -> None:
    """Serve `cell` with `brain` over stdio (or streamable HTTP on `sock`) until the client
    closes stdio or the process is interrupted. Runs on the main thread, which keeps the
    workcell; the protocol runs on a thread of its own. The workcell is the caller's to
    close."""
    if threading.current_thread() is not threading.main_thread():
        raise ConfigError("erarm's MCP server runs on the main thread (stop reaches a motion "
                          "there, as Ctrl-C does)")
    interrupts.install()  # `stop` halts the main thread through erarm's one signal path
    key = api_key_from_env()
    if key:  # clients' text is echoed in log lines: keep the key out of those too
        guard(key)
    try:
        options.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {options.out}: {err.strerror or err}") from None
    if not os.access(options.out, os.W_OK):
        raise ConfigError(f"cannot write to {options.out}: choose another --out")
    bench = Bench(cell, brain, options)
    server = build_server(bench)
    failure: list[BaseException] = []
    left: list[bool] = []

    def gone() -> None:
        """The client went away: halt what moves, serve no more."""
        left.append(True)
        if bench.stop() is not None:
            options.log("the MCP client went away during a motion: the arm was stopped where "
                        "it was")
        bench.close()

    def protocol() -> None:
        try:
            _protocol(server, sock, gone)
        except BaseException as err:  # reported on the main thread, as one line
            failure.append(err)
        finally:
            bench.close()

    thread = threading.Thread(target=protocol, name="erarm-mcp-protocol", daemon=True)
    thread.start()
    try:
        bench.serve_jobs()
    finally:
        bench.close()
    if failure and not left and not interrupts.interrupted():
        err = failure[0]
        raise err if isinstance(err, ErarmError) else ErarmError(
            f"the MCP transport ended: {type(err).__name__}: {err}")
