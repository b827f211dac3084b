"""Accuracy of ``dmask measure`` on rendered synthetic clips with exact ground truth, as a markdown table.

    python tools/synth_accuracy.py [--out DIR]     # under a minute

Renders every clip of ``synth.ACCURACY_SPECS`` (the clips of the issue's bars; tests/test_measure.py
asserts the bars met there), of ``synth.VALIDATION_SPECS`` (held out until they informed the lid search and
the lid-course fit) and of ``synth.HELD_OUT_SPECS`` (held out until they informed the pitch following and
the limbus edge-point limit, then on the points' height beside the iris), of ``synth.HELD_OUT_2_SPECS`` (held out
until they informed the limbus fit's lid clearance, fit.LIMBUS_LID_CLEARANCE) and of
``synth.HELD_OUT_3_SPECS`` (held out but for the video's scale from the limbus, after their first
measurement), measures
each with ``measure_video`` and prints ``synth.accuracy`` per clip and eye (right / left): the median
|error| of gaze yaw and pitch (deg), MRD1 and fissure height (mm), the deviation error (PD, horizontal /
vertical), the nystagmus frequency error (Hz) and relative amplitude error, blinks found / invented /
missed, and the worst fixation's errors (gaze yaw and pitch, MRD1, fissure height); then, per set, how
many eyes (or clips) meet each bar, and how many have every fixation within it. The clips are kept in
--out when given.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dmask import measure_video  # noqa: E402
from dmask.synth import (ACCURACY_SPECS, HELD_OUT_2_SPECS, HELD_OUT_3_SPECS, HELD_OUT_SPECS, VALIDATION_SPECS,  # noqa: E402
                         accuracy, f1, write_synthetic)

SETS = (("Accuracy clips (synth.ACCURACY_SPECS)", ACCURACY_SPECS),
        ("Validation clips (synth.VALIDATION_SPECS)", VALIDATION_SPECS),
        ("Held-out clips (synth.HELD_OUT_SPECS)", HELD_OUT_SPECS),
        ("Second held-out clips (synth.HELD_OUT_2_SPECS)", HELD_OUT_2_SPECS),
        ("Third held-out clips (synth.HELD_OUT_3_SPECS)", HELD_OUT_3_SPECS))
# The bars: (key of synth.accuracy, limit on each eye's |error|).
BARS = (("gaze_yaw_deg", 2.0), ("gaze_pitch_deg", 2.0), ("deviation_pd", 2.0), ("mrd1_mm", 0.3),
        ("fissure_height_mm", 0.3), ("nystagmus_frequency_hz", 0.2), ("nystagmus_amplitude_rel", 0.25))
BLINK_F1 = 0.95
COLUMNS = ("gaze_yaw_deg", "gaze_pitch_deg", "deviation_pd", "mrd1_mm", "fissure_height_mm",
           "nystagmus_frequency_hz", "nystagmus_amplitude_rel")
# Not bars of the (those are medians over the clip): the worst single fixation's errors.
WORST = (("gaze_yaw_worst_fixation_deg", 2.0), ("gaze_pitch_worst_fixation_deg", 2.0),
         ("mrd1_worst_fixation_mm", 0.3), ("fissure_height_worst_fixation_mm", 0.3))


def _pair(values, signed: bool = False) -> str:
    return " / ".join("–" if v is None else (f"{v:+.0%}" if signed else f"{v:.2f}") for v in values)


def run(specs: dict, folder: Path) -> dict:
    """{clip: synth.accuracy(...)} of each spec rendered into folder."""
    out = {}
    for name, spec in specs.items():
        path = folder / f"{name}.mp4"
        truth = write_synthetic(spec, path)
        out[name] = accuracy(truth, measure_video(path))
    return out


def table(title: str, results: dict) -> list[str]:
    lines = [f"**{title}**", "", "| clip | yaw deg | pitch deg | deviation PD (h / v) | MRD1 mm | fissure mm "
             "| nystagmus Hz | nystagmus amplitude | blinks (found / invented / missed) "
             "| worst fixation: yaw deg | pitch deg | MRD1 mm | fissure mm |", "|---|" + "---|" * 12]
    for name, acc in results.items():
        cells = [_pair(acc[k], signed=k == "nystagmus_amplitude_rel") for k in COLUMNS]
        worst = [_pair(acc[k]) for k, _ in WORST]
        lines.append(f"| {name} | " + " | ".join(cells) + " | {} / {} / {} | ".format(*acc["blinks"])
                     + " | ".join(worst) + " |")
    met = []
    for key, limit in BARS + WORST:
        values = [v for acc in results.values() for v in acc[key] if v is not None]
        if values:
            met.append(f"{key} within {limit:g}: {sum(abs(v) <= limit for v in values)} of {len(values)}")
    counts = np.sum([acc["blinks"] for acc in results.values()], axis=0)
    met.append(f"blink F1 {f1(*counts):.2f} (bar {BLINK_F1})")
    return lines + ["", "; ".join(met) + ".", ""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="keep the rendered clips here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for title, specs in SETS:
            print("\n".join(table(title, run(specs, folder))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
