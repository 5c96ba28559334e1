import json

from cvrkd.gallery import Gallery, build_default_gallery, create_gallery
from cvrkd.imageio import load_image
from tests.helpers.images import photo


def test_default_gallery_comes_from_wheels_with_licences(tmp_path):
    gallery = build_default_gallery(tmp_path / "default")
    assert len(gallery) >= 5
    manifest = json.loads((tmp_path / "default" / "manifest.json").read_text())
    for entry in manifest["images"]:
        assert entry["source"] and entry["licence"] and (tmp_path / "default" / entry["file"]).is_file()
    again = Gallery.load(tmp_path / "default")
    assert again.fingerprint() == gallery.fingerprint()


def test_user_gallery_and_fingerprint_changes_with_content(tmp_path):
    first = create_gallery(tmp_path / "a", "mine", [("one", load_image(photo(300, 300)))])
    second = create_gallery(tmp_path / "b", "mine", [("one", load_image(255 - photo(300, 300)))])
    assert first.fingerprint() != second.fingerprint()
    assert Gallery.load(tmp_path / "a").images[0].name == "one"


def test_plain_folder_without_manifest_is_a_gallery(tmp_path):
    from PIL import Image

    Image.fromarray(photo(256, 256)).save(tmp_path / "x.png")
    gallery = Gallery.load(tmp_path)
    assert len(gallery) == 1 and gallery.images[0].licence == "unknown"
    assert not Gallery.has_manifest(tmp_path)  # loadable, but not a saved gallery
    create_gallery(tmp_path / "saved", "mine", [("one", load_image(photo(256, 256)))])
    assert Gallery.has_manifest(tmp_path / "saved")
