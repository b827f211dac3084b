"""The dmask command, driven as a user would, in a subprocess."""
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np

from dmask.types import VideoInfo
from dmask.video import VideoWriter

from .conftest import data_video


def dmask(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dmask.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def error_line(result) -> str:
    """The CLI's own message: the last stderr line (MediaPipe's C++ logging may precede it)."""
    return result.stderr.strip().splitlines()[-1]


def test_help_describes_the_mask_command():
    out = dmask("mask", "--help")
    assert out.returncode == 0
    for word in ("--params", "--keep-audio", "--max-faces", "metadata"):
        assert word in out.stdout


def test_unreadable_input_is_one_clear_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "visit.mp4"
    bad.write_bytes(b"this is not a video" * 50)
    out = dmask("mask", bad, "-o", tmp_path / "out.mp4")
    assert out.returncode != 0
    assert error_line(out).startswith("dmask: error:") and "visit.mp4" in error_line(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["visit.mp4"]


def test_missing_input(tmp_path):
    out = dmask("mask", tmp_path / "nope.mp4", "-o", tmp_path / "out.mp4")
    assert out.returncode != 0 and "nope.mp4" in error_line(out)


def test_a_video_without_a_face_is_refused_and_nothing_is_written(tmp_path):
    src = tmp_path / "wall.mp4"
    info = VideoInfo(width=64, height=48, time_base=Fraction(1, 25), frame_count=10, fps=25, rotation=0, has_audio=False)
    with VideoWriter(src, info) as w:
        for i in range(10):
            w.write(np.full((48, 64, 3), 20 * i, np.uint8), i)
    out = dmask("mask", src, "-o", tmp_path / "out.mp4")
    assert out.returncode == 1
    assert "no face found" in error_line(out)
    assert not (tmp_path / "out.mp4").exists()


def test_progress_shows_frames_fps_and_eta(tmp_path):
    src = data_video("lrs3_00002_224px.mp4")
    out = dmask("mask", src, "-o", tmp_path / "out.mp4")
    assert out.returncode == 0, out.stderr
    for word in ("frames", "fps", "ETA", "track", "render"):
        assert word in out.stderr


def test_keep_audio_warns_and_keeps_the_audio(tmp_path):
    src = data_video("lp_d14_blinks.mp4")  # has an AAC track
    dst = tmp_path / "with_voice.mp4"
    out = dmask("mask", src, "-o", dst, "--keep-audio", "-q")
    assert out.returncode == 0, out.stderr
    assert "warning" in out.stderr and "voice" in out.stderr
    with av.open(str(dst)) as c:
        assert len(c.streams.audio) == 1


def test_render_from_params(tmp_path):
    src = data_video("lrs3_00002_224px.mp4")
    params = tmp_path / "p.npz"
    assert dmask("mask", src, "-o", tmp_path / "a.mp4", "--params", params, "-q").returncode == 0
    out = dmask("render", params, "-o", tmp_path / "b.mp4", "-q")
    assert out.returncode == 0, out.stderr
    with av.open(str(tmp_path / "b.mp4")) as c:
        assert c.streams.video[0].frames == 48


def test_quiet_commands_print_nothing(tmp_path):
    """-q: no progress and none of MediaPipe's start-up logging (its graph logs from its own threads)."""
    src = data_video("lrs3_00002_224px.mp4")
    for args in (("mask", src, "-o", tmp_path / "a.mp4"), ("measure", src, "--out", tmp_path / "m")):
        out = dmask(*args, "-q")
        assert out.returncode == 0 and out.stderr == "", (args[0], out.stderr[-300:])
