"""Read and write stage: decode frames upright with their own timestamps; write H.264 MP4 without metadata.

Rotation convention: ``VideoInfo.rotation`` is the counter-clockwise angle (0, 90, 180 or 270 degrees)
of the file's display matrix (what ffprobe reports as "rotation", modulo 360); EXIF orientation of
JPEGs arrives the same way. ``np.rot90(stored, rotation // 90)`` is the upright image, so frames come
out upright and outputs are written upright, with no rotation tag.

Outputs are written to a hidden temporary file next to the destination and renamed into place only
when complete, so a failed or aborted write leaves nothing behind and never damages an existing file.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dmask.types import Frame, VideoInfo

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# Audio codecs that MP4 players commonly handle are copied untouched; others (PCM, Vorbis, ...) -> AAC.
MP4_AUDIO_COPY = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})
DEFAULT_RATE = 30  # frames/s hint for the encoder's rate control when the input rate is unknown
# libx264 by default zeroes small residuals (its dead zones) and drops blocks with few coefficients
# (DCT decimation): an eye that moves a fraction of a pixel between frames then moves less, or not at
# all, in the file. Measured on a rendered 4 Hz, 3 deg jerk nystagmus (0.4 px of iris travel a frame):
# the iris's motion kept 82-86 % at crf 20 veryfast, 95-96 % with these (files about a third larger).
X264_PARAMS = "deadzone-inter=0:deadzone-intra=0:no-dct-decimate=1"


class VideoError(ValueError):
    """A video or image cannot be read or written; the message names the file and the reason."""


def probe(path: str | os.PathLike) -> VideoInfo:
    """What a video or still image holds: displayed size, time base, frame count, rate, rotation, audio.

    Decodes the first frame, because the rotation (and so the displayed size) travels with frames.
    Still images (by extension, ``IMAGE_SUFFIXES``) give ``frame_count=1``, ``time_base=1`` and ``fps=None``.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        first = next(_decode(container, path), None)
        if first is None:
            raise VideoError(f"cannot decode '{path}': it contains no video frames")
        rotation = _rotation(first)
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        is_image = _is_image(path)
        return VideoInfo(
            width=width,
            height=height,
            time_base=Fraction(1) if is_image else Fraction(stream.time_base),
            frame_count=1 if is_image else (stream.frames or None),
            fps=None if is_image or not stream.average_rate else float(stream.average_rate),
            rotation=rotation,
            has_audio=bool(container.streams.audio),
            is_image=is_image,
        )


def iter_frames(path: str | os.PathLike) -> Iterator[Frame]:
    """Stream the decoded frames of a video (or the one frame of an image), turned upright.

    Yields ``Frame(index, pts, image)`` with ``image`` (H, W, 3) uint8 RGB of the displayed size and
    ``pts`` the frame's own timestamp in ``probe(path).time_base`` units, so variable frame rates
    survive. A frame without a timestamp gets the previous one plus the average frame duration; an
    image gets pts 0. Holds only the decoder's few frames in memory.

    Raises VideoError if the file cannot be opened, holds no frames, or a frame fails to decode (the
    message names the frame index; nothing is skipped silently).
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        is_image = _is_image(path)
        rate = stream.average_rate
        step = max(1, round(1 / (rate * stream.time_base))) if rate else 1
        pts = None
        index = 0
        for frame in _decode(container, path):
            if is_image:
                pts = 0
            else:
                pts = frame.pts if frame.pts is not None else (0 if pts is None else pts + step)
            yield Frame(index, pts, _upright(frame))
            index += 1
        if index == 0:
            raise VideoError(f"cannot decode '{path}': it contains no video frames")


class VideoWriter:
    """Writes upright RGB frames to an H.264 (libx264, yuv420p) MP4 with the input's timestamps.

    The video stream uses ``info.time_base``, so each frame keeps the pts given to ``write``; when
    the time base is 1/N the file stores exactly those numbers, otherwise the same times in the MP4's
    own units. Nothing from the input's metadata is written (no creation time, location, device,
    title or handler names, not even the muxer's encoder tag). yuv420p needs even sizes: an odd width
    or height is padded by repeating the last column or row, so the output is then 1 px larger.

    With ``audio_from``, the audio streams of that file are copied packet for packet with their
    timestamps (re-encoded to mono or stereo AAC when not in ``MP4_AUDIO_COPY``). Default: no audio.

    Use as a context manager: leaving the block normally calls ``close`` (the file appears at
    ``path``); leaving it with an exception calls ``abort`` (nothing appears, an existing file at
    ``path`` is untouched).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        info: VideoInfo,
        *,
        crf: int = 20,
        preset: str = "veryfast",
        audio_from: str | os.PathLike | None = None,
    ):
        self.path = Path(path)
        self._shape = (info.height, info.width, 3)
        self._time_base = info.time_base
        self._last_pts: int | None = None
        self._tmp = _temp_path(self.path, ".mp4")
        self._audio_in = None
        self._audio_map: dict[int, tuple] = {}  # source stream index -> (output stream, copied?)
        options = {"movflags": "+faststart", "fflags": "+bitexact"}  # bitexact: no encoder tag
        if info.time_base.numerator == 1:
            options["video_track_timescale"] = str(info.time_base.denominator)
        try:
            self._out = av.open(str(self._tmp), "w", format="mp4", options=options)
        except av.FFmpegError as e:
            raise VideoError(f"cannot write '{self.path}': {e.strerror}") from None
        try:
            rate = Fraction(info.fps).limit_denominator(1001) if info.fps else DEFAULT_RATE
            options = {"crf": str(crf), "preset": preset, "x264-params": X264_PARAMS}
            self._video = self._out.add_stream("libx264", rate=rate, options=options)
            self._video.width = info.width + info.width % 2
            self._video.height = info.height + info.height % 2
            self._video.pix_fmt = "yuv420p"
            # Tag what cv2's RGB -> I420 produces (BT.601, limited range) so that players need not guess.
            self._video.codec_context.colorspace = 6  # AVCOL_SPC_SMPTE170M
            self._video.codec_context.color_range = 1  # AVCOL_RANGE_MPEG
            self._video.time_base = info.time_base
            self._video.codec_context.time_base = info.time_base
            if audio_from is not None:
                self._add_audio(audio_from)
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, image: np.ndarray, pts: int) -> None:
        """Encode one (H, W, 3) uint8 RGB image (H, W = info.height, info.width) at timestamp ``pts``.

        ``pts`` is in ``info.time_base`` units and must increase from frame to frame.
        """
        if self._out is None:
            raise VideoError(f"cannot write '{self.path}': the writer is already closed")
        if image.shape != self._shape or image.dtype != np.uint8:
            raise VideoError(f"frame must be {self._shape} uint8 RGB, got {image.shape} {image.dtype}")
        if self._last_pts is not None and pts <= self._last_pts:
            raise VideoError(f"frame timestamps must increase: got pts {pts} after {self._last_pts}")
        self._last_pts = pts
        # OpenCV's RGB -> I420 is several times faster than libswscale's and gives the same planes.
        yuv = cv2.cvtColor(_pad_to_even(image), cv2.COLOR_RGB2YUV_I420)  # (3 H / 2, W) uint8
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = int(pts)
        frame.time_base = self._time_base
        self._out.mux(self._video.encode(frame))

    def close(self) -> None:
        """Flush the encoder, copy the audio, finish the file and move it to ``path``."""
        if self._out is None:
            return
        try:
            if self._last_pts is None:
                raise VideoError(f"cannot write '{self.path}': no frames were written")
            self._out.mux(self._video.encode(None))
            self._copy_audio()
            self._out.close()
            os.replace(self._tmp, self.path)
        except av.FFmpegError as e:
            self.abort()
            raise VideoError(f"cannot write '{self.path}': {e.strerror}") from None
        except BaseException:
            self.abort()
            raise
        self._out = None

    def abort(self) -> None:
        """Discard the output: delete the temporary file, leave ``path`` as it was."""
        for container in (self._out, self._audio_in):
            if container is not None:
                try:
                    container.close()
                except av.FFmpegError:
                    pass  # the file is deleted anyway
        self._out = self._audio_in = None
        self._tmp.unlink(missing_ok=True)

    def _add_audio(self, source: str | os.PathLike) -> None:
        """Open ``source`` and add one output stream per audio stream: a copy, or AAC for other codecs."""
        try:
            self._audio_in = av.open(str(source))
        except av.FFmpegError as e:
            raise VideoError(f"cannot read audio from '{source}': {e.strerror}") from None
        for stream in self._audio_in.streams.audio:
            if stream.codec_context.codec.canonical_name in MP4_AUDIO_COPY:
                out, copy = self._out.add_stream_from_template(stream), True
            else:
                layout = "mono" if stream.channels == 1 else "stereo"  # AAC needs a named layout
                out, copy = self._out.add_stream("aac", rate=stream.rate, layout=layout), False
            self._audio_map[stream.index] = (out, copy)

    def _copy_audio(self) -> None:
        """Mux the source's audio packets (or their AAC re-encoding) with their own timestamps."""
        if not self._audio_map:  # no source, or a source without audio
            return
        for packet in self._audio_in.demux(self._audio_in.streams.audio):
            out, copy = self._audio_map[packet.stream.index]
            if not copy:
                for frame in packet.decode():
                    self._out.mux(out.encode(frame))
            elif packet.dts is not None:  # dts None marks the demuxer's final empty packet
                packet.stream = out
                self._out.mux(packet)
        for out, copy in self._audio_map.values():
            if not copy:
                self._out.mux(out.encode(None))
        self._audio_in.close()
        self._audio_in = None


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB image as PNG or JPEG (by the extension), atomically, without EXIF."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise VideoError(f"cannot write '{path}': the image name must end in .png, .jpg or .jpeg")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise VideoError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    ok, data = cv2.imencode(suffix, np.ascontiguousarray(image[..., ::-1]))  # OpenCV wants BGR
    if not ok:
        raise VideoError(f"cannot encode '{path}'")
    tmp = _temp_path(path, suffix)
    try:
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def _open(path: str | os.PathLike) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for decoding, with one clear VideoError for every way it can be unreadable."""
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"cannot open '{path}': no such file")
    if p.stat().st_size == 0:
        raise VideoError(f"cannot decode '{path}': the file is empty")
    try:
        container = av.open(str(p))
    except av.FFmpegError as e:
        reason = f"not a video or image, or the file is damaged ({e.strerror})"
        raise VideoError(f"cannot decode '{path}': {reason}") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"cannot decode '{path}': it has no video stream")
        yield container


def _decode(container: av.container.InputContainer, path) -> Iterator[av.VideoFrame]:
    """The first video stream's frames; a decoding error becomes a VideoError naming the frame index."""
    index = 0
    try:
        for frame in container.decode(container.streams.video[0]):
            yield frame
            index += 1
    except av.FFmpegError as e:
        raise VideoError(f"cannot decode '{path}' at frame {index}: {e.strerror}") from None


def _rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation of a decoded frame, snapped to 0, 90, 180 or 270 degrees."""
    return round(frame.rotation / 90) % 4 * 90


def _upright(frame: av.VideoFrame) -> np.ndarray:
    """The frame as an upright (H, W, 3) uint8 RGB array (H, W the displayed size)."""
    image = frame.to_ndarray(format="rgb24")
    k = _rotation(frame) // 90
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H + H % 2, W + W % 2, 3), repeating the last row/column (yuv420p needs even sizes)."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _temp_path(path: Path, suffix: str) -> Path:
    """A hidden, unique temporary name in ``path``'s folder, so ``os.replace`` into ``path`` is atomic."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.part{suffix}")
