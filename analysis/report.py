"""The comparison report on disk: CSV, JSON, Markdown and PNG figures (``gazelab compare``).

Files written into the report folder::

    rows.csv                 one row per (image, annotator, reference) with every metric
    by_annotator.csv         mean ± sd per annotator, versus the model and versus humans
    by_class.csv             the same per dataset class
    report.json              settings (TOML text), n, point source, summaries, labels
    report.md                the tables in the paper's Table 1 layout, every score against
                             the shuffled-image and centre-bias baselines, label agreement
    baselines.csv            one row per (image, annotator, partner, baseline) with every metric
    baselines_summary.csv    observed vs each baseline per kind and metric, with CIs
    figures/metrics.png      metric distributions (human vs model, human vs human)
    figures/confusion.png    confusion matrices of annotators and model vs dataset labels
    figures/<image>.png      image | human heatmap | model heatmap | both contours

Each file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab import CLASSES
from gazelab.analysis.compare import METRICS, PAPER_METRICS, Comparison, ImageAnalysis, summaries
from gazelab.fileio import atomic_open, atomic_write, clean_stale_temporaries, safe_filename
from gazelab.models.scores import scores_from_confusion

HUMAN_COLOURS = ((255, 40, 0), (0, 160, 255), (255, 200, 0), (200, 0, 255), (0, 220, 120))
MODEL_COLOUR = (40, 220, 40)
MAX_ANNOTATOR_PANELS = 8
"""Above this many annotators an image's figure draws their pooled map (the sum of their
heatmaps) in one panel instead of one panel each."""


def _fmt(mean: float, sd: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.3f} ± {sd:.3f}" if math.isfinite(sd) else f"{mean:.3f}"


def kernel_sentence(k: dict[str, float]) -> str:
    """The report's line on the heatmap kernel: ``c`` and ``radius``, or the ellipse
    ``c_x, c_y, r_x, r_y`` when the first image's kernel is one (non-square pixels)."""
    xy = [k.get(n) for n in ("c_x", "c_y", "r_x", "r_y")]
    if any(v is None for v in xy) or (xy[0] == xy[1] and xy[2] == xy[3]):
        return f"Heatmap kernel in image pixels: c = {k['c']:.2f}, radius = {k['radius']:.2f}."
    return (
        f"Heatmap kernel in image pixels (the first image's; each trial has its own): an "
        f"ellipse, c_x = {k['c_x']:.2f}, c_y = {k['c_y']:.2f}, r_x = {k['r_x']:.2f}, "
        f"r_y = {k['r_y']:.2f}."
    )


def markdown(comp: Comparison, summ: dict[str, Any]) -> str:
    """The report as Markdown: Table 1 layout per annotator, per class, labels."""
    lines = [
        "# Human gaze vs model saliency",
        "",
        f"Model `{comp.model_name}` (hash {comp.model_hash}), analyzer "
        f"`{comp.analysis.analyzer}`; sessions {comp.sessions}; {len(comp.images)} images.",
        f"Model heatmap from the n = {comp.n_points} most relevant pixels "
        f"(mean fixation points per image and annotator = {comp.mean_points:.2f}, "
        f"points = fixation {comp.analysis.point_source}).",
        kernel_sentence(comp.kernel_image_px),
        "Metrics: Spearman with average ranks over all pixels (zeros are one tie group); "
        "AUC-Judd as the MIT saliency benchmark computes it (map scaled to 0..1, ties "
        "broken by its jitter of at most 1e-7, seed 0); NSS at the fixated pixels.",
        "",
    ]
    for title, key, col in (
        ("Per annotator", "by_annotator", "annotator"),
        ("Per class", "by_class", "class"),
    ):
        lines += [f"## {title}", ""]
        header = [col.capitalize(), "versus", "n", *METRICS]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in summ[key]:
            cells = [str(r[col]), r["versus"], str(r["n"])]
            cells += [_fmt(r[f"{m}_mean"], r[f"{m}_sd"]) for m in METRICS]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    pg = summ["pointing_game"]
    if pg["model_hit_rate"] is not None:
        lines += [
            "## Diagnostic regions",
            "",
            f"Model pointing game (most relevant pixel inside a diagnostic region): "
            f"{pg['model_hit_rate']:.1%} of {pg['images']} images.",
            f"Human fixations inside diagnostic regions: {pg['human_fixations_in_regions']:.1%}.",
            "",
        ]
    if summ.get("baselines"):
        lines += baseline_markdown(summ)
    lab = summ["labels"]
    lines += ["## Labels", "",
              "| Who | n | accuracy vs dataset | macro-F1 (classes present) | classes absent |",
              "|---|---|---|---|---|"]  # fmt: skip
    whos = [*lab["annotators"].items(), *([("model", lab["model"])] if "model" in lab else [])]
    for who, r in whos:
        sc = scores_from_confusion(r["confusion"]) if len(r["confusion"]) == len(CLASSES) else None
        f1 = "–" if sc is None else f"{sc['macro_f1']:.3f}"
        absent = "–" if sc is None else (", ".join(sc["absent"]) or "none")
        lines.append(f"| {who} | {r['n']} | {r['accuracy']:.3f} | {f1} | {absent} |")
    for k in lab["kappa"]:
        lines.append("")
        lines.append(f"Cohen's κ {k['a']} vs {k['b']} ({k['n']} images): {k['kappa']:.3f}")
    lines.append("")
    return "\n".join(lines)


BASELINE_TABLE_METRICS = ("iou", "spearman", "cosine_distance", "nss", "auc_judd")
"""Metrics of the report's baseline table (every metric is in ``baselines_summary.csv``)."""


def _maps_note(bs: dict[str, Any]) -> str:
    """The reference maps the baselines scored, and their bound (``[analysis]
    baseline_maps``), as a clause of the report's baseline paragraph ("" when not recorded)."""
    if "maps" not in bs:
        return ""
    per = [int(v) for v in bs.get("maps_by_annotator", {}).values()]
    spread = f", {min(per)}–{max(per)} per annotator" if per else ""
    bound = f"at most {bs['max_maps']}" if bs.get("max_maps") else "no bound"
    return f"; {bs['maps']} reference maps of (image, annotator) scored ({bound}{spread})"


def baseline_markdown(summ: dict[str, Any]) -> list[str]:
    """The report's baseline section: the layout sentence and, per comparison kind and
    baseline, observed vs baseline with the difference (± 95 % CI, t over images) and the
    ratio (paired bootstrap 95 % CI over images)."""
    bs = summ.get("baseline_settings", {})
    centre = ("a centred Gaussian" if bs.get("centre") == "gaussian" else
              "the mean of the human maps of the other images (leave-one-image-out)")  # fmt: skip
    lines = [
        "## Baselines: how much of the agreement is face layout",
        "",
        summ.get("layout_note", ""),
        "",
        f"Shuffled image: the other side of each pair (annotator or model) on "
        f"{bs.get('draws', '?')} other images of the same size (the next ones in a random "
        f"cyclic order, seed {bs.get('seed', 0)}), averaged"
        + (
            f", on a seeded sample of at most {bs['max_images']} images"
            if bs.get("max_images")
            else ""
        )
        + _maps_note(bs)
        + f". Centre bias: {centre}, cut to the mean area of "
        "one human map; one map per image, the same for both comparison kinds. Difference: "
        "observed − baseline, mean over images ± 95 % CI (Student's t); ratio: observed / "
        "baseline with a paired bootstrap 95 % CI over images. For cosine distance lower is "
        "closer. Every metric: baselines_summary.csv; per pair: baselines.csv.",
        "",
        "| versus | baseline | metric | images | observed | baseline | difference | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summ["baselines"]:
        if r["metric"] not in BASELINE_TABLE_METRICS:
            continue
        d = "–" if not math.isfinite(r["difference"]) else f"{r['difference']:+.3f}"
        if math.isfinite(r["difference_ci"]):
            d += f" ± {r['difference_ci']:.3f}"
        ratio = "–" if not math.isfinite(r["ratio"]) else f"{r['ratio']:.2f}"
        if math.isfinite(r["ratio_low"]):
            ratio += f" [{r['ratio_low']:.2f}, {r['ratio_high']:.2f}]"
        lines.append(f"| {r['versus']} | {r['baseline']} | {r['metric']} | {r['images']} | "
                     f"{r['observed']:.3f} | {r['baseline_mean']:.3f} | {d} | {ratio} |")  # fmt: skip
    return [*lines, ""]


def plot_confusion(
    ax: Any, confusion: Any, title: str, axes_labels: tuple[str, str] = ("predicted", "true")
) -> None:
    """A confusion matrix over :data:`~gazelab.CLASSES` on a matplotlib axis, with the count
    written in every cell."""
    ticks = [c[:3] for c in CLASSES]
    c = np.asarray(confusion)
    ax.imshow(c, cmap="Blues")
    if c.ndim == 2 and c.size:
        top = float(c.max()) or 1.0
        for (i, j), v in np.ndenumerate(c):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=6,
                    color="white" if v > 0.6 * top else "black")  # fmt: skip
    ax.set_xticks(range(len(CLASSES)), ticks, fontsize=7)
    ax.set_yticks(range(len(CLASSES)), ticks, fontsize=7)
    ax.set_xlabel(axes_labels[0])
    ax.set_ylabel(axes_labels[1])
    ax.set_title(title)


IMAGE_PANEL_GRID = {"left": 0.01, "right": 0.99, "bottom": 0.02, "top": 0.9, "wspace": 0.06}
"""The margins of a per-image figure (fractions of the figure; room for an 8 pt title)."""


def image_panels(im: ImageAnalysis, annotators: list[str]) -> list[tuple[str, NDArray[np.uint8]]]:
    """(title, RGB) panels of one image: the image, each annotator's heatmap, the model's
    heatmap, and all contours together."""
    from gazelab.analysis.overlays import heat_overlay, outline

    base = im.image if im.image.ndim == 3 else np.repeat(im.image[..., None], 3, axis=2)
    panels = [(f"{im.image_id} ({im.true_class})", base)]
    contours = base.copy()
    present = [a for a in annotators if a in im.humans]
    if len(present) > MAX_ANNOTATOR_PANELS:  # one pooled panel (the figure stays readable)
        from gazelab.analysis.scoring import pooled_total

        heat = pooled_total(im.humans[a].heatmap_or_build() for a in present)
        colour = HUMAN_COLOURS[0]
        panels.append((f"{len(present)} annotators pooled", heat_overlay(base, heat, colour)))
        contours = outline(contours, heat, colour)
        annotators = []
    for k, a in enumerate(annotators):
        if a not in im.humans:
            continue
        colour = HUMAN_COLOURS[k % len(HUMAN_COLOURS)]
        g = im.humans[a]
        heat = g.heatmap_or_build()
        panels.append((f"{a}: {g.label}", heat_overlay(base, heat, colour)))
        contours = outline(contours, heat, colour)
    model_map = im.model_heatmap_or_build()  # built here where compare let it go
    if model_map is not None:
        panels.append((f"model: {im.predicted}", heat_overlay(base, model_map, MODEL_COLOUR)))
        contours = outline(contours, model_map, MODEL_COLOUR)
    panels.append(("contours", contours))
    return panels


def write_report(comp: Comparison, out: str | Path, *, max_image_figures: int = 24) -> Path:
    """Write every report file into ``out`` (created); returns the Markdown path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(out, recursive=True)  # left by a report run that was killed
    summ = summaries(comp)
    df = comp.frame()
    atomic_write(out / "rows.csv", df.to_csv(index=False))
    import pandas as pd

    for key in ("by_annotator", "by_class"):
        atomic_write(out / f"{key}.csv", pd.DataFrame(summ[key]).to_csv(index=False))
    if comp.baselines:
        atomic_write(out / "baselines.csv", pd.DataFrame(comp.baselines).to_csv(index=False))
        atomic_write(out / "baselines_summary.csv",
                     pd.DataFrame(summ["baselines"]).to_csv(index=False))  # fmt: skip
    doc = {
        "model": {"name": comp.model_name, "hash": comp.model_hash},
        "analyzer": comp.analysis.analyzer,
        "point_source": comp.analysis.point_source,
        "n_points": comp.n_points,
        "mean_points_per_image": comp.mean_points,
        "kernel_image_px": comp.kernel_image_px,
        "sessions": comp.sessions,
        "annotators": comp.annotators,
        "images": len(comp.images),
        "settings_toml": comp.settings_toml,
        **summ,
    }
    atomic_write(out / "report.json", json.dumps(_finite(doc), indent=2, allow_nan=False))
    md = markdown(comp, summ)
    from gazelab.annotation.sessions import exclusions_csv, exclusions_markdown

    md += "\n" + exclusions_markdown(comp.excluded, comp.annotators)  # trials left out by quality
    atomic_write(out / "excluded.csv", exclusions_csv(comp.excluded))
    atomic_write(out / "report.md", md)

    # metric distributions
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3 * len(METRICS), 3.2))
    for ax, m in zip(axes, METRICS, strict=True):
        data, names = [], []
        for kind in ("model", "human"):
            v = df.loc[df["kind"] == kind, m].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if len(v):
                data.append(v)
                names.append(f"vs {kind}")
        if data:
            ax.boxplot(data, labels=names)
        ax.set_title(m + (" *" if m in PAPER_METRICS else ""))
    fig.tight_layout()
    with atomic_open(fig_dir / "metrics.png") as f:
        fig.savefig(f, format="png", dpi=80)
    plt.close(fig)

    # confusion matrices
    lab = summ["labels"]
    whos = [*lab["annotators"].items(), *([("model", lab["model"])] if "model" in lab else [])]
    if whos:
        fig, axes = plt.subplots(1, len(whos), figsize=(4 * len(whos), 4), squeeze=False)
        for ax, (who, r) in zip(axes[0], whos, strict=True):
            plot_confusion(ax, r["confusion"], f"{who}: accuracy {r['accuracy']:.2f}",
                           ("given", "dataset"))  # fmt: skip
        fig.tight_layout()
        with atomic_open(fig_dir / "confusion.png") as f:
            fig.savefig(f, format="png", dpi=80)
        plt.close(fig)

    # per-image panels
    for im in comp.images[:max_image_figures]:
        panels = image_panels(im, comp.annotators)
        # fixed margins (the panels have no axes, only a one-line title): tight_layout
        # measured every text for ~0.09 s a figure
        fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2), squeeze=False,
                                 gridspec_kw=IMAGE_PANEL_GRID)  # fmt: skip
        for ax, (title, rgb) in zip(axes[0], panels, strict=True):
            ax.imshow(rgb)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        with atomic_open(fig_dir / f"{safe_filename(im.image_id)}.png") as f:
            fig.savefig(f, format="png", dpi=80)
        plt.close(fig)
    return out / "report.md"


def _finite(o: Any) -> Any:
    """JSON-ready: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o
