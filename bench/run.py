"""Benchmark dmask against a plain transcode (the floor) and deface (a peer anonymizer).

    python bench/run.py                          # every method on the three default clips, writes BENCHMARKS.md
    python bench/run.py --clips hdtf_aoc.mp4 --repeat 1 --no-write

Methods, on the same inputs and at the same H.264 settings (libx264, MaskOptions' crf and preset):
  transcode     PyAV decode + libx264 encode through dmask.video: what any tool that writes the video pays
  deface        deface's own video loop: CenterFace (ONNX) detection on the full frame, ellipse blur
  deface-640    the same, detecting on a copy scaled to 640 px wide (deface --scale; for larger inputs)
  dmask         ``mask_video`` as shipped (decoding and encoding in their own threads)
  dmask-serial  ``mask_video`` with every stage in one thread (pipeline.QUEUE_FRAMES = 0): the before

Each run is a fresh subprocess (``--worker``), so its peak RSS (``ru_maxrss``) is its own; the
processes it starts (deface's ffmpeg reader and writer) are sampled from /proc and shown as "+ N".
Throughput counts everything from the call to the closed output file: imports of the method's own
modules and model loading included, interpreter start not. Per-frame time: the interval between
consecutive frames leaving the method (for dmask, that of pass 1 plus that of pass 2 for the same
frame), so the one-off setup, dmask's fitting step and the encoder's final flush are not in it.
Methods run round robin, ``--repeat`` times each (deface once: it is many times slower, so load
noise cannot move its ratios much), and the fastest run is kept: the least disturbed by other work.

Installs nothing: deface needs ``pip install --no-deps deface`` and its runtime (see BENCHMARKS.md);
without it the deface rows say so. The memory check loops a clip into longer ones in a temporary
folder (never next to the data) and compares the peak RSS on the short and the long inputs.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ("hdtf_aoc.mp4", "mead_m003_1080p.mp4", "ffpp_519_news.mp4")
METHODS = ("transcode", "deface", "deface-640", "dmask", "dmask-serial")
DEFACE_WIDTH = 640  # deface-640 detects on frames scaled to this width (deface's own --scale option)
DEFACE_THRESHOLD = 0.2  # deface's defaults: detection threshold, mask scale
DEFACE_MASK_SCALE = 1.3
# Memory check: this clip played 1, 6 and 18 times. The slope is taken between the two longest: on short
# inputs the renderer's fixed buffers set the peak and hide the growth.
LOOP_CLIP, LOOP_TIMES = "hdtf_aoc.mp4", (1, 6, 18)
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"  # BENCHMARKS.md: the part this script rewrites
HELPER_SAMPLE_S = 0.2  # how often the memory of a method's helper processes is read
TARGETS = {"fps_512": 30.0, "fps_1080": 15.0, "x_transcode": 3.0, "x_deface": 1.0, "mib_per_1000_frames": 5.0}


@dataclass(frozen=True)
class Run:
    """One method on one clip, measured in its own process."""

    method: str
    clip: str
    frames: int
    seconds: float  # wall clock, call to closed output
    frame_ms: list  # per-frame times (ms), see the module docstring
    cpu_seconds: float  # user + system time of the process and its children
    rss_mib: float  # peak resident memory of the method's process (ru_maxrss)
    helper_rss_mib: float  # peak of the summed memory of the processes it started (deface's ffmpeg), sampled
    stages: dict = field(default_factory=dict)  # dmask: seconds per pipeline stage
    note: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


# ---------------------------------------------------------------- the methods (run inside a worker)

def run_transcode(src: Path, dst: Path) -> dict:
    """Decode with PyAV and encode with libx264 at dmask's settings: the floor for any video tool."""
    from dmask.types import MaskOptions
    from dmask.video import VideoWriter, iter_frames, probe

    options, ticks = MaskOptions(), []
    with VideoWriter(dst, probe(src), crf=options.crf, preset=options.preset) as writer:
        for frame in iter_frames(src):
            writer.write(frame.image, frame.pts)
            ticks.append(time.perf_counter())
    return {"frames": len(ticks), "frame_ms": intervals_ms(ticks)}


def run_deface(src: Path, dst: Path, width: int | None = None) -> dict:
    """deface's own video loop (``video_detect``) with its defaults: blur inside an ellipse per face.

    The detector is handed in wrapped, to time each frame; the writer gets dmask's x264 settings
    (deface's default is x264's slower 'medium' preset) and no resizing to 16-pixel blocks.
    """
    from deface.centerface import CenterFace
    from deface.deface import video_detect

    from dmask.types import MaskOptions
    from dmask.video import probe

    info, options = probe(src), MaskOptions()
    scale = None if width is None else (width, round(info.height * width / info.width))
    detector, ticks = CenterFace(in_shape=scale, override_execution_provider="CPUExecutionProvider"), []

    def detect(frame, threshold):
        ticks.append(time.perf_counter())
        return detector(frame, threshold=threshold)

    writer = {"codec": "libx264", "quality": None, "macro_block_size": 2,
              "output_params": ["-crf", str(options.crf), "-preset", options.preset]}
    video_detect(str(src), str(dst), centerface=detect, threshold=DEFACE_THRESHOLD, enable_preview=False,
                 cam=False, nested=False, replacewith="blur", mask_scale=DEFACE_MASK_SCALE, ellipse=True,
                 draw_scores=False, ffmpeg_config=writer)
    note = f"{detector.backend}" + ("" if scale is None else f", detects at {scale[0]}x{scale[1]}")
    return {"frames": len(ticks), "frame_ms": intervals_ms(ticks), "note": note}


def run_dmask(src: Path, dst: Path, threads: bool = True) -> dict:
    """``mask_video`` with its timing hook; per-frame times from its progress callback."""
    from dmask import pipeline

    if not threads:
        pipeline.QUEUE_FRAMES = 0  # this process only: every stage in the calling thread
    ticks: dict[str, list[float]] = {"track": [], "render": []}
    stages: dict[str, float] = {}
    report = pipeline.mask_video(src, dst, progress=lambda stage, done, total: ticks[stage].append(time.perf_counter()),
                                 timings=stages)
    track, render = intervals_ms(ticks["track"]), intervals_ms(ticks["render"])
    return {"frames": report.frames, "frame_ms": [a + b for a, b in zip(track, render)], "stages": stages}


WORKERS = {
    "transcode": run_transcode,
    "deface": run_deface,
    "deface-640": lambda src, dst: run_deface(src, dst, DEFACE_WIDTH),
    "dmask": run_dmask,
    "dmask-serial": lambda src, dst: run_dmask(src, dst, threads=False),
}


def worker(method: str, src: Path, dst: Path, result: Path) -> None:
    """Run one method in this process and write its measurements to ``result`` (JSON)."""
    start = time.perf_counter()
    out = WORKERS[method](src, dst)
    out["seconds"] = time.perf_counter() - start
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out["rss_mib"] = own.ru_maxrss / 1024  # Linux: KiB
    out["cpu_seconds"] = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    result.write_text(json.dumps(out))


# ---------------------------------------------------------------- measuring (the parent process)

def intervals_ms(ticks: list[float]) -> list[float]:
    """Times (s) at which consecutive frames were done -> the n - 1 intervals between them (ms)."""
    return (np.diff(ticks) * 1000).tolist()


def measure(method: str, src: Path, tmp: Path) -> Run | str:
    """One run of ``method`` on ``src`` in a fresh subprocess: its Run, or why it failed."""
    dst, result = tmp / f"{method}.{src.name}", tmp / "result.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--worker", method, str(src), str(dst), str(result)]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        helpers = 0.0
        while proc.poll() is None:
            helpers = max(helpers, descendants_rss_mib(proc.pid))
            time.sleep(HELPER_SAMPLE_S)
        log.seek(0)
        lines = log.read().strip().splitlines()
    dst.unlink(missing_ok=True)
    if proc.returncode != 0 or not result.exists():
        return lines[-1] if lines else f"exit status {proc.returncode}"
    out = json.loads(result.read_text())
    return Run(method=method, clip=src.name, frames=out["frames"], seconds=out["seconds"],
               frame_ms=out["frame_ms"], cpu_seconds=out["cpu_seconds"], rss_mib=out["rss_mib"], helper_rss_mib=helpers,
               stages=out.get("stages", {}), note=out.get("note", ""))


def descendants_rss_mib(pid: int) -> float:
    """Summed resident memory (MiB) of the processes that ``pid`` started, and theirs; from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # gone meanwhile
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        todo += children
    total = 0.0
    for child in found:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024  # status gives KiB


def measure_clip(clip: Path, methods: list[str], repeat: int, tmp: Path) -> tuple[dict, dict]:
    """Every method on ``clip``, round robin ``repeat`` times (deface once), so that all meet the
    same load. Returns ({(clip, method): best Run}, {(clip, method): why it has none})."""
    failed = {(clip.name, m): why for m in methods if (why := available(m))}
    tries: dict[str, list[Run]] = {m: [] for m in methods if (clip.name, m) not in failed}
    for rep in range(repeat):
        for method in tries:
            if (clip.name, method) in failed or (rep and method.startswith("deface")):
                continue
            out = measure(method, clip, tmp)
            if isinstance(out, str):
                failed[clip.name, method] = f"failed: {out}"
                continue
            tries[method].append(out)
            print(f"bench: {clip.name:24} {method:12} {out.fps:7.1f} fps  {out.rss_mib:5.0f} MiB",
                  file=sys.stderr, flush=True)
    runs = {(clip.name, m): best(done) for m, done in tries.items() if done and (clip.name, m) not in failed}
    return runs, failed


def best(runs: list[Run]) -> Run:
    """The fastest of repeated runs: the one least disturbed by other work on the machine."""
    return min(runs, key=lambda r: r.seconds)


def loop_clip(src: Path, dst: Path, times: int) -> None:
    """Write ``src`` played ``times`` times in a row (timestamps continue) to ``dst``."""
    from dmask.types import MaskOptions
    from dmask.video import VideoWriter, iter_frames, probe

    options, offset, last = MaskOptions(), 0, 0
    with VideoWriter(dst, probe(src), crf=options.crf, preset=options.preset) as writer:
        for _ in range(times):
            first = None
            for frame in iter_frames(src):
                first = frame.pts if first is None else first
                last = offset + frame.pts - first
                writer.write(frame.image, last)
            offset = last + 1


def available(method: str) -> str | None:
    """Why ``method`` cannot run here, or None."""
    if method.startswith("deface"):
        if importlib.util.find_spec("deface") is None:
            return "deface is not installed here; see BENCHMARKS.md for the install command"
    return None


def applies(method: str, width: int) -> bool:
    """deface-640 is a separate row only where it differs from deface: inputs wider than 640 px."""
    return method != "deface-640" or width > DEFACE_WIDTH


def memory_check(clip: Path, tmp: Path) -> tuple[list[str], dict]:
    """Peak RSS of transcode and dmask on ``clip`` played LOOP_TIMES times; growth per 1000 frames."""
    inputs = []
    for times in LOOP_TIMES:
        inputs.append(clip if times == 1 else tmp / f"looped{times}.{clip.name}")
        if times != 1:
            loop_clip(clip, inputs[-1], times)
    runs: dict[str, list[Run]] = {}
    for method in ("transcode", "dmask"):
        for src in inputs:
            out = measure(method, src, tmp)  # peak memory hardly varies from run to run: once is enough
            if isinstance(out, Run):
                runs.setdefault(method, []).append(out)
                print(f"bench: {src.name:24} {method:12} {out.rss_mib:5.0f} MiB peak RSS", file=sys.stderr, flush=True)
    rows, growth = memory_rows(runs)
    title = f"{clip.name} played {', '.join(map(str, LOOP_TIMES))} times in a row; growth between the two longest."
    return [title, "", *rows], growth


# ---------------------------------------------------------------- reporting

def machine() -> dict:
    """Cores, CPU model, load, versions, commit and date of this run."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    versions = {}
    for name in ("av", "mediapipe", "moderngl", "onnxruntime", "deface"):
        try:
            from importlib.metadata import version
            versions[name] = version(name)
        except Exception:  # not installed
            versions[name] = "-"
    return {
        "cores": os.cpu_count(), "cpu": model, "load": os.getloadavg(), "python": platform.python_version(),
        "versions": versions, "commit": git_commit(ROOT),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def git_commit(root: Path) -> str:
    """The checked-out commit, read from .git without running git ('unknown' outside a checkout)."""
    git = root / ".git"
    try:
        if git.is_file():  # a linked worktree: ".git" names its folder inside the main repository
            git = (root / git.read_text().split("gitdir:", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        pass
    return "unknown"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def results_table(runs: dict, failed: dict) -> list[str]:
    """Markdown rows: per clip and method, fps, time ratios to transcode and deface, RSS, p50/p95."""
    rows = ["| clip | method | frames | fps | × transcode | × deface | CPU s | peak RSS MiB | p50 ms | p95 ms "
            "| note |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for clip in dict.fromkeys(c for c, _ in list(runs) + list(failed)):
        floor, peer = runs.get((clip, "transcode")), runs.get((clip, "deface"))
        for method in METHODS:
            if (clip, method) in failed:
                rows.append(f"| {clip} | {method} | | | | | | | | | {failed[clip, method]} |")
            if (clip, method) not in runs:
                continue
            r = runs[clip, method]
            ratio = {name: f"{r.seconds / o.seconds:.2f}" if o else "n/a" for name, o in (("a", floor), ("b", peer))}
            rss = f"{r.rss_mib:.0f}" + (f" + {r.helper_rss_mib:.0f}" if r.helper_rss_mib >= 1 else "")
            rows.append(f"| {clip} | {method} | {r.frames} | {r.fps:.1f} | {ratio['a']} | {ratio['b']} "
                        f"| {r.cpu_seconds:.1f} | {rss} "
                        f"| {percentile(r.frame_ms, 50):.1f} | {percentile(r.frame_ms, 95):.1f} | {r.note} |")
    return rows


def stages_table(runs: dict) -> list[str]:
    """Markdown rows: dmask's seconds per stage (ms per frame in brackets) and wall clock."""
    from dmask.pipeline import STAGES

    rows = ["| clip | method | " + " | ".join(STAGES) + " | sum | wall |", "|---|---|" + "---:|" * (len(STAGES) + 2)]
    for (clip, method), r in runs.items():
        if r.stages:
            cells = [f"{r.stages.get(s, 0):.2f} ({1000 * r.stages.get(s, 0) / r.frames:.1f})" for s in STAGES]
            rows.append(f"| {clip} | {method} | " + " | ".join(cells)
                        + f" | {sum(r.stages.values()):.2f} | {r.seconds:.2f} |")
    return rows


def memory_rows(runs: dict[str, list[Run]]) -> tuple[list[str], dict]:
    """Markdown rows of peak RSS per input length; growth in MiB per 1000 frames between the two longest."""
    lengths = [r.frames for r in next(iter(runs.values()), [])]
    rows = ["| method | " + " | ".join(f"peak RSS MiB, {n} frames" for n in lengths) + " | MiB per 1000 frames |",
            "|---|" + "---:|" * (len(lengths) + 1)]
    growth = {}
    for method, done in runs.items():
        if len(done) == len(lengths) >= 2:
            growth[method] = (done[-1].rss_mib - done[-2].rss_mib) / (done[-1].frames - done[-2].frames) * 1000
            rows.append(f"| {method} | " + " | ".join(f"{r.rss_mib:.0f}" for r in done) + f" | {growth[method]:.1f} |")
    return rows, growth


def targets_rows(runs: dict, growth: dict, clips: list[str], sizes: dict) -> list[str]:
    """Markdown rows: each target of the issue, what was measured, met or not."""
    rows = ["| target | measured | met |", "|---|---|---|"]

    def add(target: str, measured: str, ok: bool) -> None:
        rows.append(f"| {target} | {measured} | {'yes' if ok else '**no**'} |")

    for clip in clips:
        r = runs.get((clip, "dmask"))
        if r is None:
            continue
        w, h = sizes[clip]
        for size, key in (("512×512", "fps_512"), ("1080p", "fps_1080")):
            if (size == "512×512" and (w, h) == (512, 512)) or (size == "1080p" and h >= 1080):
                add(f"≥ {TARGETS[key]:.0f} fps at {size} ({clip})", f"{r.fps:.1f} fps", r.fps >= TARGETS[key])
        if (clip, "transcode") in runs:
            x, limit = r.seconds / runs[clip, "transcode"].seconds, TARGETS["x_transcode"]
            add(f"≤ {limit:.0f}× transcode time ({clip})", f"{x:.2f}×", x <= limit)
        for peer in ("deface", "deface-640"):
            if (clip, peer) in runs:
                x, cpu = r.seconds / runs[clip, peer].seconds, r.cpu_seconds / runs[clip, peer].cpu_seconds
                add(f"faster than {peer} ({clip})", f"{x:.2f}× its time ({cpu:.2f}× its CPU time)",
                    x < TARGETS["x_deface"])
    if "dmask" in growth:
        limit = TARGETS["mib_per_1000_frames"]
        add(f"memory flat in video length (≤ {limit:.0f} MiB per 1000 frames)",
            f"{growth['dmask']:.1f} MiB per 1000 frames", growth["dmask"] <= limit)
    return rows


def report(info: dict, repeat: int, sections: dict[str, list[str]]) -> str:
    """The results as Markdown: the machine, then one table per section."""
    v = info["versions"]
    head = [
        f"Run on {info['date']}, commit `{info['commit']}`, {info['cores']} cores ({info['cpu']}), load average "
        f"{info['load'][0]:.1f} at the start and {info['load_end'][0]:.1f} at the end; Python {info['python']}, "
        f"PyAV {v['av']}, MediaPipe {v['mediapipe']}, moderngl {v['moderngl']}, onnxruntime {v['onnxruntime']}, "
        f"deface {v['deface']}. Best of {repeat} run(s) per method and clip (deface: 1).",
    ]
    body = []
    for title, rows in sections.items():
        body += ["", f"#### {title}", "", *rows]
    return "\n".join(head + body) + "\n"


def write_benchmarks(path: Path, text: str) -> None:
    """Put ``text`` between the BEGIN and END markers of ``path``, keeping the hand-written rest."""
    old = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in old or END not in old:
        old = old.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    before, rest = old.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    path.write_text(f"{before}{BEGIN}\n{text}{END}{after}")


# ---------------------------------------------------------------- command line

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("DMASK_DATA", ROOT.parent / "shared" / "data")),
                   help="folder holding videos/ (default $DMASK_DATA or ../shared/data)")
    p.add_argument("--clips", nargs="+", default=list(CLIPS), help="file names in DATA/videos")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--repeat", type=int, default=5, help="runs per method and clip; the best is kept (deface: 1)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory-versus-length check")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    p.add_argument("--worker", nargs=4, metavar=("METHOD", "SRC", "DST", "RESULT"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))  # dmask from this checkout, installed or not
    if args.worker:
        method, src, dst, result = args.worker
        worker(method, Path(src), Path(dst), Path(result))
        return 0
    from dmask.video import probe

    clips = [args.data / "videos" / name for name in args.clips]
    for clip in clips:
        if not clip.exists():
            print(f"bench: no such clip: {clip} (set --data or DMASK_DATA)", file=sys.stderr)
            return 1
    info = machine()
    sizes = {c.name: (probe(c).width, probe(c).height) for c in clips}
    runs, failed = {}, {}
    with tempfile.TemporaryDirectory(prefix="dmask-bench-") as tmp:
        tmp = Path(tmp)
        for clip in clips:
            methods = [m for m in args.methods if applies(m, sizes[clip.name][0])]
            done, why = measure_clip(clip, methods, args.repeat, tmp)
            runs.update(done)
            failed.update(why)
        sections = {
            "Throughput, time ratios, memory, per-frame time": results_table(runs, failed),
            "dmask stage by stage: seconds (ms per frame)": stages_table(runs),
        }
        growth = {}
        if not args.no_memory:
            memory, growth = memory_check(args.data / "videos" / LOOP_CLIP, tmp)
            sections["Memory against video length"] = memory
        sections["Targets"] = targets_rows(runs, growth, [c.name for c in clips], sizes)
    text = report({**info, "load_end": os.getloadavg()}, args.repeat, sections)
    print(text)
    if not args.no_write:
        write_benchmarks(args.output, text)
        print(f"bench: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
