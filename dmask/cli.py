"""The ``dmask`` command. The only module that prints or exits."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .types import MaskOptions

USAGE_ERRORS = (ValueError, OSError, RuntimeError)


class ProgressBar:
    """A one-line progress bar on stderr: stage, frames, fps and ETA."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.stage = None
        self.start = 0.0
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage != self.stage:
            if self.stage is not None:
                sys.stderr.write("\n")
            self.stage, self.start, self.last = stage, now, 0.0
        if now - self.last < 0.1 and done != total:
            return
        self.last = now
        elapsed = now - self.start
        fps = done / elapsed if elapsed > 0.05 else None
        rate = f"{fps:5.1f} fps" if fps else "  --- fps"
        if total:
            width = 30
            filled = int(width * done / total)
            eta = f"{(total - done) / fps:4.0f}s" if fps else "   ?"
            line = f"{stage:>6} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} frames {rate} ETA {eta}"
        else:
            line = f"{stage:>6} {done} frames {rate}"
        sys.stderr.write("\r" + line)
        if done == total:
            sys.stderr.write("\n")
            self.stage = None
        sys.stderr.flush()


def _options(args) -> MaskOptions:
    return MaskOptions(max_faces=args.max_faces, keep_audio=getattr(args, "keep_audio", False))


def cmd_mask(args) -> int:
    from .pipeline import mask_video

    if args.keep_audio:
        print("dmask: warning: --keep-audio keeps the patient's voice, which is biometric and can identify them",
              file=sys.stderr)
    report = mask_video(args.input, args.output, _options(args), params_path=args.params,
                        progress=ProgressBar(not args.quiet))
    if not args.quiet:
        print(f"{args.output}: {report.frames} frames, {report.faces} face(s) masked, "
              f"{report.frames_without_face} frame(s) without a tracked face (drawn from the last good state)",
              file=sys.stderr)
    return 0


def cmd_render(args) -> int:
    from .pipeline import render_file

    render_file(args.params, args.output, _options(args), progress=ProgressBar(not args.quiet))
    return 0


def cmd_demo(args) -> int:
    from .demo import write_demo_clip
    from .pipeline import mask_video
    from .video import iter_frames, write_image
    import numpy as np

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip, masked = out / "astronaut.mp4", out / "astronaut.masked.mp4"
    write_demo_clip(clip)
    report = mask_video(clip, masked, _options(args), params_path=out / "astronaut.dmask.npz",
               progress=ProgressBar(not args.quiet))
    # Preview: the middle frame, input beside mask (the input is a public-domain photo).
    mid = report.frames // 2
    before, after = (next(f.image for f in iter_frames(p) if f.index == mid) for p in (clip, masked))
    write_image(out / "preview.png", np.concatenate([before, after], axis=1))
    print(f"input:   {clip}\nmasked:  {masked}\npreview: {out / 'preview.png'}")
    return 0


def cmd_measure(args) -> int:
    from .measure import MeasureOptions, measure_video
    from .report import write_report

    options = MeasureOptions(iris_diameter_mm=args.iris_mm, max_head_turn_deg=args.max_head_turn,
                             deviation_threshold_pd=args.deviation_threshold, max_faces=args.max_faces)
    m = measure_video(args.input, options, progress=ProgressBar(not args.quiet))
    paths = write_report(m, args.out)
    if not args.quiet:
        s = m.summary
        fps = "unknown" if m.fps is None else f"{m.fps:.2f} fps"
        print(f"{args.input}: {m.frames.n_frames} frames at {fps}; face found in {int(m.frames.face_found.sum())}",
              file=sys.stderr)
        rate = "" if s.blinks.rate_per_min is None else f" ({s.blinks.rate_per_min:.1f}/min)"
        print(f"  blinks: {s.blinks.count}{rate}, {s.blinks.incomplete} incomplete, {s.blinks.asymmetric} asymmetric",
              file=sys.stderr)
        d = s.deviation
        h = "-" if d.horizontal_pd.median is None else f"{d.horizontal_pd.median:+.1f} PD"
        v = "-" if d.vertical_pd.median is None else f"{d.vertical_pd.median:+.1f} PD"
        print(f"  deviation: horizontal {d.horizontal_label} ({h}), vertical {d.vertical_label} ({v})", file=sys.stderr)
        for eye, n in zip(("right", "left"), s.nystagmus):
            if n.present:
                print(f"  nystagmus, {eye} eye: {n.frequency_hz:.2f} Hz, {n.amplitude_deg:.1f} deg, {n.direction}, "
                      f"{n.waveform}", file=sys.stderr)
        print(f"  head posture: {s.head.posture}", file=sys.stderr)
        for w in m.warnings:
            print(f"dmask: warning: {w}", file=sys.stderr)
        print(f"report: {paths['html']}\ncsv:    {paths['csv']}\njson:   {paths['json']}")
    return 0


def cmd_audit(args) -> int:
    from .audit import METHODS, AuditOptions, audit_videos, dataset_pairs, write_audit
    from .audit.report import acceptance, masks_made

    if args.dataset:
        if args.original or args.masked:
            raise ValueError("give either ORIGINAL MASKED or --dataset DIR, not both")
        pairs = dataset_pairs(args.dataset, Path(args.out) / "masked")
    elif args.original and args.masked:
        pairs = [(Path(args.original), Path(args.masked))]
    else:
        raise ValueError("give ORIGINAL MASKED (the mask is made when it does not exist) or --dataset DIR")
    methods = tuple(args.methods.split(",")) if args.methods else METHODS
    options = AuditOptions(frames_per_video=args.frames, lineup_trials=args.lineup_trials, methods=methods,
                           fidelity=not args.no_fidelity, mask=_options(args), remask=args.remask)
    progress = ProgressBar(not args.quiet)
    result = audit_videos(pairs, args.gallery, options, progress=progress)
    paths = write_audit(result, args.out)
    if not args.quiet:
        for measure, value, bar, ok in acceptance(result):
            verdict = "n/a" if ok is None else ("pass" if ok else "FAIL")
            print(f"  {measure}: {value} (bar {bar}) {verdict}", file=sys.stderr)
        print(f"  {masks_made(result)}", file=sys.stderr)
        print(f"report: {paths['html']}\njson:   {paths['json']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmask",
        description="Digital mask for clinical face videos: keeps eye movements, lids, gaze, expressions "
        "and head pose; replaces the patient's face with one shared template face.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--max-faces", type=int, default=4, help="most faces masked per frame (default 4)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")

    p = sub.add_parser("mask", help="mask a video or image",
                       description="Mask a video (mp4, mov, mkv, ...) or a still image (jpg, png). The output "
                       "has the same size, frame count and frame timing; it holds no original pixel, no audio "
                       "(unless --keep-audio) and no metadata of the input.")
    p.add_argument("input", help="video or image to mask")
    p.add_argument("-o", "--output", required=True, help="masked output (.mp4 for a video, .png/.jpg for an image)")
    p.add_argument("--params", help="also write the per-frame mask parameters (.npz, see dmask.params)")
    p.add_argument("--keep-audio", action="store_true", help="copy the audio track (voice can identify the patient)")
    common(p)
    p.set_defaults(func=cmd_mask)

    p = sub.add_parser("render", help="re-render a masked video from a parameter file",
                       description="Render a masked video from the parameters written by 'dmask mask --params'.")
    p.add_argument("params", help="mask parameter file (.npz)")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4) or image")
    common(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("demo", help="mask the bundled demo clip (a public-domain portrait)")
    p.add_argument("--out", default="demo", help="folder for the demo clip, its mask and a preview (default ./demo)")
    common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("measure", help="clinical measurements of eyes, lids, gaze and face",
                       description="Measure lids (fissure, MRD1/MRD2, scleral show, mm), gaze per eye, the deviation "
                       "between the eyes (degrees and prism dioptres), head pose, blinks, nystagmus, saccades and "
                       "facial symmetry in a video, original or masked. Writes measurements.csv (per frame), "
                       "summary.json, plots/*.png and a self-contained report.html into --out.")
    p.add_argument("input", help="video (or image) to measure")
    p.add_argument("--out", required=True, help="folder for the CSV, JSON, plots and HTML report (created)")
    p.add_argument("--iris-mm", type=float, default=11.7,
                   help="the subject's visible horizontal iris diameter, the scale of every length (default 11.7)")
    p.add_argument("--max-head-turn", type=float, default=30.0,
                   help="frames with head yaw or pitch beyond this many degrees are invalid (default 30)")
    p.add_argument("--deviation-threshold", type=float, default=5.0,
                   help="deviations within this many prism dioptres are labelled ortho (default 5)")
    p.add_argument("--max-faces", type=int, default=1, help="faces tracked; the longest track is measured (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_measure)

    p = sub.add_parser("audit", help="privacy and fidelity audit of masks, beside baseline anonymizers",
                       description="Judge masks with a real face recognizer (dlib ResNet; pip install "
                       "'dmask[audit]') beside baselines (unchanged, blur, pixelation, eye crop, eye bar): "
                       "Mask->Face rank-1, 1-of-6 lineups, Mask->Mask linkability, verification, detection. "
                       "Compare 'dmask measure' on original and mask: ICC(2,1), Bland-Altman, blink F1, "
                       "tolerances. Masks what is not masked yet. Writes audit.html, audit.json and plots/ "
                       "into --out.")
    p.add_argument("original", nargs="?", help="original video")
    p.add_argument("masked", nargs="?", help="its masked video (made with dmask mask when it does not exist)")
    p.add_argument("--dataset", help="a folder of videos, one person each (names starting with edge_ are left "
                   "out); masks go to OUT/masked/")
    p.add_argument("--gallery", help="folder of <identity>/<photo> of other people, added to the closed set")
    p.add_argument("--out", required=True, help="folder for the report (created)")
    p.add_argument("--frames", type=int, default=8, help="probe frames per video (as many reference frames; "
                   "default 8)")
    p.add_argument("--lineup-trials", type=int, default=1000, help="random 1-of-6 lineups (default 1000)")
    p.add_argument("--methods", help="comma-separated subset of dmask,identity,blur,pixelate,eye_crop,eye_bar")
    p.add_argument("--no-fidelity", action="store_true", help="skip the measurement comparison")
    p.add_argument("--remask", action="store_true",
                   help="make every mask again (by default an existing mask file is used as it is)")
    common(p)
    p.set_defaults(func=cmd_audit)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("dmask: interrupted; nothing was written", file=sys.stderr)
        return 130
    except USAGE_ERRORS as e:
        print(f"dmask: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
