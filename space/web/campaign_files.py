"""Gradio's file route serves the campaigns folder (the Rate tab shows campaign images from where they lie),
so it would also serve each campaign's ``campaign.json``, which maps image ids to the original file names
(``q10/kodim09.jpg``): the answer key of a blind comparison. This guard refuses every file request for a path
under the campaigns folder that the registry does not serve (``CampaignRegistry.may_serve``: campaign images
only), before Gradio sees it.
"""
from __future__ import annotations

import os
from pathlib import Path

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from annotations.campaigns import CampaignRegistry

FILE_ROUTE = "/file="


class CampaignFilesGuard:
    """ASGI middleware: a 403 for ``…/file=<path>`` when ``path`` lies under the campaigns folder and is no
    campaign image; everything else passes through untouched."""

    def __init__(self, app: ASGIApp, campaigns: CampaignRegistry) -> None:
        self.app = app
        self.campaigns = campaigns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._refused(scope.get("path", "")):
            await PlainTextResponse("File not allowed.", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refused(self, route: str) -> bool:
        _, found, target = route.partition(FILE_ROUTE)
        if not found:
            return False
        path = Path(os.path.abspath(target))  # the decoded path, as Gradio's route reads it
        root = self.campaigns.root.resolve()
        try:
            path.resolve().relative_to(root)
        except ValueError:
            return False  # not the campaigns' business: Gradio's own rules apply
        return not self.campaigns.may_serve(path)
