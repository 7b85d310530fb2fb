"""openapi.yaml describes the app: its operations are the app's routes, every
error code the app can answer is listed under its status, and real responses
validate against the spec's response schemas and headers."""
from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from chalicelib import wiring
from chalicelib.repositories import Messages
from chalicelib.web import STATUS
from tests.conftest import TEST_AUTH_SECRET, Api, Resp

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC_URI = "urn:messaging-openapi"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
REGISTRY = Registry().with_resource(SPEC_URI, Resource(contents=SPEC, specification=DRAFT202012))
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _resolve(obj: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """Follow a local $ref (response or header objects); return it and its pointer."""
    while "$ref" in obj:
        pointer = obj["$ref"][1:]
        obj = REGISTRY.resolver(SPEC_URI).lookup("#" + pointer).contents
    return obj, pointer


def _validator(pointer: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"},
        registry=REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _codes(schema: dict[str, Any]) -> set[str]:
    """The Code values an error schema allows (its `const` or `enum`)."""
    schema, _ = _resolve(schema, "")
    code = schema.get("properties", {}).get("Code", {})
    return {code["const"]} if "const" in code else set(code.get("enum", ()))


def assert_conforms(path: str, method: str, r: Any, status: int) -> None:
    """The response has the expected status, the status is listed for the
    operation, and the body and headers validate against the spec for it."""
    assert r.status == status, f"{method.upper()} {path}: expected {status}, got {r}"
    responses = SPEC["paths"][path][method]["responses"]
    assert str(r.status) in responses, f"{method.upper()} {path}: status {r.status} not in the spec: {r}"
    response, pointer = _resolve(responses[str(r.status)], _pointer("paths", path, method, "responses", str(r.status)))
    schema_pointer = pointer + _pointer("content", "application/json", "schema")
    errors = list(_validator(schema_pointer).iter_errors(r.body))
    assert not errors, f"{method.upper()} {path} {r.status}: {[e.message for e in errors]} in {r.body}"
    headers = {name.lower(): value for name, value in r.headers.items()}
    for name, header in response.get("headers", {}).items():
        header, header_pointer = _resolve(header, pointer + _pointer("headers", name))
        value = headers.get(name.lower())
        if value is None:
            assert not header.get("required"), f"{method.upper()} {path} {r.status}: header {name} missing"
            continue
        if header["schema"].get("type") == "integer":
            assert value.isdigit(), (name, value)
            value = int(value)
        errors = list(_validator(header_pointer + "/schema").iter_errors(value))
        assert not errors, f"{method.upper()} {path} {r.status}: header {name}={value!r}: {errors}"


# --------------------------------------------------------------------------- (a) the spec and the routes


def test_the_spec_is_openapi_3_1_and_its_operations_are_exactly_the_apps_routes():
    from app import app, edge

    assert SPEC["openapi"].startswith("3.1.")
    spec_routes = {(path, method.upper()) for path, method, _ in _operations()}
    assert spec_routes == set(edge.operations.items())
    # Every other path and method is registered too, only to answer 404 / 405.
    assert set(app.routes) == set(edge.operations) | {"/{proxy+}"}
    for schema in SPEC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_each_post_operation_takes_the_same_parameters_in_the_query_string_json_and_form_bodies():
    for path, method, operation in _operations():
        if method != "post":
            continue
        query = {_resolve(p, "")[0]["name"] for p in operation["parameters"] if _resolve(p, "")[0]["in"] == "query"}
        content = operation["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}, path
        for media_type, media in content.items():
            assert set(media["schema"]["properties"]) == query, (path, media_type)
            assert not media["schema"].get("required"), (path, media_type)  # may come from the query string


def test_security_is_bearer_except_for_register_and_health():
    scheme = SPEC["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert SPEC["security"] == [{"bearerAuth": []}]
    for path, method, operation in _operations():
        public = path in ("/register", "/health")
        assert (operation.get("security") == []) is public, path
        if not public:
            response, _ = _resolve(operation["responses"]["401"], "")
            assert _codes(response["content"]["application/json"]["schema"]) == {"Unauthorized"}, path


# --------------------------------------------------------------------------- (b) error codes


def _spec_codes_by_status() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for _, _, operation in _operations():
        for status, response in operation["responses"].items():
            response, _ = _resolve(response, "")
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            found.setdefault(status, set()).update(_codes(schema))
    # Answered on every path rather than by one operation.
    for name, status in ROUTE_RESPONSES.items():
        schema = SPEC["components"]["responses"][name]["content"]["application/json"]["schema"]
        found.setdefault(status, set()).update(_codes(schema))
    return found


ROUTE_RESPONSES = {"NotFound": "404", "MethodNotAllowed": "405"}


def assert_route_response(name: str, r: Any) -> None:
    """A 404/405 answered on any path validates against its component response."""
    assert str(r.status) == ROUTE_RESPONSES[name], (name, r)
    pointer = _pointer("components", "responses", name)
    errors = list(_validator(pointer + _pointer("content", "application/json", "schema")).iter_errors(r.body))
    assert not errors, (name, [e.message for e in errors], r.body)
    for header, spec in SPEC["components"]["responses"][name].get("headers", {}).items():
        assert not spec.get("required") or header in r.headers, (name, header, r.headers)


def test_unknown_routes_and_wrong_methods_answer_the_envelope_of_the_spec(api):
    alice = api.register("alice")
    for r in (api.post("/nope"), api.post("/nope", token=alice.token), api.get("/registerx")):
        assert_route_response("NotFound", r)
        assert r.code == "NotFound" and "/" in r.body["Message"], r
    r = api.get("/send")
    assert_route_response("MethodNotAllowed", r)
    assert r.headers["Allow"] == "POST" and "GET" in r.body["Message"], r
    r = api.post("/health")
    assert_route_response("MethodNotAllowed", r)
    assert r.headers["Allow"] == "GET, HEAD", r
    r = api.client.http.request("OPTIONS", "/send")
    assert (r.status_code, r.headers["Allow"]) == (204, "POST"), r


def test_every_error_code_the_app_can_answer_is_in_the_spec_under_its_status():
    in_spec = _spec_codes_by_status()
    for code, status in {**STATUS, "InternalServerError": 500}.items():
        assert code in in_spec.get(str(status), set()), f"{code} ({status}) is not in openapi.yaml"
    # ... and the spec names no code the app does not have, nor one under another status.
    known = {(str(s), c) for c, s in {**STATUS, "InternalServerError": 500}.items()}
    assert {(s, c) for s, codes in in_spec.items() for c in codes} <= known


def test_every_operation_lists_500_and_every_429_and_503_carries_retry_after():
    for path, method, operation in _operations():
        assert "500" in operation["responses"], path
        for status in ("429", "503"):
            if status in operation["responses"]:
                response, _ = _resolve(operation["responses"][status], "")
                assert response["headers"]["Retry-After"], (path, status)


# --------------------------------------------------------------------------- (c) real responses


def test_success_responses_conform_to_the_spec(api):
    alice, bob = api.register("alice"), api.register("bob")
    check = assert_conforms
    check("/register", "post", api.post("/register", json_body={"user_name": "carol 👋"}), 201)
    check("/block", "post", api.block(bob, alice, 1), 200)
    check("/block", "post", api.block(bob, alice, 0), 200)
    check("/send", "post", api.send(alice, bob, "hi", client_message_id="k-1"), 201)
    check("/send", "post", api.send(alice, bob, "hi", client_message_id="k-1"), 200)  # "duplicate": true
    r = api.post("/create_group", form={"group_name": "bambis"}, token=alice.token)
    check("/create_group", "post", r, 201)
    group_id = r.body["group_id"]
    check("/update_group", "post", api.join(alice, group_id), 200)
    check("/update_group", "post", api.join(bob, group_id), 200)
    group_send = {"sending_user_id": alice.id, "group_id": group_id, "message_text": "hello"}
    for status in (201, 200):  # new, then an idempotent retry
        r = api.post("/send_group", json_body=group_send, token=alice.token, headers={"Idempotency-Key": "g-1"})
        check("/send_group", "post", r, status)
    read = api.read(bob, after=0, limit=10)
    check("/read_messages", "post", read, 200)
    assert [m["kind"] for m in read.body["messages"]] == ["direct", "group"]
    check("/read_messages", "post", api.read(bob, min_timestamp="2024-07-01 09:10:00.0"), 200)
    check("/read_messages", "post", api.read(alice, min_timestamp="2024-07-01T09:10:00Z"), 200)  # empty page
    check("/health", "get", api.get("/health"), 200)


def test_error_responses_conform_to_the_spec(api, monkeypatch):
    alice, bob, carol = api.register("alice"), api.register("bob"), api.register("carol")
    group_id = api.create_group(alice)
    unknown = "00000000-0000-4000-8000-000000000000"
    check = assert_conforms
    check("/register", "post", api.post("/register"), 400)
    check("/read_messages", "post", api.read(alice, after=0, min_timestamp="2024-07-01"), 400)
    check("/send", "post", api.post("/send", {"sending_user_id": alice.id}), 401)
    check("/read_messages", "post", api.read(alice, user_id=bob.id), 403)  # Forbidden
    api.block(bob, alice)
    check("/send", "post", api.send(alice, bob), 403)  # Blocked
    check("/send_group", "post", api.send_group(carol, group_id), 403)  # NotAMember
    r = api.post("/block", {"blocking_user_id": alice.id, "blocked_user_id": unknown, "to_block": 1}, token=alice.token)
    check("/block", "post", r, 404)  # UserNotFound
    check("/update_group", "post", api.join(alice, unknown), 404)  # GroupNotFound
    api.send(alice, carol, "one", client_message_id="k")
    check("/send", "post", api.send(alice, carol, "two", client_message_id="k"), 409)  # IdempotencyConflict
    big = b'{"group_name": "' + b"x" * 70_000 + b'"}'
    check("/create_group", "post", api.post("/create_group", token=alice.token, raw_body=big), 413)
    r = api.post("/create_group", token=alice.token, raw_body=b"x", headers={"Content-Type": "text/plain"})
    check("/create_group", "post", r, 415)  # answered by Chalice itself
    r = api.client.http.get("/health", headers={"Content-Type": "text/plain"})
    check("/health", "get", Resp(r.status_code, json.loads(r.body), dict(r.headers)), 415)

    monkeypatch.setenv("MAX_GROUP_MEMBERS", "2")
    wiring.reset()
    assert api.join(alice, group_id).status == api.join(bob, group_id).status == 200
    check("/update_group", "post", api.join(carol, group_id), 409)  # GroupFull

    def broken_add(self, *, message, client_message_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(Messages, "add", broken_add)
    check("/send", "post", api.send(carol, alice, "x"), 500)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api_without_database(monkeypatch) -> Iterator[Api]:
    from chalice.test import Client

    from app import app

    for name in ("REDIS_URL", "MAX_GROUP_MEMBERS", "DB_SECRET_ARN", "AUTH_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"mysql://root@127.0.0.1:{_free_port()}/messaging")
    monkeypatch.setenv("AUTH_SECRET", TEST_AUTH_SECRET)
    monkeypatch.setenv("AUTH_MODE", "token")
    wiring.reset()
    with Client(app) as client:
        yield Api(client)
    wiring.reset()


def test_503_responses_conform_to_the_spec(api_without_database):
    api = api_without_database
    assert_conforms("/register", "post", api.post("/register", {"user_name": "shir"}), 503)
    assert_conforms("/health", "get", api.get("/health"), 503)


def test_429_responses_conform_to_the_spec(api, monkeypatch, tmp_path):
    from tests.support.servers import RedisServer

    redis_server = RedisServer(tmp_path).start()
    try:
        monkeypatch.setenv("REDIS_URL", redis_server.url)
        monkeypatch.setenv("REDIS_TIMEOUT", "1")
        monkeypatch.setenv("RATE_LIMIT_READS_PER_MINUTE", "1")
        wiring.reset()
        bob = api.register("bob")
        first = api.read(bob)
        assert_conforms("/read_messages", "post", first, 200)
        assert first.headers["X-Cache"] in ("hit", "miss"), first
        assert_conforms("/read_messages", "post", api.read(bob), 429)
    finally:
        wiring.reset()
        redis_server.stop()


def test_the_prose_reference_lists_every_route_and_every_error_code_under_its_status():
    from app import edge

    reference = (SPEC_PATH.parent / "docs" / "api.md").read_text()
    for path, method in edge.operations.items():
        assert f"`{method} {path}`" in reference, f"docs/api.md does not list {method} {path}"
    rows = {(status, code) for status, codes in re.findall(r"^\| (\d{3}) \| (.+?) \|", reference, flags=re.M)
            for code in re.findall(r"`(\w+)`", codes)}
    assert rows == {(str(s), c) for c, s in {**STATUS, "InternalServerError": 500}.items()}, rows
