"""Human gaze vs model saliency on synthetic faces (docs/comparison.md).

Three simulated annotators (the synthetic observer over the Eye Tribe simulator's
TCP protocol, sessions run side by side) label N synthetic faces; a small CNN is
trained on other synthetic faces; the comparison report is computed with deep
Taylor relevance. Printed per annotator: IoU / Spearman / cosine distance
(mean ± sd) against the model and against the other annotators, and the
model's pointing-game hit rate on the diagnostic regions.

Baselines measured in the same run: the same metrics for a *chance model* whose
relevance maps are uniform noise (same n, same kernel), and the pointing-game
chance level (the fraction of image area inside diagnostic regions).

    python benchmarks/bench_compare.py [--n 24] [--annotators 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def record_sessions(store_path: Path, n: int, n_annotators: int, size: int, seed: int) -> None:
    from gazelab.annotation.simulated import Stimulus, run_simulated_session
    from gazelab.annotation.store import SessionStore
    from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
    from gazelab.gaze.trackers.simulator import EyeTribeSimulator, SyntheticObserver
    from gazelab.models.synthetic import synthetic_faces
    from gazelab.settings import ProtocolSettings, Settings

    faces = synthetic_faces(n, size=size, seed=seed)
    stimuli = [
        Stimulus(fid, (size, size), int(lab), reg)
        for fid, lab, reg in zip(faces.ids, faces.labels, faces.regions, strict=True)
    ]
    settings = Settings().replace(
        protocol=ProtocolSettings(blank1_ms=100, cross_ms=200, blank2_ms=100)
    )
    errors: list[BaseException] = []

    def one(k: int, store: SessionStore) -> None:
        try:
            observer = SyntheticObserver(settings.display.resolution_px, seed=seed + 10 + k)
            with EyeTribeSimulator(port=0, rate_hz=60, source=observer, seed=seed + k) as sim:
                run_simulated_session(
                    store, stimuli, EyeTribeTracker(port=sim.port), participant=f"A{k + 1}",
                    settings=settings, observer=observer, view_s=(1.5, 2.5), seed=seed + k,
                    image_source=f"synthetic:{n}:{seed}:{size}",
                )  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    # the layout registry discovers its modules on first use, unlocked: do it here, before
    # the annotators' threads race on it ("unknown image source 'synthetic:...'")
    from gazelab.models.datasets.registry import check_image_spec

    check_image_spec(f"synthetic:{n}:{seed}:{size}")
    with SessionStore(store_path, create=True) as store:
        threads = [threading.Thread(target=one, args=(k, store)) for k in range(n_annotators)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=24, help="annotated images")
    ap.add_argument("--annotators", type=int, default=3)
    ap.add_argument("--size", type=int, default=480)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()

    from gazelab.analysis.cache import SaliencyCache
    from gazelab.analysis.compare import analyse_project, score_maps, summaries
    from gazelab.analysis.report import write_report
    from gazelab.analysis.saliency import top_n_points
    from gazelab.annotation.store import SessionStore
    from gazelab.app.demo import train_demo_model
    from gazelab.gaze.geometry import model_input_to_image
    from gazelab.gaze.heatmaps import fixation_heatmap
    from gazelab.models.architectures import load_classifier
    from gazelab.settings import AnalysisSettings

    out = Path(tempfile.mkdtemp(prefix="gazelab-bench-compare-"))
    t0 = time.monotonic()
    record_sessions(out / "project.sqlite", args.n, args.annotators, args.size, args.seed)
    t_sessions = time.monotonic() - t0
    info = train_demo_model(out / "model.keras", seed=args.seed, quick=False)
    model = load_classifier(out / "model.keras")
    t1 = time.monotonic()
    with SessionStore(out / "project.sqlite") as store:
        comp = analyse_project(
            store, model, analysis=AnalysisSettings(analyzer="deep_taylor"),
            cache=SaliencyCache(out / "cache"),
        )  # fmt: skip
    t_analysis = time.monotonic() - t1
    write_report(comp, out / "report")
    summ = summaries(comp)

    # chance model: uniform-noise relevance, same n and kernel, same human maps
    rng = np.random.default_rng(0)
    chance: dict[str, dict[str, list[float]]] = {}
    area = []
    for im in comp.images:
        assert im.relevance is not None
        shape = (int(im.image.shape[0]), int(im.image.shape[1]))
        noise = rng.random(im.relevance.shape)
        pts = model_input_to_image(top_n_points(noise, comp.n_points), noise.shape, shape)
        k = comp.kernel_image_px
        heat = fixation_heatmap(pts, shape, k["c"], k["radius"])
        for a, g in im.humans.items():
            m = score_maps(g.heatmap, heat, g.points)
            for key in ("iou", "spearman", "cosine_distance"):
                chance.setdefault(a, {}).setdefault(key, []).append(m[key])
        if im.regions is not None:
            area.append(float(np.mean(im.regions > 0)))

    print(
        f"{len(comp.images)} synthetic faces ({args.size} px), {len(comp.annotators)} simulated "
        f"annotators (sessions {t_sessions:.0f} s); small CNN {info['input_px']} px, held-out "
        f"macro-F1 {info['macro_f1']:.3f}; deep Taylor + metrics {t_analysis:.0f} s"
    )
    print(f"n = {comp.n_points} model points per image (mean fixations {comp.mean_points:.2f})")
    print(f"{'annotator':>10} {'versus':>7} {'IoU':>15} {'Spearman':>15} {'cosine dist':>15}")
    for r in summ["by_annotator"]:
        cells = [f"{r[m + '_mean']:.3f} ± {r[m + '_sd']:.3f}"
                 for m in ("iou", "spearman", "cosine_distance")]  # fmt: skip
        print(f"{r['annotator']:>10} {r['versus']:>7} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15}")
        if r["versus"] == "model":
            c = chance[r["annotator"]]
            ci, cs, cc = (float(np.mean(c[m])) for m in ("iou", "spearman", "cosine_distance"))
            print(
                f"{'':>10} {'chance':>7} {ci:>15.3f} {cs:>15.3f} {cc:>15.3f}   "
                f"ratio model/chance IoU {r['iou_mean'] / ci:.2f}×"
            )
    pg = summ["pointing_game"]
    base = float(np.mean(area))
    print(
        f"pointing game: model's most relevant pixel in a diagnostic region "
        f"{pg['model_hit_rate']:.1%} of {pg['images']} images; chance (region area) {base:.1%}; "
        f"ratio {pg['model_hit_rate'] / base:.2f}×"
    )
    print(f"human fixations in diagnostic regions: {pg['human_fixations_in_regions']:.1%}")
    lab = summ["labels"]
    acc = ", ".join(f"{a} {r['accuracy']:.2f}" for a, r in lab["annotators"].items())
    print(f"label accuracy vs dataset: {acc}; model {lab.get('model', {}).get('accuracy', 0):.2f}")
    print(f"report: {out / 'report' / 'report.md'}")


if __name__ == "__main__":
    main()
