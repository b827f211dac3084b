"""Fitting against exact ground truth: faces synthesised from the template with known pose, gaze
per eye and lid positions, projected the way MediaPipe reports landmarks (orthographic image space)."""
import numpy as np
import pytest

from dmask import geometry, topology
from dmask.fit import bilateral_filter, fill_missing, fit_track
from dmask.swap import head_shape, mask_geometry
from dmask.template import canthi_mid, load_template
from dmask.types import Track

TEMPLATE = load_template()
FRONTAL = geometry.FRONTAL


def synthetic_face(gaze_deg, lid_drop_mm=(0.0, 0.0)):
    """Head-space template face with each iris turned to gaze_deg[eye] = (yaw, pitch) and the upper
    lids lowered by lid_drop_mm[eye]."""
    shape = TEMPLATE.landmarks()  # as the landmark stage reports the template
    mids = canthi_mid(shape)
    for e in range(2):
        centre = mids[e] + TEMPLATE.iris_offset()[e] - [0, 0, topology.EYEBALL_RADIUS_MM]
        g = geometry.gaze_vector(np.asarray(gaze_deg[e], float))
        iris = [topology.IRIS_CENTRE[e], *topology.IRIS_RING[e]]
        shape[iris] += centre + topology.LIMBUS_DEPTH_MM * g - shape[topology.IRIS_CENTRE[e]]
        upper = list(topology.LID_POINTS[e][: topology.N_UPPER])
        shape[upper, 1] -= lid_drop_mm[e]
    return shape


def pose_for(yaw, pitch, roll):
    rel = geometry.vector_to_rotation(np.radians([pitch, 0, 0])) @ geometry.vector_to_rotation(
        np.radians([0, yaw, 0])) @ geometry.vector_to_rotation(np.radians([0, 0, roll]))
    return FRONTAL @ rel


def make_track(shapes, scale, rots, trans):
    pts = np.stack([geometry.apply_pose(s, sc, r, t) for s, sc, r, t in zip(shapes, scale, rots, trans)])
    return Track(points=pts.astype(np.float32), present=np.ones(len(shapes), bool))


def test_known_pose_and_per_eye_gaze_are_recovered():
    # Smooth motion over 3 s at 30 fps, as in a video; the eyes move differently (a strabismus).
    n = 90
    t = np.linspace(0, 2 * np.pi, n)[:, None]
    gaze = np.stack([
        np.hstack([25 * np.sin(t), 10 * np.cos(t)]),
        np.hstack([-5 + 15 * np.sin(2 * t), 12 * np.sin(t)]),
    ], axis=1)
    shapes = [synthetic_face(g) for g in gaze]
    angles = np.hstack([15 * np.sin(t), 10 * np.cos(t), 8 * np.sin(3 * t)])
    rots = np.stack([pose_for(*a) for a in angles])
    scale = 3.0 + np.sin(t[:, 0])
    trans = np.hstack([200 + 50 * np.sin(t), 180 + 30 * np.cos(t), 100 + 0 * t])
    fit, identity = fit_track(make_track(shapes, scale, rots, trans), TEMPLATE)
    np.testing.assert_allclose(fit.pose.scale, scale, rtol=1e-3)
    np.testing.assert_allclose(fit.pose.translation, trans, atol=0.5)
    err = np.degrees([np.linalg.norm(geometry.rotation_to_vector(a.T @ b)) for a, b in zip(fit.pose.rotation, rots)])
    assert err.max() < 0.2
    # Gaze per eye within 1 degree, each eye on its own (the eyes differ: a strabismus).
    assert np.abs(fit.gaze - gaze).max() < 1.0
    assert identity.mm_per_unit == pytest.approx(1.0, rel=0.02)


def test_constant_lid_droop_is_carried_absolutely_in_mm():
    n = 10
    shapes = [synthetic_face([(0, 0), (0, 0)], lid_drop_mm=(2.5, 0.0)) for _ in range(n)]
    fit, _ = fit_track(make_track(shapes, np.full(n, 3.0), np.stack([FRONTAL] * n), np.full((n, 3), 200.0)), TEMPLATE)
    reference = synthetic_face([(0, 0), (0, 0)])
    mid = canthi_mid(reference)
    up = topology.N_UPPER
    droop = [(reference[list(topology.LID_POINTS[e][:up]), 1] - mid[e, 1]) - fit.lids[:, e, :up] for e in range(2)]
    # The right upper lid sits 2.5 mm lower than the template's in every frame; the left does not.
    np.testing.assert_allclose(droop[0], 2.5, atol=0.05)
    np.testing.assert_allclose(droop[1], 0.0, atol=0.05)
    # And the mask shows that droop on the template's eye (away from the corners, where a 2.5 mm
    # droop brings the lids together and they are drawn closed).
    mask = head_shape(fit, 0, TEMPLATE)
    right_upper = list(topology.LID_POINTS[0][1 : up - 1])
    np.testing.assert_allclose(TEMPLATE.vertices[right_upper, 1] - mask[right_upper, 1], 2.5, atol=0.05)


def test_mask_geometry_puts_the_eyes_where_the_gaze_says():
    n = 3
    gaze = np.array([[[20.0, 0.0], [-10.0, 5.0]]] * n)
    shapes = [synthetic_face(g) for g in gaze]
    fit, _ = fit_track(make_track(shapes, np.full(n, 2.0), np.stack([FRONTAL] * n), np.full((n, 3), 150.0)), TEMPLATE)
    geo = mask_geometry(fit, 1, TEMPLATE)
    head_gaze = geo.gaze @ FRONTAL  # back to head space (rotation is FRONTAL)
    np.testing.assert_allclose(geometry.gaze_angles(head_gaze), gaze[0], atol=1.0)
    assert geo.eye_radius == pytest.approx(2.0 * topology.EYEBALL_RADIUS_MM)


def test_a_clip_that_always_smiles_keeps_its_smile_on_the_mask():
    """With no neutral frame at all, the smile must not become the 'neutral' and vanish."""
    smile = TEMPLATE.vertices.copy()
    corners = list(topology.MOUTH_CORNERS)
    smile[corners, 1] += 6.0  # corners up
    smile[corners, 0] += np.array([-5.0, 5.0])  # and apart
    n = 12
    track = make_track([smile] * n, np.full(n, 3.0), np.stack([FRONTAL] * n), np.full((n, 3), 200.0))
    fit, _ = fit_track(track, TEMPLATE)
    lift = fit.expression[:, corners, 1].mean()
    assert lift > 4.0, f"mouth corners lifted {lift:.1f} mm on the mask (6 on the face)"


def test_bilateral_filter_smooths_jitter_but_keeps_a_three_frame_blink():
    rng = np.random.default_rng(2)
    opening = np.full(200, 10.0) + rng.normal(0, 0.2, 200)
    opening[100:103] = [5.0, 1.0, 5.0]  # a 3-frame blink
    out = bilateral_filter(opening)
    assert out[101] < 1.6  # the closed frame stays closed
    assert np.std(out[:90]) < 0.7 * np.std(opening[:90])  # jitter reduced


def test_bilateral_filter_keeps_a_3hz_nystagmus_beat():
    rng = np.random.default_rng(3)
    t = np.arange(300) / 30.0
    beat = 2.0 * np.sin(2 * np.pi * 3.0 * t)  # 3 Hz, 2 degrees, at 30 fps
    out = bilateral_filter(beat + rng.normal(0, 0.2, t.size))
    assert np.std(out) / np.std(beat) > 0.95
    assert np.sqrt(np.mean((out - beat) ** 2)) < 1.2 * 0.2  # about the raw jitter: a fast beat is kept, not smoothed


def test_fill_missing_holds_the_last_good_state():
    observed = np.array([False, True, True, False, False, True])
    values = np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(fill_missing(values, observed), [10, 10, 20, 20, 20, 30])


def reflex_case(corner_shift_mm=0.0, light_shift_mm=0.0, reflex_share=1.0):
    """A turning head whose eyes look about, with the corneal reflexes of a light at the camera.
    The right eye's corners are read corner_shift_mm to the side (head x, as MediaPipe's corners
    drift); the reflexes are seen light_shift_mm (image x, mm) from where a light at the camera puts
    them (a light beside the camera), in the first reflex_share of the frames. Returns the track and
    the true gaze."""
    n = 90
    t = np.linspace(0, 2 * np.pi, n)[:, None]
    gaze = np.stack([np.hstack([12 * np.sin(t), 6 * np.cos(t)]), np.hstack([8 + 12 * np.sin(t), 6 * np.cos(t)])], axis=1)
    rots = np.stack([pose_for(*a) for a in np.hstack([12 * np.sin(t), 8 * np.cos(t), 4 * np.sin(2 * t)])])
    scale, trans = np.full(n, 3.0), np.tile([240.0, 200.0, 100.0], (n, 1))
    centres = TEMPLATE.eye_centres()
    shapes, reflexes = [], np.full((n, 2, 2), np.nan, np.float32)
    for i, g in enumerate(gaze):
        shape = synthetic_face(g)
        shape[[topology.OUTER_CORNER[0], topology.INNER_CORNER[0]], 0] += corner_shift_mm
        shapes.append(shape)
        if i < reflex_share * n:
            cornea = centres + topology.CORNEA_OFFSET_MM * geometry.gaze_vector(g)
            reflexes[i] = geometry.apply_pose(cornea, scale[i], rots[i], trans[i])[:, :2] + [scale[i] * light_shift_mm, 0]
    track = make_track(shapes, scale, rots, trans)
    return Track(points=track.points, present=track.present, reflexes=reflexes), gaze


def test_corneal_reflex_anchors_an_eye_whose_corners_are_read_aside():
    track, gaze = reflex_case(corner_shift_mm=0.6)
    without, _ = fit_track(Track(points=track.points, present=track.present), TEMPLATE)
    with_reflex, _ = fit_track(track, TEMPLATE)
    err = lambda fit, k: np.median(np.abs(fit.gaze[:, 0, k] - gaze[:, 0, k]))
    assert err(without, 0) > 2.0  # 0.6 mm of corner drift is about 3 degrees
    assert err(with_reflex, 0) < 0.3 and err(with_reflex, 1) < 0.3
    # the other eye, whose corners are read right, agrees with its corner anchor (the mm scale moves a
    # little with the first eye's gaze)
    np.testing.assert_allclose(with_reflex.gaze[:, 1], without.gaze[:, 1], atol=0.01)


@pytest.mark.parametrize("light_shift_mm, reflex_share", [(-1.5, 1.0), (0.0, 0.05)])
def test_corneal_reflex_is_not_used_from_a_light_aside_or_when_rarely_seen(light_shift_mm, reflex_share):
    """A light beside the camera moves the reflex 1.5 mm, the anchor twice that (beyond
    REFLEX_MAX_SHIFT_MM); a reflex seen in 5 % of the frames is too rare."""
    track, _ = reflex_case(corner_shift_mm=0.6, light_shift_mm=light_shift_mm, reflex_share=reflex_share)
    without, _ = fit_track(Track(points=track.points, present=track.present), TEMPLATE)
    with_reflex, _ = fit_track(track, TEMPLATE)
    np.testing.assert_allclose(with_reflex.gaze, without.gaze, atol=1e-6)
