"""One-time pictures (core.oneshot) and the picture they hold (core.qr.qr_card_svg).

A ticket hands a secret-bearing picture to its owner's browser exactly once, before it expires; everything else
(another owner, a second fetch, a late fetch, a replaced or discarded ticket) gets nothing. The clock is passed
in, so expiry is tested at its exact boundary.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from jupyter_2fa.core.enrollment import Provisioning
from jupyter_2fa.core.oneshot import DEFAULT_TTL_SECONDS, OneShotImages
from jupyter_2fa.core.qr import qr_card_svg, qr_svg
from jupyter_2fa.core.totp import provisioning_uri

from helpers.core import T0, USER

TTL = 60.0
PICTURE = b"<svg>the secret JBSWY3DPEHPK3PXP</svg>"
OTHER = "mallory"
SVG = "{http://www.w3.org/2000/svg}"

# -- OneShotImages ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    """One ``take`` after ``put(USER, PICTURE, T0)``: by whom, when, and what must come back."""

    owner: str
    at: float
    expected: bytes | None


@pytest.mark.parametrize(
    "fetch",
    [
        pytest.param(Fetch(USER, T0, PICTURE), id="owner-at-once"),
        pytest.param(Fetch(USER, T0 + TTL - 0.001, PICTURE), id="owner-just-before-expiry"),
        pytest.param(Fetch(USER, T0 + TTL, None), id="owner-at-expiry"),
        pytest.param(Fetch(USER, T0 + 10 * TTL, None), id="owner-long-after"),
        pytest.param(Fetch(OTHER, T0, None), id="someone-else"),
        pytest.param(Fetch(USER.upper(), T0, None), id="owner-name-in-other-case"),
        pytest.param(Fetch("", T0, None), id="nobody"),
    ],
)
def test_a_ticket_gives_its_picture_to_its_owner_before_expiry(fetch: Fetch) -> None:
    images = OneShotImages(ttl=TTL)
    ticket = images.put(USER, PICTURE, T0)
    assert images.take(ticket, fetch.owner, fetch.at) == fetch.expected


@pytest.mark.parametrize(
    ("first", "left"),
    [
        pytest.param(Fetch(USER, T0, PICTURE), 0, id="after-a-fetch"),
        pytest.param(Fetch(USER, T0 + TTL, None), 0, id="after-a-late-fetch"),
        pytest.param(Fetch(OTHER, T0, None), 1, id="after-someone-elses-try"),
    ],
)
def test_a_ticket_is_good_once(first: Fetch, left: int) -> None:
    """Only the owner's fetch (in time or not) uses the ticket up; another owner's try changes nothing."""
    images = OneShotImages(ttl=TTL)
    ticket = images.put(USER, PICTURE, T0)
    assert images.take(ticket, first.owner, first.at) == first.expected
    assert len(images) == left
    assert images.take(ticket, USER, T0 + 1) == (PICTURE if left else None)
    assert images.take(ticket, USER, T0 + 2) is None


# what happens between ``put(USER, PICTURE, T0)`` and the owner's fetch at T0 + 1
Between = Callable[[OneShotImages], object]


@pytest.mark.parametrize(
    ("between", "kept"),
    [
        pytest.param(lambda images: None, True, id="nothing"),
        pytest.param(lambda images: images.put(USER, b"<svg>new</svg>", T0 + 1), False, id="a-new-picture"),
        pytest.param(lambda images: images.discard(USER), False, id="discarded"),
        pytest.param(lambda images: images.put(OTHER, b"<svg>theirs</svg>", T0 + 1), True, id="another-owners-put"),
        pytest.param(lambda images: images.discard(OTHER), True, id="another-owner-discarded"),
        pytest.param(lambda images: images.discard("nobody-at-all"), True, id="unknown-owner-discarded"),
        pytest.param(lambda images: images.take("not-a-ticket", USER, T0), True, id="unknown-ticket-taken"),
    ],
)
def test_a_new_picture_or_a_discard_voids_the_owners_ticket(between: Between, kept: bool) -> None:
    """An owner has one live ticket: a new enrollment or the end of one (discard) kills the previous picture."""
    images = OneShotImages(ttl=TTL)
    ticket = images.put(USER, PICTURE, T0)
    between(images)
    assert images.take(ticket, USER, T0 + 1) == (PICTURE if kept else None)


def test_a_put_purges_expired_tickets_of_everyone() -> None:
    """Tickets nobody fetched do not pile up: the next put (by anyone) drops the expired ones."""
    images = OneShotImages(ttl=TTL)
    expired = [images.put(f"user{n}", PICTURE, T0) for n in range(5)]
    live = images.put("late", PICTURE, T0 + TTL / 2)
    assert len(images) == 6

    images.put(USER, PICTURE, T0 + TTL)
    assert len(images) == 2
    assert all(images.take(ticket, f"user{n}", T0) is None for n, ticket in enumerate(expired))
    assert images.take(live, "late", T0 + TTL) == PICTURE


def test_tickets_are_unguessable_url_safe_and_distinct() -> None:
    images = OneShotImages()
    tickets = [images.put(f"user{n}", PICTURE, T0) for n in range(200)]
    assert len(set(tickets)) == len(tickets)
    for ticket in tickets:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", ticket), ticket  # 256 bits, and the routes' pattern {1,64}
    assert images.ttl == DEFAULT_TTL_SECONDS


def test_the_picture_stays_out_of_reprs() -> None:
    """What a traceback with locals or a debugger prints of the desk must not carry the secret."""
    images = OneShotImages()
    images.put(USER, PICTURE, T0)
    shown = repr(vars(images))
    assert "JBSWY3DP" not in shown and "content=<hidden>" in shown
    assert repr(USER) in shown  # the owner is no secret: the repr stays useful


# -- qr_card_svg -----------------------------------------------------------------------------------------------------

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
URI = provisioning_uri(SECRET, USER, "Example HPC")


def groups(key: str, size: int = 4) -> str:
    return " ".join(key[i : i + size] for i in range(0, len(key), size))


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input


def key_lines(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter(f"{SVG}text") if el.get("font-family") == "monospace"]


@pytest.mark.parametrize(
    ("manual_key", "lines"),
    [
        pytest.param(groups(SECRET), ["JBSW Y3DP EHPK 3PXP", "JBSW Y3DP EHPK 3PXP"], id="32-chars-two-lines"),
        pytest.param(groups(SECRET[:16]), ["JBSW Y3DP EHPK 3PXP"], id="16-chars-one-line"),
        pytest.param(groups(SECRET[:20]), ["JBSW Y3DP EHPK 3PXP", "JBSW"], id="20-chars-short-last-line"),
        pytest.param(groups(SECRET * 2), [groups(SECRET[i : i + 16]) for i in (0, 16, 0, 16)], id="64-chars"),
        pytest.param("", [], id="no-key"),
    ],
)
def test_the_card_types_the_key_in_lines_of_four_groups(manual_key: str, lines: list[str]) -> None:
    card = qr_card_svg(URI, manual_key)
    root = parse(card)
    assert root.tag == f"{SVG}svg"
    assert key_lines(root) == lines
    # every line of text lies inside the picture, below the QR code
    height = float(root.get("height", "0"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    ys = [float(el.get("y", "0")) for el in root.iter(f"{SVG}text")]
    qr_size = float(root.find(f"{SVG}svg").get("height", "0"))  # type: ignore[union-attr]
    assert all(qr_size < y < height for y in ys), (ys, qr_size, height)


def test_the_card_holds_the_uris_qr_code() -> None:
    """The nested picture is qr_svg(uri) itself (same modules), only placed and scaled."""
    nested = parse(qr_card_svg(URI, groups(SECRET))).find(f"{SVG}svg")
    alone = parse(qr_svg(URI))
    assert nested is not None
    assert nested.get("viewBox") == alone.get("viewBox")
    assert (nested.get("x"), nested.get("y"), nested.get("width")) == ("0", "0", nested.get("height"))
    assert [p.get("d") for p in nested.iter(f"{SVG}path")] == [p.get("d") for p in alone.iter(f"{SVG}path")]
    other = parse(qr_card_svg(provisioning_uri(SECRET[:-1] + "Q", USER, "Example HPC"), groups(SECRET)))
    assert [p.get("d") for p in other.iter(f"{SVG}path")] != [p.get("d") for p in nested.iter(f"{SVG}path")]


@pytest.mark.parametrize(
    "manual_key",
    [
        pytest.param("<script>alert(1)</script>", id="tags"),
        pytest.param("A&B C<D E>F G\"H'", id="markup-characters"),
        pytest.param("]]> <!-- x", id="cdata-and-comment"),
    ],
)
def test_the_card_escapes_the_key(manual_key: str) -> None:
    """The key is our own Base32, but the card must stay well-formed whatever it is given."""
    card = qr_card_svg(URI, manual_key)
    assert "<script" not in card
    assert " ".join(key_lines(parse(card))) == " ".join(manual_key.split())


def test_the_card_is_a_plain_picture() -> None:
    """Nothing active or external: the one-time route serves it with a CSP of default-src 'none'."""
    card = qr_card_svg(URI, groups(SECRET))
    elements = {el.tag.removeprefix(SVG) for el in parse(card).iter()}
    assert elements == {"svg", "rect", "path", "text"}
    attributes = {name for el in parse(card).iter() for name in el.attrib}
    assert not {name for name in attributes if name.startswith("on") or "href" in name}, attributes
    assert "url(" not in card
    assert qr_card_svg(URI, groups(SECRET)) == card  # deterministic


def test_provisioning_card_shows_its_own_uri_and_key() -> None:
    provisioning = Provisioning(SECRET, URI)
    card = provisioning.card_svg()
    assert card == qr_card_svg(URI, provisioning.manual_key)
    assert "".join(key_lines(parse(card))).replace(" ", "") == SECRET
