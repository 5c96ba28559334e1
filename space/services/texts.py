"""What raters and uploaders are told: instructions, consent, a campaign's title, in one place.

The Rate tab shows these as Markdown and the rating page as plain text, so
both say the same thing.
"""
from __future__ import annotations

from annotations.schema import DEFAULT_CAMPAIGN
from space.services.catalogue import ImageCatalogue

INSTRUCTIONS = (
    "**Which image has the better quality?** Look for blur, noise, blocky compression, washed-out "
    "or unnatural colour: judge the picture quality, not which scene you like more. "
    "If you cannot tell them apart, choose *Same*; if you would rather not judge this pair, *Skip*.")
CONSENT = (
    "By rating you agree that your answers are stored and may be published as an open data set "
    "(CC BY 4.0) for research on image quality: the two images shown, your choice, your response "
    "time and a random rater id kept in this browser. No name, e-mail or IP address is stored; "
    "signing in with Hugging Face only replaces the random id by a one-way hash of your user name. "
    "Photos uploaded on the Score tab join the pairs only if their uploader ticked consent there.")
CONTRIBUTE_CONSENT = (
    "Add my image to the public rating pool. I took this photo or may share it, it shows "
    "no one who has not agreed, and it may be published under CC BY 4.0 with the ratings.")


def campaign_texts(images: ImageCatalogue, campaign: str | None) -> tuple[str, str]:
    """(title, instructions, as Markdown) for the campaign on screen; the built-in pool has no title.

    Raises ``UnknownCampaign`` for a name that does not exist.
    """
    found = images.campaign(campaign)
    title = "" if found.name == DEFAULT_CAMPAIGN else found.title  # raters of the pool see no heading
    return title, found.instructions or INSTRUCTIONS


def plain(markdown: str) -> str:
    """Markdown text as plain text (bold and italics markers dropped), for the rating page."""
    return markdown.replace("**", "").replace("*", "")
