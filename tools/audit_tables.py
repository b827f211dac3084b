"""Markdown tables of an audit.json (schema dmask-audit/1), for docs/AUDIT.md.

    python tools/audit_tables.py /tmp/audit_run/audit.json > tables.md
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from dmask.audit.report import number as num, percent as pct


def tables(audit: dict) -> str:
    if audit.get("schema") != "dmask-audit/1":
        raise ValueError("not a dmask-audit/1 file")
    out = ["### Acceptance (as `dmask audit` printed it)", "", "| measure | value | bar | |", "|---|---|---|---|"]
    for a in audit["acceptance"]:
        out.append(f"| {a['measure']} | {a['value']} | {a['bar']} | {'pass' if a['passed'] else '**fail**'} |")

    p = audit["privacy"]
    out += ["", "### Privacy, every method", "",
            "| method | probes | face detected | Mask→Face rank-1 (own detection) | Mask→Face rank-1 (original box) "
            "| 1-of-6 lineup | Mask→Mask rank-1 | accepted at 0.6 | accepted at 1% FAR | commonest nearest identity |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for m in p["methods"]:
        out.append(f"| {m['method']} | {m['probes']} | {pct(m['detection_rate'])} | {pct(m['mask_to_face_rank1'])} | "
                   f"{pct(m['mask_to_face_rank1_box'])} | {pct(m['lineup_pick_rate'])} | {pct(m['mask_to_mask_rank1'])} | "
                   f"{pct(m['accept_at_match'])} | {pct(m['accept_at_far'])} | "
                   f"{m.get('commonest_nearest') or '–'} ({pct(m.get('commonest_nearest_share'))}) |")
    out.append(f"| chance | | | {pct(p['chance'])} | {pct(p['chance'])} | {pct(1 / p['lineup_size'])} | "
               f"{pct(p['link_chance'])} | | | ({pct(p['chance'])}) |")
    out += ["", f"{p['videos']} videos, {p['gallery_identities']} gallery identities, {p['identities']} identities in "
            f"the closed set. Threshold at {100 * p['far']:.0f}% false accepts among the originals: "
            f"{p['threshold_far']:.3f}. Original probes are accepted as themselves at 0.6 in "
            f"{pct(p['genuine_accept_at_match'])} of frames."
            + (f" Masks made by this run: {sum(v['made'] for v in audit['videos'])} of {len(audit['videos'])}."
               if all("made" in v for v in audit["videos"]) else "")]

    f = audit.get("fidelity")
    if f:
        pooled = f["pooled"]
        out += ["", f"### Fidelity (dmask, frames of all {pooled['videos']} videos pooled)", "",
                "| measure | frames | ICC(2,1) | bias | 95% limits | mean abs diff | tolerance | pass |",
                "|---|---|---|---|---|---|---|---|"]
        for m in pooled["measures"]:
            ba, unit = m["bland_altman"], m["unit"]
            out.append(f"| {m['name']} | {m['n']} | {num(m['icc'])} | {num(ba['bias'])} {unit} | "
                       f"{num(ba['lower'])} to {num(ba['upper'])} | {num(ba['mean_abs_diff'])} {unit} | "
                       f"±{m['tolerance']:g} {unit} | {'pass' if m['passed'] else 'fail'} |")
        b = pooled["blinks"]
        out += ["", f"Blinks: {b['reference']} in the originals, {b['found']} in the masks, {b['matched']} matched "
                f"(F1 {b['f1']:.2f}). Nystagmus agrees in {pooled['nystagmus_passed']} of {pooled['nystagmus_eyes']} eyes.",
                "", "ICC(2,1) per video:", ""]
        names = [m["name"] for m in pooled["measures"]]
        out += ["| video | " + " | ".join(names) + " | blink F1 |", "|---|" + "---|" * (len(names) + 1)]
        for v in f["videos"]:
            icc = {m["name"]: m["icc"] for m in v["measures"]}
            out.append(f"| {v['source']} | " + " | ".join(num(icc.get(n)) for n in names)
                       + f" | {num(v['blinks']['f1'])} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("audit_json", type=Path)
    args = p.parse_args(argv)
    print(tables(json.loads(args.audit_json.read_text())), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
