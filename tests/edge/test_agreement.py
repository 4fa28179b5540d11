"""The int8 classifier's agreement with the float model is measured on photos outside its
calibration pool: no held-out photo is a pool photo (same pixels, or a resized, recoloured,
mirrored or grey copy), and no view fed to the measurement is a calibration crop."""

from __future__ import annotations

import numpy as np

from edge.agreement import VIEWS, heldout_photos, heldout_views, near_duplicates, pixel_hash
from edge.camera import default_photos
from edge.convert import calibration_images, calibration_pool


def test_heldout_photos_share_no_image_with_the_calibration_pool():
    held, pool = heldout_photos(), calibration_pool()
    assert len(held) >= 16 and len(pool) >= 8  # n is what edge/README.md states
    assert not {pixel_hash(img) for _, img in held} & {pixel_hash(img) for _, img in pool}
    assert near_duplicates(held, pool) == []
    assert near_duplicates(held, held) == [(n, n) for n, _ in held]  # no photo counted twice


def test_the_duplicate_check_finds_what_the_old_figure_was_measured_on():
    """The camera's default photos (the old agreement figure) are calibration photos: the check sees it,
    also through a resize, a mirror and a grey copy."""
    pool = calibration_pool()
    photos = default_photos()
    assert {a for a, _ in near_duplicates(photos, pool)} == {n for n, _ in photos}
    name, img = photos[0]
    grey = np.repeat(img[::2, ::-2].mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert near_duplicates([("copy", grey)], pool)


def test_views_are_not_calibration_crops():
    views = heldout_views(heldout_photos())
    assert len(views) == len(heldout_photos()) * len(VIEWS)
    assert all(x.shape == (224, 224, 3) for _, x in views)
    calib = {pixel_hash(np.round(x)) for x in calibration_images()}
    assert not calib & {pixel_hash(x) for _, x in views}
