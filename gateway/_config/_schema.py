"""The config schema shared by every adapter instance (one YAML file each) and
by ``gateway.yaml``. Adapter-specific keys live under ``settings:`` and are
validated by the adapter's own ``Settings`` model."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from functools import lru_cache
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    StrictBool,
    field_validator,
    model_validator,
)

from gateway._model import Classification, Status

INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


HOST_NAME = re.compile(r"^(?:[a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$|^\[[0-9a-f:.]+\]$")


def _host_name(value: str) -> str:
    """A host name or IP address as a ``Host`` header names it (lower case; IPv6 in brackets), no port."""
    name = value.strip().lower()
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"  # a bare IPv6 address
    if not HOST_NAME.match(name):
        raise ValueError(f"{value!r} is not a host name; give the name alone, such as gw.example.go.id")
    return name


def _origin(value: str) -> str:
    """``scheme://host[:port]`` as a browser sends it in ``Origin``: http or https, no path."""
    parts = urlsplit(value.strip())
    problem = (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    )
    try:
        port = parts.port
    except ValueError:
        problem = True
    if problem:
        raise ValueError(f"{value!r} is not an origin; give scheme://host[:port], such as https://gw.example.go.id")
    host = _host_name(parts.hostname or "")
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _variable_name(value: str, example: str) -> str:
    """``value`` if it can name an environment variable (the keys' and tokens' ``*_env``)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"the name of an environment variable, such as {example}")
    return value


def _status_key(value: str) -> str:
    if value.__class__ is str:  # the same few statuses, looked up for every record read
        return _text_status_key(value)
    return " ".join(str(value).split()).casefold()


@lru_cache(maxsize=1024)
def _text_status_key(value: str) -> str:
    return " ".join(value.split()).casefold()


@lru_cache(maxsize=64)
def _status_table(statuses: tuple[tuple[str, Status], ...]) -> dict[str, Status]:
    """An instance's ``statuses`` by :func:`_status_key` (looked up for every record read;
    only read, never changed)."""
    return {_status_key(key): value for key, value in statuses}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Strict):
    url: str = Field(
        "sqlite:///data/gateway.db",
        description="SQLAlchemy URL; a relative SQLite path is relative to the working directory",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        """The URL's form and driver (without connecting): sqlite:///path or postgresql+psycopg://..."""
        from sqlalchemy.engine.url import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; use sqlite:///data/gateway.db or postgresql+psycopg://user@host/dbname"
            ) from None
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}; use sqlite or postgresql+psycopg")
        try:
            url.get_dialect()
        except NoSuchModuleError:
            raise ValueError(f"no driver for {url.drivername!r}; use postgresql+psycopg") from None
        if backend == "postgresql":
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise ValueError(
                    "the PostgreSQL driver is not installed: pip install 'lapor-gateway[postgres]'"
                ) from None
            if not url.database:
                raise ValueError("name the database: postgresql+psycopg://user@host/dbname")
        elif backend == "sqlite" and not url.database:
            raise ValueError("name the file: sqlite:///data/gateway.db")
        return value


class LogSettings(_Strict):
    format: Literal["auto", "console", "json"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Schedule(_Strict):
    """Seconds between runs of each job. A run that would overlap the previous one
    is skipped; runs missed while paused are coalesced into one."""

    intake_seconds: PositiveFloat = 60
    hub_poll_seconds: PositiveFloat = 300
    deliver_seconds: PositiveFloat = 15
    reference_seconds: PositiveFloat = 86400  # the hub's institutions and templates, re-read daily
    privacy_purge_seconds: PositiveFloat = 86400  # local apps: texts past their retention purged daily
    misfire_grace_seconds: PositiveFloat = 300


class ScheduleOverride(_Strict):
    intake_seconds: PositiveFloat | None = None
    hub_poll_seconds: PositiveFloat | None = None
    deliver_seconds: PositiveFloat | None = None
    reference_seconds: PositiveFloat | None = None
    privacy_purge_seconds: PositiveFloat | None = None


class Delivery(_Strict):
    """Retries across passes of an owed delivery (within one call, the HTTP layer retries too)."""

    max_attempts: int = Field(8, ge=1)
    backoff_initial_seconds: PositiveFloat = 30
    backoff_max_seconds: PositiveFloat = 3600
    lease_seconds: PositiveFloat = 300


class WebSettings(_Strict):
    """The daemon's HTTP server: /metrics, /healthz, /readyz and the dashboard. Loopback by
    default: it has no authentication of its own (a reverse proxy in front adds it)."""

    enabled: StrictBool = True
    host: str = Field("127.0.0.1", min_length=1, description="address to listen on; 0.0.0.0 or :: for every interface")
    port: int = Field(8780, ge=0, le=65535, description="TCP port; 0 takes any free one (tests)")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="more host names a request may be addressed to (a proxy's or Prometheus's name for this host)",
    )

    @field_validator("host")
    @classmethod
    def _listen_host(cls, value: str) -> str:
        """An address or a name to bind: caught here, with the file and line, rather than by
        ``gateway run`` failing to listen (``127.0.0.1:8780`` or ``http://...`` are common slips)."""
        name = value.strip()
        bracketed = name.startswith("[") and name.endswith("]")
        try:
            return str(ipaddress.ip_address(name[1:-1] if bracketed else name))
        except ValueError:
            pass
        if re.fullmatch(r"[0-9.]+", name) or not HOST_NAME.match(name.lower()) or name.startswith("["):
            raise ValueError(
                f"{value!r} is not an address to listen on; give an IP address or a host name alone "
                "(no scheme, no port: the port is web.port), such as 127.0.0.1 or 0.0.0.0"
            )
        return name

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: list[str]) -> list[str]:
        return [_host_name(name) for name in value]


class DashboardSettings(_Strict):
    """The daemon's dashboard page. It only shows unless ``operator_actions`` is on; then an
    operator who signs in with the token from the environment may retry, resend, link and drop
    deliveries from it (docs/operations.md, "Dashboard")."""

    operator_actions: StrictBool = False
    token_env: str = Field(
        "GATEWAY_DASHBOARD_TOKEN", description="environment variable holding the sign-in token for operator actions"
    )
    language: Literal["id", "en"] = Field("id", description="the page's language unless ?lang= asks for another")
    refresh_seconds: int = Field(5, ge=1, le=3600, description="how often an open page reloads its figures")
    public_origin: str | None = Field(
        None,
        description="the address users open behind a reverse proxy, such as https://gw.example.go.id: "
        "accepted as the page's own origin and host besides the direct one",
    )

    @field_validator("public_origin")
    @classmethod
    def _public_origin(cls, value: str | None) -> str | None:
        return None if value is None else _origin(value)

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, value: str) -> str:
        return _variable_name(value, "GATEWAY_DASHBOARD_TOKEN")


# -- deadlines: working-day SLAs per tier (docs/deadlines.md) ------------------------------------


class DeadlineTiers(_Strict):
    """Working days per tier; a tier left out keeps the number of the level above (the route's
    ``tiers`` for a classification, ``gateway.yaml``'s for a route, LAPOR!'s rule at the top)."""

    verify: int | None = Field(None, ge=0, le=366, description="working days to verify and forward, from filing")
    answer: int | None = Field(None, ge=0, le=366, description="working days for the agency to answer")
    close: int | None = Field(None, ge=0, le=366, description="working days without a reply until it closes")

    def given(self) -> dict[str, int]:
        return {tier: days for tier, days in self.model_dump().items() if days is not None}


class DayOff(_Strict):
    day: date
    name: str = Field(min_length=1, description="what the day is, shown by `gateway deadlines`")


class DeadlineCalendar(_Strict):
    """Corrections to Indonesia's national days off (public holidays and cuti bersama, from the
    ``holidays`` package): days ``add``-ed (a regional holiday, a decree newer than the package)
    and national days ``remove``-d (a holiday the government moved)."""

    add: list[DayOff] = Field(default_factory=list)
    remove: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_both(self) -> DeadlineCalendar:
        both = sorted({d.day for d in self.add} & set(self.remove))
        if both:
            raise ValueError(f"{both[0].isoformat()} is both added and removed; keep one")
        return self


class Deadlines(_Strict):
    """``gateway.yaml``: the tiers every route starts from, and national corrections."""

    tiers: DeadlineTiers = DeadlineTiers(verify=3, answer=5, close=10)
    calendar: DeadlineCalendar = DeadlineCalendar()
    due_soon_hours: PositiveFloat = Field(
        48, description="a deadline this close is 'due soon' (metrics, dashboard, `gateway deadlines --by-agency`)"
    )


class RouteDeadlines(_Strict):
    """A local app's ``route.deadlines``: its own tiers, tiers per classification, and its
    region's days off (``calendar``, on top of gateway.yaml's)."""

    tiers: DeadlineTiers = DeadlineTiers()
    classifications: dict[Classification, DeadlineTiers] = Field(default_factory=dict)
    calendar: DeadlineCalendar = DeadlineCalendar()


# The keys of ``polling:`` that set the one deadline before there were tiers: refused with where
# they went, rather than quietly ignored (a deadline an operator set would silently change).
MOVED_POLLING_KEYS = {
    "deadline_working_days": "route.deadlines.tiers (answer) of the local app, or deadlines.tiers in gateway.yaml",
    "holidays": "deadlines.calendar.add in gateway.yaml (national days and cuti bersama now come from the "
    "holidays package)",
}


class GatewaySettings(_Strict):
    store: StoreSettings = StoreSettings()
    log: LogSettings = LogSettings()
    schedule: Schedule = Schedule()
    delivery: Delivery = Delivery()
    web: WebSettings = WebSettings()
    dashboard: DashboardSettings = DashboardSettings()
    deadlines: Deadlines = Deadlines()  # working-day deadlines (docs/deadlines.md)
    adapters_dir: str = Field("adapters", description="folder of instance YAML files, relative to gateway.yaml")


FieldValue = StrictBool | int | float | str | None


class CreateAtHub(_Strict):
    """Which complaints of a local app are created at the hub. A complaint outside the rule
    is kept in the store (and its follow-ups are not sent); if it later comes inside (it is
    reopened), it is created then. ``gateway backfill`` reads years of history: without this
    rule it would send every closed complaint to the hub as a new one."""

    statuses: list[str] | None = Field(
        None,
        description="local statuses whose complaints are created at "
        "the hub (default: those whose canonical status is "
        "not closed)",
    )
    filed_within_days: PositiveFloat | None = Field(
        None, description="only complaints filed this recently (default: any age)"
    )


class Route(_Strict):
    hub: str = Field(description="name of the hub instance this local app feeds")
    fields: dict[str, FieldValue] = Field(
        default_factory=dict,
        description="merged into the create of every complaint of this app "
        "(the hub adapter's keys it does not set itself)",
    )
    # Whether a status from the hub is written to the local app:
    # forward_only (the default) writes it only if it does not move the local app's status
    # back in `status_order` (a status the citizen sees never moves backwards);
    # hub_wins writes it; local_wins keeps a status the local app set by itself; latest_wins
    # keeps whichever changed last. Each conflict is recorded in the audit trail.
    conflict: Literal["forward_only", "hub_wins", "local_wins", "latest_wins"] = "forward_only"
    # What a confidential (rahasia) follow-up from the hub becomes in the local app: written
    # as a confidential follow-up (private), or not written at all (skip, audited).
    secret_follow_ups: Literal["private", "skip"] = "private"
    create_at_hub: CreateAtHub = CreateAtHub()
    deadlines: RouteDeadlines = RouteDeadlines()  # working-day deadlines of this app's complaints


class HttpRetries(_Strict):
    """Retries within one call (the outbox retries across passes on top)."""

    attempts: int = Field(3, ge=1, le=10)
    initial_wait_seconds: PositiveFloat = 0.2
    max_wait_seconds: PositiveFloat = 5.0
    max_retry_after_seconds: PositiveFloat = 30.0


class Breaker(_Strict):
    failure_threshold: int = Field(5, ge=1)
    reset_seconds: PositiveFloat = 30.0


class Budget(_Strict):
    """How fast and how many at once the gateway may call this system, shared by every
    job that calls it. The rate adapts down when the system answers HTTP 429."""

    requests_per_second: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="null: no limit until the system answers 429"
    )
    concurrency: int = Field(8, ge=1, le=64, description="requests in flight at once")
    recover_after_seconds: PositiveFloat = Field(
        300,
        description="after 429s lowered the rate, each period "
        "without lowering it again raises it by 10% of "
        "requests_per_second (never above it)",
    )


class Attachments(_Strict):
    """What a hub accepts; an attachment outside it is refused with its reason (and
    the complaint goes on without it)."""

    max_bytes: int = Field(10 * 1024 * 1024, ge=1)
    allowed_types: list[str] = Field(
        default_factory=lambda: ["image/jpeg", "image/png", "image/gif", "application/pdf"]
    )


class Polling(_Strict):
    """Hubs: when each complaint is read again (there is no change feed). See
    docs/configuration.md; the defaults read a complaint that just changed within
    10 minutes and every open one at least every 6 hours."""

    min_interval_minutes: float = Field(10, ge=0)
    sweep_bound_hours: float = Field(6, ge=0, description="every open complaint is read at least this often")
    quiet_factor: float = Field(0.5, ge=0, le=1, description="interval = this share of how long it has been quiet")
    reopen_window_days: float = Field(
        14, ge=0, description="closed complaints are still read (once per sweep) this long, in case they reopen"
    )
    deadline_soon_hours: float = Field(
        24, ge=0, description="this close to a complaint's current deadline, it is read at a rate (deadline_share)"
    )
    deadline_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="near a deadline, the next read comes after this share of the time left "
        "(never sooner than min_interval), and once just after the deadline",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, dict):
            for key, where in MOVED_POLLING_KEYS.items():
                if key in data:
                    raise ValueError(f"polling.{key} is no longer read: deadlines are set in {where}")
        return data

    @model_validator(mode="after")
    def _bounds(self) -> Polling:
        if self.sweep_bound_hours * 60 < self.min_interval_minutes:
            raise ValueError("sweep_bound_hours must not be shorter than min_interval_minutes")
        return self


# -- privacy: personal data kept only for a purpose (UU PDP; docs/privacy-reporter.md) ---------------

ReporterField = Literal["name", "nik", "phone", "email", "address"]


class ReporterPrivacy(_Strict):
    """A local app's ``privacy.reporter``: which of a reporter's fields the gateway keeps, and
    why. By default none: the reporter table gets no row. What is kept is encrypted with the
    keys in ``key_env``. (That ``keep`` needs a ``purpose`` and the keys is checked with the
    file's lines in ``_load.py``.)"""

    purpose: str | None = Field(
        None,
        description="why the gateway keeps the reporter's data, in a sentence (e.g. to call the reporter back "
        "when the agency asks for details); required to keep anything",
    )
    keep: list[ReporterField] = Field(default_factory=list, description="the fields kept for the purpose")
    key_env: str = Field(
        "GATEWAY_PERSONAL_DATA_KEYS",
        description="environment variable holding the encryption keys (comma-separated; the first encrypts)",
    )

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("say why the data is kept, or remove purpose")
        return " ".join(value.split()) if value is not None else None

    @field_validator("keep")
    @classmethod
    def _keep(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("key_env")
    @classmethod
    def _key_env(cls, value: str) -> str:
        return _variable_name(value, "GATEWAY_PERSONAL_DATA_KEYS")


class RetentionSettings(_Strict):
    """Local apps: how long a closed complaint's texts are kept (docs/privacy-retention.md). The
    daily purge then removes its title, body, location, its follow-ups' texts and authors, its
    files' names and its reporter, and keeps what the sync needs (ids, states, times)."""

    closed_days: int = Field(
        365,
        ge=0,
        le=36500,
        description="days after its closing that a complaint's texts are kept; 0: purged at the next run",
    )
    enabled: StrictBool = Field(True, description="false: this app's complaints are never purged (say why in docs)")


#: File names that look like an identity document: KTP/e-KTP (identity card), KK (family card), SIM
#: (driving licence), passport, NPWP (tax card), KIA/KITAS, birth and marriage certificates, and
#: the "selfie with KTP" that apps ask for. Matched as whole words (see AttachmentPrivacy).
IDENTITY_FILE_PATTERNS = (
    "ktp",  # e-KTP and selfie-KTP too: "e ktp", "selfie ktp" as words
    "ektp",
    # Glued to a word of its own, as people name their files (ktpku, ktpsaya, fotoktp, scanektp):
    # a closed list, so that no ordinary word that happens to contain "ktp" is caught.
    "(foto|scan|selfie|kopi|fotokopi|fc)?e?ktp(ku|mu|nya|saya|aku|asli|baru|lama)?",
    "kartu tanda penduduk",
    "kk",
    "kartu keluarga",
    # A driving licence and its classes (A, B1, B2, C, CI, CII, D, DI: "B1" is "b 1" as words),
    # written apart or together: sim, sim c, simc, SIM_B1, simA umum; never simpang or simulasi.
    "sim( ?(a|b|c|ci|cii|d|di))?( umum)?",
    "surat i[zj]in mengemudi",
    "paspor",
    "passport",
    "npwp",
    "nik",
    "identitas",
    "id card",
    "kia",
    "kitas",
    "kitap",
    "akta",
    "akte",
    "buku nikah",
    "surat nikah",
    "selfie",
)


#: The complaints whose reporter asked not to be known (anonim) or not to be shown (rahasia).
ComplaintKind = Literal["anonymous", "secret"]


def _pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return value


class AttachmentPrivacy(_Strict):
    """Local apps: files of an anonymous (or confidential) complaint that look like an identity
    document are held back from the hub, with the reason for the operator
    (docs/privacy-attachments.md). ``identity_names`` are regular expressions matched, case
    ignored, against the file name normalised (NFKC, case folded: a full-width KTP is ``ktp``)
    and broken into words (letters and digits; ``_ - .``, spaces, a change of case or between
    letters and digits separate words) as whole words: ``sim`` matches ``SIM_A.jpg`` and
    ``fotoSIM.png``, not ``simpang-lima.jpg``."""

    hold_back_for: list[ComplaintKind] = Field(
        default_factory=lambda: list(get_args(ComplaintKind)),
        description="which complaints' identity-like files are held back; [] turns the hold-back off",
    )
    identity_names: list[Annotated[str, AfterValidator(_pattern)]] = Field(
        default_factory=lambda: list(IDENTITY_FILE_PATTERNS)
    )
    identity_types: list[str] = Field(
        default_factory=list, description="content types held back whatever the name (e.g. an app's own ID scan type)"
    )


class PrivacySettings(_Strict):
    """Personal data under UU PDP (docs/privacy.md). Each sub-block is read by its own part."""

    retention: RetentionSettings = RetentionSettings()
    reporter: ReporterPrivacy = ReporterPrivacy()
    attachments: AttachmentPrivacy = AttachmentPrivacy()


class InstanceSettings(_Strict):
    name: str
    adapter: str
    base_url: str
    timezone: str = "Asia/Jakarta"
    timeout_seconds: PositiveFloat = 15
    enabled: StrictBool = True  # a string ("no") is an error, not a quiet false
    secrets: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, object] = Field(default_factory=dict)
    route: Route | None = None
    # peer's status (its name where it has one, else its code) -> canonical status
    statuses: dict[str, Status] = Field(default_factory=dict)
    # canonical status -> the local app's status to write (local apps only)
    status_writes: dict[Status, str] = Field(default_factory=dict)
    # local apps: the order in which the citizen sees statuses move, earliest first; an item may
    # be a list of statuses of the same rank. A status is never written over a later one
    # (route.conflict: forward_only). Default: the order of the canonical statuses.
    status_order: list[str | list[str]] = Field(default_factory=list)
    # local app: its category -> canonical slug; hub: canonical slug -> hub id
    categories: dict[str, str] = Field(default_factory=dict)
    # local app: its agency (OPD) -> the hub's institution id, to dispose complaints to
    # (empty: complaints go to the hub without a disposition)
    agencies: dict[str, str] = Field(default_factory=dict)
    # hub: canonical classification -> hub id
    classifications: dict[Classification, str] = Field(default_factory=dict)
    # local app: its channel -> canonical channel; hub: canonical channel -> hub id
    channels: dict[str, str] = Field(default_factory=dict)
    schedule: ScheduleOverride = ScheduleOverride()
    http_retries: HttpRetries = HttpRetries()
    breaker: Breaker = Breaker()
    budget: Budget = Budget()  # requests per second and at once, shared by the instance's jobs
    attachments: Attachments = Attachments()  # hubs: what they accept
    polling: Polling = Polling()  # hubs: when complaints are read again
    privacy: PrivacySettings = PrivacySettings()  # local apps: personal data (UU PDP): retention, reporter, files

    def status_of(self, code: str | None, name: str | None = None) -> Status | None:
        """The canonical status of a peer's status: looked up by its name first (hubs publish
        names, not codes), then by its code; case and spacing do not matter."""
        table = _status_table(tuple(self.statuses.items()))
        for raw in (name, code):
            if raw is not None and (found := table.get(_status_key(raw))) is not None:
                return found
        return None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not INSTANCE_NAME.match(value):
            raise ValueError("use lower-case letters, digits, '-' and '_' (e.g. lapor-hendi-semarang)")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http:// or https:// URL")
        if "@" in re.split(r"[/?#]", value.split("://", 1)[1], maxsplit=1)[0]:
            # user:password@host is a secret written in the file, and the URL goes into requests
            raise ValueError("a user or password in the URL is a secret: name it under secrets: instead")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "unknown time zone; use an IANA name such as Asia/Jakarta, Asia/Makassar, Asia/Jayapura"
            ) from None
        return value
