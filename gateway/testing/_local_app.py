"""The conformance kit for local-app adapters: the standard tests every adapter of a local
app must pass, run against the adapter and its peer (a simulator on loopback).

A test module subclasses :class:`LocalAppConformance`, says how to serve the peer and how to
build the adapter, and pytest collects the ``test_*`` methods. Each test serves a fresh
peer, fills it through the author's :class:`gateway.testing.PeerDriver`, reads it through
the adapter over real HTTP, and fails with what broke which rule. A test whose rule does not
apply (a write the adapter does not declare idempotent, a driver that cannot make a bad
record) is skipped with the reason.
"""

from gateway.testing._record_checks import RecordChecks
from gateway.testing._stream_checks import StreamChecks


class LocalAppConformance(StreamChecks, RecordChecks):
    """Base class of a local-app adapter's conformance tests.

    Override :meth:`serve_peer` and :meth:`build_adapter`; set :attr:`status_to_write` to
    include the status writes. Every ``check_*`` method can also be called on its own
    (it raises ``AssertionError`` on a failure, ``unittest.SkipTest`` when it does not apply).
    """

    # --- the tests pytest collects --------------------------------------------------------------------

    def test_complaints_oldest_first(self) -> None:
        self.check_ordering("complaints")

    def test_follow_ups_oldest_first(self) -> None:
        self.check_ordering("follow_ups")

    def test_status_changes_oldest_first(self) -> None:
        self.check_ordering("status_changes")

    def test_complaints_complete(self) -> None:
        self.check_complete("complaints")

    def test_follow_ups_complete(self) -> None:
        self.check_complete("follow_ups")

    def test_status_changes_complete(self) -> None:
        self.check_complete("status_changes")

    def test_complaint_status_agrees_with_its_history(self) -> None:
        self.check_status_agrees()

    def test_complaints_crowded_second(self) -> None:
        self.check_crowded_second()

    def test_complaints_failure_raises(self) -> None:
        self.check_failure_raises("complaints")

    def test_follow_ups_failure_raises(self) -> None:
        self.check_failure_raises("follow_ups")

    def test_status_changes_failure_raises(self) -> None:
        self.check_failure_raises("status_changes")

    def test_complaints_watermark_under_change(self) -> None:
        self.check_watermark("complaints")

    def test_follow_ups_watermark_under_change(self) -> None:
        self.check_watermark("follow_ups")

    def test_status_changes_watermark_under_change(self) -> None:
        self.check_watermark("status_changes")

    def test_complaints_since_inclusive(self) -> None:
        self.check_since_inclusive("complaints")

    def test_follow_ups_since_inclusive(self) -> None:
        self.check_since_inclusive("follow_ups")

    def test_status_changes_since_inclusive(self) -> None:
        self.check_since_inclusive("status_changes")

    def test_time_zones(self) -> None:
        self.check_time_zones()

    def test_follow_up_echo(self) -> None:
        self.check_echo("follow_up")

    def test_status_echo(self) -> None:
        self.check_echo("status")

    def test_follow_up_failure_raises(self) -> None:
        self.check_write_failure_raises("follow_up")

    def test_status_failure_raises(self) -> None:
        self.check_write_failure_raises("status")

    def test_follow_up_idempotent_as_declared(self) -> None:
        self.check_idempotent("follow_up")

    def test_status_idempotent_as_declared(self) -> None:
        self.check_idempotent("status")

    def test_complaints_bad_record_is_a_record_error(self) -> None:
        self.check_bad_records("complaints")

    def test_follow_ups_bad_record_is_a_record_error(self) -> None:
        self.check_bad_records("follow_ups")

    def test_status_changes_bad_record_is_a_record_error(self) -> None:
        self.check_bad_records("status_changes")

    def test_personal_data_kept_apart(self) -> None:
        self.check_personal_data()

    def test_anonymous_complaint_kept_anonymous(self) -> None:
        self.check_anonymous()
