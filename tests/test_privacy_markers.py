"""Issue 13's proof: a unique marker in every personal field, complaint text, follow-up, file name and
image metadata field, a sync with the simulators' seeded faults, a purge and erasures, every command
an operator runs, and then a search for every marker in the store, the logs, the CLI outputs and
everything the hub received.

Each marker (``MRK0001Q``..., a NIK ``3374`` and twelve digits) names the one place it was planted.
The rules, by class of marker:

- **reporter, kept**: the name, NIK and phone of named reporters, which the local app's
  ``privacy.reporter`` purpose keeps. In the store only as Fernet tokens: never in plain text, and
  ``gateway privacy reporter`` decrypts them for the complaint still open (the others were purged or
  erased, and with them their reporter). Never in a log, a CLI output (but that command's) or at the hub.
- **reporter, not kept**: e-mail and address (not in ``keep``) and every field of an anonymous
  reporter. Nowhere at all.
- **text**: titles, bodies, places (``lokasi.alamat_kejadian``) and the local officers' follow-ups.
  They are meant to go to the hub, so the hub may hold them (they were sent before the purge and the
  erasures; the erasure says so); after the purge and the erasures, nowhere else.
- **hub text**: the hub officers' follow-ups and a rejection's reason: written at the hub (so not
  looked for there) and meant for the local app; after the purge and the erasures, nowhere else.
- **file name, sent**: the name of a photo that went to the hub: the hub may hold it; nowhere else.
- **file name, held back**: an identity document of an anonymous or confidential complaint: never at
  the hub, and nowhere else.
- **image metadata**: EXIF ImageDescription, Artist, UserComment and the GPS block, XMP and the JPEG
  comment of the citizens' photos: nowhere, and not in the hub's documents' bytes.
- **hub photo metadata**: the same in a hub officer's photo: at the hub (uploaded there), never in
  what the local app received, and nowhere else.

Where: the store (SQLite: the file's and its journal's bytes after a VACUUM; PostgreSQL: every
table's rows as text), every log line of the sync (JSON and console; a command's own log lines are
in its output), every CLI output (read commands before and
after, the purge, the erasures, the requests) and what the hub received: every request's URL and body
as the gateway sent it (faulted ones too) and the simulator's state (complaints, logs, follow-ups,
documents with their names and bytes). ``-s`` prints the counts per place.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import edit
from image_kit import jpeg
from sqlalchemy import text
from test_no_personal_data import (
    HUB,
    LOCAL,
    LogCapture,
    _cli,
    lapor_hendi_record,
    logs,  # noqa: F401  (the fixture)
    with_faults,
)
from test_privacy_retention import raw_database

from gateway._config._load import load_config
from gateway._config._schema import Delivery
from gateway._engine import Engine
from gateway._personal_data import KEYS_ENV, new_key
from gateway._store import Store
from gateway._store._operator import link_delivery, resend_delivery

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

KEPT = ("name", "nik", "phone")
PRIVACY = f"""  reporter:
    purpose: to call the reporter back when the agency asks for details
    keep: [{", ".join(KEPT)}]
  retention:
    closed_days: 0"""
FAULTS_OFF = dict(error_rate=0, lost_answer_rate=0, malformed_json_rate=0, reset_rate=0, drift_rate=0)
OWED = "('pending', 'parked', 'needs_confirmation')"

# Where each class may be found, of: store, logs, CLI, hub.
ALLOWED = {
    "reporter, kept": set(),  # in the store as ciphertext only: a plain hit is a leak
    "reporter, not kept": set(),
    "text": {"hub"},
    "hub text": {"hub"},  # written there
    "file name, sent": {"hub"},
    "file name, held back": set(),
    "image metadata": set(),
    "hub photo metadata": {"hub"},  # a hub officer's photo, kept at the hub as uploaded there
}
PLACES = ("store", "logs", "CLI", "hub")


@dataclass
class Planted:
    """Every marker with its place (what field of what) and its class (the rules above)."""

    place: dict[str, str] = field(default_factory=dict)
    kind: dict[str, str] = field(default_factory=dict)

    def __call__(self, kind: str, place: str, *, nik: bool = False) -> str:
        assert kind in ALLOWED
        n = len(self.place) + 1
        marker = f"3374{n:012d}" if nik else f"MRK{n:04d}Q"
        self.place[marker], self.kind[marker] = place, kind
        return marker

    def found_in(self, haystack: bytes) -> set[str]:
        low = haystack.lower()
        return {m for m in self.place if m.lower().encode() in low}


def _blob(texts: list[str] | list[bytes]) -> bytes:
    return b"\n\x00".join(t if isinstance(t, bytes) else t.encode("utf-8", "replace") for t in texts)


async def test_planted_markers_are_found_only_where_a_purpose_or_the_hub_may_hold_them(
    world,
    tmp_path: Path,
    store_url: str,
    logs: LogCapture,
):
    mark = Planted()
    environ = {**world.environ, KEYS_ENV: new_key()}
    config = world.config(tmp_path, store_url)
    edit(config.path.parent / "adapters" / "lapor-hendi-semarang.yaml", "  retention:\n    closed_days: 365", PRIVACY)
    config = with_faults(world, load_config(config.path, environ=environ))
    # Failures are retried on the next pass (backoffs of milliseconds: the store keeps the real
    # time, which the commands run later see too) and not parked before the faults are off.
    config.settings.delivery = Delivery(
        max_attempts=30, backoff_initial_seconds=0.001, backoff_max_seconds=0.002, lease_seconds=300
    )

    # -- the complaints --------------------------------------------------------------------------
    def reporter(who: str, *, anonymous: bool = False) -> dict[str, str]:
        kept = "reporter, not kept" if anonymous else "reporter, kept"
        return {
            "nama": f"Budi {mark(kept, f'reporter name of {who}')} Santoso",
            "nik": mark(kept, f"reporter NIK of {who}", nik=True),
            "telepon": f"0812{mark(kept, f'reporter phone of {who}')}",
            "email": f"{mark('reporter, not kept', f'reporter e-mail of {who}')}@example.co.id",
            "alamat": f"Jl. Pemuda {mark('reporter, not kept', f'reporter address of {who}')}, Semarang",
        }

    def photo(who: str) -> tuple[str, str, bytes]:
        name = f"foto_{mark('file name, sent', f'file name of {who}')}.jpg"
        return name, "image/jpeg", jpeg(48, 32, marker=mark("image metadata", f"photo metadata of {who}"))

    def complaint(who: str, *, anonim: bool = False, rahasia: bool = False, identity: bool = False) -> dict[str, Any]:
        files = [photo(who)]
        if identity:
            held = f"ktp_{mark('file name, held back', f'identity document of {who}')}.jpg"
            files.append((held, "image/jpeg", jpeg(40, 30)))
        return lapor_hendi_record(
            reporter(who, anonymous=anonim),
            mark("text", f"title of {who}"),
            mark("text", f"body of {who}"),
            mark("text", f"place of {who}"),
            anonim=anonim,
            rahasia=rahasia,
            lampiran=files,
        )

    purged = [world.local.submit_complaint(**complaint(f"purged complaint {n}")) for n in (1, 2)]
    purged.append(world.local.submit_complaint(**complaint("a confidential complaint", rahasia=True, identity=True)))
    purged.append(world.local.submit_complaint(**complaint("an anonymous complaint", anonim=True, identity=True)))
    erased = [world.local.submit_complaint(**complaint(f"erased complaint {n}")) for n in (1, 2)]
    kept = world.local.submit_complaint(
        pelapor=reporter("the open complaint"), judul="Lampu jalan mati", isi="Lampu mati sejak kemarin.", lampiran=0
    )
    ours = [*purged, *erased, kept]

    store = Store(store_url)
    confirmed: list[int] = []  # deliveries of unknown outcome the operator resolved
    sent: list[bytes] = []  # every request the gateway made to the hub: its URL and its body

    async def record(request: httpx.Request) -> None:
        sent.append(str(request.url).encode() + b"\n" + await request.aread())

    async with Engine(config, store, seed=3) as engine:
        engine.adapters[HUB].http._client.event_hooks["request"].append(record)

        async def passes(n: int) -> None:
            for _ in range(n):
                world.clock.advance(60)
                await engine.run_pass()

        def hub_id(local_id: int) -> str | None:
            cid = store.complaint_id_for(LOCAL, str(local_id))
            return None if cid is None else store.external_ref(cid, HUB)

        def owed() -> int:
            with store.engine.connect() as conn:
                return conn.execute(text(f"SELECT count(*) FROM outbox WHERE state IN {OWED}")).scalar_one()

        def confirm_unknown_outcomes() -> None:
            """What the operator does with a create whose answer was lost: looks for its hashtag
            at the hub, then links what is there or sends it again (``gateway deliveries link``)."""
            with store.engine.connect() as conn:
                unknown = conn.execute(
                    text("SELECT id, last_error FROM outbox WHERE state = 'needs_confirmation'")
                ).all()
            for outbox_id, error in unknown:
                tag = re.search(r"#(\w+)", error or "")
                there = [c["id"] for c in world.hub.complaints() if tag and tag.group(1) in (c["tags_raw"] or "")]
                if there:
                    link_delivery(store, outbox_id, str(there[0]), actor="operator:siti")
                else:
                    resend_delivery(store, outbox_id, actor="operator:siti")
                confirmed.append(outbox_id)

        async def until(done: Any, what: str, *, most: int = 25) -> None:
            """Passes until ``done()``: the seeded faults fall on whichever request comes next,
            and the jobs' requests interleave differently from run to run."""
            for _ in range(most):
                if done():
                    return
                await passes(1)
                confirm_unknown_outcomes()
            with store.engine.connect() as conn:
                states = conn.execute(text("SELECT complaint_id, kind, state, last_error FROM outbox")).all()
            missing = [(i, store.complaint_id_for(LOCAL, str(i))) for i in ours if not hub_id(i)]
            raise AssertionError(f"{what}: not after {most} passes; {missing} {states}")

        await until(lambda: all(hub_id(i) for i in ours), "every complaint at the hub")
        # Follow-ups both ways, under the faults.
        hub_photo_marker = mark("hub photo metadata", "a hub officer's photo")
        for n, local_id in enumerate([*purged, *erased]):
            world.local.answer(local_id, f"Petugas sudah meninjau {mark('text', f'local follow-up of {local_id}')}.")
            world.hub.officer_follow_up(
                hub_id(local_id),
                f"Dinas sudah menjadwalkan {mark('hub text', f'hub follow-up of {local_id}')}.",
                attachments=[("bukti.jpg", "image/jpeg", jpeg(32, 24, marker=hub_photo_marker))] if n == 0 else (),
            )
        up = {m for m, k in mark.kind.items() if mark.place[m].startswith("local follow-up")}
        down = {m for m, k in mark.kind.items() if mark.place[m].startswith("hub follow-up")}

        def follow_ups_arrived() -> bool:
            at_hub = _blob([json.dumps(world.hub.follow_ups(hub_id(i)), default=str) for i in ours])
            at_local = _blob([json.dumps(world.local.follow_ups(i), default=str) for i in ours])
            return mark.found_in(at_hub) >= up and mark.found_in(at_local) >= down

        await until(follow_ups_arrived, "the follow-ups both ways")
        injected = {"lapor_hendi": dict(world.local.faults.injected), "sp4n": dict(world.hub.faults.injected)}
        # The faults off, what is owed is delivered; then the hub closes the complaints to purge.
        world.local.faults.configure(**FAULTS_OFF)
        world.hub.faults.configure(**FAULTS_OFF)
        await until(lambda: owed() == 0, "nothing owed")
        for local_id in purged:
            world.hub.act(hub_id(local_id), "Ditolak", reason=f"Bukan kewenangan {mark('hub text', 'a reason')}")

        def closed() -> bool:
            ids = [store.complaint_id_for(LOCAL, str(i)) for i in purged]
            return owed() == 0 and all(store.complaint(c).closed_at is not None for c in ids if c is not None)

        await until(closed, "the complaints closed")
        hub_ids = {i: hub_id(i) for i in ours}
        local_files = [
            data
            for i in ours
            for answer in world.local.follow_ups(i)
            for _, _, data in world.local.follow_up_files(answer["id_tanggapan"])
        ]
        with store.engine.connect() as conn:
            deliveries = list(conn.execute(text("SELECT id FROM outbox ORDER BY id")).scalars())
    in_store_before = mark.found_in(raw_database(store))  # the search finds what is there
    store.close()

    # -- what an operator runs ---------------------------------------------------------------------
    def cli(*args: str) -> str:
        code, shown = _cli(config.path, store_url, environ, "--operator", "siti", *args)
        assert code in (0, 1), (args, code, shown[-2000:])
        assert "Traceback" not in shown and "…" not in shown, (args, shown[-2000:])
        return shown

    reads = [
        ("status",),
        ("status", "--json"),
        ("deliveries", "list"),
        ("deliveries", "list", "--json"),
        ("deliveries", "list", "--state", "done", "--state", "dropped", "--json"),
        ("quarantine",),
        ("quarantine", "--all", "--json"),
        ("deadlines",),
        ("deadlines", "--json"),
        ("privacy", "requests"),
        ("privacy", "requests", "--json"),
        ("privacy", "rotate-keys", "--dry-run"),
        ("privacy", "minimise", "--dry-run"),
    ]
    outputs = [cli(*c) for c in reads]
    outputs += [cli("deliveries", "show", str(n)) for n in deliveries]
    # The command meant to show a kept reporter (its output is looked at apart): before the purge,
    # every named reporter's kept fields, decrypted.
    decrypted = [cli("privacy", "reporter", "--app", LOCAL, "--ref", str(i)) for i in ours]
    outputs.append(cli("privacy", "purge", "--dry-run"))
    outputs.append(cli("privacy", "purge"))
    outputs.append(cli("privacy", "erase", "--app", LOCAL, "--ref", str(erased[0]), "--reason", "surat 045/2026"))
    outputs.append(cli("privacy", "erase", "--app", LOCAL, "--ref", str(erased[1]), "--withdraw"))
    outputs.append(cli("privacy", "reporter", "--app", LOCAL, "--ref", str(purged[0])))  # nothing kept now
    outputs += [cli(*c) for c in reads]
    outputs += [cli("deliveries", "show", str(n)) for n in deliveries]
    shown_reporter = cli("privacy", "reporter", "--app", LOCAL, "--ref", str(kept))
    decrypted_after = [cli("privacy", "reporter", "--app", LOCAL, "--ref", str(i)) for i in ours]

    # -- the search --------------------------------------------------------------------------------
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            tokens = conn.execute(
                text("SELECT name, nik, phone, email, address FROM reporter WHERE complaint_id = :c"),
                {"c": store.complaint_id_for(LOCAL, str(kept))},
            ).one()
            with_reporter = set(conn.execute(text("SELECT complaint_id FROM reporter")).scalars())
        ours_kept = {i for i in ours if store.complaint_id_for(LOCAL, str(i)) in with_reporter}
        in_store = mark.found_in(raw_database(store))
    finally:
        store.close()
    at_hub: list[str | bytes] = [*sent, json.dumps(world.hub.complaints(), default=str)]
    for h in hub_ids.values():
        at_hub += [json.dumps(world.hub.follow_ups(h), default=str), json.dumps(world.hub.logs(h), default=str)]
    at_hub.append(json.dumps(world.hub.documents(), default=str))
    at_hub += [world.hub.document(d["id"]) for d in world.hub.documents()]
    found = {
        "store": in_store,
        "logs": mark.found_in(_blob(logs.json_lines() + logs.console_lines())),
        "CLI": mark.found_in(_blob(outputs)),
        "hub": mark.found_in(_blob(at_hub)),  # type: ignore[arg-type]
    }
    opened = {"before": mark.found_in(_blob(decrypted)), "after": mark.found_in(_blob(decrypted_after))}
    texts = {m for m, k in mark.kind.items() if k in ("text", "hub text", "file name, sent", "file name, held back")}
    assert in_store_before & set(mark.place) == texts, sorted(mark.place[m] for m in texts ^ in_store_before)

    rows: dict[str, Counter] = {}
    for marker, place in mark.place.items():
        what = place.split(" of ")[0]
        row = rows.setdefault(f"{mark.kind[marker]}: {what}", Counter())
        row["planted"] += 1
        for where in PLACES:
            row[where] += marker in found[where]
        row["store before"] += marker in in_store_before
        for when, markers in opened.items():
            row[f"decrypted {when}"] += marker in markers
    print(
        f"\nPRIVACY-MARKERS {store_url.split(':')[0]}: faults injected {injected}; unknown outcomes resolved {confirmed}"
    )
    columns = ("planted", "store before", *PLACES, "decrypted before", "decrypted after")
    print(f"{'class: place':<44}" + " ".join(f"{c:>9}" for c in columns).replace("decrypted ", "opened "))
    for name, row in sorted(rows.items()):
        print(f"{name:<44}" + " ".join(f"{row[c]:>{max(9, len(c) - 3)}}" for c in columns))

    # Each class where its rule allows it, and nowhere else; a hit names its place.
    for kind, allowed in ALLOWED.items():
        leaks = {
            where: sorted(mark.place[m] for m in found[where] if mark.kind[m] == kind)
            for where in PLACES
            if where not in allowed
        }
        assert not any(leaks.values()), f"{kind}: found where it must not be: {leaks}"
    # The kept fields: in the store as tokens only, opened by the command meant for it: every named
    # reporter's before the purge and the erasures, the open complaint's only after them.
    kept_fields = {m for m, k in mark.kind.items() if k == "reporter, kept"}
    still_kept = {m for m in kept_fields if mark.place[m].endswith("of the open complaint")}
    assert ours_kept == {kept} and all(str(t).startswith("gAAAAA") for t in tokens[:3]) and tokens[3:] == (None, None)
    assert opened["before"] == kept_fields and opened["after"] == still_kept, opened
    assert still_kept and all(m in shown_reporter for m in still_kept), shown_reporter
    # It did not pass by doing nothing: the faults happened, the texts reached the hub (before the
    # purge and the erasures), the hub's reached the local app, and photos went without metadata.
    for name, counts in injected.items():
        assert sum(counts.get(k, 0) for k in ("errors", "resets", "lost_answers", "malformed")) > 0, (name, counts)
    meant = {m for m, k in mark.kind.items() if k in ("text", "file name, sent")}
    assert found["hub"] & meant == meant, sorted(mark.place[m] for m in meant - found["hub"])
    assert local_files and not any(hub_photo_marker.encode() in data for data in local_files)
    assert len(world.hub.documents()) >= len([*purged, *erased])
