"""Load test: concurrent ``gradio_client`` users scoring and voting against a local app.

Starts ``python app.py`` on a free port with a fresh data folder, then runs
``--clients`` API clients for ``--duration`` seconds. Each client scores an
image, then judges three pairs (``/next_pair`` + ``/vote``), and repeats.
Reports throughput and p50/p95 latency per endpoint, errors, and judgements
acknowledged to clients versus judgements found in the store afterwards::

    python bench/load.py --clients 20 --duration 60 --report docs/performance_load.md

Without ``--model`` it uses the installed model (``cvrkd/weights``) or, when
none is installed, a random-init bundle of the same architecture
(``--allow-untrained``): the cost of a score does not depend on the weights.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.app_process import free_port, model_arguments, start_app, wait_until_up  # noqa: E402  (needs the path above)
from space.services.config import AppConfig  # noqa: E402
ENDPOINTS = ("/score", "/next_pair", "/vote")
LOOK_S = (0.5, 1.0)
"""Seconds a simulated user looks at a pair before voting (the app's floor is ``AppConfig.min_answer_ms``)."""
QUEUE_NOTE = ("Scoring runs {score} jobs at a time, so with every client scoring, a score's latency is mostly "
              "its wait for a slot. Pairs and votes never wait for scoring: the app serves them outside Gradio's "
              "queue, and `gradio_client`, which still sends them through it, gets {rating} slots per endpoint.")


@dataclass
class Tally:
    """What all clients saw; appended to under a lock."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    acknowledged: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            if error is None:
                self.latencies[endpoint].append(seconds)
            else:
                self.errors[endpoint].append(error)


@dataclass
class Clock:
    """The shared end of the run, set once every client is connected."""

    duration: float
    deadline: float = float("inf")

    def start(self) -> None:
        self.deadline = time.monotonic() + self.duration


def client_loop(url: str, name: str, images: list[Path], clock: Clock, tally: Tally,
                ready: threading.Barrier, raters: set[str]) -> None:
    """One simulated user: get a signed rater id, then score, judge three pairs, repeat until the deadline."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    rng = random.Random(name)
    rater_id = client.predict(api_name="/rater")
    with tally.lock:
        raters.add(rater_id.rpartition(".")[0])  # the public part is what the store keeps
    ready.wait()

    def call(endpoint: str, *args):
        started = time.perf_counter()
        try:
            result = client.predict(*args, api_name=endpoint)
        except Exception as exc:  # every failure counts as an error of its endpoint
            tally.record(endpoint, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
            return None
        tally.record(endpoint, time.perf_counter() - started)
        return result

    while time.monotonic() < clock.deadline:
        call("/score", handle_file(str(rng.choice(images))), "", None)
        for _ in range(3):
            if time.monotonic() >= clock.deadline:
                break
            pair = call("/next_pair", rater_id)
            if pair is None:
                continue
            time.sleep(rng.uniform(*LOOK_S))  # the server refuses answers sooner than a person can give them
            receipt = call("/vote", rater_id, pair[0]["ticket"], rng.choice(["left", "right", "same"]), None)
            if receipt is not None and receipt.get("stored") == "judgement":
                with tally.lock:
                    tally.acknowledged.append(receipt["id"])


def written_judgements(data_dir: Path, raters: set[str]) -> set[str]:
    """Judgement ids of the bench's raters that are in the store files now."""
    from annotations.store import AnnotationStore

    judgements = AnnotationStore(data_dir / "annotations").judgements()
    return set(judgements.loc[judgements["rater_id"].isin(raters), "judgement_id"])


def report(tally: Tally, written: set[str], args: argparse.Namespace, model: str, wall: float,
           load_before: tuple[float, float, float]) -> str:
    lines = [
        "## Load test: concurrent API clients scoring and voting", "",
        "```bash", f"python bench/load.py --clients {args.clients} --duration {args.duration:g}"
        + (f" --report {args.report}" if args.report else ""), "```", "",
        f"{args.clients} `gradio_client` clients, each scoring an image and then judging three pairs (looking "
        f"{LOOK_S[0]:g}–{LOOK_S[1]:g} s at each), in a loop, "
        f"for {args.duration:g} s (calls still running at the deadline finish; wall time {wall:.0f} s), "
        f"against `python app.py` on the same machine, serving {model}. "
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), load average before the run "
        f"{load_before[0]:.1f}. Latency is what the client sees (queueing, upload, download included).", "",
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
        lines.append(f"| `{endpoint}` | {len(values)} | {len(values) / args.duration:.2f} | {cells} | {errors} |")
    acknowledged = set(tally.acknowledged)
    lines += [
        "",
        f"Judgements acknowledged to clients: **{len(acknowledged)}**; written to the store: **{len(written)}**; "
        f"acknowledged but missing: **{len(acknowledged - written)}**; written but never acknowledged: "
        f"**{len(written - acknowledged)}**.",
    ]
    lines += ["", QUEUE_NOTE.format(score=AppConfig().score_concurrency, rating=AppConfig().rating_concurrency)]
    samples = [f"`{endpoint}`: {messages[0]}" for endpoint, messages in tally.errors.items() if messages]
    if samples:
        lines += ["", "First error per endpoint: " + "; ".join(samples)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("mixed", "talk"), default="mixed",
                        help="mixed: scoring and voting clients (above); talk: an audience rating one campaign "
                             "with a live view polled (bench/talk.py)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of load (default 60; talk: 120 per audience member)")
    parser.add_argument("--audience", type=int, default=200, help="talk: audience members")
    parser.add_argument("--sized-for", type=int, default=None,
                        help="talk: the audience the campaign is created for (campaign create --audience; "
                             "default: --audience)")
    parser.add_argument("--think", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="talk: seconds each member looks at a pair before voting (default 1 4)")
    parser.add_argument("--join", type=float, default=30.0, help="talk: seconds within which they all join")
    parser.add_argument("--pollers", type=int, default=5, help="talk: clients polling the live view")
    parser.add_argument("--via", choices=("page", "gradio"), default="page",
                        help="talk: the rating page's routes (as phones that opened /rate/NAME) or Gradio's API")
    parser.add_argument("--seed", type=int, default=0, help="talk: join times and answers")
    parser.add_argument("--model", type=Path, help="model bundle to serve (default: see above)")
    parser.add_argument("--report", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    if args.scenario == "talk":
        from bench import talk

        args.duration = 120.0 if args.duration is None else args.duration
        return talk.main(args)
    args.duration = 60.0 if args.duration is None else args.duration

    scratch = Path(tempfile.mkdtemp(prefix="cvrkd-load-"))
    flags, model = model_arguments(args.model, scratch)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_app(flags, scratch / "data", port, scratch / "app.log")
    try:
        wait_until_up(url, process)
        from gradio_client import Client, handle_file

        images = sorted((scratch / "data" / "examples").glob("*.png"))
        Client(url, verbose=False).predict(handle_file(str(images[0])), "", None, api_name="/score")  # warm-up
        names = [f"bench-{k:02d}" for k in range(args.clients)]
        raters: set[str] = set()
        tally, clock = Tally(), Clock(args.duration)
        ready = threading.Barrier(args.clients, action=clock.start)
        load_before = os.getloadavg()
        threads = [threading.Thread(target=client_loop, args=(url, name, images, clock, tally, ready, raters))
                   for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - clock.deadline + args.duration
        written = written_judgements(scratch / "data", raters)
    finally:
        process.terminate()
        process.wait(timeout=60)
    from bench.talk import publish

    publish(report(tally, written, args, model, wall, load_before), args.report)
    if tally.errors or written != set(tally.acknowledged):
        print(f"kept the app's data and log for inspection: {scratch}", file=sys.stderr)
        return 1
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
