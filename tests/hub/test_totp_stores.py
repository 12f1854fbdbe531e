"""Where the hub keeps 2FA state: PostgreSQL (and the replay guard across a hub restart), and keys derived from
``JUPYTERHUB_CRYPT_KEY`` instead of a key file."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from helpers.core import held_exclusively
from helpers.hub import HubFactory, enroll_on_page, enrolled_device, login_error, stop_hub, twofa_log_lines

PASSWORD = "correct horse battery staple"
LOCK_WAIT_SECONDS = 3  # the store's busy timeout in the lock test (its URL's ?timeout=)

CONFIG = f"""
c.JupyterHub.authenticator_class = "jupyter_2fa.hub.TOTPAuthenticator"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allow_all = True
"""


def account_rows(url: str) -> dict[str, tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT username, secret, last_step, activated_at FROM jupyter_2fa_accounts")
            ).all()
    finally:
        engine.dispose()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_the_hub_store_on_postgresql_keeps_the_replay_guard_across_a_restart(
    hub_factory: HubFactory, postgres_url: str
) -> None:
    config = CONFIG + f"c.TwoFactorConfig.db_url = {postgres_url!r}\n"
    # The keys in the environment, so a second hub (in a new folder) reads the same secrets.
    env = {"JUPYTER_2FA_KEYS": Fernet.generate_key().decode()}
    hub = hub_factory(config, env=env)
    page = enroll_on_page(hub.new_browser(), "alice", PASSWORD)
    assert page.confirm is not None and page.confirm.status_code == 200 and page.device is not None
    device = page.device
    used = device.next_code()
    assert hub.new_browser().login("alice", PASSWORD, used).status_code == 302

    rows = account_rows(postgres_url)
    assert set(rows) == {"alice"}
    secret, last_step, activated_at = rows["alice"]
    assert isinstance(secret, str) and device.secret not in secret  # stored encrypted
    assert last_step == device.last_step
    assert activated_at is not None
    assert not (hub.directory / "jupyter_2fa.sqlite").exists()

    stop_hub(hub_factory, hub)
    again = hub_factory(config, env=env)
    browser = again.new_browser()
    replayed = browser.login("alice", PASSWORD, used)
    assert replayed.status_code == 403
    assert login_error(replayed) == "Invalid username or password"
    assert any(line.endswith(": replayed-code") for line in twofa_log_lines(again, "alice")), again.log_tail()
    # The new hub reads the same store (secrets and recovery codes): a recovery code logs in.
    response = browser.login("alice", PASSWORD, page.recovery_codes[0])
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()


def test_keys_derived_from_the_hubs_crypt_key_need_no_key_file(hub_factory: HubFactory) -> None:
    hub = hub_factory(CONFIG, env={"JUPYTERHUB_CRYPT_KEY": secrets.token_bytes(32).hex()})
    device = enrolled_device(hub.new_browser(), "bob", PASSWORD)
    browser = hub.new_browser()
    response = browser.login("bob", PASSWORD, device.next_code())
    assert response.status_code == 302, login_error(response)
    assert browser.logged_in()

    assert (hub.directory / "jupyter_2fa.sqlite").exists()
    assert not (hub.directory / "jupyter_2fa.key").exists()
    assert not list(hub.directory.rglob("*.key"))


def test_the_hub_keeps_answering_while_a_login_waits_on_the_store(hub_factory: HubFactory, tmp_path: Path) -> None:
    """Store calls run in the authenticator's worker threads, never on the hub's event loop: while a login
    waits out another process's lock on the SQLite store, the hub still answers ``/hub/health``. Were the store
    called on the loop, the health check would wait for the login to end (503, after the store's timeout)."""
    store = tmp_path / "2fa" / "store.sqlite"
    hub = hub_factory(CONFIG + f"c.TwoFactorConfig.db_url = 'sqlite:///{store}?timeout={LOCK_WAIT_SECONDS}'\n")
    device = enrolled_device(hub.new_browser(), "carol", PASSWORD)
    browser = hub.new_browser()
    browser.ensure_xsrf()
    with held_exclusively(store), ThreadPoolExecutor(max_workers=1) as pool:
        login = pool.submit(browser.login, "carol", PASSWORD, device.next_code())
        time.sleep(0.5)  # the login is in the store's wait now
        assert hub.answers("/hub/health")
        assert not login.done(), "the login ended before the hub answered the health check"
        assert login.result(timeout=LOCK_WAIT_SECONDS + 30).status_code == 503
