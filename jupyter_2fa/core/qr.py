"""Render an otpauth URI as a QR code: SVG for pages and widgets, text for terminals."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    import qrcode
    import qrcode.image.svg


def _qr(uri: str) -> qrcode.QRCode[qrcode.image.svg.SvgPathImage]:
    import qrcode  # loaded when a code is first drawn, not when the gate starts
    import qrcode.image.svg

    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, image_factory=qrcode.image.svg.SvgPathImage
    )
    code.add_data(uri)
    code.make(fit=True)
    return code


def qr_svg(uri: str) -> str:
    """A standalone SVG document (one path, no external references) showing ``uri``."""
    return _qr(uri).make_image().to_string(encoding="unicode")


CARD_WIDTH = 260  # px: the QR code is a square this wide, its key typed out below
_LINE = 22  # px between lines of the caption
_GROUPS_PER_LINE = 4  # a 32-character key in groups of four fits in two lines


def qr_card_svg(uri: str, manual_key: str) -> str:
    """One SVG picture of the QR code with the key typed out under it, for apps that cannot scan.

    What a one-time image link serves: the panel then needs neither the URI nor the key in its own state.
    """
    square = re.sub(
        r'width="[^"]*" height="[^"]*"', f'x="0" y="0" width="{CARD_WIDTH}" height="{CARD_WIDTH}"', qr_svg(uri), count=1
    )
    groups = manual_key.split()
    key_lines = [" ".join(groups[i : i + _GROUPS_PER_LINE]) for i in range(0, len(groups), _GROUPS_PER_LINE)]
    height = CARD_WIDTH + _LINE * (len(key_lines) + 1) + 8
    caption = [(_LINE - 4, "sans-serif", "12", "Can\u2019t scan? Type this key into the app:")]
    caption += [(_LINE * (n + 2) - 4, "monospace", "15", line) for n, line in enumerate(key_lines)]
    text = "".join(
        f'<text x="50%" y="{CARD_WIDTH + y}" text-anchor="middle" font-family="{family}" font-size="{size}">'
        f"{escape(words)}</text>"
        for y, family, size, words in caption
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CARD_WIDTH}" height="{height}" '
        f'viewBox="0 0 {CARD_WIDTH} {height}"><rect width="100%" height="100%" fill="#fff"/>{square}{text}</svg>'
    )


def qr_terminal(uri: str, invert: bool = False) -> str:
    """``uri`` as half-block characters for a terminal; ``invert`` for dark-on-light terminals."""
    out = io.StringIO()
    _qr(uri).print_ascii(out=out, invert=invert)
    return out.getvalue()
