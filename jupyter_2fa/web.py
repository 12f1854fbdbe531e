"""Where a tornado request comes from, for the gate and the hub alike (forwarding headers only from proxies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .core.network import Network, client_address


def request_client_address(request: Any, trusted_proxies: Sequence[Network]) -> str | None:
    """The client of a ``tornado.httputil.HTTPServerRequest``.

    The connection's peer comes from the connection context, not ``request.remote_ip``: with tornado's
    ``xheaders`` (as JupyterHub runs) ``remote_ip`` is whatever the client put in ``X-Real-Ip``.
    """
    context = getattr(request.connection, "context", None)
    peer = getattr(context, "address", None)
    peer_ip = peer[0] if isinstance(peer, tuple) and peer else None
    headers = request.headers
    return client_address(peer_ip, headers.get("X-Forwarded-For"), headers.get("X-Real-Ip"), trusted_proxies)
