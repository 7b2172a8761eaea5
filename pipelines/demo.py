"""`nba demo`: build the whole loop on a small simulated world, serve it, and call it over HTTP."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import httpx
import pandas as pd

from config import Settings
from features.adapters import raw_sources, read_raw
from pipelines import stages
from pipelines.server import start_server, stop_server, wait_ready

# Data the demo rebuilds from scratch on every run; MLflow history and the decision log are kept.
REBUILT = ("raw", "truth", "lake", "quarantine", "identity", "features", "feast")


@dataclass(frozen=True)
class DemoCall:
    label: str
    channel: str
    id_type: str
    id: str


def mask(id_type: str, value: str) -> str:
    """What the demo may print of an identifier: never a whole phone number or e-mail."""
    if id_type == "phone":
        national = "".join(ch for ch in value if ch.isdigit())[-11:]
        return f"{national[:3]}****{national[-4:]}"
    if id_type == "email":
        return "***@" + value.strip().split("@")[-1].lower()
    return value


def _first_identifier(events: pd.DataFrame, channel: str, event_type: str | None, id_type: str) -> str | None:
    rows = events[events["channel"] == channel]
    if event_type:
        rows = rows[rows["event_type"] == event_type]
    for raw in rows["identifiers"]:
        value = json.loads(raw).get(id_type)
        if value:
            return value
    return None


def pick_calls(raw_events: pd.DataFrame) -> list[DemoCall]:
    """Customers as channel apps know them: a phone at the POS, a cookie on the web, a WeChat openid."""
    phone = _first_identifier(raw_events, "pos", "order", "phone")
    cookie = _first_identifier(raw_events, "web", "login", "cookie_id")
    openid = _first_identifier(raw_events, "mini_program", "bind", "wechat_openid") or _first_identifier(
        raw_events, "wechat_oa", None, "wechat_openid")
    calls = []
    if phone:
        calls += [DemoCall("store POS, phone", "pos", "phone", phone),
                  DemoCall("SMS campaign, same phone", "sms", "phone", phone)]
    if cookie:
        calls.append(DemoCall("website, cookie", "web", "cookie_id", cookie))
    if openid:
        calls.append(DemoCall("WeChat official account, openid", "wechat_oa", "wechat_openid", openid))
    calls.append(DemoCall("website, a cookie never seen before", "web", "cookie_id", "ck-demo-unknown"))
    return calls


def call_service(url: str, calls: list[DemoCall], echo=print) -> list[dict]:
    answers = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for call in calls:
            body = {"customer": {"id_type": call.id_type, "id": call.id}, "channel": call.channel, "limit": 3}
            response = client.post("/decide", json=body)
            response.raise_for_status()
            answer = response.json()
            answers.append(answer)
            echo(f"\n/decide  {call.label}: {call.id_type}={mask(call.id_type, call.id)} on {call.channel}")
            echo(f"  person {answer['person_id']}  cold_start={answer['cold_start']}  "
                 f"models {answer['model_versions']}")
            for a in answer["actions"]:
                echo(f"  - {a['action_id']:<22} {a['channel']:<12} score {a['score']:.3f}  "
                     f"P {a['propensity']:.3f}  V {a['value']:g}")
            if not answer["actions"]:
                echo("  (no action: nothing eligible on this channel, e.g. no consent)")
        served = next((a for a in answers if a["actions"]), None)
        if served:
            fb = {"decision_id": served["decision_id"], "action_id": served["actions"][0]["action_id"],
                  "outcome": "conversion", "value": 25.0}
            for attempt in ("first", "repeat"):
                r = client.post("/feedback", json=fb)
                echo(f"\n/feedback ({attempt}) {fb['action_id']} conversion -> {r.status_code} {r.json()}")
        r = client.post("/feedback", json={"decision_id": "no-such-decision", "action_id": "x",
                                           "outcome": "click"})
        echo(f"/feedback unknown decision -> {r.status_code} {r.text}")
    return answers


def run_demo(settings: Settings, customers: int, days: int, seed: int, serve: bool, port: int, echo=print):
    for name in REBUILT:
        shutil.rmtree(settings.home / name, ignore_errors=True)
    stages.build_all(settings, customers, days, seed, echo)
    url = f"http://{settings.serving.host}:{port}"
    with stages.stage("serve", echo):
        process = start_server(settings, port)
        wait_ready(url, process)
        echo(f"  BentoML service ready at {url}")
    try:
        raw = read_raw(raw_sources(settings.raw_dir))[["channel", "event_type", "identifiers"]]
        call_service(url, pick_calls(raw), echo)
        if serve:
            echo(f"\nServing at {url}  (OpenAPI docs at {url}/docs; Ctrl-C to stop)")
            process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(process)
