"""Choosing the store: `--db-url` (SQLite elsewhere, PostgreSQL) and `c.TwoFactorConfig.db_url` in a config file."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from helpers.cli import CLI, data_dir


def test_db_url_option_selects_the_store(cli: CLI, store_url: str) -> None:
    """Against a fresh SQLite file outside the data dir, and a fresh PostgreSQL database."""
    enrolled = cli.enroll("alice", "--db-url", store_url)
    assert len(enrolled.recovery_codes) == 10

    status = cli("status", "alice", f"--db-url={store_url}")
    assert status.returncode == 0, str(status)
    assert status.field("second factor").startswith("linked")
    assert status.field("recovery codes left") == "10"

    listed = cli("list", "--db-url", store_url)
    assert listed.returncode == 0, str(listed)
    assert listed.stdout.splitlines()[1].split()[:2] == ["alice", "yes"]

    assert not (data_dir() / "store.sqlite").exists(), "the default store must not be created"
    assert (data_dir() / "secret.key").exists()  # the key still lives in the data dir
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        store = Path(url.database)
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    # The password of a PostgreSQL URL is never echoed.
    for result in (enrolled.result, status, listed):
        if url.password:
            assert str(url.password) not in result.stdout + result.stderr

    # Without the option, the (separate, empty) default store answers.
    default = cli("status", "alice")
    assert default.field("second factor") == "not linked"


def test_unreachable_postgres_fails_cleanly_without_leaking_the_password(cli: CLI, postgres_url: str) -> None:
    wrong = make_url(postgres_url).set(password="wrong-password-Zq8x").render_as_string(hide_password=False)
    result = cli("status", "alice", "--db-url", wrong)
    assert result.returncode == 1, str(result)
    assert "cannot be used" in result.stderr
    assert "wrong-password-Zq8x" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_config_file_db_url_is_honoured(cli: CLI, tmp_path: Path) -> None:
    store = tmp_path / "configured" / "store.sqlite"
    config = tmp_path / "site" / "jupyter_server_config.py"
    config.parent.mkdir()
    config.write_text(f"c.TwoFactorConfig.db_url = {f'sqlite:///{store}'!r}\n")

    cli.enroll("alice", "--config", str(config))
    status = cli("status", "alice", f"--config={config}")
    assert status.returncode == 0, str(status)
    assert status.field("second factor").startswith("linked")
    assert store.is_file()
    assert not (data_dir() / "store.sqlite").exists()

    # The same file in JUPYTER_CONFIG_DIR is found without --config, as the server finds it.
    config_dir = Path(cli.env()["JUPYTER_CONFIG_DIR"])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.py").write_text(config.read_text())
    found = cli("status", "alice")
    assert found.field("second factor").startswith("linked")
    assert not (data_dir() / "store.sqlite").exists()


def test_a_missing_config_file_is_an_error_not_the_default_store(cli: CLI, tmp_path: Path) -> None:
    """An admin who mistypes --config must not silently get (and create) the default store instead.

    BUG: jupyter_core's JupyterApp.load_config_file ignores a missing --config file (debug log only), so the
    command runs against the default store: here `status` reports "not linked" and creates a store and key.
    """
    missing = tmp_path / "no-such-dir" / "jupyter_server_config.py"
    result = cli("status", "alice", f"--config={missing}")
    assert result.returncode != 0, str(result)
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (data_dir() / "store.sqlite").exists()
