"""Chapters are modules of ``xaistudy.chapters``; the book, README and CLI list the same ones,
and a moved chapter's notebook is a story of calls (small cells, at most 150 lines of code)."""

import re

import jupytext
import pytest
import yaml

from xaistudy.app import cli
from xaistudy.chapters import Chapter, PaperRecord, Setting, chapter_modules, discover
from xaistudy.core.params import build_params
from xaistudy.core.store import repo_root

ROOT = repo_root()
MAX_CODE_LINES = 150
MAX_HIDDEN_CELL_LINES = 10


def code_lines(source: str) -> list[str]:
    """Lines that count as code: not blank, not a comment, not a cell option."""
    return [
        line for line in source.splitlines()
        if line.strip() and not line.strip().startswith("#") and not line.startswith(":tags")
    ]


def moved(chapter: Chapter) -> bool:
    """A chapter that follows the module pattern (repeats over seeds or is the synthesis)."""
    return chapter.has_seeds or chapter.part == "Synthesis"


def test_every_module_defines_its_chapter():
    chapters = discover()
    assert list(chapters) and set(chapters) == set(chapter_modules())
    for name, chapter in chapters.items():
        assert chapter.name == name and chapter.notebook.exists(), name


def test_toc_lists_the_discovered_chapters_in_book_order():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    listed = [f.split("/")[-1] for f in files if f.startswith("book/chapters/")]
    assert listed == list(discover())
    captions = {c["file"].split("/")[-1]: part["caption"] for part in toc["parts"]
                for c in part["chapters"]}
    for name, chapter in discover().items():
        assert captions[name] == chapter.part, name


def test_readme_table_names_every_chapter():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("| chapter | paper | content |", 1)[1].split("\n\n", 1)[0]
    table = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    assert table == set(discover())


def test_cli_list_prints_every_chapter(capsys):
    assert cli.main(["list"]) == 0
    printed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == list(discover())


@pytest.mark.parametrize("name", [n for n, c in discover().items() if moved(c)])
def test_moved_notebook_is_a_story(name):
    nb = jupytext.read(discover()[name].notebook, fmt="md:myst")
    cells = [c for c in nb.cells if c.cell_type == "code"]
    total = sum(len(code_lines(c.source)) for c in cells)
    assert total <= MAX_CODE_LINES, f"{name}: {total} lines of code"
    for cell in cells:
        tags = cell.metadata.get("tags", [])
        if any(t.startswith(("hide", "remove")) for t in tags) and "parameters" not in tags:
            assert len(code_lines(cell.source)) <= MAX_HIDDEN_CELL_LINES, (name, cell.source[:80])
    text = "\n".join(c.source for c in cells)
    assert "params_key" not in text and "Store(" not in text, f"{name}: cache keys in notebook"


@pytest.mark.parametrize("name", list(discover()))
def test_parameters_cell_holds_the_quick_defaults(name):
    chapter = discover()[name]
    nb = jupytext.read(chapter.notebook, fmt="md:myst")
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    values: dict = {}
    exec(cell.source, {}, values)  # the parameters cell is plain assignments
    assert values.pop("profile") == "quick" and values.pop("out_dir") == "."
    assert values == build_params(chapter.params, "quick").model_dump(mode="json")


def test_code_line_count_by_hand():
    source = ":tags: [x]\n\nimport a\n# comment\n  \nb = a.c()\n"
    assert code_lines(source) == ["import a", "b = a.c()"]


def test_paper_record_names_a_missing_number():
    record = PaperRecord("k", "Someone 2024", "f.txt", (Setting("epochs", "20", "epochs"),),
                         {"table1.x": "0.5"})
    assert record.number("table1.x") == "0.5"
    with pytest.raises(KeyError, match="Someone 2024 has no number 'table2.y'"):
        record.number("table2.y")


def test_moved_chapters_default_to_at_least_three_seeds():
    for name, chapter in discover().items():
        if chapter.has_seeds:
            quick = chapter.params.profile_defaults("quick").get(
                "seeds", chapter.params.model_fields["seeds"].get_default(call_default_factory=True)
            )
            assert len(quick) >= 3, name


def test_every_chapter_has_the_one_interface():
    """run(params), claims(result), tables(result), figures(result): one positional argument,
    anything else optional."""
    import inspect

    from xaistudy.chapters import discover

    for name, chapter in discover().items():
        for what in ("run", "claims", "tables", "figures"):
            fn = getattr(chapter, what)
            params = list(inspect.signature(fn).parameters.values())
            variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            required = [p for p in params if p.default is p.empty and p.kind not in variadic]
            assert len(required) == 1, f"{name}.{what}{inspect.signature(fn)}"


def test_the_run_record_names_the_device_used_not_auto(tmp_path):
    import torch

    from xaistudy.chapters import report
    from xaistudy.chapters.data import DataParams

    threads = torch.get_num_threads()
    try:
        record = report.start(build_params(DataParams, "smoke"), tmp_path, "smoke").record
    finally:
        torch.set_num_threads(threads)
    from xaistudy.models.classifiers import resolve_device

    assert record["device"] == f"{resolve_device('auto')} (asked: auto)"
    assert record["device"].split()[0] in ("cpu", "cuda", "mps")
    assert record["profile"] == "smoke" and record["threads"] == 2
