"""Running the app: bind first (so ``--port 0`` can report the port it got), print the URL, serve
until Ctrl-C or SIGTERM, and drain in-flight responses before exiting."""

from __future__ import annotations

import signal
import socket

import click
import uvicorn
from fastapi import FastAPI


def listen(host: str, port: int) -> socket.socket:
    """A listening socket: connections made from now on wait in its backlog until the server runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(app: FastAPI, host: str, port: int) -> None:
    sock = listen(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=None))
    # SIGTERM asks the server to stop: before it runs (it then stops as soon as it has started), and
    # after, when uvicorn, having drained, raises the SIGTERM it caught again: ending the process with
    # status 0 instead of the default -15. While it runs, uvicorn's own handler drains.
    previous = signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    try:
        click.echo(f"serving on {url(sock)}", nl=True)
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
