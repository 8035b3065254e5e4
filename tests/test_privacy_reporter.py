"""The reporter's identity is kept only where a local app's configured purpose needs it
(``privacy.reporter``), and then only encrypted (docs/privacy-reporter.md): the store on both
backends, the config check, and `gateway privacy new-key | rotate-keys | minimise | reporter`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import edit, line_of, set_privacy
from sqlalchemy import MetaData, insert, select, text
from typer.testing import CliRunner

import gateway.cli
from gateway import Classification, Complaint, ConfigError, RawStatus, Reporter, Status
from gateway._config import load_config
from gateway._personal_data import KEYS_ENV, PersonalDataKeys, ReporterKeeping, UnreadableError, new_key
from gateway._store import Store
from gateway._store._reporters import ReporterLookupError, show_reporter, tidy_reporters
from gateway._store._tables import AuditRow, ReporterRow, table_of

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
LOCAL, OTHER, HUB = "lapor-hendi-semarang", "wargaku-surabaya", "sp4n"
MARK = "ZQXPDP"  # in every reporter field: found in the database, it was stored readable


def reporter(n: int) -> Reporter:
    return Reporter(
        name=f"Siti {MARK}NAMA{n} Rahma",
        nik=f"{MARK}NIK{n}",
        phone=f"0812{MARK}TEL{n}",
        email=f"{MARK}EMAIL{n}@example.co.id",
        address=f"Jl. Pemuda {MARK}ALAMAT{n}",
    )


def complaint(n: int, *, anonymous: bool = False, who: Reporter | None = None) -> Complaint:
    return Complaint(
        ref=f"LH-{n}",
        title="Jalan berlubang",
        body="Lubang besar di depan toko.",
        created_at=T0,
        updated_at=T0,
        status=RawStatus("belum terverifikasi"),
        category="Jalan Rusak",
        classification=Classification.COMPLAINT,
        is_anonymous=anonymous,
        reporter=who or reporter(n),
    )


def keeping(keys: str, *fields: str) -> ReporterKeeping:
    return ReporterKeeping(fields or ("name", "phone"), PersonalDataKeys.from_text(keys))


def dump(store: Store) -> str:
    """Every row of every table, as text: what a database dump would hold."""
    meta = MetaData()
    meta.reflect(store.engine)
    with store.engine.connect() as conn:
        return "\n".join(repr(tuple(row)) for table in meta.sorted_tables for row in conn.execute(select(table)).all())


def database_bytes(store_url: str) -> bytes:
    """The SQLite database's files as they lie on disk (its WAL too); empty for PostgreSQL."""
    if not store_url.startswith("sqlite"):
        return b""
    path = Path(store_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


@pytest.fixture
def store(store_url: str):
    s = Store(store_url, clock=lambda: T0)
    yield s
    s.close()


def reporter_rows(store: Store) -> list[ReporterRow]:
    with store.session() as s:
        return list(s.exec(select(ReporterRow).order_by(ReporterRow.complaint_id)).scalars().all())


# -- the store -----------------------------------------------------------------------------------


def test_by_default_no_reporter_is_stored_at_all(store: Store, store_url: str):
    for n in range(1, 4):
        store.take_in_complaint(LOCAL, HUB, complaint(n), Status.UNVERIFIED)

    assert reporter_rows(store) == []
    everything = dump(store)
    assert "Jalan berlubang" in everything and MARK not in everything  # the dump holds the complaints, not them
    store.close()
    assert MARK.encode() not in database_bytes(store_url)


def test_a_purpose_keeps_its_fields_encrypted_and_nothing_else(store: Store, store_url: str):
    key = new_key()
    kept = keeping(key, "name", "phone")
    ids = [store.take_in_complaint(LOCAL, HUB, complaint(n), Status.UNVERIFIED, reporters=kept)[0] for n in (1, 2)]
    anonymous, _ = store.take_in_complaint(LOCAL, HUB, complaint(3, anonymous=True), Status.UNVERIFIED, reporters=kept)
    unkept_only, _ = store.take_in_complaint(
        LOCAL, HUB, complaint(4, who=Reporter(email="x@example.co.id")), Status.UNVERIFIED, reporters=kept
    )

    rows = reporter_rows(store)
    assert [r.complaint_id for r in rows] == ids  # neither the anonymous one nor one with no kept field
    for n, row in enumerate(rows, 1):
        assert (row.nik, row.email, row.address) == (None, None, None)
        assert kept.keys.open(row.name) == reporter(n).name and kept.keys.open(row.phone) == reporter(n).phone
    everything = dump(store)
    assert rows[0].name in everything and MARK not in everything  # the ciphertext is there, the values are not
    store.close()
    assert MARK.encode() not in database_bytes(store_url)


def test_showing_a_reporter_is_audited_with_the_operator_and_the_fields_never_the_values(store: Store):
    kept = keeping(new_key(), "name", "nik", "phone")
    complaint_id, _ = store.take_in_complaint(LOCAL, HUB, complaint(1), Status.UNVERIFIED, reporters=kept)

    shown = show_reporter(store, LOCAL, "LH-1", kept, actor="operator:Sari")

    assert shown.shown == {"name": reporter(1).name, "nik": reporter(1).nik, "phone": reporter(1).phone}
    with store.session() as s:
        (audit,) = s.exec(select(AuditRow)).scalars().all()
    assert (audit.actor, audit.action, audit.complaint_id) == ("operator:Sari", "reporter_shown", complaint_id)
    assert "name, nik, phone" in audit.detail and MARK not in audit.detail
    with pytest.raises(ReporterLookupError, match="no complaint 'LH-9'"):
        show_reporter(store, LOCAL, "LH-9", kept, actor="operator:Sari")


def _audit(store: Store) -> list[tuple[str, str, str]]:
    with store.session() as s:
        return [(a.actor, a.action, a.detail) for a in s.exec(select(AuditRow).order_by(AuditRow.id)).scalars().all()]


def test_values_no_key_opens_are_audited_as_not_shown_never_as_shown(store: Store):
    """A review of issue 13: with only a key that cannot open them, the command printed "(not
    shown: no key opens it)" and the audit must not say the fields were shown."""
    a, b = new_key(), new_key()
    store.take_in_complaint(LOCAL, HUB, complaint(1), Status.UNVERIFIED, reporters=keeping(a, "name", "phone", "nik"))

    shown = show_reporter(store, LOCAL, "LH-1", keeping(b, "name", "phone", "nik"), actor="operator:Sari")

    assert shown.shown == {} and shown.unreadable == ["name", "phone", "nik"]
    assert _audit(store) == [
        (
            "operator:Sari",
            "reporter_not_shown",
            f"the reporter's name, phone, nik not shown: no key in {KEYS_ENV} opens them",
        )
    ]


def test_a_reporter_shown_in_part_is_audited_with_what_was_shown_and_what_was_not(store: Store):
    a, b = new_key(), new_key()
    complaint_id, _ = store.take_in_complaint(
        LOCAL, HUB, complaint(1), Status.UNVERIFIED, reporters=keeping(a, "name", "phone")
    )
    with store.session() as s:  # the phone sealed under a key that is no longer in the list
        row = s.get(ReporterRow, complaint_id)
        row.phone = keeping(b).keys.seal(reporter(1).phone)
        s.add(row)

    shown = show_reporter(store, LOCAL, "LH-1", keeping(a, "name", "phone"), actor="operator:Sari")

    assert shown.shown == {"name": reporter(1).name} and shown.unreadable == ["phone"]
    assert _audit(store) == [
        ("operator:Sari", "reporter_shown", f"the reporter's name shown for the purpose of {LOCAL}"),
        ("operator:Sari", "reporter_not_shown", f"the reporter's phone not shown: no key in {KEYS_ENV} opens them"),
    ]
    assert MARK not in str(_audit(store))


def test_rotation_re_encrypts_with_the_first_key_so_that_the_old_one_can_go(store: Store):
    a, b = new_key(), new_key()
    for n in range(1, 4):
        store.take_in_complaint(LOCAL, HUB, complaint(n), Status.UNVERIFIED, reporters=keeping(a))
    with pytest.raises(UnreadableError):  # before the rotation, B alone opens nothing
        keeping(b).keys.open(reporter_rows(store)[0].name)

    report = tidy_reporters(store, {LOCAL: keeping(f"{b},{a}")}, mode="rotate", actor="operator:Sari")

    counts = report.by_app[LOCAL]
    assert (counts.rows, counts.resealed, counts.unreadable) == (3, 6, 0)
    only_b = keeping(b).keys
    assert [(only_b.open(r.name), only_b.open(r.phone)) for r in reporter_rows(store)] == [
        (reporter(n).name, reporter(n).phone) for n in range(1, 4)
    ]
    again = tidy_reporters(store, {LOCAL: keeping(b)}, mode="rotate", actor="operator:Sari")
    assert (again.by_app[LOCAL].resealed, again.by_app[LOCAL].unchanged) == (0, 6)
    with store.session() as s:
        audits = s.exec(select(AuditRow.actor, AuditRow.action, AuditRow.detail)).all()
    assert [(actor, action) for actor, action, _ in audits] == [("operator:Sari", "reporter_keys_rotated")] * 2
    assert all(MARK not in detail for _, _, detail in audits)


def test_a_wrong_key_opens_nothing_and_changes_nothing(store: Store):
    store.take_in_complaint(LOCAL, HUB, complaint(1), Status.UNVERIFIED, reporters=keeping(new_key()))
    before = reporter_rows(store)

    report = tidy_reporters(store, {LOCAL: keeping(new_key())}, mode="rotate", actor="operator:Sari")

    assert (report.unreadable, report.by_app[LOCAL].resealed) == (2, 0)
    assert [(r.name, r.phone) for r in reporter_rows(store)] == [(r.name, r.phone) for r in before]


def test_minimise_deletes_what_no_purpose_keeps_and_encrypts_what_an_older_version_left_plain(store: Store):
    # Rows as the version before this one wrote them: every field, in plain text.
    ids = {}
    for instance, n in ((LOCAL, 1), (LOCAL, 2), (OTHER, 3)):
        ids[n], _ = store.take_in_complaint(instance, HUB, complaint(n), Status.UNVERIFIED)
        with store.session() as s:
            s.connection().execute(insert(table_of(ReporterRow)), {"complaint_id": ids[n], **asdict(reporter(n))})
    kept = keeping(new_key(), "name", "phone")

    dry = tidy_reporters(store, {LOCAL: kept, OTHER: None}, mode="minimise", dry_run=True, actor="operator:Sari")
    assert dry.by_app[OTHER].deleted_rows == 1 and MARK in dump(store)  # counted, not done

    report = tidy_reporters(store, {LOCAL: kept, OTHER: None}, mode="minimise", actor="operator:Sari")

    local, other = report.by_app[LOCAL], report.by_app[OTHER]
    assert (local.sealed, local.removed, local.deleted_rows) == (4, 6, 0)
    assert (other.removed, other.deleted_rows) == (5, 1)
    rows = reporter_rows(store)
    assert [r.complaint_id for r in rows] == [ids[1], ids[2]]
    assert [(kept.keys.open(r.name), r.nik, r.email, r.address) for r in rows] == [
        (reporter(n).name, None, None, None) for n in (1, 2)
    ]
    assert MARK not in dump(store)


# -- the config ----------------------------------------------------------------------------------

ENV = {"LAPOR_HENDI_API_KEY": "x", "SP4N_AUTHORIZATION": "y", "SP4N_TOKEN": "z"}
PURPOSE = "so that an agency can ask the reporter for details"  # (not the shipped example's)


def with_privacy(config_dir: Path, block: str, file: str = "lapor-hendi-semarang.yaml") -> tuple[Path, str]:
    path = config_dir / "adapters" / file
    return path, set_privacy(path, block)


def config_issues(config_dir: Path, environ: dict[str, str]) -> list:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir / "gateway.yaml", environ=environ)
    return caught.value.issues


def test_a_purpose_with_its_keys_loads_and_keeps_its_fields(repo_config_dir: Path):
    with_privacy(repo_config_dir, f"privacy:\n  reporter:\n    purpose: {PURPOSE}\n    keep: [name, phone]\n")

    config = load_config(repo_config_dir / "gateway.yaml", environ={**ENV, KEYS_ENV: f"{new_key()},{new_key()}"})

    kept = config.instances[LOCAL].reporter_keeping
    assert kept is not None and kept.fields == ("name", "phone") and kept.keys.count == 2
    assert config.instances[HUB].reporter_keeping is None


def test_the_shipped_config_keeps_no_reporter(repo_config_dir: Path):
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    assert all(inst.reporter_keeping is None for inst in config.instances.values())


@pytest.mark.parametrize(
    ("block", "environ", "key", "needle", "message"),
    [
        ("    keep: [name]\n", {}, "privacy.reporter.keep", "keep: [name]", "needs a purpose"),
        (f"    purpose: {PURPOSE}\n", {}, "privacy.reporter.purpose", "purpose: so that", "keeps nothing"),
        (f"    purpose: {PURPOSE}\n    keep: [name]\n", None, "privacy.reporter.keep", "keep: [name]", "is not set"),
        (
            f"    purpose: {PURPOSE}\n    keep: [name]\n",
            {KEYS_ENV: "not-a-key-ZQXSECRET"},
            "privacy.reporter.keep",
            "keep: [name]",
            "1st key in GATEWAY_PERSONAL_DATA_KEYS is not a key",
        ),
        (
            f"    purpose: {PURPOSE}\n    keep: [name]\n    key_env: SEMARANG_KEYS\n",
            {KEYS_ENV: "ignored"},
            "privacy.reporter.key_env",
            "key_env: SEMARANG_KEYS",
            "SEMARANG_KEYS is not set",
        ),
        ("    keep: [name, npwp]\n", {}, "privacy.reporter.keep.1", "keep: [name, npwp]", "'email' or 'address'"),
    ],
)
def test_config_check_names_file_line_and_what_is_wrong(repo_config_dir, block, environ, key, needle, message):
    path, content = with_privacy(repo_config_dir, "privacy:\n  reporter:\n" + block)
    env = {**ENV, KEYS_ENV: new_key(), **(environ or {})}
    if environ is None:
        del env[KEYS_ENV]

    (issue,) = config_issues(repo_config_dir, env)

    assert (issue.file, issue.key, issue.line) == (str(path), key, line_of(content, needle))
    assert message in issue.message
    assert "ZQXSECRET" not in issue.message  # a malformed key is never repeated


def test_a_disabled_app_needs_no_keys_yet_and_a_hub_keeps_no_reporters(repo_config_dir: Path):
    local = repo_config_dir / "adapters" / "lapor-hendi-semarang.yaml"
    edit(local, "adapter: lapor_hendi\n", "adapter: lapor_hendi\nenabled: false\n")
    with_privacy(repo_config_dir, f"privacy:\n  reporter:\n    purpose: {PURPOSE}\n    keep: [name]\n")
    hub, content = with_privacy(repo_config_dir, "privacy:\n  reporter:\n    keep: [name]\n", "sp4n.yaml")

    found = config_issues(repo_config_dir, ENV)

    assert [(i.file, i.key, i.line) for i in found] == [(str(hub), "privacy.reporter", line_of(content, "reporter:"))]
    assert "a hub takes in no reporters" in found[0].message


def test_cli_config_check_says_what_an_app_keeps(repo_config_dir: Path):
    with_privacy(repo_config_dir, f"privacy:\n  reporter:\n    purpose: {PURPOSE}\n    keep: [name, phone]\n")

    result = CliRunner().invoke(
        gateway.cli.app,
        ["--config", str(repo_config_dir / "gateway.yaml"), "config", "check"],
        env={**ENV, KEYS_ENV: new_key()},
    )

    assert result.exit_code == 0, result.output
    assert "keeps the reporter's name, phone, encrypted with the keys in GATEWAY_PERSONAL_DATA_KEYS" in result.stdout


def test_cli_config_check_reports_a_keep_without_a_purpose(repo_config_dir: Path):
    path, content = with_privacy(repo_config_dir, "privacy:\n  reporter:\n    keep: [nik]\n")

    result = CliRunner().invoke(
        gateway.cli.app, ["--config", str(repo_config_dir / "gateway.yaml"), "config", "check"], env=ENV
    )

    assert result.exit_code == 1, result.output
    assert f"{path}:{line_of(content, 'keep: [nik]')}: privacy.reporter.keep:" in result.output


# -- the commands --------------------------------------------------------------------------------


@pytest.fixture
def kept_config(repo_config_dir: Path) -> Path:
    with_privacy(repo_config_dir, f"privacy:\n  reporter:\n    purpose: {PURPOSE}\n    keep: [name, phone]\n")
    return repo_config_dir / "gateway.yaml"


def cli(config: Path, store_url: str, *args: str, keys: str | None, operator: str = "Sari"):
    env = {**ENV, KEYS_ENV: keys, "GATEWAY_OPERATOR": None}
    return CliRunner().invoke(
        gateway.cli.app, ["--config", str(config), "--store", store_url, "--operator", operator, *args], env=env
    )


def test_new_key_prints_a_key_that_opens_what_it_sealed():
    result = CliRunner().invoke(gateway.cli.app, ["privacy", "new-key"])

    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    keys = PersonalDataKeys.from_text(key)
    assert keys.open(keys.seal("x")) == "x"
    assert "in front of the keys in GATEWAY_PERSONAL_DATA_KEYS" in result.stderr


def test_the_reporter_command_shows_the_kept_fields_and_audits_who_saw_which(store: Store, store_url, kept_config):
    key = new_key()
    store.take_in_complaint(LOCAL, HUB, complaint(1), Status.UNVERIFIED, reporters=keeping(key))

    result = cli(kept_config, store_url, "privacy", "reporter", "--app", LOCAL, "--ref", "LH-1", keys=key)

    assert result.exit_code == 0, result.output
    assert f"name: {reporter(1).name}" in result.stdout and f"phone: {reporter(1).phone}" in result.stdout
    assert reporter(1).nik not in result.stdout and PURPOSE in result.stdout
    with store.session() as s:
        (audit,) = s.exec(select(AuditRow)).scalars().all()
    assert (audit.actor, audit.action) == ("operator:Sari", "reporter_shown")
    assert "name, phone" in audit.detail and MARK not in audit.detail


def test_the_reporter_command_refuses_without_a_purpose_or_without_its_keys(
    store: Store, store_url, repo_config_dir, kept_config
):
    store.take_in_complaint(LOCAL, HUB, complaint(1), Status.UNVERIFIED, reporters=keeping(new_key()))
    args = ("privacy", "reporter", "--app", LOCAL, "--ref", "LH-1")

    no_keys = cli(kept_config, store_url, *args, keys=None)
    assert no_keys.exit_code == 2 and "GATEWAY_PERSONAL_DATA_KEYS is not set" in no_keys.stderr
    wrong_key = cli(kept_config, store_url, *args, keys=new_key())
    assert wrong_key.exit_code == 1 and "was a key removed too soon" in wrong_key.stderr
    (repo_config_dir / "adapters" / "lapor-hendi-semarang.yaml").write_text(
        (repo_config_dir / "adapters" / "lapor-hendi-semarang.yaml").read_text().split("privacy:")[0]
    )
    no_purpose = cli(kept_config, store_url, *args, keys=new_key())
    assert no_purpose.exit_code == 2 and "keeps no reporter data" in no_purpose.stderr
    for result in (no_keys, wrong_key, no_purpose):
        assert MARK not in result.output and "Traceback" not in result.output
    # Nothing was shown: only the attempt with the wrong key is recorded, as not shown.
    assert [(actor, action) for actor, action, _ in _audit(store)] == [("operator:Sari", "reporter_not_shown")]


def test_rotate_keys_then_only_the_new_key_opens_and_a_wrong_key_is_a_clear_error(store: Store, store_url, kept_config):
    a, b = new_key(), new_key()
    for n in range(1, 3):
        store.take_in_complaint(LOCAL, HUB, complaint(n), Status.UNVERIFIED, reporters=keeping(a))

    dry = cli(kept_config, store_url, "privacy", "rotate-keys", "--dry-run", keys=f"{b},{a}")
    assert dry.exit_code == 0, dry.output
    assert "4 values re-encrypted" in dry.stdout and "nothing was changed" in dry.stdout
    wrong = cli(kept_config, store_url, "privacy", "rotate-keys", keys=b)
    assert wrong.exit_code == 1
    assert "the keys in GATEWAY_PERSONAL_DATA_KEYS do not open 4 values of lapor-hendi-semarang" in wrong.stderr
    assert "was a key removed too soon?" in wrong.stderr and "Traceback" not in wrong.output
    rotated = cli(kept_config, store_url, "privacy", "rotate-keys", keys=f"{b},{a}")
    assert rotated.exit_code == 0, rotated.output
    assert f"{LOCAL}: 2 rows: 4 values re-encrypted with the first key" in rotated.stdout

    shown = cli(kept_config, store_url, "privacy", "reporter", "--app", LOCAL, "--ref", "LH-2", keys=b)
    assert shown.exit_code == 0 and f"name: {reporter(2).name}" in shown.stdout
    for result in (dry, wrong, rotated):
        assert MARK not in result.output


def test_minimise_command_deletes_the_rows_of_an_app_without_a_purpose(store: Store, store_url, repo_config_dir):
    complaint_id, _ = store.take_in_complaint(LOCAL, HUB, complaint(1), Status.UNVERIFIED)
    with store.session() as s:  # as the version before this one stored it
        s.connection().execute(insert(table_of(ReporterRow)), {"complaint_id": complaint_id, **asdict(reporter(1))})

    result = cli(repo_config_dir / "gateway.yaml", store_url, "privacy", "minimise", keys=None)

    assert result.exit_code == 0, result.output
    assert f"{LOCAL} (no purpose configured): 1 rows: 5 values no purpose keeps removed, 1 rows deleted" in (
        result.stdout
    )
    assert reporter_rows(store) == [] and MARK not in result.output
    with store.engine.connect() as conn:
        actions = conn.execute(text("SELECT actor, action FROM audit")).all()
    assert [tuple(a) for a in actions] == [("operator:Sari", "reporters_minimised")]


# -- end to end: Lapor Hendi's simulator over loopback, the real engine ---------------------------


def plant(world, n: int) -> str:
    """A complaint filed in the simulator with a marker in each of its reporter's fields; its id."""
    pelapor = {
        "nama": f"Siti {MARK}NAMA{n} Rahma",
        "nik": f"{MARK}NIK{n}",
        "telepon": f"0812{MARK}TEL{n}",
        "email": f"{MARK}EMAIL{n}@example.co.id",
        "alamat": f"Jl. Pemuda {MARK}ALAMAT{n}",
    }
    return str(world.local.submit_complaint(pelapor=pelapor, anonim=False))


async def one_pass(config, store_url: str) -> None:
    from gateway._engine import Engine

    store = Store(store_url)
    try:
        async with Engine(config, store, seed=1) as engine:
            await engine.run_pass()
    finally:
        store.close()


def taken_in(store_url: str, refs: list[str]) -> tuple[int, str]:
    """(reporter rows, the database's dump), after checking that every planted complaint was taken in."""
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            linked = set(conn.execute(text("SELECT external_ref FROM link")).scalars())
            rows = conn.execute(text("SELECT count(*) FROM reporter")).scalar_one()
        assert set(refs) <= linked, "the planted complaints were not taken in"
        return rows, dump(store)
    finally:
        store.close()


@pytest.mark.e2e
@pytest.mark.anyio
async def test_end_to_end_by_default_no_reporter_reaches_the_store(world, tmp_path: Path, store_url: str):
    config = world.config(tmp_path, store_url)
    refs = [plant(world, n) for n in range(1, 4)]

    await one_pass(config, store_url)

    rows, everything = taken_in(store_url, refs)
    assert rows == 0  # not even the simulator's own reporters
    assert MARK not in everything and MARK.encode() not in database_bytes(store_url)


@pytest.mark.e2e
@pytest.mark.anyio
async def test_end_to_end_a_purpose_keeps_its_fields_encrypted_and_the_command_shows_them(
    world, tmp_path: Path, store_url: str
):
    key = new_key()
    world.environ[KEYS_ENV] = key
    config = world.config(tmp_path, store_url)
    with_privacy(tmp_path, f"privacy:\n  reporter:\n    purpose: {PURPOSE}\n    keep: [name, phone]\n")
    config = load_config(config.path, environ=world.environ)
    refs = [plant(world, n) for n in range(1, 4)]

    await one_pass(config, store_url)

    rows, everything = taken_in(store_url, refs)
    assert rows >= len(refs)
    assert MARK not in everything and MARK.encode() not in database_bytes(store_url)
    shown = cli(config.path, store_url, "privacy", "reporter", "--app", LOCAL, "--ref", refs[1], keys=key)
    assert shown.exit_code == 0, shown.output
    assert f"name: Siti {MARK}NAMA2 Rahma" in shown.stdout and f"phone: 0812{MARK}TEL2" in shown.stdout
    assert f"{MARK}NIK2" not in shown.stdout  # not kept, so not there to show
