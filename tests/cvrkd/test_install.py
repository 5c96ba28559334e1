"""The project installs as a package: `pip install .` gives `cvrkd` and `annotations` with the
bundled weights, and a `cvrkd` console script that scores a photo from any folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import ROOT

SOURCES = ("pyproject.toml", "README.md", "cvrkd", "annotations")


def _copy_sources(target: Path) -> None:
    """Build from a copy: an in-tree build would leave build/ behind in the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "runtime", "*.egg-info")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def test_pip_install_then_cvrkd_score_from_another_folder(tmp_path):
    source, site, workdir = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    source.mkdir()
    workdir.mkdir()
    _copy_sources(source)
    # --no-deps: the dependencies are this interpreter's; --no-build-isolation: no index needed
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(source)], check=True)
    assert (site / "cvrkd" / "weights" / "student" / "model.safetensors").is_file()
    assert (site / "annotations" / "store.py").is_file()
    assert not (site / "space").exists() and not (site / "tests").exists()

    rng = np.random.default_rng(0)
    pixels = (rng.random((300, 400, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(workdir / "photo.jpg")
    env = {key: value for key, value in os.environ.items()
           if key not in ("CVRKD_DATA_DIR", "CVRKD_MODEL_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)  # the installed copy, not this checkout
    done = subprocess.run([str(site / "bin" / "cvrkd"), "score", "photo.jpg", "--json"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 <= result["score"] <= 100 and result["mode"] == "nar" and result["trained_model"]
    where = subprocess.run([sys.executable, "-c", "import cvrkd, annotations.store; print(cvrkd.__file__)"],
                           cwd=workdir, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(site))


def test_editable_install_runs_the_checkout_in_place(tmp_path):
    """`pip install -e .`: the `cvrkd` script and imports resolve to the source folder itself,
    so an edit there is what runs."""
    import sysconfig

    source, venv, workdir = tmp_path / "src", tmp_path / "venv", tmp_path / "elsewhere"
    source.mkdir()
    workdir.mkdir()
    _copy_sources(source)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies are this interpreter's (no index needed): expose them to the new environment
    (Path(purelib) / "parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "-e", str(source)], check=True)
    (source / "cvrkd" / "edited_in_place.py").write_text("MARK = 'from the source folder'\n")

    env = {key: value for key, value in os.environ.items()
           if key not in ("CVRKD_DATA_DIR", "CVRKD_MODEL_DIR", "PYTHONPATH")}
    where = subprocess.run([str(python), "-c", "import cvrkd, cvrkd.edited_in_place as e; print(cvrkd.__file__); "
                            "print(e.MARK)"], cwd=workdir, env=env, capture_output=True, text=True, check=True)
    first, mark = where.stdout.strip().splitlines()
    assert first.startswith(str(source)) and mark == "from the source folder"
    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((256, 320, 3)) * 255).astype(np.uint8)).save(workdir / "photo.png")
    done = subprocess.run([str(venv / "bin" / "cvrkd"), "score", "photo.png", "--json"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 0 <= json.loads(done.stdout.strip().splitlines()[-1])["score"] <= 100
