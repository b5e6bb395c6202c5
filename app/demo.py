"""``gazelab demo``: the product end to end on its embedded defaults, headless.

Synthetic faces stand in for CK+, the Eye Tribe simulator for the tracker (over
its real TCP protocol), and simulated participants give automatic labels. The
stages write into one output folder and print what they did:

1. synthetic faces in the folder-per-class layout (``images/``);
2. two annotation sessions (annotators A1, A2) through the simulator into the
   project store (``project.sqlite``);
3. a BIDS-like export of each session (``bids/``);
4. fixations and human heatmaps per image, as NPZ and overlay PNGs (``heatmaps/``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from gazelab import CLASSES


def run_demo(
    out: Path, *, n_images: int = 8, seed: int = 0, quick: bool = False
) -> dict[str, object]:
    from PIL import Image

    from gazelab.analysis.human import trial_gaze
    from gazelab.analysis.overlays import heat_overlay, place_in_square
    from gazelab.annotation.bids import export_session
    from gazelab.annotation.simulated import Stimulus, run_simulated_session
    from gazelab.annotation.store import SessionStore
    from gazelab.gaze.trackers.eyetribe import EyeTribeTracker
    from gazelab.gaze.trackers.simulator import EyeTribeSimulator, SyntheticObserver
    from gazelab.models.synthetic import synthetic_faces, write_folder
    from gazelab.settings import ProtocolSettings, Settings

    t_start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    size = 240 if quick else 480
    annotators = ("A1",) if quick else ("A1", "A2")
    view_s = (0.6, 0.9) if quick else (1.5, 2.5)
    settings = Settings()
    if quick:
        settings = settings.replace(
            protocol=ProtocolSettings(blank1_ms=100, cross_ms=100, blank2_ms=100)
        )

    print(f"[1/4] synthetic faces: {n_images} images, {size}×{size} px")
    faces = synthetic_faces(n_images, size=size, seed=seed)
    write_folder(faces, out / "images")
    stimuli = [
        Stimulus(fid, (size, size), int(lab), reg)
        for fid, lab, reg in zip(faces.ids, faces.labels, faces.regions, strict=True)
    ]
    images = dict(zip(faces.ids, faces.images, strict=True))

    store_path = out / "project.sqlite"
    if store_path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(store_path) + suffix).unlink(missing_ok=True)
    sessions = []
    with SessionStore(store_path) as store:
        for k, who in enumerate(annotators):
            observer = SyntheticObserver(settings.display.resolution_px, seed=seed + 10 + k)
            with EyeTribeSimulator(port=0, rate_hz=60, source=observer, seed=seed + k) as sim:
                print(
                    f"[2/4] session of {who}: simulated Eye Tribe on 127.0.0.1:{sim.port}, "
                    f"{len(stimuli)} trials"
                )
                rec = run_simulated_session(
                    store,
                    stimuli,
                    EyeTribeTracker(port=sim.port),
                    participant=who,
                    settings=settings,
                    observer=observer,
                    view_s=view_s,
                    seed=seed + k,
                    progress=lambda i, n: print(f"      trial {i}/{n}", end="\r", flush=True),
                )
                print()
            n_samples = store.sample_count(rec.id)
            agree = np.mean(
                [
                    store.final_labels(rec.id)[i] == CLASSES[faces.labels[faces.ids.index(img)]]
                    for i, img in enumerate(rec.stimulus_order)
                ]
            )
            print(
                f"      {n_samples} gaze samples, {len(store.final_labels(rec.id))} labels "
                f"({agree:.0%} match the generator's classes)"
            )
            sessions.append(rec)

        print(f"[3/4] BIDS-like export to {out / 'bids'}")
        for rec in sessions:
            export_session(store, rec.id, out / "bids")

        print(f"[4/4] fixations and heatmaps to {out / 'heatmaps'}")
        heat_dir = out / "heatmaps"
        heat_dir.mkdir(exist_ok=True)
        summary: dict[str, object] = {"sessions": []}
        square = settings.stimulus.square_px
        for rec in sessions:
            trials = trial_gaze(store, rec.id, {fid: (size, size) for fid in faces.ids})
            n_fix = [len(t.fixations["onset_ms"]) for t in trials]
            in_regions = []
            arrays = {}
            for t in trials:
                fx = t.fixations
                reg = faces.regions[faces.ids.index(t.image_id)]
                xi = np.clip(fx["x_img"].astype(int), 0, size - 1)
                yi = np.clip(fx["y_img"].astype(int), 0, size - 1)
                if len(xi):
                    in_regions.append(float(np.mean(reg[yi, xi] > 0)))
                arrays[t.image_id] = t.heatmap.astype(np.float32)
                base = place_in_square(images[t.image_id], square)
                over = heat_overlay(base, t.heatmap)
                small = Image.fromarray(over).resize((400, 400), Image.BILINEAR)
                small.save(heat_dir / f"{rec.participant}_{t.image_id}.png")
            np.savez_compressed(heat_dir / f"{rec.participant}_heatmaps.npz", **arrays)
            row = {
                "participant": rec.participant,
                "session": rec.id,
                "fixations_per_image": float(np.mean(n_fix)) if n_fix else 0.0,
                "fixations_in_diagnostic_regions": float(np.mean(in_regions))
                if in_regions
                else 0.0,
            }
            summary["sessions"].append(row)  # type: ignore[union-attr]
            print(
                f"      {rec.participant}: {row['fixations_per_image']:.1f} fixations per image, "
                f"{row['fixations_in_diagnostic_regions']:.0%} in diagnostic regions"
            )
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"done in {summary['seconds']} s: {out}/summary.json")
    return summary
