"""The public surface: every name in ``cvrkd.__all__`` resolves, and ``import cvrkd`` stays cheap."""
import subprocess
import sys

import cvrkd

from tests.helpers import ROOT


def test_every_public_name_resolves():
    assert len(cvrkd.__all__) == len(set(cvrkd.__all__))
    for name in cvrkd.__all__:
        assert getattr(cvrkd, name) is not None, name
    assert set(cvrkd.__all__) <= set(dir(cvrkd))


def test_public_names_are_the_library_objects():
    from cvrkd import gallery, imageio, scorer

    assert cvrkd.Scorer is scorer.Scorer and cvrkd.LoadedImage is imageio.LoadedImage
    assert cvrkd.Gallery is gallery.Gallery and callable(cvrkd.paths.data_dir)


def test_no_public_name_is_shadowed_by_a_module_of_the_same_name():
    """Importing a submodule sets it as an attribute of the package: a submodule named like an export would
    replace the export (``from cvrkd import quality_map`` once gave the module, not the function)."""
    import importlib
    import pkgutil
    import types

    for module in pkgutil.iter_modules(cvrkd.__path__):
        if module.name not in ("bulk_ray", "__main__"):  # Ray is optional; __main__ runs the CLI
            importlib.import_module(f"cvrkd.{module.name}")
    modules = {name for name in cvrkd.__all__ if isinstance(getattr(cvrkd, name), types.ModuleType)}
    assert modules == {"paths"}  # the one module exported on purpose


def test_an_unknown_name_is_an_attribute_error():
    try:
        cvrkd.no_such_name
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


def test_import_cvrkd_does_not_import_torch():
    code = ("import sys, cvrkd; cvrkd.__all__; from cvrkd import paths; "
            "heavy = [m for m in ('torch', 'timm', 'PIL', 'numpy') if m in sys.modules]; "
            "print(','.join(heavy))")
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "torch" not in output.stdout.split(",") and "timm" not in output.stdout.split(",")
