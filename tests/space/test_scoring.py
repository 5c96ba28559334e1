"""The one ``score`` use case behind the Score tab and the ``/score`` API: it decodes the upload once,
resolves the gallery once, and the explanation (quality map, references' effect) reads what it decoded."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.helpers.app import model_options
from tests.helpers.images import photo


@pytest.fixture(scope="module")
def services(untrained_bundle, tmp_path_factory):
    from space.services.config import AppConfig
    from space.services.container import build_services

    config = AppConfig(data_dir=tmp_path_factory.mktemp("scoring-data"), score_pool=False,
                       **model_options(untrained_bundle))
    built = build_services(config)
    yield built
    built.close()


def _upload(folder, pixels, name="upload.png"):
    path = folder / name
    Image.fromarray(pixels).save(path)
    return path


def test_the_explanation_reads_the_pixels_decoded_for_the_score(services, tmp_path):
    """Before, the quality map decoded the file a second time: once the upload was gone, there was no map."""
    from cvrkd import QualityMap
    from space.services import scoring
    from space.ui import score_tab

    path = _upload(tmp_path, photo(400, 300))
    view = score_tab.score_view(services, str(path), None, None, False, None)
    path.unlink()  # Gradio may clean its uploads at any time after the event
    chart, qmap = score_tab.explain_view(services, view.scored)
    assert chart is not None and qmap is not None
    explanation = scoring.explain(services, view.scored)
    assert np.array_equal(explanation.quality_map.pixels, view.scored.image.pixels)
    effect = explanation.reference_effect
    assert effect.with_reference == pytest.approx([r.score for r in view.scored.report.nar.per_reference], abs=0.05)
    # the chart shows what each reference adds to the score alone, never six bars of the same score
    assert list(chart.data[0].x) == pytest.approx(effect.added) and list(chart.data[0].y) == effect.names
    low, high = chart.layout.xaxis.range
    assert low <= -5 and high >= 5 and str(round(effect.alone, 1)) in chart.layout.title.text
    assert qmap.data[1].zmax == QualityMap.scale and "points lost" in qmap.data[1].colorbar.title.text


def test_a_session_gallery_is_resolved_once_for_the_score_and_its_explanation(services, tmp_path):
    from space.services import scoring
    from space.services.galleries import UnknownGallery
    from space.ui import score_tab

    references = [_upload(tmp_path, photo(300 + 20 * k, 240), f"ref{k}.png") for k in range(3)]
    message, session, name = score_tab.build_gallery(services, [str(p) for p in references], "mine", {})
    assert name == "mine" and "is ready" in message
    scored = scoring.score(services, str(_upload(tmp_path, photo(320, 256)[::-1].copy())), name, session=session)
    assert scored.gallery.name == "mine" and len(scored.report.nar.per_reference) == 3
    shutil.rmtree(session[name])  # the session ended meanwhile: the explanation keeps the gallery it was given
    assert scoring.explain(services, scored).reference_effect.names == [f"ref{k}" for k in range(3)]
    with pytest.raises(UnknownGallery, match="of this session is gone"):
        scoring.score(services, str(references[0]), name, session=session)


def test_an_unknown_gallery_is_one_typed_refusal_and_nothing_joins_the_pool(services, tmp_path):
    from space.services import scoring
    from space.services.galleries import UnknownGallery
    from space.services.refusals import REFUSALS
    from space.ui import score_tab

    path = _upload(tmp_path, photo(360, 280)[:, ::-1].copy())
    before = len(services.pool)
    with pytest.raises(UnknownGallery, match="unknown gallery 'nope'") as refused:
        scoring.score(services, str(path), "nope", contribute=True)
    assert isinstance(refused.value, REFUSALS) and str(refused.value).startswith("unknown gallery")
    view = score_tab.score_view(services, str(path), "nope", None, True, None)
    assert "unknown gallery" in view.html and view.scored is None
    assert len(services.pool) == before


def test_no_upload_and_an_original_of_another_shape_are_refused_before_anything_is_stored(services, tmp_path):
    from cvrkd import InvalidImageError
    from space.services import scoring

    before = len(services.pool)
    with pytest.raises(InvalidImageError, match="No image was sent"):
        scoring.score(services, None, None, contribute=True)
    image, original = _upload(tmp_path, photo(400, 300), "a.png"), _upload(tmp_path, photo(300, 300), "b.png")
    with pytest.raises(InvalidImageError, match="does not have the image's shape"):
        scoring.score(services, str(image), None, str(original), contribute=True)
    assert len(services.pool) == before


def test_a_chart_of_no_difference_says_why_instead_of_showing_nothing():
    """Before, a photo at 0 got a chart of six empty bars; now the chart says what the references did."""
    from cvrkd import ReferenceEffect
    from space.ui.plots import reference_effect

    floor = reference_effect(ReferenceEffect(["a", "b"], [0.0, 0.0], 0.0))
    assert "at the bottom of the scale" in floor.layout.title.text
    alike = reference_effect(ReferenceEffect(["a", "b"], [50.1, 50.2], 50.0))
    assert "the score comes from the image alone" in alike.layout.title.text
    apart = reference_effect(ReferenceEffect(["a", "b"], [30.0, 41.0], 50.0))
    assert list(apart.data[0].x) == pytest.approx([-20.0, -9.0]) and apart.layout.xaxis.range[0] < -20
