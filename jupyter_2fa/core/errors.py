"""Exceptions shared by the core modules; front-ends catch :class:`StoreError` to fail closed."""

from __future__ import annotations


class TwoFactorError(Exception):
    """Base of every jupyter-2fa error; the message is written for the person who has to act on it."""


class StoreError(TwoFactorError):
    """The 2FA store cannot be used safely (unreachable, unsafe file, wrong key): logins must fail closed."""
