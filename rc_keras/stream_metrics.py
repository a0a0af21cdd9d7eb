"""Stream keyword-spotting metrics: hits, false alarms per hour, latency, DET curves.

A detection (`rc_keras.streaming.Detection` or its dict) is a *hit* when it names a
keyword event of the ground truth (`rc_keras.datasets.keyword_streams`) whose word it
names, and its spike time lies in ``[start_s, end_s + tolerance_s]`` of that event; each
event is hit at most once (the earliest matching detection). Every other detection is a
*false alarm* (a wrong word, a second detection of a word, a detection in a pause or on
a non-keyword word). Latency is spike time minus the word's start: the delay from word
onset to the answer.
"""

import numpy as np

DEFAULT_TOLERANCE_S = 0.5


def _get(d, key):
    return d[key] if isinstance(d, dict) else getattr(d, key)


def score(detections, truth, tolerance_s=DEFAULT_TOLERANCE_S):
    """Scores one stream.

    Args:
        detections: detections of the stream (objects or dicts with keyword, spike_time_s).
        truth: the ground truth dict ("seconds", "events").
        tolerance_s: seconds after a word's end in which a detection still counts.

    Returns:
        dict: keywords (events), hits, false_alarms, seconds, latencies_s (list).
    """
    events = [e for e in truth["events"] if e["keyword"]]
    taken = [False] * len(events)
    hits, false_alarms, latencies = 0, 0, []
    for d in sorted(detections, key=lambda d: _get(d, "spike_time_s")):
        t, word = _get(d, "spike_time_s"), _get(d, "keyword")
        match = next((i for i, e in enumerate(events) if not taken[i] and e["word"] == word
                      and e["start_s"] <= t <= e["end_s"] + tolerance_s), None)
        if match is None:
            false_alarms += 1
        else:
            taken[match] = True
            hits += 1
            latencies.append(t - events[match]["start_s"])
    return {"keywords": len(events), "hits": hits, "false_alarms": false_alarms,
            "seconds": float(truth["seconds"]), "latencies_s": latencies}


def summarize(scores, invocations=None):
    """Pools per-stream `score` results: hit rate, false alarms per hour, latency.

    Args:
        scores: list of `score` dicts.
        invocations: optional list of (invocations, seconds) per stream.

    Returns:
        dict: keywords, hits, hit_rate, miss_rate, false_alarms, hours, fa_per_hour,
        latency_mean_s, latency_p90_s (None without hits), invocations_per_second.
    """
    keywords = sum(s["keywords"] for s in scores)
    hits = sum(s["hits"] for s in scores)
    fas = sum(s["false_alarms"] for s in scores)
    hours = sum(s["seconds"] for s in scores) / 3600.0
    lat = np.concatenate([np.asarray(s["latencies_s"], float) for s in scores]) \
        if scores else np.zeros(0)
    out = {"keywords": keywords, "hits": hits,
           "hit_rate": hits / keywords if keywords else None,
           "miss_rate": 1 - hits / keywords if keywords else None,
           "false_alarms": fas, "hours": round(hours, 4),
           "fa_per_hour": fas / hours if hours else None,
           "latency_mean_s": float(lat.mean()) if lat.size else None,
           "latency_p90_s": float(np.percentile(lat, 90)) if lat.size else None}
    if invocations:
        calls = sum(i for i, _ in invocations)
        seconds = sum(s for _, s in invocations)
        out["invocations_per_second"] = calls / seconds if seconds else None
    return out


def operating_point(points, max_fa_per_hour=2.0):
    """The point of a threshold sweep with the highest hit rate at <= ``max_fa_per_hour``
    (ties: the lower latency); None when no point qualifies."""
    ok = [p for p in points if p["fa_per_hour"] is not None
          and p["fa_per_hour"] <= max_fa_per_hour and p["hit_rate"] is not None]
    if not ok:
        return None
    return max(ok, key=lambda p: (p["hit_rate"], -(p["latency_mean_s"] or np.inf)))


def plot_det(curves, path, max_fa_per_hour=None):
    """DET-style plot: miss rate against false alarms per hour, one line per curve.

    Args:
        curves: {name: list of points with "miss_rate" and "fa_per_hour"}.
        path: PNG file to write.
        max_fa_per_hour: optional vertical line (the target).
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in curves.items():
        pts = sorted((p["fa_per_hour"], p["miss_rate"]) for p in points
                     if p["fa_per_hour"] is not None and p["miss_rate"] is not None)
        if pts:
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", ms=3, label=name)
    if max_fa_per_hour is not None:
        ax.axvline(max_fa_per_hour, color="grey", ls="--", lw=1)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("false alarms per hour (keyword-free streams)")
    ax.set_ylabel("miss rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
