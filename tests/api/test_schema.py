import pytest
from django.test import Client


@pytest.mark.django_db
def test_openapi_schema_as_json_documents_the_token_endpoints() -> None:
    response = Client().get("/v1/schema?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/v1/token", "/v1/token/refresh", "/v1/health"} <= set(schema["paths"])
    request = schema["components"]["schemas"]["TokenRequestRequest"]
    assert {"roomId", "userId", "role"} <= set(request["required"])
    assert schema["components"]["securitySchemes"]["SignedRequest"]["name"] == "X-Api-Key"


@pytest.mark.django_db
def test_docs_page_is_served_without_a_cdn() -> None:
    response = Client().get("/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html
    assert "unpkg.com" not in html


def test_schema_generates_without_warnings_and_validates(tmp_path) -> None:
    """Every endpoint documents its request and response; drf-spectacular's own validation passes."""
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = out.read_text()
    for path in ("/v1/rooms/{room_id}/participants", "/v1/recordings/{recording_id}", "/v1/webhooks"):
        assert path in schema


@pytest.mark.django_db
def test_every_operation_documents_its_problem_responses() -> None:
    """Errors are part of the contract: each operation lists the RFC 7807 problems it can answer with."""
    schema = Client().get("/v1/schema?format=json").json()
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert problem["properties"]["errors"]["additionalProperties"]["items"]["type"] == "string"

    def problems(operation: dict) -> set[str]:
        found = set()
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if status.startswith(("4", "5")) and "application/problem+json" in content:
                assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
                found.add(status)
        return found

    token = schema["paths"]["/v1/token"]["post"]
    assert problems(token) == {"400", "401", "403", "413", "415", "429", "503"}
    room = schema["paths"]["/v1/rooms/{room_id}"]["delete"]
    assert problems(room) == {"400", "401", "403", "404", "409", "429", "502", "503"}
    assert problems(schema["paths"]["/v1/livekit/webhook"]["post"]) == {"400", "401", "413", "503"}
    assert problems(schema["paths"]["/v1/health"]["get"]) == set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if {"SignedRequest": []} in operation.get("security", []):
                assert {"401", "403", "429", "503"} <= problems(operation), f"{method.upper()} {path}"
