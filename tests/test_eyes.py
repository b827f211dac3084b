"""Eye refinement from pixels (dmask.eyes): the limbus fit and the lid margins, on drawn eyes whose iris
centre, iris radius and lid margins are known."""
import cv2
import numpy as np
import pytest

from dmask import eyes, topology
from dmask.eyes import (IRIS_MAX_SHIFT, corneal_reflexes, limbus_circle, limbus_fit, refine_eyes, refine_iris,
                        refine_lids)

H, W = 160, 240
CX, CY = 120.0, 80.0  # centre of the drawn eye opening
HALF_WIDTH = 40.0  # corner to corner / 2
RADIUS = 12.0  # iris radius, px


def lid_points(half_height: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid margins, outer (image-left) corner to inner corner, 9 points each."""
    x = np.linspace(CX - HALF_WIDTH, CX + HALF_WIDTH, 9)
    bulge = half_height * (1 - ((x - CX) / HALF_WIDTH) ** 2)
    return np.stack([x, CY - bulge], 1), np.stack([x, CY + bulge], 1)


def draw_eye(iris_centre, half_height=10.0, radius=RADIUS, noise=3.0, glare=False, flat=False, seed=0,
             catch=(2.0, -2.0), skin_spot=None, lower_lashes=False):
    """An RGB eye: skin, a white sclera inside the lids, a dark iris (radius px) with a pupil and a
    catchlight (a corneal reflex of radius 1.2 px at ``catch`` from the iris centre; None: none),
    slightly blurred and noisy. ``skin_spot``: a white spot of the same size on the skin at that image
    point; ``lower_lashes``: a dark band 1.5 px wide under the lower lid. Drawn at 4x and averaged
    (anti-aliased edges)."""
    if flat:
        return np.full((H, W, 3), 128, np.uint8)
    s = 4
    ys, xs = np.mgrid[0:H * s, 0:W * s]
    x, y = (xs + 0.5) / s, (ys + 0.5) / s
    t = np.clip((x - CX) / HALF_WIDTH, -1, 1)
    bulge = half_height * (1 - t ** 2)
    opening = (np.abs(x - CX) < HALF_WIDTH) & (np.abs(y - CY) < bulge)
    d = np.hypot(x - iris_centre[0], y - iris_centre[1])
    img = np.empty((H * s, W * s, 3))
    img[:] = (200, 160, 140)  # skin
    eye = np.where((d < radius)[..., None], (70, 45, 30), (225, 220, 215))
    eye = np.where((d < radius * 0.35)[..., None], (15, 12, 10), eye)
    if catch is not None:
        spot = np.hypot(x - iris_centre[0] - catch[0], y - iris_centre[1] - catch[1]) < 1.2
        eye = np.where(spot[..., None], (250, 250, 250), eye)
    if glare:
        eye = np.where((d < radius * 1.2)[..., None], (255, 255, 255), eye)
    if lower_lashes:
        band = (np.abs(x - CX) < HALF_WIDTH) & (y >= CY + bulge) & (y < CY + bulge + 1.5)
        img = np.where(band[..., None], (40, 30, 25), img)
    img = np.where(opening[..., None], eye, img)
    if skin_spot is not None:
        img = np.where((np.hypot(x - skin_spot[0], y - skin_spot[1]) < 1.2)[..., None], 250.0, img)
    img = img.reshape(H, s, W, s, 3).mean(axis=(1, 3))
    from scipy.ndimage import gaussian_filter

    img = gaussian_filter(img, (0.6, 0.6, 0))
    img += np.random.default_rng(seed).normal(0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def face_points(iris_centre, half_height=10.0, radius=RADIUS) -> np.ndarray:
    """Landmarks with eye 0 (image left eye) on the drawn eye; eye 1's points are left at zero."""
    p = np.zeros((topology.N_LANDMARKS, 3), np.float32)
    upper, lower = lid_points(half_height)
    p[list(topology.UPPER_LID[0]), :2] = upper
    p[list(topology.LOWER_LID[0]), :2] = lower
    cx, cy = iris_centre
    p[topology.IRIS_CENTRE[0], :2] = cx, cy
    # right, top, left, bottom in the image
    ring = [(cx + radius, cy), (cx, cy - radius), (cx - radius, cy), (cx, cy + radius)]
    p[list(topology.IRIS_RING[0]), :2] = ring
    p[topology.IRIS_CENTRE[0], 2] = -3.0
    return p


def centre(p: np.ndarray) -> np.ndarray:
    return p[topology.IRIS_CENTRE[0], :2].astype(float)


TRUE = (CX + 5.0, CY + 1.5)  # the drawn iris, looking to the image right and a little down
GUESS = (CX + 1.5, CY - 1.0)  # where MediaPipe reads it: a fraction of the turn, as it does


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refined_centre_lands_on_the_drawn_iris(seed):
    img = draw_eye(TRUE, seed=seed)
    p = face_points(GUESS, radius=RADIUS * 1.05)  # MediaPipe's radius a little off too
    out = refine_iris(img, p)
    before = np.linalg.norm(centre(p) - TRUE)
    after = np.linalg.norm(centre(out) - TRUE)
    assert after < 0.6  # px; 0.05 iris radii
    assert after < before / 5


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("half_height, dy", [(9.0, -4.0), (9.0, 4.0), (8.0, 0.0)])
def test_an_iris_partly_under_the_lids_keeps_its_height_and_size(half_height, dy, seed):
    """The lids hide the top or bottom of the limbus (here 1-7 px of a 12 px radius): the circle
    through the visible edge points is neither pushed away from the lid nor shrunk."""
    rng = np.random.default_rng(seed)
    true = (CX + 5.0 + rng.uniform(-0.5, 0.5), CY + dy + rng.uniform(-0.5, 0.5))  # any sub-pixel place
    img = draw_eye(true, half_height=half_height, seed=seed)
    p = face_points((true[0] - 2.5, true[1] - 0.8), half_height=half_height, radius=RADIUS * 1.05)
    out, _ = refine_eyes(img, p)
    assert np.abs(centre(out) - true).max() < 0.3  # px
    ring = out[list(topology.IRIS_RING[0]), :2] - out[topology.IRIS_CENTRE[0], :2]
    assert np.linalg.norm(ring, axis=1).mean() == pytest.approx(RADIUS, abs=0.2)


def test_limbus_circle_through_drawn_edge_points():
    """limbus_circle alone, on a sharp disc drawn at 8x and averaged: centre and radius to a tenth of a
    pixel from a start 1 px and 10 % off; None where one side of the limbus is outside the opening."""
    s, h, w = 8, 60, 80
    ys, xs = np.mgrid[0:h * s, 0:w * s]
    true, radius = np.array([40.3, 29.6]), 12.0
    disc = np.hypot((xs + 0.5) / s - 0.5 - true[0], (ys + 0.5) / s - 0.5 - true[1]) < radius
    grey = np.where(disc, 60.0, 220.0).reshape(h, s, w, s).mean(axis=(1, 3)).astype(np.float32)
    opening = np.ones((h, w), np.float32)
    c, r, points = limbus_circle(cv2.merge([grey, opening]), true + (1.0, -0.5), radius * 1.1, 0.6)
    assert np.linalg.norm(c - true) < 0.1 and r == pytest.approx(radius, abs=0.1)
    assert len(points) >= 40 and np.abs(np.linalg.norm(points - true, axis=1) - radius).max() < 0.4
    opening[:, :34] = 0  # the left arc hidden
    assert limbus_circle(cv2.merge([grey, opening]), true + (1.0, -0.5), radius * 1.1, 0.6) is None


def test_ring_moves_with_the_centre_and_takes_the_drawn_size():
    img = draw_eye(TRUE)
    p = face_points(GUESS, radius=RADIUS * 1.06)
    out = refine_iris(img, p)
    c = centre(out)
    ring = list(topology.IRIS_RING[0])
    radii = np.linalg.norm(out[ring, :2] - c, axis=1)
    np.testing.assert_allclose(radii, RADIUS, atol=0.4)  # px
    np.testing.assert_array_equal(out[:, 2], p[:, 2])  # depth untouched
    others = np.ones(len(p), bool)
    others[[topology.IRIS_CENTRE[0], *ring]] = False
    np.testing.assert_array_equal(out[others], p[others])  # lids, mesh, the empty second eye


def test_a_centred_iris_stays_put():
    img = draw_eye((CX, CY))
    p = face_points((CX, CY))
    assert np.linalg.norm(centre(refine_iris(img, p)) - (CX, CY)) < 0.5


@pytest.mark.parametrize(
    "case",
    [
        dict(half_height=1.0),  # eye closed: a slit narrower than the iris
        dict(half_height=4.0),  # nearly closed
        dict(flat=True),  # no edge at all
        dict(glare=True),  # glasses glare over the iris
        dict(radius=3.0),  # a tiny face: too few pixels
    ],
)
def test_unreliable_fits_keep_mediapipes_points(case):
    radius = case.get("radius", RADIUS)
    hh = case.get("half_height", 10.0)
    img = draw_eye(TRUE, **case)
    p = face_points(GUESS, half_height=hh, radius=radius)
    np.testing.assert_array_equal(refine_iris(img, p), p)


def test_a_fit_far_from_mediapipe_is_rejected():
    # The iris is drawn a full radius from MediaPipe's estimate, beyond IRIS_MAX_SHIFT: the points stay.
    assert IRIS_MAX_SHIFT < 1.0
    img = draw_eye((CX + RADIUS, CY))
    p = face_points((CX, CY))
    np.testing.assert_array_equal(refine_iris(img, p), p)


def lid_error(p: np.ndarray, half_height: float) -> np.ndarray:
    """(14,) distance (px) of each lid point of eye 0 from the drawn margin at its x, + outward."""
    upper, lower = lid_points(half_height)
    lid = p[list(topology.LID_POINTS[0]), :2].astype(float)
    up = np.interp(lid[:7, 0], upper[:, 0], upper[:, 1]) - lid[:7, 1]
    down = lid[7:, 1] - np.interp(lid[7:, 0], lower[:, 0], lower[:, 1])
    return np.concatenate([up, down])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("offset", [(-2.0, 1.5), (1.5, -1.0)])
def test_lid_points_move_onto_the_drawn_margins(seed, offset):
    """MediaPipe's lids placed off the drawn ones (upper moved up by offset[0] px, lower down by
    offset[1]) come back onto the margins, over the sclera and over the iris alike."""
    hh = 11.0
    img = draw_eye(TRUE, half_height=hh, radius=9.0, seed=seed)
    p = face_points(TRUE, half_height=hh, radius=9.0)
    p[list(topology.LID_POINTS[0][:7]), 1] -= offset[0]
    p[list(topology.LID_POINTS[0][7:]), 1] += offset[1]
    before = np.abs(lid_error(p, hh))
    after = np.abs(lid_error(refine_lids(img, p), hh))
    assert before.min() >= 0.9
    assert after.max() < 0.6, after.round(2)


def test_a_lid_seen_on_one_side_of_the_iris_is_shifted_without_a_tilt():
    """An iris turned far to the image right hides the sclera's edge on that side: the lids, read on
    the other side only, are shifted by the mean of what they show there (MediaPipe's upper lid 2 px
    too high, the lower 1.5 px too low)."""
    hh, iris = 11.0, (CX + 22.0, CY + 1.0)
    img = draw_eye(iris, half_height=hh, radius=9.0)
    p = face_points(iris, half_height=hh, radius=9.0)
    p[list(topology.LID_POINTS[0][:7]), 1] -= 2.0
    p[list(topology.LID_POINTS[0][7:]), 1] += 1.5
    after = lid_error(refine_lids(img, p), hh)
    assert np.abs(after).max() < 0.5, after.round(2)


@pytest.mark.parametrize("seed", range(4))
def test_a_lid_bent_over_a_covered_iris_follows_its_edges_beside_it(seed):
    """MediaPipe's upper lid too high by 3 px at mid-eye, less toward the corners (a bend, as it reads
    the rendered mask's lids), over an iris whose top the lid covers: read in columns near the iris and
    moved point by point, every point lands within 0.5 px of the margin; one straight line through the
    points beside the iris leaves the middle 1 px off."""
    hh, radius, iris = 9.0, 11.0, (CX + 2.0, CY + 1.0)
    img = draw_eye(iris, half_height=hh, radius=radius, seed=seed)
    p = face_points(iris, half_height=hh, radius=radius)
    upper = list(topology.LID_POINTS[0][:7])
    p[upper, 1] -= 3.0 * (1 - ((p[upper, 0] - CX) / HALF_WIDTH) ** 2)
    course = np.abs(lid_error(refine_lids(img, p), hh))
    line = np.abs(lid_error(refine_lids(img, p, course=False), hh))
    assert course.max() < 0.5, course.round(2)
    assert line[:7].max() > 0.9, line.round(2)


@pytest.mark.parametrize("seed", [0, 1])
def test_an_upper_lid_read_half_an_iris_radius_high_comes_down_to_the_margin(seed):
    """MediaPipe's upper lid 5.5 px (half the iris radius) above the margin, on the skin, as it reads
    an eye looking up under its lid: the columns beside the iris reach the margin and every point lands
    within 0.5 px of it (searched only 0.3 radii inward, as before, the lid stays over 1.5 px high)."""
    hh, radius, iris = 9.0, 11.0, (CX - 3.0, CY - 2.0)
    img = draw_eye(iris, half_height=hh, radius=radius, seed=seed)
    p = face_points(iris, half_height=hh, radius=radius)
    p[list(topology.LID_POINTS[0][:7]), 1] -= 5.5
    assert np.abs(lid_error(refine_lids(img, p), hh))[:7].max() < 0.5
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eyes, "LID_COURSE_SEARCH", ((0.3, 0.3), eyes.LID_COURSE_SEARCH[1]))
        assert np.abs(lid_error(refine_lids(img, p), hh))[:7].max() > 1.5


def test_the_upper_lid_search_stops_short_of_the_lower_lashes_in_a_narrow_eye():
    """In a narrow eye with dark lashes under the lower lid, the skin-to-lash step below the lower lid
    is stronger than the upper margin's: the upper lid's inward search stops halfway across the opening
    and the lids stay on their margins (searched the full LID_COURSE_SEARCH, the upper lid's points
    near the corners jump onto the lower lashes)."""
    hh, radius, iris = 5.0, 11.0, (CX, CY)
    img = draw_eye(iris, half_height=hh, radius=radius, lower_lashes=True)
    p = face_points(iris, half_height=hh, radius=radius)
    error = np.abs(lid_error(refine_lids(img, p), hh))
    assert error[:7].max() < 0.5 and error.max() < 0.7, error.round(2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eyes, "LID_COURSE_MAX_GAP", 10.0)
        assert np.abs(lid_error(refine_lids(img, p), hh))[:7].max() > 3.0


def test_lids_keep_their_corners_and_x():
    img = draw_eye(TRUE, half_height=11.0, radius=9.0)
    p = face_points(TRUE, half_height=11.0, radius=9.0)
    p[list(topology.LID_POINTS[0][:7]), 1] -= 2.0
    out = refine_lids(img, p)
    lid = list(topology.LID_POINTS[0])
    np.testing.assert_array_equal(out[lid, 0], p[lid, 0])  # only along the normal: here, y
    others = np.ones(len(p), bool)
    others[lid] = False
    np.testing.assert_array_equal(out[others], p[others])  # corners, iris, the empty second eye


@pytest.mark.parametrize("case", [dict(half_height=1.0), dict(flat=True), dict(radius=3.0)])
def test_unreliable_lids_keep_mediapipes_points(case):
    radius = case.get("radius", RADIUS)
    hh = case.get("half_height", 10.0)
    img = draw_eye(TRUE, **case)
    p = face_points(TRUE, half_height=hh, radius=radius)
    p[list(topology.LID_POINTS[0][:7]), 1] -= 1.5
    np.testing.assert_array_equal(refine_lids(img, p), p)


def test_refine_eyes_searches_the_iris_refines_the_lids_then_fits_the_limbus():
    """The lids returned on their course; the limbus read inside the opening of the straight-line lids,
    and its edge points returned (in image pixels) with the eye's row of the limbus points."""
    img = draw_eye(TRUE)
    p = face_points(GUESS, radius=RADIUS * 1.05)
    p[list(topology.LID_POINTS[0][:7]), 1] -= 1.5  # MediaPipe's upper lid too high
    lids = refine_lids(img, refine_iris(img, p))
    shift, scale, edge = limbus_fit(img, refine_lids(img, refine_iris(img, p), course=False), 0)
    out, limbus = refine_eyes(img, p)
    np.testing.assert_array_equal(limbus[0, : len(edge)], edge)
    assert np.isnan(limbus[0, len(edge):]).all() and np.abs(np.linalg.norm(edge - TRUE, axis=1) - RADIUS).max() < 0.5
    np.testing.assert_array_equal(out[list(topology.LID_POINTS[0])], lids[list(topology.LID_POINTS[0])])
    np.testing.assert_allclose(centre(out), centre(lids) + shift, atol=1e-4)
    assert 0 < np.abs(shift).max() < 1.0 and scale == pytest.approx(1.0, abs=0.1)
    np.testing.assert_allclose(centre(out), TRUE, atol=0.2)


@pytest.mark.parametrize("catch, seed", [((1.0, -1.0), 0), ((-1.5, 0.5), 1), ((0.5, 1.5), 2), ((-6.5, 0.5), 3)])
def test_corneal_reflex_found_where_drawn(catch, seed):
    """Over the pupil (where a light at the camera puts it for gazes within about 20 degrees of the
    camera) and over the iris, clear of the pupil's edge."""
    img = draw_eye(TRUE, seed=seed, catch=catch)
    found = corneal_reflexes(img, face_points(TRUE))
    assert np.linalg.norm(found[0] - np.add(TRUE, catch)) < 0.15
    assert np.isnan(found[1]).all()  # eye 1 has no points on the image


@pytest.mark.parametrize("kind", ["none", "glare", "skin"])
def test_no_corneal_reflex_without_a_small_spot_on_the_iris(kind):
    """No reflex drawn; the iris under wide glare; a bright spot on the lid skin just above the iris
    (outside the opening, and not isolated: the skin around it is bright)."""
    img = draw_eye(TRUE, catch=None, glare=kind == "glare",
                   skin_spot=(TRUE[0], CY - 10.0 * (1 - ((TRUE[0] - CX) / HALF_WIDTH) ** 2) - 3.0) if kind == "skin" else None)
    assert np.isnan(corneal_reflexes(img, face_points(TRUE))).all()


@pytest.mark.parametrize("half_height, seen", [(4.5, True), (1.5, False)])
def test_corneal_reflex_in_a_narrow_eye_but_not_in_a_shut_one(half_height, seen):
    """A narrow eye (mid-lid gap 9 px over a 24 px iris, under half its diameter) shows its reflex; a
    nearly shut one (a 3 px slit) is not searched."""
    img = draw_eye((CX, CY), half_height=half_height, catch=(1.0, -1.0))
    found = corneal_reflexes(img, face_points((CX, CY), half_height=half_height))
    if seen:
        assert np.linalg.norm(found[0] - (CX + 1.0, CY - 1.0)) < 0.15
    else:
        assert np.isnan(found).all()


def test_the_iris_is_read_in_every_frame_of_a_fast_jerk_nystagmus(tmp_path):
    """Rendered (the mask's renderer, H.264, MediaPipe): a 3.5 Hz jerk nystagmus at 4 px/mm, under two
    slightly drooping lids, whose fast phase moves the iris 2 px a frame while MediaPipe's iris lags. The
    circle search must land on the limbus in every frame; from the single best cell of its coarse grid
    it once settled on a smaller circle inside the limbus, was refused, and MediaPipe's lagging iris
    stood (a 3-degree spike in the gaze at each fast phase, and the nystagmus unreported in that eye)."""
    from dataclasses import replace

    from dmask.landmarks import LandmarkTracker
    from dmask.swap import mask_geometry
    from dmask.synth import VALIDATION_SPECS, synth_fit, write_synthetic
    from dmask.template import load_template
    from dmask.video import iter_frames

    spec = replace(VALIDATION_SPECS["v4"], seconds=20 / 30, px_per_mm=4.0, size=896)
    path = tmp_path / "jerk.mp4"
    write_synthetic(spec, path)
    template = load_template()
    fit = synth_fit(spec, template)
    depth = topology.LIMBUS_DEPTH_MM / topology.EYEBALL_RADIUS_MM
    errors = []
    with LandmarkTracker(max_faces=1) as tracker:
        for frame in iter_frames(path):
            read = tracker(frame.image)[0].points[list(topology.IRIS_CENTRE), :2]
            m = mask_geometry(fit, frame.index, template)
            drawn = m.eye_centres[:, :2] + m.eye_radius * depth * m.gaze[:, :2]
            errors.append(np.abs(read - drawn).max())
    assert len(errors) == 20 and max(errors) < 0.6, np.round(errors, 2)
