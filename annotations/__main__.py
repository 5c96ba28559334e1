"""``python -m annotations campaign create|list|close|reopen|reset|clone|export``: rating campaigns from a shell.

Works on the same data folder as the app (``--data-dir``, default
``$CVRKD_DATA_DIR`` or ``./data``), also while the app runs: the app picks
up new campaigns and status changes on its next request.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from annotations.campaign_import import CONTENT_FROM, CampaignError
from annotations.campaigns import (AUTO_PAIRS, DEFAULT_LICENCE, DEFAULT_PAIRS_PER_RATER, PAIR_SETTINGS,
                                   CampaignRegistry, Settings)
from annotations.builtin_pool import campaigns_with_pool
from annotations.config import default_data_dir
from annotations.round_reset import reset
from annotations.rounds import in_current_round
from annotations.schema import DEFAULT_CAMPAIGN
from annotations.store import AnnotationStore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m annotations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="group", required=True)
    campaign = commands.add_parser("campaign",
                                   help="create, list, close, reopen, reset, clone or export rating campaigns")
    actions = campaign.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str, named: bool = True) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text)
        if named:
            sub.add_argument("name", help="campaign name (lowercase letters, digits and '-')")
        sub.add_argument("--data-dir", type=Path, default=None,
                         help="the app's data folder (default: $CVRKD_DATA_DIR or ./data)")
        return sub

    create = action("create", "import a folder of images (recursive) or a dataset as a new campaign")
    create.add_argument("--images", required=True,
                        help="folder of images, local Hugging Face dataset folder, or Hub dataset id (online)")
    create.add_argument("--title", default="", help="shown above the pairs (default: the name)")
    create.add_argument("--instructions", default="", help="what raters should look for (Markdown)")
    create.add_argument("--pairs", choices=PAIR_SETTINGS, default=AUTO_PAIRS,
                        help="same-content: only versions of one photo are compared; any: all pairs; auto "
                             "(default): same-content when every image has another version of its photo")
    create.add_argument("--gold-share", type=float, default=0.1,
                        help="share of gold checks (needs images marked gold=high/low; else repeats are used)")
    create.add_argument("--licence", default=DEFAULT_LICENCE,
                        help="licence of images whose metadata names none")
    create.add_argument("--content-from", choices=CONTENT_FROM, default="stem",
                        help="which images show one content: same file name (stem), same folder, or none")
    create.add_argument("--audience", type=int, default=None, metavar="N",
                        help="a talk: N people may rate at once from one address (a venue's Wi-Fi); sizes the "
                             "per-address limits for them (default: the app's limits for any campaign)")
    create.add_argument("--pairs-per-rater", type=int, default=None, metavar="N",
                        help=f"the most pairs one rater answers per round before being thanked and done "
                             f"(default {DEFAULT_PAIRS_PER_RATER}; a rater who has answered every pair is done "
                             "sooner)")
    action("list", "list the campaigns with their status and progress", named=False)
    action("close", "stop serving pairs and taking votes")
    action("reopen", "serve pairs and take votes again")
    action("hide", "the live view shows only how many voted, not the ranking, until 'reveal'")
    action("reveal", "show the live ranking again")
    reset = action("reset", "begin a new round under the same link: the live view, ranking and sampler start "
                            "from no judgements; earlier rounds stay in the store and in full exports")
    reset.add_argument("--archive", nargs="?", const=True, default=False, metavar="FOLDER",
                       help="also export the earlier rounds' judgements, to FOLDER (new or empty) or by default "
                            "to <data dir>/archives/NAME/<time>-rounds-1-K")
    clone = action("clone", "copy a campaign's settings and images to a new campaign with no judgements")
    clone.add_argument("new", help="the new campaign's name")
    export = action("export", "write the campaign as a Hugging Face dataset folder")
    export.add_argument("--out", type=Path, required=True, help="folder to write (empty or an earlier export)")
    export.add_argument("--push", metavar="REPO_ID", help="also upload to this Hub dataset repo (needs a token)")
    export.add_argument("--public", action="store_true", help="create a missing Hub repo as public")
    export.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the 95%% intervals")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    store = AnnotationStore(Path(data_dir) / "annotations")
    registry = campaigns_with_pool(data_dir, _judged(store))
    try:
        return _run(args, registry, store)
    except CampaignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _run(args: argparse.Namespace, registry: CampaignRegistry, store: AnnotationStore) -> int:
    if args.action == "create":
        settings = Settings(title=args.title, instructions=args.instructions, pairs=args.pairs,
                            gold_share=args.gold_share, licence=args.licence, content_from=args.content_from,
                            audience=args.audience, pairs_per_rater=args.pairs_per_rater)
        report = registry.create(args.name, args.images, store, settings, progress=_progress)
        print(report.summary())
    elif args.action == "list":
        campaigns = registry.list()
        if not campaigns:
            print("no campaigns yet (the built-in pool is the campaign 'default')")
        judgements = store.judgements()
        for campaign in campaigns:
            mine = in_current_round(judgements[judgements["campaign"] == campaign.name], campaign)
            print(f"{campaign.name}\t{campaign.status}\tround {campaign.round}\t{len(campaign.images)} images\t"
                  f"{len(mine)} judgements\t{mine['rater_id'].nunique()} raters\t{campaign.title}")
    elif args.action in ("hide", "reveal"):
        campaign = registry.set_results_hidden(args.name, args.action == "hide")
        print(f"campaign {campaign.name!r}: live results {'hidden' if campaign.results_hidden else 'shown'}")
    elif args.action == "reset":
        print(reset(registry, store, args.name, args.archive).summary())
    elif args.action == "clone":
        campaign = registry.clone(args.name, args.new)
        print(f"campaign {campaign.name!r}: a copy of {args.name!r} ({len(campaign.images)} images, pairs "
              f"{campaign.pairs}), open, with no judgements")
    elif args.action in ("close", "reopen"):
        campaign = registry.set_status(args.name, "closed" if args.action == "close" else "open")
        print(f"campaign {campaign.name!r} is {campaign.status}")
    elif args.action == "export":
        from annotations.export import check_repo_id, export_campaign, push_export

        if args.push:
            check_repo_id(args.push)  # before the work, not after it
        summary = export_campaign(registry.get(args.name), store, args.out, n_boot=args.bootstrap)
        print(summary.summary())
        if args.push:
            print(f"pushed: {push_export(args.out, args.push, private=not args.public)}")
    return 0


def _judged(store: AnnotationStore) -> Callable[[str], bool]:
    """Which contributed photos the built-in pool (campaign ``default``) includes here: those raters judged
    (the app showed them only once moderation cleared them); the judgements are read on first use."""
    judged: set[str] | None = None

    def included(image_id: str) -> bool:
        nonlocal judged
        if judged is None:
            judgements = store.judgements(DEFAULT_CAMPAIGN)
            judged = set(judgements["left_image_id"]) | set(judgements["right_image_id"])
        return image_id in judged

    return included


def _progress(done: int, total: int, name: str) -> None:
    if total and (done == total or done % 50 == 0):
        print(f"  checked {done}/{total} files", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
