"""Model files are untrusted input: loading a ``.keras`` file never runs
code named in it. Crafted files are built here, byte by byte, without Keras."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from gazelab.models.architectures import (
    MODEL_LAYER_CLASSES,
    ArchitectureError,
    check_model_config,
    load_classifier,
)


def _layer(cls: str, name: str, module: str | None = "keras.layers", **config: Any) -> dict:
    return {"module": module, "class_name": cls, "config": {"name": name, **config},
            "registered_name": None}  # fmt: skip


def _model(*layers: dict) -> dict:
    inp = _layer("InputLayer", "input_1", batch_input_shape=[None, 4], dtype="float32")
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "crafted", "layers": [inp, *layers]}}  # fmt: skip


def _write(path: Path, config: Any, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "2.14.0"}))
        z.writestr("config.json", config if isinstance(config, str) else json.dumps(config))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def _pipepager_lambda(marker: Path) -> dict:
    """Keras 2.14 builds this layer by calling ``pydoc.pipepager(inputs, cmd=...)``: a shell
    command, even with ``safe_mode=True`` (which only stops pickled lambdas)."""
    function = {"module": "pydoc", "class_name": "function", "config": "pipepager",
                "registered_name": "function"}  # fmt: skip
    return _layer("Lambda", "evil", function=function, function_type="function",
                  module="pydoc", arguments={"cmd": f"touch {marker}"}, output_shape=None,
                  output_shape_type="raw", output_shape_module=None)  # fmt: skip


def test_lambda_calling_a_library_function_is_refused_and_never_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "ran"
    path = _write(tmp_path / "evil.keras", _model(_pipepager_lambda(marker)))
    with pytest.raises(ArchitectureError) as err:
        load_classifier(path)
    msg = str(err.value)
    assert str(path) in msg and "'evil'" in msg and "Lambda" in msg
    time.sleep(0.5)  # a spawned shell would have touched the marker by now
    assert not marker.exists()


@pytest.mark.parametrize(
    ("layer", "why"),
    [
        (_layer("Dense", "d", module="os", units=2), "module 'os' is not one of Keras' own"),
        (_layer("Dense", "d", module="keras.src.utils.io_utils", units=2), "module"),
        (_layer("TFOpLambda", "op", function="io.write_file"), "TFOpLambda"),
        (_layer("StringLookup", "lookup", vocabulary="/etc/passwd"), "not an allowed"),
        ({**_layer("Dense", "d", units=2), "registered_name": "evil>Dense"}, "registered_name"),
        (
            _layer(
                "Dense",
                "d",
                units=2,
                kernel_initializer={
                    "module": "keras.initializers",
                    "class_name": "function",
                    "config": "system",
                    "registered_name": "function",
                },
            ),
            "function",
        ),
        (
            _layer(
                "Dense",
                "d",
                units=2,
                activation={"class_name": "__lambda__", "config": {"code": "AAAA"}},
            ),
            "__lambda__",
        ),
        (_layer("Dense", "d", units=2, activation="os.system"), "unknown activation"),
    ],
)
def test_anything_but_keras_own_layers_is_refused(tmp_path, layer, why) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path / "m.keras", _model(layer))
    with pytest.raises(ArchitectureError, match=why) as err:
        load_classifier(path)
    assert str(path) in str(err.value)


def test_files_that_are_not_keras_zips_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "text.keras").write_text("not a zip")
    with pytest.raises(ArchitectureError, match="not a zip archive"):
        load_classifier(tmp_path / "text.keras")
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(ArchitectureError, match="no config.json"):
        load_classifier(tmp_path / "empty.keras")
    with pytest.raises(ArchitectureError, match="only the .keras format"):
        load_classifier(_write(tmp_path / "m.h5", _model()))


def test_zip_bombs_and_paths_in_the_archive_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for entry in ("../../outside.txt", "/etc/cron.d/x", "assets/../../x"):
        path = _write(tmp_path / "p.keras", _model(), {entry: b"x"})
        with pytest.raises(ArchitectureError, match="path out of the archive"):
            load_classifier(path)
    bomb = _write(tmp_path / "bomb.keras", _model(), {"model.weights.h5": bytes(8 * 2**20)})
    with pytest.raises(ArchitectureError, match="zip bomb"):
        load_classifier(bomb)
    huge = _write(tmp_path / "huge.keras", " " * (17 * 2**20))
    with pytest.raises(ArchitectureError, match=r"config.json is \d+ bytes|zip bomb"):
        load_classifier(huge)
    deep = _write(tmp_path / "deep.keras", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ArchitectureError, match="config.json"):
        load_classifier(deep)


def test_the_cli_prints_one_line_and_exits_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from gazelab.app.cli import main

    marker = tmp_path / "ran"
    path = _write(tmp_path / "evil.keras", _model(_pipepager_lambda(marker)))
    rc = main(["saliency", "--model", str(path), "--images", "synthetic:2:0",
               "--out", str(tmp_path / "sal")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "Lambda" in err[0] and str(path) in err[0]
    assert not marker.exists()


# -- legit models still load -------------------------------------------------------------------
def _classes(config: Any) -> set[str]:
    found: set[str] = set()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("module") == "keras.layers":
                found.add(node["class_name"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


@pytest.mark.tf
def test_the_allow_list_is_keras_own_and_covers_every_project_architecture(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import tensorflow as tf
    from keras.src.saving.serialization_lib import serialize_keras_object

    from gazelab.models.architectures import ARCHITECTURES, simplified_vgg
    from gazelab.models.esr import build_esr

    for name in MODEL_LAYER_CLASSES:  # every allowed name is a class of Keras' layer registry
        assert isinstance(getattr(tf.keras.layers, name), type), name
    sizes = {"inception_v3": 75, "xception": 71}
    models = [ARCHITECTURES[a]((sizes.get(a, 32),) * 2 + (3,), 8)
              for a in ARCHITECTURES if a != "simplified_vgg"]  # fmt: skip
    models += [simplified_vgg((32, 32, 1), 7, width=0.05), build_esr((32, 32, 1), 8, 2, 3, 0.25)]
    used: set[str] = set()
    for m in models:
        config = serialize_keras_object(m)  # what model.save writes as config.json
        check_model_config(config, Path(f"{m.name}.keras"))
        used |= _classes(config)
    assert used <= MODEL_LAYER_CLASSES and {"Conv2D", "Concatenate", "Add"} <= used


@pytest.mark.tf
def test_a_model_built_here_loads_and_predicts_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from gazelab.models.architectures import build_model

    model = build_model("small_cnn", (32, 32, 1), 8)
    model.save(tmp_path / "m.keras")
    back = load_classifier(tmp_path / "m.keras")
    x = np.random.default_rng(0).random((2, 32, 32, 1)).astype(np.float32)
    assert np.allclose(model.predict(x, verbose=0), back.predict(x, verbose=0), atol=1e-6)


# -- sizes: what a file makes Keras unpack and allocate --------------------------------------
def test_many_one_mib_assets_that_unpack_to_gigabytes_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Entries of exactly 1 MiB escaped the per-entry ratio check: 4,095 of them under
    assets/ (a 4.65 MB file) unpacked 4.1 GB into the temporary folder. 64 show it here."""
    from gazelab.models.architectures import read_model_config

    assets = {f"assets/a{i:04d}": bytes(2**20) for i in range(64)}
    path = _write(tmp_path / "assets.keras", _model(), assets)
    assert path.stat().st_size < 200_000
    with pytest.raises(ArchitectureError, match=r"assets/ entries unpack to 67108864 bytes"):
        read_model_config(path)


def test_a_huge_layer_declared_in_a_few_kilobytes_is_refused_before_building(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 2.3 KB config with a Dense layer of 30 million units drove RSS to 2 GB before it
    was refused: the weights are now counted from the config, without Keras."""
    from gazelab.models.architectures import read_model_config

    wide = _model(_layer("Dense", "wide", units=30_000_000, activation="relu"))
    wide["config"]["layers"][0]["config"]["batch_input_shape"] = [None, 16]
    path = _write(tmp_path / "wide.keras", wide, {"model.weights.h5": bytes(64)})
    assert path.stat().st_size < 3000
    with pytest.raises(ArchitectureError, match="declares 510,000,000 weights, over 100,000,000"):
        read_model_config(path)
    narrow = _model(_layer("Dense", "wide", units=30_000_000, activation="relu"))
    path = _write(tmp_path / "narrow.keras", narrow, {"model.weights.h5": bytes(64)})
    with pytest.raises(ArchitectureError, match="declares 150,000,000 weights, over"):
        read_model_config(path)
    one = _model(_layer("Dense", "wide", units=30_000_000, activation="relu"))
    one["config"]["layers"][0]["config"]["batch_input_shape"] = [None, 1]
    path = _write(tmp_path / "one.keras", one, {"model.weights.h5": bytes(64)})
    with pytest.raises(ArchitectureError, match="declares 60,000,000 weights but the weights"):
        read_model_config(path)
    # a layer's build_config is where Keras builds it, whatever the graph says
    built = _model(_layer("Dense", "d", units=1000))
    built["config"]["layers"][1]["build_config"] = {"input_shape": [None, 1_000_000]}
    path = _write(tmp_path / "built.keras", built, {"model.weights.h5": bytes(64)})
    with pytest.raises(ArchitectureError, match="declares 1,000,001,000 weights"):
        read_model_config(path)
    bad = _model(_layer("Dense", "d", units=-5))
    path = _write(tmp_path / "bad.keras", bad, {"model.weights.h5": bytes(64)})
    with pytest.raises(ArchitectureError, match="sizes Keras cannot build"):
        read_model_config(path)


@pytest.mark.tf
def test_the_weight_count_is_exact_for_every_project_architecture() -> None:
    import json as _json

    tf = pytest.importorskip("tensorflow")
    from keras.src.saving.serialization_lib import serialize_keras_object

    from gazelab.models.architectures import ARCHITECTURES, simplified_vgg
    from gazelab.models.esr import build_esr
    from gazelab.models.param_count import count_parameters

    models = [ARCHITECTURES[a]((32, 32, 3), 8) for a in ("small_cnn", "six_module_cnn",
                                                           "mobilenet_v2")]  # fmt: skip
    models += [simplified_vgg((48, 48, 1), 7), build_esr((32, 32, 1), 8, 2, 3, 0.25)]
    models.append(tf.keras.Sequential([tf.keras.Input((10,)), tf.keras.layers.Dense(5)]))
    for m in models:
        config = _json.loads(_json.dumps(serialize_keras_object(m)))
        assert count_parameters(config)[0] == m.count_params(), m.name


def test_a_load_killed_half_way_leaves_no_copy_behind(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A SIGKILL while a model loads (here during the TensorFlow import) left its private
    copy (gazelab-model-*) in the temporary folder, one per kill; the next load removes
    those of processes that are gone, and keeps those of live ones."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    model = _write(tmp_path / "m.keras", _model(_layer("Dense", "d", units=2)),
                   {"model.weights.h5": bytes(1024)})  # fmt: skip
    code = (
        "import sys; from gazelab.models.architectures import load_classifier as f; f(sys.argv[1])"
    )
    leftovers = []
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", code, str(model)],
                                env={**os.environ, "TMPDIR": str(tmp)})  # fmt: skip
        t_end = time.monotonic() + 60
        try:
            while time.monotonic() < t_end and proc.poll() is None:
                found = [d for d in tmp.glob("gazelab-model-*") if d.name not in leftovers]
                if found and (found[0] / "model.keras").exists():
                    break
                time.sleep(0.01)
            assert proc.poll() is None, "the load ended before it could be killed"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        leftovers += [d.name for d in tmp.glob("gazelab-model-*") if d.name not in leftovers]
    assert len(leftovers) == 2, leftovers  # what each kill leaves
    live = tmp / f"gazelab-model-{os.getpid()}-live"
    live.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    with pytest.raises(ArchitectureError, match="only the .keras format"):
        load_classifier(_write(tmp_path / "other.h5", _model()))
    assert sorted(d.name for d in tmp.iterdir()) == [live.name]
