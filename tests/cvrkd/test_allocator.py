"""Training keeps freed memory in the heap (cvrkd.allocator): what makes a fine-tuning step
about 1.3x faster on CPU (bench/allocator.py)."""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys

import pytest

from cvrkd import allocator
from cvrkd.train import cli

FREE_A_BLOCK = """
import sys
import numpy as np
from cvrkd.allocator import keep_freed_memory

def resident() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * 4096

applied = keep_freed_memory() if sys.argv[1] == "keep" else False
before = resident()
block = np.ones(200_000_000 // 8)
del block
print(applied, resident() - before)
"""


def resident_after_free(setting: str) -> tuple[bool, int]:
    """(whether the setting applied, bytes still resident after a 200 MB block was freed)."""
    output = subprocess.run([sys.executable, "-c", FREE_A_BLOCK, setting], check=True, capture_output=True,
                            text=True).stdout.split()
    return output[0] == "True", int(output[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_freed_block_stays_in_the_process_only_when_kept():
    applied, kept = resident_after_free("keep")
    assert applied
    assert kept > 150_000_000  # served from the heap and not trimmed: the next step reuses it
    _, returned = resident_after_free("default")
    assert returned < 50_000_000  # glibc's default: mmapped, and unmapped on free


def test_every_training_command_keeps_freed_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(True))
    handlers = (cli.run_data, cli.run_model, cli.run_synthetic, cli.run_redistill, cli.run_evaluate)
    for handler in handlers:
        with pytest.raises(AttributeError):  # no arguments: the handler fails after the setting
            handler(argparse.Namespace())
    assert len(calls) == len(handlers)
