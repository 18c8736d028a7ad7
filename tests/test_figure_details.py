"""Details of the study figures that once went wrong: the mean's whisker, the legend's place
and the figure's width (bars); prevalence lines and legends off the curves (PR); the x label
per kind of noise and the always-active line (noise)."""
from __future__ import annotations

import numpy as np
import pytest

from austack.studies import au_plots, plots
from austack.studies.au_plots import Bars, bar_values


@pytest.fixture
def captured(monkeypatch):
    figs = []

    def keep(fig, path, **kw):
        figs.append(fig)
        return []
    monkeypatch.setattr(au_plots, "save_figure", keep)
    monkeypatch.setattr(plots, "save_figure", keep)
    yield figs
    for fig in figs:
        plots.plt.close(fig)


def _series(label: str, mean=(60.0, 55.0, 66.0)) -> Bars:
    aus = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
    return Bars(label, aus, [50.0] * 12, [45.0] * 12, [58.0] * 12, mean=mean)


def test_the_mean_bar_has_the_bootstrap_interval_as_its_whisker():
    f1, err = bar_values(_series("a"), _series("a").aus)
    assert f1[-1] == 60.0 and list(err[:, -1]) == [5.0, 6.0]
    published = Bars("p", [1, 2], [40.0, 60.0], published=True)
    assert bar_values(published, [1, 2]) == ([40.0, 60.0, 50.0], None)


def test_bars_keep_the_legend_under_the_axes_and_a_readable_width(captured):
    series = [_series("test_tiny + wce (3 folds)"), _series("test_tiny + aunce.paper (3 folds)"),
              Bars("AUNCE (published)", _series("x").aus, [55.0] * 12, published=True)]
    au_plots.au_bars_figure(series, "unused.png", title="t")
    fig = captured[0]
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 <= ax.get_window_extent().y0              # below the axes, not beside them
    assert fig.get_size_inches()[0] * plots.DPI <= 1600


def test_pr_panels_draw_prevalence_and_keep_legends_off_the_curves(captured):
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 2)) < [0.2, 0.6]).astype(np.int8)
    probs = np.clip(labels * 0.3 + rng.random((200, 2)) * 0.7, 0, 1).astype(np.float32)
    preds = {1: {"aus": np.array([1, 2]), "test_labels": labels, "test_probs": probs,
                 "thresholds": np.array([0.5, 0.5])}}
    au_plots.pr_figure(preds, "unused.png", title="t")
    fig = captured[0]
    fig.canvas.draw()
    for a, ax in enumerate(fig.axes[:2]):
        flat = [line for line in ax.lines if len(set(line.get_ydata())) == 1 and len(line.get_ydata()) == 2]
        assert any(abs(line.get_ydata()[0] - labels[:, a].mean()) < 1e-9 for line in flat)
        assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1 - 1


def test_noise_figure_labels_each_kind_and_draws_always_active(captured):
    summary = [{"kind": k, "level": lv, "loss": loss, "f1": 20.0, "f1_low": 18.0, "f1_high": 22.0}
               for k in ("symmetric", "missed") for lv in (0.0, 0.2) for loss in ("wce", "aunce.paper")]
    plots.noise_figure(summary, "unused.png", title="t", always_active=47.9)
    axes = captured[0].axes
    assert [ax.get_xlabel() for ax in axes] == [plots.NOISE_AXIS["symmetric"], plots.NOISE_AXIS["missed"]]
    assert "active" in plots.NOISE_AXIS["missed"]
    for ax in axes:
        assert any(list(line.get_ydata()) == [47.9, 47.9] for line in ax.lines)
