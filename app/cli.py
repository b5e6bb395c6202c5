"""The ``gazelab`` command line: one entry point, one sub-command per job (docs/cli.md).

This module builds the parser and runs a handler; each handler's body lives in
:mod:`gazelab.app.commands` (one module per concept) and imports what it needs inside
itself, so the tracker/annotation commands start without TensorFlow or Qt; ``--help`` is
read back from :mod:`gazelab.app.help_cache` once built, importing no registry. Errors a
user can fix (bad settings, a wrong dataset layout, an unknown session) are printed as one
clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gazelab import __version__
from gazelab.app import help_cache

TYPE_CHECKING = False  # typing is not imported at run time: --help answered from the cache
if TYPE_CHECKING:  # needs only argparse, os and sys
    from typing import NoReturn

Handler = Callable[[argparse.Namespace], int]


# -- handlers: one module per concept in gazelab.app.commands -----------------------------------
def cmd_settings(args: argparse.Namespace) -> int:
    """Print the settings (defaults, or a file's after validation) as TOML."""
    from gazelab.app.commands import settings_of

    print(settings_of(args).to_toml(), end="")
    return 0


# -- parser --------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (what was wrong, where to look), exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def _count(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in ``lo..hi``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < lo or (hi is not None and value > hi):
            span = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{value} is out of range ({span})")
        return value

    return parse


def _number(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse type: a finite number in ``lo..hi``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is out of range ({lo:g}..{hi:g})")
        return value

    return parse


def _out_folder(text: str) -> str:
    """An argparse type: an output folder, existing or not, but not an existing file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the output folder name is empty")
    try:
        is_file = Path(text).exists() and not Path(text).is_dir()
    except OSError as exc:  # e.g. a name too long for the file system
        raise argparse.ArgumentTypeError(_one_line(exc)) from None
    if is_file:
        raise argparse.ArgumentTypeError(f"{text} is a file; name a folder (new or existing)")
    return text


def _session_ids(text: str) -> list[int]:
    """An argparse type: comma-separated session ids, e.g. ``1,2,5``."""
    try:
        ids = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of session ids (e.g. 1,2,5)"
        ) from None
    if any(i < 1 for i in ids):
        raise argparse.ArgumentTypeError(f"session ids start at 1 (got {text!r})")
    return ids


def _worker(text: str) -> tuple[int, int]:
    """An argparse type: ``I/N``, this host's index among N workers (0-based)."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (e.g. 0/4)") from None
    if not (sep and n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"{text!r}: give I/N with 0 <= I < N (e.g. 0/4)")
    return i, n


def build_parser() -> argparse.ArgumentParser:
    """The whole parser. Building it reads every registry (their plug-ins import NumPy ...):
    the imports are here, not at the top, so a cached ``--help`` needs none of them."""
    from gazelab.analysis.saliency import ANALYZERS as ANALYZER_CHOICES
    from gazelab.app.commands.analysis import cmd_compare, cmd_saliency, cmd_view
    from gazelab.app.commands.heatmaps import cmd_heatmaps
    from gazelab.app.commands.importing import add_import_parser
    from gazelab.app.commands.models import (
        cmd_esr,
        cmd_masks,
        cmd_prune,
        cmd_synthetic,
        cmd_train,
        cmd_transfer,
    )
    from gazelab.app.commands.plugins import cmd_plugins
    from gazelab.app.commands.sessions import cmd_annotate, cmd_demo, cmd_export, cmd_sessions
    from gazelab.app.commands.trackers import cmd_simulate_tracker
    from gazelab.app.commands.voice import add_voice_parser
    from gazelab.gaze.fixations import DETECTORS
    from gazelab.gaze.trackers.registry import SERVERS, simulators, tracker_usage
    from gazelab.models.datasets.registry import layout_usage, layouts
    from gazelab.models.masks import ALGORITHMS as MASK_ALGORITHMS
    from gazelab.plugins import EXTENSION_POINTS, Choices

    parser = _Parser(
        prog="gazelab",
        description="Eye-tracking studies of facial-expression recognition: run annotation "
        "sessions, compare gaze with model saliency, export human masks, train with masks.",
    )
    parser.add_argument("--version", action="version", version=f"gazelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    p = add("demo", cmd_demo, "run the whole product on synthetic faces and a simulated tracker")
    p.add_argument(
        "--out", type=_out_folder, default="demo-out", help="output folder (default: demo-out)"
    )
    p.add_argument("--images", type=_count(1, 10_000), default=8,
                   help="images per session (default: 8)")  # fmt: skip
    p.add_argument("--seed", type=_count(0, 2**32 - 1), default=0, help="random seed (default: 0)")
    p.add_argument("--quick", action="store_true", help="smallest sizes, for tests")
    p.add_argument("--tracker", choices=Choices(lambda: simulators()), default="eyetribe",
                   help="which tracker protocol the simulated sessions run through (default "
                   "eyetribe): the trackers with an in-process simulator")  # fmt: skip

    p = add(
        "annotate",
        cmd_annotate,
        "run or resume an annotation session (full screen: calibration, blank, cross, image,"
        " spoken or typed labels)",
    )
    p.add_argument("--store", default="study.sqlite", help="project store (default: study.sqlite)")
    p.add_argument("--participant", help="pseudonym, e.g. P01 (asked in the dialog if missing)")
    p.add_argument(
        "--images",
        default="synthetic:8:0",
        help=f"image spec (default synthetic:8:0): {layout_usage()}",
    )
    p.add_argument("--dataset", nargs=2, metavar=("LAYOUT", "PATH"),
                   help=f"e.g. --dataset ck+ DIR; LAYOUT: {', '.join(layouts())}")  # fmt: skip
    p.add_argument("--tracker", default="sim", help=f"default sim; one of {tracker_usage()}")
    p.add_argument("--voice", default="keys",
                   help="keys (default), default, pocketsphinx, whisper[:MODEL], vosk:DIR")  # fmt: skip
    p.add_argument("--screen-in", type=_number(5, 200),
                   help='screen diagonal in inches (default 27")')  # fmt: skip
    p.add_argument("--resolution", help="screen resolution WIDTHxHEIGHT (default 2560x1440)")
    p.add_argument("--distance-cm", type=_number(10, 1000),
                   help="eye-to-screen distance (default 70 cm)")  # fmt: skip
    p.add_argument("--config", help="settings TOML (timings, stimulus, calibration points ...)")
    p.add_argument("--resume", type=_count(1), metavar="SESSION", help="resume this session id")
    p.add_argument("--no-dialog", action="store_true", help="start without the set-up dialog")
    p.add_argument("--windowed", action="store_true", help="a window instead of full screen")
    p.add_argument("--skip-calibration", action="store_true", help="no calibration/validation")
    p.add_argument("--order", choices=("random", "latin", "fixed"),
                   help="image order: random per participant (default), latin square, fixed")  # fmt: skip
    p.add_argument("--experimenter-view", action="store_true",
                   help="a live view of gaze and progress for the experimenter (second screen)")  # fmt: skip
    p.add_argument(
        "--autopilot",
        type=_number(0, 3600),
        metavar="SECONDS",
        help="simulated participant: label each image correctly after SECONDS (demos, tests)",
    )

    add_voice_parser(sub)
    add_import_parser(sub)

    p = add(
        "simulate-tracker",
        cmd_simulate_tracker,
        "run a standalone tracker simulator (an Eye Tribe or GazePoint server, an LSL stream...)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--protocol", choices=SERVERS.choices(), default="eyetribe",
                   help="the protocol served (default eyetribe)")  # fmt: skip
    p.add_argument("--port", type=_count(0, 65535),
                   help="TCP port (default: 6555 Eye Tribe, 4242 GazePoint; 0: any free port)")  # fmt: skip
    p.add_argument("--rate", type=_count(1, 1000), default=60,
                   help="frame rate, Hz: 30/60, up to 1000")  # fmt: skip
    p.add_argument(
        "--heartbeat-ms",
        type=_count(10, 60_000),
        default=250,
        help="heartbeat interval (default: 250)",
    )
    p.add_argument("--replay", help="JSON-lines file of {t_ms, x, y, fix, state} to replay")
    p.add_argument("--seed", type=_count(0, 2**32 - 1), default=0)

    p = add("heatmaps", cmd_heatmaps, "fixations and human heatmaps of a recorded session")
    p.add_argument("--store", required=True, help="project store (.sqlite)")
    p.add_argument("--session", type=_count(1), required=True, help="session id")
    p.add_argument("--images", help="the session's images (default: the image spec stored with "
                   f"it): {layout_usage()}, or a PATH in the --dataset layout")  # fmt: skip
    p.add_argument("--dataset", default="folder",
                   help=f"layout of a bare --images PATH: {', '.join(layouts())}")  # fmt: skip
    p.add_argument("--fixations", metavar="METHOD", choices=DETECTORS.choices(),
                   help="fixation detector instead of the session's own [fixations] method:"
                   f" {', '.join(DETECTORS.names())}")  # fmt: skip
    p.add_argument("--out", type=_out_folder, required=True, help="output folder")

    p = add("plugins", cmd_plugins, "list what is registered at each extension point (trackers, "
            "fixation detectors, analyzers, masks, layouts...) and plug-ins that failed to load")  # fmt: skip
    p.add_argument("kind", nargs="?", choices=tuple(EXTENSION_POINTS),
                   help="only this extension point (default: all)")  # fmt: skip

    p = add("settings", cmd_settings, "print the default settings (or a validated file) as TOML")
    p.add_argument("--config", help="settings TOML file to validate and print")

    p = add("synthetic", cmd_synthetic, "write synthetic faces in the folder-per-class layout")
    p.add_argument("--out", type=_out_folder, required=True, help="output folder")
    p.add_argument(
        "-n", type=_count(1, 1_000_000), default=64, help="number of faces (default: 64)"
    )
    p.add_argument("--size", type=_count(16, 4096), default=256,
                   help="side in pixels, 16-4096 (default: 256)")  # fmt: skip
    p.add_argument("--seed", type=_count(0, 2**32 - 1), default=0)
    p.add_argument("--rgb", action="store_true", help="RGB instead of grey-scale")

    p = add("sessions", cmd_sessions,
            "list a store's sessions: participant, date, progress, accuracy, precision, loss")  # fmt: skip
    p.add_argument("--store", required=True, help="project store (.sqlite)")
    p.add_argument("--csv", action="store_true", help="CSV instead of a table")

    p = add("export", cmd_export, "export sessions to a BIDS-like folder (gaze.tsv.gz, events.tsv)")
    p.add_argument("--store", required=True, help="project store (.sqlite)")
    p.add_argument("--session", type=_count(1), help="session id (default: all)")
    p.add_argument("--out", type=_out_folder, required=True, help="output folder")

    def project_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--project", help="project folder (project.sqlite, model.keras)")
        p.add_argument("--store", help="project store (.sqlite), instead of --project")
        p.add_argument("--model", help="trained classifier (.keras)")
        p.add_argument("--cache", help="saliency cache folder (default: beside the store)")
        p.add_argument("--analyzer", choices=ANALYZER_CHOICES, help="default: deep_taylor")
        p.add_argument("--point-source", choices=("events", "samples"),
                       help="fixation points: events (default) or samples in fixations")  # fmt: skip
        p.add_argument("--config", help="settings TOML ([analysis]; [quality] limits for compare)")

    p = add("saliency", cmd_saliency, "relevance maps of a model (deep Taylor, LRP, Grad-CAM...)")
    p.add_argument("--model", required=True, help="trained classifier (.keras)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--images", help=f"a small image set, one NPZ: {layout_usage()}")
    which.add_argument("--dataset", help="a whole dataset (same specs), streamed into "
                       "resumable float16 NPZ shards + index.csv")  # fmt: skip
    p.add_argument("--analyzer", default="deep_taylor", choices=ANALYZER_CHOICES)
    p.add_argument("--out", type=_out_folder, required=True, help="output folder")
    p.add_argument("--cache", help="saliency cache folder (--images; reused across runs)")
    p.add_argument("--limit", type=_count(1), help="only the first N images")
    p.add_argument("--batch-size", type=_count(1, 4096), default=32)
    p.add_argument(
        "--shard-size", type=_count(1, 100_000), default=256, help="--dataset: images per shard"
    )
    p.add_argument("--worker", type=_worker, help="--dataset on several hosts sharing --out: "
                   "this host's part I/N (default: from TF_CONFIG when set)")  # fmt: skip
    p.add_argument("--png", action="store_true",
                   help="also write PNGs: relevance colour-mapped over the image, colour bar")  # fmt: skip

    p = add("compare", cmd_compare, "human gaze vs model saliency: metrics report")
    project_args(p)
    p.add_argument("--sessions", type=_session_ids,
                   help="comma-separated session ids (default: all)")  # fmt: skip
    p.add_argument("--report", type=_out_folder, help="report folder (default: <project>/report)")
    p.add_argument("--aois", help="AOI file by image id, .json or .csv (default: image regions)")
    p.add_argument("--human-pairs", choices=("all", "others"),
                   help="human rows: every ordered pair (all, default) or each annotator vs "
                   "the pooled maps of the others (others: linear in annotators)")  # fmt: skip

    p = add("view", cmd_view, "overlay viewer: images, human and model heatmaps, metrics")
    project_args(p)
    p.add_argument("--aois", help="AOI file by image id, .json or .csv (default: image regions)")
    p.add_argument("--screenshot", help=argparse.SUPPRESS)

    p = add("masks", cmd_masks, "export masks (negative, mean, perceptive, human) for training")
    p.add_argument("--algorithm", required=True, choices=MASK_ALGORITHMS)
    p.add_argument(
        "--out",
        type=_out_folder,
        required=True,
        help="export folder (re-run to finish an interrupted one)",
    )
    project_args(p)
    p.add_argument("--sessions", type=_session_ids,
                   help="comma-separated session ids (default: all)")  # fmt: skip
    p.add_argument("--annotator", help="human masks of one annotator (default: all pooled)")
    p.add_argument(
        "--mixed",
        action="store_true",
        help="images without the annotator's gaze get the model's perceptive mask",
    )
    p.add_argument("--images", help="model masks for a whole image set instead of a project")
    p.add_argument("--relevance", help="with --images: relevance shards written by "
                   "`gazelab saliency --dataset` (same model and images) instead of computing")  # fmt: skip
    p.add_argument(
        "--size", type=_count(8, 4096), help="mask side in px (default: the model's input)"
    )
    p.add_argument("-n", type=_count(1, 10_000), default=7,
                   help="points for perceptive masks with --images")  # fmt: skip

    p = add("prune", cmd_prune, "distinctiveness pruning of a conv layer's feature maps")
    p.add_argument("--model", required=True, help="trained classifier (.keras)")
    p.add_argument("--images", required=True, help="validation images with labels (image spec)")
    p.add_argument(
        "--similar", type=_number(0, 180), default=10.0, help="merge pairs under this angle (°)"
    )
    p.add_argument("--complementary", type=_number(0, 180), default=170.0,
                   help="remove both maps of pairs over this angle (°)")  # fmt: skip
    p.add_argument("--layer", help="conv layer to prune (default: the last Conv2D)")
    p.add_argument("--limit", type=_count(1), help="only the first N images")
    p.add_argument("--out", help="pruned model (default: <model>-pruned.keras; + .json)")

    p = add("esr", cmd_esr, "ensembles with shared representations: run an ESR protocol")
    p.add_argument("--config", required=True,
                   help="ESR config TOML ([data], [esr], [training]); see examples/esr-*.toml")  # fmt: skip
    p.add_argument(
        "--out", type=_out_folder, help="output folder (default: runs/<config name> beside it)"
    )

    p = add("transfer", cmd_transfer,
            "memory integrity across datasets: fine-tuning strategies BL/FC/FC+CL/RE/FU")  # fmt: skip
    p.add_argument("--config", required=True,
                   help="config TOML ([transfer], [training]); see examples/transfer-*.toml")  # fmt: skip
    p.add_argument(
        "--out", type=_out_folder, help="output folder (default: runs/<config name> beside it)"
    )

    p = add("train", cmd_train, "train the Trainer, or run the Trainee experiment")
    p.add_argument("role", choices=("trainer", "trainee"))
    p.add_argument("--config", required=True, help="run config TOML ([data], [training], ...)")
    p.add_argument(
        "--out", type=_out_folder, help="output folder (default: runs/<config name> beside it)"
    )

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # File names that are not valid UTF-8 reach us surrogate-escaped: print them escaped
    # instead of failing inside the error message itself.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    argv = list(sys.argv[1:] if argv is None else argv)
    # --help/--version: read back when nothing it depends on changed
    asked = help_cache.request(argv) if help_cache.usable() else None
    if asked is not None and (text := help_cache.lookup(asked)) is not None:
        sys.stdout.write(text)
        sys.exit(0)
    parser = build_parser()
    if asked is not None:
        with help_cache.recording(asked):  # prints the help, keeps it, exits
            args = parser.parse_args(argv)
    else:
        args = parser.parse_args(argv)
    quiet_tensorflow()
    one_line_warnings(f"gazelab {args.command}")
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        print(f"gazelab {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up and retracing messages off stderr, where a user error is
    one line; a user who sets ``TF_CPP_MIN_LOG_LEVEL`` (0 = everything) keeps them."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def one_line_warnings(prefix: str) -> None:
    """Print gazelab's own warnings (:class:`~gazelab.errors.GazelabWarning`: skipped dataset
    rows ...) as one line, ``<prefix>: warning: ...``, like the errors, instead of Python's
    ``path.py:192: DatasetWarning: ...`` and a source line; other warnings are unchanged."""
    import warnings

    from gazelab.errors import GazelabWarning

    python_way = getattr(warnings.showwarning, "python_way", warnings.showwarning)

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if not issubclass(category, GazelabWarning):
            python_way(message, category, filename, lineno, file, line)
            return
        stream = sys.stderr if file is None else file
        try:
            stream.write(f"{prefix}: warning: {' '.join(str(message).split())}\n")
        except OSError:  # stderr closed: a warning is not worth a crash
            pass

    show.python_way = python_way  # type: ignore[attr-defined]  # main() run again wraps once
    warnings.showwarning = show


def _one_line(exc: Exception) -> str:
    """The message of a user error on one line; an OS error says what to do about it."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{where}{_OS_HINTS.get(exc.errno or 0, '')}"
    else:
        text = str(exc)
    return " ".join(text.split())


_OS_HINTS = {
    errno.ENOSPC: " — free some space and run the command again (finished work is kept)",
    errno.EDQUOT: " — free some space and run the command again (finished work is kept)",
    errno.ENAMETOOLONG: " — use a shorter file name or path",
    errno.EACCES: " — check the permissions, or choose another folder",
    errno.EROFS: " — choose a writable folder",
    errno.EISDIR: " — name a file, not a folder",
    errno.ENOTDIR: " — a part of the path is a file, not a folder",
    errno.ENOENT: " — check the path",
}


def _is_user_error(exc: BaseException) -> bool:
    """Errors that come from the user's input or machine (bad values, files, a full disk)."""
    from gazelab.errors import GazelabError

    return isinstance(exc, (GazelabError, OSError, UnicodeError))


if __name__ == "__main__":
    sys.exit(main())
