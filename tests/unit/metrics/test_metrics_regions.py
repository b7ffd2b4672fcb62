"""Region labelling: 8-connected inside an image, never across images (skimage.measure.label as oracle)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.measure import label

from autopatch.metrics.regions import find_regions


def test_diagonal_pixels_form_one_region_and_images_never_link():
    masks = np.zeros((2, 3, 3), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 2, 2] = True  # one diagonal line
    masks[1, 0, 0] = masks[1, 2, 2] = True  # same spot as image 0, but two separate pixels here
    regions = find_regions(masks)
    assert regions.count == 3
    assert sorted(regions.areas.tolist()) == [1, 1, 3]
    assert sorted(regions.images.tolist()) == [0, 1, 1]


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda n: arrays(np.bool_, st.tuples(st.just(n), st.integers(1, 8), st.integers(1, 8)))
    )
)
def test_regions_match_skimage_per_image(masks):
    regions = find_regions(masks)
    expected_areas, expected_images = [], []
    for image, mask in enumerate(masks):
        labelled = label(mask, connectivity=2)
        for region_id in range(1, labelled.max() + 1):
            expected_areas.append(int((labelled == region_id).sum()))
            expected_images.append(image)
    assert regions.count == len(expected_areas)
    found = zip(regions.images.tolist(), regions.areas.tolist(), strict=True)
    assert sorted(found) == sorted(zip(expected_images, expected_areas, strict=True))
    assert np.array_equal(regions.labels > 0, masks)
    # Every region id lies in one image only and is a single connected piece there.
    for region_id in range(1, regions.count + 1):
        where = np.argwhere(regions.labels == region_id)
        assert len(set(where[:, 0].tolist())) == 1
        image = where[0, 0]
        assert label(regions.labels[image] == region_id, connectivity=2).max() == 1
