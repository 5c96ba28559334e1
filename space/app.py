"""The app factory: services + four tabs + the API, with queueing set up.

``create_app()`` with no arguments is what ``python app.py`` serves (bundled
model, built-in gallery, local annotation store under ``$CVRKD_DATA_DIR``).
Tests and benchmarks pass a model folder and a data folder instead.
"""
from __future__ import annotations

import argparse
import html
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from cvrkd import MAX_FILE_BYTES
from space.ui import api, assets, leaderboard_tab, links, live_tab, model_tab, rate_tab, score_tab
from space.web import present_page, rate_page
from space.web.campaign_files import CampaignFilesGuard
from space.services.config import AppConfig
from space.services.container import Services, Trainer, build_services

TITLE = "CVRKD-IQA: image quality against non-aligned references"


@dataclass
class SpaceApp:
    """The built Blocks plus the services behind them; ``launch`` adds theme, CSS and shortcuts."""

    blocks: gr.Blocks
    services: Services

    def launch(self, **kwargs: Any) -> tuple:
        """``Blocks.launch`` with the app's assets; server name and port follow
        ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` unless given."""
        data = self.services.data_dir
        options: dict[str, Any] = dict(
            theme=assets.THEME, css=assets.CSS, head=assets.HEAD, i18n=assets.I18N, show_error=False,
            allowed_paths=[str(data / "pool" / "images"), str(data / "galleries"), str(data / "sessions"),
                           str(data / "examples"), str(data / "campaigns"), str(data / "share")],
            footer_links=["api", "gradio"], max_file_size=MAX_FILE_BYTES,
            app_kwargs={"routes": rate_page.routes(self.services) + present_page.routes(self.services),
                        "middleware": [Middleware(CampaignFilesGuard, campaigns=self.services.campaigns)]},
        )
        options.update(kwargs)
        # uvicorn takes the peer's address from X-Forwarded-For whenever the peer is 127.0.0.1, so behind a
        # same-host tunnel anyone could choose theirs; it must pass the peer on as it is, and the app believes
        # only the proxies named in CVRKD_TRUSTED_PROXIES (space.services.clients, docs/app.md)
        os.environ["FORWARDED_ALLOW_IPS"] = ""
        return self.blocks.launch(**options)

    def close(self) -> None:
        self.blocks.close()
        self.services.close()


def create_app(model_dir: str | Path | None = None, data_dir: str | Path | None = None, *,
               allow_untrained: bool = False, trainer: Trainer | None = None,
               **settings: Any) -> SpaceApp:
    """Build the app. ``settings`` override other ``AppConfig`` fields (e.g. ``score_pool=False``)."""
    config = AppConfig()
    overrides = dict(settings, allow_untrained=allow_untrained)
    if model_dir is not None:
        overrides["model_dir"] = Path(model_dir)
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir)
    config = replace(config, **overrides)
    shutil.rmtree(Path(config.data_dir) / "sessions", ignore_errors=True)  # sessions end with the process
    services = build_services(config, trainer)
    # rating images are content-addressed and never change: Gradio may serve them where they lie
    # instead of hashing and copying each into its cache on every pair (docs/performance_load.md)
    gr.set_static_paths([Path(config.data_dir) / "pool" / "images", Path(config.data_dir) / "campaigns"])
    with gr.Blocks(title="CVRKD-IQA", analytics_enabled=False) as blocks:
        gr.Markdown(f"# {TITLE}", elem_id="app-title")
        _banner(services)
        message = gr.HTML(elem_id="link-message")
        rater = rate_tab.rater_state(services)
        campaign = gr.State("")  # the campaign this page rates ("" = the built-in pool), set by a link
        with gr.Tabs(elem_id="main-tabs") as tabs:
            score = score_tab.build(services)
            rate = rate_tab.build(services, rater, campaign)
            board = leaderboard_tab.build(services)
            model_tab.build(services)
            live = live_tab.build(services, campaign)
        links.register(blocks, services, rater, campaign, tabs, message, rate, score, board, live)
        api.register(services)
    blocks.queue(max_size=config.queue_size, default_concurrency_limit=config.rating_concurrency,
                 status_update_rate=config.queue_status_every_s)
    return SpaceApp(blocks, services)


def _banner(services: Services) -> None:
    """A plain line at the top of every page when the model cannot be trusted or is missing."""
    message = services.model.banner()
    if not message:
        return
    kind = "missing" if not services.model.available else "untrained"
    gr.HTML(f'<div id="model-banner" class="{kind}">⚠ {html.escape(message)}</div>')


def main(argv: list[str] | None = None) -> None:
    """``python app.py [--model DIR] [--data-dir DIR] [--allow-untrained]``."""
    parser = argparse.ArgumentParser(description="Serve the CVRKD-IQA app.")
    parser.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    parser.add_argument("--data-dir", type=Path, help="writable state (default: $CVRKD_DATA_DIR or ./data)")
    parser.add_argument("--allow-untrained", action="store_true",
                        help="serve a random-init model with a warning (tests and timing only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    create_app(args.model, args.data_dir, allow_untrained=args.allow_untrained).launch()
