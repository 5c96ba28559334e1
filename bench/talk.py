"""The "talk" load scenario: an audience rates one campaign from a QR code while a projector polls.

``python bench/load.py --scenario talk`` starts ``python app.py`` with a fresh
data folder and its default settings, creates a campaign for the audience
(``python -m annotations campaign create --audience N``) of
JPEG versions of the photos shipped with scikit-image, waits until the
background scoring has covered it (in a talk the app has been up for a while),
then lets ``--audience`` members join at random moments within ``--join``
seconds. Each gets a signed rater id (``/rater``), then for ``--duration``
seconds fetches a pair (``/next_pair`` with the campaign), downloads both
images as a phone would, thinks for 1–4 s and votes (``/vote``). Meanwhile
``--pollers`` clients ask for the live view (``/live``) every 4 s. All clients
share one asyncio loop and talk to Gradio's HTTP call API, so the load
generator itself stays light on the same two cores. Every client comes from
one address (127.0.0.1), as a room behind one router does, and the app's own
limits apply: none is raised by environment variables.

Reported: calls, p50/p95/max latency and errors per endpoint; judgements
acknowledged versus found in the store afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "talk"
THINK_S = (1.0, 4.0)
POLL_S = 4.0
ENDPOINTS = ("/rater", "/next_pair", "images", "/vote", "/live")
TARGET_P95_S = 1.0
BENCH_AUDIENCE = 1000
"""The audience ``campaign_app``'s campaign is created for: the benches built on it issue hundreds of rater ids
from one address, within the campaign's own limits."""
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "stereo_motorcycle", "hubble_deep_field")
QUALITIES = (95, 40, 15, 6)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    acknowledged: set[str] = field(default_factory=set)
    raters: set[str] = field(default_factory=set)


def make_photos(folder: Path) -> Path:
    """``q<quality>/<photo>.jpg``: each shipped photo at four JPEG qualities (versions share a file name)."""
    from PIL import Image
    from skimage import data

    for name in PHOTOS:
        pixels = getattr(data, name)()
        pixels = pixels[0] if isinstance(pixels, tuple) else pixels
        image = Image.fromarray(pixels).convert("RGB")
        image.thumbnail((640, 640))
        for quality in QUALITIES:
            (folder / f"q{quality}").mkdir(parents=True, exist_ok=True)
            image.save(folder / f"q{quality}" / f"{name}.jpg", quality=quality)
    return folder


class Api:
    """Gradio's HTTP API, as a phone page uses it: endpoints served outside the queue are one plain POST
    (``/gradio_api/run/<name>``); queued ones are a POST to join, then the result read from the event stream.

    One session per simulated person, as a browser page or a ``gradio_client.Client`` has: the server
    sets up a session's state once, not on every call.
    """

    def __init__(self, session, url: str, tally: Tally, direct: frozenset[str] = frozenset()) -> None:
        self.http, self.url, self.tally, self.direct = session, url.rstrip("/"), tally, direct
        self.session = uuid.uuid4().hex

    async def call(self, endpoint: str, *data):
        started = time.perf_counter()
        try:
            result = await self._call(endpoint, list(data))
        except Exception as exc:  # every failure counts as an error of its endpoint
            self.tally.errors[endpoint].append(f"{type(exc).__name__}: {exc}"[:300])
            return None
        self.tally.latencies[endpoint].append(time.perf_counter() - started)
        return result

    async def _call(self, endpoint: str, data: list):
        body = {"data": data, "session_hash": self.session}
        if endpoint in self.direct:
            async with self.http.post(f"{self.url}/gradio_api/run{endpoint}", json=body) as response:
                if response.status != 200:
                    raise RuntimeError(f"refused ({response.status}): {(await response.text())[:200]}")
                return (await response.json())["data"]
        async with self.http.post(f"{self.url}/gradio_api/call{endpoint}", json=body) as posted:
            posted.raise_for_status()
            event_id = (await posted.json())["event_id"]
        event = None
        async with self.http.get(f"{self.url}/gradio_api/call{endpoint}/{event_id}") as stream:
            async for raw in stream.content:
                line = raw.decode().strip()
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = line.split(":", 1)[1].strip()
                    if event == "error":
                        raise RuntimeError(f"refused: {payload}")
                    return json.loads(payload)
        raise RuntimeError(f"the event stream ended without a result (last event {event!r})")

    async def fetch(self, file_data: dict) -> None:
        """Download an image the way the page does (its URL)."""
        started = time.perf_counter()
        try:
            async with self.http.get(file_data["url"]) as response:
                response.raise_for_status()
                await response.read()
        except Exception as exc:
            self.tally.errors["images"].append(f"{type(exc).__name__}: {exc}"[:300])
            return
        self.tally.latencies["images"].append(time.perf_counter() - started)


class PageApi(Api):
    """The rating page's JSON routes (``/api/rate/...``, see space/web/rate_page.py), as a phone that opened
    ``/rate/NAME`` calls them; answers are returned in the shapes ``Api`` returns."""

    async def _call(self, endpoint: str, data: list):
        headers = {"x-rating-session": self.session}
        if endpoint == "/live":
            async with self.http.get(f"{self.url}/api/rate/live/{data[0]}") as response:
                return [await self._answer(response)]
        body = {"/rater": lambda: {"campaign": data[0]},
                "/next_pair": lambda: {"rater_id": data[0], "campaign": data[1]},
                "/vote": lambda: {"rater_id": data[0], "ticket": data[1], "choice": data[2], "response_ms": data[3],
                          "campaign": CAMPAIGN}}[endpoint]()
        async with self.http.post(f"{self.url}/api/rate{endpoint}", json=body, headers=headers) as response:
            answer = await self._answer(response)
        if endpoint == "/rater":
            return [answer["rater_id"]]
        if endpoint == "/next_pair":
            if answer.get("done"):  # this rater has judged all the campaign asks of them
                return [answer, None, None]
            return [answer["ticket"], {"url": f"{self.url}/{answer['left']}"}, {"url": f"{self.url}/{answer['right']}"}]
        return [answer]

    @staticmethod
    async def _answer(response) -> dict:
        answer = await response.json()
        if response.status != 200:
            raise RuntimeError(f"refused ({response.status}): {answer.get('error', answer)}"[:300])
        return answer


CLIENTS = {"page": PageApi, "gradio": Api}
VIA = {
    "page": ("through the rating page's routes",
             "call the JSON routes of the rating page (`/rate/talk`) as a phone that opened it does: one small "
             "request per pair, vote or image (`/api/rate/...`), outside Gradio."),
    "gradio": ("through Gradio's API",
               "call Gradio's named endpoints as the app's Rate tab and `gradio_client` do; the rating endpoints are "
               "served outside Gradio's queue (one POST to `/gradio_api/run/<name>`), images through Gradio's file route."),
}
"""``--via``: the rating page's routes, or Gradio's API as the Rate tab and ``gradio_client`` use it."""


def http_session(connections: int):
    """One aiohttp session for every simulated client. aiohttp, not httpx: with httpx the load generator
    itself saturated a core at 200 clients and its own delays dominated the latencies it reported."""
    import aiohttp

    # keep idle connections for less than the server's keep-alive (uvicorn: 5 s), as browsers do, so a
    # request never goes out on a connection the server is closing at that moment
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=2.0),
                                 timeout=aiohttp.ClientTimeout(total=120))


async def audience_member(api: Api, rng: random.Random, join_s: float, duration_s: float, start: float,
                          think_s: tuple[float, float] = THINK_S) -> None:
    await asyncio.sleep(max(0.0, start + join_s - time.monotonic()))
    rater = await api.call("/rater", CAMPAIGN)
    if rater is None:
        return
    rater = rater[0]
    api.tally.raters.add(rater.rpartition(".")[0])
    stop = time.monotonic() + duration_s
    while time.monotonic() < stop:
        pair = await api.call("/next_pair", rater, CAMPAIGN)
        if pair is not None and pair[0].get("done"):
            return  # thanked and done: this person stops rating, as a phone's owner would
        if pair is None:
            await asyncio.sleep(1.0)
            continue
        ticket, left, right = pair
        await asyncio.gather(api.fetch(left), api.fetch(right))
        await asyncio.sleep(rng.uniform(*think_s))
        receipt = await api.call("/vote", rater, ticket["ticket"], rng.choice(["left", "right", "left", "right",
                                                                             "same"]), None)
        if receipt is not None and receipt[0].get("stored") == "judgement":
            api.tally.acknowledged.add(receipt[0]["id"])


async def poller(api: Api, duration_s: float) -> None:
    stop = time.monotonic() + duration_s
    while time.monotonic() < stop:
        await api.call("/live", CAMPAIGN)
        await asyncio.sleep(POLL_S)


def unqueued_endpoints(url: str) -> frozenset[str]:
    """The named endpoints the app serves outside Gradio's queue: a phone page and this bench call them with
    one plain POST (``/gradio_api/run/<name>``) instead of joining the queue and reading an event stream."""
    with urllib.request.urlopen(f"{url.rstrip('/')}/config", timeout=60) as response:
        config = json.load(response)
    return frozenset(f"/{dependency['api_name']}" for dependency in config["dependencies"]
                     if dependency.get("queue") is False and dependency.get("api_name"))


async def wait_until_scored(url: str, timeout_s: float, direct: frozenset[str]) -> None:
    """Until the background scoring covered the campaign: votes then carry model scores, as in a talk."""
    async with http_session(4) as session:
        api = Api(session, url, Tally(), direct)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            live = await api.call("/live", CAMPAIGN)
            if live is not None and live[0]["model_scored"] >= live[0]["images"]:
                return
            await asyncio.sleep(5)
    raise TimeoutError("the background scoring did not cover the campaign in time")


async def run(url: str, args: argparse.Namespace, tally: Tally, direct: frozenset[str]) -> float:
    async with http_session(args.audience * 2 + 20) as session:
        rng = random.Random(args.seed)
        start = time.monotonic() + 1.0
        client = CLIENTS[args.via]
        members = [audience_member(client(session, url, tally, direct), random.Random(rng.random()),
                                   rng.uniform(0, args.join), args.duration, start, tuple(args.think))
                   for _ in range(args.audience)]
        pollers = [poller(client(session, url, tally, direct), args.join + args.duration) for _ in range(args.pollers)]
        began = time.monotonic()
        await asyncio.gather(*members, *pollers)
        return time.monotonic() - began


def report(tally: Tally, written: set[str], args: argparse.Namespace, model: str, wall: float,
           load_before: float, images: int) -> str:
    command = (f"python bench/load.py --scenario talk --via {args.via} --audience {args.audience} "
               f"--sized-for {sized_for(args)} --think {args.think[0]:g} {args.think[1]:g} --join {args.join:g} "
               f"--duration {args.duration:g} --pollers {args.pollers}" + (f" --report {args.report}" if args.report else ""))
    lines = [
        "## Load test: a talk (audience rating one campaign from a QR code, live view on the projector), "
        f"{VIA[args.via][0]}", "",
        "```bash", command, "```", "",
        f"{args.audience} simulated audience members join the campaign `{CAMPAIGN}` ({images} images: "
        f"{len(PHOTOS)} photos at {len(QUALITIES)} JPEG qualities, same-content pairs) at random moments within "
        f"{args.join:g} s; each gets a rater id (`/rater`), then for {args.duration:g} s fetches a pair "
        f"(`/next_pair`), downloads both images (`images`), thinks {args.think[0]:g}–{args.think[1]:g} s and votes "
        f"(`/vote`). {args.pollers} clients poll the live view (`/live`) every {POLL_S:g} s. Against "
        f"`python app.py` on the same machine, serving {model}, after the background scoring covered the "
        f"campaign. Every client comes from one address (127.0.0.1), as a room behind one router does; the "
        f"campaign was created with `--audience {sized_for(args)}` and the app runs with its default limits (none "
        f"raised by environment variables). Wall time {wall:.0f} s. Machine: {os.cpu_count()} CPU cores "
        f"({platform.machine()}), load "
        f"average before the run {load_before:.1f}. Latency is what the client sees (queueing included); "
        f"clients share one asyncio loop (aiohttp) and {VIA[args.via][1]}", "",
        "| endpoint | calls | per second | p50 latency | p95 latency | max | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for endpoint in ENDPOINTS:
        values = np.array(tally.latencies.get(endpoint, []))
        errors = len(tally.errors.get(endpoint, []))
        if len(values):
            p50, p95, peak = np.percentile(values, 50), np.percentile(values, 95), values.max()
            cells = f"{p50:.2f} s | {p95:.2f} s | {peak:.2f} s"
        else:
            cells = "– | – | –"
        lines.append(f"| `{endpoint}` | {len(values)} | {len(values) / wall:.1f} | {cells} | {errors} |")
    missing, extra = tally.acknowledged - written, written - tally.acknowledged
    p95 = {e: float(np.percentile(tally.latencies[e], 95)) if tally.latencies.get(e) else float("nan")
           for e in ("/next_pair", "/vote")}
    met = (not any(tally.errors.values()) and not missing and not extra
           and all(v <= TARGET_P95_S for v in p95.values()))
    lines += [
        "",
        f"Judgements acknowledged to clients: **{len(tally.acknowledged)}** from {len(tally.raters)} raters; "
        f"in the store after the run: **{len(written)}**; acknowledged but missing: **{len(missing)}**; stored but "
        f"never acknowledged: **{len(extra)}**.",
        "",
        f"Targets (0 errors, acknowledged = stored, p95 of `/next_pair` and `/vote` each ≤ {TARGET_P95_S:g} s): "
        f"**{'met' if met else 'NOT met'}**.",
    ]
    samples = [f"`{endpoint}`: {messages[0]}" for endpoint, messages in tally.errors.items() if messages]
    if samples:
        lines += ["", "First error per endpoint: " + "; ".join(samples)]
    return "\n".join(lines) + "\n"


def sized_for(args: argparse.Namespace) -> int:
    """The audience the campaign is created for: ``--sized-for``, else the simulated audience."""
    return args.sized_for or args.audience


def publish(text: str, report: Path | None) -> None:
    """Print a markdown section and, with ``--report``, put it into that file."""
    print(text)
    if report:
        write_section(report, text)


def write_section(path: Path, text: str) -> None:
    """Put ``text`` (a markdown section starting with "## ") into ``path``, replacing the section of the
    same heading and keeping the others, so both scenarios can report into one file."""
    heading = text.splitlines()[0]
    sections = []
    if path.is_file():
        current: list[str] = []
        for line in path.read_text().splitlines():
            if line.startswith("## ") and current:
                sections.append("\n".join(current).strip() + "\n")
                current = []
            current.append(line)
        if current:
            sections.append("\n".join(current).strip() + "\n")
    kept = [section for section in sections if section.splitlines()[0] != heading]
    position = next((k for k, section in enumerate(sections) if section.splitlines()[0] == heading), len(kept))
    kept.insert(position, text.strip() + "\n")
    path.write_text("\n".join(kept))


@contextmanager
def campaign_app(model: Path | None, prefix: str) -> Iterator[str]:
    """``python app.py`` on a fresh data folder holding this scenario's campaign; yields its URL and
    removes everything afterwards (for the benches that explain this one)."""
    from bench.app_process import free_port, model_arguments, start_app, wait_until_up

    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    flags, _ = model_arguments(model, scratch)
    data = scratch / "data"
    subprocess.run([sys.executable, "-m", "annotations", "campaign", "create", CAMPAIGN, "--images",
                    str(make_photos(scratch / "photos")), "--data-dir", str(data), "--gold-share", "0",
                    "--audience", str(BENCH_AUDIENCE)],
                   cwd=ROOT, check=True, capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_app(flags, data, port, scratch / "app.log")
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)


def main(args: argparse.Namespace) -> int:
    from bench.app_process import free_port, model_arguments, start_app, wait_until_up
    from annotations.store import AnnotationStore

    args.think = tuple(args.think or THINK_S)
    scratch = Path(tempfile.mkdtemp(prefix="cvrkd-talk-"))
    flags, model = model_arguments(args.model, scratch)
    data = scratch / "data"
    photos = make_photos(scratch / "photos")
    created = subprocess.run([sys.executable, "-m", "annotations", "campaign", "create", CAMPAIGN, "--images",
                              str(photos), "--data-dir", str(data), "--title", "Which JPEG looks better?",
                              "--gold-share", "0", "--audience", str(sized_for(args))],
                             cwd=ROOT, capture_output=True, text=True)
    if created.returncode != 0:
        print(created.stdout, created.stderr, file=sys.stderr)
        return 2
    images = len(PHOTOS) * len(QUALITIES)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_app(flags, data, port, scratch / "app.log")
    tally = Tally()
    try:
        wait_until_up(url, process)
        direct = unqueued_endpoints(url)
        asyncio.run(wait_until_scored(url, timeout_s=900, direct=direct))
        load_before = os.getloadavg()[0]
        wall = asyncio.run(run(url, args, tally, direct))
        stored = AnnotationStore(data / "annotations").judgements(CAMPAIGN)
        written = set(stored.loc[stored["rater_id"].isin(tally.raters), "judgement_id"])
    finally:
        process.terminate()
        process.wait(timeout=60)
    publish(report(tally, written, args, model, wall, load_before, images), args.report)
    if any(tally.errors.values()) or written != tally.acknowledged:
        print(f"kept the app's data and log for inspection: {scratch}", file=sys.stderr)
        return 1
    shutil.rmtree(scratch, ignore_errors=True)
    return 0
