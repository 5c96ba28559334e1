"""The typed errors a use case raises to refuse a request: nothing was stored, and the message says why.

Every front door translates exactly these (``space.ui.errors`` into a Gradio
error, ``space.web.rate_page`` into an HTTP status) and lets anything else
surface as a fault.
"""
from __future__ import annotations

from annotations.campaign_import import CampaignError
from cvrkd import InvalidImageError
from space.services.admin_auth import NotAuthorised
from space.services.container import NoTrainerAttached
from space.services.contributions import ContributionRefused
from space.services.galleries import UnknownGallery
from space.services.model_service import ModelUnavailable
from space.services.moderation import ModerationError
from space.services.rating import RatingError
from space.services.trainer_service import RollbackRefused

REFUSALS: tuple[type[Exception], ...] = (RatingError, NotAuthorised, ModerationError, CampaignError,
                                         ContributionRefused, InvalidImageError, ModelUnavailable,
                                         RollbackRefused, NoTrainerAttached, UnknownGallery)
