"""The description of a local app in YAML: the ``settings:`` block of an instance whose
``adapter:`` is ``declarative`` (docs/adapters.md, "A local app in YAML").

Every model forbids unknown keys, so a misspelt key is a config error with its file and
line; every JMESPath expression is compiled and every template's placeholders are checked
when the config is checked, not when the first record arrives.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import jmespath
import jmespath.functions
from jmespath.exceptions import IncompleteExpressionError, JMESPathError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

#: The values a write's path and body may name.
WRITE_VALUES = frozenset(
    {"content", "author", "gateway_ref", "complaint_ref", "status", "status_name", "note", "is_secret"}
)


#: The functions JMESPath knows (the adapter registers none of its own).
_FUNCTIONS = frozenset(jmespath.functions.Functions().FUNCTION_TABLE)


def _unknown_functions(node: Any) -> list[str]:
    """The names of functions ``node`` (a parsed expression) calls that JMESPath does not have.
    jmespath finds them only when it evaluates the call, and the adapter reads that error as a
    field not there: every record would be quarantined for a missing field, config check silent."""
    if not isinstance(node, dict):
        return []
    found = [str(node["value"])] if node.get("type") == "function_expression" else []
    found = [name for name in found if name not in _FUNCTIONS]
    for child in node.get("children", ()):
        found += _unknown_functions(child)
    return found


def _expression(text: str) -> str:
    try:
        parsed = jmespath.compile(text)
    except IncompleteExpressionError:
        raise ValueError(f"not a JMESPath expression: {text!r} ends too early") from None
    except JMESPathError as exc:
        # jmespath's own text spans lines (the expression, a caret): its parts, on one line.
        where = getattr(exc, "lex_position", getattr(exc, "lexer_position", None))
        reason = getattr(exc, "msg", None) or getattr(exc, "message", None) or type(exc).__name__
        at = f" at character {where + 1}" if isinstance(where, int) else ""
        raise ValueError(f"not a JMESPath expression: {text!r}{at}: {reason}") from None
    unknown = _unknown_functions(parsed.parsed)
    if unknown:
        raise ValueError(f"not a JMESPath expression: {text!r} calls unknown function {unknown[0]!r}")
    return text


#: A JMESPath expression (https://jmespath.org) applied to one record or answer.
Expr = Annotated[str, AfterValidator(_expression)]


def placeholders(template: str) -> list[str]:
    """The ``{names}`` of a template (``{{`` is a literal brace)."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError:
        raise ValueError("unbalanced { or } (write {{ or }} for a literal brace)") from None


def _template(allowed: frozenset[str], what: str) -> Any:
    def check(text: str) -> str:
        # Appended to base_url: without its '/', 'http://evil/x' or '../x' makes a URL that is not
        # the peer's (or none at all, an internal error at the first request).
        if not text.startswith("/"):
            raise ValueError(f"{what} is a path below base_url: it starts with '/' (e.g. /api/v1/aduan)")
        for name in placeholders(text):
            if name not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"{{{name}}} is not a value {what} may name (it may name: {known})")
        return text

    return AfterValidator(check)


ListPath = Annotated[str, _template(frozenset(), "a list's path")]
ChildPath = Annotated[str, _template(frozenset({"complaint_ref"}), "a per-complaint path")]
WritePath = Annotated[str, _template(frozenset({"complaint_ref"}), "a write's path")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- auth -------------------------------------------------------------------------------------------------
# Every secret is named, never written: the name is a key of the instance's ``secrets:``.


class NoAuth(_Strict):
    type: Literal["none"]


class StaticHeaders(_Strict):
    type: Literal["headers"]
    headers: dict[str, str] = Field(description="header -> value; {name} is the secret of that name")

    @field_validator("headers")
    @classmethod
    def _templates(cls, headers: dict[str, str]) -> dict[str, str]:
        for header, value in headers.items():
            try:
                placeholders(value)
            except ValueError as exc:
                raise ValueError(f"{header}: {exc}") from None
        return headers


class ApiKeyAuth(_Strict):
    type: Literal["api_key"]
    header: str = Field(description="the header the key goes in, e.g. X-Api-Key")
    key: str = Field(description="the secret holding the key")


class BasicAuthSpec(_Strict):
    type: Literal["basic"]
    username: str = Field(description="the secret holding the user name")
    password: str = Field(description="the secret holding the password")


class OAuth2Spec(_Strict):
    type: Literal["oauth2_client_credentials"]
    token_url: str = Field(description="absolute, or a path on base_url")
    client_id: str = Field(description="the secret holding the client id")
    client_secret: str = Field(description="the secret holding the client secret")
    scope: str | None = None
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"


Auth = Annotated[NoAuth | StaticHeaders | ApiKeyAuth | BasicAuthSpec | OAuth2Spec, Field(discriminator="type")]


# --- requests and paging ----------------------------------------------------------------------------------


class Request(_Strict):
    method: Literal["GET", "POST"] = "GET"
    path: ListPath
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    since_param: str | None = Field(None, description="the query parameter the walk's since (inclusive) goes in")


class NoPaging(_Strict):
    type: Literal["none"]


class PageByTime(_Strict):
    """Page numbers over a list ordered by update time (read with gateway.walk_by_time)."""

    type: Literal["page_by_time"]
    page_param: str
    size_param: str | None = None
    page_size: int = Field(50, ge=1, le=10_000)
    last_page: Expr | None = Field(None, description="true on the last page; default: a page shorter than page_size")
    total: Expr | None = Field(None, description="how many records match, if the answer says")


class OffsetPaging(_Strict):
    type: Literal["offset"]
    offset_param: str
    limit_param: str
    page_size: int = Field(50, ge=1, le=10_000)


class TokenPaging(_Strict):
    type: Literal["token"]
    token_param: str
    next_token: Expr
    has_more: Expr | None = Field(None, description="false on the last page; default: no next token")
    keep_position: bool = Field(False, description="the feed is ordered by its token: the engine keeps it")


class LinkPaging(_Strict):
    type: Literal["link"]


Paging = Annotated[NoPaging | PageByTime | OffsetPaging | TokenPaging | LinkPaging, Field(discriminator="type")]


class ListSpec(_Strict):
    request: Request
    paging: Paging = NoPaging(type="none")
    records: Expr = Field(description="where the answer holds the list, e.g. data ('@': the answer is the list)")

    @model_validator(mode="after")
    def _boundary(self) -> ListSpec:
        if isinstance(self.paging, PageByTime) and self.request.since_param is None:
            raise ValueError("paging page_by_time needs request.since_param: the walk asks again from a time")
        if isinstance(self.paging, LinkPaging) and self.request.method != "GET":
            raise ValueError("paging link follows GET links only")
        return self


# --- records ----------------------------------------------------------------------------------------------


class LocationFields(_Strict):
    description: Expr | None = None
    subdistrict: Expr | None = None
    district: Expr | None = None
    latitude: Expr | None = None
    longitude: Expr | None = None


class ReporterFields(_Strict):
    name: Expr | None = None
    nik: Expr | None = None
    phone: Expr | None = None
    email: Expr | None = None
    address: Expr | None = None


class ComplaintFields(_Strict):
    ref: Expr
    title: Expr
    body: Expr
    created_at: Expr
    updated_at: Expr
    status: Expr
    status_name: Expr | None = None
    category: Expr | None = None
    channel: Expr | None = None
    agency: Expr | None = None
    incident_at: Expr | None = None
    is_anonymous: Expr | None = None
    is_secret: Expr | None = None
    location: LocationFields | None = None
    reporter: ReporterFields | None = None


class FollowUpFields(_Strict):
    ref: Expr
    complaint_ref: Expr | None = Field(None, description="default, per complaint: the complaint's own ref")
    content: Expr
    created_at: Expr
    author: Expr | None = None
    gateway_ref: Expr | None = Field(None, description="where the app echoes the gateway_ref a write sent")
    is_secret: Expr | None = None


class StatusChangeFields(_Strict):
    ref: Expr
    complaint_ref: Expr
    status: Expr
    status_name: Expr | None = None
    changed_at: Expr
    previous: Expr | None = None
    gateway_ref: Expr | None = None
    note: Expr | None = None


class ComplaintStream(ListSpec):
    fields: ComplaintFields


class ChildList(_Strict):
    """A list kept per complaint (GET /complaints/{complaint_ref}/comments), answered whole; or,
    without ``request_path``, one held in the complaint's own record (``records`` applied to it)."""

    request_path: ChildPath | None = None
    records: Expr


class FollowUpStream(_Strict):
    list: ListSpec | None = Field(None, description="one list of every complaint's follow-ups")
    per_complaint: ChildList | None = Field(None, description="each complaint's follow-ups on their own")
    fields: FollowUpFields

    @model_validator(mode="after")
    def _one_source(self) -> FollowUpStream:
        if (self.list is None) == (self.per_complaint is None):
            raise ValueError("give exactly one of list (a list across complaints) or per_complaint")
        if self.list is not None and self.fields.complaint_ref is None:
            raise ValueError("fields.complaint_ref is needed for a list across complaints")
        return self


class StatusStream(ListSpec):
    fields: StatusChangeFields


# --- writes -----------------------------------------------------------------------------------------------


def _body_values(value: Any, where: str = "body") -> None:
    if isinstance(value, str):
        for name in placeholders(value):
            if name not in WRITE_VALUES:
                raise ValueError(f"{where}: {{{name}}} is not a value (it may name: {', '.join(sorted(WRITE_VALUES))})")
    elif isinstance(value, dict):
        for key, item in value.items():
            _body_values(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _body_values(item, f"{where}.{n}")


class WriteSpec(_Strict):
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: WritePath
    body: dict[str, Any] = Field(description="JSON; a string that is exactly {name} takes that value with its type")
    id: Expr | None = Field(None, description="where the answer holds the new record's id")
    confirm: Expr | None = Field(None, description="true when the answer proves the write (default: 2xx and id)")
    refused: Expr | None = Field(None, description="true when a 2xx answer says the write was not made")
    idempotency_header: str | None = Field(None, description="a header the gateway_ref is sent in")
    idempotent: bool = Field(False, description="the app applies this write repeated with its gateway_ref once")

    @field_validator("body")
    @classmethod
    def _values(cls, body: dict[str, Any]) -> dict[str, Any]:
        _body_values(body)
        return body


class Writes(_Strict):
    # Absent: the app has no such call; the write is refused (its delivery parked with the reason).
    follow_up: WriteSpec | None = None
    status: WriteSpec | None = None


class Times(_Strict):
    format: str = Field("iso", description="'iso' (ISO 8601, offset read when given) or a strptime format")
    query_format: str = Field("iso", description="how since is written in a query: 'iso' or a strftime format")

    @field_validator("format", "query_format")
    @classmethod
    def _format(cls, value: str) -> str:
        """A format a time can be written in and read back from: '%Q' is refused by strptime only
        when a record arrives (every record then unreadable), and strftime writes it as it is."""
        if value == "iso":
            return value
        try:
            datetime.strptime(datetime(2026, 11, 30, 8, 5, 9, tzinfo=UTC).strftime(value), value)
        except ValueError as exc:
            raise ValueError(f"not a time format of strptime/strftime ({exc})") from None
        if "%" not in value:
            raise ValueError("not a time format: it has no %-directive such as %Y-%m-%d %H:%M:%S")
        return value


class Description(_Strict):
    """A local app, described: the ``settings:`` of a ``declarative`` instance."""

    description: str = Field("a local app described in YAML", description="one line shown by gateway adapters")
    auth: Auth = NoAuth(type="none")
    times: Times = Times()
    complaints: ComplaintStream
    follow_ups: FollowUpStream
    status_changes: StatusStream | None = Field(None, description="absent: the app keeps the current status only")
    writes: Writes = Writes()

    def required_secrets(self) -> dict[str, tuple[str, ...]]:
        """The secrets the description names, each with where it names it (for config check)."""
        auth = self.auth
        found: dict[str, tuple[str, ...]] = {}
        if isinstance(auth, StaticHeaders):
            for header, value in auth.headers.items():
                for name in placeholders(value):
                    found.setdefault(name, ("auth", "headers", header))
        elif isinstance(auth, ApiKeyAuth):
            found[auth.key] = ("auth", "key")
        elif isinstance(auth, BasicAuthSpec):
            found.update({auth.username: ("auth", "username"), auth.password: ("auth", "password")})
        elif isinstance(auth, OAuth2Spec):
            found.update({auth.client_id: ("auth", "client_id"), auth.client_secret: ("auth", "client_secret")})
        return found
