"""openapi.yaml loaded once, and the checks that a response conforms to it."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC_URI = "urn:messaging-openapi"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
REGISTRY = Registry().with_resource(SPEC_URI, Resource(contents=SPEC, specification=DRAFT202012))
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def json_pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(obj: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """Follow a local $ref (response or header objects); return it and its pointer."""
    while "$ref" in obj:
        pointer = obj["$ref"][1:]
        obj = REGISTRY.resolver(SPEC_URI).lookup("#" + pointer).contents
    return obj, pointer


def validator(pointer: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"},
        registry=REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def codes(schema: dict[str, Any]) -> set[str]:
    """The Code values an error schema allows (its `const` or `enum`)."""
    schema, _ = resolve(schema, "")
    code = schema.get("properties", {}).get("Code", {})
    return {code["const"]} if "const" in code else set(code.get("enum", ()))


def assert_conforms(path: str, method: str, r: Any, status: int) -> None:
    """The response has the expected status, the status is listed for the
    operation, and the body and headers validate against the spec for it."""
    assert r.status == status, f"{method.upper()} {path}: expected {status}, got {r}"
    responses = SPEC["paths"][path][method]["responses"]
    assert str(r.status) in responses, f"{method.upper()} {path}: status {r.status} not in the spec: {r}"
    response, pointer = resolve(responses[str(r.status)], json_pointer("paths", path, method, "responses", str(r.status)))
    schema_pointer = pointer + json_pointer("content", "application/json", "schema")
    errors = list(validator(schema_pointer).iter_errors(r.body))
    assert not errors, f"{method.upper()} {path} {r.status}: {[e.message for e in errors]} in {r.body}"
    headers = {name.lower(): value for name, value in r.headers.items()}
    for name, header in response.get("headers", {}).items():
        header, header_pointer = resolve(header, pointer + json_pointer("headers", name))
        value = headers.get(name.lower())
        if value is None:
            assert not header.get("required"), f"{method.upper()} {path} {r.status}: header {name} missing"
            continue
        if header["schema"].get("type") == "integer":
            assert value.isdigit(), (name, value)
            value = int(value)
        errors = list(validator(header_pointer + "/schema").iter_errors(value))
        assert not errors, f"{method.upper()} {path} {r.status}: header {name}={value!r}: {errors}"



ROUTE_RESPONSES = {"NotFound": "404", "MethodNotAllowed": "405"}  # answered on any path, not by an operation


def spec_codes_by_status() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for _, _, operation in operations():
        for status, response in operation["responses"].items():
            response, _ = resolve(response, "")
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            found.setdefault(status, set()).update(codes(schema))
    # Answered on every path rather than by one operation.
    for name, status in ROUTE_RESPONSES.items():
        schema = SPEC["components"]["responses"][name]["content"]["application/json"]["schema"]
        found.setdefault(status, set()).update(codes(schema))
    return found


def assert_route_response(name: str, r: Any) -> None:
    """A 404/405 answered on any path validates against its component response."""
    assert str(r.status) == ROUTE_RESPONSES[name], (name, r)
    pointer = json_pointer("components", "responses", name)
    errors = list(validator(pointer + json_pointer("content", "application/json", "schema")).iter_errors(r.body))
    assert not errors, (name, [e.message for e in errors], r.body)
    for header, spec in SPEC["components"]["responses"][name].get("headers", {}).items():
        assert not spec.get("required") or header in r.headers, (name, header, r.headers)
