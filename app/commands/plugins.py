"""``gazelab plugins``: every extension point and what is registered in it."""

from __future__ import annotations

import argparse


def cmd_plugins(args: argparse.Namespace) -> int:
    """Print each extension point (or the one named): its entries, one line each with their
    help, and the plug-in modules that failed to load, with why. A broken plug-in is
    listed, never fatal: the exit status stays 0."""
    from gazelab.plugins import EXTENSION_POINTS, extension_point

    kinds = [args.kind] if args.kind else list(EXTENSION_POINTS)
    for i, kind in enumerate(kinds):
        registry = extension_point(kind)
        if i:
            print()
        print(f"{kind}: {registry.what}s (entry-point group {registry.group})")
        for line in registry.listing():
            print(f"  {line}")
    return 0
