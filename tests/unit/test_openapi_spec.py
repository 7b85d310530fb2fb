"""openapi.yaml and docs/api.md describe the app: the operations are the
app's routes, every error code the app can answer is listed under its
status, and the prose reference lists the same routes and codes. Static
checks: no request is made (the responses are checked in
tests/integration/test_openapi.py)."""
from __future__ import annotations

import re

import jsonschema

from chalicelib.contract import STATUS
from tests.support.openapi import SPEC, SPEC_PATH, codes, operations, resolve, spec_codes_by_status


def test_the_spec_is_openapi_3_1_and_its_operations_are_exactly_the_apps_routes():
    from app import app, edge

    assert SPEC["openapi"].startswith("3.1.")
    spec_routes = {(path, method.upper()) for path, method, _ in operations()}
    assert spec_routes == set(edge.operations.items())
    # Every other path and method is registered too, only to answer 404 / 405.
    assert set(app.routes) == set(edge.operations) | {"/{proxy+}"}
    for schema in SPEC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_each_post_operation_takes_the_same_parameters_in_the_query_string_json_and_form_bodies():
    for path, method, operation in operations():
        if method != "post":
            continue
        parameters = [resolve(p, "")[0] for p in operation.get("parameters", ())]
        query = {p["name"] for p in parameters if p["in"] == "query"}
        if not query:  # /link_code, /sessions: no parameters, and the body is not read
            assert "requestBody" not in operation, path
            continue
        content = operation["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}, path
        for media_type, media in content.items():
            assert set(media["schema"]["properties"]) == query, (path, media_type)
            assert not media["schema"].get("required"), (path, media_type)  # may come from the query string


PUBLIC = ("/register", "/login", "/link", "/health", "/", "/static/{name}")


def test_security_is_bearer_except_for_the_public_routes():
    scheme = SPEC["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert SPEC["security"] == [{"bearerAuth": []}]
    for path, _method, operation in operations():
        public = path in PUBLIC
        assert (operation.get("security") == []) is public, path
        if public:  # a public route never answers Unauthorized (BadCredentials is another case)
            if "401" in operation["responses"]:
                response, _ = resolve(operation["responses"]["401"], "")
                assert "Unauthorized" not in codes(response["content"]["application/json"]["schema"]), path
            continue
        response, _ = resolve(operation["responses"]["401"], "")
        found = codes(response["content"]["application/json"]["schema"])
        assert "Unauthorized" in found and found <= {"Unauthorized", "BadCredentials"}, path
        challenge = response["headers"]["WWW-Authenticate"]
        # Required only where every 401 is an Unauthorized (a BadCredentials carries none).
        assert challenge["required"] is (found == {"Unauthorized"}), path


def test_every_error_code_the_app_can_answer_is_in_the_spec_under_its_status():
    in_spec = spec_codes_by_status()
    for code, status in STATUS.items():
        assert code in in_spec.get(str(status), set()), f"{code} ({status}) is not in openapi.yaml"
    # ... and the spec names no code the app does not have, nor one under another status.
    known = {(str(s), c) for c, s in STATUS.items()}
    assert {(s, c) for s, codes in in_spec.items() for c in codes} <= known


def test_every_operation_lists_500_and_every_429_and_503_carries_retry_after():
    for path, method, operation in operations():
        assert "500" in operation["responses"], path
        for status in ("429", "503"):
            if status in operation["responses"]:
                response, _ = resolve(operation["responses"][status], "")
                assert response["headers"]["Retry-After"], (path, status)


def test_the_prose_reference_lists_every_route_and_every_error_code_under_its_status():
    from app import edge

    reference = (SPEC_PATH.parent / "docs" / "api.md").read_text()
    for path, method in edge.operations.items():
        assert f"`{method} {path}`" in reference, f"docs/api.md does not list {method} {path}"
    rows = {(status, code) for status, codes in re.findall(r"^\| (\d{3}) \| (.+?) \|", reference, flags=re.M)
            for code in re.findall(r"`(\w+)`", codes)}
    assert rows == {(str(s), c) for c, s in STATUS.items()}, rows
