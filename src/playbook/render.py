"""Rendering an organisation's season report: papermill runs, nbconvert writes HTML.

Every numbered notebook in ``notebooks/`` (``00_data_audit.ipynb``, ``10_…``) runs in
order with the organisation, season and output folder injected as parameters. The
executed notebooks, an HTML page per notebook (no code, no parameters cell, no
warnings) and an ``index.html`` are written to a temporary folder beside the target and
moved into ``reports/<org>/<season>/`` only when everything succeeded, so a reader never
sees half a report. A failed run keeps its partly executed notebooks in
``reports/<org>/<season>.failed/`` for debugging.

A notebook that stops with :class:`playbook.errors.NotEnoughData` (sound data, too thin
for that analysis: e.g. nobody has come back yet, so lifetime value cannot be modelled)
does not fail the report: its page says in plain words why it is not available.
"""

from __future__ import annotations

import csv
import html
import multiprocessing
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor, TagRemovePreprocessor
from traitlets.config import Config

from playbook.config import OrgConfig, load_org
from playbook.errors import NotEnoughData, PlaybookError
from playbook.schema import OrderLines as OL
from playbook.seasons import check_season_has_data, check_season_label, default_season

if TYPE_CHECKING:
    import pandas as pd

NOTEBOOK_PATTERN = re.compile(r"^\d\d_.+\.ipynb$")
HIDDEN_TAGS = {"injected-parameters", "parameters", "remove-cell"}


class RenderError(PlaybookError):
    """A notebook failed while rendering; says which notebook, which cell and why."""

    def __init__(self, notebook: str, cell: int | None, error: str, kept: Path | None):
        self.notebook = notebook
        self.cell = cell
        self.error = error
        self.kept = kept
        where = f"notebook '{notebook}'" + (f", cell {cell}" if cell is not None else "")
        msg = f"Rendering stopped in {where}: {error}"
        if kept:
            msg += f"\nThe partly run notebook is kept in '{kept}' for debugging."
        msg += "\nWhat to do: open that notebook, read the error under the failing cell, fix the data or org.yaml, and render again."
        super().__init__(msg)


@dataclass
class RenderResult:
    """What a render produced."""

    org: str
    season: str
    output_dir: Path
    notebooks: list[str] = field(default_factory=list)
    seconds: float = 0.0
    not_available: dict[str, str] = field(default_factory=dict)
    """Notebooks the data cannot support yet (:class:`NotEnoughData`), with the reason."""
    kept: list[str] = field(default_factory=list)
    """With ``only``: notebooks whose pages were kept from the earlier report."""


def default_notebooks_dir() -> Path:
    """The kit's ``notebooks/`` folder (next to ``src/`` in a checkout), else ``./notebooks``."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    return here if here.is_dir() else Path.cwd() / "notebooks"


def list_notebooks(notebooks_dir: Path) -> list[Path]:
    """Numbered notebooks in run order."""
    return sorted(p for p in notebooks_dir.iterdir() if NOTEBOOK_PATTERN.match(p.name))


def sales_times(cfg: OrgConfig) -> pd.Series:
    """Purchase times of the canonical sales table (intake must have run)."""
    import pandas as pd

    path = cfg.canonical_dir / "order_lines.parquet"
    if not path.exists():
        raise PlaybookError(
            f"No canonical tables for '{cfg.slug}' (no '{path}').\n"
            f"What to do: run 'playbook intake {cfg.org_dir}' first."
        )
    return pd.read_parquet(path, columns=[OL.purchase_time])[OL.purchase_time]


def resolve_season(org_dir: str | Path, season: str | None) -> str:
    """The season to render: as given (checked), or the latest complete season in the data.

    Raises
    ------
    PlaybookError
        The label is not written like ``2025-26``, or the data have no sales in that
        season (the message lists the seasons they cover), or intake has not run.
    """
    cfg = load_org(org_dir)
    if season:
        try:
            times = sales_times(cfg)
        except PlaybookError:
            check_season_label(season, cfg.season_start_month)  # a bad label is said first
            raise
        return check_season_has_data(season, times, cfg.season_start_month)
    return default_season(sales_times(cfg), cfg.season_start_month)


def stale_inputs(org_dir: str | Path) -> list[str]:
    """Files changed after the last intake, each as a plain sentence (empty when fresh).

    ``org.yaml`` and every export it reads are compared with ``canonical/intake.json``,
    written at the end of each successful intake. A newer file means the canonical
    tables do not show it yet (the last intake failed, or was not run).
    """
    import datetime as dt

    from playbook import presets

    cfg = load_org(org_dir)
    stamp = cfg.canonical_dir / "intake.json"
    if not stamp.exists():
        return []  # no intake at all: rendering stops with its own message
    done = stamp.stat().st_mtime
    files = [cfg.org_dir / "org.yaml", *presets.source_files(cfg)]
    when = dt.datetime.fromtimestamp(done).strftime("%d %b %Y %H:%M")
    folder = str(cfg.org_dir)
    folder = f'"{folder}"' if any(c.isspace() for c in folder) else folder
    out = []
    for f in dict.fromkeys(files):
        if f.exists() and f.stat().st_mtime > done:
            rel = f.relative_to(cfg.org_dir) if f.is_relative_to(cfg.org_dir) else f
            changed = dt.datetime.fromtimestamp(f.stat().st_mtime).strftime("%d %b %Y %H:%M")
            out.append(
                f"{rel.as_posix()} changed after the last intake (file saved {changed}, "
                f"intake finished {when}); run `playbook intake {folder}` first."
            )
    return out


class _DropStderr(Preprocessor):
    """Remove stderr streams (warnings, progress bars) from the HTML."""

    def preprocess_cell(self, cell, resources, index):
        if cell.get("cell_type") == "code":
            cell.outputs = [
                o
                for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
        return cell, resources


def notebook_to_html(nb_path: Path, html_path: Path) -> str:
    """Write a notebook as HTML with code, prompts and the parameters cells removed.

    Returns
    -------
    str
        The notebook's title (its first markdown heading).
    """
    nb = nbformat.read(nb_path, as_version=4)
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags=HIDDEN_TAGS, enabled=True), enabled=True
    )
    exporter.register_preprocessor(_DropStderr(enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    title = notebook_title(nb) or nb_path.stem
    body = re.sub(
        r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", body, count=1, flags=re.S
    )
    html_path.write_text(body, encoding="utf-8")
    return title


def notebook_title(nb: nbformat.NotebookNode) -> str | None:
    """First markdown heading of a notebook."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.M)
            if m:
                return m.group(1).strip()
    return None


def render_season(
    org_dir: str | Path,
    season: str | None = None,
    *,
    reports_root: str | Path = "reports",
    notebooks_dir: str | Path | None = None,
    only: Sequence[str] | None = None,
    kernel_name: str = "python3",
    parameters: dict | None = None,
    on_notebook: Callable[[str], None] | None = None,
    jobs: int = 2,
) -> RenderResult:
    """Render every notebook for one organisation and season.

    Parameters
    ----------
    org_dir : str or pathlib.Path
        Organisation folder (intake must have run).
    season : str, optional
        Season label such as ``2025-26``; default the latest complete season.
    reports_root : str or pathlib.Path
        Root of the reports tree; output goes to ``<root>/<org>/<season>/``.
    notebooks_dir : str or pathlib.Path, optional
        Where the numbered notebooks are (default: the kit's ``notebooks/``).
    only : sequence of str, optional
        Render only notebooks whose names start with one of these prefixes (``["00"]``).
        An existing report of that season keeps its other pages and files; only the
        chosen pages (and the exports they write) are replaced, and ``index.html``
        lists them all.
    kernel_name : str
        Jupyter kernel to run the notebooks with.
    parameters : dict, optional
        Extra papermill parameters for every notebook.
    on_notebook : callable, optional
        Called with each notebook name before it runs (progress reporting).
    jobs : int
        Notebooks run this many at a time (each reads the canonical tables itself, so
        they are independent); 1 runs them one after another.

    Returns
    -------
    RenderResult

    Raises
    ------
    RenderError
        A notebook failed: names the notebook, the cell and the error.
    """
    t0 = time.perf_counter()
    cfg = load_org(org_dir)
    season = resolve_season(cfg.org_dir, season)
    nb_dir = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    notebooks = list_notebooks(nb_dir)
    if only:
        chosen = [p for p in notebooks if any(p.name.startswith(o) for o in only)]
        if notebooks and not chosen:
            raise PlaybookError(
                f"No notebook in '{nb_dir}' starts with {', '.join(only)}.\n"
                f"What to do: use the first digits of one of: "
                f"{', '.join(p.name for p in notebooks)}."
            )
        notebooks = chosen
    if not notebooks:
        raise PlaybookError(f"No numbered notebooks found in '{nb_dir}'.")
    root = Path(reports_root).resolve() / cfg.slug
    root.mkdir(parents=True, exist_ok=True)
    final = root / season
    tmp = Path(tempfile.mkdtemp(prefix=f".{season}.tmp-", dir=root))
    tmp.chmod(0o755)  # readable like any report folder once moved into place
    params = {"org_dir": str(cfg.org_dir), "season": season, "output_dir": str(tmp)}
    params.update(parameters or {})
    kept: list[tuple[str, str, str]] = []
    try:
        if only and final.is_dir():  # the other pages of the season's report stay
            kept = _keep_other_pages(final, tmp, {nb.name for nb in notebooks})
        runs = [(str(nb), str(tmp / nb.name), params, str(nb_dir), kernel_name) for nb in notebooks]
        outcomes: list[dict] = []
        if jobs <= 1 or len(runs) == 1:
            for run in runs:
                if on_notebook:
                    on_notebook(Path(run[0]).name)
                outcomes.append(_run_notebook(*run))
                if not outcomes[-1]["ok"]:
                    break
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                futures = []
                for run in runs:
                    if on_notebook:
                        on_notebook(Path(run[0]).name)
                    futures.append(pool.submit(_run_notebook, *run))
                outcomes = [f.result() for f in futures]
        failures = [o for o in outcomes if not o["ok"]]
        if failures:
            first = failures[0]
            failed = root / f"{season}.failed"
            shutil.rmtree(failed, ignore_errors=True)
            tmp.rename(failed)
            raise RenderError(first["name"], first["cell"], first["error"], failed / first["name"])
        pages = [(o["name"], o["html"], o["title"]) for o in outcomes]
        write_index(tmp, cfg.name, season, sorted(kept + pages))
        _replace(tmp, final)
    except BaseException:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    thin = {o["name"]: o["not_available"] for o in outcomes if "not_available" in o}
    return RenderResult(
        cfg.slug,
        season,
        final,
        [p[0] for p in pages],
        time.perf_counter() - t0,
        thin,
        kept=[p[0] for p in kept],
    )


_INDEX_PAGE = re.compile(
    r'<li><a href="(?P<html>[^"]*)">(?P<title>.*?)</a> '
    r'<small>\(<a href="(?P<nb>[^"]*)">notebook</a>\)</small></li>'
)


def index_pages(folder: Path) -> list[tuple[str, str, str]]:
    """The pages a season folder's ``index.html`` lists: (notebook, html, title) each.

    Pages whose files are missing are left out. A folder without a readable index gives
    its executed numbered notebooks, titled by their first heading.
    """
    index = folder / "index.html"
    text = index.read_text(encoding="utf-8") if index.exists() else ""
    pages = [
        (html.unescape(m["nb"]), html.unescape(m["html"]), html.unescape(m["title"]))
        for m in _INDEX_PAGE.finditer(text)
    ]
    if not pages:
        for nb in list_notebooks(folder):
            page = nb.with_suffix(".html").name
            title = notebook_title(nbformat.read(nb, as_version=4)) or nb.stem
            pages.append((nb.name, page, title))
    return [p for p in pages if (folder / p[0]).exists() and (folder / p[1]).exists()]


def _keep_other_pages(final: Path, tmp: Path, rerun: set[str]) -> list[tuple[str, str, str]]:
    """Copy an existing season report into ``tmp``, less the pages about to be rerun.

    Returns the pages kept, as listed in the old ``index.html``. Exports the rerun
    notebooks write again are overwritten; every other file stays as it was.
    """
    kept = [p for p in index_pages(final) if p[0] not in rerun]
    redone = set(rerun) | {Path(n).with_suffix(".html").name for n in rerun}
    for item in final.iterdir():
        if item.name in redone or item.name == "index.html":
            continue
        if item.is_dir():
            shutil.copytree(item, tmp / item.name)
        else:
            shutil.copy2(item, tmp / item.name)
    return kept


def _run_notebook(nb: str, out_nb: str, params: dict, cwd: str, kernel_name: str) -> dict:
    """Execute one notebook and write its HTML; failures come back as data, not exceptions."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    name = Path(nb).name
    sockets = tempfile.mkdtemp(prefix="pbk-") if os.name == "posix" else None
    try:
        pm.execute_notebook(
            nb,
            out_nb,
            parameters=params,
            cwd=cwd,
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=False,
            config=_kernel_config(sockets),
            # jupyter_client interrupts a kernel before shutting it down, which the
            # kernel may log as an error; a failing cell still comes back as an error.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except PapermillExecutionError as exc:
        if exc.ename == NotEnoughData.__name__:
            return _not_available(Path(nb), Path(out_nb), exc.evalue)
        return {
            "ok": False,
            "name": name,
            "cell": exc.exec_count,
            "error": f"{exc.ename}: {exc.evalue}",
        }
    finally:
        if sockets:
            shutil.rmtree(sockets, ignore_errors=True)
    html_name = Path(nb).with_suffix(".html").name
    title = notebook_to_html(Path(out_nb), Path(out_nb).with_name(html_name))
    return {"ok": True, "name": name, "html": html_name, "title": title}


def _kernel_config(sockets: str | None) -> Config:
    """How the kernel that runs one notebook is reached.

    Where the system has them (Linux, macOS), the kernel talks to papermill over local
    socket files in a private folder (``sockets``) rather than over TCP ports, so no
    other program on the machine can listen in and the kernel has nothing to warn about.
    On Windows the usual TCP ports stay. The folder is short-named under the system's
    temporary folder: socket paths are limited to about 100 characters.
    """
    if sockets is None:
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "k")}})


def _not_available(nb: Path, out_nb: Path, reason: str) -> dict:
    """A short page in place of a notebook whose analysis the data cannot support yet."""
    title = notebook_title(nbformat.read(nb, as_version=4)) or nb.stem
    first, _, rest = str(reason).partition("\nWhat to do:")
    advice = f"<p><b>What to do:</b> {html.escape(rest.strip())}</p>" if rest.strip() else ""
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_INDEX_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='sub'>Not available for this season</p>"
        "<div class='headline'><p>The data are sound, but there is not enough of them yet "
        f"for this part of the report:</p><p>{html.escape(first.strip())}</p>{advice}</div>"
        "</body></html>\n"
    )
    html_name = nb.with_suffix(".html").name
    out_nb.with_name(html_name).write_text(page, encoding="utf-8")
    return {
        "ok": True,
        "name": nb.name,
        "html": html_name,
        "title": f"{title} (not available: not enough data yet)",
        "not_available": first.strip(),
    }


def _replace(tmp: Path, final: Path) -> None:
    """Move the finished folder into place; an older report is removed only afterwards."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    failed = final.with_name(f"{final.name}.failed")
    shutil.rmtree(failed, ignore_errors=True)


_INDEX_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:900px;margin:2rem auto;padding:0 1rem;color:#222;font-size:18px;line-height:1.5}
h1{font-size:2rem;margin-bottom:.2rem}.sub{color:#555;margin-top:0}
ol{padding-left:1.2rem}li{margin:.4rem 0}a{color:#0072B2}
.headline{background:#f4f7fb;border-left:6px solid #0072B2;padding:.8rem 1.2rem;margin:1.2rem 0}
table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}
"""


def write_index(
    folder: Path, org_name: str, season: str, pages: list[tuple[str, str, str]]
) -> Path:
    """Write ``index.html`` linking every page and export of a rendered season.

    A notebook may leave ``headline.html`` (a fragment) in the folder; it is shown at
    the top of the index.
    """
    items = "\n".join(
        f'<li><a href="{html.escape(h)}">{html.escape(t)}</a> '
        f'<small>(<a href="{html.escape(n)}">notebook</a>)</small></li>'
        for n, h, t in pages
    )
    csvs = sorted(folder.glob("*.csv"))
    per_person = [p.name for p in [*csvs, *sorted(folder.glob("*.parquet"))] if _names_people(p)]
    exports = [p.name for p in csvs if p.name not in per_person] + sorted(
        p.name for p in folder.glob("*.html") if p.name.startswith(("persona", "cards"))
    )

    def links(names: list[str]) -> str:
        return "".join(f'<li><a href="{html.escape(e)}">{html.escape(e)}</a></li>' for e in names)

    export_html = f"<h2>Exports</h2><ul>{links(exports)}</ul>" if exports else ""
    if per_person:
        export_html += (
            "<h2>Customer lists for the box office</h2>"
            "<p>One row per customer (the action list carries the box office's own "
            "customer numbers, so it can be loaded into the ticketing system). Keep them "
            "inside the organisation: remove them from this folder before it is shared "
            "(a board pack needs only the pages and exports above).</p>"
            f"<ul>{links(per_person)}</ul>"
        )
    headline_path = folder / "headline.html"
    headline = (
        f'<div class="headline">{headline_path.read_text(encoding="utf-8")}</div>'
        if headline_path.exists()
        else ""
    )
    doc = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(org_name)} — {html.escape(season)}</title><style>{_INDEX_CSS}</style></head><body>"
        f"<h1>{html.escape(org_name)}</h1><p class='sub'>Audience report, season {html.escape(season)}</p>"
        f"{headline}<h2>Report</h2><ol>{items}</ol>{export_html}</body></html>\n"
    )
    path = folder / "index.html"
    path.write_text(doc, encoding="utf-8")
    return path


def _names_people(path: Path) -> bool:
    """Whether an exported CSV or Parquet file has a row per customer (a customer column)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        header = pq.read_schema(path).names
    else:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            header = next(csv.reader([fh.readline()]), [])
    return any(c.strip() in ("customer_id", "source_customer_id") for c in header)


def write_reports_index(reports_root: str | Path) -> Path:
    """Write ``reports/index.html`` listing every organisation and season rendered."""
    root = Path(reports_root)
    rows = []
    for org in sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "bench"
    ):
        for season in sorted(
            (
                s
                for s in org.iterdir()
                if s.is_dir() and (s / "index.html").exists() and not s.name.startswith(".")
            ),
            reverse=True,
        ):
            rows.append(
                f"<tr><td>{html.escape(org.name)}</td><td><a href='{html.escape(org.name)}/{html.escape(season.name)}/index.html'>"
                f"{html.escape(season.name)}</a></td></tr>"
            )
    doc = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Audience reports</title>"
        f"<style>{_INDEX_CSS}</style></head><body><h1>Audience reports</h1>"
        "<table><tr><th>Organisation</th><th>Season</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )
    path = root / "index.html"
    path.write_text(doc, encoding="utf-8")
    return path
