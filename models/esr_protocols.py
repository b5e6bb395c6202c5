"""ESR experiments as configs (Siqueira et al. 2020; docs/seed-systems.md): protocols, baselines,
results and Grad-CAM.

A config is a TOML file with ``[data]``, ``[esr]`` and the usual ``[training]`` section
(``epochs`` = epochs per branch / network; the learning rate is the new branch's)::

    [data]
    images = "ck+:/data/CK+"       # or synthetic:..., fer+:PATH, affectnet:PATH, folder:PATH
    last_frames = 3                # CK+: first frame neutral + last three labelled
    crop = 0.75                    # central square face crop (fraction of the shorter side)
    [esr]
    protocol = "ck+_10fold"        # holdout | ck+_10fold | balanced | fine_tune
    branches = 4
    level = 3
    network = "paper"              # the paper's base (32-64-64-64-64) | wide (64-…-512)
    width = 1.0                    # filter scale
    rates = "varied"               # varied (trained branches at 0.2×) | fixed | frozen
    [training]
    input_size = 96
    epochs = 30

Protocols
---------
``ck+_10fold``
    Subject-independent 10-fold cross-validation as in the paper: subjects dealt to the
    folds in turn (sorted ids); trial *t* tests on fold *t*, validates on fold *t + 1* and
    trains on the first four of the remaining eight folds. Branch *b* of the ESR and network
    *b* of the traditional ensemble (TE) both train on three of those four folds (fold
    *b mod 4* left out: bagging); the single network trains on all four.
``holdout``
    One train / validation / test split: the dataset's own (FER+; AffectNet, which has no
    test list, is tested on its validation list as in the paper, and validation is carved
    from training), else subject-independent or stratified with ``test_fraction`` /
    ``val_fraction``; the training set is cut into four parts for the same
    leave-one-part-out bagging.
``balanced``
    AffectNet: every branch (and every TE network) trains on its own class-balanced subset
    of at most ``max_per_class`` images per class (5 000 in the paper).
``fine_tune``
    FER+: an ESR trained elsewhere (``init`` = its ``.keras``) is fine-tuned branch by branch
    on balanced subsets at its own input size (96 × 96 in the paper); no baselines.

Every run writes ``results.csv`` (one row per trial and system: accuracy per branch,
majority-vote and averaged-probability accuracy, trainable parameters, training seconds),
``summary.md`` (mean ± sd over trials, with the paper's number beside ours when the data
is real), ``parameters.csv`` (trainable parameters per branching level against the TE) and
``gradcam.png`` (Grad-CAM of every branch on test images, through ``analysis.saliency``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gazelab.fileio import atomic_open, atomic_write, save_model, write_csv_rows
from gazelab.models.esr import ESR_NETWORKS, BranchRates, ESRError

PROTOCOLS = ("holdout", "ck+_10fold", "balanced", "fine_tune")
RATE_SCHEMES = {"varied": (1.0, 0.2), "fixed": (1.0, 1.0), "frozen": (0.0, 0.0)}
"""(shared, trained branches) learning rate as a factor of the new branch's (the paper's
"varied lr." 0.1 / 0.02, "fixed lr." and "frozen layers")."""

REFERENCES = {
    "ck+_10fold": "paper (Siqueira et al. 2020): ESR-4 level 3 on CK+ 89.4 ± 2.2 %",
    "balanced": "paper (Siqueira et al. 2020): ESR-9 on AffectNet 59.3 %",
    "fine_tune": "paper (Siqueira et al. 2020): ESR-9 fine-tuned on FER+ 87.15 ± 0.1 %",
}


@dataclass(frozen=True)
class ESRSettings:
    """The ``[esr]`` section."""

    protocol: str = "holdout"
    branches: int = 4
    level: int = 3
    width: float = 1.0
    network: str = "paper"
    rates: str = "varied"
    baselines: bool = True
    max_per_class: int = 5000
    folds: int = 10
    max_trials: int = 0  # 0 = every fold
    init: str = ""
    gradcam: int = 4
    test_fraction: float = 0.1
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        bad = []
        if self.protocol not in PROTOCOLS:
            bad.append(f"protocol {self.protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        if self.rates not in RATE_SCHEMES:
            bad.append(f"rates {self.rates!r}: choose one of {', '.join(RATE_SCHEMES)}")
        if not 1 <= self.branches <= 64:
            bad.append(f"branches = {self.branches}: give 1-64")
        if not 1 <= self.level <= 5:
            bad.append(f"level = {self.level}: give 1-5 (conv blocks in the shared base)")
        if not 0 < self.width <= 4:
            bad.append(f"width = {self.width}: give a filter scale in (0, 4]")
        if self.network not in ESR_NETWORKS:
            bad.append(f"network {self.network!r}: choose one of {', '.join(ESR_NETWORKS)}")
        if self.folds < 3:
            bad.append(f"folds = {self.folds}: give at least 3")
        if self.protocol == "fine_tune" and not self.init:
            bad.append('protocol fine_tune needs init = "path/to/esr.keras"')
        if bad:
            raise ESRError("; ".join(bad))

    def branch_rates(self, lr: float) -> BranchRates:
        shared, previous = RATE_SCHEMES[self.rates]
        return BranchRates(new=lr, shared=shared * lr, previous=previous * lr)


@dataclass
class ESRConfig:
    esr: ESRSettings
    settings: Any  # gazelab.settings.Settings
    images: str
    last_frames: int
    crop: float
    source: str
    text: str
    folder: Path = field(default_factory=Path)


def load_esr_config(path: str | Path) -> ESRConfig:
    """Read an ESR config (see the module docstring); errors name the file and the key."""
    from gazelab.settings import Settings, SettingsError, dataclass_section, read_toml_file

    p = Path(path)
    text, data = read_toml_file(p, "ESR config")
    d = dict(data.pop("data", {}))
    e = dict(data.pop("esr", {}))
    images = d.pop("images", None)
    if not isinstance(images, str):
        raise SettingsError(f'{p}: [data] images = "synthetic:N:SEED" | "ck+:PATH" | ... needed')
    last_frames, crop = int(d.pop("last_frames", 1)), float(d.pop("crop", 1.0))
    if d:
        raise SettingsError(f"{p}: unknown key(s) in [data]: {sorted(d)}; "
                            "use images, last_frames, crop")  # fmt: skip
    if e.get("init"):
        e["init"] = str((p.parent / str(e["init"])).resolve())
    esr = dataclass_section(ESRSettings, e, str(p), "esr", (ESRError,))
    settings = Settings.from_dict(data, source=str(p))
    return ESRConfig(esr, settings, images, last_frames, crop, str(p), text, p.parent)


# -- splits --------------------------------------------------------------------------------------
def subject_folds(subjects: Sequence[str], k: int) -> NDArray[np.int64]:
    """Fold of every image: subjects (sorted ids) dealt to the ``k`` folds in turn."""
    uniq = sorted(set(subjects))
    if len(uniq) < k or "" in uniq:
        raise ESRError(
            f"subject-independent {k}-fold cross-validation needs subject ids for every image "
            f"and at least {k} subjects; found {len([u for u in uniq if u])} (synthetic faces: "
            "add :subjects=K to the spec)"
        )
    fold_of = {s: i % k for i, s in enumerate(uniq)}
    return np.array([fold_of[s] for s in subjects], dtype=np.int64)


def ckplus_trial(folds: NDArray[np.int64], t: int, k: int) -> tuple[NDArray[np.int64], ...]:
    """(train parts ×4, validation, test) image indices of trial ``t``: test fold ``t``,
    validation fold ``t + 1``, training = the first four of the remaining folds."""
    idx = np.arange(len(folds))
    rest = [(t + j) % k for j in range(2, k)][:4]
    return (*(idx[folds == f] for f in rest), idx[folds == (t + 1) % k], idx[folds == t])


def balanced_subset(labels: NDArray[np.int64], max_per_class: int, seed: int) -> NDArray[np.int64]:
    """At most ``max_per_class`` indices of every class, drawn without replacement."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(labels):
        members = np.nonzero(labels == c)[0]
        out.append(rng.choice(members, size=min(max_per_class, len(members)), replace=False))
    return np.sort(np.concatenate(out))


# -- one trial -----------------------------------------------------------------------------------
def ensemble_accuracy(probs: NDArray[np.float32], y: NDArray[np.int64]) -> dict[str, Any]:
    """Accuracy of every branch, of the majority vote and of the averaged probabilities."""
    from gazelab.models.esr import average_vote, majority_vote

    return {
        "branch_accuracy": [float(np.mean(p.argmax(axis=1) == y)) for p in probs],
        "majority_accuracy": float(np.mean(majority_vote(probs) == y)),
        "average_accuracy": float(np.mean(average_vote(probs) == y)),
    }


def run_trial(
    cfg: ESRConfig,
    data: Any,  # LabelledImages
    parts: Sequence[NDArray[np.int64]],
    val: NDArray[np.int64],
    test: NDArray[np.int64],
    out: Path,
    *,
    progress: Callable[[str], None] | None = None,
    max_steps: int | None = None,
) -> list[dict[str, Any]]:
    """Train and test the ESR (and the single network and TE) on one split."""
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.models.esr import build_esr, predict_branches, train_branch, trainable_parameters
    from gazelab.models.training import train_data, train_run

    e, t = cfg.esr, cfg.settings.training
    n_classes = len(CLASSES)
    all_train = np.sort(np.concatenate(parts))
    val_set, test_set = data.take(val), data.take(test)

    def branch_indices(b: int) -> NDArray[np.int64]:
        if e.protocol in ("balanced", "fine_tune"):
            return all_train[balanced_subset(data.y[all_train], e.max_per_class, t.seed + b)]
        if len(parts) < 2:
            return all_train
        left_out = (b - 1) % len(parts)
        return np.sort(np.concatenate([p for j, p in enumerate(parts) if j != left_out]))

    shape = tuple(int(v) for v in data.x.shape[1:])
    rows: list[dict[str, Any]] = []
    # ESR, branch by branch
    tf.keras.utils.set_random_seed(t.seed)
    if e.protocol == "fine_tune":
        from gazelab.models.architectures import load_classifier

        model = load_classifier(e.init)
        if tuple(model.input_shape[1:]) != shape:
            raise ESRError(f"{e.init} takes {model.input_shape[1:]}; the data is {shape}: set "
                           f"[training] input_size = {model.input_shape[1]}")  # fmt: skip
    else:
        model = build_esr(shape, n_classes, e.branches, e.level, e.width, e.network)  # type: ignore[arg-type]
    k = len(model.outputs)
    if e.protocol == "fine_tune":  # cross-dataset accuracy before any training (paper: 57.92 %)
        before = ensemble_accuracy(predict_branches(model, test_set.x), test_set.y)
        rows.append({"system": f"ESR-{k} before fine-tuning", **before,
                     "parameters": trainable_parameters(model), "seconds": 0.0})  # fmt: skip
    rates = e.branch_rates(t.learning_rate)
    seconds = 0.0
    for b in range(1, k + 1):
        r = train_branch(model, b, t, train_data(data.take(branch_indices(b)), val_set), rates,
                         out=out / "esr" / f"branch{b}", max_steps=max_steps,
                         progress=progress)  # fmt: skip
        seconds += r.seconds
    save_model(model, out / "esr" / "esr.keras")
    probs = predict_branches(model, test_set.x)
    label = f"ESR-{k} fine-tuned" if e.protocol == "fine_tune" else f"ESR-{k} level {e.level}"
    rows.append({"system": label, **ensemble_accuracy(probs, test_set.y),
                 "parameters": trainable_parameters(model), "seconds": round(seconds, 1)})  # fmt: skip
    gradcam_figure(model, test_set.x[: e.gradcam], test_set.y[: e.gradcam], out / "gradcam.png")
    if not e.baselines or e.protocol == "fine_tune":
        return rows
    # the single network (one branch on all training data) and the traditional ensemble

    def single(
        name: str, idx: NDArray[np.int64], seed: int
    ) -> tuple[NDArray[np.float32], int, float]:
        import dataclasses

        ts = dataclasses.replace(t, seed=seed)  # every TE network starts from its own weights

        def plan() -> Any:
            from gazelab.models.training import TrainPlan

            return TrainPlan(build_esr(shape, n_classes, 1, e.level, e.width, e.network))  # type: ignore[arg-type]

        r = train_run(ts, train_data(data.take(idx), val_set), name=name,
                      out=out / name, max_steps=max_steps, progress=progress,
                      n_classes=n_classes, plan=plan, restore_best=True,
                      save_best=False)  # fmt: skip
        p = predict_branches(r.model, test_set.x)[0]
        return p, trainable_parameters(r.model), r.seconds

    p1, n1, s1 = single("single", all_train, t.seed)
    rows.append({"system": "single network", **ensemble_accuracy(p1[None], test_set.y),
                 "parameters": n1, "seconds": round(s1, 1)})  # fmt: skip
    te = [single(f"te/net{b}", branch_indices(b), t.seed + b) for b in range(1, k + 1)]
    rows.append({"system": f"traditional ensemble of {k}",
                 **ensemble_accuracy(np.stack([p for p, _, _ in te]), test_set.y),
                 "parameters": sum(n for _, n, _ in te),
                 "seconds": round(sum(s for _, _, s in te), 1)})  # fmt: skip
    return rows


def parameters_per_level(
    shape: tuple[int, int, int],
    n_classes: int,
    branches: int,
    width: float,
    network: str = "paper",
) -> list[dict[str, Any]]:
    """Trainable parameters of ESR-``branches`` at levels 1–5 against ``branches`` single
    networks (the paper's Table 1), counted by :func:`~gazelab.models.esr.esr_parameters`."""
    from gazelab.models.esr import esr_parameters

    def count(k: int, level: int) -> int:
        return esr_parameters(n_classes, k, level, width, network, in_channels=shape[2])

    te = branches * count(1, 1)
    rows = []
    for level in range(1, 6):
        n = count(branches, level)
        rows.append({"level": level, "esr_parameters": n, "te_parameters": te,
                     "reduction_vs_te": round(1 - n / te, 4)})  # fmt: skip
    return rows


def gradcam_figure(
    model: Any, x: NDArray[np.float32], y: NDArray[np.int64], path: Path
) -> NDArray[np.float32]:
    """Grad-CAM of every branch (rows) on the given images (columns), for each image's true
    class, through :func:`gazelab.analysis.saliency.relevance`; returns ``(k, N, H, W)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf

    from gazelab import CLASSES
    from gazelab.analysis.saliency import relevance

    outputs = model.outputs
    cams = np.zeros((len(outputs), *x.shape[:3]), dtype=np.float32)
    for i, o in enumerate(outputs):
        view = tf.keras.Model(model.inputs, o, name=f"branch{i + 1}")
        for c in np.unique(y):  # one call per class (Grad-CAM is per image)
            sel = np.nonzero(y == c)[0]
            cams[i, sel] = relevance(view, x[sel], "gradcam", int(c))
    if len(x):
        k, n = len(outputs), len(x)
        fig, axes = plt.subplots(k, n, figsize=(1.6 * n, 1.6 * k), squeeze=False)
        for i in range(k):
            for j in range(n):
                ax = axes[i][j]
                ax.imshow(x[j, ..., 0], cmap="gray")
                ax.imshow(cams[i, j], cmap="jet", alpha=0.45)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(CLASSES[int(y[j])], fontsize=7)
                if j == 0:
                    ax.set_ylabel(f"branch {i + 1}", fontsize=7)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as f:
            fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=80)
        plt.close(fig)
    return cams


# -- the whole experiment ------------------------------------------------------------------------
def run_esr_experiment(
    cfg: ESRConfig,
    out: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
    max_steps: int | None = None,
) -> list[dict[str, Any]]:
    """Run the configured protocol; write results.csv, summary.md, parameters.csv,
    config.toml, settings.toml and each trial's models, curves and Grad-CAM figure."""
    from gazelab.models.training import load_labelled, split_indices

    e, t = cfg.esr, cfg.settings.training
    if t.strategy != "default":
        raise ESRError("ESR experiments train with [training] strategy = 'default'")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "config.toml", cfg.text)
    atomic_write(out / "settings.toml", cfg.settings.to_toml())
    data = load_labelled(cfg.images, t.input_size, 1, last_frames=cfg.last_frames, crop=cfg.crop)
    if progress:
        progress(f"{len(data)} images from {cfg.images} at {t.input_size} px; "
                 f"protocol {e.protocol}")  # fmt: skip
    trials: list[tuple[Sequence[NDArray[np.int64]], NDArray[np.int64], NDArray[np.int64]]] = []
    if e.protocol == "ck+_10fold":
        folds = subject_folds(list(data.subjects), e.folds)
        n = e.max_trials or e.folds
        for tr in range(min(n, e.folds)):
            *parts, val, test = ckplus_trial(folds, tr, e.folds)
            trials.append((parts, val, test))
    else:
        idx = np.arange(len(data))
        has = {name: bool((data.split == name).any()) for name in ("train", "val", "test")}
        if has["train"] and (has["test"] or has["val"]):
            # the dataset's own split; without a test part (AffectNet) its validation set is
            # the test set, as in the paper, and validation is carved from training
            train = idx[data.split == "train"]
            test = idx[data.split == ("test" if has["test"] else "val")]
            if has["test"] and has["val"]:
                val = idx[data.split == "val"]
            else:
                a, b = split_indices(data.y[train], data.subjects[train], (0.9, 0.1), t.seed)
                train, val = train[a], train[b]
        else:
            fr = (1 - e.val_fraction - e.test_fraction, e.val_fraction, e.test_fraction)
            train, val, test = split_indices(data.y, data.subjects, fr, t.seed)
        rng = np.random.default_rng(t.seed)
        shuffled = rng.permutation(train)
        trials.append(([np.sort(shuffled[j::4]) for j in range(4)], val, test))
    rows: list[dict[str, Any]] = []
    for tr, (trial_parts, val, test) in enumerate(trials):
        if progress:
            progress(f"trial {tr + 1}/{len(trials)}: {sum(len(p) for p in trial_parts)} training, "
                     f"{len(val)} validation, {len(test)} test images")  # fmt: skip
        for r in run_trial(cfg, data, trial_parts, val, test, out / f"trial-{tr + 1:02d}",
                           progress=progress, max_steps=max_steps):  # fmt: skip
            rows.append({"trial": tr + 1, **r})
    write_results(rows, cfg, out)
    shape = (t.input_size, t.input_size, 1)
    if e.protocol != "fine_tune":
        from gazelab import CLASSES

        levels = parameters_per_level(shape, len(CLASSES), e.branches, e.width, e.network)
        write_csv_rows(out / "parameters.csv", levels)
    return rows


def summarise_results(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± sd over trials of every system's majority-vote accuracy (and branches)."""
    out = []
    for system in dict.fromkeys(r["system"] for r in rows):
        rs = [r for r in rows if r["system"] == system]
        acc = np.array([r["majority_accuracy"] for r in rs])
        avg = np.array([r["average_accuracy"] for r in rs])
        branches = np.array([r["branch_accuracy"] for r in rs])
        out.append({
            "system": system,
            "trials": len(rs),
            "majority_mean": float(acc.mean()),
            "majority_sd": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
            "average_mean": float(avg.mean()),
            "branch_means": [round(float(v), 4) for v in branches.mean(axis=0)],
            "parameters": rs[0]["parameters"],
            "seconds": round(float(np.mean([r["seconds"] for r in rs])), 1),
        })  # fmt: skip
    return out


def write_results(rows: list[dict[str, Any]], cfg: ESRConfig, out: Path) -> None:
    write_csv_rows(out / "results.csv", rows)
    summary = summarise_results(rows)
    lines = [
        f"ESR experiment: protocol {cfg.esr.protocol}, {cfg.images}, "
        f"{cfg.settings.training.input_size} px, {cfg.settings.training.epochs} epochs per "
        f"branch, rates {cfg.esr.rates}",
        "",
        "| system | trials | accuracy (majority) | accuracy (average) | accuracy per branch "
        "| trainable parameters | training s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        sd = f" ± {100 * s['majority_sd']:.1f}" if s["trials"] > 1 else ""
        branches = ", ".join(f"{100 * v:.1f}" for v in s["branch_means"])
        lines.append(f"| {s['system']} | {s['trials']} | {100 * s['majority_mean']:.1f}{sd} % | "
                     f"{100 * s['average_mean']:.1f} % | {branches} | {s['parameters']:,} | "
                     f"{s['seconds']} |")  # fmt: skip
    if cfg.esr.protocol in REFERENCES and not cfg.images.startswith("synthetic"):
        lines += ["", f"Reference — {REFERENCES[cfg.esr.protocol]}"]
    atomic_write(out / "summary.md", "\n".join(lines) + "\n")
    atomic_write(out / "esr.json", json.dumps({"esr": asdict(cfg.esr), "images": cfg.images,
                                               "summary": summary}, indent=2) + "\n")  # fmt: skip
