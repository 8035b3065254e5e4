"""The demo profile of ``gateway run --demo``: every interval of the configuration divided by a
factor, so that a newcomer running the gateway against ``gateway simulate`` sees complaints cross
within seconds instead of after the minutes real peers are given."""

from __future__ import annotations

from gateway._config._load import GatewayConfig

#: A minute of the real schedule becomes a second.
DEMO_SPEED = 60.0
#: No job runs more often than this, however large the factor: a pass must have time to end.
MIN_SECONDS = 1.0

_JOBS = ("intake_seconds", "hub_poll_seconds", "deliver_seconds", "reference_seconds")


def speed_up(config: GatewayConfig, factor: float = DEMO_SPEED) -> None:
    """Divide, in place, the jobs' intervals (gateway.yaml's and every instance's own), the hub
    polling policy's intervals and the delivery backoff by ``factor`` (at least
    :data:`MIN_SECONDS` each). Budgets, deadlines and leases are left as they are."""
    if factor <= 0:
        raise ValueError("the demo factor must be positive")

    def scaled(seconds: float) -> float:
        return max(MIN_SECONDS, seconds / factor)

    # New objects, never the old ones changed: a model's default may be shared with others.
    settings = config.settings
    settings.schedule = settings.schedule.model_copy(
        update={key: scaled(getattr(settings.schedule, key)) for key in _JOBS}
    )
    settings.delivery = settings.delivery.model_copy(
        update={
            "backoff_initial_seconds": scaled(settings.delivery.backoff_initial_seconds),
            "backoff_max_seconds": scaled(settings.delivery.backoff_max_seconds),
        }
    )
    for instance in config.instances.values():
        spec = instance.spec
        own = {key: getattr(spec.schedule, key) for key in _JOBS}
        spec.schedule = spec.schedule.model_copy(
            update={key: scaled(value) for key, value in own.items() if value is not None}
        )
        spec.polling = spec.polling.model_copy(
            update={
                "min_interval_minutes": spec.polling.min_interval_minutes / factor,
                "sweep_bound_hours": spec.polling.sweep_bound_hours / factor,
                "reopen_window_days": spec.polling.reopen_window_days / factor,
            }
        )
