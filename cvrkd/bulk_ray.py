"""The Ray Data engine of bulk scoring: the same ``BatchScorer`` on an actor pool.

Each actor loads the model and the gallery features once; batches of item numbers stream to
the actors and the scored rows stream back to the driver, which writes finished shards (see
``cvrkd.bulk``). Without ``address`` Ray starts a private local instance on this machine;
with one it joins that cluster, whose nodes need this package installed
(``pip install ".[scale]"``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

import pandas as pd

from cvrkd.bulk import BatchScorer, Plan, ScorerOptions, Source, pending_batches


def run_on_ray(source: Source, options: ScorerOptions, plan: Plan, shards: list[int],
               batch_size: int, workers: int, address: str | None) -> Iterator[pd.DataFrame]:
    try:
        import ray
    except ImportError as exc:  # the optional `scale` extra
        raise RuntimeError('the Ray engine needs Ray: pip install ".[scale]"') from exc

    batches = list(pending_batches(plan, shards, batch_size))
    if not batches:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(**_init_options(address, workers))
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver shows one bar with images/s
        cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = max(1, cpus // workers) if address is None else 1
        dataset = ray.data.from_pandas(batches)  # one block per batch
        scored = dataset.map_batches(
            BatchScorer, fn_constructor_kwargs={"source": source, "options": options},
            # Ray sets each actor's OMP_NUM_THREADS from num_cpus; the runtimes follow torch's
            batch_format="pandas", batch_size=None, concurrency=workers, num_cpus=threads)
        for rows in scored.iter_batches(batch_size=None, batch_format="pandas"):
            yield rows
    finally:
        if started_here:
            ray.shutdown()


def _init_options(address: str | None, workers: int) -> dict:
    if address:
        return {"address": address, "log_to_driver": False, "logging_level": logging.ERROR}
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    # a private local instance ("local": not the cluster in $RAY_ADDRESS or the last `ray start` here, which
    # Ray would join otherwise); workers import this very copy of cvrkd
    return {"address": "local", "num_cpus": os.cpu_count() or 1, "include_dashboard": False, "log_to_driver": False,
            "logging_level": logging.ERROR,
            "runtime_env": {"env_vars": {"PYTHONPATH": path, "OMP_WAIT_POLICY": "PASSIVE"}}}
