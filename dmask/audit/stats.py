"""Pure statistics of the audit: agreement (ICC, Bland-Altman, events) and identification (rank-1,
lineups, verification thresholds). numpy only; every function is checked on hand-computed cases.

Embeddings are rows of an (m, d) array; distances are Euclidean, as face_recognition's ``face_distance``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# --- agreement ----------------------------------------------------------------------------------


def icc_2_1(ratings: np.ndarray) -> float:
    """ICC(2,1) of Shrout & Fleiss (1979): two-way random effects, absolute agreement, one rater.

    ratings : (n, k) float, n targets (frames) rated by k raters (original, masked); rows holding a
    NaN are dropped. Returns NaN with fewer than 2 complete rows or no variance at all.

        ICC(2,1) = (BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n)

    with BMS the between-targets, JMS the between-raters and EMS the residual mean square. A constant
    offset between raters lowers it (absolute agreement), unlike a correlation.
    """
    y = np.asarray(ratings, float)
    if y.ndim != 2 or y.shape[1] < 2:
        raise ValueError(f"ratings must be (n targets, k >= 2 raters), got {y.shape}")
    y = y[np.isfinite(y).all(axis=1)]
    n, k = y.shape
    if n < 2:
        return float("nan")
    grand = y.mean()
    rows, cols = y.mean(axis=1), y.mean(axis=0)
    bms = k * ((rows - grand) ** 2).sum() / (n - 1)
    jms = n * ((cols - grand) ** 2).sum() / (k - 1)
    ems = ((y - rows[:, None] - cols[None, :] + grand) ** 2).sum() / ((n - 1) * (k - 1))
    denominator = bms + (k - 1) * ems + k * (jms - ems) / n
    return float((bms - ems) / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class BlandAltman:
    """Differences b - a (masked minus original) of paired values."""

    n: int
    bias: float  # mean difference
    sd: float  # standard deviation of the differences (n - 1)
    lower: float  # bias - 1.96 sd: 95 % limits of agreement
    upper: float  # bias + 1.96 sd
    mean_abs_diff: float


def bland_altman(a: np.ndarray, b: np.ndarray) -> BlandAltman:
    """Bland & Altman (1986) agreement of b with a. a, b : (n,); pairs with a NaN are dropped."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.shape} and {b.shape}")
    d = (b - a)[np.isfinite(a) & np.isfinite(b)]
    n = int(d.size)
    if n == 0:
        nan = float("nan")
        return BlandAltman(0, nan, nan, nan, nan, nan)
    bias = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    return BlandAltman(n=n, bias=bias, sd=sd, lower=bias - 1.96 * sd, upper=bias + 1.96 * sd,
                       mean_abs_diff=float(np.abs(d).mean()))


@dataclass(frozen=True)
class EventAgreement:
    reference: int  # events in the original
    found: int  # events in the masked video
    matched: int  # one-to-one pairs that overlap in time
    precision: float | None
    recall: float | None
    f1: float | None  # None when neither video has an event


def event_f1(reference, found, tolerance: int = 0) -> EventAgreement:
    """Agreement of two lists of events (first, last frame), e.g. blinks.

    Two events match when their frame spans overlap once each is widened by ``tolerance`` frames;
    each event matches at most one other (greedy, in time order). F1 = 2 matched / (reference + found).
    """
    ref = sorted((int(a), int(b)) for a, b in reference)
    got = sorted((int(a), int(b)) for a, b in found)
    used = [False] * len(got)
    matched = 0
    for a, b in ref:
        for j, (c, d) in enumerate(got):
            if not used[j] and c - tolerance <= b and a - tolerance <= d:
                used[j] = True
                matched += 1
                break
    total = len(ref) + len(got)
    return EventAgreement(
        reference=len(ref), found=len(got), matched=matched,
        precision=matched / len(got) if got else None, recall=matched / len(ref) if ref else None,
        f1=2 * matched / total if total else None,
    )


# --- identification -----------------------------------------------------------------------------


def distances(probes: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Euclidean distances. probes : (m, d), candidates : (c, d) -> (m, c)."""
    p, c = np.asarray(probes, float), np.asarray(candidates, float)
    if p.size == 0 or c.size == 0:
        return np.zeros((p.shape[0] if p.ndim == 2 else 0, c.shape[0] if c.ndim == 2 else 0))
    return np.linalg.norm(p[:, None, :] - c[None, :, :], axis=-1)


def identity_distances(probes: np.ndarray, candidates: np.ndarray, labels) -> tuple[list, np.ndarray]:
    """Distance of each probe to each candidate identity: the least over that identity's embeddings.

    probes : (m, d); candidates : (c, d); labels : c identity names. Returns (identities in first-seen
    order, (m, number of identities)).
    """
    labels = list(labels)
    names = list(dict.fromkeys(labels))
    d = distances(probes, candidates)
    per = np.full((d.shape[0], len(names)), np.inf)
    for j, name in enumerate(names):
        cols = [i for i, lab in enumerate(labels) if lab == name]
        if cols and d.shape[0]:
            per[:, j] = d[:, cols].min(axis=1)
    return names, per


def rank1(probes: np.ndarray, probe_labels, candidates: np.ndarray, candidate_labels) -> float:
    """Closed-set rank-1 identification rate: the share of probes whose nearest candidate identity
    (``identity_distances``) is their own. NaN without probes. Ties go to the identity seen first."""
    probe_labels = list(probe_labels)
    if not probe_labels:
        return float("nan")
    names, per = identity_distances(probes, candidates, candidate_labels)
    missing = set(probe_labels) - set(names)
    if missing:
        raise ValueError(f"probe identities missing from the candidates: {sorted(missing)}")
    best = per.argmin(axis=1)
    return float(np.mean([names[b] == lab for b, lab in zip(best, probe_labels)]))


def commonest_nearest(probes: np.ndarray, candidates: np.ndarray, candidate_labels) -> tuple[str | None, float]:
    """The identity most often nearest to the probes (``identity_distances``) and the share of probes
    it is nearest to; (None, NaN) without probes. An anonymizer whose outputs all look like one
    person draws every probe to that identity, whoever the patient: that person's own probes then
    count as re-identified and may be accepted as them. Ties go to the identity seen first."""
    if len(probes) == 0:
        return None, float("nan")
    names, per = identity_distances(probes, candidates, candidate_labels)
    counts = np.bincount(per.argmin(axis=1), minlength=len(names))
    top = int(counts.argmax())
    return names[top], float(counts[top] / len(probes))


def lineup_pick_rate(probes: np.ndarray, probe_labels, references: np.ndarray, reference_labels,
                     size: int = 6, trials: int = 1000, seed: int = 0) -> float:
    """1-of-``size`` lineups judged by the recognizer (the Digital Mask paper's protocol).

    Each trial draws a probe at random, one reference of its identity (the true original) and one
    reference of each of ``size - 1`` other identities drawn at random; the judge picks the lineup
    member nearest to the probe (members in random order, so ties fall at random). Returns the share
    of trials where it picked the true original (chance 1 / size). Raises when fewer than ``size`` identities have references.
    """
    probe_labels = list(probe_labels)
    reference_labels = list(reference_labels)
    by_name: dict = {}
    for i, lab in enumerate(reference_labels):
        by_name.setdefault(lab, []).append(i)
    if len(by_name) < size:
        raise ValueError(f"a lineup of {size} needs references of {size} identities, got {len(by_name)}")
    usable = [i for i, lab in enumerate(probe_labels) if lab in by_name]
    if not usable:
        return float("nan")
    rng = np.random.default_rng(seed)
    refs = np.asarray(references, float)
    probes = np.asarray(probes, float)
    hits = 0
    for _ in range(trials):
        p = usable[rng.integers(len(usable))]
        true = probe_labels[p]
        others = [n for n in by_name if n != true]
        names = [true] + [others[j] for j in rng.choice(len(others), size - 1, replace=False)]
        members = [by_name[n][rng.integers(len(by_name[n]))] for n in names]
        order = rng.permutation(size)  # shown in random order, so that ties cannot favour the true one
        d = np.linalg.norm(refs[members][order] - probes[p], axis=1)
        hits += int(order[np.argmin(d)] == 0)
    return hits / trials


def acceptance(probes: np.ndarray, probe_labels, references: np.ndarray, reference_labels,
               threshold: float) -> float:
    """Verification: the share of probes accepted as their claimed identity, that is nearer than
    ``threshold`` to at least one of its references. NaN without probes."""
    probe_labels = list(probe_labels)
    if not probe_labels:
        return float("nan")
    names, per = identity_distances(probes, references, reference_labels)
    own = np.array([per[i, names.index(lab)] for i, lab in enumerate(probe_labels)])
    return float(np.mean(own < threshold))


def impostor_scores(probes: np.ndarray, probe_labels, references: np.ndarray, reference_labels) -> np.ndarray:
    """Distance of each probe to every identity other than its own (least over that identity's
    references), flattened: the scores of impostor verification attempts."""
    probe_labels = list(probe_labels)
    names, per = identity_distances(probes, references, reference_labels)
    keep = np.array([[n != lab for n in names] for lab in probe_labels], bool).reshape(per.shape)
    return per[keep]


def threshold_at_far(impostor: np.ndarray, far: float = 0.01) -> float:
    """The largest threshold that accepts (distance < threshold) at most ``far`` of the impostor
    attempts: the (floor(far * n) + 1)-th smallest impostor distance."""
    s = np.sort(np.asarray(impostor, float).ravel())
    if s.size == 0:
        raise ValueError("no impostor scores to set a threshold on")
    return float(s[min(int(np.floor(far * s.size)), s.size - 1)])
