"""The hub's 2FA admin API (``/hub/2fa/api/users…``) and ``jupyter 2fa … --config jupyterhub_config.py``."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from jupyterhub.scopes import Scope
from tornado import web

from jupyter_2fa.hub.admin import AdminHandler

from helpers.hub import Hub, enrolled_device, hub_cli, hub_store, login_error, module_hub, twofa_api
from helpers.totp import totp_step

PASSWORD = "correct horse battery staple"
HELP_TEXT = "Write to hpc-help@example.org with your username."
GROUP_ADMIN_TOKEN = secrets.token_hex(32)

CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.TwoFactorConfig.lockout_threshold = 3
c.TwoFactorConfig.backoff_free_attempts = 10
c.TwoFactorConfig.help_text = {HELP_TEXT!r}

# A service that may administer only the members of one group (JupyterHub's filtered scopes).
c.JupyterHub.load_groups = {{"staff": {{"users": ["frank"]}}}}
c.JupyterHub.services.append({{"name": "staff-admin", "api_token": {GROUP_ADMIN_TOKEN!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "staff-admin-role", "scopes": ["admin:users!group=staff"], "services": ["staff-admin"]}}
)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with module_hub(tmp_path_factory, CONFIG) as started:
        yield started


def test_listing_needs_an_admin_token(hub: Hub) -> None:
    enrolled_device(hub.new_browser(), "alice", PASSWORD)
    listed = twofa_api(hub, "GET")
    assert listed.status_code == 200, listed.text
    assert listed.headers["Content-Type"].startswith("application/json")
    alice = next(user for user in listed.json() if user["name"] == "alice")
    assert alice["enrolled"] is True
    assert alice["locked"] is False
    assert alice["recovery_codes_left"] == 10
    assert "secret" not in alice and "pending_secret" not in alice

    one = twofa_api(hub, "GET", "alice")
    assert one.status_code == 200 and one.json()["name"] == "alice"
    assert twofa_api(hub, "GET", "nobody").status_code == 404

    for token in (hub.user_token, ""):  # a non-admin service's token, and no token
        assert twofa_api(hub, "GET", token=token).status_code == 403
        assert twofa_api(hub, "GET", "alice", token=token).status_code == 403
        assert twofa_api(hub, "DELETE", "alice", token=token).status_code == 403
        assert twofa_api(hub, "POST", "alice/unlock", token=token).status_code == 403
    assert twofa_api(hub, "GET", "alice").json()["enrolled"] is True


def test_reset_ends_the_hub_session_keeps_the_server_and_allows_a_new_device(hub: Hub) -> None:
    device = enrolled_device(hub.new_browser(), "bob", PASSWORD)
    browser = hub.new_browser()
    assert browser.login("bob", PASSWORD, device.next_code()).status_code == 302
    hub.start_server("bob")
    assert browser.open_server("bob").status_code == 200
    assert browser.get("/user/bob/api/status").status_code == 200

    reset = twofa_api(hub, "DELETE", "bob")
    assert reset.status_code == 204, reset.text
    assert twofa_api(hub, "GET", "bob").json()["enrolled"] is False
    assert twofa_api(hub, "DELETE", "nobody").status_code == 404

    # The browser's hub session is over ...
    home = browser.get("/hub/home")
    assert home.status_code == 302
    assert urlsplit(home.headers["Location"]).path == "/hub/login"
    # ... while the single-user server keeps running and answering through the proxy.
    model = hub.api("GET", "users/bob").json()
    assert model["servers"][""]["ready"] is True
    assert hub.new_browser().get("/user/bob/api").status_code == 200

    # The old device no longer logs in; the password alone points to the enrollment page.
    refused = hub.new_browser().login("bob", PASSWORD, device.code_at(totp_step()))
    assert refused.status_code == 403
    assert "/hub/2fa/enroll" in (login_error(refused) or "")

    new_device = enrolled_device(hub.new_browser(), "bob", PASSWORD)
    assert new_device.secret != device.secret
    again = hub.new_browser()
    response = again.login("bob", PASSWORD, new_device.next_code())
    assert response.status_code == 302, login_error(response)
    assert again.logged_in()


def test_unlock_lifts_a_lock_out(hub: Hub) -> None:
    device = enrolled_device(hub.new_browser(), "carol", PASSWORD)
    browser = hub.new_browser()
    for _ in range(3):
        assert browser.login("carol", PASSWORD, device.wrong_code()).status_code == 403
    code = device.next_code()
    locked = browser.login("carol", PASSWORD, code)
    assert locked.status_code == 403
    assert HELP_TEXT in (login_error(locked) or "")
    model = twofa_api(hub, "GET", "carol").json()
    assert model["locked"] is True and model["failures"] == 3

    assert twofa_api(hub, "POST", "carol/unlock", token=hub.user_token).status_code == 403
    assert twofa_api(hub, "POST", "nobody/unlock").status_code == 404
    unlocked = twofa_api(hub, "POST", "carol/unlock")
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["locked"] is False and unlocked.json()["failures"] == 0

    # The code refused while locked was never evaluated, so it was not spent: it works now.
    response = browser.login("carol", PASSWORD, code)
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()


def test_the_cli_lists_and_resets_the_hubs_users_with_its_config(hub: Hub) -> None:
    device = enrolled_device(hub.new_browser(), "dave", PASSWORD)
    listed = hub_cli(hub, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows["dave"][1] == "yes"  # LINKED

    status = hub_cli(hub, "status", "dave")
    assert status.returncode == 0, status.stderr
    assert "linked since" in status.stdout
    assert "failed attempts:     0 of 3" in status.stdout  # the hub's lockout_threshold

    reset = hub_cli(hub, "reset", "dave")
    assert reset.returncode == 0, reset.stderr
    assert "Reset dave" in reset.stdout
    assert twofa_api(hub, "GET", "dave").json()["enrolled"] is False
    refused = hub.new_browser().login("dave", PASSWORD, device.code_at(totp_step()))
    assert refused.status_code == 403
    assert "/hub/2fa/enroll" in (login_error(refused) or "")
    assert hub_cli(hub, "reset", "nobody").returncode == 1


def test_deleting_a_hub_user_unlinks_their_device(hub: Hub) -> None:
    device = enrolled_device(hub.new_browser(), "erin", PASSWORD)
    assert hub.new_browser().login("erin", PASSWORD, device.next_code()).status_code == 302
    deleted = hub.api("DELETE", "users/erin")
    assert deleted.status_code == 204, deleted.text
    assert twofa_api(hub, "GET", "erin").json()["enrolled"] is False


def test_an_admin_of_some_users_acts_on_those_only(hub: Hub) -> None:
    """A scope filtered to a group (admin:users!group=staff) reaches its members, never the list of everyone or
    anyone else (JupyterHub 5.x let such a scope through needs_scope unfiltered; the page: test_hub_admin_page)."""
    for user in ("frank", "grace"):
        enrolled_device(hub.new_browser(), user, PASSWORD)
    token = GROUP_ADMIN_TOKEN

    assert twofa_api(hub, "GET", token=token).status_code == 403
    assert twofa_api(hub, "GET", "frank", token=token).status_code == 200
    assert twofa_api(hub, "GET", "grace", token=token).status_code in (403, 404)
    assert twofa_api(hub, "DELETE", "grace", token=token).status_code in (403, 404)
    assert twofa_api(hub, "GET", "grace").json()["enrolled"] is True
    assert twofa_api(hub, "DELETE", "frank", token=token).status_code == 204
    assert twofa_api(hub, "GET", "frank").json()["enrolled"] is False


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        pytest.param({"admin:users": Scope.ALL}, True, id="every-user"),
        pytest.param({"admin:users": {"group": {"staff"}}}, False, id="a-group"),
        pytest.param({"admin:users": {"user": {"frank"}}}, False, id="one-user"),
        pytest.param({"read:users": Scope.ALL}, False, id="another-scope"),
    ],
)
def test_a_filtered_scope_is_not_every_user(scopes: dict[str, object], allowed: bool) -> None:
    """The guard the list and the page call, in-process, with the parsed scopes a JupyterHub 5.x needs_scope
    would have let through (the suite's JupyterHub 6 already refuses them before it)."""
    handler = SimpleNamespace(parsed_scopes=scopes)
    if allowed:
        AdminHandler.require_every_user(handler)  # type: ignore[arg-type]
    else:
        with pytest.raises(web.HTTPError) as refused:
            AdminHandler.require_every_user(handler)  # type: ignore[arg-type]
        assert refused.value.status_code == 403


# -- the list a page at a time (?offset=&limit=, as JupyterHub's GET /hub/api/users) ---------------------------------

PAGINATION = "application/jupyterhub-pagination+json"  # JupyterHub's media type for its envelope
PAGED_NAMES = ["amy", "ben", "cat", "dan", "eve", "fay", "gus"]
PAGED_CONFIG = (
    CONFIG
    + """
c.JupyterHub.api_page_default_limit = 2
c.JupyterHub.api_page_max_limit = 5
"""
)


@pytest.fixture(scope="module")
def paged_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub whose store holds exactly the 7 accounts of PAGED_NAMES, with small page settings of its own."""
    with module_hub(tmp_path_factory, PAGED_CONFIG) as started:
        with hub_store(started) as store:
            for name in PAGED_NAMES:
                store.ensure_account(name)
        yield started


def listing(hub: Hub, query: str, paginated: bool = True, token: str | None = None) -> requests.Response:
    """``GET /hub/2fa/api/users?<query>`` (sent as written), accepting JupyterHub's envelope when ``paginated``."""
    headers = {"Authorization": f"token {hub.admin_token if token is None else token}"}
    if paginated:
        headers["Accept"] = PAGINATION
    return requests.get(f"{hub.url}/hub/2fa/api/users?{query}", headers=headers, timeout=30, allow_redirects=False)


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


@pytest.mark.parametrize(
    ("query", "offset", "limit", "listed", "next_offset"),
    [
        pytest.param("offset=0&limit=3", 0, 3, ["amy", "ben", "cat"], 3, id="first-page"),
        pytest.param("offset=3&limit=3", 3, 3, ["dan", "eve", "fay"], 6, id="second-page"),
        pytest.param("offset=6&limit=3", 6, 3, ["gus"], None, id="last-page"),
        pytest.param("offset=7&limit=3", 7, 3, [], None, id="past-the-end"),
        pytest.param("limit=3", 0, 3, ["amy", "ben", "cat"], 3, id="offset-defaults-to-0"),
        pytest.param("", 0, 2, ["amy", "ben"], 2, id="limit-defaults-to-api_page_default_limit"),
        pytest.param("limit=100", 0, 5, PAGED_NAMES[:5], 5, id="limit-lowered-to-api_page_max_limit"),
        pytest.param("offset=4&limit=5", 4, 5, ["eve", "fay", "gus"], None, id="largest-page-to-the-end"),
    ],
)
def test_the_list_pages_like_jupyterhubs_own(
    paged_hub: Hub, query: str, offset: int, limit: int, listed: list[str], next_offset: int | None
) -> None:
    response = listing(paged_hub, query)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == PAGINATION
    envelope = response.json()
    assert set(envelope) == {"items", "_pagination"}
    assert names(envelope["items"]) == listed
    pagination = envelope["_pagination"]
    assert set(pagination) == {"offset", "limit", "total", "next"}
    assert (pagination["offset"], pagination["limit"], pagination["total"]) == (offset, limit, len(PAGED_NAMES))
    if next_offset is None:
        assert pagination["next"] is None
        return
    following = pagination["next"]
    assert set(following) == {"offset", "limit", "url"}
    assert (following["offset"], following["limit"]) == (next_offset, limit)
    url = urlsplit(following["url"])
    assert url.path == "/hub/2fa/api/users"
    assert parse_qs(url.query) == {"offset": [str(next_offset)], "limit": [str(limit)]}
    then = requests.get(
        following["url"], headers={"Authorization": f"token {paged_hub.admin_token}", "Accept": PAGINATION}, timeout=30
    )
    assert then.status_code == 200 and then.json()["_pagination"]["offset"] == next_offset


def test_following_next_walks_every_account_once(paged_hub: Hub) -> None:
    seen, url, pages = [], f"{paged_hub.url}/hub/2fa/api/users?limit=3", 0
    headers = {"Authorization": f"token {paged_hub.admin_token}", "Accept": PAGINATION}
    while url:
        page = requests.get(url, headers=headers, timeout=30).json()
        seen += names(page["items"])
        pages += 1
        url = (page["_pagination"]["next"] or {}).get("url")
    assert (seen, pages) == (PAGED_NAMES, 3)


def test_the_envelope_has_the_keys_of_jupyterhubs_own(paged_hub: Hub) -> None:
    """Compared with JupyterHub's own ``GET /hub/api/users`` on the same hub, so a client reads both alike."""
    paged_hub.api("POST", "users", json={"usernames": ["amy", "ben"]})  # 201, or 409 when they exist already
    theirs = paged_hub.api("GET", "users?offset=0&limit=1", headers={"Accept": PAGINATION}).json()
    ours = listing(paged_hub, "offset=0&limit=1").json()
    assert set(ours) == set(theirs)
    assert set(ours["_pagination"]) == set(theirs["_pagination"])
    assert set(ours["_pagination"]["next"]) == set(theirs["_pagination"]["next"])
    assert {k: v for k, v in ours["_pagination"]["next"].items() if k != "url"} == {"offset": 1, "limit": 1}


@pytest.mark.parametrize(
    ("query", "listed", "warned"),
    [
        pytest.param("", PAGED_NAMES[:5], True, id="first-page-of-api_page_max_limit"),
        pytest.param("limit=3", ["amy", "ben", "cat"], False, id="limit"),  # a client that pages itself
        pytest.param("offset=3&limit=3", ["dan", "eve", "fay"], False, id="offset-and-limit"),
        pytest.param("offset=6&limit=100", ["gus"], False, id="last-page"),
        pytest.param("offset=70", [], False, id="past-the-end"),
    ],
)
def test_without_the_pagination_media_type_the_page_is_a_plain_array(
    paged_hub: Hub, query: str, listed: list[str], warned: bool
) -> None:
    """What clients written before paging expect (a JSON array), holding one page: without ``limit`` the first
    ``api_page_max_limit`` accounts, as JupyterHub's own list answers a client that does not ask for pages. A
    full first page without a limit is logged as a warning: such a client may be missing accounts."""
    warning = "2FA account list without pagination: answered with the first"
    before = paged_hub.log_text().count(warning)
    response = listing(paged_hub, query, paginated=False)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.json(), list)
    assert names(response.json()) == listed
    assert paged_hub.log_text().count(warning) == before + warned


BAD_PAGE_QUERIES = [
    pytest.param("offset=-1", id="negative-offset"),
    pytest.param("limit=-3", id="negative-limit"),
    pytest.param("limit=0", id="limit-0"),
    pytest.param("offset=abc", id="offset-not-a-number"),
    pytest.param("limit=1.5", id="limit-fraction"),
    pytest.param("limit=1e3", id="limit-exponent"),
    pytest.param("offset=0x10", id="offset-hex"),
    pytest.param("offset=", id="offset-empty"),
    pytest.param("limit=%203", id="limit-space"),
    pytest.param("limit=%2B3", id="limit-plus-sign"),
    pytest.param("offset=1%00", id="offset-nul"),
    pytest.param("offset=%EF%BC%91", id="offset-full-width-digit"),
    pytest.param("offset=%D9%A3", id="offset-arabic-indic-digit"),
    pytest.param("offset=%FF", id="offset-not-utf8"),
    pytest.param("offset=9223372036854775808", id="offset-past-64-bit"),
    pytest.param("limit=9223372036854775808", id="limit-past-64-bit"),
    pytest.param("offset=" + "9" * 5000, id="offset-5000-digits"),
    pytest.param("offset=1&offset=2", id="offset-twice"),
]


@pytest.mark.parametrize("paginated", [True, False], ids=["envelope", "plain"])
@pytest.mark.parametrize("query", BAD_PAGE_QUERIES)
def test_a_bad_offset_or_limit_is_a_clear_400(paged_hub: Hub, query: str, paginated: bool) -> None:
    before = paged_hub.log_text().count("Traceback")
    response = listing(paged_hub, query, paginated=paginated)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["status"] == 400
    assert query.split("=")[0] in error["message"]  # the message names the argument to fix
    assert paged_hub.log_text().count("Traceback") == before


@pytest.mark.parametrize(
    ("token", "query"),
    [
        pytest.param(GROUP_ADMIN_TOKEN, "offset=0&limit=3", id="admin-of-a-group"),
        pytest.param(GROUP_ADMIN_TOKEN, "offset=-1", id="admin-of-a-group-bad-offset"),
        pytest.param("user", "limit=3", id="not-an-admin"),
        pytest.param("", "limit=3", id="no-token"),
    ],
)
@pytest.mark.parametrize("paginated", [True, False], ids=["envelope", "plain"])
def test_a_page_of_the_list_still_needs_admin_users_over_everyone(
    paged_hub: Hub, token: str, query: str, paginated: bool
) -> None:
    """A scope filtered to a group is refused before the page is read or its arguments judged."""
    sent = paged_hub.user_token if token == "user" else token
    headers = {"Authorization": f"token {sent}"} if sent else {}
    if paginated:
        headers["Accept"] = PAGINATION
    response = requests.get(f"{paged_hub.url}/hub/2fa/api/users?{query}", headers=headers, timeout=30)
    assert response.status_code == 403, response.text
    assert "amy" not in response.text
