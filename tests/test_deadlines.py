"""Working-day deadlines in the store, on SQLite and PostgreSQL: computed when a complaint is taken
in, computed again when the rules change, met or missed from what a hub read shows (in the read's
own transaction), counted per agency for the metrics and the dashboard, listed by `gateway
deadlines`; and end to end over loopback HTTP with the SP4N simulator."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update as sa_update
from sqlmodel import col, select
from test_hub_contract_flow import HUB as FLOW_HUB
from test_hub_contract_flow import LOCAL as FLOW_LOCAL
from test_hub_contract_flow import flow, new_complaint
from test_store import HUB, LOCAL, REPORTER, FakeClock, make_complaint
from typer.testing import CliRunner

import gateway.cli._context as cli_context
from gateway._deadlines import DeadlineRules, Tier, WorkingCalendar
from gateway._deadlines._calendar import fingerprint
from gateway._engine import Engine
from gateway._model import Classification, Status
from gateway._store import Store
from gateway._store._deadlines import (
    DeadlineCount,
    deadline_counts,
    list_deadlines,
    open_deadlines,
    refresh_deadlines,
)
from gateway._store._hub_reads import HubEvent, HubStatus, apply_hub_read, hub_view
from gateway._store._privacy import erase_complaint, purge_closed
from gateway._store._tables import ComplaintDeadlineRow, OutboxRow
from gateway._web._store_figures import StoreFigures
from gateway.cli import app

WIB = ZoneInfo("Asia/Jakarta")
MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 09:00 WIB, no holiday that week
RULES = DeadlineRules(calendar=WorkingCalendar(zone=WIB))


def wib(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=WIB)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY)


@pytest.fixture
def store(store_url: str, clock: FakeClock):
    s = Store(store_url, clock=clock)
    yield s
    s.close()


def take_in(store: Store, ref: str, *, filed: datetime = MONDAY, **fields) -> int:
    complaint = replace(make_complaint(ref), created_at=filed, updated_at=filed, **fields)
    complaint_id, _new = store.take_in_complaint(LOCAL, HUB, complaint, Status.UNVERIFIED)
    return complaint_id


def deadlines_of(store: Store, complaint_id: int) -> dict[str, ComplaintDeadlineRow]:
    with store.session() as s:
        rows = s.exec(select(ComplaintDeadlineRow).where(ComplaintDeadlineRow.complaint_id == complaint_id)).all()
        return {r.tier: r for r in rows}


def hub_read(store: Store, complaint_id: int, *events: HubEvent, status: Status, rules: DeadlineRules = RULES) -> None:
    seen: list[tuple[datetime, ...]] = []

    def next_read(now, last_change, closed_at, deadlines):
        seen.append(deadlines)
        return now + timedelta(hours=6)

    apply_hub_read(
        store,
        complaint_id,
        HUB,
        events=list(events),
        echoes=[],
        status=HubStatus("x", status.value, status, True),
        next_read=next_read,
        deadlines=rules,
    )


def status_event(ref: str, status: Status, at: datetime) -> HubEvent:
    return HubEvent(kind="status_change", hub_ref=ref, occurred_at=at, raw_status=(ref, status.value), status=status)


# -- computed, and computed again ---------------------------------------------------------------------


def test_deadlines_are_computed_once_per_complaint_by_the_rules(store: Store):
    complaint_id = take_in(store, "LH-1")
    assert refresh_deadlines(store, LOCAL, RULES) == 1
    rows = deadlines_of(store, complaint_id)
    assert rows["verify"].due_at == wib("2026-11-27T00:00")  # Tue, Wed, Thu
    assert rows["answer"].starts_at == rows["verify"].due_at
    assert rows["answer"].due_at == wib("2026-12-04T00:00")  # Fri .. Thu
    assert rows["close"].due_at == wib("2026-12-18T00:00")
    assert {r.met_at for r in rows.values()} == {None} and {r.outcome for r in rows.values()} == {None}
    assert refresh_deadlines(store, LOCAL, RULES) == 0  # same rules: nothing to do


def test_other_rules_recompute_stored_deadlines_and_keep_what_was_met(store: Store, clock: FakeClock):
    complaint_id = take_in(store, "LH-1")
    other_kind = take_in(store, "LH-2", classification=Classification.ASPIRATION)
    refresh_deadlines(store, LOCAL, RULES)
    hub_read(store, complaint_id, status_event("s1", Status.VERIFIED, wib("2026-11-24T10:00")), status=Status.VERIFIED)
    before = deadlines_of(store, complaint_id)

    stricter = replace(RULES, by_classification={"pengaduan": {Tier.ANSWER: 2}})
    assert refresh_deadlines(store, LOCAL, stricter) == 1  # the aspirasi keeps its fingerprint
    after = deadlines_of(store, complaint_id)
    assert after["verify"].met_at == before["verify"].met_at == wib("2026-11-24T10:00")
    assert after["answer"].starts_at == wib("2026-11-24T10:00")
    assert after["answer"].due_at == wib("2026-11-27T00:00")  # 2 working days from Tuesday: Wed, Thu
    assert after["answer"].rules != before["answer"].rules
    assert deadlines_of(store, other_kind)["answer"].rules == before["answer"].rules

    calendar = WorkingCalendar(zone=WIB, added={datetime(2026, 11, 25).date(): "Hari libur daerah (contoh)"})
    assert refresh_deadlines(store, LOCAL, replace(stricter, calendar=calendar)) == 2
    assert deadlines_of(store, complaint_id)["answer"].due_at == wib("2026-11-28T00:00")


def test_a_complaint_filed_at_midnight_gets_the_same_deadline_as_later_that_day_and_old_rows_are_recomputed(
    store: Store,
):
    midnight = take_in(store, "LH-1", filed=wib("2026-12-01T00:00"))  # Tuesday 00:00:00 WIB
    a_second_later = take_in(store, "LH-2", filed=wib("2026-12-01T00:00:01"))
    assert refresh_deadlines(store, LOCAL, RULES) == 2
    for complaint_id in (midnight, a_second_later):
        rows = deadlines_of(store, complaint_id)
        assert rows["verify"].due_at == wib("2026-12-05T00:00")  # Wed 2, Thu 3, Fri 4
        assert rows["answer"].due_at == wib("2026-12-12T00:00")  # from the end of Friday 4: Mon 7 .. Fri 11

    # Rows stored by the count before (a midnight filing from the day before, due a day early) carry
    # a fingerprint without its part: they are computed again.
    parts = [p for p in RULES.calendar.fingerprint_parts() if not p.startswith("counting=")]
    days = RULES.days("pengaduan")
    old = fingerprint([*parts, *(f"{t}={days[t]}" for t in (Tier.VERIFY, Tier.ANSWER, Tier.CLOSE))])
    assert old != RULES.fingerprint("pengaduan")
    with store.session() as s:
        for row in s.exec(select(ComplaintDeadlineRow).where(ComplaintDeadlineRow.complaint_id == midnight)):
            row.rules = old
            if row.tier == "verify":
                row.due_at = wib("2026-12-04T00:00")
            s.add(row)
    assert refresh_deadlines(store, LOCAL, RULES) == 1
    assert deadlines_of(store, midnight)["verify"].due_at == wib("2026-12-05T00:00")


def test_a_complaint_kept_off_the_hub_has_no_deadlines_until_it_is_created(store: Store, clock: FakeClock):
    """A backfill reads years of closed complaints; the route keeps them off the hub (their create
    skipped), and they must not fill `gateway deadlines --over`."""
    old = replace(make_complaint("LH-1"), created_at=MONDAY - timedelta(days=400), updated_at=MONDAY)
    [(complaint_id, _new)] = store.take_in_complaints(
        LOCAL, HUB, [(old, Status.DONE)], not_at_hub={"LH-1": "closed before the gateway ran"}
    )
    assert refresh_deadlines(store, LOCAL, RULES) == 0
    assert deadlines_of(store, complaint_id) == {} and list_deadlines(store, MONDAY, over=True) == []

    clock.advance(days=1)  # reopened: now inside the route's rule, created at the hub
    reopened = replace(old, updated_at=clock.now, status=make_complaint().status)
    store.take_in_complaints(LOCAL, HUB, [(reopened, Status.UNVERIFIED)])
    assert refresh_deadlines(store, LOCAL, RULES, [complaint_id]) == 1
    assert set(deadlines_of(store, complaint_id)) == {"verify", "answer", "close"}


# -- met or missed ------------------------------------------------------------------------------------


def test_a_verified_status_meets_verify_and_the_answer_counts_from_it(store: Store):
    complaint_id = take_in(store, "LH-1")
    refresh_deadlines(store, LOCAL, RULES)
    hub_read(store, complaint_id, status_event("s0", Status.UNVERIFIED, MONDAY), status=Status.UNVERIFIED)
    assert {r.met_at for r in deadlines_of(store, complaint_id).values()} == {None}

    verified = wib("2026-11-25T11:00")
    hub_read(store, complaint_id, status_event("s1", Status.VERIFIED, verified), status=Status.VERIFIED)
    rows = deadlines_of(store, complaint_id)
    assert (rows["verify"].met_at, rows["verify"].outcome) == (verified, "met")
    assert rows["answer"].starts_at == verified and rows["answer"].due_at == wib("2026-12-03T00:00")
    assert rows["answer"].met_at is None
    assert hub_view(store, complaint_id, HUB).deadlines == (rows["answer"].due_at,)  # its current tier


def test_a_late_answer_is_missed_and_closing_meets_the_last_tier(store: Store, clock: FakeClock):
    complaint_id = take_in(store, "LH-1")
    refresh_deadlines(store, LOCAL, RULES)
    hub_read(store, complaint_id, status_event("s1", Status.VERIFIED, wib("2026-11-24T10:00")), status=Status.VERIFIED)
    answer_due = deadlines_of(store, complaint_id)["answer"].due_at
    late = answer_due + timedelta(days=3)
    clock.now = late + timedelta(hours=1)
    answer = HubEvent(kind="follow_up", hub_ref="f1", occurred_at=late, content="Sudah ditangani dinas.")
    hub_read(store, complaint_id, answer, status=Status.VERIFIED)
    rows = deadlines_of(store, complaint_id)
    assert (rows["answer"].met_at, rows["answer"].outcome) == (late, "missed")
    assert rows["close"].starts_at == late

    done = late + timedelta(days=1)
    hub_read(store, complaint_id, status_event("s2", Status.DONE, done), status=Status.DONE)
    rows = deadlines_of(store, complaint_id)
    assert (rows["close"].met_at, rows["close"].outcome) == (done, "met")
    assert hub_view(store, complaint_id, HUB).deadlines == ()


def test_closing_before_any_answer_meets_every_tier_at_its_time(store: Store):
    complaint_id = take_in(store, "LH-1")
    refresh_deadlines(store, LOCAL, RULES)
    rejected = wib("2026-12-10T09:00")  # after the verify deadline, within the answer's
    hub_read(store, complaint_id, status_event("s1", Status.REJECTED, rejected), status=Status.REJECTED)
    rows = deadlines_of(store, complaint_id)
    assert {t: (r.met_at, r.outcome) for t, r in rows.items()} == {
        "verify": (rejected, "missed"),
        "answer": (rejected, "met"),
        "close": (rejected, "met"),
    }


# -- counts and lists -----------------------------------------------------------------------------------


def test_deadline_counts_by_agency_and_tier(store: Store, clock: FakeClock):
    rules = replace(RULES, tiers={Tier.VERIFY: 0, Tier.ANSWER: 5, Tier.CLOSE: 10})  # verify: by the filing day's end
    late = take_in(store, "LH-1", filed=MONDAY - timedelta(days=2), agency="DPU")  # Saturday: due at its end
    take_in(store, "LH-2", agency="DPU")
    take_in(store, "LH-3", agency="Dinkes")
    take_in(store, "LH-4")
    met = take_in(store, "LH-5", agency="Dinkes")
    refresh_deadlines(store, LOCAL, rules)
    hub_read(store, met, status_event("s1", Status.VERIFIED, MONDAY), status=Status.VERIFIED, rules=rules)

    counts = deadline_counts(store, MONDAY, timedelta(days=2))
    assert counts == [
        DeadlineCount(LOCAL, "(none)", "verify", due_soon=1, overdue=0),
        DeadlineCount(LOCAL, "DPU", "verify", due_soon=1, overdue=1),
        DeadlineCount(LOCAL, "Dinkes", "verify", due_soon=1, overdue=0),
    ]
    # Only each complaint's current tier counts: the answer of the one verified, not the answers
    # (provisional, counted from the verify deadline) of those the hub has not verified yet.
    wide = {(c.agency, c.tier): (c.due_soon, c.overdue) for c in deadline_counts(store, MONDAY, timedelta(days=30))}
    assert wide == {
        ("(none)", "verify"): (1, 0),
        ("DPU", "verify"): (1, 1),
        ("Dinkes", "verify"): (1, 0),
        ("Dinkes", "answer"): (1, 0),
    }

    [over] = list_deadlines(store, MONDAY, over=True)
    assert (over.local_ref, over.agency, over.tier, over.state) == ("LH-1", "DPU", "verify", "overdue")
    assert over.gateway_ref == store.complaint(late).gateway_ref
    soon = list_deadlines(store, MONDAY, due_within=timedelta(days=2))
    assert [i.local_ref for i in soon] == ["LH-2", "LH-3", "LH-4"] and {i.state for i in soon} == {"due soon"}
    every = list_deadlines(store, MONDAY, soon=timedelta(days=2))
    first, last = every[0], every[-1]
    assert (first.local_ref, first.tier, first.state) == ("LH-1", "verify", "overdue")
    assert (last.local_ref, last.tier, last.state) == ("LH-5", "answer", "open")
    assert len(every) == 5  # one current tier per complaint


def test_an_agency_field_with_personal_data_in_it_is_shown_masked(store: Store):
    """The agency is the local app's own text: someone may type a name and a number into it."""
    take_in(store, "LH-1", filed=MONDAY - timedelta(days=7), agency="Pak Joko 081277770099")
    refresh_deadlines(store, LOCAL, RULES)
    [count] = deadline_counts(store, MONDAY, timedelta(days=2))
    [item] = list_deadlines(store, MONDAY, over=True)
    assert count.agency == item.agency == "Pak Joko <phone>"


# -- erased and withdrawn complaints, purged ones ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["erase", "withdraw"])
def test_an_erased_or_withdrawn_complaint_has_no_open_deadline_anywhere(store: Store, clock: FakeClock, kind: str):
    """The hub is not read again after an erasure, so a deadline left open would be overdue for good
    (and counted in the metrics and on the dashboard): none of an erased complaint is open."""
    rules = replace(RULES, tiers={Tier.VERIFY: 0, Tier.ANSWER: 5, Tier.CLOSE: 10})
    late = take_in(store, "LH-1", filed=MONDAY - timedelta(days=2), agency="DPU")  # verify overdue
    kept = take_in(store, "LH-2", agency="DPU")
    verified = take_in(store, "LH-3", agency="Dinkes")
    refresh_deadlines(store, LOCAL, rules)
    hub_read(store, verified, status_event("s1", Status.VERIFIED, MONDAY), status=Status.VERIFIED, rules=rules)
    assert [i.local_ref for i in list_deadlines(store, MONDAY, over=True)] == ["LH-1"]

    erase_complaint(store, LOCAL, "LH-1", kind=kind)
    erase_complaint(store, LOCAL, "LH-3", kind=kind)  # at its answer, the verify met

    assert deadline_counts(store, MONDAY, timedelta(days=30)) == [
        DeadlineCount(LOCAL, "DPU", "verify", due_soon=1, overdue=0)  # LH-2's alone
    ]
    assert list_deadlines(store, MONDAY, over=True) == []
    assert [i.local_ref for i in list_deadlines(store, MONDAY)] == ["LH-2"]
    assert [i.local_ref for i in list_deadlines(store, MONDAY, due_within=timedelta(days=30))] == ["LH-2"]
    with store.session() as s:  # what the hub poll would read near (it reads an erased complaint no more)
        assert open_deadlines(s, late) == () and open_deadlines(s, verified) == ()
        assert open_deadlines(s, kept) == (wib("2026-11-24T00:00"),)
    # The metrics (and the dashboard, from the same counts) count nothing of them.
    figures = {
        m.name: m.samples for m in StoreFigures(store, {LOCAL: "local"}, deadline_counts=deadline_counts).collect()
    }
    overdue = {tuple(x.labels.values()): x.value for x in figures["lapor_gateway_complaints_overdue"]}
    due_soon = {tuple(x.labels.values()): x.value for x in figures["lapor_gateway_complaints_due_soon"]}
    assert overdue == {(LOCAL, "DPU"): 0} and due_soon == {(LOCAL, "DPU"): 1}

    # Their rows stay as they were at the erasure, and are not computed again when the rules change.
    rows = deadlines_of(store, late)
    assert rows["verify"].met_at is None and rows["verify"].outcome is None
    assert deadlines_of(store, verified)["verify"].outcome == "met"
    fingerprint_then = rows["verify"].rules
    assert refresh_deadlines(store, LOCAL, replace(rules, tiers={**rules.tiers, Tier.VERIFY: 2})) == 1  # LH-2
    assert deadlines_of(store, late)["verify"].rules == fingerprint_then
    assert deadline_counts(store, MONDAY, timedelta(days=30))[0].due_soon == 1


def test_a_purged_complaint_was_closed_so_it_has_no_open_deadline(store: Store, clock: FakeClock):
    """The retention purge takes closed complaints only, and the hub's closing meets every tier:
    nothing of a purged complaint is left open (the purge itself leaves the deadlines alone)."""
    complaint_id = take_in(store, "LH-1", agency="DPU")
    refresh_deadlines(store, LOCAL, RULES)
    hub_read(store, complaint_id, status_event("s1", Status.DONE, wib("2026-11-24T10:00")), status=Status.DONE)
    with store.session() as s:  # delivered (a purge waits for what is owed)
        s.execute(sa_update(OutboxRow).where(col(OutboxRow.complaint_id) == complaint_id).values(state="done"))
    clock.now += timedelta(days=3)
    assert purge_closed(store, LOCAL, 0).complaints == 1
    assert {r.outcome for r in deadlines_of(store, complaint_id).values()} == {"met"}
    later = clock.now + timedelta(days=60)
    assert deadline_counts(store, later, timedelta(days=2)) == [] and list_deadlines(store, later) == []


# -- the CLI ----------------------------------------------------------------------------------------------


@pytest.fixture
def cli_store(store_url: str, monkeypatch: pytest.MonkeyPatch, repo_config_dir):
    """A store at a fixed time with three complaints, for ``gateway deadlines`` (which opens it itself)."""
    clock = FakeClock(MONDAY)
    store = Store(store_url, clock=clock)
    rules = replace(RULES, tiers={Tier.VERIFY: 0, Tier.ANSWER: 5, Tier.CLOSE: 10})
    take_in(store, "LH-1", filed=MONDAY - timedelta(days=2), agency="DPU")
    take_in(store, "LH-2", agency="DPU")
    take_in(store, "LH-3", agency="Dinkes")
    refresh_deadlines(store, LOCAL, rules)
    store.close()
    monkeypatch.setattr(cli_context, "_open_store", lambda config: Store(store_url, clock=clock))
    monkeypatch.setattr(cli_context.out, "_width", 160)  # an operator's terminal, not CliRunner's 80 columns
    return repo_config_dir


def store_ref(config_dir, local_ref: str) -> str:
    store = cli_context._open_store(None)  # type: ignore[arg-type]
    try:
        complaint_id = store.complaint_id_for(LOCAL, local_ref)
        assert complaint_id is not None
        return store.complaint(complaint_id).gateway_ref
    finally:
        store.close()


def deadlines_cli(config_dir, *args: str):
    return CliRunner().invoke(app, ["--config", str(config_dir / "gateway.yaml"), "deadlines", *args])


def test_cli_lists_overdue_deadlines_in_the_apps_zone_without_personal_data(cli_store):
    result = deadlines_cli(cli_store, "--over")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "LH-1" in flat and "DPU" in flat and "verify" in flat and "overdue" in flat
    assert "2026-11-22 00:00 WIB" in flat  # the end of its filing day (Saturday) in Semarang
    assert store_ref(cli_store, "LH-1") in flat
    assert "LH-2" not in flat
    for personal in (REPORTER.name, REPORTER.nik, REPORTER.phone, REPORTER.email, "Pandanaran"):
        assert personal not in result.output


@pytest.mark.parametrize("withdraw", [False, True])
def test_cli_an_erased_complaint_leaves_the_overdue_list_and_the_counts(cli_store, withdraw: bool):
    assert "LH-1" in deadlines_cli(cli_store, "--over", "--json").output
    config = str(cli_store / "gateway.yaml")
    erase = ["--config", config, "privacy", "erase", "--app", LOCAL, "--ref", "LH-1", *(["--withdraw"] * withdraw)]
    result = CliRunner().invoke(app, erase)
    assert result.exit_code == 0, result.output
    assert json.loads(deadlines_cli(cli_store, "--over", "--json").output) == []
    every = json.loads(deadlines_cli(cli_store, "--json").output)
    assert sorted(r["local_ref"] for r in every) == ["LH-2", "LH-3"]
    counts = json.loads(deadlines_cli(cli_store, "--by-agency", "--json").output)
    assert {(c["agency"], c["tier"]): (c["due_soon"], c["overdue"]) for c in counts} == {
        ("DPU", "verify"): (1, 0),
        ("Dinkes", "verify"): (1, 0),
    }


def test_cli_json_and_by_agency(cli_store):
    result = deadlines_cli(cli_store, "--due-within", "2d", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["local_ref"], r["tier"], r["state"], r["due_at"]) for r in rows] == [
        ("LH-2", "verify", "due soon", "2026-11-24T00:00+07:00"),
        ("LH-3", "verify", "due soon", "2026-11-24T00:00+07:00"),
    ]
    counts = json.loads(deadlines_cli(cli_store, "--by-agency", "--json").output)
    assert {(c["agency"], c["tier"]): (c["due_soon"], c["overdue"]) for c in counts} == {
        ("DPU", "verify"): (1, 1),
        ("Dinkes", "verify"): (1, 0),
    }
    table = deadlines_cli(cli_store, "--by-agency", "--over")
    assert table.exit_code == 0 and "DPU" in table.output and "Dinkes" not in table.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--due-within", "2x"], "'2x' is not a duration"),
        (["--due-within", ""], "is not a duration"),
        (["--due-within", "2d", "--over"], "exclude each other"),
        # Past ten years the date arithmetic would overflow (an internal error before).
        (["--due-within", "99999999d"], "is longer than 3650 days"),
        (["--due-within", "99999999d", "--by-agency"], "is longer than 3650 days"),
        (["--due-within", "1e300d"], "is not a duration"),
        (["--due-within", "3651d"], "is longer than 3650 days"),
    ],
)
def test_cli_refuses_a_bad_duration_clearly(cli_store, args: list[str], words: str):
    result = deadlines_cli(cli_store, *args)
    assert result.exit_code == 2
    assert words in " ".join(result.output.split())
    assert "Traceback" not in result.output


# -- end to end -----------------------------------------------------------------------------------------


async def filed(f) -> tuple[int, int, dict[str, ComplaintDeadlineRow]]:
    """A complaint filed at the local app and taken in: (local id, gateway id, its deadlines)."""
    local_id = await new_complaint(f)
    complaint_id = f.complaint_id(local_id)
    return local_id, complaint_id, deadlines_of(f.store, complaint_id)


@pytest.mark.e2e
@pytest.mark.anyio
async def test_a_hub_answer_over_http_settles_the_deadlines_met_then_missed(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id, complaint_id, rows = await filed(f)
        rules = f.engine.routes[FLOW_LOCAL].deadlines
        complaint = f.store.complaint(complaint_id)
        assert rows["verify"].due_at == rules.due(Tier.VERIFY, complaint.classification, complaint.local_created_at)
        assert rows["verify"].met_at is None

        world.hub.act(f.hub_id(local_id), "Terverifikasi")  # on the simulators' clock, minutes after filing
        await f.passes()
        rows = deadlines_of(f.store, complaint_id)
        assert rows["verify"].outcome == "met" and rows["verify"].met_at is not None
        assert rows["answer"].starts_at == rows["verify"].met_at
        assert rows["answer"].met_at is None

        world.clock.advance(90 * 24 * 3600)  # the agency takes three months
        world.hub.act(f.hub_id(local_id), "Dalam Proses")
        await f.passes()
        rows = deadlines_of(f.store, complaint_id)
        assert rows["answer"].outcome == "missed"
        assert rows["answer"].met_at > rows["answer"].due_at
        assert rows["close"].met_at is None and rows["close"].starts_at == rows["answer"].met_at
        assert f.engine.routes[FLOW_LOCAL].hub.name == FLOW_HUB


@pytest.mark.e2e
@pytest.mark.anyio
async def test_an_engine_computes_stored_deadlines_again_when_the_rules_changed(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        _local_id, complaint_id, before = await filed(f)
        route = f.config.instances[FLOW_LOCAL].spec.route
        assert route is not None
        route.deadlines.tiers.verify = 10  # the operator edits the YAML and restarts the daemon

        async with Engine(f.config, f.store, seed=4) as restarted:
            await restarted.intake(FLOW_LOCAL)
        after = deadlines_of(f.store, complaint_id)
        assert after["verify"].rules != before["verify"].rules
        assert after["verify"].starts_at == before["verify"].starts_at
        assert after["verify"].due_at == restarted.routes[FLOW_LOCAL].deadlines.due(
            Tier.VERIFY, f.store.complaint(complaint_id).classification, before["verify"].starts_at
        )
        assert after["verify"].due_at > before["verify"].due_at
