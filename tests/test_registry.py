"""The one registry of every extension point (gazelab.plugins.Registry): names, the one-line
error listing the choices, aliases, modules that fail to import listed as unavailable,
thread-safe discovery; and a third-party package installed with pip that adds a tracker and
a fixation detector through entry points, found in settings, CLI choices, help and
``gazelab plugins``, next to a broken one that is listed as unavailable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from gazelab.plugins import EXTENSION_POINTS, Registry, RegistryError, extension_point


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for module, text in modules.items():
        (pkg / f"{module}.py").write_text(textwrap.dedent(text))


@pytest.fixture
def toy_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package on sys.path with two plug-in modules, one of which fails to import; the
    modules register into ``REG`` of its ``registry`` module."""
    name = f"toy_things_{abs(hash(tmp_path)) % 10**8}"
    _package(tmp_path, name, {})
    (tmp_path / name / "registry.py").write_text(
        textwrap.dedent(f"""
        from dataclasses import dataclass
        from gazelab.plugins import Registry

        @dataclass(frozen=True)
        class Thing:
            name: str
            help: str

        REG = Registry("thing", "{name}.things", form=lambda t: t.name + "[:ARG]")
        """)
    )
    _package(tmp_path / name, "things", {
        "alpha": f"""
            import time
            from {name}.registry import REG, Thing
            time.sleep(0.2)  # threads asking meanwhile wait for the whole registry
            REG.add("alpha", Thing("alpha", "the first"), aliases=("a",))
        """,
        "broken": "raise ImportError(\"No module named 'pylsl'\")\n",
        "omega": f"""
            from {name}.registry import REG, Thing
            REG.add("omega", Thing("omega", "the last"))
        """,
    })  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_registry_discovers_its_modules_and_lists_a_broken_one(toy_package: str) -> None:
    import importlib

    toy = importlib.import_module(f"{toy_package}.registry")
    reg, Thing = toy.REG, toy.Thing
    seen: list[tuple[str, ...]] = []
    threads = [threading.Thread(target=lambda: seen.append(reg.names())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [("alpha", "omega")] * 4  # every thread saw the whole registry
    assert reg.get("a") is reg["alpha"] and "a" in reg and "a" not in reg.names()
    assert list(reg) == ["alpha", "omega"] and len(reg) == 2
    assert reg.usage() == "alpha[:ARG], omega[:ARG]"
    broken = reg.unavailable()["broken"]
    assert broken.origin == f"module {toy_package}.things.broken"
    assert broken.error == "ImportError: No module named 'pylsl'"
    with pytest.raises(RegistryError) as err:
        reg.get("gamma")
    message = str(err.value)
    assert message.startswith("unknown thing 'gamma'; choose one of alpha[:ARG], omega[:ARG]; ")
    assert "broken: unavailable" in message and "pylsl" in message and "\n" not in message
    assert reg.listing() == [
        "alpha  the first",
        "omega  the last",
        f"broken: unavailable, module {toy_package}.things.broken failed to load "
        "(ImportError: No module named 'pylsl')",
    ]
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("alpha", Thing("alpha", "another"))
    reg.add("alpha", Thing("alpha", "the first"))  # the same entry again is no error


def test_every_extension_point_is_a_registry_with_at_least_the_shipped_entries() -> None:
    shipped = {
        "trackers": {"eyetribe", "gazepoint", "lsl", "sim", "gazepoint-sim", "lsl-sim", "mouse",
                     "none"},
        "detectors": {"idt", "ivt", "ivt_filter", "adaptive", "flag"},
        "analyzers": {"deep_taylor", "lrp_epsilon", "gradient", "gradcam", "input_x_gradient"},
        "masks": {"negative", "mean", "perceptive", "random"},
        "layouts": {"synthetic", "folder", "ck+", "fer+", "affectnet"},
        "importers": {"eyelink", "tobii", "gazepoint", "csv", "bids"},
        "simulators": {"eyetribe", "gazepoint", "lsl"},
    }  # fmt: skip
    assert set(EXTENSION_POINTS) == set(shipped)  # the kinds are the product's own
    for kind, names in shipped.items():
        registry = extension_point(kind)
        assert isinstance(registry, Registry)
        assert names <= set(registry.names()), kind  # at least these: plug-ins may add more
        assert registry.unavailable() == {}, kind
        with pytest.raises(Exception, match="choose one of") as err:
            registry.get("no-such-thing")
        assert isinstance(err.value, ValueError | RuntimeError)  # each kind's own error


def test_settings_and_cli_choices_read_the_registry_when_asked() -> None:
    """No snapshot at import: a detector registered after the settings and the CLI were
    imported is at once a settings choice and, in a new parser, a CLI choice."""
    import dataclasses

    from gazelab.app.cli import build_parser
    from gazelab.gaze.fixations import DETECTORS, register_detector, valid_runs
    from gazelab.settings import FixationSettings, SettingsError

    with pytest.raises(SettingsError, match="fixations.method = 'late' is not allowed"):
        FixationSettings(method="late")
    register_detector("late", "registered after import")(
        lambda s, g, th: [(a, b - 1) for a, b in valid_runs(s.valid)]
    )
    try:
        assert FixationSettings(method="late").method == "late"
        field = {f.name: f for f in dataclasses.fields(FixationSettings)}["method"]
        assert "late" in field.metadata["choices"]
        parser = build_parser()
        sub = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        analyzer = next(a for a in sub["saliency"]._actions if a.dest == "analyzer")
        assert list(analyzer.choices) == list(extension_point("analyzers"))
    finally:
        DETECTORS.remove("late")
    with pytest.raises(SettingsError):
        FixationSettings(method="late")


def test_eye_tracker_and_simulator_traits_decide_what_a_tracker_is() -> None:
    from gazelab.annotation.operator import drift_check_needed
    from gazelab.app.demo import demo_trackers
    from gazelab.gaze.trackers.registry import TRACKERS, is_eye_tracker, simulators

    assert not is_eye_tracker("mouse") and not is_eye_tracker("none")
    assert is_eye_tracker("eyetribe") and is_eye_tracker("sim")
    assert {k for k in TRACKERS if not TRACKERS[k].eye_tracker} >= {"mouse", "none"}
    assert drift_check_needed("sim", 1.5) and not drift_check_needed("mouse", 1.5)
    assert {real: sim.name for real, sim in simulators().items()} == demo_trackers()
    assert all(TRACKERS[sim].simulated for sim in demo_trackers().values())


# -- a third-party package -------------------------------------------------------------------
TOY_TRACKER = '''
"""A toy tracker from another package: no gaze, registered through an entry point."""
from gazelab.gaze.trackers.mouse import NullTracker
from gazelab.gaze.trackers.registry import OpenTracker, register_tracker


@register_tracker("toytracker", "a toy tracker from a plug-in package", args="address",
                  manufacturer="Toy Inc.")
def open_toy(request):
    return OpenTracker(NullTracker())
'''

TOY_DETECTOR = '''
"""A toy fixation detector from another package: every run of valid samples is a fixation."""
from gazelab.gaze.fixations import register_detector, valid_runs


@register_detector("toydetector", "every run of valid samples (a plug-in)")
def every_run(samples, geometry, thresholds):
    return [(a, b - 1) for a, b in valid_runs(samples.valid)]
'''


def _distribution(root: Path, name: str, groups: dict[str, dict[str, str]],
                  modules: dict[str, str]) -> Path:  # fmt: skip
    """A source tree of distribution ``name`` with the entry points ``groups``."""
    src = root / name
    package = name.replace("-", "_")
    (src / package).mkdir(parents=True)
    (src / package / "__init__.py").write_text("")
    for module, text in modules.items():
        (src / package / f"{module}.py").write_text(text)
    eps = "".join(
        f'[project.entry-points."{group}"]\n'
        + "".join(f'{k} = "{package}.{v}"\n' for k, v in entries.items())
        for group, entries in groups.items()
    )
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "0.1"\n{eps}'
        f'[tool.setuptools]\npackages = ["{package}"]\n'
    )
    return src


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --target`` of two third-party packages: one adds a tracker and a
    detector, the other's detector module raises when imported."""
    root = tmp_path_factory.mktemp("plugins")
    good = _distribution(root, "gazelab-toy", {
        "gazelab.trackers": {"toytracker": "tracker"},
        "gazelab.detectors": {"toydetector": "detector"},
    }, {"tracker": TOY_TRACKER, "detector": TOY_DETECTOR})  # fmt: skip
    bad = _distribution(root, "gazelab-broken", {"gazelab.detectors": {"broken": "detector"}},
                        {"detector": 'raise RuntimeError("the toy plug-in is broken")\n'})  # fmt: skip
    site = root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(site), str(good), str(bad)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"pip cannot build here: {done.stderr.strip().splitlines()[-1:]}")
    return site


def _gazelab(site: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "gazelab.app.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_an_installed_package_adds_a_tracker_and_a_detector(plugin_site: Path,
                                                            tmp_path: Path) -> None:  # fmt: skip
    # the CLI's help and choices
    annotate = _gazelab(plugin_site, "annotate", "--help")  # the broken one is installed too
    assert annotate.returncode == 0 and not annotate.stderr, annotate.stderr
    assert "toytracker[:HOST[:PORT]]" in " ".join(annotate.stdout.split())
    heatmaps = _gazelab(plugin_site, "heatmaps", "--help")  # a detector flag: --fixations
    assert heatmaps.returncode == 0 and "toydetector" in heatmaps.stdout, heatmaps.stderr
    # the settings' allowed choices: a settings file naming both validates
    cfg = tmp_path / "plugin.toml"
    cfg.write_text('[tracker]\nkind = "toytracker"\nhost = "10.0.0.9"\n'
                   '[fixations]\nmethod = "toydetector"\n')  # fmt: skip
    shown = _gazelab(plugin_site, "settings", "--config", str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert 'kind = "toytracker"' in shown.stdout and 'method = "toydetector"' in shown.stdout
    # the listings
    listing = _gazelab(plugin_site, "plugins")
    assert listing.returncode == 0, listing.stderr
    lines = [line.strip() for line in listing.stdout.splitlines()]
    assert any(x.startswith("toytracker") and "a toy tracker from a plug-in" in x for x in lines)
    assert any(x.startswith("toydetector") and "every run of valid samples" in x for x in lines)
    # without the package, neither is known: the settings file is refused in one line
    plain = _gazelab(None, "settings", "--config", str(cfg))
    assert plain.returncode == 2 and len(plain.stderr.strip().splitlines()) == 1
    assert "tracker.kind = 'toytracker' is not allowed" in plain.stderr


def test_a_toy_detector_from_a_package_detects_fixations(plugin_site: Path) -> None:
    code = ("from gazelab.gaze.fixations import detect_fixations; import numpy as np; "
            "t = np.arange(10) * 10.0; v = np.array([1,1,1,0,1,1,1,1,0,1], bool); "
            "print(detect_fixations({'time_ms': t, 'x': t, 'y': t, 'valid': v}, "
            "'toydetector')['onset_ms'].tolist())")  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(plugin_site))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0.0, 40.0, 90.0]"


def test_a_broken_plugin_is_listed_as_unavailable_and_the_exit_status_is_unchanged(
    plugin_site: Path, tmp_path: Path
) -> None:
    listing = _gazelab(plugin_site, "plugins", "detectors")
    assert listing.returncode == 0, listing.stderr  # as without it
    assert (
        "broken: unavailable, entry point broken = gazelab_broken.detector (gazelab-broken 0.1)"
        " failed to load (RuntimeError: the toy plug-in is broken)"
    ) in listing.stdout
    assert "Traceback" not in listing.stderr
    cfg = tmp_path / "broken.toml"
    cfg.write_text('[fixations]\nmethod = "broken"\n')
    refused = _gazelab(plugin_site, "settings", "--config", str(cfg))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "fixations.method = 'broken' is not allowed" in refused.stderr
    assert refused.stderr.strip().endswith(
        "; broken: unavailable, entry point broken = gazelab_broken.detector (gazelab-broken 0.1)"
        " failed to load (RuntimeError: the toy plug-in is broken)"
    )
