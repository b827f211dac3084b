"""The one place where the stages are chained: read -> landmarks -> fit -> swap -> render -> write.

Two passes. The first decodes the input and keeps only landmarks (a few kilobytes a frame, so memory
does not grow with the video's pixels). The second never touches the input: it renders every output
frame from the fitted parameters alone, so no original pixel can reach the output, and writes it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fit import fit_track
from .landmarks import LandmarkTracker, track_faces
from .params import MaskParams, load_params, save_params
from .render import Renderer
from .swap import mask_geometry
from .template import Template, load_template
from .types import MaskOptions, VideoInfo
from .video import VideoWriter, iter_frames, probe, write_image

# progress(stage, done, total): stage is "track" or "render"; total may be None when unknown.
Progress = Callable[[str, int, "int | None"], None]


class NoFaceError(ValueError):
    pass


@dataclass(frozen=True)
class MaskReport:
    frames: int
    faces: int  # face tracks masked
    frames_without_face: int  # frames where the main face was not tracked (drawn from its last state)


def _quiet(stage: str, done: int, total: int | None) -> None:
    pass


def track_video(src, options: MaskOptions = MaskOptions(), progress: Progress = _quiet):
    """Pass 1: landmarks of every frame. Returns (VideoInfo, pts (n,), tracks)."""
    info = probe(src)
    detections, pts = [], []
    with LandmarkTracker(max_faces=options.max_faces, video=not info.is_image) as tracker:
        for frame in iter_frames(src):
            detections.append(tracker(frame.image))
            pts.append(frame.pts)
            progress("track", frame.index + 1, info.frame_count)
    return info, np.array(pts, np.int64), track_faces(detections)


def fit_video(src, options: MaskOptions = MaskOptions(), progress: Progress = _quiet,
              template: Template | None = None) -> MaskParams:
    """Passes 1 and fitting: the mask parameters of a video or image."""
    template = template or load_template()
    info, pts, tracks = track_video(src, options, progress)
    if not tracks:
        raise NoFaceError(f"no face found in any frame of '{src}'; nothing was written")
    faces = tuple(fit_track(t, template, primary=(j == 0))[0] for j, t in enumerate(tracks))
    return MaskParams(
        width=info.width, height=info.height, time_base=info.time_base, pts=pts,
        is_image=info.is_image, faces=faces,
    )


def render_params(params: MaskParams, dst, options: MaskOptions = MaskOptions(), progress: Progress = _quiet,
                  template: Template | None = None, audio_from=None) -> None:
    """Pass 2: render every frame from the parameters and write the output atomically."""
    template = template or load_template()
    n = len(params.pts)
    with Renderer(params.width, params.height, template.triangles,
                  background=options.background, msaa=options.msaa) as renderer:
        def frames():
            for i in range(n):
                faces = [mask_geometry(f, i, template) for f in params.faces if f.visible[i]]
                yield renderer.render(faces)
                progress("render", i + 1, n)

        if params.is_image:
            write_image(dst, next(frames()))
            return
        info = VideoInfo(width=params.width, height=params.height, time_base=params.time_base,
                         frame_count=n, fps=None, rotation=0, has_audio=False)
        with VideoWriter(dst, info, crf=options.crf, preset=options.preset, audio_from=audio_from) as writer:
            for image, p in zip(frames(), params.pts):
                writer.write(image, int(p))


def mask_video(src, dst, options: MaskOptions = MaskOptions(), params_path=None,
               progress: Progress = _quiet) -> MaskReport:
    """Mask a video (or a still image): the output shows the template face moving as the patient does.

    Raises NoFaceError when no face is found anywhere (nothing is written), video.VideoError for
    unreadable input. The output and the optional parameter file are written atomically.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError("the output must not overwrite the input")
    template = load_template()
    params = fit_video(src, options, progress, template)
    if params_path is not None:
        save_params(params_path, params)
    render_params(params, dst, options, progress, template, audio_from=src if options.keep_audio else None)
    main = params.faces[0]
    return MaskReport(frames=len(params.pts), faces=len(params.faces),
                      frames_without_face=int((~main.observed).sum()))


def render_file(params_path, dst, options: MaskOptions = MaskOptions(), progress: Progress = _quiet) -> None:
    """Re-render a masked video from a saved parameter file."""
    render_params(load_params(params_path), dst, options, progress)
