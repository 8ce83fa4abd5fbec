"""Writes each Colab notebook in this folder from its source in colab/src/.

A source is a Python file in the jupytext "percent" format: ``# %%`` starts a
code cell, ``# %% [markdown]`` a markdown cell whose lines are ``#``-commented,
and ``# %% tags=["parameters"]`` gives a cell metadata (JSON values). In code
cells, IPython magics are commented (``# %matplotlib inline``, also indented)
so that the source stays lint-clean Python, and a line whose comment starts
with ``# source only`` (the ``pass`` under an indented magic) is left out of
the notebook. Lines before the first cell are a header for readers of the
source. Notebooks are written without outputs. Edit a source, then run

    python colab/build_notebooks.py           # rewrite colab/*.ipynb
    python colab/build_notebooks.py --check   # exit 1 if a notebook is stale

``tests/test_notebooks.py`` checks that every notebook matches its source and
executes every notebook in quick mode.
"""

import argparse
import json
import pathlib
import re
import sys

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = HERE / "src"
NOTEBOOKS = tuple(f"{path.stem}.ipynb" for path in sorted(SOURCES.glob("*.py")))

_CELL = re.compile(r"^# %%(?: \[(?P<markdown>markdown)\])?(?P<metadata> .*)?$")
_MAGIC = re.compile(r"^(?P<indent>\s*)# (?P<magic>%%?[A-Za-z].*)$")
_SOURCE_ONLY = re.compile(r"#\s*source only\b")


def _metadata(text, where):
    """``key=<json> key=<json> ...`` of a cell marker, as a dict."""
    metadata, decoder, text = {}, json.JSONDecoder(), text.strip()
    while text:
        key, sep, rest = text.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{where}: expected key=<json> in the cell marker, got {text!r}")
        metadata[key], end = decoder.raw_decode(rest)
        text = rest[end:].strip()
    return metadata


def _cell_source(kind, lines, where):
    if kind == "markdown":
        bad = [line for line in lines if line and not line.startswith("#")]
        if bad:
            raise ValueError(f"{where}: markdown lines must start with '#', got {bad[0]!r}")
        lines = [line[2:] if line.startswith("# ") else line[1:] for line in lines]
    else:
        lines = [_MAGIC.sub(r"\g<indent>\g<magic>", line) for line in lines if not _SOURCE_ONLY.search(line)]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def read_source(path):
    """The cells of a percent-format source: a list of (kind, source, metadata)."""
    cells, current = [], None
    for number, line in enumerate(pathlib.Path(path).read_text(encoding="utf-8").splitlines(), 1):
        match = _CELL.match(line)
        if match:
            kind = "markdown" if match["markdown"] else "code"
            current = (kind, [], _metadata(match["metadata"] or "", f"{path}:{number}"), f"{path}:{number}")
            cells.append(current)
        elif current is not None:
            current[1].append(line)
    return [(kind, _cell_source(kind, lines, where), metadata) for kind, lines, metadata, where in cells]


def build(name):
    """The notebook ``name`` (e.g. ``"01_vae_mnist.ipynb"``) from its source, without outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "colab": {"name": name, "provenance": []},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    stem = name.split("_")[0]
    for i, (kind, source, metadata) in enumerate(read_source(SOURCES / name.replace(".ipynb", ".py"))):
        new_cell = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = new_cell(source, metadata=metadata)
        cell.id = f"nb{stem}-{i:02d}"  # deterministic, so that a rebuild changes nothing
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the notebooks are up to date")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        text = nbformat.writes(build(name)) + "\n"
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run python colab/build_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
