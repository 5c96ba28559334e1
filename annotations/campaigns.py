"""Rating campaigns: named image sets, each with its own judgements, sampler state and ranking.

A campaign lives in ``<data dir>/campaigns/<name>/``: ``campaign.json`` (title,
instructions, pair mode, gold share, status, and per image its id, file,
source, licence and content group) and ``images/`` with the files people are
shown. Its judgements go to the one durable store with ``campaign=<name>``;
the built-in rating pool is the campaign ``default``: a registry made with
``default`` (``annotations.builtin_pool``) returns it from ``get`` like any
other, but it has no folder here, so it is not listed by ``names`` and cannot
be closed, hidden, reset or cloned. A
campaign folder appears in one rename once every image is imported and
registered, so readers (the app, while the CLI creates one) never see half of
one (a clone too); the manifest is rewritten atomically on ``close``/``reopen``, on a new title or instructions,
and on a reset, which records when the campaign's new round began.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from annotations.campaign_import import CampaignError, Imported, Skipped, import_images
from annotations.schema import DEFAULT_CAMPAIGN, InvalidRecord, check_campaign
from annotations.shards import atomic_write_text, fsync_dir
from annotations.store import AnnotationStore

MANIFEST = "campaign.json"
PAIR_MODES = ("same-content", "any")
AUTO_PAIRS = "auto"
PAIR_SETTINGS = (AUTO_PAIRS, *PAIR_MODES)
"""What a creator may ask for: ``auto`` picks one of ``PAIR_MODES`` from the images (``choose_pairs``)."""
STATUSES = ("open", "closed")
MAX_TITLE_LEN = 120
MAX_INSTRUCTIONS_LEN = 2000
MAX_AUDIENCE = 5000
"""The largest room a campaign is sized for (the per-address limits grow with it)."""
DEFAULT_LICENCE = "not stated by the campaign's creator"
DEFAULT_PAIRS_PER_RATER = 200
"""The most pairs one rater answers in a campaign's round unless the campaign says otherwise: a session of
about 15 minutes at a steady pace, after which attention drifts, and no single person's taste outweighs the
crowd's. A rater who has answered every pair the campaign serves is done sooner."""
MAX_PAIRS_PER_RATER = 10_000

Progress = Callable[[int, int, str], None]


class UnknownCampaign(CampaignError, KeyError):
    """No campaign of that name exists."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class CampaignImage:
    """One image of a campaign: what people see, where it came from, under which licence."""

    image_id: str
    file: str
    name: str
    source: str
    licence: str
    content: str
    gold: str | None = None
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Campaign:
    """A campaign's settings and images, as read from its manifest."""

    name: str
    title: str
    instructions: str
    pairs: str
    gold_share: float
    status: str
    source: str
    created_at: str
    images: tuple[CampaignImage, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    folder: Path = field(default=Path("."), compare=False)
    audience: int | None = None
    """People expected to rate at once from one address (a talk's room); None: the app's default limits.
    Last, with a default, so manifests written before it existed load unchanged."""
    results_hidden: bool = False
    """The live view shows only how many voted until the presenter reveals the ranking."""
    resets: tuple[str, ...] = ()
    """When each reset began a new round (ISO 8601 UTC, oldest first); round 1 began at creation.
    A judgement belongs to the round during which it was stored (``annotations.rounds``)."""
    pairs_per_rater: int | None = None
    """The most pairs one rater answers in a round; None: ``DEFAULT_PAIRS_PER_RATER`` (see ``pair_cap``)."""

    @property
    def pair_cap(self) -> int:
        """How many pairs one rater answers (judges or skips) in a round at most, after which they are thanked
        and done."""
        return DEFAULT_PAIRS_PER_RATER if self.pairs_per_rater is None else self.pairs_per_rater

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def round(self) -> int:
        """The current round: 1 until the first reset."""
        return len(self.resets) + 1

    @property
    def ids(self) -> list[str]:
        return [image.image_id for image in self.images]

    def image(self, image_id: str) -> CampaignImage:
        for image in self.images:
            if image.image_id == image_id:
                return image
        raise KeyError(image_id)

    def path(self, image_id: str) -> Path:
        return self.folder / "images" / self.image(image_id).file

    def content_of(self) -> dict[str, str]:
        return {image.image_id: image.content for image in self.images}

    def gold_pairs(self) -> list[tuple[str, str]]:
        """(better, worse): images marked ``gold=high`` against ``gold=low`` (of the same content
        in ``same-content`` mode), so gold checks never leave the campaign's images."""
        high = [i for i in self.images if i.gold == "high"]
        low = [i for i in self.images if i.gold == "low"]
        same = self.pairs == "same-content"
        return [(h.image_id, w.image_id) for h in high for w in low if not same or h.content == w.content]

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("folder")
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], folder: Path) -> Campaign:
        images = tuple(CampaignImage(**entry) for entry in record.pop("images", []))
        skipped = tuple(Skipped(**entry) for entry in record.pop("skipped", []))
        resets = tuple(record.pop("resets", ()))
        return cls(**record, images=images, skipped=skipped, folder=folder, resets=resets)


@dataclass(frozen=True)
class Settings:
    """What the creator chooses besides the images; validated before anything is imported."""

    title: str = ""
    instructions: str = ""
    pairs: str = AUTO_PAIRS
    gold_share: float = 0.1
    licence: str = DEFAULT_LICENCE
    content_from: str = "stem"
    audience: int | None = None
    pairs_per_rater: int | None = None

    def checked(self, name: str) -> Settings:
        title, instructions = check_texts(name, self.title, self.instructions)
        if self.pairs not in PAIR_SETTINGS:
            raise CampaignError(f"pairs must be one of {', '.join(PAIR_SETTINGS)}; got {self.pairs!r}")
        share = self.gold_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 0.5:
            raise CampaignError(f"the gold share must be a number from 0 to 0.5; got {share!r}")
        if not self.licence.strip():
            raise CampaignError("the default licence must not be empty")
        check_audience(self.audience)
        check_pairs_per_rater(self.pairs_per_rater)
        return replace(self, title=title, instructions=instructions, gold_share=float(share))


@dataclass(frozen=True)
class CreateReport:
    """The new campaign and the files that were left out, each with its reason."""

    campaign: Campaign
    skipped: tuple[Skipped, ...]
    pairs_reason: str = ""
    """Why the campaign serves the pairs it does (``auto``'s measurement, or "as asked")."""

    def summary(self) -> str:
        lines = [f"created campaign {self.campaign.name!r}: {len(self.campaign.images)} images imported, "
                 f"{len(self.skipped)} skipped",
                 f"  pairs: {self.campaign.pairs} ({self.pairs_reason})"]
        if self.campaign.audience is not None:
            lines.append(f"  sized for an audience of {self.campaign.audience} people rating from one address")
        lines.append(f"  at most {self.campaign.pair_cap} pairs per rater and round")
        lines += [f"  skipped {item.name}: {item.reason}" for item in self.skipped]
        return "\n".join(lines)


def check_texts(name: str, title: Any, instructions: Any) -> tuple[str, str]:
    """What raters read, checked: the title (the campaign's name when empty) and the instructions, stripped
    and within their limits."""
    if not isinstance(title, str) or not isinstance(instructions, str):
        raise CampaignError("the title and the instructions must be text")
    title = (title or name).strip()
    if len(title) > MAX_TITLE_LEN:
        raise CampaignError(f"the title is {len(title)} characters long; the limit is {MAX_TITLE_LEN}")
    if len(instructions) > MAX_INSTRUCTIONS_LEN:
        raise CampaignError(f"the instructions are {len(instructions)} characters long; "
                            f"the limit is {MAX_INSTRUCTIONS_LEN}")
    return title, instructions.strip()


def check_audience(audience: Any) -> int | None:
    """None (no room: the app's default limits) or a whole number of people from 1 to ``MAX_AUDIENCE``."""
    if audience is None:
        return None
    if isinstance(audience, bool) or not isinstance(audience, int) or not 1 <= audience <= MAX_AUDIENCE:
        raise CampaignError(f"the audience must be a whole number of people from 1 to {MAX_AUDIENCE}; "
                            f"got {audience!r}")
    return audience


def check_pairs_per_rater(cap: Any) -> int | None:
    """None (``DEFAULT_PAIRS_PER_RATER``) or a whole number of pairs from 1 to ``MAX_PAIRS_PER_RATER``."""
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_PAIRS_PER_RATER:
        raise CampaignError(f"pairs per rater must be a whole number from 1 to {MAX_PAIRS_PER_RATER}; got {cap!r}")
    return cap


def choose_pairs(requested: str, contents: list[str]) -> tuple[str, str]:
    """The pair mode to serve for images of these content groups, and why.

    ``auto`` serves ``same-content`` pairs when the folder holds versions of
    each photo, i.e. every image shares its content group (file name, folder
    or ``content`` column) with at least one other image; a single image with
    no other version would never be paired, so then ``any`` is chosen.
    """
    sizes = Counter(contents)
    alone = sum(1 for content in contents if sizes[content] == 1)
    if requested != AUTO_PAIRS:
        return requested, "as asked"
    if alone == 0:
        return "same-content", (f"auto: each of the {len(contents)} images is one of several versions of "
                                f"the same photo, {len(sizes)} photos in all")
    return "any", f"auto: {alone} of the {len(contents)} images have no other version of their photo"


def check_name(name: Any) -> str:
    """A valid name for a new campaign (``default`` is the built-in pool's)."""
    check_campaign(name, CampaignError)
    if name == DEFAULT_CAMPAIGN:
        raise CampaignError(f"{DEFAULT_CAMPAIGN!r} is the built-in rating pool; choose another name")
    return name


class CampaignRegistry:
    """The campaigns under one data folder; thread-safe, and sees campaigns other processes create."""

    def __init__(self, root: Path | str, default: Callable[[], Campaign] | None = None) -> None:
        """``default``: builds the built-in pool's campaign (``get("default")``); without it that name is unknown."""
        self.root = Path(root)
        self.default = default
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], Campaign]] = {}  # name -> (manifest stamp, campaign)

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> CampaignRegistry:
        """The campaigns created under ``data_dir``; ``annotations.builtin_pool.campaigns_with_pool`` adds the
        built-in pool as campaign ``default``."""
        return cls(Path(data_dir) / "campaigns")

    # ----------------------------------------------------------------- reading
    def names(self) -> list[str]:
        """The campaigns created here (not the built-in ``default``), by name."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST).is_file() and not p.name.startswith("."))

    def list(self) -> list[Campaign]:
        return [self.get(name) for name in self.names()]

    def may_serve(self, path: Path | str) -> bool:
        """Whether ``path``, a file under this registry's folder, is one raters are shown: inside a campaign's
        ``images/``. Never a manifest (it maps image ids to the original file names), a campaign being
        created, or anything else kept beside the images."""
        try:
            parts = Path(path).resolve().relative_to(self.root.resolve()).parts
        except ValueError:
            return False
        return len(parts) >= 3 and parts[1] == "images" and not parts[0].startswith(".")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def get(self, name: str) -> Campaign:
        """The campaign called ``name`` (re-read when its manifest changed); ``default``: the built-in pool,
        when this registry knows it."""
        if not isinstance(name, str) or not name:
            raise UnknownCampaign("no campaign name was given")
        if name == DEFAULT_CAMPAIGN and self.default is not None:
            return self.default()
        try:
            check_campaign(name)
        except InvalidRecord as exc:
            raise UnknownCampaign(f"unknown campaign: {exc}") from None
        path = self.root / name / MANIFEST
        try:
            info = path.stat()
            stamp = (info.st_mtime_ns, info.st_ino)
        except FileNotFoundError:
            raise UnknownCampaign(f"unknown campaign {name!r}") from None
        with self._lock:
            cached = self._cache.get(name)
            if cached is None or cached[0] != stamp:
                record = json.loads(path.read_text(encoding="utf-8"))
                cached = (stamp, Campaign.from_record(record, self.root / name))
                self._cache[name] = cached
            return cached[1]

    # ----------------------------------------------------------------- writing
    def create(self, name: str, images: str | Path, store: AnnotationStore, settings: Settings = Settings(),
               progress: Progress | None = None) -> CreateReport:
        """Import ``images`` (a folder, searched recursively, or a dataset) as campaign ``name``.

        Unusable files are skipped with a reason; if fewer than two images are
        left, or the pair mode cannot be served, nothing is created.
        """
        check_name(name)
        settings = settings.checked(name)
        if (self.root / name).exists():
            raise CampaignError(f"a campaign called {name!r} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".new-{name}-{uuid.uuid4().hex[:8]}"
        try:
            imported = import_images(images, staging / "images", settings.licence, settings.content_from,
                                     progress)
            pairs, pairs_reason = choose_pairs(settings.pairs, [image.content for image in imported.images])
            campaign = self._campaign(name, replace(settings, pairs=pairs), imported, staging)
            for image in campaign.images:
                store.register_image(image.image_id, "dataset", image.licence,
                                     dataset=f"campaign {name}: {image.source}"[:500])
            atomic_write_text(staging / MANIFEST, json.dumps(campaign.to_record(), indent=1))
            try:
                staging.rename(self.root / name)  # fails if the name was taken meanwhile
            except OSError:
                raise CampaignError(f"a campaign called {name!r} already exists") from None
            fsync_dir(self.root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return CreateReport(self.get(name), imported.skipped, pairs_reason)

    def _campaign(self, name: str, settings: Settings, imported: Imported, staging: Path) -> Campaign:
        images = tuple(CampaignImage(**asdict(item)) for item in imported.images)
        if len(images) < 2:
            reasons = "; ".join(f"{s.name}: {s.reason}" for s in imported.skipped[:5])
            raise CampaignError(f"a campaign needs at least two usable images; found {len(images)}"
                                + (f" (skipped: {reasons})" if reasons else ""))
        contents = [image.content for image in images]
        if settings.pairs == "same-content" and len(set(contents)) == len(contents):
            raise CampaignError(
                "pairs=same-content needs images that show the same content, but every image has its own; "
                "name versions of one photo alike in different folders (content by file name), add a "
                "'content' column, or use pairs=any")
        return Campaign(name=name, title=settings.title, instructions=settings.instructions,
                        pairs=settings.pairs, gold_share=settings.gold_share, status="open",
                        source=imported.source, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        images=images, skipped=imported.skipped, folder=staging, audience=settings.audience,
                        pairs_per_rater=settings.pairs_per_rater)

    def set_results_hidden(self, name: str, hidden: bool) -> Campaign:
        """Hide the live ranking (votes and raters are still counted on screen) or reveal it."""
        campaign = self._own(name, "its live results are always shown")
        if campaign.results_hidden != bool(hidden):
            updated = replace(campaign, results_hidden=bool(hidden))
            atomic_write_text(self.root / name / MANIFEST, json.dumps(updated.to_record(), indent=1))
        return self.get(name)

    def set_texts(self, name: str, title: str, instructions: str) -> Campaign:
        """Change what raters read (the title, the instructions); images, pairs and judgements stay as they are."""
        campaign = self._own(name, "its title and instructions are the app's own")
        title, instructions = check_texts(name, title, instructions)
        if (campaign.title, campaign.instructions) != (title, instructions):
            updated = replace(campaign, title=title, instructions=instructions)
            atomic_write_text(self.root / name / MANIFEST, json.dumps(updated.to_record(), indent=1))
        return self.get(name)

    def set_status(self, name: str, status: str) -> Campaign:
        """Close a campaign (no new pairs or votes) or reopen it."""
        if status not in STATUSES:
            raise CampaignError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        campaign = self._own(name, "it is always open")
        if campaign.status != status:
            updated = replace(campaign, status=status)
            atomic_write_text(self.root / name / MANIFEST, json.dumps(updated.to_record(), indent=1))
        return self.get(name)

    def start_round(self, name: str, at: datetime | None = None) -> Campaign:
        """Begin a new round of ``name`` at ``at`` (now): readers of the current round leave earlier
        judgements out, and nothing is deleted (``annotations.rounds``)."""
        campaign = self._own(name)
        at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        if campaign.resets and at <= datetime.fromisoformat(campaign.resets[-1]):
            raise CampaignError(f"a new round of {name!r} must begin after its last reset ({campaign.resets[-1]})")
        updated = replace(campaign, resets=(*campaign.resets, at.isoformat(timespec="microseconds")))
        atomic_write_text(self.root / name / MANIFEST, json.dumps(updated.to_record(), indent=1))
        return self.get(name)

    def clone(self, name: str, new: str) -> Campaign:
        """A new open campaign ``new`` with ``name``'s settings and images (the same image ids) and no
        judgements; it appears in one rename, like a created one."""
        campaign = self._own(name)
        check_name(new)
        if (self.root / new).exists():
            raise CampaignError(f"a campaign called {new!r} already exists")
        staging = self.root / f".new-{new}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(campaign.folder / "images", staging / "images")
            copy = replace(campaign, name=new, status="open", resets=(), folder=staging,
                           created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            atomic_write_text(staging / MANIFEST, json.dumps(copy.to_record(), indent=1))
            try:
                staging.rename(self.root / new)  # fails if the name was taken meanwhile
            except OSError:
                raise CampaignError(f"a campaign called {new!r} already exists") from None
            fsync_dir(self.root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(new)

    def _own(self, name: str, why: str = "it has no rounds and cannot be reset or cloned") -> Campaign:
        """A campaign created here; the built-in pool has no manifest to change or copy."""
        if name == DEFAULT_CAMPAIGN:
            raise CampaignError(f"{DEFAULT_CAMPAIGN!r} is the built-in rating pool: {why}")
        return self.get(name)
