"""The app's shared services, built once per app and handed to every tab.

Tabs and API endpoints only call these objects; they hold no state of their
own beyond a session. ``Trainer`` is the seam where the background
re-distillation service plugs in: it hears about every stored judgement and
reports its status on the Model tab. Without one, ``NoTrainer`` says that
nothing is running.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from annotations.builtin_pool import campaigns_with_pool
from annotations.campaigns import CampaignRegistry
from annotations.hub import HubSync
from annotations.store import AnnotationStore
from cvrkd import __version__ as cvrkd_version, build_default_gallery
from space.services.admin_auth import AdminGuard
from space.services.clients import Client, TrustedProxies
from space.services.config import AppConfig
from space.services.catalogue import ImageCatalogue
from space.services.galleries import GalleryRegistry
from space.services.live import LiveBoard
from space.services.insights import InsightsService
from space.services.model_service import ModelService
from space.services.pool import RatingPool
from space.services.pool_scores import PoolScores
from space.services.moderation import Moderation
from space.services.raters import AddressLimits, ClientLimits, RaterIds, load_secret
from space.services.rating import RatingService
from space.services.reviewers import Reviewers

logger = logging.getLogger(__name__)

APP_VERSION = f"cvrkd-space {cvrkd_version}"
REPO_ROOT = Path(__file__).resolve().parents[2]


class Trainer(Protocol):
    """What the app needs from a re-distillation service."""

    def status(self) -> str:
        """One line for the Model tab: what the trainer is doing."""

    def on_new_judgement(self) -> object:
        """Called after each stored judgement (may start a round; must return quickly)."""

    def failure(self) -> str:
        """The last lines a failed round wrote (why it failed); empty when the last round did not fail."""

    def request_round(self, token: object, client: Client | None = None) -> bool:
        """Admin: start a round now; False when one is already running."""

    def rollback(self, token: object, version: object = None, client: Client | None = None) -> str:
        """Admin: serve an earlier version (or the shipped model); returns what is served now."""


class NoTrainerAttached(ValueError):
    """Refused: this app has no re-distillation trainer."""


class NoTrainer:
    """The seam's default: no re-distillation service is attached."""

    REASON = "No re-distillation trainer: it needs a trained student and its FR teacher."

    def status(self) -> str:
        return "no trainer running"

    def on_new_judgement(self) -> object:
        return None

    def failure(self) -> str:
        return ""

    def request_round(self, token: object, client: Client | None = None) -> bool:
        raise NoTrainerAttached(self.REASON)

    def rollback(self, token: object, version: object = None, client: Client | None = None) -> str:
        raise NoTrainerAttached(self.REASON)


@dataclass
class Services:
    config: AppConfig
    model: ModelService
    galleries: GalleryRegistry
    store: AnnotationStore
    pool: RatingPool
    scores: PoolScores
    rating: RatingService
    insights: InsightsService
    trainer: Trainer
    campaigns: CampaignRegistry | None = None
    images: ImageCatalogue | None = None
    """The pool's and every campaign's images (file, title, content group)."""
    live: LiveBoard | None = None
    """Live-view snapshots shared by every viewer (the Live tab and ``/live``)."""
    raters: RaterIds | None = None
    """Signs the rater ids it issues and checks them on every rating request."""
    limits: ClientLimits | None = None
    """New rater ids and votes per address, sized by each campaign's audience (in memory only)."""
    moderation: Moderation | None = None
    """Contributed photos wait here until an admin or enough reviewers clear them."""
    admin: AdminGuard | None = None
    """The one admin-token check (the trainer's when there is one), with its counter of wrong tokens."""
    hub: HubSync | None = None
    """Pushes the judgements to a Hub dataset only when ``CVRKD_HUB_DATASET`` and a token are set."""
    proxies: TrustedProxies | None = None
    """Turns each request into its ``Client`` at the door, believing only the proxies the operator named."""

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def live_numbers(self, campaign: str | None) -> dict:
        """What ``/live`` and the rating page's live route return: the shared snapshot's numbers and how
        many of the campaign's images the model has scored. Raises ``UnknownCampaign``."""
        scored, total = self.scores.coverage(campaign or None)
        return {**self.live.snapshot(campaign or None).to_dict(), "model_scored": scored, "images": total}

    def close(self) -> None:
        """Stop background work and release the store's writer lock."""
        self.scores.stop()
        if self.hub is not None:
            self.hub.stop()
        self.store.close()


def build_services(config: AppConfig, trainer: Trainer | None = None) -> Services:
    """Open (and on first start create) everything under ``config.data_dir``."""
    data = Path(config.data_dir)
    gallery = build_default_gallery(data / "galleries" / "wheel-photos")
    model = ModelService(config.model_dir, config.allow_untrained, data / "cache" / "features", gallery)
    store = AnnotationStore(data / "annotations")
    pool = RatingPool.open(data / "pool", store, gallery, config.pool)
    # the pool is campaign "default", with the contributed photos moderation cleared (moderation is built below)
    visible = lambda image_id: moderation.visible(image_id)  # noqa: E731
    campaigns = campaigns_with_pool(data, visible)
    images = ImageCatalogue(pool, campaigns, visible)
    scores = PoolScores(data / "pool" / "scores", images, model, gallery)
    trainer = trainer or _background_trainer(config, data, model, store)
    gold = lambda: [pair for name in images.names() for pair in images.campaign(name).gold_pairs()]  # noqa: E731
    moderation = Moderation(pool, config.review_quorum, Reviewers(store, gold))
    raters = RaterIds(load_secret(data))
    limits = ClientLimits(raters, AddressLimits(config.votes_per_ip_minute, config.new_raters_per_ip_minute,
                                                config.new_raters_per_ip_hour), config.votes_per_minute)
    insights = InsightsService(store, images, scores, config.leaderboard_bootstrap, model_prior=config.model_prior)
    services = Services(
        config=config, model=model,
        galleries=GalleryRegistry(data / "galleries", gallery, data / "sessions"),
        store=store, pool=pool, scores=scores,
        rating=RatingService(images, store, scores, APP_VERSION, config.votes_per_minute,
                             min_answer_ms=config.min_answer_ms, after_judgement=trainer.on_new_judgement,
                             model_prior=config.model_prior),
        insights=insights,
        trainer=trainer, campaigns=campaigns, images=images,
        live=LiveBoard(insights, images),
        raters=raters, limits=limits, moderation=moderation,
        admin=getattr(trainer, "guard", None) or AdminGuard(),
        hub=HubSync.from_env(store),
        proxies=TrustedProxies.for_app(config.trusted_proxies),
    )
    if config.score_pool:
        scores.start()
    logger.info("data in %s; model: %s; pool of %d images; judgements pushed to the Hub: %s", data,
                model.version or model.banner(), len(pool), "yes" if services.hub else "no")
    return services


def _background_trainer(config: AppConfig, data: Path, model: ModelService, store: AnnotationStore) -> Trainer:
    """Re-distillation needs a trained student and its FR teacher; otherwise nothing runs."""
    scorer = model.scorer
    if scorer is None or not scorer.student.info.trained or not scorer.has_teacher:
        return NoTrainer()
    from space.services.trainer_service import TrainerService

    registry = data / "registry"
    registry.mkdir(parents=True, exist_ok=True)
    return TrainerService(store_dir=data / "annotations", registry_dir=registry,
                          images_dir=data / "pool" / "images", model_dir=Path(config.model_dir),
                          cache_dir=data / "cache" / "features", count_judgements=store.count,
                          swap_student=scorer.swap_student, served_version=lambda: scorer.model_version,
                          log_file=registry / "trainer.log", gallery_dir=data / "galleries" / "wheel-photos")
