"""Per-frame data on disk (store.FrameStore), the tracks written to it, and the fit streamed over it:
same numbers as in memory."""
import dataclasses
import zipfile
from fractions import Fraction

import numpy as np
import pytest

import dmask.fit
from dmask import topology
from dmask.eyes import LIMBUS_POINTS
from dmask.fit import fit_track
from dmask.landmarks import TrackLinker
from dmask.params import MaskParams, load_params, save_params
from dmask.store import FrameStore
from dmask.template import load_template
from dmask.types import FaceLandmarks, Track

TEMPLATE = load_template()


def test_a_store_reads_back_what_was_written():
    data = np.random.default_rng(0).normal(size=(50, 4, 3)).astype(np.float32)
    store = FrameStore((4, 3))
    store.append(data[:7])
    store.append(data[7])
    store.append_fill(3, np.nan)
    store.append(data[11:])
    data[8:11] = np.nan
    assert store.shape == data.shape and len(store) == 50
    np.testing.assert_array_equal(np.asarray(store), data)
    np.testing.assert_array_equal(store[5], data[5])
    np.testing.assert_array_equal(store[-1], data[-1])
    np.testing.assert_array_equal(store[3:40:2], data[3:40:2])
    idx = np.array([0, 1, 2, 9, 30, 31, 49])
    np.testing.assert_array_equal(store[idx], data[idx])
    mask = np.arange(50) % 3 == 0
    np.testing.assert_array_equal(store[mask], data[mask])
    np.testing.assert_array_equal(store[:, 2, 1], data[:, 2, 1])
    np.testing.assert_array_equal(np.concatenate([rows for _, rows in store.chunks(16)]), data)
    with pytest.raises(IndexError):
        store[50]


def _moving_track(n=75):
    """The template's landmarks in a moving head pose, with jitter and a blink, in image space."""
    rng = np.random.default_rng(1)
    t = np.arange(n)[:, None]
    shapes = np.repeat(TEMPLATE.vertices[None], n, axis=0).copy()
    upper = [p for e in range(2) for p in topology.LID_POINTS[e][: topology.N_UPPER]]
    shapes[30:34, upper, 1] -= 6.0  # a blink
    shapes += rng.normal(scale=0.15, size=shapes.shape)
    angle = np.radians(10 * np.sin(t / 9.0))[:, 0]
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1] = np.cos(angle), np.sin(angle), -1.0
    rot[:, 2, 0], rot[:, 2, 2] = np.sin(angle), -np.cos(angle)
    pts = 3.0 * np.einsum("fij,fvj->fvi", rot, shapes) + np.array([200.0, 180.0, 0.0])
    present = np.ones(n, bool)
    present[[0, 40, 41, 60]] = False  # the face lost now and then
    pts[~present] = np.nan
    return pts.astype(np.float32), present


def _fit_arrays(fit):
    return [fit.pose.scale, fit.pose.rotation, fit.pose.translation, np.asarray(fit.expression), fit.gaze, fit.lids,
            fit.eyeballs]


def test_the_fit_is_the_same_in_memory_on_disk_and_in_any_chunk_size(monkeypatch):
    pts, present = _moving_track()
    in_memory, _ = fit_track(Track(points=pts, present=present), TEMPLATE)
    store = FrameStore(pts.shape[1:])
    store.append(pts)
    monkeypatch.setattr(dmask.fit, "CHUNK_FRAMES", 8)  # chunk boundaries everywhere
    on_disk, _ = fit_track(Track(points=store, present=present), TEMPLATE)
    assert isinstance(on_disk.expression, FrameStore) and isinstance(in_memory.expression, np.ndarray)
    for a, b in zip(_fit_arrays(in_memory), _fit_arrays(on_disk)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # The blink is in the expression of the upper lids (4 frames, a 6 mm drop before the lid model).
    lid = list(topology.LID_POINTS[0][: topology.N_UPPER])
    drop = np.asarray(on_disk.expression)[:, lid, 1].mean(axis=1)
    assert drop[31:33].max() < np.median(drop) - 4.0


def test_long_videos_take_their_statistics_from_a_spread_sample(monkeypatch):
    pts, present = _moving_track()
    full, _ = fit_track(Track(points=pts, present=present), TEMPLATE)
    monkeypatch.setattr(dmask.fit, "MAX_STAT_FRAMES", 12)
    sampled, _ = fit_track(Track(points=pts, present=present), TEMPLATE)
    # Not bit-identical (the neutral and the jitter come from fewer frames) but the same motion.
    np.testing.assert_allclose(sampled.pose.scale, full.pose.scale, rtol=1e-3)
    np.testing.assert_allclose(np.asarray(sampled.expression), np.asarray(full.expression), atol=0.3)
    assert np.abs(sampled.gaze - full.gaze).max() < 1.0


def test_parameters_on_disk_round_trip_through_the_file(tmp_path):
    pts, present = _moving_track()
    store = FrameStore(pts.shape[1:])
    store.append(pts)
    fit, _ = fit_track(Track(points=store, present=present), TEMPLATE)
    params = MaskParams(width=400, height=360, time_base=Fraction(1, 30),
                        pts=np.arange(len(present)), is_image=False, faces=(fit,))
    save_params(tmp_path / "p.npz", params)
    with np.load(tmp_path / "p.npz") as plain:  # a plain numpy archive
        np.testing.assert_array_equal(plain["face0_expression"], np.asarray(fit.expression))
    back = load_params(tmp_path / "p.npz")
    assert isinstance(back.faces[0].expression, FrameStore)
    for a, b in zip(_fit_arrays(fit), _fit_arrays(back.faces[0])):
        np.testing.assert_array_equal(a, b)


def test_a_parameter_file_without_eyeball_offsets_still_loads(tmp_path):
    """Files written before FaceFit.eyeballs existed still load, with no eyeball offsets (the template's place)."""
    pts, present = _moving_track()
    fit, _ = fit_track(Track(points=pts, present=present), TEMPLATE)
    fit = dataclasses.replace(fit, eyeballs=np.full((len(present), 2, 3), 0.5))
    save_params(tmp_path / "p.npz", MaskParams(width=400, height=360, time_base=Fraction(1, 30),
                                               pts=np.arange(len(present)), is_image=False, faces=(fit,)))
    np.testing.assert_array_equal(load_params(tmp_path / "p.npz").faces[0].eyeballs, 0.5)
    with zipfile.ZipFile(tmp_path / "p.npz") as new, zipfile.ZipFile(tmp_path / "old.npz", "w") as old:
        for name in new.namelist():
            if name != "face0_eyeballs.npy":
                old.writestr(name, new.read(name))
    back = load_params(tmp_path / "old.npz").faces[0]
    assert back.eyeballs is None
    np.testing.assert_array_equal(back.gaze, fit.gaze)


def test_a_full_disk_gives_a_clear_error(monkeypatch, tmp_path):
    import errno
    import os

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    store = FrameStore((3,), directory=tmp_path)
    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OSError, match=f"temporary per-frame data in {tmp_path}.*TMPDIR"):
        store.append(np.zeros(3))


def test_track_linker_keeps_each_face_s_limbus_points_by_frame():
    """A face seen in frames 0 and 2 (lost in 1): its track holds that frame's limbus points where it
    was seen, NaN where not; a face without points (None) holds NaN."""
    points = np.zeros((478, 3), np.float32)
    points[:, :2] = np.random.default_rng(0).uniform(100, 200, (478, 2))
    limbus = np.full((2, LIMBUS_POINTS, 2), np.nan, np.float32)
    limbus[0, :5] = [[1.0, 2.0]] * 5
    linker = TrackLinker()
    linker.add([FaceLandmarks(points=points, confidence=1.0, limbus=limbus)])
    linker.add([])
    linker.add([FaceLandmarks(points=points, confidence=1.0)])
    (track,) = linker.tracks()
    got = np.asarray(track.limbus)
    assert got.shape == (3, 2, LIMBUS_POINTS, 2)
    np.testing.assert_array_equal(got[0], limbus)
    assert np.isnan(got[1:]).all()
