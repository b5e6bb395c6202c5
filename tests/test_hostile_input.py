"""Every command line is untrusted input: a table of bad inputs, each answered by one line
on stderr and exit status 2 — never a traceback.

The table is run in-process through ``gazelab.app.cli.main`` (an uncaught exception fails
the test with its traceback); two rows also run as real processes, where a traceback on
stderr would show.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from gazelab.app.cli import main

Build = Callable[[Path], list[str]]


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def _store_with_session(path: Path, image_source: str = "synthetic:4:0") -> Path:
    from gazelab.annotation.store import SessionStore

    with SessionStore(path, create=True) as store:
        store.create_session(
            "P01",
            settings_toml="",
            seed=0,
            image_source=image_source,
            stimulus_order=["a", "b", "c", "d"],
            start_local_s=0.0,
        )
    return path


def _corrupt_store(tmp: Path) -> Path:
    """A real store whose pages after the header are overwritten with garbage."""
    path = _store_with_session(tmp / "corrupt.sqlite")
    raw = bytearray(path.read_bytes())
    for off in range(4096, len(raw), 4096):  # keep the 100-byte header, smash every page
        raw[off : off + 512] = os.urandom(512)
    raw[100:600] = os.urandom(500)
    path.write_bytes(bytes(raw))
    return path


def _foreign_database(tmp: Path) -> Path:
    path = tmp / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE foo (x)")
    return path


def _store_with_bad_json(tmp: Path) -> Path:
    path = _store_with_session(tmp / "badjson.sqlite")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE sessions SET stimulus_order = '[\"a\", '")
    return path


def _store_with_text_in_x(tmp: Path) -> Path:
    """A store with one trial of samples, one of whose x values was set to text outside
    gazelab (SQLite keeps text in a REAL column)."""
    from gazelab.annotation.store import SessionStore
    from gazelab.gaze.trackers.base import GazeSample

    path = tmp / "textx.sqlite"
    ids = [f"synthetic-0-{i:05d}" for i in range(4)]
    with SessionStore(path, create=True) as store:
        rec = store.create_session("P01", settings_toml="", seed=0, image_source="synthetic:4:0",
                                   stimulus_order=ids, start_local_s=0.0)  # fmt: skip
        samples = [GazeSample(time_ms=i * 16.7, local_s=i / 60, x=500.0, y=400.0)
                   for i in range(60)]  # fmt: skip
        store.add_samples(rec.id, samples, trial_index=0, phase="image")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE gaze_samples SET x = 'abc' WHERE rowid = 5")
    return path


def _ferplus_with_a_huge_field(tmp: Path) -> Path:
    """FER+ files whose one pixel field is 140 KB (Python's csv reader stops at 128 KiB)."""
    root = tmp / "ferplus"
    _write(root / "fer2013.csv", 'emotion,pixels,Usage\n0,"' + " ".join(["7"] * 70_000)
           + '",Training\n')  # fmt: skip
    votes = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
    _write(root / "fer2013new.csv", votes + "unknown,NF\nTraining,fer0.png,10,0,0,0,0,0,0,0,0,0\n")
    return root


# id -> argv built in a fresh tmp folder, and a word the one-line message must contain.
ROWS: dict[str, tuple[Build, str]] = {
    "toml nested too deeply": (
        lambda t: ["settings", "--config", str(_write(t / "d.toml", "a=" + "[" * 50_000))],
        "nested too deeply",
    ),
    "toml not utf-8": (
        lambda t: ["settings", "--config", str(_write(t / "l.toml", b"title = '\xe9t\xe9'\n"))],
        "not UTF-8",
    ),
    "toml over the size cap": (
        lambda t: ["settings", "--config", str(_write(t / "big.toml", b"# x\n" * 400_000))],
        "larger than",
    ),
    "config is a folder": (lambda t: ["settings", "--config", str(t)], "cannot read"),
    "config name not utf-8": (
        lambda t: ["settings", "--config", os.fsdecode(bytes(t) + b"/\xff\xfe.toml")],
        "cannot read",
    ),
    "synthetic size 4": (lambda t: ["synthetic", "--out", str(t / "o"), "--size", "4"], "--size"),
    "synthetic n 0": (lambda t: ["synthetic", "--out", str(t / "o"), "-n", "0"], "-n"),
    "synthetic n not a number": (lambda t: ["synthetic", "--out", str(t / "o"), "-n", "x"], "-n"),
    "synthetic seed negative": (
        lambda t: ["synthetic", "--out", str(t / "o"), "--seed", "-1"],
        "--seed",
    ),
    "synthetic out is a file": (
        lambda t: ["synthetic", "--out", str(_write(t / "f.txt", "x")), "-n", "1"],
        "is a file",
    ),
    "synthetic out name too long": (
        lambda t: ["synthetic", "--out", str(t / ("x" * 300)), "-n", "1", "--size", "16"],
        "shorter",
    ),
    "compare sessions 1,x": (lambda t: ["compare", "--sessions", "1,x"], "--sessions"),
    "compare sessions 0": (lambda t: ["compare", "--sessions", "0"], "--sessions"),
    "simulate-tracker port 99999": (
        lambda t: ["simulate-tracker", "--port", "99999"],
        "--port",
    ),
    "simulate-tracker rate 0": (lambda t: ["simulate-tracker", "--rate", "0"], "--rate"),
    "simulate-tracker rate 5000": (lambda t: ["simulate-tracker", "--rate", "5000"], "--rate"),
    "simulate-tracker heartbeat 0": (
        lambda t: ["simulate-tracker", "--heartbeat-ms", "0"],
        "--heartbeat-ms",
    ),
    "simulate-tracker replay missing": (
        lambda t: ["simulate-tracker", "--port", "0", "--replay", str(t / "none.jsonl")],
        "none.jsonl",
    ),
    "simulate-tracker replay garbage": (
        lambda t: [
            "simulate-tracker",
            "--port",
            "0",
            "--replay",
            str(_write(t / "r.jsonl", b"\x00\xff{not json\n[1,2]\n")),
        ],
        "r.jsonl",
    ),
    "export missing store": (
        lambda t: ["export", "--store", str(t / "typo.sqlite"), "--out", str(t / "o")],
        "typo.sqlite",
    ),
    "heatmaps missing store": (
        lambda t: [
            *("heatmaps", "--store", str(t / "typo.sqlite"), "--session", "1"),
            *("--images", "synthetic:4:0", "--out", str(t / "o")),
        ],
        "typo.sqlite",
    ),
    "heatmaps images in an unknown layout": (
        lambda t: [
            *("heatmaps", "--store", str(_store_with_session(t / "s.sqlite")), "--session", "1"),
            *("--images", "imagenet:/data", "--out", str(t / "o")),
        ],
        "ck+:PATH",
    ),
    "heatmaps stored images gone": (
        lambda t: [
            *("heatmaps", "--store", str(_store_with_session(t / "s.sqlite", f"folder:{t}/gone"))),
            *("--session", "1", "--out", str(t / "o")),
        ],
        "--images",
    ),
    "saliency images in an unknown layout": (
        lambda t: ["saliency", "--model", "m.keras", "--images", "x:1", "--out", str(t / "o")],
        "synthetic:N:SEED",
    ),
    "annotate images in an unknown layout": (
        lambda t: [
            *("annotate", "--store", str(t / "s.sqlite"), "--participant", "P01"),
            *("--no-dialog", "--images", "cifar:/data"),
        ],
        "fer+:PATH",
    ),
    "export empty store file": (
        lambda t: [
            "export",
            "--store",
            str(_write(t / "empty.sqlite", b"")),
            "--out",
            str(t / "o"),
        ],
        "not a gazelab store",
    ),
    "export another program's database": (
        lambda t: ["export", "--store", str(_foreign_database(t)), "--out", str(t / "o")],
        "never writes into another database",
    ),
    "annotate resolution 10x10": (
        lambda t: [
            *("annotate", "--store", str(t / "s.sqlite"), "--participant", "P01"),
            *("--no-dialog", "--resolution", "10x10"),
        ],
        "10x10",
    ),
    "export corrupt store": (
        lambda t: ["export", "--store", str(_corrupt_store(t)), "--out", str(t / "o")],
        "corrupt.sqlite",
    ),
    "export bad json in a session": (
        lambda t: ["export", "--store", str(_store_with_bad_json(t)), "--out", str(t / "o")],
        "badjson.sqlite",
    ),
    "saliency out is a file": (
        lambda t: [
            *("saliency", "--model", "m.keras", "--images", "synthetic:4:0"),
            *("--out", str(_write(t / "f", "x"))),
        ],
        "is a file",
    ),
    "masks out is a file": (
        lambda t: ["masks", "--algorithm", "mean", "--out", str(_write(t / "f", "x"))],
        "is a file",
    ),
    "saliency model missing": (
        lambda t: [
            *("saliency", "--model", str(t / "none.keras"), "--images", "synthetic:4:0"),
            *("--out", str(t / "o")),
        ],
        "none.keras",
    ),
    "saliency model not a zip": (
        lambda t: [
            *("saliency", "--model", str(_write(t / "m.keras", b"not a zip"))),
            *("--images", "synthetic:4:0", "--out", str(t / "o")),
        ],
        "m.keras",
    ),
    "saliency model with a lambda layer": (
        lambda t: [
            *("saliency", "--model", str(_lambda_model(t / "evil.keras"))),
            *("--images", "synthetic:4:0", "--out", str(t / "o")),
        ],
        "evil.keras",
    ),
    "annotate resume of a missing session": (
        lambda t: [
            *("annotate", "--store", str(_store_with_session(t / "s.sqlite")), "--resume", "7"),
            *("--no-dialog", "--participant", "P01"),
        ],
        "7",
    ),
    "fer+ pixel field over 128 KiB": (
        lambda t: [
            *("heatmaps", "--store", str(_store_with_session(t / "s.sqlite")), "--session", "1"),
            *("--images", f"fer+:{_ferplus_with_a_huge_field(t)}", "--out", str(t / "o")),
        ],
        "fer2013.csv line 2",
    ),
    "sessions with text in a sample's x": (
        lambda t: ["sessions", "--store", str(_store_with_text_in_x(t))],
        "not a number",
    ),
    "export with text in a sample's x": (
        lambda t: ["export", "--store", str(_store_with_text_in_x(t)), "--out", str(t / "o")],
        "not a number",
    ),
    "heatmaps with text in a sample's x": (
        lambda t: [
            *("heatmaps", "--store", str(_store_with_text_in_x(t)), "--session", "1"),
            *("--out", str(t / "o")),
        ],
        "not a number",
    ),
    "export out under a folder that cannot be made": (
        lambda t: [
            *("export", "--store", str(_store_with_session(t / "s.sqlite"))),
            *("--out", "/proc/gazelab-none/o"),
        ],
        "cannot be made or is a file: give another --out",
    ),
    "annotate store is a folder": (
        lambda t: ["annotate", "--store", str(t), "--participant", "P01", "--no-dialog"],
        "is a folder: give a file in it",
    ),
    "saliency model is a folder": (
        lambda t: [
            "saliency",
            "--model",
            str(t),
            "--images",
            "synthetic:4:0",
            "--out",
            str(t / "o"),
        ],  # fmt: skip
        "is a folder, not a model file",
    ),
    "settings with 60,000 unknown sections": (
        lambda t: [
            "settings",
            "--config",
            str(_write(t / "many.toml", "".join(f"[s{i}]\n" for i in range(60_000)))),
        ],
        "and 59,992 more",
    ),
    "annotate resume with the wrong participant": (
        lambda t: [
            *("annotate", "--store", str(_store_with_session(t / "s.sqlite")), "--resume", "1"),
            *("--no-dialog", "--participant", "P02"),
        ],
        "P01",
    ),
}


def _lambda_model(path: Path) -> Path:
    """A .keras file whose Lambda layer would run a shell command through pydoc on load."""
    marker = path.with_suffix(".ran")
    config = {
        "module": "keras.src.engine.functional",
        "class_name": "Functional",
        "config": {
            "name": "evil",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "Lambda",
                    "config": {
                        "name": "lambda",
                        "function": {
                            "module": "pydoc",
                            "class_name": "function",
                            "config": "pipepager",
                            "registered_name": "function",
                        },
                        "arguments": {"cmd": f"touch {marker}"},
                    },
                }
            ],
        },
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps({"keras_version": "2.14.0"}))
    return path


def _assert_one_line_exit_2(code: int, err: str, word: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert len(lines[0]) < 1000, f"a line of {len(lines[0])} characters"
    assert lines[0].startswith("gazelab"), lines[0]
    assert word in lines[0], lines[0]


@pytest.mark.parametrize("row", list(ROWS))
def test_bad_input_is_one_line_and_exit_2(row, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a row writes lands in the repository
    build, word = ROWS[row]
    argv = build(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        code = int(exc.code or 0)
    _assert_one_line_exit_2(code, capsys.readouterr().err, word)
    assert not list(tmp_path.glob("*.ran")), "the model file ran code"
    if (tmp_path / "other.sqlite").exists():  # nothing was written into it
        with sqlite3.connect(tmp_path / "other.sqlite") as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master")]
        assert tables == ["foo"]


def test_a_full_disk_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from PIL import Image

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "o" / "x.png"))

    monkeypatch.setattr(Image.Image, "save", full)
    code = main(["synthetic", "--out", str(tmp_path / "o"), "-n", "2", "--size", "32"])
    _assert_one_line_exit_2(code, capsys.readouterr().err, "free some space")


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = str(s.getsockname()[1])
        code = main(["simulate-tracker", "--port", port])
    _assert_one_line_exit_2(code, capsys.readouterr().err, port)


def test_prune_names_the_missing_layer(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from gazelab.models.architectures import build_model

    model = tmp_path / "m.keras"
    build_model("small_cnn", (32, 32, 1), 8).save(model)
    argv = ["prune", "--model", str(model), "--images", "synthetic:8:0:32", "--layer", "nope"]
    _assert_one_line_exit_2(main(argv), capsys.readouterr().err, "'nope'")
    before = model.read_bytes()
    (tmp_path / "adir").mkdir()
    for out, says in ((model, "is the input model"), (tmp_path / "adir", "must end in .keras"),
                      (tmp_path / "notes.txt", "must end in .keras")):  # fmt: skip
        argv = ["prune", "--model", str(model), "--images", "synthetic:8:0:32", "--out", str(out)]
        _assert_one_line_exit_2(main(argv), capsys.readouterr().err, says)
    assert model.read_bytes() == before  # the trained model is never written over


@pytest.mark.parametrize(
    "argv",
    [
        ["settings", "--config", b"/nonexistent/\xff\xfe.toml"],
        ["synthetic", "--out", "o", "--size", "4"],
    ],
    ids=["non-utf8 file name", "synthetic size 4"],
)
def test_real_processes_print_no_traceback(argv, tmp_path):
    exe = Path(sys.executable).with_name("gazelab")
    proc = subprocess.run([exe, *argv], cwd=tmp_path, capture_output=True, timeout=60)
    err = proc.stderr.decode("utf-8", errors="replace")
    assert proc.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_view_refuses_a_bad_store_or_model_before_any_window(tmp_path, capsys):
    from gazelab.annotation.store import SessionStore

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    argv = ["view", "--store", str(text)]
    _assert_one_line_exit_2(main(argv), capsys.readouterr().err, "notes.txt")
    with SessionStore(tmp_path / "s.sqlite", create=True):
        pass
    argv = ["view", "--store", str(tmp_path / "s.sqlite"), "--model", str(text)]
    _assert_one_line_exit_2(main(argv), capsys.readouterr().err, "not a Keras .keras model")
