"""Every configuration snippet the guides mark runnable is run: a real server or hub starts with it, and a user
logs in with password + code.

A snippet is marked with a class on a MyST ``code-block`` directive:

- ``runnable-server``: a jupyter_server_config.py snippet. The reader ran `jupyter 2fa enable` (the
  single-server guide's first step) and has a password; the test adds only that password (a prelude before the
  snippet), writes the file into a fresh Jupyter config folder, starts `jupyter server`, links a device through
  the server's JSON API and logs in on the login form.
- ``runnable-hub``: a jupyterhub_config.py snippet. The test's hub (``tests/helpers/hub.py``: ports, proxy,
  spawner) comes first; a snippet that does not choose the authenticators itself is added to the hub guide's
  starting point, with a shared password as the inner authenticator (the test's prelude); a snippet that keeps
  PAM logs in as a real Unix account. The device is linked on the hub's enrollment page, then the user logs in
  on the hub's login form.
- ``runnable-z2jh``: zero-to-jupyterhub Helm values (YAML). The test does what the chart's hub does with them:
  ``hub.config`` goes into the traitlets config section by section, ``hub.extraEnv`` into the hub's environment
  (``secretKeyRef`` values from the test's own secret: a fresh PostgreSQL database and a crypt key),
  ``hub.extraConfig`` runs after that, in the order of its keys. As a site layers its own values file over the
  guide's (``helm upgrade -f values.yaml -f site.yaml``), the test layers one that points the LDAP authenticator
  at its own slapd; then a directory user links a device and logs in.

Environment variables a snippet reads (``os.environ["JUPYTER_2FA_DB_URL"]``, ``JUPYTERHUB_CRYPT_KEY``) are set by
the test, as a reader's deployment sets them. Nothing of a snippet is changed: the test only adds before it
(a prelude) or, for Helm values, over it (a second values file, as Helm layers them).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from helpers.hub import HubFactory, enrolled_device, login_error
from helpers.ldap import LDAP_USERS, LdapServer
from helpers.widgets import PASSWORD, enroll_over_api

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
GUIDES = ("researcher.md", "single-server.md", "hub-admin.md")
SERVER, HUB, Z2JH = "runnable-server", "runnable-hub", "runnable-z2jh"
RUNNABLE = (SERVER, HUB, Z2JH)
LANGUAGE = {SERVER: "python", HUB: "python", Z2JH: "yaml"}
# Lines that configure traitlets (c.Section.trait = …): a block holding one is a configuration snippet.
CONFIG_LINE = re.compile(r"^\s*c\.[A-Za-z_]\w*\.[A-Za-z_]\w*\s*(?:=|\.)", re.MULTILINE)
OPTION_LINE = re.compile(r"^:(?P<name>[\w-]+):\s*(?P<value>.*)$")

HUB_USER = "alice"
# The test's prelude of a hub snippet that adds to the guide's starting point: that starting point, with a shared
# password in place of PAM (whose users are real Unix accounts).
HUB_PRELUDE = f"""
# test-only prelude: the hub guide's starting point, with a shared password as the inner authenticator
c.JupyterHub.authenticator_class = "totp"
c.TOTPAuthenticator.inner_authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}
c.Authenticator.allowed_users = {{{HUB_USER!r}}}
"""
CHOOSES_AUTHENTICATOR = re.compile(r"^c\.(?:JupyterHub\.authenticator_class|TOTPAuthenticator\.inner_)", re.MULTILINE)
AUDIT_LOG_FILE = re.compile(r"""^c\.TwoFactorConfig\.audit_log_file\s*=\s*["'](?P<path>[^"']+)["']""", re.MULTILINE)
USES_PAM = re.compile(r"""^c\.TOTPAuthenticator\.inner_authenticator_class\s*=\s*["']pam["']""", re.MULTILINE)


@dataclass(frozen=True)
class CodeBlock:
    guide: str
    line: int  # 1-based line of the opening fence
    section: str  # the heading above it, as MyST's anchor slug ("postgresql")
    language: str
    classes: tuple[str, ...]
    code: str

    @property
    def runnable(self) -> str | None:
        return next((name for name in self.classes if name in RUNNABLE), None)


def slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def code_blocks(guide: str) -> list[CodeBlock]:
    """The fenced blocks of ``docs/<guide>`` as MyST reads them: ```` ```{code-block} LANG ```` with its
    ``:option: value`` lines, and plain ```` ```LANG ```` fences (which have no options)."""
    path = DOCS / guide
    if not path.exists():
        return []
    blocks = []
    section = ""
    tokens = MarkdownIt("commonmark").parse(path.read_text())
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            section = slug(tokens[index + 1].content)
        if token.type != "fence" or token.map is None:
            continue
        words = token.info.split()
        directive = words[0] if words else ""
        options: dict[str, str] = {}
        lines = token.content.splitlines()
        if directive in {"{code-block}", "{code}", "{sourcecode}"}:
            language = words[1] if len(words) > 1 else ""
            while lines and (match := OPTION_LINE.match(lines[0])):
                options[match["name"]] = match["value"].strip()
                lines.pop(0)
        elif directive.startswith("{"):
            continue  # another directive ({literalinclude}, {note}, …)
        else:
            language = directive
        classes = tuple(options.get("class", "").split())
        code = "\n".join(lines).strip("\n") + "\n"
        blocks.append(CodeBlock(guide, token.map[0] + 1, section, language, classes, code))
    return blocks


def with_ids(blocks: list[CodeBlock]) -> list[Any]:
    """``pytest.param`` s named after the guide and section ("hub-admin:postgresql"), numbered within a section."""
    params, seen = [], dict[str, int]()
    for block in blocks:
        name = f"{block.guide.removesuffix('.md')}:{block.section}"
        seen[name] = seen.get(name, 0) + 1
        params.append(pytest.param(block, id=name if seen[name] == 1 else f"{name}-{seen[name]}"))
    return params


ALL_BLOCKS = [block for guide in GUIDES for block in code_blocks(guide)]
SNIPPETS = [block for block in ALL_BLOCKS if block.runnable]


def by_kind(kind: str) -> list[Any]:
    return with_ids([block for block in SNIPPETS if block.runnable == kind])


def test_the_guides_have_runnable_snippets_of_every_kind() -> None:
    for guide in GUIDES:
        assert (DOCS / guide).exists(), f"docs/{guide} is missing"
    kinds = {block.runnable for block in SNIPPETS}
    assert kinds == set(RUNNABLE), f"runnable snippets found: {[(b.guide, b.line, b.runnable) for b in SNIPPETS]}"


@pytest.mark.parametrize("block", with_ids(ALL_BLOCKS))
def test_every_configuration_snippet_is_marked_runnable(block: CodeBlock) -> None:
    """A block that sets ``c.Section.trait``, or Helm values for the hub, is something a reader pastes: it must be
    run by this file."""
    if CONFIG_LINE.search(block.code) or (block.language == "yaml" and "hub:" in block.code):
        assert block.runnable, (
            f"docs/{block.guide}, line {block.line}: a configuration snippet without a runnable class "
            f"(```{{code-block}} python with :class: {SERVER} or {HUB}, yaml with {Z2JH}):\n{block.code}"
        )
    if block.runnable:
        wanted = LANGUAGE[block.runnable]
        assert block.language == wanted, f"docs/{block.guide}, line {block.line}: {block.runnable} must be {wanted}"


@pytest.mark.slow
@pytest.mark.parametrize("block", by_kind(SERVER))
def test_server_snippet(block: CodeBlock, reader: Any) -> None:
    reader.jupyter_2fa("enable")
    reader.write_config(block.code)
    with reader.server() as server:
        device = enroll_over_api(server.api_url)
        browser = server.browser()
        assert not browser.logged_in()
        refused = browser.login(device.wrong_code())
        assert refused.status_code != 302, "a wrong code logged in"
        answer = browser.login(device.next_code())
        assert answer.status_code == 302, (answer.status_code, answer.text[-2000:], server.log.read_text()[-3000:])
        assert browser.logged_in()


@pytest.mark.slow
@pytest.mark.parametrize("block", by_kind(HUB))
def test_hub_snippet(block: CodeBlock, hub_factory: HubFactory, request: pytest.FixtureRequest) -> None:
    env: dict[str, str] = {}
    if "JUPYTER_2FA_DB_URL" in block.code:
        env["JUPYTER_2FA_DB_URL"] = request.getfixturevalue("postgres_url")
    if "JUPYTERHUB_CRYPT_KEY" in block.code:
        env["JUPYTERHUB_CRYPT_KEY"] = secrets.token_hex(32)
    if CHOOSES_AUTHENTICATOR.search(block.code):
        assert USES_PAM.search(block.code), f"an inner authenticator the test cannot log in to:\n{block.code}"
        username, password = request.getfixturevalue("pam_account")
        config = block.code
    else:
        username, password = HUB_USER, PASSWORD
        config = HUB_PRELUDE + "\n" + block.code
    hub = hub_factory(config, env=env)
    device = enrolled_device(hub.new_browser(), username, password)
    browser = hub.new_browser()
    refused = browser.login(username, password, device.wrong_code())
    assert refused.status_code == 403, refused.status_code
    answer = browser.login(username, password, device.next_code())
    assert answer.status_code == 302, (login_error(answer), hub.log_tail())
    assert browser.logged_in()
    audit_file = AUDIT_LOG_FILE.search(block.code)
    if audit_file:  # the hub wrote the file the snippet names (relative: in the hub's working directory)
        records = [json.loads(line) for line in (hub.directory / audit_file["path"]).read_text().splitlines()]
        assert {"action": "login", "outcome": "success", "reason": "totp", "username": username}.items() <= (
            records[-1].items()
        ), records[-3:]


def merged(base: Any, overlay: Any) -> Any:
    """Helm's merge of two values files: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        return {**base, **{key: merged(base.get(key), value) for key, value in overlay.items()}}
    return overlay


def z2jh_hub(values: dict[str, Any], secrets_: dict[str, dict[str, str]]) -> tuple[str, dict[str, str]]:
    """What the chart's hub makes of ``values``: jupyterhub_config.py lines and the hub's environment."""
    hub = values["hub"]
    config = [
        "import json",
        "",
        "# hub.config, section by section, as the chart's jupyterhub_config.py loads it",
        f"for _section, _settings in json.loads({json.dumps(hub.get('config', {}))!r}).items():",
        "    c[_section].update(_settings)",
    ]
    for key in sorted(hub.get("extraConfig", {})):
        config += ["", f"# hub.extraConfig.{key}", hub["extraConfig"][key]]
    env = {}
    for name, spec in hub.get("extraEnv", {}).items():
        if isinstance(spec, str):
            env[name] = spec
        elif "value" in spec:
            env[name] = str(spec["value"])
        else:
            ref = spec["valueFrom"]["secretKeyRef"]
            env[name] = secrets_[ref["name"]][ref["key"]]
    return "\n".join(config) + "\n", env


@pytest.mark.slow
@pytest.mark.parametrize("block", by_kind(Z2JH))
def test_z2jh_values(block: CodeBlock, hub_factory: HubFactory, ldap_server: LdapServer, postgres_url: str) -> None:
    site = {  # the test's own values file, layered over the guide's: its directory server instead of the example's
        "hub": {
            "config": {
                "LDAPAuthenticator": {
                    "server_address": ldap_server.host,
                    "server_port": ldap_server.port,
                    "tls_strategy": "insecure",  # plain LDAP on loopback
                }
            }
        }
    }
    values = merged(yaml.safe_load(block.code), site)
    secret = {"jupyter-2fa": {"db-url": postgres_url, "crypt-key": secrets.token_hex(32)}}
    config, env = z2jh_hub(values, secret)
    hub = hub_factory(config, env=env)
    username = LDAP_USERS[0]
    password = ldap_server.passwords[username]
    device = enrolled_device(hub.new_browser(), username, password)
    browser = hub.new_browser()
    answer = browser.login(username, password, device.next_code())
    assert answer.status_code == 302, (login_error(answer), hub.log_tail())
    assert browser.logged_in()
    assert not (hub.directory / "jupyter_2fa.sqlite").exists(), "the store is not the PostgreSQL database"
