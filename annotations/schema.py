"""Row types of the judgement dataset and their validation.

Every row is validated here before it reaches a file, so a bad request fails
with a message that names the field, and nothing half-valid is ever stored.
The column types are declared once (``*_DTYPES``) and used both for the
``datasets.Features`` and for the dataset card, so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from annotations.config import MAX_ID_LEN, MAX_RESPONSE_MS, MAX_TEXT_LEN

if TYPE_CHECKING:
    import datasets

SCHEMA_VERSION = 3
"""2 added ``campaign`` to judgements and skips; rows of version 1 belong to the default campaign.
3 added ``client_response_ms`` (the client's claim, a hint; ``response_ms`` is measured by the server) and
the ``retractions`` table (answers their rater undid)."""
CHOICES = ("left", "right", "tie")
PAIR_KINDS = ("active", "gold", "repeat")
SOURCES = ("gallery", "distortion", "upload", "dataset")
#: The campaign of the built-in rating pool, and of every row stored before campaigns existed.
DEFAULT_CAMPAIGN = "default"
#: Campaign names appear in links (``?campaign=NAME``), so they are short lowercase slugs.
CAMPAIGN_NAME_RULE = "2-48 characters: lowercase letters, digits and '-', starting with a letter or digit"

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]*")
_CAMPAIGN_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,47}")

JUDGEMENT_DTYPES: dict[str, str] = {
    "judgement_id": "string",
    "timestamp": "timestamp[us, tz=UTC]",
    "rater_id": "string",
    "left_image_id": "string",
    "right_image_id": "string",
    "choice": "string",
    "response_ms": "int64",
    "client_response_ms": "int64",
    "pair_kind": "string",
    "app_version": "string",
    "model_version": "string",
    "model_score_left": "float64",
    "model_score_right": "float64",
    "campaign": "string",
    "schema_version": "int32",
}

SKIP_DTYPES: dict[str, str] = {
    "skip_id": "string",
    "timestamp": "timestamp[us, tz=UTC]",
    "rater_id": "string",
    "left_image_id": "string",
    "right_image_id": "string",
    "pair_kind": "string",
    "reason": "string",
    "response_ms": "int64",
    "client_response_ms": "int64",
    "app_version": "string",
    "campaign": "string",
    "schema_version": "int32",
}

RETRACTION_DTYPES: dict[str, str] = {
    "retraction_id": "string",
    "timestamp": "timestamp[us, tz=UTC]",
    "rater_id": "string",
    "record_id": "string",
    "campaign": "string",
    "schema_version": "int32",
}
"""A rater undid one of their answers (``record_id``: a judgement's or a skip's id); the row stays in its file."""

IMAGE_DTYPES: dict[str, str] = {
    "image_id": "string",
    "source": "string",
    "licence": "string",
    "registered_at": "timestamp[us, tz=UTC]",
    "distortion": "string",
    "level": "int32",
    "reference_id": "string",
    "dataset": "string",
    "consent": "bool",
    "schema_version": "int32",
}


class InvalidRecord(ValueError):
    """A row that must not be stored; the message says which field is wrong."""


class InvalidJudgement(InvalidRecord):
    """A judgement or skip row that must not be stored."""


class InvalidImage(InvalidRecord):
    """An image registration that must not be stored."""


def image_id_for(data: bytes) -> str:
    """Content-hash id of an image file, so the same file always gets the same id."""
    return "sha256-" + hashlib.sha256(data).hexdigest()


def new_id() -> str:
    """A random row id (judgement or skip)."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def features(dtypes: Mapping[str, str]) -> datasets.Features:
    """``datasets.Features`` for one of the ``*_DTYPES`` tables."""
    import datasets

    return datasets.Features({name: datasets.Value(dtype) for name, dtype in dtypes.items()})


def check_id(value: Any, name: str, error: type[InvalidRecord] = InvalidJudgement) -> str:
    """Return ``value`` if it is a well-formed identifier, else raise ``error``."""
    if not isinstance(value, str):
        raise error(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise error(f"{name} must not be empty")
    if len(value) > MAX_ID_LEN:
        raise error(f"{name} is {len(value)} characters long; the limit is {MAX_ID_LEN}")
    if not _ID_RE.fullmatch(value):
        raise error(f"{name} {value!r} may only contain letters, digits and . _ : @ / + -")
    return value


def check_campaign(value: Any, error: type[ValueError] = InvalidJudgement) -> str:
    """Return ``value`` if it is a valid campaign name (see ``CAMPAIGN_NAME_RULE``), else raise ``error``."""
    if not isinstance(value, str):
        raise error(f"campaign must be a string, got {type(value).__name__}")
    if not _CAMPAIGN_RE.fullmatch(value):
        raise error(f"campaign name {value[:60]!r} is not valid: {CAMPAIGN_NAME_RULE}")
    return value


def _check_text(value: Any, name: str, error: type[InvalidRecord], optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise error(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_LEN:
        raise error(f"{name} is {len(value)} characters long; the limit is {MAX_TEXT_LEN}")
    return value


def _check_choice(value: Any, name: str, allowed: tuple[str, ...], error: type[InvalidRecord]) -> str:
    if value not in allowed:
        raise error(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _check_response_ms(value: Any, error: type[InvalidRecord]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise error(f"response_ms must be a number of milliseconds, got {value!r}")
    if not 0 <= value <= MAX_RESPONSE_MS:
        raise error(f"response_ms must be between 0 and {MAX_RESPONSE_MS}; got {value}")
    return int(round(value))


def _check_score(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidJudgement(f"{name} must be a finite number or None, got {value!r}")
    return float(value)


def _check_time(value: Any, name: str, error: type[InvalidRecord]) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise error(f"{name} {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise error(f"{name} must be a datetime or ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        raise error(f"{name} must carry a timezone (UTC expected)")
    return value.astimezone(timezone.utc)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_mapping(cls: type, data: Any, error: type[InvalidRecord]) -> Any:
    """Build a row dataclass from a dict, naming unknown and missing fields."""
    if not isinstance(data, Mapping):
        raise error(f"expected a mapping of fields, got {type(data).__name__}")
    unknown = sorted(map(str, set(data) - {f.name for f in fields(cls)}))
    if unknown:
        raise error(f"unknown field(s): {', '.join(unknown)}")
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise error(f"missing required field(s): {', '.join(missing)}")
    return cls(**data)


def _record(row: Any) -> dict[str, Any]:
    """JSON-ready dict of a validated row, times as ISO 8601 UTC strings."""
    out = {key: _iso(value) if isinstance(value, datetime) else value for key, value in asdict(row).items()}
    out["schema_version"] = SCHEMA_VERSION
    return out


@dataclass(frozen=True)
class Judgement:
    """One answer to "which image looks better?"; validated on construction."""

    rater_id: str
    left_image_id: str
    right_image_id: str
    choice: str
    response_ms: int | None = None
    pair_kind: str = "active"
    app_version: str = ""
    model_version: str = ""
    client_response_ms: int | None = None
    model_score_left: float | None = None
    model_score_right: float | None = None
    campaign: str = DEFAULT_CAMPAIGN
    judgement_id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        err = InvalidJudgement
        check_id(self.rater_id, "rater_id", err)
        check_id(self.left_image_id, "left_image_id", err)
        check_id(self.right_image_id, "right_image_id", err)
        if self.left_image_id == self.right_image_id:
            raise err("left_image_id and right_image_id must differ")
        _check_choice(self.choice, "choice", CHOICES, err)
        _check_choice(self.pair_kind, "pair_kind", PAIR_KINDS, err)
        check_id(self.judgement_id, "judgement_id", err)
        _check_text(self.app_version, "app_version", err)
        _check_text(self.model_version, "model_version", err)
        check_campaign(self.campaign, err)
        object.__setattr__(self, "response_ms", _check_response_ms(self.response_ms, err))
        object.__setattr__(self, "client_response_ms", _check_response_ms(self.client_response_ms, err))
        object.__setattr__(self, "model_score_left", _check_score(self.model_score_left, "model_score_left"))
        object.__setattr__(self, "model_score_right", _check_score(self.model_score_right, "model_score_right"))
        object.__setattr__(self, "timestamp", _check_time(self.timestamp, "timestamp", err))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judgement:
        """Validate a plain dict (e.g. from a web request) into a Judgement."""
        return _from_mapping(cls, data, InvalidJudgement)

    def to_record(self) -> dict[str, Any]:
        """The JSON row as stored."""
        return _record(self)


@dataclass(frozen=True)
class Skip:
    """A pair the rater declined to judge; kept apart so it never counts as a tie."""

    rater_id: str
    left_image_id: str
    right_image_id: str
    pair_kind: str = "active"
    reason: str = ""
    response_ms: int | None = None
    app_version: str = ""
    campaign: str = DEFAULT_CAMPAIGN
    client_response_ms: int | None = None
    skip_id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        err = InvalidJudgement
        check_id(self.rater_id, "rater_id", err)
        check_id(self.left_image_id, "left_image_id", err)
        check_id(self.right_image_id, "right_image_id", err)
        _check_choice(self.pair_kind, "pair_kind", PAIR_KINDS, err)
        _check_text(self.reason, "reason", err)
        _check_text(self.app_version, "app_version", err)
        check_id(self.skip_id, "skip_id", err)
        check_campaign(self.campaign, err)
        object.__setattr__(self, "response_ms", _check_response_ms(self.response_ms, err))
        object.__setattr__(self, "client_response_ms", _check_response_ms(self.client_response_ms, err))
        object.__setattr__(self, "timestamp", _check_time(self.timestamp, "timestamp", err))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Skip:
        """Validate a plain dict into a Skip."""
        return _from_mapping(cls, data, InvalidJudgement)

    def to_record(self) -> dict[str, Any]:
        """The JSON row as stored."""
        return _record(self)


@dataclass(frozen=True)
class Retraction:
    """A rater's undo of their own answer: appended, so the answer's line is never rewritten."""

    rater_id: str
    record_id: str
    campaign: str = DEFAULT_CAMPAIGN
    retraction_id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        err = InvalidJudgement
        check_id(self.rater_id, "rater_id", err)
        check_id(self.record_id, "record_id", err)
        check_id(self.retraction_id, "retraction_id", err)
        check_campaign(self.campaign, err)
        object.__setattr__(self, "timestamp", _check_time(self.timestamp, "timestamp", err))

    def to_record(self) -> dict[str, Any]:
        """The JSON row as stored."""
        return _record(self)


@dataclass(frozen=True)
class ImageRecord:
    """Where an image came from and under which licence it may be shown.

    ``source`` is one of ``SOURCES``; a ``distortion`` image names its
    distortion and level (and usually its pristine ``reference_id``), an
    ``upload`` needs the uploader's ``consent``, a ``dataset`` image names its
    dataset.
    """

    image_id: str
    source: str
    licence: str
    distortion: str | None = None
    level: int | None = None
    reference_id: str | None = None
    dataset: str | None = None
    consent: bool | None = None
    registered_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        err = InvalidImage
        check_id(self.image_id, "image_id", err)
        _check_choice(self.source, "source", SOURCES, err)
        if not _check_text(self.licence, "licence", err):
            raise err("licence must not be empty")
        _check_text(self.distortion, "distortion", err, optional=True)
        _check_text(self.dataset, "dataset", err, optional=True)
        if self.reference_id is not None:
            check_id(self.reference_id, "reference_id", err)
        if self.level is not None and (isinstance(self.level, bool) or not isinstance(self.level, int)):
            raise err(f"level must be an integer, got {self.level!r}")
        if self.consent is not None and not isinstance(self.consent, bool):
            raise err(f"consent must be True or False, got {self.consent!r}")
        if self.source == "distortion" and (not self.distortion or self.level is None):
            raise err("a distortion image needs distortion= and level=")
        if self.source == "upload" and self.consent is not True:
            raise err("an uploaded image can only be stored with consent=True")
        if self.source == "dataset" and not self.dataset:
            raise err("a dataset image needs dataset=")
        object.__setattr__(self, "registered_at", _check_time(self.registered_at, "registered_at", err))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageRecord:
        """Validate a plain dict into an ImageRecord."""
        return _from_mapping(cls, data, InvalidImage)

    def to_record(self) -> dict[str, Any]:
        """The JSON row as stored."""
        return _record(self)
