"""The paper notebooks: each .ipynb matches its jupytext .py, and each runs at SIZE=ci.

The .py (percent format) is the source of truth; ``jupytext --sync notebooks/*.py`` (or
``jupytext --to ipynb``) rewrites the .ipynb after an edit. Executing a notebook trains
small models for a minute or more, so the executions are marked ``large``.
"""

import pathlib

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cell_sources(notebook):
    """(cell type, source) of every cell: what must agree between the .py and the .ipynb."""
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def execute(path, tmp_path, monkeypatch, size):
    """Runs the notebook at ``path`` in a fresh kernel in ``tmp_path`` at ``size``."""
    monkeypatch.setenv("RC_KERAS_NOTEBOOK_SIZE", size)
    monkeypatch.setenv("RC_KERAS_NOTEBOOK_FIGURES", str(tmp_path / "figures"))
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return notebook


def test_there_is_a_notebook_per_experiment():
    names = {p.stem for p in SOURCES}
    assert {"01_sequence_spotting", "02_two_sequence", "03_deployment", "04_temporal_mnist",
            "05_keyword_spotting"} <= names


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_is_in_sync_with_py(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run `jupytext --to ipynb {source.name}`"
    assert cell_sources(jupytext.read(paired)) == cell_sources(jupytext.read(source)), (
        f"{paired.name} is out of step with {source.name}: run `jupytext --sync {source.name}`")


def test_sync_check_sees_an_edited_cell(tmp_path):
    source = NOTEBOOK_DIR / "01_sequence_spotting.py"
    edited = tmp_path / source.name
    edited.write_text(source.read_text().replace("THRESHOLD, BETA", "THRESHOLD,  BETA", 1))
    assert cell_sources(jupytext.read(edited)) != cell_sources(
        jupytext.read(source.with_suffix(".ipynb")))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_reads_size_from_a_tagged_parameters_cell(source):
    cells = jupytext.read(source).cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert 'SIZE = os.environ.get("RC_KERAS_NOTEBOOK_SIZE"' in tagged[0].source


def test_unknown_size_is_an_error_naming_it(tmp_path, monkeypatch):
    with pytest.raises(CellExecutionError, match="SIZE must be one of"):
        execute(NOTEBOOK_DIR / "01_sequence_spotting.ipynb", tmp_path, monkeypatch, "medium")


@pytest.mark.large
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs_at_ci_size(source, tmp_path, monkeypatch):
    execute(source.with_suffix(".ipynb"), tmp_path, monkeypatch, "ci")
    figures = sorted((tmp_path / "figures").glob("*.png"))
    assert figures, "the notebook saved no figure"
    for figure in figures:
        assert figure.name.endswith("_ci.png")
        assert figure.read_bytes()[:8] == PNG_SIGNATURE
    assert sorted((tmp_path / "figures").glob("*_ci.json")), "no numbers saved with the figures"
