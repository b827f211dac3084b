"""Writing a Measurement: per-frame CSV, summary JSON, plots (PNG) and one self-contained HTML report.

``write_report(measurement, out_dir)`` writes

* ``measurements.csv``: one row per frame, the columns of ``measure.COLUMNS`` (units in the names);
* ``summary.json``: schema ``dmask-measure/1`` (see ``summary_dict``), with the column documentation;
* ``plots/*.png``: time on x, physical units on y, events marked, invalid frames greyed;
* ``report.html``: the summary, warnings and every plot embedded as base64 PNG; it loads nothing.

Plots use matplotlib's object API (``Figure``), never pyplot, so no global backend is touched.
"""
from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from .measure import COLUMNS, EYES, SCHEMA, Measurement

EYE_COLOURS = ("#1f77b4", "#d62728")  # right, left
INVALID_GREY = "#d9d9d9"
# A value axis reaches as far as its values, but no further than the spread between these percentiles
# beyond them (``robust_limits``): near 90 deg between the eyes, 100 tan(theta) runs to thousands of PD in
# a frame or two, which would flatten the rest of a deviation trace; what lies beyond is counted on the plot.
AXIS_PERCENTILES = (1.0, 99.0)


# --- CSV and JSON -------------------------------------------------------------------------------


def _cell(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(v) else f"{float(v):.4g}"
    return str(v)


def write_csv(m: Measurement, path) -> None:
    """Per-frame table: a header row of column names, then one row per frame; empty cells where a
    value does not exist (face not found). Booleans are 0/1."""
    cols = m.columns()
    names = list(cols)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for i in range(m.frames.n_frames):
            w.writerow([_cell(cols[c][i]) for c in names])


def _plain(x):
    """dataclasses / numpy -> JSON-ready Python values (NaN -> None)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(x) else float(x)
    return x


def summary_dict(m: Measurement) -> dict:
    """The JSON summary (schema ``dmask-measure/1``).

    Keys: schema, source, frames, fps, duration_s, iris_diameter_mm, options, quality (frame counts),
    summary (per-eye lids and gaze, deviation, head pose, blinks, nystagmus per eye, saccades,
    facial symmetry; each value's median/p5/p95 over valid frames), events (blinks, saccades,
    fixations), nystagmus_windows, warnings, units, columns (the CSV's columns: name, unit, meaning).
    Per-eye lists are [right, left]. Missing values are null.
    """
    fm = m.frames
    usable = fm.face_found & ~fm.head_turned
    return {
        "schema": SCHEMA,
        "source": m.source,
        "frames": fm.n_frames,
        "fps": m.fps,
        "duration_s": m.duration_s,
        "iris_diameter_mm": m.iris_diameter_mm,
        "options": _plain(m.options),
        "quality": {
            "face_found": int(fm.face_found.sum()),
            "head_turned": int(fm.head_turned.sum()),
            "usable": int(usable.sum()),
            "valid_right": int(fm.valid[:, 0].sum()),
            "valid_left": int(fm.valid[:, 1].sum()),
            "valid_both": int(fm.valid.all(axis=1).sum()),
            "nyquist_hz": None if m.fps is None else m.fps / 2,
        },
        "summary": _plain(m.summary),
        "events": {
            "blinks": [dict(_plain(b), full=b.full) for b in m.blinks],
            "saccades": _plain(m.saccades),
            "fixations": _plain(m.fixations),
        },
        "nystagmus_windows": _plain(m.nystagmus_windows),
        "warnings": list(m.warnings),
        "units": {"length": "mm", "angle": "deg", "deviation": "deg and prism dioptres (PD = 100 tan)",
                  "time": "s", "frequency": "Hz", "velocity": "deg/s", "eyes": "[right, left] (the subject's)"},
        "columns": [{"name": n, "unit": u, "meaning": d} for n, u, d in COLUMNS],
    }


def write_json(m: Measurement, path) -> None:
    with open(path, "w") as f:
        json.dump(summary_dict(m), f, indent=2)


# --- plots --------------------------------------------------------------------------------------


def _figure(rows: int, title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 2.4 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(title, fontsize=12)
    return fig, axes


def _shade(ax, t: np.ndarray, mask: np.ndarray, colour: str, alpha: float = 1.0, label: str | None = None) -> None:
    """Shade the time spans where ``mask`` holds."""
    if len(t) == 0:
        return
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    first = True
    for a, b in _spans(mask):
        ax.axvspan(t[a] - dt / 2, t[b] + dt / 2, color=colour, alpha=alpha, lw=0, zorder=0,
                   label=label if first else None)
        first = False


def _spans(mask: np.ndarray):
    idx = np.flatnonzero(np.asarray(mask, bool))
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]]
    return list(zip(starts, ends))


def _finish(ax, ylabel: str) -> None:
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper right", fontsize=8, ncol=4, framealpha=0.8)


def robust_limits(set_limits, values: np.ndarray, include=()) -> np.ndarray:
    """Set an axis (``set_limits``, e.g. ``ax.set_ylim``) over the finite ``values``: as far as they reach,
    but no further than one spread between AXIS_PERCENTILES beyond those percentiles, and over the values
    of ``include``; padded by 5 %. Returns the mask of the values left off the axis."""
    values = np.asarray(values, float)
    shown = values[np.isfinite(values)]
    if not shown.size:
        return np.zeros(values.shape, bool)
    p_lo, p_hi = np.percentile(shown, AXIS_PERCENTILES)
    lo, hi = max(shown.min(), 2 * p_lo - p_hi), min(shown.max(), 2 * p_hi - p_lo)
    lo, hi = min([lo, *include]), max([hi, *include])
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    set_limits(lo - pad, hi + pad)
    with np.errstate(invalid="ignore"):
        return (values < lo) | (values > hi)


def _corner_note(ax, text: str) -> None:
    ax.text(0.995, 0.05, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            bbox=dict(facecolor="white", alpha=0.8, lw=0))


def _per_eye(ax, t, values, valid, name: str) -> None:
    for e in range(2):
        y = np.where(valid[:, e], values[:, e], np.nan)
        ax.plot(t, y, color=EYE_COLOURS[e], lw=1.2, label=f"{name} {EYES[e]}")


def plot_lids(m: Measurement):
    fm, t = m.frames, m.frames.time_s
    fig, axes = _figure(3, "Lids (valid frames; grey: face lost or head turned; yellow: blinks)")
    bad = ~fm.face_found | fm.head_turned
    for ax in axes:
        _shade(ax, t, bad, INVALID_GREY)
        _shade(ax, t, fm.blink > 0, "#ffe08a", 0.8)
    _per_eye(axes[0], t, fm.fissure_height, fm.valid, "fissure height")
    _finish(axes[0], "fissure height (mm)")
    _per_eye(axes[1], t, fm.mrd1, fm.valid, "MRD1")
    for e in range(2):
        axes[1].plot(t, np.where(fm.valid[:, e], fm.mrd2[:, e], np.nan), color=EYE_COLOURS[e], lw=1.0, ls="--",
                     label=f"MRD2 {EYES[e]}")
    _finish(axes[1], "MRD1 (solid), MRD2 (dashed) (mm)")
    _per_eye(axes[2], t, fm.scleral_show_upper, fm.valid, "scleral show above")
    for e in range(2):
        axes[2].plot(t, np.where(fm.valid[:, e], fm.scleral_show_lower[:, e], np.nan), color=EYE_COLOURS[e], lw=1.0,
                     ls="--", label=f"below {EYES[e]}")
    _finish(axes[2], "scleral show (mm)")
    axes[-1].set_xlabel("time (s)")
    return fig


def plot_blinks(m: Measurement):
    fm, t = m.frames, m.frames.time_s
    fig, axes = _figure(1, f"Blinks: {len(m.blinks)} ({m.summary.blinks.full} full, {m.summary.blinks.incomplete} "
                           f"incomplete, {m.summary.blinks.asymmetric} asymmetric)")
    ax = axes[0]
    _shade(ax, t, ~fm.face_found | fm.head_turned, INVALID_GREY)
    found = fm.face_found[:, None] & ~fm.head_turned[:, None]
    _per_eye(ax, t, fm.openness, np.repeat(found, 2, axis=1), "openness")
    ax.axhline(0.5, color="k", lw=0.8, ls=":", label="blink threshold")
    for b in m.blinks:
        colour = "#2ca02c" if b.full else "#ff7f0e"
        ax.axvspan(b.start_s, b.end_s + (1 / m.fps if m.fps else 0), color=colour, alpha=0.25, lw=0)
        ax.annotate(("full" if b.full else "incomplete") + (" asym." if b.asymmetric else ""),
                    (b.start_s, 1.05), fontsize=7, rotation=90, va="bottom")
    ax.set_ylim(-0.05, 1.6)
    _finish(ax, "lid gap / usual open gap")
    ax.set_xlabel("time (s) — green: full blink, orange: incomplete")
    return fig


def plot_gaze(m: Measurement):
    fm, t = m.frames, m.frames.time_s
    fig, axes = _figure(2, "Gaze of each eye in the head (dotted lines: saccades; purple: nystagmus)")
    for k, ax in enumerate(axes):
        _shade(ax, t, ~fm.face_found | fm.head_turned, INVALID_GREY)
        _shade(ax, t, fm.nystagmus.any(axis=1), "#e5d4f5", 0.9, "nystagmus")
        _per_eye(ax, t, fm.gaze[:, :, k], fm.valid, "yaw" if k == 0 else "pitch")
        for s in m.saccades:
            ax.axvline(s.start_s, color="k", lw=0.7, ls=":", alpha=0.8)
    _finish(axes[0], "yaw (deg, + to subject's left)")
    _finish(axes[1], "pitch (deg, + up)")
    axes[-1].set_xlabel("time (s)")
    return fig


def plot_deviation(m: Measurement):
    fm, t = m.frames, m.frames.time_s
    thr = m.options.deviation_threshold_pd
    d = m.summary.deviation
    fig, axes = _figure(2, f"Deviation between the eyes: horizontal {d.horizontal_label}, vertical {d.vertical_label} "
                           "(green: steady fixation)")
    both = fm.valid.all(axis=1)
    pd = fm.deviation_pd
    for k, ax in enumerate(axes):
        _shade(ax, t, ~both, INVALID_GREY)
        _shade(ax, t, fm.fixation & both, "#d8f0d8", 1.0, "steady fixation")
        y = np.where(both, pd[:, k], np.nan)
        ax.plot(t, y, color="k", lw=1.2)
        ax.axhspan(-thr, thr, color="#aaaaaa", alpha=0.25, lw=0, label=f"ortho (±{thr:g} PD)")
        ax.axhline(0, color="k", lw=0.5)
        off = robust_limits(ax.set_ylim, y, (-2 * thr, 2 * thr))
        if off.any():
            _corner_note(ax, f"{off.sum()} frame(s) off the axis, up to {y[off][np.argmax(np.abs(y[off]))]:.0f} PD")
    axes[0].text(0.005, 0.95, "eso (convergent) ↑", transform=axes[0].transAxes, va="top", fontsize=8)
    axes[0].text(0.005, 0.05, "exo (divergent) ↓", transform=axes[0].transAxes, va="bottom", fontsize=8)
    axes[1].text(0.005, 0.95, "right hyper ↑", transform=axes[1].transAxes, va="top", fontsize=8)
    axes[1].text(0.005, 0.05, "right hypo ↓", transform=axes[1].transAxes, va="bottom", fontsize=8)
    _finish(axes[0], "horizontal (PD)")
    _finish(axes[1], "vertical (PD)")
    axes[-1].set_xlabel("time (s)")
    return fig


def plot_head(m: Measurement):
    fm, t = m.frames, m.frames.time_s
    lim = m.options.max_head_turn_deg
    fig, axes = _figure(1, f"Head pose ({m.summary.head.posture})")
    ax = axes[0]
    _shade(ax, t, ~fm.face_found, INVALID_GREY)
    _shade(ax, t, fm.head_turned, "#f7c6c6", 1.0, f"turned > {lim:g} deg")
    for k, (name, colour) in enumerate((("yaw", "#1f77b4"), ("pitch", "#2ca02c"), ("roll", "#ff7f0e"))):
        ax.plot(t, fm.head_pose[:, k], color=colour, lw=1.2, label=name)
    ax.axhline(0, color="k", lw=0.5)
    _finish(ax, "angle (deg)")
    ax.set_xlabel("time (s)")
    return fig


def plot_nystagmus(m: Measurement):
    fig, axes = _figure(2, "Nystagmus search (windows of the gaze trace; filled: nystagmus found)")
    for e in range(2):
        w = [x for x in m.nystagmus_windows if x.eye == e]
        if not w:
            continue
        tc = np.array([x.centre_s for x in w])
        present = np.array([x.present for x in w])
        for ax, values in ((axes[0], [x.frequency_hz for x in w]), (axes[1], [x.amplitude_deg for x in w])):
            values = np.array(values)
            ax.plot(tc, values, "o", mfc="none", color=EYE_COLOURS[e], ms=4, label=f"{EYES[e]} (all windows)")
            ax.plot(tc[present], values[present], "o", color=EYE_COLOURS[e], ms=5, label=f"{EYES[e]} nystagmus")
    if m.fps:
        axes[0].axhline(m.fps / 2, color="k", ls=":", lw=0.8, label=f"Nyquist limit ({m.fps / 2:.1f} Hz)")
    _finish(axes[0], "frequency (Hz)")
    _finish(axes[1], "amplitude (deg, peak to peak)")
    axes[-1].set_xlabel("time (s, window centre)")
    return fig


def plot_symmetry(m: Measurement):
    fm, t = m.frames, m.frames.time_s
    fig, axes = _figure(2, "Facial movement, right against left (from the neutral face)")
    usable = np.repeat((fm.face_found & ~fm.head_turned)[:, None], 2, axis=1)
    for ax in axes:
        _shade(ax, t, ~fm.face_found | fm.head_turned, INVALID_GREY)
    _per_eye(axes[0], t, fm.mouth_corner, usable, "mouth corner")
    _per_eye(axes[1], t, fm.brow, usable, "brow")
    _finish(axes[0], "mouth corner movement (mm)")
    _finish(axes[1], "brow raise (mm)")
    axes[-1].set_xlabel("time (s)")
    return fig


PLOTS = {
    "lids": plot_lids,
    "blinks": plot_blinks,
    "gaze": plot_gaze,
    "deviation": plot_deviation,
    "head_pose": plot_head,
    "nystagmus": plot_nystagmus,
    "symmetry": plot_symmetry,
}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


# --- HTML ---------------------------------------------------------------------------------------


def _fmt(v, unit: str = "", digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v)}{unit}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}f}{unit}"
    return html.escape(str(v))


def _stat(s, unit: str, digits: int = 1) -> str:
    if s.median is None:
        return "–"
    return f"{s.median:.{digits}f}{unit} <small>({s.p5:.{digits}f} to {s.p95:.{digits}f}, n={s.n})</small>"


def _table(rows, header=None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def report_html(m: Measurement, images: dict[str, bytes]) -> str:
    """One self-contained HTML page: every image inline (base64), no script, no external link."""
    s = m.summary
    fps = "unknown (a single image)" if m.fps is None else f"{m.fps:.2f} fps (from the frame timestamps)"
    def both_eyes(label: str, name: str, unit: str, digits: int = 1) -> list[str]:
        return [label] + [_stat(getattr(s.eyes[e], name), unit, digits) for e in range(2)]

    lid_rows = [
        both_eyes("Palpebral fissure height", "fissure_height_mm", " mm"),
        both_eyes("Palpebral fissure width", "fissure_width_mm", " mm"),
        both_eyes("MRD1", "mrd1_mm", " mm"),
        both_eyes("MRD2", "mrd2_mm", " mm"),
        both_eyes("Lid-opening ratio (height / width)", "opening_ratio", "", 2),
        both_eyes("Scleral show above", "scleral_show_upper_mm", " mm"),
        both_eyes("Scleral show below", "scleral_show_lower_mm", " mm"),
        both_eyes("Gaze yaw (+ to subject's left)", "gaze_yaw_deg", "°"),
        both_eyes("Gaze pitch (+ up)", "gaze_pitch_deg", "°"),
    ]
    d = s.deviation
    dev_rows = [
        ["Horizontal", f"<b>{d.horizontal_label}</b>", _fmt(d.fixation_horizontal_pd, " PD"),
         _stat(d.horizontal_pd, " PD"), _stat(d.horizontal_deg, "°"), f"eso {d.share_eso:.0%}, exo {d.share_exo:.0%}"],
        ["Vertical (right eye against left)", f"<b>{d.vertical_label}</b>", _fmt(d.fixation_vertical_pd, " PD"),
         _stat(d.vertical_pd, " PD"), _stat(d.vertical_deg, "°"),
         f"hyper {d.share_hyper:.0%}, hypo {d.share_hypo:.0%}"],
    ]
    h = s.head
    head_rows = [["Yaw", _stat(h.yaw_deg, "°")], ["Pitch", _stat(h.pitch_deg, "°")], ["Roll", _stat(h.roll_deg, "°")],
                 ["Frames turned beyond the limit", f"{h.share_turned:.0%}"],
                 ["Head posture", f"<b>{html.escape(h.posture)}</b>"]]
    b = s.blinks
    blink_rows = [["Blinks", _fmt(b.count)], ["Rate", _fmt(b.rate_per_min, " /min")], ["Full", _fmt(b.full)],
                  ["Incomplete", _fmt(b.incomplete)], ["Asymmetric", _fmt(b.asymmetric)],
                  ["Prolonged (> 1 s)", _fmt(b.prolonged)],
                  ["Duration below half opening", _stat(b.duration_s, " s", 2)]]
    event_rows = [[j, f"{e.start_s:.2f}", f"{e.end_s:.2f}", f"{e.duration_s:.2f}",
                   f"{e.closure[0]:.0%} / {e.closure[1]:.0%}", "full" if e.full else "incomplete",
                   "yes" if e.asymmetric else "", "yes" if e.prolonged else ""] for j, e in enumerate(m.blinks, 1)]
    ny_rows = []
    for e, n in enumerate(s.nystagmus):
        ny_rows.append([EYES[e], _fmt(n.present), _fmt(n.analysed_s, " s"), f"{n.share:.0%}",
                        _fmt(n.frequency_hz, " Hz", 2), _fmt(n.amplitude_deg, "°"), _fmt(n.direction),
                        _fmt(n.waveform), _fmt(n.fast_phase), _fmt(n.sampling_ok)])
    sa = s.saccades
    sacc_rows = [["Saccades", _fmt(sa.count)], ["Rate", _fmt(sa.rate_per_min, " /min")],
                 ["Amplitude", _stat(sa.amplitude_deg, "°")],
                 ["Peak velocity (lower bound at this frame rate)", _stat(sa.peak_velocity_deg_s, "°/s", 0)]]
    blink_header = ["#", "start (s)", "end (s)", "duration (s)", "closure right / left", "completeness", "asymmetric",
                    "prolonged"]
    ny_header = ["eye", "present", "analysed", "share of valid frames", "frequency", "amplitude", "direction",
                 "waveform", "fast phase", "sampling ok"]
    dev_header = ["", "label", "steady fixation", "all valid frames", "degrees", "share of frames"]
    sy = s.symmetry
    sym_rows = [["Mouth corner", _fmt(sy.mouth_corner_right_mm, " mm"), _fmt(sy.mouth_corner_left_mm, " mm"),
                 _fmt(None if sy.mouth_ratio is None else 100 * sy.mouth_ratio, " %", 0), _fmt(sy.mouth_weaker)],
                ["Brow", _fmt(sy.brow_right_mm, " mm"), _fmt(sy.brow_left_mm, " mm"),
                 _fmt(None if sy.brow_ratio is None else 100 * sy.brow_ratio, " %", 0), _fmt(sy.brow_weaker)]]
    nyquist = ("a single image has no time axis." if m.fps is None else
               f"at {m.fps:.1f} fps frequencies above {m.fps / 2:.1f} Hz cannot be seen, and those near it may be "
               "aliased.")
    fm = m.frames
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in m.warnings) or "<li>none</li>"
    figs = "\n".join(
        f'<h3>{html.escape(name.replace("_", " "))}</h3><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}">' for name, png in images.items())
    cols = _table([[f"<code>{n}</code>", u, html.escape(dsc)] for n, u, dsc in COLUMNS], ["column", "unit", "meaning"])
    title = html.escape(f"dmask measurements: {m.source}" if m.source else "dmask measurements")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }} img {{ max-width: 100%; }} small {{ color: #666; }}
.warn {{ background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5em 1em; }}
</style></head><body>
<h1>{title}</h1>
<p>Frame rate used: <b>{fps}</b>; {fm.n_frames} frames, {m.duration_s:.1f} s. Face found in
{int(fm.face_found.sum())} frames; valid right eye {int(fm.valid[:, 0].sum())}, left eye {int(fm.valid[:, 1].sum())}.
Scale: visible horizontal iris diameter {m.iris_diameter_mm:g} mm. Values are medians over valid frames (face
found, head turned less than {m.options.max_head_turn_deg:g}°, eye open) with the 5th to 95th percentile. Right and
left are the subject's.</p>
<div class="warn"><b>Warnings</b><ul>{warn}</ul></div>
<h2>Lids and gaze</h2>{_table(lid_rows, ["", "right eye", "left eye"])}
<h2>Deviation between the eyes</h2>
<p>Right eye minus left eye; prism dioptres PD = 100·tan(angle). Labels from steady fixation when there is enough of
it, else from all frames; within ±{m.options.deviation_threshold_pd:g} PD is ortho. Zero is the template's primary
position, an average of people looking at a camera.</p>
{_table(dev_rows, dev_header)}
<h2>Head pose</h2>{_table(head_rows)}
<h2>Blinks</h2>{_table(blink_rows)}
{_table(event_rows, blink_header) if event_rows else ""}
<h2>Nystagmus</h2>
<p>Amplitude peak to peak. Sampling needs at least twice the nystagmus frequency: {nyquist}</p>
{_table(ny_rows, ny_header)}
<h2>Saccades</h2>{_table(sacc_rows)}
<h2>Facial symmetry</h2>
{_table(sym_rows, ["", "right", "left", "weaker / stronger", "weaker side"])}
<h2>Plots</h2>
{figs}
<h2>Per-frame CSV columns</h2>{cols}
<p><small>Written by dmask, summary schema {SCHEMA}.</small></p>
</body></html>
"""


def write_report(m: Measurement, out_dir) -> dict[str, Path]:
    """Write CSV, JSON, plots and the HTML report into ``out_dir`` (created). Returns the paths."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "measurements.csv", "json": out / "summary.json", "html": out / "report.html"}
    write_csv(m, paths["csv"])
    write_json(m, paths["json"])
    images = {}
    for name, plot in PLOTS.items():
        images[name] = _png(plot(m))
        paths[f"plot_{name}"] = out / "plots" / f"{name}.png"
        paths[f"plot_{name}"].write_bytes(images[name])
    paths["html"].write_text(report_html(m, images), encoding="utf-8")
    return paths
