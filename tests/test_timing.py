import matplotlib

matplotlib.use("Agg")

import pytest

from helpers import plotting, timing

# plotting and arithmetic: no process is started, the start method does not matter
pytestmark = pytest.mark.start_method_independent


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


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
    assert s.mean == sum(s.samples) / 3
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


def test_cmap_gives_each_label_its_own_colour_in_natural_order():
    spans = [timing.Span("w", f"chunk {i}", float(i), i + 0.5) for i in range(16)]
    ax = plotting.timeline(spans, cmap="tab20", edgecolor="black")
    colours = [tuple(c.get_facecolor()[0]) for c in ax.collections]
    assert len(set(colours)) == 16  # the default cycle has 10 and would repeat
    assert colours == [tuple(c) for c in plotting.distinct_colours(16, "tab20")]
    import matplotlib

    tab20 = matplotlib.colormaps["tab20"]
    assert plotting.distinct_colours(2, "tab20") == [tab20(0), tab20(2)]  # two hues, not a pair
    assert tuple(ax.collections[0].get_edgecolor()[0]) == (0.0, 0.0, 0.0, 1.0)
    assert len(set(plotting.distinct_colours(40, "tab20"))) == 40
    viridis = plotting.distinct_colours(3, "viridis")  # sampled end to end, not its first 3
    assert viridis[0] != viridis[1] and viridis[-1] == plotting.distinct_colours(2, "viridis")[-1]


def test_mark_idle_at_end_hatches_only_the_lane_that_waited():
    spans = [timing.Span("w1", "a", 0.0, 1.0), timing.Span("w2", "b", 0.0, 3.0)]
    ax = plotting.timeline(spans)
    plotting.mark_idle_at_end(ax, spans)
    assert [t.get_text() for t in ax.texts] == ["idle"]
    (idle,) = ax.patches
    assert (idle.get_x(), idle.get_width(), idle.get_y() + idle.get_height() / 2) == (1.0, 2.0, 0.0)
    ax = plotting.timeline(spans[:1] + [timing.Span("w2", "b", 0.0, 1.05)])
    plotting.mark_idle_at_end(ax, spans[:1] + [timing.Span("w2", "b", 0.0, 1.05)])
    assert len(ax.texts) == 0 and len(ax.patches) == 0


def test_stats_below_a_millisecond_in_microseconds():
    assert str(timing.Stats((0.00004, 0.00005, 0.0002))) == "median 50 µs (min 40, max 200, n=3)"


def test_timelines_on_shared_axes_keep_the_longer_job_in_view():
    import matplotlib.pyplot as plt

    _, (top, bottom) = plt.subplots(2, 1, sharex=True)
    plotting.timeline([timing.Span("w", "a", 10.0, 11.0)], ax=top)
    plotting.timeline([timing.Span("w", "b", 10.0, 14.0)], ax=bottom)
    assert top.get_xlim()[0] == 0 and top.get_xlim()[1] >= 4.0
    plotting.timeline([timing.Span("w", "c", 0.0, 0.5)], ax=top)  # a short one does not shrink it
    assert bottom.get_xlim()[1] >= 4.0
