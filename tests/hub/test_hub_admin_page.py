"""The hub's 2FA admin page: linked from the nav bar for admins, lists accounts, resets and unlocks."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pyotp
import pytest
import requests

from helpers.hub import Hub, HubBrowser, HubFactory, hub_store

PASSWORD = "a shared password for the hub tests"
CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "dummy"  # shared-password wants a second password for admins
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"boss"}}
# lead may administer the members of one group only (JupyterHub's filtered scopes)
c.JupyterHub.load_groups = {{"staff": {{"users": ["frank"]}}}}
c.JupyterHub.load_roles.append({{"name": "staff-lead", "scopes": ["admin:users!group=staff"], "users": ["lead"]}})
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    factory = HubFactory(lambda: tmp_path_factory.mktemp("hub"))
    try:
        yield factory(CONFIG)
    finally:
        factory.close()


def enroll(hub: Hub, name: str) -> pyotp.TOTP:
    """Link a device through the user API (Basic credentials) and return the app's TOTP."""
    started = requests.post(
        f"{hub.url}/hub/2fa/api/enrollment", json={"password": PASSWORD}, auth=(name, PASSWORD), timeout=30
    )
    assert started.status_code == 201, started.text
    totp = pyotp.parse_uri(started.json()["otpauth_uri"])
    confirmed = requests.post(
        f"{hub.url}/hub/2fa/api/enrollment/confirm", json={"code": totp.now()}, auth=(name, PASSWORD), timeout=30
    )
    assert confirmed.status_code == 200, confirmed.text
    return totp


def logged_in(hub: Hub, name: str, totp: pyotp.TOTP, later: int = 30) -> HubBrowser:
    browser = hub.new_browser()
    assert browser.login(name, PASSWORD, otp=totp.at(time.time() + later)).status_code == 302
    return browser


def test_admins_see_the_link_list_accounts_and_reset(hub: Hub) -> None:
    boss, erin = enroll(hub, "boss"), enroll(hub, "erin")
    admin = logged_in(hub, "boss", boss)
    home = admin.get("/hub/home")
    assert home.status_code == 200 and 'href="/hub/2fa/admin"' in home.text
    page = admin.get("/hub/2fa/admin")
    assert page.status_code == 200, page.text
    assert "erin" in page.text and "boss" in page.text
    assert page.headers.get("Content-Type", "").startswith("text/html")

    user = logged_in(hub, "erin", erin)
    assert user.get("/hub/home").status_code == 200
    assert 'href="/hub/2fa/admin"' not in user.get("/hub/home").text
    assert user.get("/hub/2fa/admin").status_code == 403

    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf is not None
    reset = admin.post("/hub/2fa/admin", {"action": "reset", "name": "erin"})
    assert reset.status_code == 200, reset.text
    assert "Reset erin" in reset.text
    assert user.get("/hub/home").status_code == 302  # her session ended
    status = requests.get(f"{hub.url}/hub/2fa/api/status", auth=("erin", PASSWORD), timeout=30)
    assert status.json()["enrolled"] is False


def test_an_admin_of_some_users_cannot_use_the_page(hub: Hub) -> None:
    """The page lists and acts on everyone: a scope filtered to a group is not enough to see or post it."""
    lead = enroll(hub, "lead")
    enroll(hub, "grace")
    browser = logged_in(hub, "lead", lead)
    assert browser.get("/hub/2fa/admin").status_code == 403
    assert browser.post("/hub/2fa/admin", {"action": "reset", "name": "grace"}).status_code == 403
    status = requests.get(f"{hub.url}/hub/2fa/api/status", auth=("grace", PASSWORD), timeout=30)
    assert status.json()["enrolled"] is True


# -- one page of accounts at a time (?offset=&limit=) ----------------------------------------------------------------

STORED_ONLY = ["amy", "cat", "dan", "eve", "gus"]  # accounts with no device, written straight into the store


@pytest.fixture(scope="module")
def paged_hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A hub whose store holds exactly 7 accounts: amy boss cat dan eve gus lead (boss and lead log in)."""
    factory = HubFactory(lambda: tmp_path_factory.mktemp("paged-hub"))
    try:
        started = factory(CONFIG)
        with hub_store(started) as store:
            for name in STORED_ONLY:
                store.ensure_account(name)
        yield started
    finally:
        factory.close()


@pytest.fixture(scope="module")
def paged_devices(paged_hub: Hub) -> dict[str, pyotp.TOTP]:
    """boss and lead link their devices (and so have accounts) before any page is looked at."""
    return {name: enroll(paged_hub, name) for name in ("boss", "lead")}


@pytest.fixture(scope="module")
def paged_admin(paged_hub: Hub, paged_devices: dict[str, pyotp.TOTP]) -> HubBrowser:
    return logged_in(paged_hub, "boss", paged_devices["boss"])


@pytest.fixture(scope="module")
def paged_lead(paged_hub: Hub, paged_devices: dict[str, pyotp.TOTP]) -> HubBrowser:
    return logged_in(paged_hub, "lead", paged_devices["lead"])


def shown(page: requests.Response) -> dict[str, Any]:
    """What one admin page shows: the range line, the accounts' names, the Previous/Next links, the forms' action
    (attribute values unescaped, as a browser reads them)."""
    range_line = re.search(r'<p id="accounts_range">(.*?)</p>', page.text, re.DOTALL)
    assert range_line is not None, page.text[-2000:]

    def link(rel: str) -> str | None:
        found = re.search(rf'<a class="page-link" rel="{rel}" href="([^"]+)">', page.text)
        return html.unescape(found.group(1)) if found else None

    return {
        "range": html.unescape(" ".join(range_line.group(1).split())),
        "names": re.findall(r"<tr>\s*<td>([^<]+)</td>", page.text),
        "previous": link("prev"),
        "next": link("next"),
        "actions": {html.unescape(action) for action in re.findall(r'<form method="post" action="([^"]+)"', page.text)},
    }


PAGES = [
    # query, range line, names, Previous, Next, the forms' action
    pytest.param(
        "?limit=3",
        "Accounts 1\N{EN DASH}3 of 7.",
        ["amy", "boss", "cat"],
        None,
        "/hub/2fa/admin?offset=3&limit=3",
        "/hub/2fa/admin?offset=0&limit=3",
        id="first-page",
    ),
    pytest.param(
        "?offset=3&limit=3",
        "Accounts 4\N{EN DASH}6 of 7.",
        ["dan", "eve", "gus"],
        "/hub/2fa/admin?offset=0&limit=3",
        "/hub/2fa/admin?offset=6&limit=3",
        "/hub/2fa/admin?offset=3&limit=3",
        id="second-page",
    ),
    pytest.param(
        "?offset=6&limit=3",
        "Account 7 of 7.",
        ["lead"],
        "/hub/2fa/admin?offset=3&limit=3",
        None,
        "/hub/2fa/admin?offset=6&limit=3",
        id="last-page",
    ),
    pytest.param(
        "?offset=9&limit=3",
        "No accounts on this page: there are 7.",
        [],
        "/hub/2fa/admin?offset=4&limit=3",
        None,
        "/hub/2fa/admin?offset=9&limit=3",
        id="past-the-end-links-back-to-the-last-accounts",
    ),
    pytest.param(
        "?offset=1&limit=3",
        "Accounts 2\N{EN DASH}4 of 7.",
        ["boss", "cat", "dan"],
        "/hub/2fa/admin?offset=0&limit=3",
        "/hub/2fa/admin?offset=4&limit=3",
        "/hub/2fa/admin?offset=1&limit=3",
        id="unaligned-offset",
    ),
    pytest.param(
        "",
        "Accounts 1\N{EN DASH}7 of 7.",
        ["amy", "boss", "cat", "dan", "eve", "gus", "lead"],
        None,
        None,
        "/hub/2fa/admin?offset=0&limit=100",
        id="default-100-a-page",
    ),
]


@pytest.mark.parametrize(("query", "range_line", "listed", "previous", "following", "this_page"), PAGES)
def test_the_page_shows_one_page_of_accounts_with_previous_and_next(
    paged_hub: Hub,
    paged_admin: HubBrowser,
    query: str,
    range_line: str,
    listed: list[str],
    previous: str | None,
    following: str | None,
    this_page: str,
) -> None:
    page = paged_admin.get(f"/hub/2fa/admin{query}")
    assert page.status_code == 200, page.text
    seen = shown(page)
    assert (seen["range"], seen["names"], seen["previous"], seen["next"]) == (range_line, listed, previous, following)
    if previous or following:
        assert '<nav aria-label="Pages of accounts">' in page.text
    else:
        assert "Pages of accounts" not in page.text
    assert '<html lang="' in page.text
    # Every Reset and Unlock posts back to this page, with its offset and limit spelt out.
    assert seen["actions"] == ({this_page} if listed else set())


def test_an_action_on_a_later_page_shows_that_page_again(paged_hub: Hub, paged_admin: HubBrowser) -> None:
    page = paged_admin.get("/hub/2fa/admin?offset=3&limit=3")
    (action,) = shown(page)["actions"]
    assert action == "/hub/2fa/admin?offset=3&limit=3"
    unlocked = paged_admin.post(action, {"action": "unlock", "name": "eve"})
    assert unlocked.status_code == 200, unlocked.text
    assert "Unlocked eve." in unlocked.text
    seen = shown(unlocked)
    assert seen["range"] == "Accounts 4\N{EN DASH}6 of 7."
    assert (seen["names"], seen["actions"]) == (["dan", "eve", "gus"], {action})


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("?offset=-1", id="negative-offset"),
        pytest.param("?limit=0", id="limit-0"),
        pytest.param("?limit=abc", id="limit-not-a-number"),
        pytest.param("?offset=%EF%BC%91", id="offset-full-width-digit"),
        pytest.param("?offset=9223372036854775808", id="offset-past-64-bit"),
        pytest.param("?offset=1&offset=2", id="offset-twice"),
    ],
)
def test_a_bad_page_address_is_a_400_and_changes_nothing(paged_hub: Hub, paged_admin: HubBrowser, query: str) -> None:
    assert paged_admin.get(f"/hub/2fa/admin{query}").status_code == 400
    refused = paged_admin.post(f"/hub/2fa/admin{query}", {"action": "reset", "name": "boss"})
    assert refused.status_code == 400
    status = requests.get(f"{paged_hub.url}/hub/2fa/api/status", auth=("boss", PASSWORD), timeout=30)
    assert status.json()["enrolled"] is True
    assert "Traceback" not in paged_hub.log_text()


@pytest.mark.parametrize("query", ["?offset=3&limit=3", "?offset=-1"], ids=["a-page", "a-bad-page"])
def test_an_admin_of_some_users_cannot_page_through_everyone(
    paged_hub: Hub, paged_lead: HubBrowser, query: str
) -> None:
    assert paged_lead.get(f"/hub/2fa/admin{query}").status_code == 403
    refused = paged_lead.post(f"/hub/2fa/admin{query}", {"action": "unlock", "name": "amy"})
    assert refused.status_code == 403
