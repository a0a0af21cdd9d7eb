"""RC vs. conventional trade-off helpers: ms conversion, frontier comparison, plot, table."""

import pytest

from rc_keras import tradeoff


def _points(*pairs, curve=None):
    return [dict(mean_spike_time=t, accuracy=a, threshold=0.5 + i / 10,
                 **({"curve": curve} if curve else {})) for i, (t, a) in enumerate(pairs)]


def test_add_milliseconds_frames_to_audio_heard():
    points = _points((1.0, 0.5), (3.5, 0.7))
    out = tradeoff.add_milliseconds(points)
    assert [p["mean_spike_time_ms"] for p in out] == [25.0, 50.0]
    assert "mean_spike_time_ms" not in points[0]  # copies, the input is untouched
    ahead = tradeoff.add_milliseconds(points, stride_ms=20, window_ms=30, lookahead_frames=10)
    assert [p["mean_spike_time_ms"] for p in ahead] == [230.0, 280.0]
    with pytest.raises(ValueError, match="`stride_ms`"):
        tradeoff.add_milliseconds(points, stride_ms=0)
    with pytest.raises(ValueError, match="`lookahead_frames`"):
        tradeoff.add_milliseconds(points, lookahead_frames=-1)


def test_frontier_accuracy_at_is_a_staircase():
    frontier = _points((2, 0.5), (4, 0.7), (6, 0.9))
    assert tradeoff.frontier_accuracy_at(frontier, 1.9) is None
    assert tradeoff.frontier_accuracy_at(frontier, 2) == 0.5
    assert tradeoff.frontier_accuracy_at(frontier, 5.9) == 0.7
    assert tradeoff.frontier_accuracy_at(frontier, 100) == 0.9


def test_compare_frontiers_hand_made():
    rc = _points((1, 0.6), (3, 0.8), (5, 0.85))
    eos = _points((2, 0.5), (4, 0.82), (8, 0.9))
    result = tradeoff.compare_frontiers(rc, eos)
    assert result["overlap"] == [2.0, 5.0]
    assert [c["mean_spike_time"] for c in result["checks"]] == [2.0, 3.0, 4.0, 5.0]
    assert [c["accuracy"] for c in result["checks"]] == [0.6, 0.8, 0.8, 0.85]
    assert [c["reference_accuracy"] for c in result["checks"]] == [0.5, 0.5, 0.82, 0.82]
    assert result["worst_difference"] == pytest.approx(-0.02)
    assert result["at_or_above"] is False
    assert tradeoff.compare_frontiers(rc, eos, tolerance=0.021)["at_or_above"] is True
    # Swapped roles: EOS falls below RC at t=2, 3 and 5.
    assert tradeoff.compare_frontiers(eos, rc)["worst_difference"] == pytest.approx(-0.3)


def test_compare_frontiers_without_overlap_and_bad_input():
    early = _points((1, 0.6), (2, 0.7))
    late = _points((5, 0.8), (9, 0.9))
    result = tradeoff.compare_frontiers(early, late)
    assert result == {"overlap": None, "checks": [], "worst_difference": None,
                      "at_or_above": None}
    with pytest.raises(ValueError, match="`frontier`"):
        tradeoff.compare_frontiers([], late)


def test_compare_frontiers_on_composite_frontiers():
    rc = tradeoff.composite_frontier({"b0": _points((3, 0.7), (6, 0.8)),
                                      "b1": _points((2, 0.72), (5, 0.85))})
    eos = tradeoff.composite_frontier({"e0": _points((4, 0.6), (8, 0.86))})
    assert [(p["curve"], p["mean_spike_time"]) for p in rc] == [("b1", 2), ("b1", 5)]
    result = tradeoff.compare_frontiers(rc, eos)
    assert result["overlap"] == [4.0, 5.0]
    assert result["at_or_above"] is True and result["worst_difference"] == pytest.approx(0.12)


def test_fast_operating_points():
    points = _points((30, 0.90), (50, 0.93), (55, 0.93), (80, 0.95))
    chosen = tradeoff.fast_operating_points(points, max_time=58.8, min_accuracy=0.925)
    assert [p["mean_spike_time"] for p in chosen] == [50, 55]
    assert tradeoff.fast_operating_points(points, max_time=20, min_accuracy=0.0) == []


def test_plot_comparison_and_table(tmp_path):
    groups = {"RC": {"beta=0": _points((3, 0.7), (6, 0.8)), "beta=0.2": _points((2, 0.7))},
              "EOS": {"beta=0": _points((5, 0.75), (9, 0.85))}}
    frontiers = {g: tradeoff.add_milliseconds(tradeoff.composite_frontier(c))
                 for g, c in groups.items()}
    path = tradeoff.plot_comparison(groups, tmp_path / "cmp.png", frontiers=frontiers,
                                    ms_axis=(10.0, 25.0, 0), title="t",
                                    reference_lines={"EOS at end": 0.85})
    assert (tmp_path / "cmp.png").read_bytes().startswith(b"\x89PNG") and path.endswith("cmp.png")
    table = tradeoff.format_comparison_table(frontiers)
    assert table.splitlines() == [
        "| group | model | θ | accuracy | mean spike time (frames) | mean spike time (ms) |",
        "|---|---|---|---|---|---|",
        "| RC | beta=0.2 | 0.5 | 0.7000 | 2.00 | 35 |",
        "| RC | beta=0 | 0.6 | 0.8000 | 6.00 | 75 |",
        "| EOS | beta=0 | 0.5 | 0.7500 | 5.00 | 65 |",
        "| EOS | beta=0 | 0.6 | 0.8500 | 9.00 | 105 |",
    ]
