"""Tests of dmask.video on small synthetic files written with PyAV, and on two real clips."""
from __future__ import annotations

import csv
import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from dmask.types import VideoInfo
from dmask.video import VideoError, VideoWriter, iter_frames, probe, write_image

DATA = Path(os.environ.get("DMASK_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
TB = Fraction(1, 15360)
VFR_PTS = [0, 512, 1024, 2000, 2100, 4096, 4608, 7000, 7001, 9000]  # uneven gaps: variable frame rate
SECRETS = {"title": "Patient Jane Roe", "comment": "ward 7 bed 3", "artist": "Dr Who Filmed",
           "location": "+51.5074-000.1278/", "creation_time": "2021-03-04T05:06:07.000000Z"}
STREAM_SECRETS = {"handler_name": "PatientCam", "title": "Jane Roe left eye",
                  "creation_time": SECRETS["creation_time"]}


def gradient(i: int, height: int = 48, width: int = 64) -> np.ndarray:
    """(height, width, 3) uint8 frame: a gradient moving with ``i``, white block top-left, red top-right."""
    y, x = np.mgrid[:height, :width]
    image = np.stack([(x * 4 + i * 8) % 256, (y * 5) % 256, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    image[:8, :8] = 255
    image[:8, -8:] = (255, 0, 0)
    return image


def make_video(path, pts=VFR_PTS, *, size=(48, 64), rotation=0, metadata=False, audio=False):
    """Write a small H.264 MP4 (stored size ``size`` = (H, W)) with PyAV, independently of dmask.

    ``metadata``: tag the container with SECRETS and each stream with STREAM_SECRETS.
    """
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        out.metadata.update(SECRETS if metadata else {})
        video = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        video.height, video.width = size
        video.pix_fmt = "yuv420p"
        video.time_base = video.codec_context.time_base = TB
        video.metadata.update(STREAM_SECRETS if metadata else {})
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        if audio:
            sound.metadata.update(STREAM_SECRETS if metadata else {})
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(gradient(i, *size), format="rgb24")
            frame.pts, frame.time_base = p, TB
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio:
            write_tone(out, sound, seconds=float(pts[-1] * TB))
    return path


def write_tone(out, stream, seconds):
    """Encode a 16 kHz mono tone of ``seconds`` into ``stream`` and mux it."""
    n = int(seconds * 16000)
    for start in range(0, n, 1600):
        samples = (np.sin(np.arange(start, min(start + 1600, n)) * 0.2) * 8000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def make_wav(path, seconds=0.6):
    with av.open(str(path), "w") as out:
        write_tone(out, out.add_stream("pcm_s16le", rate=16000, layout="mono"), seconds)
    return path


def info_for(width=64, height=48, time_base=TB):
    return VideoInfo(width=width, height=height, time_base=time_base, frame_count=None, fps=30.0,
                     rotation=0, has_audio=False)


def write_frames(path, info, pts=VFR_PTS, **kwargs):
    with VideoWriter(path, info, **kwargs) as writer:
        for i, p in enumerate(pts):
            writer.write(gradient(i, info.height, info.width), p)
    return path


def audio_packets(path):
    """[(time in seconds as a Fraction, payload bytes)] of the first audio stream."""
    with av.open(str(path)) as c:
        return [(p.pts * p.time_base, bytes(p)) for p in c.demux(audio=0) if p.size]


# --- reading -------------------------------------------------------------------------------------

def test_probe_reports_size_timing_and_streams(tmp_path):
    info = probe(make_video(tmp_path / "in.mp4"))
    assert (info.width, info.height) == (64, 48)
    assert info.time_base == TB
    assert info.frame_count == len(VFR_PTS)
    assert info.fps > 0 and info.rotation == 0
    assert not info.has_audio and not info.is_image
    assert probe(make_video(tmp_path / "a.mp4", audio=True)).has_audio


def test_iter_frames_keeps_each_frames_own_pts(tmp_path):
    frames = list(iter_frames(make_video(tmp_path / "in.mp4")))
    assert [f.index for f in frames] == list(range(len(VFR_PTS)))
    assert [f.pts for f in frames] == VFR_PTS
    for i, f in enumerate(frames):
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        assert np.abs(f.image.astype(int) - gradient(i)).mean() < 4  # H.264 at default quality


def test_frames_without_timestamps_get_the_average_frame_duration(tmp_path):
    path = tmp_path / "raw.h264"  # an elementary stream: the container has no timestamps at all
    with av.open(str(path), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(gradient(i), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    step = Fraction(1, 25) / probe(path).time_base  # 1/25 s in the stream's units
    assert [f.pts for f in iter_frames(path)] == [i * step for i in range(5)]


# --- writing -------------------------------------------------------------------------------------

def test_round_trip_keeps_count_pts_size_and_writes_h264_yuv420p_faststart(tmp_path):
    src = make_video(tmp_path / "in.mp4")
    info = probe(src)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info) as writer:
        for frame in iter_frames(src):
            writer.write(frame.image, frame.pts)
    back = probe(out)
    assert (back.width, back.height, back.time_base) == (64, 48, TB)
    assert [f.pts for f in iter_frames(out)] == VFR_PTS
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.format.name == "yuv420p"
        assert not c.streams.audio
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart


@pytest.mark.parametrize("time_base", [Fraction(1, 25), Fraction(1, 1000), Fraction(1001, 30000)])
def test_written_timestamps_equal_the_given_ones_for_any_time_base(tmp_path, time_base):
    pts = [0, 1, 2, 5, 6, 9, 20]
    out = write_frames(tmp_path / "out.mp4", info_for(time_base=time_base), pts)
    back = probe(out).time_base
    assert [f.pts * back for f in iter_frames(out)] == [p * time_base for p in pts]
    if time_base.numerator == 1:
        assert back == time_base  # the very same numbers, not only the same times


def test_odd_size_is_padded_to_even_by_repeating_the_edge(tmp_path):
    out = write_frames(tmp_path / "odd.mp4", info_for(width=63, height=47), VFR_PTS[:3])
    info = probe(out)
    assert (info.width, info.height) == (64, 48)
    image = next(iter_frames(out)).image.astype(int)
    assert np.abs(image[:47, :63] - gradient(0, 47, 63)).mean() < 4
    assert np.abs(image[:, -1] - image[:, -2]).mean() < 4 and np.abs(image[-1] - image[-2]).mean() < 4


def test_output_carries_no_input_metadata(tmp_path):
    src = make_video(tmp_path / "in.mp4", metadata=True, audio=True)
    with av.open(str(src)) as c:  # the input really carries them
        assert SECRETS.items() <= c.metadata.items()
        for stream in c.streams:
            assert stream.metadata["handler_name"] == "PatientCam"
            assert stream.metadata["creation_time"] == SECRETS["creation_time"]
    info = probe(src)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info, audio_from=src) as writer:
        for frame in iter_frames(src):
            writer.write(frame.image, frame.pts)
    with av.open(str(out)) as c:
        assert set(c.metadata) <= {"major_brand", "minor_version", "compatible_brands"}
        for stream in c.streams:
            assert set(stream.metadata) <= {"language", "handler_name", "vendor_id"}
            assert stream.metadata.get("handler_name") in (None, "VideoHandler", "SoundHandler")
    data = out.read_bytes()
    for value in (*SECRETS.values(), *STREAM_SECRETS.values()):
        assert value.encode() not in data
    assert b"Lavf" not in data  # not even the muxer's encoder tag


def test_no_audio_unless_asked(tmp_path):
    src = make_video(tmp_path / "in.mp4", audio=True)
    out = write_frames(tmp_path / "out.mp4", probe(src))
    with av.open(str(out)) as c:
        assert not c.streams.audio


def test_audio_is_remuxed_packet_for_packet(tmp_path):
    src = make_video(tmp_path / "in.mp4", audio=True)
    out = write_frames(tmp_path / "out.mp4", probe(src), audio_from=src)
    assert probe(out).has_audio
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    assert audio_packets(out) == audio_packets(src)


def test_audio_from_a_silent_file_gives_no_audio(tmp_path):
    src = make_video(tmp_path / "silent.mp4")
    out = write_frames(tmp_path / "out.mp4", probe(src), audio_from=src)
    assert not probe(out).has_audio


def test_audio_that_mp4_players_do_not_handle_is_reencoded_to_aac(tmp_path):
    out = write_frames(tmp_path / "out.mp4", info_for(), audio_from=make_wav(tmp_path / "a.wav"))
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert sum(f.samples for f in c.decode(audio=0)) >= 0.6 * 16000


def test_exception_inside_writer_leaves_no_file(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, info_for()) as writer:
            writer.write(gradient(0), 0)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_an_existing_file_untouched_and_success_replaces_it(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(VideoError, match="must be"):
        with VideoWriter(out, info_for()) as writer:
            writer.write(gradient(0), 0)
            writer.write(np.zeros((10, 10, 3), np.uint8), 1)  # wrong size
    assert out.read_bytes() == b"previous result"
    assert list(tmp_path.iterdir()) == [out]
    write_frames(out, info_for())
    assert probe(out).frame_count == len(VFR_PTS)
    assert list(tmp_path.iterdir()) == [out]


def test_writer_rejects_timestamps_that_do_not_increase_and_empty_output(tmp_path):
    with pytest.raises(VideoError, match="increase"):
        with VideoWriter(tmp_path / "out.mp4", info_for()) as writer:
            writer.write(gradient(0), 5)
            writer.write(gradient(1), 5)
    with pytest.raises(VideoError, match="no frames"):
        with VideoWriter(tmp_path / "out.mp4", info_for()):
            pass
    assert list(tmp_path.iterdir()) == []


# --- rotation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_video_is_read_upright(tmp_path, rotation):
    src = make_video(tmp_path / "rot.mp4", VFR_PTS[:2], rotation=rotation)
    info = probe(src)
    assert info.rotation == rotation
    upright_size = (48, 64) if rotation == 180 else (64, 48)
    assert (info.height, info.width) == upright_size
    image = next(iter_frames(src)).image
    with av.open(str(src)) as c:  # the stored, unrotated pixels from the same decoder
        stored = next(c.decode(video=0)).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(image, np.rot90(stored, rotation // 90))
    # Independent check of the direction: OpenCV's FFmpeg backend applies the display matrix itself.
    capture = cv2.VideoCapture(str(src))
    ok, bgr = capture.read()
    capture.release()
    assert ok and bgr.shape == image.shape
    assert np.abs(bgr[..., ::-1].astype(int) - image).mean() < 6


def test_rotated_input_is_written_upright_without_a_rotation_tag(tmp_path):
    src = make_video(tmp_path / "rot.mp4", VFR_PTS[:3], rotation=90)
    info = probe(src)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, info) as writer:
        for frame in iter_frames(src):
            writer.write(frame.image, frame.pts)
    back = probe(out)
    assert (back.width, back.height, back.rotation) == (48, 64, 0)
    first_in, first_out = next(iter_frames(src)).image, next(iter_frames(out)).image
    assert np.abs(first_in.astype(int) - first_out).mean() < 4


def test_jpeg_exif_orientation_is_applied(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    image = pil.fromarray(gradient(0))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif, quality=95)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (48, 64, 270)
    upright = next(iter_frames(path)).image
    assert np.abs(upright.astype(int) - np.rot90(gradient(0), -1)).mean() < 6


# --- still images --------------------------------------------------------------------------------

def test_png_round_trip_is_exact_atomic_and_reads_as_one_frame(tmp_path):
    path = tmp_path / "still.png"
    write_image(path, gradient(3))
    assert list(tmp_path.iterdir()) == [path]
    info = probe(path)
    assert info.is_image and info.frame_count == 1 and info.fps is None and info.time_base == 1
    assert (info.width, info.height) == (64, 48)
    frames = list(iter_frames(path))
    assert len(frames) == 1 and frames[0].pts == 0
    np.testing.assert_array_equal(frames[0].image, gradient(3))


def test_jpeg_is_written_without_exif(tmp_path):
    path = tmp_path / "still.jpg"
    write_image(path, gradient(3))
    assert b"Exif" not in path.read_bytes()
    assert np.abs(next(iter_frames(path)).image.astype(int) - gradient(3)).mean() < 4
    with pytest.raises(VideoError, match=r"\.png"):
        write_image(tmp_path / "still.tiff", gradient(3))


# --- bad input -----------------------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (tmp_path / "notes.mp4").write_text("patient notes, not a video\n" * 20)
    cases = {"missing.mp4": "no such file", "empty.mp4": "empty", "noise.mp4": "not a video",
             "notes.mp4": "not a video", "a.wav": "no video stream"}
    make_wav(tmp_path / "a.wav")
    for name, message in cases.items():
        for read in (probe, lambda p: list(iter_frames(p))):
            with pytest.raises(VideoError, match=message) as error:
                read(tmp_path / name)
            assert name in str(error.value)


def test_frame_that_fails_to_decode_raises_with_its_index(tmp_path):
    src = tmp_path / "clean.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(src, info_for()) as writer:
        for i in range(30):
            writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), i * 512)
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3000] = rng.bytes(3000)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with pytest.raises(VideoError, match=r"damaged\.mp4' at frame \d+"):
        for _ in iter_frames(damaged):
            pass


# --- real clips ----------------------------------------------------------------------------------

REAL = {"blink_selfie.mp4": (480, 854), "lp_d14_blinks.mp4": (512, 512)}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_clips(name):
    if not (DATA / "MANIFEST.tsv").is_file():
        pytest.skip(f"shared test data not found at {DATA} (set DMASK_DATA)")
    with open(DATA / "MANIFEST.tsv", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t")
        expected = {row["file"]: int(row["frames"]) for row in rows if row["frames"]}
    path = DATA / "videos" / name
    info = probe(path)
    assert (info.width, info.height) == REAL[name]
    assert info.frame_count == expected[f"videos/{name}"]
    count, last = 0, -1
    for frame in iter_frames(path):
        assert frame.pts > last and frame.image.shape == (info.height, info.width, 3)
        count, last = count + 1, frame.pts
    assert count == expected[f"videos/{name}"]
