"""End to end: a chapter through Papermill, a failing chapter, and the smoke-profile book."""

import shutil
from pathlib import Path

import nbformat
import pytest

from xaistudy import cli, runner
from xaistudy.chapters.data import DataParams
from xaistudy.store import repo_root

pytestmark = pytest.mark.slow

ROOT = repo_root()
DATA_TABLES = {
    "class_balance",
    "he_statistics",
    "grading_statistics",
    "pcle_statistics",
    "generation_speed",
}
DATA_FIGURES = {
    "he_gallery",
    "he_stain_variation",
    "grading_gallery",
    "pcle_gallery",
    "grading_properties",
}


def error_outputs(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
        or (
            out.get("output_type") == "stream"
            and out.get("name") == "stderr"
            and "Traceback" in out.get("text", "")
        )
    ]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The data chapter run once with the smoke profile, through the command line."""
    out = tmp_path_factory.mktemp("data-smoke")
    assert cli.main(["run", "data", "--profile", "smoke", "--out", str(out)]) == 0
    return out


def test_run_writes_notebook_tables_and_figures(smoke_run, capsys):
    assert (smoke_run / "data.ipynb").exists()
    assert {p.stem for p in (smoke_run / "tables").glob("*.csv")} == DATA_TABLES
    assert {p.stem for p in (smoke_run / "figures").glob("*.png")} == DATA_FIGURES
    assert error_outputs(smoke_run / "data.ipynb") == []
    assert not list(smoke_run.glob(".*.ipynb"))  # no temporary notebooks left behind


def test_injected_parameters_are_the_validated_ones(smoke_run):
    nb = nbformat.read(smoke_run / "data.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "tile_size = 64" in injected[0].source and 'profile = "smoke"' in injected[0].source
    defaults = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert "remove-cell" in defaults[0].metadata.tags  # the book shows only what ran


def test_notebook_parameters_cell_declares_every_parameter():
    import jupytext

    for chapter in runner.chapters().values():
        nb = jupytext.read(chapter.notebook, fmt="md:myst")
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, chapter.name
        names = {
            line.split("=")[0].strip()
            for line in cells[0].source.splitlines()
            if "=" in line and not line.lstrip().startswith("#")
        }
        assert names == set(chapter.params.model_fields) | {"profile", "out_dir"}, chapter.name


def test_failing_chapter_names_the_cell_and_keeps_the_last_good_run(tmp_path, monkeypatch, capsys):
    source = tmp_path / "broken.md"
    source.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\n"
        "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n# Broken\n\n"
        "```{code-cell} ipython3\n:tags: [parameters]\n\nseed = 0\ndevice = 'auto'\n"
        "tile_size = 128\ngallery_size = 256\nn_gallery = 4\nn_stats = 200\n"
        "n_stats_per_grade = 20\nn_patients = 10\nframes_per_patient = 4\n"
        "profile = 'quick'\nout_dir = '.'\n```\n\n"
        "```{code-cell} ipython3\nx = 1\n```\n\n"
        "```{code-cell} ipython3\nraise ValueError('deliberate failure')\n```\n"
    )
    broken = runner.Chapter("broken", "Broken", DataParams, source=source)
    monkeypatch.setattr(runner, "get_chapter", lambda name: broken)
    out = tmp_path / "out"
    out.mkdir()
    (out / "broken.ipynb").write_text("last good run")
    assert cli.main(["run", "broken", "--profile", "smoke", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "failed in cell" in err and "deliberate failure" in err
    assert (out / "broken.ipynb").read_text() == "last good run"
    assert (out / "broken.failed.ipynb").exists()


def test_smoke_book_builds_html_with_figures_and_no_errors(smoke_run, tmp_path):
    root = tmp_path / "bookroot"
    root.mkdir()
    shutil.copy(ROOT / "_config.yml", root)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("chapters"))
    (root / "data").mkdir()
    shutil.copy(ROOT / "data" / "README.md", root / "data")
    for name in runner.chapters():
        if name == "data":
            shutil.copytree(smoke_run, root / "book" / "chapters" / "data")
        else:
            runner.run_chapter(name, "smoke", out=root / "book" / "chapters" / name)
    index = runner.build_html(root)
    assert index.exists()
    html = (root / "_build" / "html" / "book" / "chapters" / "data" / "data.html").read_text()
    assert html.count("<img") >= len(DATA_FIGURES)
    assert "output traceback" not in html and "Traceback (most recent" not in html
    images = list((root / "_build" / "html" / "_images").glob("*.png"))
    assert len(images) >= len(DATA_FIGURES)
    assert "book/intro.html" in index.read_text()  # the index redirects to the introduction
    intro = (root / "_build" / "html" / "book" / "intro.html").read_text()
    assert "chapters/data/data.html" in intro  # the chapter is in the navigation
