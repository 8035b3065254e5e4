"""Working-day deadlines, the calendar and the rules alone (no store): Indonesia's public holidays
and cuti bersama from the holidays package, counted in the local app's own zone (WIB, WITA),
corrected in YAML, tiered per route and per classification; and the config errors of these keys."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import edit, line_of
from test_config import ENV, LOCAL, issues
from typer.testing import CliRunner

from gateway._config import load_config
from gateway._deadlines import (
    LAPOR_RULE,
    DeadlineRules,
    Tier,
    WorkingCalendar,
    national_days,
    years_without_cuti_bersama,
)
from gateway._deadlines._config import rules_for
from gateway.cli import app

WIB, WITA = ZoneInfo("Asia/Jakarta"), ZoneInfo("Asia/Makassar")


def at(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_idul_fitri_and_its_cuti_bersama_are_days_off():
    days_2026, days_2027 = national_days(2026), national_days(2027)
    # Idul Fitri 1447 H: Saturday 21 and Sunday 22 March 2026, cuti bersama on the 20th, 23rd and 24th.
    assert {date(2026, 3, d) for d in (20, 21, 22, 23, 24)} <= set(days_2026)
    assert "Idul Fitri" in days_2026[date(2026, 3, 21)]
    # 1448 H: Wednesday 10 and Thursday 11 March 2027; cuti bersama 9, 12 and 15 March.
    assert {date(2027, 3, d) for d in (9, 10, 11, 12, 15)} <= set(days_2027)
    calendar = WorkingCalendar(zone=WIB)
    assert calendar.day_off(date(2026, 3, 23)) is not None  # a Monday of cuti bersama
    assert calendar.is_working_day(date(2026, 3, 25))


def test_three_working_days_across_idul_fitri_2026_in_wib():
    rules = DeadlineRules(calendar=WorkingCalendar(zone=WIB))
    filed = at("2026-03-17T10:00", WIB)  # Tuesday before Nyepi and Lebaran
    schedule = rules.schedule("pengaduan", filed, {})
    # Wednesday 18 (Nyepi's cuti bersama) to Tuesday 24 are all off: Wed 25, Thu 26, Fri 27.
    assert schedule[Tier.VERIFY] == (filed, at("2026-03-28T00:00", WIB))
    # The answer counts on from there: Mon 30, Tue 31, Wed 1, Thu 2, (Good Friday), Mon 6 April.
    assert schedule[Tier.ANSWER][1] == at("2026-04-07T00:00", WIB)
    # Without the package's days (weekends only) it would have been due on Friday the 20th.
    weekends_only = WorkingCalendar(zone=WIB, removed=frozenset(national_days(2026)))
    assert weekends_only.add_working_days(filed, 3) == at("2026-03-21T00:00", WIB)


def test_near_midnight_the_zone_decides_the_day_and_lebaran_makes_it_a_week():
    """Filed on the Friday before Lebaran 2027 at 00:30 in Makassar: still Thursday 23:30 in
    Semarang. The same moment gives a Semarang complaint a deadline a day earlier."""
    filed = datetime(2027, 3, 4, 16, 30, tzinfo=UTC)
    assert filed.astimezone(WITA).strftime("%a %H:%M") == "Fri 00:30"
    assert filed.astimezone(WIB).strftime("%a %H:%M") == "Thu 23:30"
    semarang = DeadlineRules(calendar=WorkingCalendar(zone=WIB)).due(Tier.VERIFY, "pengaduan", filed)
    makassar = DeadlineRules(calendar=WorkingCalendar(zone=WITA)).due(Tier.VERIFY, "pengaduan", filed)
    # Semarang: Friday 5, then (Nyepi, Lebaran and its cuti bersama to Monday 15) Tuesday 16, Wednesday 17.
    assert semarang == at("2027-03-18T00:00", WIB)
    # Makassar: the filing day is Friday itself: Tuesday 16, Wednesday 17, Thursday 18.
    assert makassar == at("2027-03-19T00:00", WITA)
    assert makassar - semarang == timedelta(hours=23)  # a day later, less the hour WITA is ahead


def test_yaml_corrections_add_a_day_and_take_back_a_moved_one():
    filed = at("2026-03-17T10:00", WIB)
    # The government moved the cuti bersama of Friday 20 March: a working day after all.
    moved = WorkingCalendar(zone=WIB, removed=frozenset({date(2026, 3, 20)}))
    assert moved.add_working_days(filed, 3) == at("2026-03-27T00:00", WIB)  # Fri 20, Wed 25, Thu 26
    # A regional day off on Wednesday 25 March pushes it on to Monday 30.
    regional = WorkingCalendar(zone=WIB, added={date(2026, 3, 25): "Hari jadi (contoh)"})
    assert regional.day_off(date(2026, 3, 25)) == "Hari jadi (contoh)"
    assert regional.add_working_days(filed, 3) == at("2026-03-31T00:00", WIB)


def test_a_tier_counts_from_when_the_one_before_was_met():
    rules = DeadlineRules(calendar=WorkingCalendar(zone=WIB))
    filed = at("2026-11-23T09:00", WIB)  # a Monday
    verified = at("2026-11-24T15:00", WIB)  # Tuesday
    schedule = rules.schedule("pengaduan", filed, {Tier.VERIFY: verified})
    assert schedule[Tier.VERIFY][1] == at("2026-11-27T00:00", WIB)
    assert schedule[Tier.ANSWER] == (verified, at("2026-12-02T00:00", WIB))  # Wed 25 .. Tue 1 Dec
    assert schedule[Tier.CLOSE][0] == at("2026-12-02T00:00", WIB)  # not answered: from the answer's deadline


def test_per_classification_tiers_from_the_semarang_yaml(repo_config_dir: Path):
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    rules = rules_for(config.instances["lapor-hendi-semarang"].spec, config.settings.deadlines)
    assert rules.days("pengaduan") == {Tier.VERIFY: 3, Tier.ANSWER: 14, Tier.CLOSE: 10}
    assert rules.days("aspirasi")[Tier.ANSWER] == 5
    assert rules.days("whistleblowing")[Tier.ANSWER] == 60
    assert rules.fingerprint("aspirasi") != rules.fingerprint("whistleblowing")
    # Makassar's example app keeps LAPOR!'s rule, counted in WITA.
    makassar = rules_for(config.instances["open311-makassar"].spec, config.settings.deadlines)
    assert makassar.days("pengaduan") == dict(LAPOR_RULE)
    assert str(makassar.calendar.zone) == "Asia/Makassar"


def test_gateway_yaml_corrections_reach_every_route_and_a_route_adds_its_own(repo_config_dir: Path):
    edit(
        repo_config_dir / "gateway.yaml",
        "    add: []",
        "    add: [{day: 2026-12-31, name: Cuti bersama akhir tahun}]",
    )
    edit(
        repo_config_dir / LOCAL,
        "    # calendar:              # Kota Semarang's own days off, on top of the national ones\n"
        "    #   add: [{day: 2027-05-02, name: Hari Jadi Kota Semarang}]",
        "    calendar:\n      add: [{day: 2026-12-30, name: Hari jadi (contoh)}]\n      remove: [2026-12-24]",
    )
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    calendar = rules_for(config.instances["lapor-hendi-semarang"].spec, config.settings.deadlines).calendar
    assert calendar.day_off(date(2026, 12, 31)) == "Cuti bersama akhir tahun"
    assert calendar.day_off(date(2026, 12, 30)) == "Hari jadi (contoh)"
    assert calendar.is_working_day(date(2026, 12, 24))  # its Christmas cuti bersama taken back
    other = rules_for(config.instances["open311-makassar"].spec, config.settings.deadlines).calendar
    assert other.day_off(date(2026, 12, 31)) == "Cuti bersama akhir tahun"
    assert other.day_off(date(2026, 12, 24)) is not None and other.is_working_day(date(2026, 12, 30))


def test_zero_working_days_is_due_by_the_end_of_the_day_the_tier_starts(repo_config_dir: Path):
    # 0 is accepted (docs/deadlines.md): verify by the end of the filing day, even a Saturday; a
    # later tier of 0 is due with the tier before it.
    text = edit(repo_config_dir / "gateway.yaml", "    verify: 3\n    answer: 5", "    verify: 0\n    answer: 0")
    assert "verify: 0" in text
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    rules = rules_for(config.instances["open311-makassar"].spec, config.settings.deadlines)
    assert rules.days("pengaduan")[Tier.VERIFY] == 0 and rules.days("pengaduan")[Tier.ANSWER] == 0
    saturday = at("2026-11-28T15:00", WITA)
    verify = rules.calendar.add_working_days(saturday, 0)
    assert verify == at("2026-11-29T00:00", WITA).astimezone(UTC)
    # A later tier of 0 counted from that deadline (the midnight that ends Saturday) ends with it.
    assert rules.calendar.add_working_days(verify, 0, after_deadline=True) == verify
    assert rules.schedule("pengaduan", saturday, {})[Tier.ANSWER] == (verify, verify)


def test_years_whose_cuti_bersama_the_package_does_not_know_are_named():
    # 2026 is decreed and in the package; no package will know 2090's (decrees come a year ahead).
    assert years_without_cuti_bersama(date(2026, 6, 1), []) == []
    assert years_without_cuti_bersama(date(2090, 11, 1), []) == [2090, 2091]
    # Once a day of the year is added in gateway.yaml, the operator has the decree in hand.
    assert years_without_cuti_bersama(date(2090, 11, 1), [date(2091, 1, 2)]) == [2090]
    assert years_without_cuti_bersama(date(2090, 6, 1), []) == [2090]  # 120 days ahead: still 2090


def test_config_check_notes_a_year_without_cuti_bersama_and_still_passes(repo_config_dir: Path, monkeypatch):
    monkeypatch.setattr("gateway._deadlines._calendar.cuti_bersama_known", lambda year: year != date.today().year)
    result = CliRunner().invoke(app, ["--config", str(repo_config_dir / "gateway.yaml"), "config", "check"], env=ENV)
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert f"knows no cuti bersama of {date.today().year}" in words and "deadlines.calendar.add" in words
    assert f"cuti bersama of {date.today().year + 1}" not in words

    edit(repo_config_dir / "gateway.yaml", "    add: []", f"    add: [{{day: {date.today().year}-12-31, name: Cuti}}]")
    quiet = CliRunner().invoke(app, ["--config", str(repo_config_dir / "gateway.yaml"), "config", "check"], env=ENV)
    assert quiet.exit_code == 0 and "cuti bersama" not in quiet.output


# -- config errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("      aspirasi: {answer: 5}", "      aspirasi: {answer: -5}", "greater than or equal to 0"),
        ("      aspirasi: {answer: 5}", "      aspirasi: {answr: 5}", "unknown key"),
        ("      aspirasi: {answer: 5}", "      aspiration: {answer: 5}", "pengaduan"),
        ("      answer: 14             # a pengaduan: no field check", "      answer: lots", "integer"),
    ],
)
def test_a_bad_deadline_key_is_reported_with_file_and_line(repo_config_dir: Path, old: str, new: str, words: str):
    path = repo_config_dir / LOCAL
    text = edit(path, old, new)
    [issue] = [i for i in issues(repo_config_dir) if "deadlines" in i.key]
    assert issue.file == str(path)
    assert issue.line == line_of(text, new.strip())
    assert words in issue.message


def test_a_day_both_added_and_removed_is_reported(repo_config_dir: Path):
    path = repo_config_dir / "gateway.yaml"
    text = edit(path, "    remove: []", "    remove: [2026-12-31]")
    text = edit(path, "    add: []", "    add: [{day: 2026-12-31, name: Cuti}]")
    [issue] = [i for i in issues(repo_config_dir) if i.key.startswith("deadlines")]
    assert issue.file == str(path) and issue.line == line_of(text, "  calendar:")
    assert "2026-12-31 is both added and removed" in issue.message


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ("{day: 2027-02-30, name: X}", "deadlines.calendar.add.0.day"),
        ("{day: 2027-13-45, name: X}", "deadlines.calendar.add.0.day"),
    ],
)
def test_an_impossible_date_is_reported_with_file_line_and_key(repo_config_dir: Path, entry: str, key: str):
    # ruamel's timestamp constructor raised a bare ValueError: "invalid YAML (ValueError)", no line.
    path = repo_config_dir / "gateway.yaml"
    text = edit(path, "    add: []", f"    add:\n      - {entry}")
    [issue] = issues(repo_config_dir)
    assert issue.file == str(path) and issue.key == key
    assert issue.line == line_of(text, entry)
    assert "date" in issue.message


def test_an_impossible_date_in_remove_is_reported_too(repo_config_dir: Path):
    path = repo_config_dir / "gateway.yaml"
    text = edit(path, "    remove: []", "    remove: [2028-02-30]")
    [issue] = issues(repo_config_dir)
    assert issue.file == str(path) and issue.key.startswith("deadlines.calendar.remove")
    assert issue.line == line_of(text, "remove: [2028-02-30]")


@pytest.mark.parametrize("key", ["deadline_working_days: 7", "holidays: [2026-12-25]"])
def test_the_old_polling_deadline_keys_are_refused_with_where_they_went(repo_config_dir: Path, key: str):
    path = repo_config_dir / "adapters/sp4n.yaml"
    text = path.read_text() + f"polling:\n  min_interval_minutes: 10\n  {key}\n"
    path.write_text(text)
    [issue] = [i for i in issues(repo_config_dir) if i.key.startswith("polling")]
    assert issue.file == str(path) and issue.line == line_of(text, "polling:")
    assert f"polling.{key.split(':')[0]} is no longer read" in issue.message
    assert "deadlines" in issue.message


@pytest.mark.parametrize("second", [0, 1])
def test_a_complaint_filed_at_midnight_counts_from_that_day_as_one_filed_a_second_later(second: int):
    # "whatever the hour of filing" (docs/deadlines.md): Tuesday 1 December 2026 at 00:00:00 WIB
    # is a Tuesday complaint, as at 00:00:01; it was due on Thursday the 3rd's end before.
    filed = at("2026-12-01T00:00", WIB) + timedelta(seconds=second)
    rules = DeadlineRules(calendar=WorkingCalendar(zone=WIB))
    assert rules.due(Tier.VERIFY, "pengaduan", filed) == at("2026-12-05T00:00", WIB)  # Wed 2, Thu 3, Fri 4
    # With 0 working days, by the end of the filing day, not at the filing instant itself.
    assert rules.calendar.add_working_days(filed, 0) == at("2026-12-02T00:00", WIB)


def test_a_midnight_filing_in_wita_across_lebaran_is_a_complaint_of_that_day():
    # 00:00 WITA on Friday 5 March 2027 (Thursday 23:00 WIB): Friday's in Makassar, as at 00:30
    # (test_near_midnight_the_zone_decides_the_day_and_lebaran_makes_it_a_week), Thursday's in Semarang.
    filed = at("2027-03-05T00:00", WITA)
    makassar = DeadlineRules(calendar=WorkingCalendar(zone=WITA))
    semarang = DeadlineRules(calendar=WorkingCalendar(zone=WIB))
    assert makassar.due(Tier.VERIFY, "pengaduan", filed) == at("2027-03-19T00:00", WITA)  # Tue 16, Wed 17, Thu 18
    assert semarang.due(Tier.VERIFY, "pengaduan", filed) == at("2027-03-18T00:00", WIB)  # Fri 5, Tue 16, Wed 17


@pytest.mark.parametrize(
    ("midnight", "three_days", "zero_days"),
    [
        # Christmas Eve's cuti bersama 2026, a Thursday: Fri 25 (Natal) off, Mon 28, Tue 29, Wed 30.
        ("2026-12-24T00:00", "2026-12-31T00:00", "2026-12-25T00:00"),
        # A Saturday: Mon 30 November, Tue 1, Wed 2 December.
        ("2026-11-28T00:00", "2026-12-03T00:00", "2026-11-29T00:00"),
        # The Monday of Lebaran's cuti bersama 2027 (15 March): Tue 16, Wed 17, Thu 18.
        ("2027-03-15T00:00", "2027-03-19T00:00", "2027-03-16T00:00"),
    ],
)
def test_a_midnight_filing_on_a_day_off_counts_from_that_day_in_wita(midnight: str, three_days: str, zero_days: str):
    calendar = WorkingCalendar(zone=WITA)
    filed = at(midnight, WITA)
    assert not calendar.is_working_day(filed.date())
    assert calendar.add_working_days(filed, 3) == at(three_days, WITA)
    # 0 working days: the end of that day off itself (docs/deadlines.md), not the filing instant.
    assert calendar.add_working_days(filed, 0) == at(zero_days, WITA)


def test_a_tier_counted_from_a_deadline_keeps_the_day_after_it_and_one_from_a_midnight_step_counts_that_day():
    rules = DeadlineRules(calendar=WorkingCalendar(zone=WIB))
    filed = at("2026-12-01T00:00", WIB)  # Tuesday, midnight
    schedule = rules.schedule("pengaduan", filed, {})
    assert schedule[Tier.VERIFY] == (filed, at("2026-12-05T00:00", WIB))
    # Not verified: the answer counts from the end of Friday 4: Mon 7 .. Fri 11.
    assert schedule[Tier.ANSWER] == (at("2026-12-05T00:00", WIB), at("2026-12-12T00:00", WIB))
    # Then 10 from the end of Friday 11: 14-18, 21-23, (24 and 25 off), 28, 29.
    assert schedule[Tier.CLOSE] == (at("2026-12-12T00:00", WIB), at("2026-12-30T00:00", WIB))
    # Verified at the hub at midnight on Wednesday 2: the answer counts from Wednesday (Thu 3 ..
    # Wed 9), as for a step at any other hour of that day.
    verified = at("2026-12-02T00:00", WIB)
    schedule = rules.schedule("pengaduan", filed, {Tier.VERIFY: verified})
    assert schedule[Tier.ANSWER] == (verified, at("2026-12-10T00:00", WIB))
