"""Render an otpauth URI as a QR code: SVG for pages and widgets, text for terminals."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg


def _qr(uri: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(uri)
    code.make(fit=True)
    return code


def qr_svg(uri: str) -> str:
    """A standalone SVG document (one path, no external references) showing ``uri``."""
    image = _qr(uri).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return str(image.to_string(encoding="unicode"))


def qr_terminal(uri: str, invert: bool = False) -> str:
    """``uri`` as half-block characters for a terminal; ``invert`` for dark-on-light terminals."""
    out = io.StringIO()
    _qr(uri).print_ascii(out=out, invert=invert)
    return out.getvalue()
