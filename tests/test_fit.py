"""Fitting against exact ground truth: faces synthesised from the template with known pose, gaze
per eye and lid positions, projected the way MediaPipe reports landmarks (orthographic image space)."""
from dataclasses import replace

import numpy as np
import pytest

from dmask import geometry, topology
from dmask.fit import (bilateral_filter, clear_of_lids, fill_missing, fit_track, lid_distances, limbus_size,
                       running_median)
from dmask.swap import head_shape, mask_geometry
from dmask.template import canthi_mid, load_template
from dmask.types import Track

# Exact landmarks, as drawn: no landmark stage moves the face's points with the eyes
# (``Template.pitch_following``; test_the_head_pose_read_moved_with_the_eyes_is_taken_back).
TEMPLATE = replace(load_template(), pitch_following=None)
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


def test_the_lids_stand_over_the_corners_in_the_subjects_pose():
    """The head is drawn in a pose (``Template.drawn_rotation``) a few degrees from the subject's, so
    that the landmark stage reads the subject's; the eyeballs and the lid margins are placed about the
    eye corners in the subject's pose: in the image each lid point stands off its corners' midpoint as
    the head-space face turned by the subject's pose puts it. (Turned with the drawn head, the margins,
    ~5 mm in front of their corners, would stand up to 0.4 mm higher or lower in this pose.)"""
    from dmask.synth import SynthSpec, synth_fit

    template = replace(TEMPLATE, pose_gain=np.diag([0.85, 0.85, 0.98]), pose_offset=np.array([0.04, 0.01, 0.0]))
    fit = synth_fit(SynthSpec(seconds=1 / 30, head=(10.0, 8.0, 3.0), ptosis_mm=(1.0, 0.0)), template)
    geo = mask_geometry(fit, 0, template)
    s, rot, t = fit.pose.scale[0], fit.pose.rotation[0], fit.pose.translation[0]
    mid = canthi_mid(TEMPLATE.vertices)
    corners = geometry.apply_pose(mid, s, geo.rotation, t)  # drawn with the head
    shape = head_shape(fit, 0, template)
    for e in range(2):
        lid = list(topology.LID_POINTS[e])
        np.testing.assert_allclose(geo.vertices[lid] - corners[e], s * (shape[lid] - mid[e]) @ rot.T, atol=1e-6)
        with_head = s * (shape[lid] - mid[e]) @ geo.rotation.T
        assert np.abs(with_head - s * (shape[lid] - mid[e]) @ rot.T)[:, 1].max() / s > 0.1


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


def test_the_raw_gaze_is_the_gaze_before_the_temporal_filter():
    """A 3 Hz pendular nystagmus from exact landmarks with 0.15 px of iris jitter: the fit's raw gaze
    (what the nystagmus is measured on) is the gaze that the temporal filter then smooths to draw the
    mask's eyes, and it keeps the beat's whole swing."""
    from dmask.synth import SynthNystagmus, SynthSpec, synth_track

    track, truth = synth_track(SynthSpec(seconds=2.0, nystagmus=SynthNystagmus(3.0, 2.0, "pendular")), TEMPLATE)
    jitter = np.random.default_rng(0).normal(0, 0.15, (track.n_frames, 2, 2))
    points = track.points.copy()
    for e in range(2):
        rows = [topology.IRIS_CENTRE[e], *topology.IRIS_RING[e]]
        points[:, rows, :2] += jitter[:, e, None].astype(np.float32)
    fit, _ = fit_track(Track(points=points, present=track.present), TEMPLATE)
    np.testing.assert_allclose(fit.gaze, bilateral_filter(fit.raw_gaze))

    def swing(g):  # peak-to-peak of the 3 Hz sinusoid fitted to each eye's yaw
        t = truth.times
        a = np.stack([np.ones_like(t), np.cos(6 * np.pi * t), np.sin(6 * np.pi * t)], axis=1)
        c = np.linalg.lstsq(a, g[:, :, 0], rcond=None)[0]
        return 2 * np.hypot(c[1], c[2])

    np.testing.assert_allclose(swing(fit.raw_gaze), swing(truth.gaze), rtol=0.05)
    assert np.all(swing(fit.gaze) < 0.95 * swing(truth.gaze))


def test_a_pose_that_follows_a_nystagmus_beat_takes_little_off_the_gaze():
    """MediaPipe's whole mesh follows fast eye movements by 15-25 % of the iris's travel (measured on
    the rendered pendular clip). Here the mesh follows a 3 Hz, 2 degree pendular beat by 20 %, under a
    common jitter of 0.1 px (real videos' pose jitter is larger still): read against each frame's own
    pose, the beat would lose those 20 %; against the filtered pose (``fit.POSE_FILTER_HALF_WIDTH``),
    less than half of that on average over three draws of the jitter. Without any jitter too: the
    filter takes the pose's jitter as at least ``fit.POSE_MIN_JITTER_DEG`` and ``POSE_MIN_JITTER_MM``
    (the beat keeps 95 %; 80 % were it taken as none)."""
    from dmask.synth import SynthNystagmus, SynthSpec, synth_track

    track, truth = synth_track(SynthSpec(seconds=3.0, nystagmus=SynthNystagmus(3.0, 2.0, "pendular")), TEMPLATE)
    t = truth.times
    a = np.stack([np.ones_like(t), np.cos(6 * np.pi * t), np.sin(6 * np.pi * t)], axis=1)

    def swing(g):
        return 2 * np.hypot(*np.linalg.lstsq(a, g[:, :, 0], rcond=None)[0][1:])

    gains = []
    for seed in range(4):
        points = track.points.astype(np.float64)
        iris_x = points[:, list(topology.IRIS_CENTRE), 0].mean(axis=1)
        points[:, : topology.N_MESH, 0] += 0.2 * (iris_x - iris_x.mean())[:, None]
        if seed:
            points[:, :, :2] += np.random.default_rng(seed).normal(0, 0.1, (len(points), 1, 2))
        fit, _ = fit_track(Track(points=points.astype(np.float32), present=track.present), TEMPLATE)
        gains.append(swing(fit.raw_gaze) / swing(truth.gaze))
    assert np.min(gains[0]) > 0.9, gains[0]  # no jitter
    assert np.mean(gains[1:]) > 0.9 and np.min(gains[1:]) > 0.85, gains  # 0.80 against each frame's pose


def test_the_iris_is_placed_on_its_limbus_edge_points_as_the_eyeball_model_sees_it():
    """Exact landmarks of a turned head and eyes (25 and 22 degrees aside from the camera, 3 up) whose
    iris centres are given 0.8 px low, as a circle through the lower arcs of a foreshortened limbus
    reads them, with the lower half of each limbus's edge points: the gaze is fitted to the eyeball
    model's limbus through those points and comes back exact; without the points (the circle's centre
    taken as it is) the pitch is 2 degrees off."""
    from dmask.synth import SynthSpec, synth_fit, synth_track

    spec = SynthSpec(seconds=0.5, head=(10.0, -3.0, 0.0), fixations=((0.0, 12.0, 6.0),), deviation=(3.0, 0.0))
    track, truth = synth_track(spec, TEMPLATE)
    fit = synth_fit(spec, TEMPLATE)
    pose, n = fit.pose, fit.n_frames
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    limbus = np.full((n, 2, 48, 2), np.nan, np.float32)
    points = track.points.copy()
    for e in range(2):
        g = geometry.gaze_vector(fit.gaze[:, e])  # (n, 3) head space
        u = np.cross(g, [0.0, 0.0, 1.0])
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        v = np.cross(g, u)
        centre = TEMPLATE.eye_centres()[e] + topology.LIMBUS_DEPTH_MM * g
        ring = centre[:, None] + topology.IRIS_DIAMETER_MM / 2 * (np.cos(angles)[None, :, None] * u[:, None]
                                                                  + np.sin(angles)[None, :, None] * v[:, None])
        image = geometry.apply_pose(ring, pose.scale, pose.rotation, pose.translation)  # (n, 48, 3)
        centre_image = geometry.apply_pose(centre[:, None], pose.scale, pose.rotation, pose.translation)[:, 0]
        below = image[..., 1] > centre_image[:, None, 1] + 1.0
        for i in range(n):
            limbus[i, e, : below[i].sum()] = image[i, below[i], :2]
        points[:, [topology.IRIS_CENTRE[e], *topology.IRIS_RING[e]], 1] += 0.8
    with_points = fit_track(Track(points=points, present=track.present, limbus=limbus), TEMPLATE)[0]
    without = fit_track(Track(points=points, present=track.present), TEMPLATE)[0]
    np.testing.assert_allclose(with_points.raw_gaze, truth.gaze, atol=0.05)
    assert np.abs(without.raw_gaze[..., 1] - truth.gaze[..., 1]).min() > 1.5


def test_the_limbus_size_is_the_one_its_edge_points_fit():
    """Lower arcs of limbi drawn at 2 px/mm, searched from a scale 3 % small (as MediaPipe's iris reads it
    on some clips): the size that fits them is found within 0.2 %; the iris placed with the scale as
    given sits 0.2 px or more off in height, with the size found within 0.02 px."""
    from dmask.geometry import limbus_centres

    rng = np.random.default_rng(0)
    n, s = 40, 2.0
    depth, radius = s * topology.LIMBUS_DEPTH_MM, s * topology.IRIS_DIAMETER_MM / 2
    eyeballs = np.repeat(np.array([[[100.0, 100.0], [164.0, 100.0]]]), n, axis=0)
    turn = rng.uniform(-0.3, 0.3, (n, 2, 2))  # sin of the turn, x and y
    iris = eyeballs + depth * turn
    angles = np.linspace(0.2, np.pi - 0.2, 24)  # the lower arc (image y down)
    points = np.zeros((n, 2, 24, 2))
    for i in range(n):
        for e in range(2):
            g = np.array([turn[i, e, 0], turn[i, e, 1], np.sqrt(1 - (turn[i, e] ** 2).sum())])
            u = np.cross(g, [0.0, 1.0, 0.0])
            u /= np.linalg.norm(u)
            v = np.cross(g, u)
            ring = radius * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
            points[i, e] = iris[i, e] + ring[:, :2] * np.sign(ring[:, 1].mean())  # the arc below (image y down)
    px_per_mm = np.full(n, 0.97 * s)
    factor = limbus_size(points, iris + 0.3, eyeballs, px_per_mm)
    assert factor * 0.97 == pytest.approx(1.0, abs=0.002)
    for f, limit in ((1.0, None), (factor, 0.02)):
        placed = np.stack([limbus_centres(points[:, e], iris[:, e] + 0.3, eyeballs[:, e],
                                          f * px_per_mm * topology.LIMBUS_DEPTH_MM,
                                          f * px_per_mm * topology.IRIS_DIAMETER_MM / 2) for e in range(2)], axis=1)
        height = np.abs(placed[..., 1] - iris[..., 1])
        if limit is None:
            assert np.median(height) > 0.2
        else:
            assert height.max() < limit


def test_edge_points_near_the_lids_are_left_out_of_the_limbus_fit():
    """A limbus seen straight on (2 px/mm) whose lower part the lower lid hides, 0.8 radii below the iris
    centre: its edge points within 0.25 radii of the lid read 0.3 px inside, as the synthetic clips'
    points near the lids do. Placed by the points clear of the lids (``clear_of_lids``: all round the
    top, which its lid leaves clear, and down to 33 degrees below the centre), the iris stands where it
    is; with all of them it rises 0.07 px."""
    from dmask.geometry import limbus_centres

    radius = 2.0 * topology.IRIS_DIAMETER_MM / 2
    depth = np.full(1, 2.0 * topology.LIMBUS_DEPTH_MM)
    iris = np.array([[[100.0, 100.0], [164.0, 100.0]]])
    lid_y = 100.0 + 0.8 * radius  # image y down: below the centre
    # Each eye's lid ring: outer corner, upper lid, inner corner, then a flat lower lid back.
    shape = np.array([[-2.5, 0.0], [0.0, -2.0], [2.5, 0.0], [1.5, 0.8], [-1.5, 0.8]]) * radius
    lids = iris[:, :, None] + shape[None, None]  # (1, 2, 5, 2)
    angles = np.radians(np.arange(-175.0, 180.0, 10.0))
    on = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius
    shown = on[:, 1] < lid_y - 100.0
    near_lid = lid_y - 100.0 - on[:, 1] < 0.25 * radius
    reach = np.where(near_lid, radius - 0.3, radius)[shown]
    ring = on[shown] / radius * reach[:, None]
    points = iris[:, :, None] + ring[None, None]  # (1, 2, m, 2)
    clear = clear_of_lids(points, lid_distances(points, lids), np.full(1, radius))
    assert np.isnan(clear[0, 0, near_lid[shown], 0]).all() and np.isfinite(clear[0, 0, ~near_lid[shown]]).all()
    elevation = np.degrees(np.arctan2(np.abs(ring[:, 1]), np.abs(ring[:, 0])))
    assert elevation[~near_lid[shown]].max() > 80  # the upper arc, far from its lid, is kept
    for chosen, moves in ((clear, False), (points, True)):
        placed = limbus_centres(chosen[:, 0], iris[:, 0] + 0.5, iris[:, 0], depth, np.full(1, radius))
        height = abs(placed[0, 1] - iris[0, 0, 1])
        assert (height > 0.05) if moves else (height < 0.01), height


def test_the_head_pose_read_moved_with_the_eyes_is_taken_back():
    """The template's face points read moved with the eyes (``Template.pitch_following``, as
    ``synth.synth_track`` poses them), under a 1 Hz vertical pendular movement of 6 degrees with the
    head bent down: the fit takes the move off the pose and keeps the movement (within 3 %); without
    it the movement reads 9 % short (0.91), as the eyeball centres rise and fall with the face. (Of a
    faster beat the pose filter holds part of the move out by itself, ``fit.POSE_MIN_JITTER_DEG``: of a
    2 Hz jerk nystagmus 4.5 % is lost without the following taken off.)"""
    from dmask.synth import SynthNystagmus, SynthSpec, synth_track

    template = load_template()
    spec = SynthSpec(seconds=3.0, head=(-3.0, -8.0, -3.0), nystagmus=SynthNystagmus(1.0, 6.0, "pendular", "vertical"))
    track, truth = synth_track(spec, template)

    def gain(t):
        g = fit_track(track, t)[0].raw_gaze[..., 1]
        x = truth.gaze[..., 1] - truth.gaze[..., 1].mean(axis=0)
        return ((g - g.mean(axis=0)) * x).sum(axis=0) / (x * x).sum(axis=0)

    np.testing.assert_allclose(gain(template), 1.0, atol=0.03)
    assert gain(replace(template, pitch_following=None)).max() < 0.95


def test_fill_missing_holds_the_last_good_state():
    observed = np.array([False, True, True, False, False, True])
    values = np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(fill_missing(values, observed), [10, 10, 20, 20, 20, 30])


def reflex_case(corner_shift_mm=(0.0, 0.0), light_shift_mm=(0.0, 0.0), reflex_share=1.0, lid_drop_mm=0.0,
                mesh_drift_mm=0.0, stray=()):
    """A turning head whose eyes look about, with the corneal reflexes of a light at the camera.
    The right eye's corners are read corner_shift_mm aside (head x, y: MediaPipe's corners drift) and
    its upper lid is lowered by lid_drop_mm; the reflexes are seen light_shift_mm (image x, y; mm) from
    where a light at the camera puts them (a light beside or above the camera), in the first
    reflex_share of the frames. The whole mesh but the irises is read up to mesh_drift_mm off, up and
    down and side to side, slowly over the clip (the head pose misread). In the frames `stray` the reflex
    found is another light's, 3 mm aside. Returns the track and the true gaze."""
    n = 90
    t = np.linspace(0, 2 * np.pi, n)[:, None]
    gaze = np.stack([np.hstack([12 * np.sin(t), 6 * np.cos(t)]), np.hstack([8 + 12 * np.sin(t), 6 * np.cos(t)])], axis=1)
    rots = np.stack([pose_for(*a) for a in np.hstack([12 * np.sin(t), 8 * np.cos(t), 4 * np.sin(2 * t)])])
    scale, trans = np.full(n, 3.0), np.tile([240.0, 200.0, 100.0], (n, 1))
    centres = TEMPLATE.eye_centres()
    shapes, reflexes = [], np.full((n, 2, 2), np.nan, np.float32)
    for i, g in enumerate(gaze):
        shape = synthetic_face(g, lid_drop_mm=(lid_drop_mm, 0.0))
        shape[[topology.OUTER_CORNER[0], topology.INNER_CORNER[0]], :2] += corner_shift_mm
        shapes.append(shape)
        if i < reflex_share * n:
            cornea = centres + topology.CORNEA_OFFSET_MM * geometry.gaze_vector(g)
            reflexes[i] = geometry.apply_pose(cornea, scale[i], rots[i], trans[i])[:, :2]
            reflexes[i] += scale[i] * np.asarray(light_shift_mm)
            if i in stray:
                reflexes[i] += scale[i] * np.array([3.0, -3.0])
    track = make_track(shapes, scale, rots, trans)
    points = track.points.copy()
    mesh = np.setdiff1d(np.arange(points.shape[1]), [*topology.IRIS_CENTRE, *np.ravel(topology.IRIS_RING)])
    drift = mesh_drift_mm * scale[:, None] * np.hstack([np.sin(t / 2 + 1.0), np.cos(t / 2)])  # (n, 2) pixels
    points[:, mesh, :2] += drift[:, None].astype(np.float32)
    return Track(points=points, present=track.present, reflexes=reflexes), gaze


def gaze_error(fit, gaze, k, eye=0):
    """Median |fitted - true| gaze of one eye, degrees; k: 0 yaw, 1 pitch."""
    return np.median(np.abs(fit.gaze[:, eye, k] - gaze[:, eye, k]))


def test_corneal_reflex_anchors_an_eye_whose_corners_are_read_aside():
    track, gaze = reflex_case(corner_shift_mm=(0.6, -0.6))
    without, _ = fit_track(Track(points=track.points, present=track.present), TEMPLATE)
    with_reflex, _ = fit_track(track, TEMPLATE)
    # 0.6 mm of corner drift is about 3 degrees
    assert gaze_error(without, gaze, 0) > 2.0 and gaze_error(without, gaze, 1) > 2.0
    assert gaze_error(with_reflex, gaze, 0) < 0.3 and gaze_error(with_reflex, gaze, 1) < 0.3
    # the other eye, whose corners are read right, agrees with its corner anchor (the mm scale moves a
    # little with the first eye's gaze; the filtered pose, its jitter taken as at least
    # fit.POSE_MIN_JITTER_DEG, is up to 0.08 degrees off this noiseless, fast-turning head's)
    np.testing.assert_allclose(with_reflex.gaze[:, 1], without.gaze[:, 1], atol=0.03)
    # the mask's eyeball moves as far from the template's corner anchor as the reflex moved the subject's
    np.testing.assert_allclose(with_reflex.eyeballs, np.broadcast_to([[-0.6, 0.6, 0.0], [0.0, 0.0, 0.0]], (90, 2, 3)),
                               atol=0.05)
    np.testing.assert_array_equal(without.eyeballs, 0.0)


def test_the_anchor_changes_the_gaze_not_where_the_mask_draws_the_iris():
    """Corners read 0.6 mm aside: with the reflex anchor the gaze differs by about 3 degrees from the
    corners' anchor, yet the mask draws each iris in the same place relative to its face (so its lids
    stand over the iris as the subject's do): the mask's eyeball moves with the anchor."""
    track, _ = reflex_case(corner_shift_mm=(0.6, -0.6))
    without, _ = fit_track(Track(points=track.points, present=track.present), TEMPLATE)
    with_reflex, _ = fit_track(track, TEMPLATE)

    def drawn_iris(fit, i):
        geo = mask_geometry(fit, i, TEMPLATE)
        return geo.eye_centres + fit.pose.scale[i] * topology.LIMBUS_DEPTH_MM * geo.gaze, fit.pose.scale[i]

    for i in range(0, track.n_frames, 10):
        (a, s), (b, _) = drawn_iris(without, i), drawn_iris(with_reflex, i)
        assert np.abs(with_reflex.gaze[i, 0] - without.gaze[i, 0]).max() > 1.5
        np.testing.assert_allclose(b[:, :2] / s, a[:, :2] / s, atol=0.05)  # mm


def test_the_reflex_keeps_the_eyeballs_in_place_where_the_head_pose_is_misread():
    """The mesh, and with it the head pose, read up to 0.6 mm off the eyes, slowly: an eyeball fixed in
    the head moves with it (about 3 degrees of gaze); placed by the reflex frame by frame, it stays."""
    track, gaze = reflex_case(mesh_drift_mm=0.6)
    without, _ = fit_track(Track(points=track.points, present=track.present), TEMPLATE)
    with_reflex, _ = fit_track(track, TEMPLATE)
    for e in range(2):
        assert gaze_error(without, gaze, 0, e) > 2.0 and gaze_error(without, gaze, 1, e) > 2.0
        assert gaze_error(with_reflex, gaze, 0, e) < 0.3 and gaze_error(with_reflex, gaze, 1, e) < 0.3


def test_another_lights_reflex_for_a_while_is_not_followed():
    track, gaze = reflex_case(corner_shift_mm=(0.6, -0.6))
    stray, _ = reflex_case(corner_shift_mm=(0.6, -0.6), stray=range(30, 50))
    clean, _ = fit_track(track, TEMPLATE)
    fit, _ = fit_track(stray, TEMPLATE)
    np.testing.assert_allclose(fit.gaze, clean.gaze, atol=0.3)
    assert np.median(np.abs(fit.gaze[:, 0] - gaze[:, 0])) < 0.3


def test_running_median_takes_the_rows_near_each_frame_and_fills_between():
    values = np.array([0.0, 1.0, 2.0, 100.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, -50.0, 11.0])
    rows = np.ones(12, bool)
    rows[[3, 10]] = False  # outliers not to be used
    rows[6:9] = False  # a gap
    out = running_median(values, rows, 3)
    # each frame: the median of the rows among itself and its two neighbours; frame 7 has none within
    # reach and lies between its neighbours' medians
    np.testing.assert_allclose(out, [0.5, 1.0, 1.5, 3.0, 4.5, 4.5, 5.0, 7.0, 9.0, 9.0, 10.0, 11.0])
    # a median, not a mean: one wild row among five does not move it
    wild = np.array([1.0, 1.0, 50.0, 1.0, 1.0])
    np.testing.assert_allclose(running_median(wild, np.ones(5, bool), 5)[2], 1.0)


def test_under_a_low_lid_the_reflex_sets_the_height_unless_the_lid_covers_the_iris_centre():
    """With the upper lid 2.5 mm lower (MRD1 about 1.5 mm) the reflex still places the eye in height;
    4.5 mm lower (the lid under the iris centre in every frame, below REFLEX_MIN_MRD1_MM) it places
    the eye side to side only, and its height stays on the corners."""
    track, gaze = reflex_case(corner_shift_mm=(0.6, -0.6), lid_drop_mm=2.5)
    with_reflex, _ = fit_track(track, TEMPLATE)
    assert gaze_error(with_reflex, gaze, 0) < 0.3 and gaze_error(with_reflex, gaze, 1) < 0.3
    np.testing.assert_allclose(with_reflex.eyeballs[:, 0], np.broadcast_to([-0.6, 0.6, 0.0], (90, 3)), atol=0.05)

    track, gaze = reflex_case(corner_shift_mm=(0.6, -0.6), lid_drop_mm=4.5)
    without, _ = fit_track(Track(points=track.points, present=track.present), TEMPLATE)
    with_reflex, _ = fit_track(track, TEMPLATE)
    assert gaze_error(with_reflex, gaze, 0) < 0.3
    assert gaze_error(with_reflex, gaze, 1) == pytest.approx(gaze_error(without, gaze, 1), abs=0.3)
    assert gaze_error(with_reflex, gaze, 1) > 2.0
    np.testing.assert_allclose(with_reflex.eyeballs[:, 0], np.broadcast_to([-0.6, 0.0, 0.0], (90, 3)), atol=0.05)


@pytest.mark.parametrize("light_shift_mm, reflex_share", [((-1.5, 1.5), 1.0), ((0.0, 0.0), 0.05)])
def test_corneal_reflex_is_not_used_from_a_light_aside_or_when_rarely_seen(light_shift_mm, reflex_share):
    """A light beside and below the camera moves the reflex 1.5 mm each way, the anchor twice that
    (beyond REFLEX_MAX_SHIFT_MM); a reflex seen in 5 % of the frames is too rare."""
    track, _ = reflex_case(corner_shift_mm=(0.6, -0.6), light_shift_mm=light_shift_mm, reflex_share=reflex_share)
    without, _ = fit_track(Track(points=track.points, present=track.present), TEMPLATE)
    with_reflex, _ = fit_track(track, TEMPLATE)
    np.testing.assert_allclose(with_reflex.gaze, without.gaze, atol=1e-6)
