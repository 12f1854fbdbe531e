"""One-time images: hand a secret-bearing picture (the QR code and key) to a browser exactly once, by ticket.

The notebook panel must show the QR code without the secret ever entering widget state (which notebooks
save). So the server keeps the picture in memory and gives the panel only an unguessable ticket; the
browser fetches ``…/2fa/qr/<ticket>`` once, after which the ticket is dead. A saved notebook can then hold
at most a dead link.

>>> desk = OneShotImages(ttl=60)
>>> ticket = desk.put("alice", b"<svg/>", now=0)
>>> desk.take(ticket, "mallory", now=1) is None   # someone else's ticket
True
>>> desk.take(ticket, "alice", now=1)
b'<svg/>'
>>> desk.take(ticket, "alice", now=2) is None      # and only once
True
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class _Image:
    owner: str
    content: bytes
    expires_at: float

    def __repr__(self) -> str:  # the content holds a TOTP secret
        return f"_Image(owner={self.owner!r}, content=<hidden>, expires_at={self.expires_at})"


class OneShotImages:
    """Tickets for pictures that may be fetched once, by their owner, within ``ttl`` seconds.

    Each owner has at most one live ticket: a new picture voids the previous one, as a new enrollment
    voids the previous pending secret. In memory only, per process (a hub and a single server are one
    process each); nothing is written anywhere.
    """

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._images: dict[str, _Image] = {}

    def put(self, owner: str, content: bytes, now: float) -> str:
        """Keep ``content`` for ``owner`` and return its ticket (URL-safe, 256 random bits)."""
        self._forget(lambda image: image.owner == owner or image.expires_at <= now)
        ticket = secrets.token_urlsafe(32)
        self._images[ticket] = _Image(owner, content, now + self.ttl)
        return ticket

    def take(self, ticket: str, owner: str, now: float) -> bytes | None:
        """The picture, once, if the ticket is live and ``owner``'s; otherwise None (and nothing changes)."""
        image = self._images.get(ticket)
        if image is None or image.owner != owner:
            return None
        del self._images[ticket]
        return image.content if image.expires_at > now else None

    def discard(self, owner: str) -> None:
        """Drop ``owner``'s live ticket, if any (enrollment confirmed or cancelled before the fetch)."""
        self._forget(lambda image: image.owner == owner)

    def __len__(self) -> int:
        return len(self._images)

    def _forget(self, doomed: Callable[[_Image], bool]) -> None:
        for ticket, image in list(self._images.items()):
            if doomed(image):
                del self._images[ticket]
