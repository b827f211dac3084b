"""The audit: statistics on hand-computed cases, baselines, and a small real audit run."""
import json
import math
import shutil

import numpy as np
import pytest

from dmask.audit import stats
from dmask.audit.baselines import BASELINES, EyeBar, EyeCrop, GaussianBlur, Identity, Pixelate, make_anonymizer

from .conftest import DATA, data_video

# --- statistics ---------------------------------------------------------------------------------


def test_icc_matches_shrout_and_fleiss_table_2():
    # Shrout & Fleiss (1979), Table 2: 6 targets, 4 judges; they give ICC(2,1) = .29.
    y = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    assert stats.icc_2_1(y) == pytest.approx(0.2898, abs=1e-4)


def test_icc_by_hand_penalises_an_offset():
    # Rows 1,3,5 rated one higher by the second rater: BMS = 8, JMS = 1.5, EMS = 0,
    # ICC = 8 / (8 + 0 + 2 * 1.5 / 3) = 8 / 9; identical raters give 1.
    assert stats.icc_2_1([[1, 2], [3, 4], [5, 6]]) == pytest.approx(8 / 9)
    assert stats.icc_2_1([[1, 1], [3, 3], [5, 5]]) == pytest.approx(1.0)
    # NaN rows are dropped; fewer than two rows leave nothing to say.
    assert stats.icc_2_1([[1, 2], [3, 4], [5, 6], [np.nan, 1]]) == pytest.approx(8 / 9)
    assert math.isnan(stats.icc_2_1([[1, 2]]))
    with pytest.raises(ValueError):
        stats.icc_2_1([1, 2, 3])


def test_bland_altman_by_hand():
    # d = b - a = [1, 0, 1, 2]: bias 1, sd = sqrt(2 / 3), limits 1 -/+ 1.96 sd, mean |d| = 1.
    ba = stats.bland_altman([1, 2, 3, 4, np.nan], [2, 2, 4, 6, 3])
    sd = math.sqrt(2 / 3)
    assert (ba.n, ba.bias, ba.mean_abs_diff) == (4, pytest.approx(1.0), pytest.approx(1.0))
    assert ba.sd == pytest.approx(sd)
    assert (ba.lower, ba.upper) == (pytest.approx(1 - 1.96 * sd), pytest.approx(1 + 1.96 * sd))
    assert stats.bland_altman([], []).n == 0
    with pytest.raises(ValueError):
        stats.bland_altman([1, 2], [1])


def test_event_f1_by_hand():
    # Reference blinks at 10-12, 30-33, 60-61; found 11-13 (overlaps), 35-36 (2 frames from 30-33),
    # 80-82 (nothing). tolerance 0: 1 match -> F1 = 2 / 6; tolerance 2: 2 matches -> F1 = 4 / 6.
    ref, got = [(10, 12), (30, 33), (60, 61)], [(11, 13), (35, 36), (80, 82)]
    a = stats.event_f1(ref, got)
    assert (a.matched, a.f1, a.precision, a.recall) == (1, pytest.approx(1 / 3), pytest.approx(1 / 3),
                                                        pytest.approx(1 / 3))
    assert stats.event_f1(ref, got, tolerance=2).f1 == pytest.approx(2 / 3)
    # One event cannot match two.
    assert stats.event_f1([(0, 10)], [(1, 2), (5, 6)]).matched == 1
    assert stats.event_f1([], []).f1 is None


# Three identities on a line: a at 0, b at 1, c at 3 (2-d embeddings, second coordinate 0).
CANDIDATES = np.array([[0.0, 0], [0.2, 0], [1.0, 0], [3.0, 0]])
LABELS = ["a", "a", "b", "c"]


def test_rank1_by_hand():
    probes = np.array([[0.1, 0], [0.9, 0], [2.1, 0], [1.6, 0]])
    # nearest identities: a, b, c (2.1 is 1.1 from b, 0.9 from c), b (1.6 is 0.6 from b)
    assert stats.rank1(probes, ["a", "b", "c", "c"], CANDIDATES, LABELS) == pytest.approx(0.75)
    names, per = stats.identity_distances(probes[:1], CANDIDATES, LABELS)
    assert names == ["a", "b", "c"] and per[0] == pytest.approx([0.1, 0.9, 2.9])  # least over a's two
    assert math.isnan(stats.rank1(np.zeros((0, 2)), [], CANDIDATES, LABELS))
    with pytest.raises(ValueError, match="missing"):
        stats.rank1(probes[:1], ["z"], CANDIDATES, LABELS)


def test_commonest_nearest_by_hand():
    # nearest identities a, b, b, c: b is nearest to half the probes
    probes = np.array([[0.1, 0], [0.9, 0], [1.2, 0], [2.9, 0]])
    assert stats.commonest_nearest(probes, CANDIDATES, LABELS) == ("b", 0.5)
    assert stats.commonest_nearest(probes[:1], CANDIDATES, LABELS) == ("a", 1.0)
    name, share = stats.commonest_nearest(np.zeros((0, 2)), CANDIDATES, LABELS)
    assert name is None and math.isnan(share)


def test_verification_and_threshold_by_hand():
    probes = np.array([[0.5, 0], [0.7, 0], [1.5, 0]])
    # own identity a for all three: distances to a's nearest reference 0.3, 0.5, 1.3
    assert stats.acceptance(probes, ["a"] * 3, CANDIDATES, LABELS, 0.6) == pytest.approx(2 / 3)
    assert stats.acceptance(probes, ["a"] * 3, CANDIDATES, LABELS, 0.3) == 0.0  # strictly nearer
    # impostor scores of the first probe claiming b and c: 0.5 and 2.5
    assert sorted(stats.impostor_scores(probes[:1], ["a"], CANDIDATES, LABELS)) == pytest.approx([0.5, 2.5])
    # 100 impostor scores 0.01 ... 1.00: at 1 % FAR the threshold 0.02 accepts only 0.01.
    impostor = np.arange(1, 101) / 100
    t = stats.threshold_at_far(impostor, 0.01)
    assert t == pytest.approx(0.02) and np.mean(impostor < t) == pytest.approx(0.01)
    assert stats.threshold_at_far(impostor, 0.0) == pytest.approx(0.01)  # accepts none
    with pytest.raises(ValueError):
        stats.threshold_at_far([], 0.01)


def test_lineup_pick_rate():
    refs = np.array([[float(i), 0.0] for i in range(10)]) * 10  # 10 identities far apart
    labels = [str(i) for i in range(10)]
    # Probes on their own identity: always picked. Probes equally far from everything (ties): chance.
    assert stats.lineup_pick_rate(refs + 0.1, labels, refs, labels, trials=200) == 1.0
    same = np.zeros((10, 2))
    rate = stats.lineup_pick_rate(same, labels, same, labels, trials=3000, seed=1)
    assert abs(rate - 1 / 6) < 0.03
    with pytest.raises(ValueError, match="6 identities"):
        stats.lineup_pick_rate(refs[:5], labels[:5], refs[:5], labels[:5])


# --- baselines ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_frame():
    from dmask.video import iter_frames

    return next(iter_frames(data_video("lp_d0_gaze.mp4"))).image


def test_baselines_change_the_face_and_only_the_face(face_frame):
    from dmask.landmarks import LandmarkTracker

    with LandmarkTracker(video=False) as finder:
        faces = finder(face_frame)
        assert len(faces) == 1
        out = {name: make_anonymizer(name, finder).apply(face_frame, faces) for name in BASELINES}
    for name, image in out.items():
        assert image.shape == face_frame.shape and image.dtype == np.uint8, name
    assert np.array_equal(out["identity"], face_frame)
    x, y = faces[0].points[:, :2].mean(axis=0).astype(int)  # the face centre (nose)
    patch = (slice(y - 20, y + 20), slice(x - 20, x + 20))
    for name in ("blur", "pixelate"):
        assert np.abs(out[name][patch].astype(int) - face_frame[patch]).mean() > 2, name
    assert out["eye_crop"][patch].max() == 0  # only the eye region is kept
    assert out["eye_crop"].any() and out["eye_crop"].mean() < 0.3 * face_frame.mean()
    eye = faces[0].points[468, :2].astype(int)  # right iris centre
    assert (out["eye_bar"][eye[1], eye[0]] == 0).all()
    assert np.array_equal(out["eye_bar"][patch], face_frame[patch])  # the nose is not covered


def test_baselines_without_a_face():
    blank = np.full((64, 48, 3), 128, np.uint8)
    blank[::2] = 60
    assert np.array_equal(EyeBar().apply(blank, ()), blank)  # nothing to cover
    assert not EyeCrop().apply(blank, ()).any()  # nothing to keep
    assert not np.array_equal(GaussianBlur().apply(blank, ()), blank)  # blurred whole
    assert not np.array_equal(Pixelate().apply(blank, ()), blank)
    assert np.array_equal(Identity()(blank), blank)
    with pytest.raises(ValueError):
        Identity()(blank[..., 0])
    with pytest.raises(ValueError, match="unknown baseline"):
        make_anonymizer("swirl")


def test_anonymize_video_keeps_frames_and_timing(tmp_path):
    from dmask.audit import anonymize_video
    from dmask.video import iter_frames

    src = data_video("lrs3_00002_224px.mp4")
    anonymize_video("eye_bar", src, tmp_path / "bar.mp4")
    before, after = list(iter_frames(src)), list(iter_frames(tmp_path / "bar.mp4"))
    assert [f.pts for f in after] == [f.pts for f in before]
    assert after[0].image.shape == before[0].image.shape
    with pytest.raises(ValueError, match="overwrite"):
        anonymize_video("blur", src, src)


# --- a small audit on real clips ----------------------------------------------------------------

CLIPS = ("lrs3_00002_224px.mp4", "lp_d0_gaze.mp4", "hdtf_aoc.mp4")
GALLERY_IDS = ("Colin_Powell", "George_W_Bush", "Tony_Blair", "BBT_penny_Kaley_Cuoco")


@pytest.fixture(scope="module")
def small_gallery(tmp_path_factory):
    """Two photos of each of four gallery identities (links, not copies)."""
    if not (DATA / "gallery").exists():
        pytest.skip(f"face gallery not found under {DATA} (set DMASK_DATA)")
    root = tmp_path_factory.mktemp("gallery")
    for name in GALLERY_IDS:
        (root / name).mkdir()
        for photo in sorted((DATA / "gallery" / name).iterdir())[:2]:
            (root / name / photo.name).symlink_to(photo)
    return root


@pytest.fixture(scope="module")
def small_audit(masked, small_gallery):
    pytest.importorskip("face_recognition", reason="the audit extra (face_recognition, dlib-bin) is not installed")
    from dmask.audit import AuditOptions, audit_videos

    pairs = [masked(name) for name in CLIPS]
    return audit_videos(pairs, small_gallery, AuditOptions(frames_per_video=6, lineup_trials=500))


def test_small_audit_privacy(small_audit):
    p = small_audit.privacy
    assert (p.videos, p.identities, p.gallery_identities) == (3, 7, 4)
    assert p.chance == pytest.approx(1 / 7)
    assert p.genuine_accept_at_match == 1.0
    identity, dmask, crop = p.method("identity"), p.method("dmask"), p.method("eye_crop")
    assert [m.method for m in p.methods] == ["dmask", "identity", "blur", "pixelate", "eye_crop", "eye_bar"]
    assert all(m.probes == 18 for m in p.methods)
    # The protocol works: unchanged frames are re-identified and accepted.
    assert identity.mask_to_face_rank1 >= 0.8 and identity.mask_to_face_rank1_box == 1.0
    assert identity.accept_at_match == 1.0 and identity.lineup_pick_rate > 0.9
    # Unchanged frames are each nearest to their own patient: no one identity draws most of them.
    assert identity.commonest_nearest_share == pytest.approx(1 / 3)
    # The eye crop (the paper's comparison) leaks more identity than dmask.
    assert crop.mask_to_face_rank1_box > dmask.mask_to_face_rank1_box
    # dmask: the mask is found as a face, nobody is accepted as the patient.
    assert dmask.detection_rate == 1.0
    assert dmask.accept_at_match == 0.0
    # With only three video identities (the gallery photos are stills, another domain), a mask's
    # nearest identity is one of the three videos; it must not be the patient's more often than that.
    # (Six frames a video: with three, one probe more or less, 4 or 5 of 9, came and went with a fresh
    # calibration of the template; with six, 9 of 18 before and after it.)
    assert dmask.mask_to_face_rank1 <= 0.5 < identity.mask_to_face_rank1


def test_small_audit_fidelity(small_audit):
    from dmask.audit.fidelity import MEASURES

    assert len(small_audit.fidelity) == 3
    pooled = small_audit.pooled
    by = {a.name: a for a in pooled.measures}
    assert list(by) == [name for name, _ in MEASURES]
    assert all(a.n > 100 for a in pooled.measures)
    # Gaze and lids follow the original (thresholds well below the clips' measured agreement).
    for name in ("gaze_yaw_r", "gaze_yaw_l"):
        assert by[name].icc > 0.85, name
    for name in ("fissure_height_r", "fissure_height_l"):
        assert by[name].icc > 0.6, name
        assert abs(by[name].bland_altman.bias) < 1.0, name
    assert pooled.blinks.reference > 0 and pooled.blinks.f1 > 0.8


def test_small_audit_report(small_audit, tmp_path):
    from dmask.audit import write_audit

    paths = write_audit(small_audit, tmp_path)
    doc = json.loads(paths["json"].read_text())
    assert doc["schema"] == "dmask-audit/1"
    assert {m["method"] for m in doc["privacy"]["methods"]} == {"dmask", *BASELINES}
    assert len(doc["fidelity"]["videos"]) == 3 and doc["fidelity"]["pooled"]["measures"][0]["icc"] is not None
    bars = {a["measure"]: a for a in doc["acceptance"]}
    assert bars["identity baseline, Mask→Face rank-1 (original face box)"]["passed"] is True
    assert bars["dmask verification acceptance at 0.6"]["passed"] is True
    # the bar's ICCs in three digits, as compared with the bar (0.899 must not read as "0.90")
    pooled = {m["name"]: m["icc"] for m in doc["fidelity"]["pooled"]["measures"]}
    for name in ("fissure_height_r", "gaze_pitch_l"):
        row = bars[f"fidelity ICC, {name}"]
        assert row["value"] == f"{pooled[name]:.3f}" and row["passed"] == (pooled[name] >= 0.9)
    page = paths["html"].read_text()
    assert "Bland" in page and page.count("data:image/png;base64,") == 4  # Bland-Altman + 3 overlays
    # nothing from the network (a colon is not in base64's alphabet: the embedded images cannot match)
    assert "http:" not in page and "https:" not in page and "<link" not in page and "src=\"//" not in page
    assert paths["plot_bland_altman"].stat().st_size > 1000


def test_cli_audit(masked, small_gallery, tmp_path, capsys):
    pytest.importorskip("face_recognition", reason="the audit extra (face_recognition, dlib-bin) is not installed")
    from dmask.cli import main

    assert main(["audit", "--out", str(tmp_path / "x")]) == 1
    assert "ORIGINAL MASKED" in capsys.readouterr().err
    src, dst = masked("lrs3_00002_224px.mp4")
    out = tmp_path / "report"
    assert main(["audit", str(src), str(dst), "--gallery", str(small_gallery), "--out", str(out), "--frames", "2",
                 "--methods", "dmask,identity", "--no-fidelity", "-q"]) == 0
    doc = json.loads((out / "audit.json").read_text())
    assert [m["method"] for m in doc["privacy"]["methods"]] == ["dmask", "identity"]
    assert doc["privacy"]["link_chance"] is None  # one video: nothing to link
    assert [v["made"] for v in doc["videos"]] == [False]  # the existing mask was used
    # another clip's mask cannot be this one's (other size and length): refused, nothing written
    _, other = masked("lp_d0_gaze.mp4")
    wrong = tmp_path / "wrong"
    assert main(["audit", str(src), str(other), "--out", str(wrong), "--methods", "dmask", "-q"]) == 1
    err = capsys.readouterr().err
    assert "is not a mask of" in err and "512x512, 78 frames" in err and "224x224, 48 frames" in err
    assert not (wrong / "audit.json").exists()
    # --remask makes it again, over a copy (here: a stale file that is not a mask at all)
    stale = tmp_path / "stale.mp4"
    shutil.copy(src, stale)
    assert main(["audit", str(src), str(stale), "--out", str(out), "--frames", "2", "--methods", "dmask",
                 "--no-fidelity", "--remask", "-q"]) == 0
    doc = json.loads((out / "audit.json").read_text())
    assert [v["made"] for v in doc["videos"]] == [True]
    assert doc["privacy"]["methods"][0]["accept_at_match"] == 0.0  # the original's copy was replaced by a mask
    assert main(["audit", str(src), str(dst), "--out", str(out), "--methods", "dmask,swirl", "-q"]) == 1
