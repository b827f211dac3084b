"""The one place where the stages are chained: read -> landmarks -> fit -> swap -> render -> write.

Two passes. The first decodes the input and keeps only landmarks, on disk (``store.FrameStore``), so
memory does not grow with the video's length; the fit streams over them in chunks. The second never
touches the input: it renders every output frame from the fitted parameters alone, so no original
pixel can reach the output, and writes it.

Each pass uses both cores: decoding runs in its own thread beside landmarking, and encoding in its
own thread beside rendering (PyAV, OpenCV and libx264 release the GIL while they work). The threads
hand each other at most ``QUEUE_FRAMES`` frames, so memory stays bounded, and each stage handles the
frames in order in one thread, so the output is byte for byte the same as without threads.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fit import fit_track
from .landmarks import LandmarkTracker, TrackLinker
from .params import MaskParams, load_params, save_params
from .render import Renderer
from .swap import mask_geometry
from .template import Template, load_template
from .types import MaskOptions, VideoInfo
from .video import VideoWriter, iter_frames, probe, write_image

# progress(stage, done, total): stage is "track" or "render"; total may be None when unknown.
Progress = Callable[[str, int, "int | None"], None]
# Optional timing hook: the pipeline adds the seconds it spends in each of STAGES to this dict.
# Stages in their own threads overlap, so the sum can exceed the wall-clock time.
Timings = dict[str, float]
STAGES = ("setup", "decode", "landmarks", "fit", "render", "encode")
# Frames queued between two threads: enough to ride out a slow frame, few enough to keep memory flat.
# 0 runs every stage in the calling thread (for profiling, and the benchmark's before/after).
QUEUE_FRAMES = 2


class NoFaceError(ValueError):
    pass


@dataclass(frozen=True)
class MaskReport:
    frames: int
    faces: int  # face tracks masked
    frames_without_face: int  # frames where the main face was not tracked (drawn from its last state)


def _quiet(stage: str, done: int, total: int | None) -> None:
    pass


def track_video(src, options: MaskOptions = MaskOptions(), progress: Progress = _quiet,
                timings: Timings | None = None):
    """Pass 1: landmarks of every frame. Returns (VideoInfo, pts (n,), tracks)."""
    clock = _Clock(timings)
    with clock("setup"):
        info = probe(src)
        tracker = LandmarkTracker(max_faces=options.max_faces, video=not info.is_image)
    linker, pts = TrackLinker(), []
    with tracker:
        for frame in _produced_in_thread(clock.each("decode", iter_frames(src)), QUEUE_FRAMES):
            with clock("landmarks"):
                linker.add(tracker(frame.image))
            pts.append(frame.pts)
            progress("track", frame.index + 1, info.frame_count)
    with clock("fit"):
        tracks = linker.tracks()
    return info, np.array(pts, np.int64), tracks


def fit_video(src, options: MaskOptions = MaskOptions(), progress: Progress = _quiet,
              template: Template | None = None, timings: Timings | None = None) -> MaskParams:
    """Passes 1 and fitting: the mask parameters of a video or image."""
    clock = _Clock(timings)
    with clock("setup"):
        template = template or load_template()
    info, pts, tracks = track_video(src, options, progress, timings)
    if not tracks:
        raise NoFaceError(f"no face found in any frame of '{src}'; nothing was written")
    with clock("fit"):
        faces = tuple(fit_track(t, template, primary=(j == 0))[0] for j, t in enumerate(tracks))
    return MaskParams(
        width=info.width, height=info.height, time_base=info.time_base, pts=pts,
        is_image=info.is_image, faces=faces,
    )


def render_params(params: MaskParams, dst, options: MaskOptions = MaskOptions(), progress: Progress = _quiet,
                  template: Template | None = None, audio_from=None, timings: Timings | None = None) -> None:
    """Pass 2: render every frame from the parameters and write the output atomically."""
    clock = _Clock(timings)
    with clock("setup"):
        template = template or load_template()
        renderer = Renderer(params.width, params.height, template.triangles,
                            background=options.background, msaa=options.msaa)
    n = len(params.pts)

    def render(i: int) -> np.ndarray:
        with clock("render"):
            return renderer.render([mask_geometry(f, i, template) for f in params.faces if f.visible[i]])

    with renderer:
        if params.is_image:
            write_image(dst, render(0))
            return
        info = VideoInfo(width=params.width, height=params.height, time_base=params.time_base,
                         frame_count=n, fps=None, rotation=0, has_audio=False)
        with clock("setup"):
            writer = VideoWriter(dst, info, crf=options.crf, preset=options.preset, audio_from=audio_from)
        with writer:  # an exception aborts the write: nothing appears at dst
            with _consumed_in_thread(clock.timed("encode", writer.write), QUEUE_FRAMES) as encode:
                for i, p in enumerate(params.pts):
                    encode(render(i), int(p))
                    progress("render", i + 1, n)
            with clock("encode"):
                writer.close()  # after the encoding thread has written its last frame


def mask_video(src, dst, options: MaskOptions = MaskOptions(), params_path=None,
               progress: Progress = _quiet, timings: Timings | None = None) -> MaskReport:
    """Mask a video (or a still image): the output shows the template face moving as the patient does.

    Raises NoFaceError when no face is found anywhere (nothing is written), video.VideoError for
    unreadable input. The output and the optional parameter file are written atomically. With
    ``timings``, the seconds spent in each of ``STAGES`` are added to that dict.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError("the output must not overwrite the input")
    with _Clock(timings)("setup"):
        template = load_template()
    params = fit_video(src, options, progress, template, timings)
    if params_path is not None:
        save_params(params_path, params)
    render_params(params, dst, options, progress, template, audio_from=src if options.keep_audio else None,
                  timings=timings)
    main = params.faces[0]
    return MaskReport(frames=len(params.pts), faces=len(params.faces),
                      frames_without_face=int((~main.observed).sum()))


def render_file(params_path, dst, options: MaskOptions = MaskOptions(), progress: Progress = _quiet,
                timings: Timings | None = None) -> None:
    """Re-render a masked video from a saved parameter file."""
    render_params(load_params(params_path), dst, options, progress, timings=timings)


class _Clock:
    """Adds the seconds spent in each stage to ``timings``; does nothing without one."""

    def __init__(self, timings: Timings | None):
        self.timings = timings

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def each(self, stage: str, items: Iterable) -> Iterator:
        """``items``, with the time taken to produce each one counted in ``stage``."""
        it = iter(items)
        try:
            while True:
                with self(stage):
                    item = next(it, _END)
                if item is _END:
                    return
                yield item
        finally:
            getattr(it, "close", lambda: None)()

    def timed(self, stage: str, fn: Callable) -> Callable:
        """``fn``, with the time of each call counted in ``stage``."""
        def call(*args):
            with self(stage):
                return fn(*args)
        return call


_END = object()  # marks the end of a queue


def _produced_in_thread(items: Iterable, size: int) -> Iterator:
    """Iterate ``items`` while a background thread produces them, at most ``size`` ahead.

    For decoding beside landmarking: PyAV decodes with the GIL released. An exception raised while
    producing is raised here, where its item would have been. Leaving the loop early stops the thread
    and closes ``items``. With ``size`` 0, ``items`` are produced in the calling thread.
    """
    if size == 0:
        yield from items
        return
    handoff: queue.Queue = queue.Queue(size)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as e:  # handed to the consumer, which raises it
            put((_END, e))
        finally:
            getattr(items, "close", lambda: None)()

    thread = threading.Thread(target=produce, name="dmask-producer", daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


@contextmanager
def _consumed_in_thread(consume: Callable, size: int) -> Iterator[Callable]:
    """A function that queues its arguments for ``consume``, called in order by a background thread.

    For encoding beside rendering: OpenCV's colour conversion and libx264 release the GIL. At most
    ``size`` calls wait in the queue (the caller blocks beyond that). Leaving the block waits for the
    queue to empty; an exception raised by ``consume`` is raised at the next call or on leaving.
    If the block itself raises, the waiting calls are dropped. With ``size`` 0, the calling thread
    calls ``consume`` itself.
    """
    if size == 0:
        yield consume
        return
    handoff: queue.Queue = queue.Queue(size)
    errors: list[BaseException] = []
    drop = threading.Event()

    def run() -> None:
        while (args := handoff.get()) is not _END:
            if errors or drop.is_set():
                continue  # keep emptying the queue so that the caller never blocks
            try:
                consume(*args)
            except BaseException as e:
                errors.append(e)

    def call(*args) -> None:
        if errors:
            raise errors[0]
        handoff.put(args)

    thread = threading.Thread(target=run, name="dmask-consumer", daemon=True)
    thread.start()
    try:
        yield call
    except BaseException:
        drop.set()
        raise
    finally:
        handoff.put(_END)
        thread.join()
    if errors:
        raise errors[0]
