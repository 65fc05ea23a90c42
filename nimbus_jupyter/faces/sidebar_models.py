"""What the sidebar and the server exchange, as typed data. ``labextension/src/models.ts`` mirrors these.

Plain dataclasses (no pydantic): the kernel probe imports this module too, and it must stay cheap.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

PIPELINES_MIME = "application/vnd.nimbus.pipelines+json"
PROGRESS_MIME = "application/vnd.nimbus.progress+json"


@dataclass
class DeploymentInfo:
    """One deployment as the sidebar shows it. Never carries the API key."""

    name: str
    target: str
    status: str  # ready | dead | failed | starting | unknown
    url: str
    version: int
    created: str
    updated: str
    lang: str
    components: List[str]
    workers: int
    detail: str = ""  # why it is not ready, and what to do

    @classmethod
    def of(cls, deployment: Any) -> "DeploymentInfo":
        d = deployment
        return cls(name=d.name, target=d.target, status=d.status, url=d.url, version=d.version, created=d.created,
                   updated=d.updated, lang=d.lang, components=list(d.components), workers=d.workers, detail=d.detail)

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class WindowInfo:
    """Traffic over one window (``nimbus_jupyter.core.operate.WindowStats``)."""

    window: str  # 1h | 24h
    requests: int
    errors: int  # 5xx and function errors
    client_errors: int  # 4xx other than 429
    throttled: int  # 429
    p50_ms: Optional[float] = None
    p99_ms: Optional[float] = None
    cold_starts: Optional[int] = None  # AWS only


@dataclass
class StatusInfo:
    """GET /nimbus/api/deployments/{name}/status: ``nimbus_jupyter.core.operate.StatusReport`` as the sidebar shows it."""

    name: str
    target: str
    version: int
    health: str  # ok | down | unknown
    health_detail: str
    health_ms: Optional[float]
    last_hour: Optional[WindowInfo]
    last_day: Optional[WindowInfo]
    cost_this_month_usd: Optional[float]  # None: not applicable (local) or not known
    cost_detail: str
    metrics_detail: str
    checked_at: str
    url: str

    @classmethod
    def of(cls, report: Any) -> "StatusInfo":
        def window(w: Any) -> Optional[WindowInfo]:
            return None if w is None else WindowInfo(w.window, w.requests, w.errors, w.client_errors, w.throttled,
                                                     w.p50_ms, w.p99_ms, w.cold_starts)

        r = report
        return cls(name=r.name, target=r.target, version=r.version, health=r.health, health_detail=r.health_detail,
                   health_ms=r.health_ms, last_hour=window(r.last_hour), last_day=window(r.last_day),
                   cost_this_month_usd=r.cost_this_month_usd, cost_detail=r.cost_detail,
                   metrics_detail=r.metrics_detail, checked_at=r.checked_at, url=r.url)

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class OptionInfo:
    """One option a target declares (``nimbus_jupyter.targets.base.TargetOption``); deploys pass it by ``name``."""

    name: str  # snake_case, the key of the options a deploy passes: {"workers": 2}
    flag: str  # the %nimbus_deploy flag: --workers
    type: str  # int | float | str | bool | choice
    default: Any  # None: the target decides
    help: str
    choices: Optional[List[str]] = None
    metavar: Optional[str] = None

    @classmethod
    def of(cls, option: Any) -> "OptionInfo":
        return cls(**option.info())

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class TargetInfo:
    """GET /nimbus/api/targets: one registered target, what it can do and the options it takes."""

    name: str
    title: str
    stages: List[str]
    capabilities: List[str]  # the optional protocols it implements: operate, discover
    options: List[OptionInfo]

    @classmethod
    def of(cls, name: str, target: Any) -> "TargetInfo":
        from ..targets.base import capabilities_of

        return cls(name=name, title=target.title, stages=list(target.stages), capabilities=capabilities_of(target),
                   options=[OptionInfo.of(o) for o in target.options])

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class PipelineInfo:
    """A spaCy pipeline found in a kernel's user namespace."""

    variable: str
    lang: str
    components: List[str]
    size_bytes: int  # weights and vectors held in memory

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class PredictRequest:
    texts: List[str]
    fields: Optional[List[str]] = None

    @classmethod
    def parse(cls, body: Any) -> "PredictRequest":
        from ..core.errors import UserInputError

        if not isinstance(body, dict):
            raise UserInputError("the request body must be a JSON object", 'send {"texts": ["some text"]}')
        texts = body.get("texts")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise UserInputError("texts must be a non-empty list of non-empty strings", 'send {"texts": ["some text"]}')
        if len(texts) > 20:
            raise UserInputError(f"the sidebar tests at most 20 texts at once, not {len(texts)}",
                                 "use %%nimbus_batch for more")
        fields = body.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise UserInputError("fields must be a list of strings", 'e.g. "fields": ["ents", "cats"]')
        return cls(texts=texts, fields=fields or None)


@dataclass
class PredictResponse:
    results: List[Dict[str, Any]]
    fields: List[str]
    version: str

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class ErrorInfo:
    """Every error the routes answer with: what went wrong and what to do."""

    # a short code: not_found | bad_request | too_large | forbidden | endpoint_error | internal, or the endpoint's
    # own code when its 4xx passes through (unknown_field, bad_text, throttled, ...)
    error: str
    message: str
    todo: str = ""

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class ProgressMessage:
    """One message of a deploy started from the sidebar, published from the kernel as PROGRESS_MIME.

    ``kind`` is start (stages known) | stage | progress | message | done | error.
    """

    kind: str
    name: str
    stages: List[str] = field(default_factory=list)
    stage: str = ""
    state: str = ""
    detail: str = ""
    seconds: Optional[float] = None
    done: int = 0
    total: int = 0
    text: str = ""
    deployment: Optional[Dict[str, Any]] = None

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)
