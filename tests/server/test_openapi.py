"""The OpenAPI document shipped with the gate describes exactly the JSON API the handlers serve.

Three checks: the document is OpenAPI 3 with the security the API really needs; its paths and verbs are the
routes ``handlers()`` registers; and every field a handler reads or returns is in it, both as written in the
handlers' source and as a running server answers.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import pyotp
import pytest
import yaml
from tornado import web
from tornado.httpclient import HTTPResponse

from jupyter_2fa.server.handlers import TwoFactorAPIHandler, handlers
from jupyter_2fa.server.paths import OPENAPI
from jupyter_2fa.web import api, handler, models, passkeys

from helpers.gate import PASSWORD, WRONG_PASSWORD, Browser, json_body

VERBS = ("get", "post", "put", "patch", "delete")
API_PREFIX = "/2fa/api/"
JSON_TYPES: dict[type, set[str]] = {
    bool: {"boolean"},
    int: {"integer", "number"},
    float: {"number"},
    str: {"string"},
    list: {"array"},
    dict: {"object"},
    type(None): {"null"},
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def api_routes() -> dict[str, type[web.RequestHandler]]:
    """``{"/2fa/api/...": handler class}`` as the extension registers them (relative to the base URL), a route's
    one group (a key's id) written as the document's path parameter ``{id}``."""
    return {re.sub(r"\([^)]*\)", "{id}", pattern): cls for pattern, cls in handlers() if pattern.startswith(API_PREFIX)}


def implemented_verbs(cls: type[web.RequestHandler]) -> set[str]:
    return {verb for verb in VERBS if getattr(cls, verb) is not getattr(web.RequestHandler, verb)}


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def schema_properties(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """Every property name declared in ``schema`` and the schemas it contains."""
    schema = resolve(spec, schema)
    names = set(schema.get("properties", {}))
    for child in [*schema.get("properties", {}).values(), schema.get("items", {})]:
        if child:
            names |= schema_properties(spec, child)
    return names


def json_schema_of(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any] | None:
    """The application/json schema of a request body or response (after $refs)."""
    content = resolve(spec, node).get("content", {})
    media = content.get("application/json")
    return None if media is None else resolve(spec, media["schema"])


def operation(spec: dict[str, Any], path: str, verb: str) -> dict[str, Any]:
    op: dict[str, Any] = spec["paths"][path][verb]
    return op


# -- the document ---------------------------------------------------------------------------------------------


def test_document_ships_in_the_package() -> None:
    shipped = resources.files("jupyter_2fa.server").joinpath("openapi.yaml")
    assert shipped.is_file()
    assert OPENAPI.name == "openapi.yaml" and OPENAPI.is_file()


def test_document_is_openapi_3(spec: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.[01]\.\d+", str(spec["openapi"])), spec["openapi"]
    assert spec["info"]["title"] and spec["info"]["version"]
    assert isinstance(spec["paths"], dict) and spec["paths"]
    for path, item in spec["paths"].items():
        for verb, op in item.items():
            if verb == "parameters":  # the path's own parameters ({id})
                continue
            assert verb in VERBS, (path, verb)
            assert op["responses"], (path, verb)
            for status in op["responses"]:
                assert re.fullmatch(r"[1-5]\d\d", str(status)), (path, verb, status)
    json.dumps(spec)  # plain data only: no YAML-only types (dates, anchors to Python objects)


def test_security_is_the_session_cookie_with_the_xsrf_header(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    cookies = [name for name, s in schemes.items() if s.get("type") == "apiKey" and s.get("in") == "cookie"]
    headers = [name for name, s in schemes.items() if s.get("in") == "header" and s.get("name") == "X-XSRFToken"]
    assert len(cookies) == 1 and len(headers) == 1, schemes
    requirements = [set(requirement) for requirement in spec["security"]]
    assert {cookies[0], headers[0]} in requirements, "writes need the cookie AND the XSRF header"
    for name in {name for requirement in requirements for name in requirement}:
        assert name in schemes


def test_paths_and_verbs_are_exactly_the_routes(spec: dict[str, Any]) -> None:
    routes = api_routes()
    assert routes, "handlers() registers no API routes"
    documented = {path for path in spec["paths"] if path.startswith(API_PREFIX)}
    assert documented == set(routes)
    assert set(spec["paths"]) == documented, "the document describes only the 2FA API"
    for path, cls in routes.items():
        assert set(spec["paths"][path]) - {"parameters"} == implemented_verbs(cls), (path, cls.__name__)


# -- fields, from the handlers' source ----------------------------------------------------------------------------


def _calls(source: str, method: str) -> Iterator[ast.Call]:
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method:
            yield node


def _dict_keys(node: ast.AST) -> set[str]:
    keys: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Dict):
            keys |= {k.value for k in inner.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return keys


def flow_classes(cls: type) -> Iterator[type]:
    """The handler class and the classes of the shared web layer it is made of (where its verbs live)."""
    for base in cls.__mro__:
        if base is cls or base.__module__.startswith("jupyter_2fa.web."):
            yield base


def fields_read(cls: type, verb: str) -> dict[str, str]:
    """The JSON body fields a handler class's ``verb`` reads, with their JSON types: the ``json_fields(...)``
    calls in it (strings) and the ``json_object(..., name=str, credential=dict)`` ones."""
    verbs = [flow.__dict__[verb] for flow in flow_classes(cls) if verb in flow.__dict__]
    names: dict[str, str] = {}
    for method in verbs:
        source = textwrap.dedent(inspect.getsource(method))
        for call in _calls(source, "json_fields"):
            for arg in call.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names[arg.value] = "string"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "json_object":
                for keyword in node.keywords:
                    kind = keyword.value.id if isinstance(keyword.value, ast.Name) else ""
                    names[str(keyword.arg)] = {"str": "string", "dict": "object"}[kind]
    return names


def fields_returned() -> set[str]:
    """Every key of every JSON object the API flows reply with, as written in jupyter_2fa/web/api.py (and
    web/handler.py, which words refusals), plus the keys of the reply models they build (jupyter_2fa.web.models:
    account_status, provisioning_model, linking_model)."""
    names: set[str] = set()
    for call in (c for module in (api, handler, passkeys) for c in _calls(inspect.getsource(module), "reply")):
        for arg in call.args[1:]:
            names |= _dict_keys(arg)
    for model in (models.account_status, models.provisioning_model, models.linking_model, passkeys.credential_model):
        for node in ast.walk(ast.parse(inspect.getsource(model))):
            if isinstance(node, ast.Return) and node.value is not None:
                names |= _dict_keys(node.value)
    return names


@pytest.mark.parametrize(("path", "cls"), [pytest.param(p, c, id=p) for p, c in api_routes().items()])
def test_request_bodies_match_the_fields_read(spec: dict[str, Any], path: str, cls: type[web.RequestHandler]) -> None:
    for verb in implemented_verbs(cls):
        op = operation(spec, path, verb)
        read = fields_read(cls, verb)
        if read:
            schema = json_schema_of(spec, op["requestBody"])
            assert schema is not None, (path, verb)
            assert set(schema["properties"]) == set(read), (path, verb)
            assert schema.get("type") == "object"
            for field, kind in read.items():
                assert resolve(spec, schema["properties"][field]).get("type") == kind, (path, field)
        else:
            assert "requestBody" not in op, (path, verb)


def test_every_returned_field_is_documented(spec: dict[str, Any]) -> None:
    returned = fields_returned()
    assert {"username", "recovery_codes", "otpauth_uri", "message"} <= returned, returned
    documented: set[str] = set()
    for item in spec["paths"].values():
        for verb, op in item.items():
            if verb == "parameters":
                continue
            for response in op["responses"].values():
                schema = json_schema_of(spec, response)
                if schema is not None:
                    documented |= schema_properties(spec, schema)
    assert returned - documented == set()


@pytest.mark.parametrize(("path", "cls"), [pytest.param(p, c, id=p) for p, c in api_routes().items()])
def test_every_operation_documents_the_refusals(spec: dict[str, Any], path: str, cls: type[web.RequestHandler]) -> None:
    assert issubclass(cls, TwoFactorAPIHandler)
    for verb in implemented_verbs(cls):
        statuses = set(operation(spec, path, verb)["responses"])
        assert {"403", "503"} <= statuses, (path, verb, statuses)
        if verb == "post":
            assert {"400", "413"} <= statuses, (path, verb, statuses)


# -- fields, from a running server ------------------------------------------------------------------------------


def check_value(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    """A small JSON Schema check: type, enum, required, no undocumented properties, items, pattern."""
    schema = resolve(spec, schema)
    types = schema.get("type")
    if types is not None:
        allowed = {types} if isinstance(types, str) else set(types)
        assert JSON_TYPES[type(value)] & allowed, f"{where}: {value!r} is not {allowed}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        missing = set(schema.get("required", [])) - set(value)
        assert not missing, f"{where}: missing {missing}"
        extra = set(value) - set(properties)
        assert not extra or schema.get("additionalProperties") is True, f"{where}: undocumented {extra}"
        for key, item in value.items():
            if key in properties:
                check_value(spec, properties[key], item, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check_value(spec, schema["items"], item, f"{where}[{index}]")
    if isinstance(value, str) and "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ {schema['pattern']}"


class Recorder:
    """Calls the API and checks every answer against the operation's documented response."""

    def __init__(self, spec: dict[str, Any], browser: Browser) -> None:
        self.spec = spec
        self.browser = browser
        self.seen: set[tuple[str, str, int]] = set()

    async def __call__(self, method: str, path: str, body: object = None, raw: bytes | None = None) -> HTTPResponse:
        if method == "GET":
            response = await self.browser.get(path)
        elif raw is not None:
            xsrf = await self.browser.ensure_xsrf()
            response = await self.browser.post_raw(
                path, raw, headers={"X-XSRFToken": xsrf}, content_type="application/json"
            )
        elif method == "DELETE":
            response = await self.browser.delete(path)
        else:
            response = await self.browser.post_json(path, body if body is not None else {}, method=method)
        route = "/" + path
        op = operation(self.spec, route, method.lower())
        documented = op["responses"].get(str(response.code))
        assert documented is not None, f"{method} {route} answered {response.code}, not documented"
        schema = json_schema_of(self.spec, documented)
        if schema is None:
            assert not response.body, f"{method} {route} {response.code} has an undocumented body"
        else:
            check_value(self.spec, schema, json_body(response), f"{method} {route} {response.code}")
        self.seen.add((method, route, response.code))
        return response


@pytest.mark.parametrize("gate_config", [{"TwoFactorConfig": {"enrollment_policy": "optional"}}], indirect=True)
async def test_live_answers_match_the_document(
    spec: dict[str, Any], browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    anonymous = Recorder(spec, new_browser())
    await anonymous("GET", "2fa/api/status")
    await anonymous("POST", "2fa/api/enrollment", {"password": PASSWORD})
    await anonymous("POST", "2fa/api/webauthn/login-options", {"password": PASSWORD})  # on 127.0.0.1: 400

    assert (await browser.login(PASSWORD)).code == 302
    api = Recorder(spec, browser)
    await api("GET", "2fa/api/status")
    await api("GET", "2fa/api/webauthn/credentials")
    await api("DELETE", "2fa/api/enrollment")
    await api("POST", "2fa/api/enrollment", {"password": WRONG_PASSWORD})
    await api("POST", "2fa/api/enrollment", raw=b"[]")
    await api("POST", "2fa/api/enrollment", raw=json.dumps({"password": "x" * 100_000}).encode())
    await api("POST", "2fa/api/relink", {"password": PASSWORD, "otp": "123456"})
    await api("POST", "2fa/api/recovery-codes", {"password": PASSWORD, "otp": "123456"})
    await api("POST", "2fa/api/enrollment", {"password": PASSWORD})
    await api("DELETE", "2fa/api/enrollment")
    secret = json_body(await api("POST", "2fa/api/enrollment", {"password": PASSWORD}))["secret"]
    await api("GET", "2fa/api/status")

    totp = pyotp.TOTP(secret)
    step = int(time.time()) // totp.interval
    wrong = next(c for n in range(10) if (c := str(n) * 6) not in {totp.at((step + k) * 30) for k in range(-2, 3)})
    await api("POST", "2fa/api/enrollment/confirm", {"code": wrong})
    confirmed = await api("POST", "2fa/api/enrollment/confirm", {"code": totp.at(step * totp.interval)})
    codes = json_body(confirmed)["recovery_codes"]
    await api("POST", "2fa/api/enrollment/confirm", {"code": totp.at((step + 1) * totp.interval)})
    await api("POST", "2fa/api/enrollment", {"password": PASSWORD})
    await api("POST", "2fa/api/recovery-codes", {"password": WRONG_PASSWORD, "otp": codes[0]})
    regenerated = await api("POST", "2fa/api/recovery-codes", {"password": PASSWORD, "otp": codes[0]})
    codes = json_body(regenerated)["recovery_codes"]
    await api("DELETE", "2fa/api/enrollment")
    await api("POST", "2fa/api/relink", {"password": PASSWORD, "otp": codes[0]})
    await api("DELETE", "2fa/api/enrollment")
    relink = await api("POST", "2fa/api/relink", {"password": PASSWORD, "otp": codes[1]})
    await api("POST", "2fa/api/enrollment/confirm", {"code": pyotp.TOTP(json_body(relink)["secret"]).now()})
    await api("GET", "2fa/api/status")

    expected = {
        ("GET", "/2fa/api/status", 200),
        ("GET", "/2fa/api/status", 403),
        ("POST", "/2fa/api/webauthn/login-options", 400),
        ("GET", "/2fa/api/webauthn/credentials", 200),
        ("POST", "/2fa/api/enrollment", 201),
        ("POST", "/2fa/api/enrollment", 400),
        ("POST", "/2fa/api/enrollment", 403),
        ("POST", "/2fa/api/enrollment", 409),
        ("POST", "/2fa/api/enrollment", 413),
        ("DELETE", "/2fa/api/enrollment", 204),
        ("DELETE", "/2fa/api/enrollment", 404),
        ("POST", "/2fa/api/enrollment/confirm", 200),
        ("POST", "/2fa/api/enrollment/confirm", 403),
        ("POST", "/2fa/api/enrollment/confirm", 409),
        ("POST", "/2fa/api/relink", 201),
        ("POST", "/2fa/api/relink", 409),
        ("POST", "/2fa/api/recovery-codes", 200),
        ("POST", "/2fa/api/recovery-codes", 403),
        ("POST", "/2fa/api/recovery-codes", 409),
    }
    assert expected <= anonymous.seen | api.seen, expected - (anonymous.seen | api.seen)
