"""The dashboard over real HTTP on loopback (a real store on both backends): what the page and its
JSON show, in which language and zone, that no personal data reaches them, and the guards of the
operator actions: off by default, then only with the token, a session, the form's CSRF token and
a request from the page's own origin; done and audited with the operator's name when all hold."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from dashboard_kit import (
    CONFIRM_ERROR,
    HUB,
    LOCAL,
    MARKERS,
    NOW,
    PARKED_ERROR,
    TOKEN,
    complaint,
    dashboard_config,
    seed,
    served,
)

from gateway._config import load_config
from gateway._errors import ConfigError
from gateway._store import Store
from gateway._store._operator import show_delivery
from gateway._web._dashboard import DashboardContext
from gateway._web._texts import EN, ID, TEXTS


@pytest.fixture
def store(store_url: str):
    s = Store(store_url, clock=lambda: NOW)
    yield s
    s.close()


@dataclass(frozen=True)
class FakeDeadlineCount:
    instance: str
    agency: str
    tier: str
    due_soon: int
    overdue: int


def context(store: Store, tmp_path: Path, **kwargs) -> DashboardContext:
    config = dashboard_config(tmp_path, store.url, local_zone=kwargs.pop("local_zone", None))
    return DashboardContext(store=store, config=config, clock=lambda: NOW, **kwargs)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client: httpx.Client, base: str, name: str = "Sari Operator", token: str = TOKEN) -> httpx.Response:
    form = client.get("/dashboard/signin?lang=en")
    assert form.status_code == 200, form.text
    return client.post(
        "/dashboard/signin",
        data={"csrf": csrf_of(form.text), "operator": name, "token": token, "lang": "en"},
        headers={"Origin": base},
    )


def test_both_languages_have_the_same_strings():
    assert set(ID) == set(EN)
    for key in ID:  # the same fields to fill in
        assert set(re.findall(r"{(\w+)}", ID[key])) == set(re.findall(r"{(\w+)}", EN[key])), key
    assert set(TEXTS) == {"id", "en"}


def test_the_page_shows_flow_waiting_deliveries_errors_and_breaker_in_both_languages(store, tmp_path):
    seeded = seed(store)
    with served(context(store, tmp_path)) as base, httpx.Client(base_url=base) as client:
        assert client.get("/").headers["location"] == "/dashboard"
        page = client.get("/dashboard")  # the configured default: Indonesian
        assert page.status_code == 200
        html = page.text
        assert '<html lang="id">' in html and ID["section_waiting"] in html and EN["section_waiting"] not in html
        for name in (LOCAL, HUB):
            assert f'data-instance="{name}"' in html
        # The waiting deliveries, each with its reason and what to do (the mark to look for at the hub).
        parked = _row(html, seeded.parked)
        assert 'data-state="parked"' in parked and "invalid fields: location_id" in parked
        assert ID["hint_parked"] in parked
        waiting = _row(html, seeded.needs_confirmation)
        assert "#lg_a1b2 in tags_raw" in waiting and ID["hint_confirm_create"] in waiting
        # Read-only: no action form anywhere.
        assert "<form" not in html.split("</header>")[1]
        # Times in the instance's zone (09:41 WIB is 02:41 UTC), the breaker and the job's error.
        assert "2026-11-30 09:41 WIB" in html
        assert 'class="breaker open"' in html and "answered HTTP 503" in html and "timed out" in html
        assert ID["deadlines_unavailable"] in html
        assert ID["daemon_unavailable"] in html  # served without a daemon's metrics

        english = client.get("/dashboard?lang=en").text
        assert '<html lang="en">' in english and EN["section_waiting"] in english and EN["hint_parked"] in english
        assert client.get("/dashboard?lang=xx").text.startswith('<!doctype html>\n<html lang="id">')

        summary = client.get("/dashboard/api/summary").json()
        assert [d["id"] for d in summary["waiting"]] == [seeded.parked, seeded.needs_confirmation]
        assert summary["waiting"][0]["last_error"] == PARKED_ERROR
        assert summary["waiting"][1]["last_error"] == CONFIRM_ERROR and summary["waiting"][1]["actions"] == [
            "resend",
            "link",
            "drop",
        ]
        (hub,) = [i for i in summary["instances"] if i["name"] == HUB]
        assert hub["owed"]["deliveries_parked"] == 1 and hub["owed"]["deliveries_needing_confirmation"] == 1
        assert hub["owed"]["deliveries_owed"] == 1 and hub["breaker"]["state"] == "open"
        assert summary["deadlines"] is None and summary["daemon"] is None

        # The live part the page reloads itself with, and its script.
        part = client.get("/dashboard/part?lang=en").text
        assert part.lstrip().startswith('<p class="meta">') and f'id="delivery-{seeded.parked}"' in part
        script = client.get("/static/dashboard.js")
        assert script.status_code == 200 and "/dashboard/part" not in script.text  # the URL comes from the page
        assert "script-src 'self'" in page.headers["content-security-policy"]


def _row(html: str, outbox_id: int) -> str:
    return re.search(rf'<tr id="delivery-{outbox_id}".*?</tr>', html, re.S).group(0)


def test_times_are_in_each_instances_zone(store, tmp_path):
    seed(store)
    ctx = context(store, tmp_path, local_zone="Asia/Makassar")
    with served(ctx) as base, httpx.Client(base_url=base) as client:
        summary = client.get("/dashboard/api/summary").json()
    zones = {i["name"]: (i["timezone"], i["zone_name"]) for i in summary["instances"]}
    assert zones == {LOCAL: ("Asia/Makassar", "WITA"), HUB: ("Asia/Jakarta", "WIB")}
    (hub,) = [i for i in summary["instances"] if i["name"] == HUB]
    assert hub["breaker"]["since_local"] == "2026-11-30 09:41 WIB"
    assert summary["generated_at"] == NOW.isoformat()


def test_deadlines_by_agency_and_runtime_budget_when_wired(store, tmp_path):
    seed(store)
    asked = []

    def counts(store_, now, due_within):
        asked.append((now, due_within))
        return [
            FakeDeadlineCount(LOCAL, "DPU", "answer", 3, 1),
            FakeDeadlineCount(LOCAL, "DISDIK", "answer", 0, 0),
            FakeDeadlineCount(HUB, "100234", "verify", 0, 4),
        ]

    ctx = context(
        store,
        tmp_path,
        deadline_counts=counts,
        runtime_state=lambda: {HUB: {"breaker_state": "closed", "budget_current_rps": 2.5, "budget_configured_rps": 5}},
    )
    with served(ctx) as base, httpx.Client(base_url=base) as client:
        summary = client.get("/dashboard/api/summary").json()
        html = client.get("/dashboard?lang=en").text
    assert set(asked) == {(NOW, timedelta(days=2))}
    assert [(d["agency"], d["due_soon"], d["overdue"]) for d in summary["deadlines"]] == [
        ("100234", 0, 4),
        ("DPU", 3, 1),
    ]
    assert "DISDIK" not in html and "<td>DPU</td>" in html
    (hub,) = [i for i in summary["instances"] if i["name"] == HUB]
    assert hub["breaker"]["state"] == "closed" and hub["budget"] == {"configured_rps": 5, "current_rps": 2.5}
    assert "2.5 of 5 requests/s" in html


def test_no_personal_data_in_the_page_the_part_or_the_json(store, tmp_path):
    seeded = seed(store)
    ctx = context(store, tmp_path, operator_actions=True, token=TOKEN)
    with served(ctx) as base, httpx.Client(base_url=base) as client:
        assert sign_in(client, base).status_code == 303
        outputs = [
            client.get(path).text
            for path in (
                "/dashboard",
                "/dashboard?lang=en",
                "/dashboard/part",
                "/dashboard/api/summary",
                "/dashboard/signin",
            )
        ]
    # The store does hold them: the test would pass for nothing otherwise.
    assert MARKERS["title"] in store.complaint(show_delivery(store, seeded.parked)["complaint_id"]).title
    for output in outputs:
        assert not re.search("zqx", output, re.I), output


# -- operator actions: the guards --------------------------------------------------------------


def test_actions_are_refused_when_off_even_with_a_token(store, tmp_path):
    seeded = seed(store)
    for ctx in (context(store, tmp_path), context(store, tmp_path, operator_actions=False, token=TOKEN)):
        with served(ctx) as base, httpx.Client(base_url=base) as client:
            assert client.get("/dashboard/signin").status_code == 403
            signed = client.post("/dashboard/signin", data={"operator": "x", "token": TOKEN}, headers={"Origin": base})
            assert signed.status_code == 403 and "gateway_session" not in signed.headers.get("set-cookie", "")
            acted = client.post(f"/dashboard/deliveries/{seeded.parked}/retry", headers={"Origin": base})
            assert acted.status_code == 403 and ID["forbidden_off"] in acted.text
    assert show_delivery(store, seeded.parked)["state"] == "parked"


def test_on_without_a_token_in_the_environment_the_page_says_so_and_stays_read_only(store, tmp_path, monkeypatch):
    monkeypatch.delenv("GATEWAY_DASHBOARD_TOKEN", raising=False)
    config = dashboard_config(tmp_path, store.url)
    config.settings.dashboard.operator_actions = True
    ctx = DashboardContext.from_config(config, store, environ={}, clock=lambda: NOW)
    assert not ctx.actions_on
    with served(ctx) as base, httpx.Client(base_url=base) as client:
        html = client.get("/dashboard").text
        assert "GATEWAY_DASHBOARD_TOKEN" in html and client.get("/dashboard/signin").status_code == 403
    with_token = DashboardContext.from_config(config, store, environ={"GATEWAY_DASHBOARD_TOKEN": TOKEN})
    assert with_token.actions_on and with_token.token == TOKEN and with_token.language == "id"


def test_config_check_wants_the_token_when_actions_are_on(tmp_path, store_url):
    dashboard_config(tmp_path, store_url)
    path = tmp_path / "gateway.yaml"
    path.write_text(path.read_text() + "dashboard:\n  operator_actions: true\n  language: en\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={"GATEWAY_DASHBOARD_TOKEN": "short"}, check_secrets=True)
    (issue,) = [i for i in raised.value.issues if i.key == "dashboard.operator_actions"]
    assert issue.line == path.read_text().splitlines().index("  operator_actions: true") + 1
    assert "GATEWAY_DASHBOARD_TOKEN" in issue.message and "too short" in issue.message
    config = load_config(path, environ={"GATEWAY_DASHBOARD_TOKEN": TOKEN}, check_secrets=False)
    assert config.settings.dashboard.operator_actions and config.settings.dashboard.language == "en"


def test_sign_in_refuses_a_wrong_or_missing_token_and_then_actions_stay_refused(store, tmp_path):
    seeded = seed(store)
    with served(context(store, tmp_path, operator_actions=True, token=TOKEN)) as base:
        with httpx.Client(base_url=base) as client:
            for token in ("", "tok-0123456789abcdef-tesT", TOKEN + "x"):
                refused = sign_in(client, base, token=token)
                assert refused.status_code == 401 and EN["signin_wrong"] in refused.text
                assert "gateway_session" not in refused.headers.get("set-cookie", "")
            # Without a session, an action is refused however well formed.
            acted = client.post(
                f"/dashboard/deliveries/{seeded.parked}/retry", data={"csrf": "x"}, headers={"Origin": base}
            )
            assert acted.status_code == 403 and ID["forbidden_session"] in acted.text
            # A forged session cookie is no session.
            client.cookies.set("gateway_session", "made-up")
            acted = client.post(
                f"/dashboard/deliveries/{seeded.parked}/retry", data={"csrf": "x"}, headers={"Origin": base}
            )
            assert acted.status_code == 403
        with httpx.Client(base_url=base) as client:
            # Sign-in itself needs its form's token and the page's origin.
            form = client.get("/dashboard/signin")
            data = {"csrf": csrf_of(form.text), "operator": "Sari", "token": TOKEN}
            assert (
                client.post("/dashboard/signin", data={**data, "csrf": "forged"}, headers={"Origin": base}).status_code
                == 403
            )
            assert (
                client.post("/dashboard/signin", data=data, headers={"Origin": "http://evil.example"}).status_code
                == 403
            )
            assert (
                client.post("/dashboard/signin", data={**data, "operator": " "}, headers={"Origin": base}).status_code
                == 400
            )
    assert show_delivery(store, seeded.parked)["state"] == "parked"
    assert [a["action"] for a in show_delivery(store, seeded.parked)["audit"]] == []


def test_too_many_wrong_tokens_close_the_sign_in_for_a_minute(store, tmp_path):
    now = [NOW]
    ctx = context(store, tmp_path, operator_actions=True, token=TOKEN)
    ctx = DashboardContext(**{**ctx.__dict__, "clock": lambda: now[0]})
    with served(ctx) as base, httpx.Client(base_url=base) as client:
        for _ in range(5):
            assert sign_in(client, base, token="wrong-token-guess").status_code == 401
        assert sign_in(client, base).status_code == 429  # even the right token, for now
        now[0] += timedelta(minutes=1, seconds=1)
        assert sign_in(client, base).status_code == 303


def test_actions_need_the_forms_csrf_token_and_the_pages_origin(store, tmp_path):
    seeded = seed(store)
    with (
        served(context(store, tmp_path, operator_actions=True, token=TOKEN)) as base,
        httpx.Client(base_url=base) as client,
    ):
        assert sign_in(client, base).status_code == 303
        page = client.get("/dashboard?lang=en").text
        csrf = csrf_of(page)
        url = f"/dashboard/deliveries/{seeded.parked}/retry"
        for data, headers, why in (
            ({}, {"Origin": base}, "forbidden_csrf"),
            ({"csrf": "forged-" + csrf[7:]}, {"Origin": base}, "forbidden_csrf"),
            ({"csrf": csrf}, {"Origin": "http://evil.example"}, "forbidden_origin"),
            ({"csrf": csrf}, {"Origin": base.replace("127.0.0.1", "localhost")}, "forbidden_origin"),
            ({"csrf": csrf}, {"Referer": "http://evil.example/page"}, "forbidden_origin"),
            ({"csrf": csrf}, {}, "forbidden_origin"),  # neither Origin nor Referer
        ):
            refused = client.post(url, data={**data, "lang": "en"}, headers=headers)
            assert refused.status_code == 403 and EN[why] in refused.text, (data, headers)
        assert show_delivery(store, seeded.parked)["state"] == "parked"
        # A Referer of the page itself will do where a browser sends no Origin.
        done = client.post(url, data={"csrf": csrf, "lang": "en"}, headers={"Referer": f"{base}/dashboard"})
        assert done.status_code == 303
    assert show_delivery(store, seeded.parked)["state"] == "pending"


def test_each_action_is_done_and_audited_with_the_operators_name(store, tmp_path):
    seeded = seed(store)
    with (
        served(context(store, tmp_path, operator_actions=True, token=TOKEN)) as base,
        httpx.Client(base_url=base) as client,
    ):
        signed = sign_in(client, base, name="  Sari   Operator ")
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        page = client.get(signed.headers["location"]).text
        assert 'class="operator">Sari Operator<' in page
        csrf = csrf_of(page)
        # The forms offered fit each delivery's state.
        assert re.findall(r'data-action="(\w+)"', _row(page, seeded.parked)) == ["retry", "drop"]
        assert re.findall(r'data-action="(\w+)"', _row(page, seeded.needs_confirmation)) == ["resend", "link", "drop"]

        def act(outbox_id, action, **data):
            answer = client.post(
                f"/dashboard/deliveries/{outbox_id}/{action}",
                data={"csrf": csrf, "lang": "en", **data},
                headers={"Origin": base},
            )
            assert answer.status_code == 303, answer.text
            return client.get(answer.headers["location"]).text

        # Refused by the store: said on the next page, nothing changed.
        shown = act(seeded.needs_confirmation, "retry")
        assert (
            f"Delivery {seeded.needs_confirmation} refused: delivery {seeded.needs_confirmation} is needs_confirmation"
            in shown
        )
        assert act(seeded.needs_confirmation, "link", external_id="  ").count("give the id it has at the peer") == 1

        assert EN["done"].format(id=seeded.parked, action="Retry") in act(seeded.parked, "retry")
        assert show_delivery(store, seeded.parked)["state"] == "pending"
        final = act(seeded.needs_confirmation, "link", external_id="4000123")
        assert show_delivery(store, seeded.needs_confirmation)["state"] == "done"
        audit = show_delivery(store, seeded.parked)["audit"] + show_delivery(store, seeded.needs_confirmation)["audit"]
        assert [(a["actor"], a["action"]) for a in audit] == [
            ("operator:Sari Operator", "delivery_retried"),
            ("operator:Sari Operator", "delivery_linked"),
        ]
        assert "id 4000123" in audit[1]["detail"]
        # The page lists the operators' actions with their names.
        assert final.count('<td class="actor">operator:Sari Operator</td>') == 2

        # Drop wants a reason.
        complaint_id, _ = store.take_in_complaint(LOCAL, HUB, complaint("LH-9"), None)
        (row,) = [r for r in store.claim_due(HUB, "d", timedelta(minutes=5)) if r.complaint_id == complaint_id]
        store.fail_delivery(row.id, "x: gave up after 8 attempts", retry_at=None, token=row.claim_token)
        assert "say why" in act(row.id, "drop", reason=" ")
        act(row.id, "drop", reason="forwarded by hand")
        assert show_delivery(store, row.id)["state"] == "dropped"
        assert show_delivery(store, row.id)["audit"][-1]["actor"] == "operator:Sari Operator"

        # Signing out ends the session: its cookie no longer acts.
        out = client.post("/dashboard/signout", data={"csrf": csrf}, headers={"Origin": base})
        assert out.status_code == 303
        again = client.post(
            f"/dashboard/deliveries/{seeded.parked}/drop", data={"csrf": csrf, "reason": "x"}, headers={"Origin": base}
        )
        assert again.status_code == 403


def test_an_action_keeps_the_pages_language_and_says_a_refusal_in_it(store, tmp_path):
    """A form that lost its ``lang`` field still lands on the page's language (the form's URL and
    the Referer carry it); a refusal is in that language, the store's English reason marked so."""
    seeded = seed(store)
    with (
        served(context(store, tmp_path, operator_actions=True, token=TOKEN)) as base,
        httpx.Client(base_url=base) as client,
    ):
        assert sign_in(client, base).status_code == 303
        for lang, texts in (("en", EN), ("id", ID)):
            page = client.get(f"/dashboard?lang={lang}").text
            assert f'action="/dashboard/deliveries/{seeded.parked}/retry?lang={lang}"' in page
            csrf = csrf_of(page)
            for url, headers in (
                ("/dashboard/deliveries/999999/retry", {"Referer": f"{base}/dashboard?lang={lang}"}),
                (f"/dashboard/deliveries/999999/retry?lang={lang}", {"Origin": base}),
            ):
                answer = client.post(url, data={"csrf": csrf}, headers=headers)  # no lang field
                assert answer.status_code == 303 and answer.headers["location"] == f"/dashboard?lang={lang}"
                shown = client.get(answer.headers["location"]).text
                assert texts["refused_english"].format(id=999999, error="no delivery 999999") in shown
                assert f'<html lang="{lang}">' in shown
                assert ("Delivery 999999" in shown) == (lang == "en")
            empty = client.post(
                f"/dashboard/deliveries/{seeded.needs_confirmation}/link?lang={lang}",
                data={"csrf": csrf, "external_id": " "},
                headers={"Origin": base},
            )
            shown = client.get(empty.headers["location"]).text
            expected = texts["refused"].format(id=seeded.needs_confirmation, error=texts["link_needs_id"])
            assert expected in shown


def test_a_store_that_cannot_be_read_is_said_plainly(tmp_path):
    db = tmp_path / "gone" / "gateway.db"
    db.parent.mkdir()
    store = Store(f"sqlite:///{db}", clock=lambda: NOW)
    try:
        seed(store)
        ctx = context(store, tmp_path)
        store.close()
        db.unlink()  # the next connection finds an empty file: no tables
        with served(ctx) as base, httpx.Client(base_url=base) as client:
            page, part, summary = (client.get(p) for p in ("/dashboard", "/dashboard/part", "/dashboard/api/summary"))
    finally:
        store.close()
    assert page.status_code == part.status_code == summary.status_code == 503
    assert ID["store_unavailable"] in page.text and ID["store_unavailable"] == part.text
    assert summary.json() == {"error": EN["store_unavailable"]}
    for answer in (page, part, summary):
        assert "Traceback" not in answer.text and "no such table" not in answer.text


@pytest.mark.anyio
async def test_runtime_state_of_an_engine_names_each_instances_breaker_and_budget(world, tmp_path):
    from gateway._engine import Engine
    from gateway._web._dashboard import runtime_state_of

    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}", clock=lambda: NOW)
    config = world.config(tmp_path, store.url)  # with the simulators' credentials
    config.instances[HUB].spec.budget.requests_per_second = 4.0
    try:
        async with Engine(config, store) as engine:
            engine.adapters[HUB].http.breaker.trip(0.0, "sp4n: GET /complaints/{id}: answered HTTP 503")
            state = runtime_state_of(engine)()
    finally:
        store.close()
    assert state[HUB]["breaker_state"] == "open" and state[LOCAL]["breaker_state"] == "closed"
    assert state[HUB]["budget_configured_rps"] == 4.0 and state[LOCAL]["budget_configured_rps"] is None


# -- this daemon's own metrics -------------------------------------------------------------------


@pytest.mark.anyio
async def test_this_daemons_section_shows_its_metrics_after_a_known_sync_as_metrics_serves_them(
    world, tmp_path, store_url
):
    from test_metrics import Scrape

    from gateway._engine import Engine
    from gateway._errors import TransientPeerError
    from gateway._web._context import WebContext
    from gateway._web._metric_names import DELIVERIES, JOB_DURATION, PEER_REQUESTS
    from gateway._web._metrics import Metrics
    from gateway._web._server import WebServer, build_app

    world.step()
    config = world.config(tmp_path, store_url)
    store = Store(store_url)
    metrics = Metrics()
    passes = 2
    try:
        async with Engine(config, store, seed=1) as engine:
            metrics.watch(engine)
            for _ in range(passes):
                await engine.run_pass()
            # The hub answers 429 to every attempt of one read.
            world.hub.faults.configure(throttle_rate=1.0, retry_after_seconds=0)
            with pytest.raises(TransientPeerError):
                await engine.adapters[HUB].http.request("GET", "/complaints/1")
            world.hub.faults.configure(throttle_rate=0.0)
            server = WebServer(build_app(WebContext(engine, config, metrics, lambda: True)), "127.0.0.1", 0)
            await server.start()
            try:
                async with httpx.AsyncClient(base_url=server.url) as client:
                    summary = (await client.get("dashboard/api/summary")).json()
                    english = (await client.get("dashboard?lang=en")).text
                    indonesian = (await client.get("dashboard")).text
                    scrape = (await client.get("metrics")).text
            finally:
                await server.stop()
    finally:
        store.close()

    served = Scrape(scrape)

    def total(name: str, **match: str) -> float:  # over the labels not named
        return sum(v for labels, v in served.series(name).items() if match.items() <= dict(labels).items())

    daemon = summary["daemon"]
    assert daemon["metrics_path"] == "/metrics"
    assert [i["name"] for i in daemon["instances"]] == [LOCAL, HUB]
    figures = {i["name"]: i for i in daemon["instances"]}
    hub, local = figures[HUB], figures[LOCAL]
    created = len(world.hub.complaints())
    assert created == len(world.local.complaints()) > 0
    # Deliveries by outcome, over every kind: as /metrics counts them.
    assert hub["deliveries"]["delivered"] == total(DELIVERIES, adapter=HUB, outcome="delivered") >= created
    assert hub["deliveries"]["parked"] == 0 and set(hub["deliveries"]) == set(local["deliveries"])
    assert local["deliveries"]["delivered"] == total(DELIVERIES, adapter=LOCAL, outcome="delivered") > 0
    # Requests by answer, over every method; the 429s the throttled read got.
    attempts = config.instances[HUB].spec.http_retries.attempts
    hub_codes = {r["code"]: r["count"] for r in hub["requests"]}
    assert hub_codes["429"] == attempts == hub["rate_limited"] == total(PEER_REQUESTS, adapter=HUB, code="429")
    assert hub_codes["200"] == total(PEER_REQUESTS, adapter=HUB, code="200") > created
    assert local["rate_limited"] == 0 and "429" not in {r["code"] for r in local["requests"]}
    # Job runs: one of each per pass, the mean as the histogram's sum over its count, the last run's time.
    jobs = {j["job"]: j for j in hub["jobs"]}
    poll = jobs["hub_poll"]
    assert poll["runs"] == passes == total(JOB_DURATION + "_count", adapter=HUB, task="hub_poll")
    assert poll["mean_seconds"] == pytest.approx(total(JOB_DURATION + "_sum", adapter=HUB, task="hub_poll") / passes)
    assert 0 < poll["last_seconds"] < 60
    assert jobs["reference"]["runs"] == 1  # read on the first pass only

    # The page: the section in each language, the 429s highlighted, the link to /metrics.
    for html, texts in ((english, EN), (indonesian, ID)):
        section = re.search(r'<section id="daemon">.*?</section>', html, re.S).group(0)
        assert texts["section_daemon"] in section and '<a href="/metrics">/metrics</a>' in section
        hub_row = re.search(rf'<tr data-instance="{HUB}">.*?</tr>', section, re.S).group(0)
        assert f'<li data-code="429" class="alarm">429 <b>{attempts}</b></li>' in hub_row
        assert f'<li data-outcome="delivered">{texts["outcome_delivered"]} <b>{hub["deliveries"]["delivered"]}</b>' in (
            hub_row
        )
    last, mean = f"{poll['last_seconds']:.3g}", f"{poll['mean_seconds']:.3g}"
    assert f"hub_poll: {last} / {mean} s ({passes}×)" in english


def test_a_job_the_daemon_has_not_run_yet_is_said_so():
    from gateway._web._dashboard import _job_text
    from gateway._web._metrics import Metrics

    metrics = Metrics()
    metrics.job_duration.labels(HUB, "hub_poll")  # as watch() starts the daemon's jobs at 0
    (job,) = metrics.own_figures()[HUB]["jobs"]
    assert job == {"job": "hub_poll", "runs": 0, "mean_seconds": None, "last_seconds": None}
    assert _job_text(job, ID) == "hub_poll: belum berjalan" and _job_text(job, EN) == "hub_poll: not run yet"
    metrics.job_ran(HUB, "hub_poll", 0.5)
    metrics.job_ran(HUB, "hub_poll", 1.5)
    (job,) = metrics.own_figures()[HUB]["jobs"]
    assert (job["runs"], job["mean_seconds"], job["last_seconds"]) == (2, 1.0, 1.5)
    assert _job_text(job, EN) == "hub_poll: 1.5 / 1 s (2×)"


def test_the_daemon_section_keys_are_in_both_languages():
    keys = {"section_daemon", "daemon_since_start", "daemon_unavailable", "col_deliveries", "col_requests"}
    keys |= {"col_jobs", "code_error", "no_requests", "job_runs", "job_not_run"}
    keys |= {f"outcome_{o}" for o in ("delivered", "retried", "refused", "parked", "needs_confirmation")}
    for texts in (ID, EN):
        assert keys <= set(texts)
    assert ID["section_daemon"] != EN["section_daemon"]


def test_an_action_on_a_store_another_process_holds_is_refused_plainly(tmp_path, monkeypatch):
    """Found by the operator review: an action while the SQLite file's lock was held by another
    process (a sqlite3 shell, a backfill) answered HTTP 500 with aiohttp's bare error page; it is
    refused on the page like any other, naming the store, and nothing is changed."""
    import sqlite3

    import gateway._store._engine as engine_module

    monkeypatch.setattr(engine_module, "SQLITE_LOCK_WAIT_SECONDS", 0.05)
    path = tmp_path / "held.db"
    store = Store(f"sqlite:///{path}", clock=lambda: NOW)
    try:
        seeded = seed(store)
        with (
            served(context(store, tmp_path, operator_actions=True, token=TOKEN)) as base,
            httpx.Client(base_url=base) as client,
        ):
            assert sign_in(client, base).status_code == 303
            csrf = csrf_of(client.get("/dashboard?lang=en").text)
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                answer = client.post(
                    f"/dashboard/deliveries/{seeded.parked}/retry",
                    data={"csrf": csrf, "lang": "en"},
                    headers={"Origin": base},
                )
            finally:
                holder.rollback()
                holder.close()
            assert answer.status_code == 303, answer.text
            shown = client.get(answer.headers["location"]).text
            assert "refused: The store cannot be read now" in shown, shown
        assert show_delivery(store, seeded.parked)["state"] == "parked"
    finally:
        store.close()
