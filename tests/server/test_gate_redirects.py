"""``next`` after login: never another host (open redirect), and kept when it points into the server."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest

from helpers.gate import PASSWORD, Browser, EnrolledAccount, login_message

# jupyter_server's own list (tests/auth/test_login.py::test_next_bad): each must land exactly on base_url.
JUPYTER_SERVER_BAD_NEXT = {
    "backslashes-tree": r"\\tree",
    "scheme-relative-host": "//some-host",
    "scheme-relative-host-with-base": "//host{base_url}tree",
    "absolute-url": "https://google.com",
    "path-outside-base-url": "/absolute/not/base_url",
}

# More ways browsers turn a "path" into another host.
MORE_BAD_NEXT = {
    "host-then-base-url": "//host{base_url}",
    "three-slashes": "///host",
    "slash-backslash": "/\\host",
    "two-backslashes": "\\\\host",
    "scheme-three-slashes": "https:///host",
    "http-url": "http://some-host/",
    "https-url": "https://some-host/",
    "scheme-without-slashes": "https:some-host",
    "javascript": "javascript:alert(1)",
    "data-url": "data:text/html,<script>alert(1)</script>",
    "encoded-slashes": "/%2F%2Fhost",
    "encoded-backslash": "//%5Chost",
    "encoded-scheme-relative": "%2F%2Fhost",
    "tab-inside-slashes": "/\t/host",
    "leading-space": " //host",
    "base-url-then-host": "{base_url}/../../../\\host",
}

BASE_URLS = {"base-a@b": "/a%40b/", "base-root": "/"}
_BROWSER_STRIPS = re.compile(r"[\t\n\r]")


def lands_on_this_server(location: str, origin: str, base_url: str) -> bool:
    """Whether ``Location`` is a path under ``base_url`` and a browser following it stays on ``origin``.

    Browsers drop tabs and newlines, trim spaces and control characters, and read ``\\`` as ``/``. (Dot
    segments may still walk out of ``base_url``: that stays on this server, as jupyter_server allows.)
    """
    seen = _BROWSER_STRIPS.sub("", location).strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f ")
    seen = seen.replace("\\", "/")
    target = urlsplit(urljoin(f"{origin}{base_url}", seen))
    return location.startswith(base_url) and target.scheme == "http" and f"http://{target.netloc}" == origin


@pytest.fixture
def origin(jp_http_port: int) -> str:
    return f"http://127.0.0.1:{jp_http_port}"


async def _login_to(browser: Browser, enrolled: EnrolledAccount, next_url: str) -> str:
    response = await browser.login(PASSWORD, enrolled.fresh_code(), next_url=next_url)
    assert response.code == 302, login_message(response)
    return str(response.headers["Location"])


JUPYTER_SERVER_CASES = [
    pytest.param(base_url, bad_next, id=f"{bad_id}-{base_id}")
    for base_id, base_url in BASE_URLS.items()
    for bad_id, bad_next in JUPYTER_SERVER_BAD_NEXT.items()
    # Under base_url "/" every absolute path is on the server, so that one is not "bad" there.
    if not (base_url == "/" and bad_next == "/absolute/not/base_url")
]


@pytest.mark.parametrize(("jp_base_url", "bad_next"), JUPYTER_SERVER_CASES)
async def test_jupyter_server_bad_next_lands_on_base_url(
    browser: Browser, enrolled: EnrolledAccount, jp_base_url: str, bad_next: str
) -> None:
    next_url = bad_next.format(base_url=jp_base_url)
    assert await _login_to(browser, enrolled, next_url) == jp_base_url


@pytest.mark.parametrize("jp_base_url", list(BASE_URLS.values()), ids=list(BASE_URLS))
@pytest.mark.parametrize("bad_next", list(MORE_BAD_NEXT.values()), ids=list(MORE_BAD_NEXT))
async def test_bad_next_never_leaves_the_server(
    browser: Browser, enrolled: EnrolledAccount, jp_base_url: str, origin: str, bad_next: str
) -> None:
    next_url = bad_next.format(base_url=jp_base_url)

    after_login = await _login_to(browser, enrolled, next_url)
    # A logged-in browser visiting the login page is redirected to next as well.
    revisit = await browser.get("login", params={"next": next_url})

    assert revisit.code == 302
    for location in (after_login, str(revisit.headers["Location"])):
        assert lands_on_this_server(location, origin, jp_base_url), location


GOOD_NEXT = {
    "lab-under-root": ("/", "/lab"),
    "tree-path": ("/a%40b/", "{base_url}tree/x"),
    "lab": ("/a%40b/", "{base_url}lab"),
    # jupyter_server's test_next_ok list
    "tree-dir": ("/a%40b/", "{base_url}tree/"),
    "double-slash-base": ("/a%40b/", "{base_url}//{base_url}tree"),
    "notebook": ("/a%40b/", "{base_url}notebooks/notebook.ipynb"),
    "double-slash-inside": ("/a%40b/", "{base_url}tree//something"),
    "query-and-fragment": ("/a%40b/", "{base_url}lab/tree/x.ipynb?kernel=python3#cell-2"),
}


@pytest.mark.parametrize(("jp_base_url", "good_next"), list(GOOD_NEXT.values()), ids=list(GOOD_NEXT))
async def test_good_next_is_kept(browser: Browser, enrolled: EnrolledAccount, jp_base_url: str, good_next: str) -> None:
    next_url = good_next.format(base_url=jp_base_url)
    assert await _login_to(browser, enrolled, next_url) == next_url


async def test_no_next_goes_to_base_url(browser: Browser, enrolled: EnrolledAccount, jp_base_url: str) -> None:
    assert await _login_to(browser, enrolled, jp_base_url) == jp_base_url
    response = await browser.login(PASSWORD, enrolled.fresh_code())
    assert response.code == 302
    assert response.headers["Location"] == jp_base_url


@pytest.mark.parametrize("bad_next", ["https://some-host/", "//some-host", "javascript:alert(1)"])
async def test_enrollment_redirect_keeps_next_inside_the_server(
    browser: Browser, jp_base_url: str, origin: str, bad_next: str
) -> None:
    """A password without a device is sent to the enrollment page, on this server, whatever next says."""
    response = await browser.login(PASSWORD, "", next_url=bad_next)
    assert response.code == 303
    location = str(response.headers["Location"])
    assert location.startswith(f"{jp_base_url}2fa/enroll?next=")
    assert lands_on_this_server(location, origin, jp_base_url)
