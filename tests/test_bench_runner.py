"""benchmarks/run_all.py: results.md from the benchmarks' own printed lines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

RUN_ALL = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


def _runner():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_a_benchmarks_lines_land_in_its_section_and_a_rerun_replaces_only_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _runner()
    bench = tmp_path / "bench_fake.py"
    bench.write_text('"""A fake benchmark."""\nimport sys\nprint("speed-up 3.0x")\n'
                     'print("ratio", sys.argv[1:])\n')  # fmt: skip
    o = r.run_one(bench, ["--n", "4"], timeout=60)
    assert o.returncode == 0 and o.stdout.splitlines() == ["speed-up 3.0x", "ratio ['--n', '4']"]
    text = r.section(o, r.summary_line(bench))
    assert text.startswith("## bench_fake.py\n\nA fake benchmark.\n\n`python benchmarks/")
    assert "```text\nspeed-up 3.0x\nratio ['--n', '4']\n```" in text and ", ok" in text
    out = tmp_path / "results.md"
    other = "## bench_other.py\n\nkept\n"
    r.write_results(out, {"bench_other": other, "bench_fake": text}, ["- CPU: test"])
    written = out.read_text()
    assert written.startswith("# Benchmark results") and "- CPU: test" in written
    assert written.index("## bench_fake.py") < written.index("## bench_other.py")  # sorted
    sections = r.read_sections(out)
    assert sections == {"bench_fake": text, "bench_other": other}
    failing = tmp_path / "bench_fail.py"
    failing.write_text("import sys\nprint('half')\nsys.exit('broken input')\n")
    f = r.run_one(failing, [], timeout=60)
    assert f.returncode == 1 and f.stdout == "half\n" and f.stderr_tail == "broken input"
    assert "FAILED (exit 1)" in r.section(f, "")


def test_quick_arguments_name_real_benchmarks() -> None:
    r = _runner()
    names = {p.stem for p in RUN_ALL.parent.glob("bench_*.py")}
    assert set(r.QUICK_ARGS) <= names
    for name, args in r.QUICK_ARGS.items():  # every option a quick run passes is one it has
        source = (RUN_ALL.parent / f"{name}.py").read_text()
        assert all(f'"{a}"' in source for a in args if a.startswith("--")), name
