"""The API reference page (/api/docs): the app's own OpenAPI schema, rendered on the server.

It needs no script and nothing from another site, so it works offline and under the console's
Content-Security-Policy; the schema itself stays at /api/v1/openapi.json for tools.
"""

from __future__ import annotations

from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")


def type_of(schema: dict[str, Any]) -> str:
    """A short reading of a JSON schema: ``integer (1 to 9223372036854775807)``, ``string or null``, ..."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        kinds = [type_of(part) for part in schema["anyOf"] if part.get("type") != "null"]
        return " or ".join(kinds) or "null"
    if "enum" in schema:
        return " | ".join(str(value) for value in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "string" and schema.get("format") == "binary":
        return "file"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        return f"{kind} ({'' if low is None else low} to {'' if high is None else high})"
    return kind


def _parameter(item: dict[str, Any]) -> dict[str, Any]:
    schema = item.get("schema", {})
    return {"name": item["name"], "where": item["in"], "required": bool(item.get("required")),
            "type": type_of(schema), "default": schema.get("default"),
            "description": item.get("description") or schema.get("description") or ""}


def _body(operation: dict[str, Any]) -> list[dict[str, str]]:
    content = operation.get("requestBody", {}).get("content", {})
    return [{"media_type": media_type, "type": type_of(spec.get("schema", {})),
             "description": spec.get("schema", {}).get("description", "")}
            for media_type, spec in content.items()]


def endpoints(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of ``schema``, in its order: method, path, summary, description, parameters, request
    body and responses."""
    listed = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            listed.append({
                "method": method.upper(), "path": path, "anchor": operation.get("operationId", path),
                "summary": operation.get("summary", ""),
                "description": operation.get("description", "").replace("``", ""),  # docstrings' literals
                "parameters": [_parameter(parameter) for parameter in operation.get("parameters", [])],
                "body": _body(operation),
                "responses": [(code, answer.get("description", "")) for code, answer in
                              operation.get("responses", {}).items()],
            })
    return listed


def models(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The named request and response shapes (``components/schemas``) with their fields."""
    found = []
    for name, spec in schema.get("components", {}).get("schemas", {}).items():
        required = set(spec.get("required", []))
        fields = [{"name": field, "type": type_of(part), "required": field in required,
                   "default": part.get("default")} for field, part in spec.get("properties", {}).items()]
        found.append({"name": name, "description": spec.get("description", ""), "fields": fields})
    return found
