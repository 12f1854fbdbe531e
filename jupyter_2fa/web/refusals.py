"""One place that turns a refusal into an HTTP answer: status, message and ``Retry-After``."""

from __future__ import annotations

from tornado import web

from ..messages import Refusal


class Refused(Exception):
    """A request a flow turns down; the surface (page, JSON API, login) renders it its own way."""

    def __init__(self, status: int, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def page(cls, refusal: Refusal) -> Refused:
        return cls(refusal.status, refusal.message, refusal.retry_after)

    @classmethod
    def api(cls, refusal: Refusal) -> Refused:
        """As the JSON API says it: 403, not 401, for a wrong factor (401 would read as "session expired").

        >>> Refused.api(Refusal(401, "Invalid credentials")).status
        403
        """
        return cls(403 if refusal.status == 401 else refusal.status, refusal.message, refusal.retry_after)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(int(self.retry_after))} if self.retry_after else {}

    def http_error(self) -> RefusedError:
        return RefusedError(self)


class RefusedError(web.HTTPError):
    """A refusal raised as tornado's HTTPError. tornado's ``send_error`` clears the headers set on the handler
    beforehand, so ``Retry-After`` rides on the error as ``headers``, which JupyterHub's ``write_error`` (and
    the gate's API handlers') apply."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.status, refused.message)
        self.headers = refused.headers
