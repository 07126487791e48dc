"""The API documentation: `/docs` needs nothing from outside this host, and the OpenAPI
schema describes the error bodies the API really sends and the bearer scheme it checks."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs  # comes with schemathesis, pinned in the dev dependencies
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.test_checkout import payment_body
from tests.conftest import make_settings
from tests.fake_providers import FakeProviders

ADMIN = {"Authorization": "Bearer admin-token"}
ERROR_BODY = "#/components/schemas/ErrorBody"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
# Where a token is needed (CONTRACT.md, Routes), and where it must not be asked for.
SECURED_PREFIXES = ("/api/admin/", "/api/audit/", "/api/trainers/")
OPEN_OPERATIONS = [
    ("post", "/api/payments"),
    ("post", "/api/payments/toss/confirm"),
    ("post", "/api/payments/stripe/confirm"),
    ("post", "/api/webhooks/{provider}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
]


@pytest.fixture(scope="module")
def docs_client(
    tmp_path_factory: pytest.TempPathFactory, fake_server: FakeProviders
) -> Iterator[TestClient]:
    # The documentation does not depend on the backend: one SQLite store is enough.
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'ledger.db'}"
    with TestClient(create_app(make_settings(url, fake_server))) as client:
        yield client


@pytest.fixture(scope="module")
def schema(docs_client: TestClient) -> dict[str, Any]:
    answer = docs_client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def documented(schema: dict[str, Any], method: str, path: str, status: int | str) -> Any:
    """A validator for the body that `method path` documents for `status`."""
    response = schema["paths"][path][method]["responses"][str(status)]
    body_schema = response["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator({**body_schema, "components": schema["components"]})


def page_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html) + re.findall(r"url: '([^']*)'", html)


def test_docs_page_refers_only_to_this_host(docs_client: TestClient) -> None:
    page = docs_client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = page_urls(page.text)
    assert "/openapi.json" in urls and any(u.endswith("swagger-ui-bundle.js") for u in urls)
    assert "://" not in page.text  # no absolute URL anywhere, not even a validator's
    for url in urls:
        parts = urlsplit(url)
        assert parts.path.startswith("/") and not (parts.scheme or parts.netloc), url


def test_every_asset_of_the_docs_page_is_served_with_its_media_type(
    docs_client: TestClient,
) -> None:
    for url in page_urls(docs_client.get("/docs").text):
        answer = docs_client.get(url)
        assert answer.status_code == 200, url
        suffix = url[url.rfind(".") :]
        expected = "application/json" if suffix == ".json" else MEDIA_TYPES[suffix]
        assert answer.headers["content-type"].split(";")[0] == expected, url
        assert len(answer.content) > 100, url


def test_docs_page_policy_lets_only_its_own_scripts_run(docs_client: TestClient) -> None:
    page = docs_client.get("/docs")
    policy = page.headers["content-security-policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    inline = re.findall(r"<script>(.*?)</script>", page.text, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert script_src.split() == ["script-src", "'self'", f"'sha256-{digest}'"]
    assert "default-src 'none'" in policy and "unsafe" not in policy


@pytest.mark.parametrize(
    "path",
    ["/docs/static/LICENSE", "/docs/static/README.md", "/docs/static/..%2Fdocs.py",
     "/docs/static/swagger-ui.js", "/redoc", "/docs/oauth2-redirect"],
)  # fmt: skip
def test_only_the_known_docs_files_are_served(docs_client: TestClient, path: str) -> None:
    answer = docs_client.get(path)
    assert answer.status_code == 404
    assert set(answer.json()) == {"error"}


def test_every_operation_documents_its_errors_as_error_body(schema: dict[str, Any]) -> None:
    assert len(list(operations(schema))) >= 30
    for method, path, operation in operations(schema):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        refs = [r["content"]["application/json"]["schema"].get("$ref") for r in errors.values()]
        assert ERROR_BODY in refs, f"{method} {path}: {sorted(errors)}"
        assert "500" in errors, f"{method} {path}"


def test_every_documented_error_example_matches_its_schema(schema: dict[str, Any]) -> None:
    examples = 0
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            body = response.get("content", {}).get("application/json", {})
            if "example" in body:
                validator = documented(schema, method, path, status)
                assert validator.is_valid(body["example"]), f"{method} {path} {status}"
                examples += 1
    assert examples > 100


def test_fastapi_validation_error_schema_is_gone(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    assert "HTTPValidationError" not in text
    names = set(schema["components"]["schemas"])
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in names, ref  # no dangling reference left behind


def test_bearer_scheme_is_declared_where_a_token_is_needed(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = [(m, p, o) for m, p, o in operations(schema) if p.startswith(SECURED_PREFIXES)]
    assert len(secured) >= 25
    for method, path, operation in secured:
        assert operation.get("security") == [{"bearerAuth": []}], f"{method} {path}"
        assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
    for method, path in OPEN_OPERATIONS:
        assert "security" not in schema["paths"][path][method], f"{method} {path}"


def test_a_real_validation_error_matches_its_documented_body(
    docs_client: TestClient, schema: dict[str, Any]
) -> None:
    invalid = docs_client.post("/api/payments", json={**payment_body(), "amount": "many"})
    malformed = docs_client.post(
        "/api/payments", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    validator = documented(schema, "post", "/api/payments", 422)
    for answer, code in ((invalid, "validation_error"), (malformed, "malformed_json")):
        assert answer.status_code == 422
        body = answer.json()
        assert body["error"]["code"] == code and body["error"]["details"]
        validator.validate(body)
    assert not validator.is_valid({"detail": invalid.json()["error"]["details"]})


def test_a_real_refused_token_matches_its_documented_body(
    docs_client: TestClient, schema: dict[str, Any]
) -> None:
    missing = docs_client.get("/api/admin/stats")
    wrong = docs_client.get("/api/admin/stats", headers={"Authorization": "Bearer nope"})
    validator = documented(schema, "get", "/api/admin/stats", 401)
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
        validator.validate(answer.json())
    assert docs_client.get("/api/admin/stats", headers=ADMIN).status_code == 200
