"""The conformance kit's hub checks (gateway.testing.HubConformance) against the built-in
LAPOR!-SP4N adapter and its simulator over loopback HTTP."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

import gateway
from gateway import Capability, Complaint, Hub, HubComplaintDraft, InstanceContext, RetryPolicy
from gateway.simulation import SimClock, SimulatorServer
from gateway.testing import HubConformance, ServedHub
from lapor_gateway_adapters.sp4n import Sp4nHub
from lapor_gateway_adapters.sp4n.simulator import Sp4nSimulator, create_simulator

PREFIX = "/lapor/3.0.0"
NO_RETRY = RetryPolicy(attempts=1, initial_wait=0.001, max_wait=0.001)


class Sp4nDriver:
    def __init__(self, sim: Sp4nSimulator):
        self.sim = sim

    def stored_complaint(self, ref: str) -> str:
        return json.dumps(next(c for c in self.sim.complaints() if str(c["id"]) == ref), default=str)


class TestSp4nConformance(HubConformance):
    @contextmanager
    def serve_hub(self) -> Iterator[ServedHub]:
        self.sim = create_simulator(seed=5, clock=SimClock(), user_id="9001", path_prefix=PREFIX)
        with SimulatorServer(self.sim, port=0) as server:
            yield ServedHub(server.base_url + PREFIX, Sp4nDriver(self.sim))

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> Hub:
        context = InstanceContext(
            name="sp4n-kit",
            base_url=base_url,
            timezone=gateway.WIB,
            secrets={"authorization": self.sim.authorization, "token": self.sim.token},
            settings=Sp4nHub.Settings(user_id=9001, institution_id=100234, follow_up_template_code="reply_gateway"),
            retry=NO_RETRY,
        )
        return Sp4nHub(context, client=client)

    def make_draft(self, complaint: Complaint, gateway_ref: str) -> HubComplaintDraft:
        return HubComplaintDraft(
            complaint=complaint,
            gateway_ref=gateway_ref,
            category_id="41",
            classification_id="1",
            channel_id="2",
            route_fields={"location_id": 11, "disposition_id": 100234},
        )


class LeaksTheReporter(Sp4nHub):
    """Puts the reporter's name into the complaint's text at the hub."""

    async def create_complaint(self, draft: HubComplaintDraft) -> str:
        complaint = draft.complaint
        signed = dataclasses.replace(complaint, body=f"{complaint.body} ({complaint.reporter.name})")
        return await super().create_complaint(dataclasses.replace(draft, complaint=signed))


def test_the_create_check_fails_a_hub_adapter_that_sends_personal_data():
    class Kit(TestSp4nConformance):
        def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> Hub:
            return LeaksTheReporter(super().build_adapter(base_url, client).context, client=client)

    with pytest.raises(AssertionError, match="the reporter's name reached the hub"):
        Kit().check_create_read_back()


# The hub has no search by reference, so Sp4nHub keeps find_complaint's default and the kit skips
# that check for it. These two adapters check the check itself: one finds the complaint by the
# hashtag the create put in tags_raw (looked up in the simulator, standing in for a search the
# hub lacks), one finds nothing.


class FindsByHashtag(Sp4nHub):
    capabilities = Sp4nHub.capabilities | {Capability.FIND_COMPLAINT}
    sim: Sp4nSimulator

    async def find_complaint(self, gateway_ref: str) -> str | None:
        tag = self._hashtag(gateway_ref).lstrip("#")
        return next((str(c["id"]) for c in self.sim.complaints() if tag in str(c.get("tags_raw"))), None)


class FindsNothing(Sp4nHub):
    capabilities = Sp4nHub.capabilities | {Capability.FIND_COMPLAINT}

    async def find_complaint(self, gateway_ref: str) -> str | None:
        return None


@pytest.mark.parametrize(("adapter", "fails"), [(FindsByHashtag, False), (FindsNothing, True)])
def test_the_lost_create_answer_check(adapter, fails):
    class Kit(TestSp4nConformance):
        def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> Hub:
            hub = adapter(super().build_adapter(base_url, client).context, client=client)
            hub.sim = self.sim
            return hub

    if fails:
        with pytest.raises(AssertionError, match="find_complaint found nothing for a create the hub had done"):
            Kit().check_lost_create_answer()
    else:
        Kit().check_lost_create_answer()
