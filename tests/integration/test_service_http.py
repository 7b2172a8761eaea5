"""The HTTP edge of the real server: error bodies, body limit, no raw identifiers in the log,
/explain (never logged) and /decide_batch (logged, one decision per customer)."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def _count(settings) -> int:
    with sqlite3.connect(settings.decision_log) as db:
        return db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]


def test_unknown_decision_is_a_404_json_object(server):
    r = httpx.post(f"{server}/feedback", json={"decision_id": "nope", "action_id": "a", "outcome": "click"})
    assert r.status_code == 404
    assert r.json() == {"error": "unknown decision_id 'nope'"}


def test_oversized_body_is_a_413(server):
    body = b'{"customer": {"id_type": "cookie_id", "id": "' + b"x" * 70_000 + b'"}}'
    r = httpx.post(f"{server}/decide", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_oversized_chunked_body_is_a_413_and_a_small_one_is_read(server):
    """Without a content-length the guard counts the body itself (chunked transfer)."""
    head, tail = b'{"customer": {"id_type": "cookie_id", "id": "', b'"}}'
    big = httpx.post(f"{server}/decide", content=iter([head, b"x" * 40_000, b"x" * 40_000, tail]),
                     headers={"content-type": "application/json"})
    assert big.request.headers.get("transfer-encoding") == "chunked"
    assert big.status_code == 413 and "limit" in big.json()["error"]
    small = httpx.post(f"{server}/decide", content=iter([head, b"chunked-ok", tail]),
                       headers={"content-type": "application/json"})
    assert small.request.headers.get("transfer-encoding") == "chunked"
    assert small.status_code == 200 and small.json()["decision_id"]


@pytest.mark.parametrize("body, field", [
    ({"customer": {"id_type": "cookie_id", "id": "x"}, "limit": -1}, "limit"),
    ({"customer": {"id_type": "cookie_id"}}, "customer.id"),
    ({"customer": {"id_type": "cookie_id", "id": "x"}, "channel": 7}, "channel"),
    ({"customer": {"id_type": "cookie_id", "id": "x"}, "colour": "red"}, "colour"),
])
def test_bad_request_error_names_the_field(server, body, field):
    r = httpx.post(f"{server}/decide", json=body)
    assert r.status_code == 400
    assert field in r.json()["error"]


def test_raw_phone_and_email_in_a_bad_request_stay_out_of_the_log(world, server):
    settings, _ = world
    phone, email = "+86 138 0013 8000", "leak.check@example.com"
    bad = [{"customer": {"id_type": "phone", "id": phone}, "limit": phone},
           {"customer": {"id_type": "email", "id": email}, "limit": email},
           {"customer": {"id_type": "phone", "id": phone, "extra": email}}]
    for body in bad:
        assert httpx.post(f"{server}/decide", json=body).status_code == 400
    time.sleep(0.5)
    port = server.rsplit(":", 1)[1]
    text = (settings.home / "logs" / f"serve-{port}.log").read_text(errors="replace")
    assert "rejected bad request" in text, "the rejections are logged (masked), not silently dropped"
    for needle in ("13800138000", "138 0013 8000", email):
        assert needle not in text


def test_explain_shows_the_funnel_and_is_not_logged(world, server):
    settings, _ = world
    before = _count(settings)
    r = httpx.post(f"{server}/explain", json={"customer": {"id_type": "cookie_id", "id": "explain-me"},
                                              "channel": "sms"}, timeout=30)
    assert r.status_code == 200, r.text
    explanation = r.json()
    assert explanation["candidates"] and explanation["chosen"] == []
    assert all(c["removed_by"] for c in explanation["candidates"] if c["channel"] == "sms"), \
        "an unknown person on SMS: every candidate removed, each with its rule"
    assert _count(settings) == before


def test_decide_batch_answers_and_logs_each_customer(world, server):
    settings, _ = world
    before = _count(settings)
    requests = [{"customer": {"id_type": "cookie_id", "id": f"batch-{i}"}, "channel": "web"} for i in range(25)]
    r = httpx.post(f"{server}/decide_batch", json={"requests": requests}, timeout=60)
    assert r.status_code == 200, r.text
    decisions = r.json()["decisions"]
    assert len(decisions) == 25 and len({d["decision_id"] for d in decisions}) == 25
    assert _count(settings) == before + 25
    assert httpx.post(f"{server}/decide_batch", json={"requests": []}).status_code == 400
