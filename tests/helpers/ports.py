"""Free loopback ports for the servers the tests start (PostgreSQL, Jupyter, JupyterHub, slapd)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port nobody listens on right now.

    A race remains (another process may take it before the server binds it), so whoever starts a server on it
    retries with a new port when the bind fails. Nothing listens on it afterwards: a client that connects to it
    is refused.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct :func:`free_port` s, sorted (for a server that listens on several ports at once)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)
