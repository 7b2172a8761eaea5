"""Schemathesis fuzzes the served OpenAPI of the real server: whatever it sends, never a 5xx, and every
rejected POST gets a JSON object naming the problem.

Driven through Hypothesis directly (schemathesis' pytest plugin does not run under pytest 9) with a
bounded number of examples per operation, so it stays well under two minutes.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 40
FUZZED = {("POST", "/decide"), ("POST", "/feedback"), ("POST", "/explain"), ("POST", "/decide_batch")}


def test_fuzzed_requests_never_get_a_5xx(server):
    schema = schemathesis.openapi.from_url(f"{server}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if (op.method.upper(), op.path) in FUZZED]
    assert {(op.method.upper(), op.path) for op in fuzzed} >= {("POST", "/decide"), ("POST", "/feedback")}
    failures: list[str] = []
    for operation in fuzzed:

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call(base_url=server, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path} -> {response.status_code}: {response.text[:200]} "
                                f"for body {case.body!r:.300}")
            elif response.status_code >= 400:
                body = response.json()
                if not (isinstance(body, dict) and body.get("error")):
                    failures.append(f"{case.method} {case.path}: error body must name the problem: {body!r:.200}")

        run()
    assert not failures, "\n".join(failures[:10])
