"""Writing an audit: ``audit.json`` (schema ``dmask-audit/1``), plots and one self-contained
``audit.html`` (every image inline, nothing loaded). Plots use matplotlib's object API only."""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np

from ..report import _corner_note, _plain, _png, _table, robust_limits
from .baselines import DMASK
from .run import AuditResult

SCHEMA = "dmask-audit/1"
ICC_BAR = 0.9
ICC_BAR_MEASURES = ("fissure_height_r", "fissure_height_l", "gaze_yaw_r", "gaze_yaw_l", "gaze_pitch_r",
                    "gaze_pitch_l")


def percent(v) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def number(v, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def acceptance(result: AuditResult) -> list[tuple[str, str, str, bool | None]]:
    """The issue's acceptance bars: (measure, value, bar, passed); passed None when not measurable."""
    p = result.privacy
    rows = []

    def add(label, value, bar, ok, fmt=percent):
        finite = value is not None and math.isfinite(value)
        rows.append((label, fmt(value), bar, bool(ok(value)) if finite else None))

    names = [m.method for m in p.methods]
    if "identity" in names:
        i = p.method("identity")
        add("identity baseline, Mask→Face rank-1 (recognizer's detection)", i.mask_to_face_rank1, "≥ 90%",
            lambda v: v >= 0.9)
        add("identity baseline, Mask→Face rank-1 (original face box)", i.mask_to_face_rank1_box, "≥ 90%",
            lambda v: v >= 0.9)
    if DMASK in names:
        d = p.method(DMASK)
        add("dmask Mask→Face rank-1 (recognizer's detection)", d.mask_to_face_rank1,
            f"≤ 1.5× chance ({percent(1.5 * p.chance)})", lambda v: v <= 1.5 * p.chance)
        add("dmask Mask→Face rank-1 (original face box)", d.mask_to_face_rank1_box,
            f"≤ 1.5× chance ({percent(1.5 * p.chance)})", lambda v: v <= 1.5 * p.chance)
        add("dmask lineup pick rate", d.lineup_pick_rate, "≤ 25%", lambda v: v <= 0.25)
        if p.link_chance is not None:
            add("dmask Mask→Mask rank-1", d.mask_to_mask_rank1, f"≤ 2× chance ({percent(2 * p.link_chance)})",
                lambda v: v <= 2 * p.link_chance)
        add("dmask verification acceptance at 0.6", d.accept_at_match, "0%", lambda v: v == 0)
    if result.pooled is not None:
        for a in result.pooled.measures:
            if a.name in ICC_BAR_MEASURES:
                add(f"fidelity ICC, {a.name}", a.icc, f"≥ {ICC_BAR}", lambda v: v >= ICC_BAR,
                    lambda v: number(v, 3))  # three digits: 0.899 fails the bar, "0.90" would not show it
    return rows


def masks_made(result: AuditResult) -> str:
    """One sentence: how many masks this run made, and how many it found in place and used."""
    made = sum(result.made)
    if made == len(result.made):
        return f"All {made} masks were made by this run."
    return (f"{made} of {len(result.made)} masks were made by this run; the others existed and were used as "
            "they are (made earlier, perhaps by another dmask version: --remask makes them again).")


def audit_dict(result: AuditResult) -> dict:
    """The JSON document: schema, inputs, options, privacy (per method), fidelity (pooled and per
    video, without the per-frame values), acceptance bars. Rates are shares 0-1; NaN -> null."""
    fidelity = [{k: v for k, v in _plain(f).items() if k not in ("pairs", "series")} for f in result.fidelity]
    pooled = _plain(result.pooled) if result.pooled is not None else None
    return {
        "schema": SCHEMA,
        "videos": [{"original": s, "masked": m, "made": made} for (s, m), made in zip(result.videos, result.made)],
        "gallery": result.gallery,
        "options": _plain(result.options),
        "privacy": _plain(result.privacy),
        "fidelity": {"pooled": pooled, "videos": fidelity},
        "acceptance": [{"measure": a, "value": v, "bar": b, "passed": ok} for a, v, b, ok in acceptance(result)],
    }


# --- plots --------------------------------------------------------------------------------------


def plot_bland_altman(result: AuditResult):
    """Bland-Altman plot of each measure, frames of all videos pooled."""
    from matplotlib.figure import Figure

    measures = result.pooled.measures
    cols = 2
    rows = math.ceil(len(measures) / cols)
    fig = Figure(figsize=(11, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, a in zip(axes, measures):
        x = np.concatenate([f.pairs[a.name][0] for f in result.fidelity])
        y = np.concatenate([f.pairs[a.name][1] for f in result.fidelity])
        ax.scatter((x + y) / 2, y - x, s=3, alpha=0.3, color="#1f77b4", lw=0)
        ba = a.bland_altman
        if ba.n:
            ax.axhline(ba.bias, color="k", lw=1)
            for v in (ba.lower, ba.upper):
                ax.axhline(v, color="k", lw=1, ls="--")
            for v in (-a.tolerance, a.tolerance):
                ax.axhline(v, color="#2ca02c", lw=1, ls=":")
            off = robust_limits(ax.set_xlim, (x + y) / 2) | robust_limits(
                ax.set_ylim, y - x, (ba.lower, ba.upper, -a.tolerance, a.tolerance))
            if off.any():
                _corner_note(ax, f"{off.sum()} frame(s) off the axes")
        ax.set_title(f"{a.name}: bias {number(ba.bias)}, LoA {number(ba.lower)} to {number(ba.upper)} {a.unit}, "
                     f"ICC {number(a.icc)}", fontsize=9)
        ax.set_xlabel(f"mean of original and mask ({a.unit})", fontsize=8)
        ax.set_ylabel(f"mask − original ({a.unit})", fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(measures):]:
        ax.set_visible(False)
    fig.suptitle("Bland–Altman: black = bias and 95% limits, green dotted = tolerance", fontsize=11)
    return fig


def plot_series(f):
    """Time-series overlay of one video: original against mask, valid frames only."""
    from matplotlib.figure import Figure

    names = ("fissure_height_r", "fissure_height_l", "gaze_yaw_r", "gaze_yaw_l")
    fig = Figure(figsize=(11, 1.9 * len(names) + 0.5), layout="constrained")
    axes = fig.subplots(len(names), 1, sharex=True)
    for ax, name in zip(axes, names):
        t, a, b = f.series[name]
        ax.plot(t, a, color="#444444", lw=1.2, label="original")
        ax.plot(t, b, color="#d62728", lw=1.0, label="mask")
        ax.set_ylabel(name.replace("_", " "), fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"{f.source}: original (grey) and mask (red)", fontsize=11)
    return fig


# --- HTML ---------------------------------------------------------------------------------------


def audit_html(result: AuditResult, images: dict[str, bytes]) -> str:
    p = result.privacy
    e = html.escape
    priv_rows = [[e(m.method), str(m.probes), percent(m.detection_rate), percent(m.mask_to_face_rank1),
                  percent(m.mask_to_face_rank1_box), percent(m.lineup_pick_rate),
                  percent(m.mask_to_mask_rank1) if m.mask_to_mask_rank1 is not None else "–",
                  percent(m.accept_at_match), percent(m.accept_at_far),
                  f"{e(m.commonest_nearest or '–')} ({percent(m.commonest_nearest_share)})"] for m in p.methods]
    chance_row = ["<i>chance</i>", "", "", percent(p.chance), percent(p.chance), percent(1 / p.lineup_size),
                  percent(p.link_chance) if p.link_chance is not None else "–", "", "", f"({percent(p.chance)})"]
    priv = _table(priv_rows + [chance_row], [
        "method", "probes", "face detected", "Mask→Face rank-1 (own detection)", "Mask→Face rank-1 (original box)",
        f"1-of-{p.lineup_size} lineup pick rate", "Mask→Mask rank-1", "accepted at 0.6",
        f"accepted at {number(p.threshold_far, 3)} ({percent(p.far)} FAR)",
        "commonest nearest identity (share of probes)"])
    acc = _table([[e(a), v, e(b), "–" if ok is None else ("pass" if ok else "<b>FAIL</b>")]
                  for a, v, b, ok in acceptance(result)], ["measure", "value", "bar", ""])
    fid = ""
    if result.pooled is not None:
        pooled = result.pooled
        rows = [[e(a.name), str(a.n), number(a.icc), f"{number(a.bland_altman.bias)} {a.unit}",
                 f"{number(a.bland_altman.lower)} to {number(a.bland_altman.upper)} {a.unit}",
                 f"{number(a.bland_altman.mean_abs_diff)} {a.unit}", f"±{a.tolerance:g} {a.unit}",
                 "–" if a.passed is None else ("pass" if a.passed else "<b>FAIL</b>")] for a in pooled.measures]
        header = ["measure", "frames", "ICC(2,1)", "bias", "95% limits", "mean |difference|", "tolerance", ""]
        b = pooled.blinks
        per_video = []
        for f in result.fidelity:
            per_video.append(f"<h3>{e(f.source)}</h3>")
            per_video.append(_table([[e(a.name), str(a.n), number(a.icc), f"{number(a.bland_altman.bias)} {a.unit}",
                                      f"{number(a.bland_altman.lower)} to {number(a.bland_altman.upper)} {a.unit}",
                                      f"{number(a.bland_altman.mean_abs_diff)} {a.unit}",
                                      "–" if a.passed is None else ("pass" if a.passed else "<b>FAIL</b>")]
                                     for a in f.measures], header[:6] + [""]))
            ny = "; ".join(f"{x.eye}: {number(x.original_hz)} → {number(x.masked_hz)} Hz "
                           f"({'pass' if x.passed else 'FAIL'})" for x in f.nystagmus)
            per_video.append(f"<p>Blinks: {f.blinks.reference} in the original, {f.blinks.found} in the mask, "
                             f"F1 {number(f.blinks.f1)}. Nystagmus (– absent) {ny}.</p>")
            key = f"series_{Path(f.source).stem}"
            if key in images:
                per_video.append(_img(images[key], f"{f.source} time series"))
        fid = f"""<h2>Fidelity (dmask measure on original and mask)</h2>
<p>Frames valid in both videos, all {pooled.videos} videos pooled. Pass: mean absolute difference within
the tolerance. Blinks: {b.reference} in the originals, {b.found} in the masks, {b.matched} matched, F1
{number(b.f1)}. Nystagmus agrees (both absent, or frequency within 0.2 Hz) in {pooled.nystagmus_passed} of
{pooled.nystagmus_eyes} eyes.</p>
{_table(rows, header)}
{_img(images["bland_altman"], "Bland-Altman") if "bland_altman" in images else ""}
<h2>Per video</h2>
{"".join(per_video)}"""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dmask audit</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:1em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:0.5em 0}}td,th{{border:1px solid #ccc;padding:3px 7px;font-size:13px}}
img{{max-width:100%}}</style></head><body>
<h1>dmask privacy and fidelity audit</h1>
<p>{len(result.videos)} video(s), gallery: {e(str(result.gallery))}; {p.identities} identities in the closed set
({p.gallery_identities} from the gallery); {result.options.frames_per_video} probe frames per video.
Recognizer: dlib ResNet (face_recognition), match below 0.6. {e(masks_made(result))}</p>
<h2>Acceptance</h2>{acc}
<h2>Privacy</h2>
<p>Probes: anonymized frames; references: other original frames of each video, plus the gallery. "Original box":
the probe is embedded in the face box of the original frame, so a method cannot hide a face by making it
undetectable. Lineups, Mask→Mask and verification use the original box. Original probes are accepted as themselves
at 0.6 in {percent(p.genuine_accept_at_match)} of frames.</p>
{priv}
{fid}
<p><small>Written by dmask, schema {SCHEMA}.</small></p>
</body></html>
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def write_audit(result: AuditResult, out_dir) -> dict[str, Path]:
    """Write audit.json, plots/*.png and audit.html into ``out_dir`` (created). Returns the paths."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "audit.json", "html": out / "audit.html"}
    paths["json"].write_text(json.dumps(audit_dict(result), indent=2), encoding="utf-8")
    images = {}
    if result.pooled is not None:
        images["bland_altman"] = _png(plot_bland_altman(result))
        for f in result.fidelity:
            images[f"series_{Path(f.source).stem}"] = _png(plot_series(f))
    for name, png in images.items():
        paths[f"plot_{name}"] = out / "plots" / f"{name}.png"
        paths[f"plot_{name}"].write_bytes(png)
    paths["html"].write_text(audit_html(result, images), encoding="utf-8")
    return paths
