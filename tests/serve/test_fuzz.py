"""Fuzzing every operation of the OpenAPI schema (schemathesis): no input gives a 500 or a non-JSON error."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from shopformer.serve.app import create_app
from shopformer.serve.service import Service

#: Generated requests per operation: enough to hit every field with wrong types, bounds and junk.
EXAMPLES = 40


def test_no_generated_request_gets_a_server_error(bundles, tmp_path):
    service = Service.open(bundles.text, tmp_path / "events.sqlite", text_cache_dir=bundles.cache / "text")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service, max_body_bytes=256 * 1024))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        _fuzz(operation)
    answered = service.metrics.requests
    assert sum(answered.values()) >= len(operations) * EXAMPLES // 2
    ok_routes = {route for (_, route, status) in answered if status == 200}
    assert {"/v1/users/{user_id}/recommendations", "/v1/recommendations", "/v1/events"} <= ok_routes
    assert not [key for key in answered if key[2] >= 500]


def _fuzz(operation) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    @given(case=operation.as_strategy())
    def check(case) -> None:
        response = case.call()
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
        if case.path != "/metrics":
            assert response.headers["content-type"][0].startswith("application/json"), response.headers

    check()
