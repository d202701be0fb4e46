"""Build a notebook from a compact text form (used to author the kit's notebooks).

Usage: python tools/nbbuild.py SOURCE.py OUT.ipynb

SOURCE holds cells separated by lines '# %% [markdown]', '# %%' or '# %% parameters'
(the papermill parameters cell). Markdown cells are written as '# ' comment lines.
Outputs are empty, so the notebook is committed stripped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def build(src: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    cells = []
    kind, tags, buf = None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(buf).strip("\n")
        if kind == "markdown":
            text = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#")
                for line in text.splitlines()
            )
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(text)
            if tags:
                cell.metadata["tags"] = list(tags)
            cells.append(cell)

    for line in src.splitlines():
        if line.startswith("# %%"):
            flush()
            rest = line[4:].strip()
            buf = []
            if rest == "[markdown]":
                kind, tags = "markdown", []
            else:
                kind, tags = "code", (rest.split() if rest else [])
            continue
        buf.append(line)
    flush()
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i:02d}"
    nb.cells = cells
    return nb


if __name__ == "__main__":
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    nbformat.write(build(src.read_text(encoding="utf-8")), out)
