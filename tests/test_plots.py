"""describe_figure: the words nbval compares for a figure, the same on any machine, and blunt about a missing title."""
from matplotlib.figure import Figure

from helpers.lessons.plots import describe_figure


def test_a_figure_is_described_by_title_axes_and_series_with_numbers_masked_unless_asked():
    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1], [2, 3], label="blog CPU ceiling (16 cores)")
    ax.set(title="throughput on this machine", xlabel="num_workers", ylabel="images per second")
    ax.legend()
    assert describe_figure(fig) == ("titled; x: num_workers; y: images per second; "
                                    "series: blog CPU ceiling (N cores)")
    assert "(16 cores)" in describe_figure(fig, numbers=True)


def test_an_untitled_panel_says_so():
    fig = Figure()
    fig.subplots().plot([0, 1])
    assert describe_figure(fig).startswith("NO TITLE; x: -; y: -; series: -")
