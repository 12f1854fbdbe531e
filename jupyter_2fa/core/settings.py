"""The settings the core needs, as one plain value; jupyter_2fa.config builds it from traitlets."""

from __future__ import annotations

from dataclasses import dataclass, field

from .throttle import GuessPolicy, ThrottlePolicy
from .totp import TOTPParameters


@dataclass(frozen=True)
class Settings:
    issuer: str = "Jupyter"
    totp: TOTPParameters = field(default_factory=TOTPParameters)
    window: int = 1
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    guessing: GuessPolicy = field(default_factory=GuessPolicy)
    recovery_code_count: int = 10
    enrollment_lifetime: float = 600.0

    def __post_init__(self) -> None:
        if ":" in self.issuer or not self.issuer.strip():
            raise ValueError("issuer must be non-empty and must not contain ':'")
        if not 0 <= self.window <= 10:
            raise ValueError(f"window must be between 0 and 10 steps, not {self.window!r}")
        if not 0 <= self.recovery_code_count <= 100:
            raise ValueError("recovery_code_count must be between 0 and 100")
        if not 30 <= self.enrollment_lifetime <= 86400:
            raise ValueError("enrollment_lifetime must be between 30 seconds and one day")
