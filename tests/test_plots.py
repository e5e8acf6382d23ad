"""jg.plots: log axes without zeros, one legend outside the panels, diverged runs cut and kept out of the y-range,
bands over seeds, png / pdf / svg, the sweep heat map with its best cell and diverged cells."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jaxgossip as jg  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    prob = jg.problems.logistic_regression("digits", n_workers=4, batch_size=4, seed=0)
    topo = jg.topology.ring(4)
    q = jg.compressors.quantize(bits=4)
    good = [jg.simulate(prob, jg.algorithms.dpsgd(lr=0.5), topo, steps=40, eval_every=10, label="D-PSGD"),
            jg.simulate(prob, jg.algorithms.choco_sgd(lr=0.5, compressor=q, consensus=0.5), topo, steps=40,
                        eval_every=10, label="CHOCO")]
    bad = jg.simulate(prob, jg.algorithms.dpsgd(lr=500.0), topo, steps=40, eval_every=10, label="D-PSGD lr=500")
    return prob, topo, good, bad


def test_plot_grid_log_axes_no_zero_one_legend_diverged_clipped(runs, tmp_path):
    _, _, good, bad = runs
    assert bad.diverged
    fig = jg.plot_grid(good + [bad], path=str(tmp_path / "grid"), format="pdf")
    axes = fig.axes
    assert fig.get_layout_engine() is not None  # constrained layout: labels fit
    assert axes[2].get_xscale() == "log"  # bits
    assert axes[3].get_yscale() == "log"  # consensus: its step-0 zero is not drawn
    for ax in axes:
        for line in ax.get_lines():
            x, y = line.get_xdata(), line.get_ydata()
            if ax.get_yscale() == "log":
                assert (np.asarray(y) > 0).all()
            if ax.get_xscale() == "log":
                assert (np.asarray(x) > 0).all()
        assert ax.get_legend() is None
    assert len(fig.legends) == 1 and any("diverged" in t.get_text() for t in fig.legends[0].get_texts())
    top = axes[0].get_ylim()[1]
    assert np.nanmax(bad.metrics["loss"]) > 100 and top < 10  # the diverged run does not flatten the others
    assert (tmp_path / "grid.pdf").stat().st_size > 0
    plt.close(fig)
    ax = jg.plot_results(good)  # the old single-panel call keeps its legend
    assert ax.get_legend() is not None
    plt.close(ax.figure)


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_save_formats(runs, tmp_path, fmt):
    fig = jg.plot_grid(runs[2])
    path = jg.plots.save(fig, str(tmp_path / "fig"), format=fmt)
    assert path.endswith("." + fmt) and open(path, "rb").read(4)
    plt.close(fig)


def test_save_rejects_unknown_formats(runs, tmp_path):
    fig = jg.plot_grid(runs[2])
    with pytest.raises(ValueError, match="format"):
        jg.plots.save(fig, str(tmp_path / "fig"), format="jpg")
    plt.close(fig)


def test_curves_have_bands_over_seeds_and_diverged_labels_stop_where_they_diverged(runs):
    prob, topo, _, _ = runs
    df = jg.sweep(prob, jg.algorithms.dpsgd(lr=0.1), topo, steps=40, eval_every=10, grid={"lr": [0.5, 500.0]},
                  seeds=[0, 1, 2])
    df["label"] = "lr=" + df["hp.lr"].astype(str)
    fig = jg.plots.plot_curves(df, panels=(("step", "loss"), ("bits", "loss")))
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert "lr=500.0 (diverged)" in lines
    assert max(lines["lr=500.0 (diverged)"].get_xdata()) == df[df["hp.lr"] == 500.0].diverged_step.min()
    assert max(lines["lr=0.5"].get_xdata()) == 40
    assert len(ax.collections) >= 1  # the band of the healthy label
    assert fig.axes[1].get_xscale() == "log"
    plt.close(fig)


def test_heatmap_marks_the_best_cell_and_the_diverged_ones(runs, tmp_path):
    prob, topo, _, _ = runs
    algo = jg.algorithms.choco_sgd(lr=0.1, compressor=jg.compressors.quantize(bits=4), consensus=0.5)
    df = jg.sweep(prob, algo, topo, steps=40, eval_every=10, grid={"lr": [0.1, 0.5, 500.0], "consensus": [0.3, 0.9]},
                  seeds=[0, 1])
    ax = jg.plots.heatmap(df, x="consensus", y="hp.lr", metric="suboptimality", path=str(tmp_path / "heat.png"))
    texts = [t.get_text() for t in ax.texts]
    diverged = df.groupby(["hp.lr", "hp.consensus"]).diverged.any()
    assert texts.count("diverged") == int(diverged.sum()) >= 1
    final = df[(df.step == 40)].groupby(["hp.lr", "hp.consensus"]).suboptimality.mean()[~diverged]
    best = final.idxmin()
    starred = [t for t in ax.texts if t.get_text().endswith("*")]
    assert len(starred) == 1 and starred[0].get_text().startswith(f"{final[best]:.3g}")
    assert (tmp_path / "heat.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no column"):
        jg.plots.heatmap(df, x="gamma", y="lr", metric="loss")
    plt.close(ax.figure)
