"""Capabilities are declared up front: a class whose declaration and methods disagree is
refused when it is made, naming the class and the method; the engine asks ``supports``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import pytest

from gateway import (
    WIB,
    AttachmentContent,
    AttachmentRef,
    Capability,
    Complaint,
    FollowUp,
    Hub,
    InstanceContext,
    LocalApp,
    RawStatus,
    RecordError,
    StatusChange,
    Write,
)
from lapor_gateway_adapters.lapor_hendi import LaporHendiApp
from lapor_gateway_adapters.sp4n import Sp4nHub


class _Minimal(LocalApp):
    """A local app with the required methods only: no files, no hub ref (intermediate base)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STATUS_HISTORY})

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError]:
        return
        yield

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        return
        yield

    async def status_changes_since(self, since: datetime | None) -> AsyncIterator[StatusChange | RecordError]:
        return
        yield

    async def write_status(self, complaint_ref: str, status: RawStatus, *, note: str | None, gateway_ref: str) -> None:
        return None

    async def write_follow_up(
        self,
        complaint_ref: str,
        content: str,
        *,
        author: str | None,
        gateway_ref: str,
        is_secret: bool = False,
        attachments: Sequence[AttachmentContent] = (),
    ) -> None:
        return None


def _context() -> InstanceContext:
    return InstanceContext(name="kecil", base_url="http://127.0.0.1:9", timezone=WIB)


@pytest.mark.anyio
async def test_an_app_without_files_need_not_write_fetch_attachment():
    app = _Minimal(_context())
    try:
        assert app.supports(Capability.STATUS_HISTORY)
        assert not app.supports(Capability.FETCH_ATTACHMENT)
        assert not app.supports(Capability.WRITE_HUB_REF)
        # Reached only by a caller that did not ask first: it says which capability is missing.
        with pytest.raises(NotImplementedError, match=r"_Minimal does not offer Capability\.FETCH_ATTACHMENT"):
            await app.fetch_attachment(AttachmentRef("1", "a.jpg"))
    finally:
        await app.aclose()


def test_declaring_a_capability_without_its_method_is_refused_naming_class_and_method():
    with pytest.raises(TypeError) as caught:

        class Boasting(_Minimal):
            capabilities: ClassVar[frozenset[Capability]] = frozenset(
                {Capability.STATUS_HISTORY, Capability.WRITE_HUB_REF}
            )

    assert str(caught.value) == (
        f"{__name__}.Boasting declares Capability.WRITE_HUB_REF but does not implement write_hub_ref(): "
        "implement it or leave the capability out"
    )


def test_a_method_without_its_declaration_is_refused_naming_class_and_method():
    with pytest.raises(TypeError) as caught:

        class Modest(_Minimal):
            async def fetch_attachment(self, attachment: AttachmentRef, *, max_bytes: int | None = None) -> Any:
                raise AssertionError

    assert str(caught.value) == (
        f"{__name__}.Modest implements fetch_attachment() but does not declare Capability.FETCH_ATTACHMENT: "
        "add it to Modest.capabilities"
    )


def test_a_hub_without_status_changes_since_is_refused_for_declaring_status_history():
    with pytest.raises(TypeError, match=r"Confused declares Capability.STATUS_HISTORY, which a hub does not have"):

        class Confused(Hub):
            capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STATUS_HISTORY})


def test_a_hub_method_without_its_declaration_is_refused():
    with pytest.raises(TypeError, match=r"Searching implements find_complaint\(\) but does not declare"):

        class Searching(Hub):
            async def find_complaint(self, gateway_ref: str) -> str | None:
                return None


def test_a_subclass_inherits_what_its_parent_declared_and_implemented():
    class Narrower(_Minimal):
        pass

    assert Narrower.capabilities == frozenset({Capability.STATUS_HISTORY})


def test_the_built_in_adapters_declare_what_they_implement():
    assert LaporHendiApp.capabilities == {
        Capability.STATUS_HISTORY,
        Capability.FETCH_ATTACHMENT,
        Capability.WRITE_HUB_REF,
    }
    # LAPOR! has no search by reference: a lost create answer goes to an operator.
    assert Sp4nHub.capabilities == {
        Capability.FETCH_ATTACHMENT,
        Capability.INSTITUTIONS,
        Capability.TEMPLATES,
        Capability.FORWARD,
    }


def test_no_engine_module_probes_for_a_method():
    """The engine asks supports(); it never catches NotImplementedError to learn what exists."""
    from pathlib import Path

    import gateway

    root = Path(gateway.__file__).resolve().parent
    for path in [*root.glob("_engine/*.py"), *root.glob("cli/*.py"), root / "_daemon.py"]:
        text = path.read_text()
        assert "overrides(" not in text, path
        lines = [line for line in text.splitlines() if "NotImplementedError" in line]
        # The daemon's signal handlers (not on every platform) are the one legitimate catch.
        assert all("suppress(NotImplementedError, RuntimeError)" in line for line in lines), (path, lines)


def test_idempotent_writes_as_the_old_flag_is_refused_with_the_new_form():
    with pytest.raises(TypeError, match=r"Flagged.idempotent_writes must be a frozenset of gateway.Write"):

        class Flagged(_Minimal):
            idempotent_writes = True  # type: ignore[assignment]


def test_a_hub_has_no_idempotent_writes():
    with pytest.raises(TypeError, match=r"Creating declares idempotent_writes, which a hub does not have"):

        class Creating(Hub):
            idempotent_writes: ClassVar[frozenset[Write]] = frozenset({Write.FOLLOW_UP})


def test_an_idempotent_hub_ref_write_needs_the_capability():
    with pytest.raises(TypeError, match=r"Forgetful declares Write.HUB_REF idempotent but not"):

        class Forgetful(_Minimal):
            idempotent_writes: ClassVar[frozenset[Write]] = frozenset({Write.HUB_REF})
