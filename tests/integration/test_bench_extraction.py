"""The extraction benchmark (bench/extraction.py) runs end to end: one short round of every mode
on loopback sites, real Chromium, moto's S3."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed"),
]

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "extraction.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_extraction", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_the_quick_benchmark_measures_every_mode_and_renders_its_section(tmp_path: Path) -> None:
    # Given the benchmark's quick selection (the X posts and the JSON-LD page), every mode
    bench = load_bench()
    modes = list(bench.MODES) if importlib.util.find_spec("yt_dlp") else [m for m in bench.MODES if m != "yt-dlp"]

    # When one round runs (no warm-up, no yt-dlp coverage pass)
    report = bench.run_benchmark(1, posts=bench.QUICK_POSTS, modes=modes, warmup=False, coverage=False)

    # Then there is a row per mode, every job archived the expected file, and the figures are positive
    assert {row.mode for row in report.rows} == set(modes)
    for row in report.rows:
        assert row.jobs == 1, row
        assert row.ok == 1, [j.error for j in report.jobs if j.mode == row.mode and j.post == row.post]
        assert row.extract_median > 0
        assert row.job_median >= row.extract_median
        assert row.jobs_per_min > 0
        assert row.bytes > 1_000_000 or row.post == "og-video"
    assert report.row("fast", "x") is not None
    assert report.row("naive", "x") is not None
    assert [name for name, _, _ in bench.goals(report)]
    assert all(met is not None for _, met, _ in bench.goals(report))

    # And the section it writes replaces itself, leaving the rest of the document alone
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- other: begin -->\nkeep me\n<!-- other: end -->\n")
    section = bench.render_markdown(report, ".venv/bin/python bench/extraction.py --quick")
    bench.write_doc(doc, section)
    bench.write_doc(doc, section)
    text = doc.read_text()
    assert text.count(bench.SECTION_BEGIN) == 1
    assert text.count(bench.SECTION_END) == 1
    assert "keep me" in text
    assert "| fast | x-01 |" in text
