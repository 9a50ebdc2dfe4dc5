import matplotlib

matplotlib.use("Agg")

import pytest

from helpers import plotting, timing


def test_measure_counts_repeats_and_warmup():
    calls = []
    stats = timing.measure(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6
    assert len(stats.samples) == 4
    assert stats.low <= stats.median <= stats.high


def test_measure_rejects_zero_repeats():
    with pytest.raises(ValueError):
        timing.measure(lambda: None, repeats=0)


def test_stats_summary_in_milliseconds():
    s = timing.Stats((0.001, 0.002, 0.003))
    assert s.median == 0.002
    assert "median 2.0 ms" in str(s) and "n=3" in str(s)


def test_machine_summary_names_cores_and_method():
    line = timing.machine_summary("fork")
    assert "cores" in line and "start method fork" in line


def test_timeline_draws_one_row_per_lane():
    spans = [timing.Span("p1", "a", 1.0, 2.0), timing.Span("p2", "b", 1.5, 3.0)]
    ax = plotting.timeline(spans, title="t")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["p1", "p2"]
    assert len(ax.collections) == 2


def test_timeline_legend_names_each_label_once():
    spans = [timing.Span("p1", "b", 1.0, 2.0), timing.Span("p2", "a", 1.5, 3.0),
             timing.Span("p2", "b", 3.0, 4.0)]
    ax = plotting.timeline(spans, legend=True)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert plotting.timeline(spans).get_legend() is None


def test_timeline_needs_spans():
    with pytest.raises(ValueError):
        plotting.timeline([])


def test_median_plot_checks_lengths():
    with pytest.raises(ValueError, match="2 points for 3"):
        plotting.median_plot([1, 2, 3], {"x": [timing.Stats((1.0,))] * 2}, "n")


def test_machine_false_leaves_the_machine_line_out_of_the_title():
    spans = [timing.Span("p1", "a", 1.0, 2.0)]
    line = timing.machine_summary()
    assert line in plotting.timeline(spans, title="t").get_title()
    assert plotting.timeline(spans, title="t", machine=False).get_title() == "t"
    stats = {"x": [timing.Stats((1.0,))]}
    assert line in plotting.median_plot([1], stats, "n").get_title()
    assert plotting.median_plot([1], stats, "n", title="m", machine=False).get_title() == "m"
