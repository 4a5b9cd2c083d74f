"""Request and response bodies of the HTTP API (pydantic; unknown request fields are a 422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
)

#: Most events one POST may carry (a body-size limit applies too).
MAX_EVENTS_PER_REQUEST = 10_000
MAX_K = 1000

Id = StrictStr | StrictInt
EventId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256, strict=True)] | StrictInt
Number = StrictInt | StrictFloat | StrictStr


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_Request):
    """One behaviour event; fields are judged like the columns of an event file."""

    event_id: EventId = Field(description="unique id: sending the same event again stores it once")
    user_id: Id | None = None
    item_id: Id | None = Field(None, description="may be empty only for search events")
    event_type: StrictStr | None = Field(
        None, description="view, click, favourite, cart, purchase, search, review or a synonym; default view")
    timestamp: StrictInt | StrictFloat | StrictStr | None = Field(
        None, description="unix seconds or milliseconds, ISO-8601, or yyyymmdd", examples=[1709283600, "2024-03-01T09:00:00Z"])
    session_id: Id | None = None
    quantity: Number | None = None
    value: Number | None = None
    query: StrictStr | None = None
    rating: Number | None = None
    text: StrictStr | None = None


class EventsIn(_Request):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)
    time_format: StrictStr = Field("auto", description="auto, unix_s, unix_ms, iso8601, yyyymmdd or a strftime pattern")


class AcceptedEvent(BaseModel):
    index: int
    event_id: str
    status: Literal["stored", "duplicate"]


class RejectedEvent(BaseModel):
    index: int
    event_id: str | None
    reason: str
    detail: str


class EventsOut(BaseModel):
    stored: int
    duplicates: int
    accepted: list[AcceptedEvent]
    rejected: list[RejectedEvent]


class SessionEvent(_Request):
    item_id: Id
    event_type: StrictStr | None = None
    timestamp: StrictInt | None = Field(None, description="unix seconds")


class SessionIn(_Request):
    sequence: list[Id | SessionEvent] = Field(max_length=1000, description="item ids or event objects, oldest first")
    k: int = Field(10, ge=1, le=MAX_K)
    filter_seen: bool = True
    category: StrictStr | None = None


class ScoredItem(BaseModel):
    item_id: str
    score: float
    rank: int


class RecommendationsOut(BaseModel):
    user_id: str | None
    source: Literal["model", "popular"] = Field(description="popular: no known item in the history (cold start)")
    items: list[ScoredItem]
    model_version: str


class SimilarOut(BaseModel):
    item_id: str
    items: list[ScoredItem]
    model_version: str


class SearchItem(ScoredItem):
    text_score: float
    personal_score: float


class SearchOut(BaseModel):
    query: str
    user_id: str | None
    personalised: bool
    items: list[SearchItem]
    model_version: str


class PredictionsOut(BaseModel):
    user_id: str
    predictions: dict[str, Any]
    model_version: str


class ProfileOut(BaseModel):
    user_id: str
    profile: dict[str, Any]
    model_version: str


class ExplanationOut(BaseModel):
    user_id: str
    explanation: dict[str, Any]
    model_version: str


class UserEventsOut(BaseModel):
    user_id: str
    events: list[dict[str, Any]]


class UserStateOut(BaseModel):
    user_id: str
    known: bool
    recent_items: list[str | None] = Field(
        description="the items the model reads for this user, oldest first (null: a search or an item unknown to the bundle)")


class ForgetOut(BaseModel):
    user_id: str
    deleted_events: int
    #: Where the user's data was erased (the erasure report).
    erased_from: list[str]


class ExportOut(BaseModel):
    user_id: str
    stored_events: list[dict[str, Any]]
    #: The recent events the model reads for the user: the bundle's history plus ingested events.
    model_history: list[dict[str, Any]]
    forgotten: bool
    #: The user's next-best-action decisions (with `--actions`): action, propensity, context, outcome.
    decisions: list[dict[str, Any]] = []


class PurgeIn(_Request):
    before: StrictInt | None = Field(None, description="unix seconds; default: the start of the retention window")


class PurgeOut(BaseModel):
    deleted_events: int
    before: int


class ReloadIn(_Request):
    bundle: StrictStr | None = Field(None, description="bundle folder; default: reload the current one")


class OutcomeIn(_Request):
    reward: StrictInt | StrictFloat = Field(allow_inf_nan=False, description="what the decision earned (e.g. margin, 1 for a click)")
    clicked: list[StrictStr] | None = Field(None, max_length=1000,
                                            description="a slate's items that were clicked (the slate bandit learns from them)")


class OutcomeOut(BaseModel):
    decision_id: str
    action: str
    reward: float
    rewarded_at: float
    clicked: list[str] | None = None


class NextBestActionOut(BaseModel):
    user_id: str
    decision_id: str
    action: str
    kind: str
    propensity: float = Field(description="the probability the policy gave the chosen action (for off-policy evaluation)")
    cost: float
    policy_version: str
    reasons: list[str]
    state: dict[str, float]
    discount: float | None = None
    items: list[str] | None = Field(None, description="a slate action's recommended items")
    model_version: str | None = None


class ErrorOut(BaseModel):
    error: str
    detail: Any
    hint: str | None = None
