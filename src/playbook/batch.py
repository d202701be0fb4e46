"""Season-end batch: intake and render many organisations, in parallel.

Each organisation's exports are read once (intake, one process per organisation); then
its seasons render, each in its own process (or on a Dask cluster with ``scheduler=``).
One organisation failing never stops the others: its result records the notebook, cell
and error, its partly executed notebook stays in ``reports/<org>/<season>.failed/``, and
the summary lists everything, including folders that were skipped and why. Two
organisations with the same slug (the name of their reports folder) are refused before
anything runs. Executors are a small registry keyed by name.
"""

from __future__ import annotations

import glob
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from playbook.errors import PlaybookError


@dataclass(frozen=True)
class Job:
    """One organisation and season to render (or, with ``render=False``, to intake)."""

    org_dir: str
    season: str | None
    reports_root: str
    notebooks_dir: str | None = None
    intake: bool = True
    only: tuple[str, ...] | None = None
    slug: str = ""
    """The organisation's slug (its reports folder), for the summary."""
    folder: str = ""
    """The folder as it was given, for the summary."""
    render: bool = True
    check_fresh: bool = False
    """Fail instead of rendering when an export changed after the last intake."""


@dataclass
class JobResult:
    """What happened to one job (or one skipped folder)."""

    org: str
    season: str
    status: str  # "ok", "failed", "skipped" or "not an organisation"
    seconds: float
    notebook: str = ""
    cell: str = ""
    error: str = ""
    report: str = ""
    folder: str = ""


def run_job(job: Job) -> JobResult:
    """Intake (optionally) and render one organisation; never raises."""
    from playbook.intake import run_intake
    from playbook.render import RenderError, render_season, resolve_season, stale_inputs

    t0 = time.perf_counter()
    org = job.slug or Path(job.org_dir).name
    folder = job.folder or job.org_dir
    season = job.season or ""

    def failed(notebook: str, error: str, cell: str = "", report: str = "") -> JobResult:
        return JobResult(
            org, season, "failed", time.perf_counter() - t0, notebook, cell, error, report, folder
        )

    try:
        if job.intake:
            run_intake(job.org_dir)
        if not job.render:
            return JobResult(org, season, "ok", time.perf_counter() - t0, "(intake)", folder=folder)
        if job.check_fresh:
            stale = stale_inputs(job.org_dir)
            if stale:
                return failed(
                    "(stale tables)",
                    "not rendered: " + " ".join(stale) + " Or run the batch without --no-intake.",
                )
        try:  # the season: its label and whether the data have sales in it
            season = resolve_season(job.org_dir, job.season)
        except PlaybookError as exc:
            where = "(season)" if str(exc).startswith("Season") else "(intake / settings)"
            return failed(where, _first_line(str(exc)))
        result = render_season(
            job.org_dir,
            season,
            reports_root=job.reports_root,
            notebooks_dir=job.notebooks_dir,
            only=job.only,
            jobs=1,  # organisations already run in parallel
        )
        thin = result.not_available  # rendered with a note page in their place
        return JobResult(
            result.org,
            result.season,
            "ok",
            time.perf_counter() - t0,
            notebook=", ".join(thin),
            error="; ".join(f"not enough data yet: {_first_line(r)}" for r in thin.values()),
            report=str(result.output_dir / "index.html"),
            folder=folder,
        )
    except RenderError as exc:
        return failed(
            exc.notebook,
            _first_line(exc.error),
            cell=str(exc.cell if exc.cell is not None else ""),
            report=str(exc.kept or ""),
        )
    except PlaybookError as exc:
        return failed("(intake / settings)", _first_line(str(exc)))
    except Exception as exc:  # a bug must not stop the other organisations
        return failed("(kit)", traceback.format_exception_only(type(exc), exc)[-1].strip())


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[:2])


# --- which folders are organisations ----------------------------------------------------------
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class OrgFolder:
    """A folder given to the batch, and why it is skipped (empty when it is used)."""

    folder: str  # as given
    path: Path
    explicit: bool  # named on its own, not found by a pattern the batch expanded
    skip: str = ""
    near_miss: bool = False  # it looks like an organisation whose org.yaml is misnamed


def skip_reason(path: Path) -> tuple[str, bool]:
    """Why ``path`` is not an organisation folder ("" when it is), and whether it nearly is.

    Examples of reasons: ``"folder not found"``, ``"not a folder"``,
    ``"no org.yaml (found org.yml: rename it to org.yaml)"``.
    """
    if not path.exists():
        return "folder not found", False
    if not path.is_dir():
        return "not a folder", False
    if (path / "org.yaml").is_file():
        return "", False
    near = sorted(
        p.name
        for p in path.iterdir()
        if p.is_file()
        and p.name.lower().startswith("org")
        and (".yml" in p.name.lower() or ".yaml" in p.name.lower())
    )
    if near:
        return f"no org.yaml (found {', '.join(near)}: rename it to org.yaml)", True
    return "no org.yaml (not an organisation folder)", False


def find_org_folders(org_dirs: Iterable[str | Path]) -> list[OrgFolder]:
    """The folders given, each checked; patterns like ``data/*/`` are expanded here.

    A folder named on its own that is not an organisation is a mistake to report; a
    folder a pattern matched is only listed (unless its org.yaml is merely misnamed).
    The same folder given twice is used once.
    """
    out: list[OrgFolder] = []
    seen: set[Path] = set()
    for given in org_dirs:
        text = str(given)
        if _GLOB_CHARS & set(text) and not Path(text).exists():
            matches = sorted(glob.glob(text))
            if not matches:
                out.append(OrgFolder(text, Path(text), True, "nothing matches this pattern"))
            items = [(m, False) for m in matches]
        else:
            items = [(text, True)]
        for folder, explicit in items:
            path = Path(folder).resolve()
            if path in seen:
                continue
            seen.add(path)
            reason, near = skip_reason(path)
            if reason and not explicit and not path.is_dir():
                continue  # a pattern like data/* also matches data/README.md
            out.append(OrgFolder(folder, path, explicit, reason, near))
    return out


def org_slug(path: Path) -> str:
    """The slug an organisation's reports go under (as :func:`playbook.config.load_org`
    gives it), or, when its settings cannot be loaded, the one its org.yaml asks for."""
    from playbook.config import load_org

    try:
        return load_org(path).slug
    except PlaybookError:
        import yaml

        try:
            raw = yaml.safe_load((path / "org.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            raw = None
        slug = raw.get("slug") if isinstance(raw, dict) else None
        return str(slug or path.name)


def check_unique_slugs(folders: Sequence[OrgFolder]) -> dict[Path, str]:
    """Each organisation folder's slug; refuses two folders with the same slug.

    Raises
    ------
    PlaybookError
        Names the folders that share a slug: their reports would overwrite each other.
    """
    slugs = {f.path: org_slug(f.path) for f in folders}
    by_slug: dict[str, list[OrgFolder]] = {}
    for f in folders:
        by_slug.setdefault(slugs[f.path], []).append(f)
    clashes = {s: fs for s, fs in by_slug.items() if len(fs) > 1}
    if clashes:
        lines = [
            f"  slug '{s}': " + " and ".join(f"'{f.folder}'" for f in fs)
            for s, fs in sorted(clashes.items())
        ]
        raise PlaybookError(
            "Some organisation folders have the same slug, so their reports would go to the "
            "same reports folder and overwrite each other:\n"
            + "\n".join(lines)
            + "\nWhat to do: give each organisation its own 'slug:' in its org.yaml "
            "(lowercase letters, digits and hyphens, e.g. 'slug: city-theatre'), then run "
            "the batch again. Nothing was run."
        )
    return slugs


# --- executors: a registry, so adding one is adding one entry -------------------------------
Executor = Callable[[Sequence[Job], int, Callable[[JobResult], None]], list[JobResult]]


def _local(jobs: Sequence[Job], n_jobs: int, done: Callable[[JobResult], None]) -> list[JobResult]:
    results: list[JobResult] = []
    if n_jobs <= 1:
        for job in jobs:
            results.append(run_job(job))
            done(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for fut in as_completed(futures):
            results.append(fut.result())
            done(results[-1])
    return results


def _dask(address: str) -> Executor:
    def run(jobs: Sequence[Job], n_jobs: int, done: Callable[[JobResult], None]) -> list[JobResult]:
        try:
            from distributed import Client
            from distributed import as_completed as dask_completed
        except ImportError:  # pragma: no cover - depends on the extra
            raise PlaybookError(
                "Running on a Dask cluster needs the cluster extra.\n"
                "What to do: pip install 'playbook[cluster]'."
            ) from None
        results: list[JobResult] = []
        with Client(address) as client:
            futures = client.map(run_job, list(jobs), pure=False)
            for fut in dask_completed(futures):
                results.append(fut.result())
                done(results[-1])
        return results

    return run


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": lambda: _local, "dask": _dask}


def run_batch(
    org_dirs: Iterable[str | Path],
    seasons: Sequence[str | None] = (None,),
    *,
    reports_root: str | Path = "reports",
    n_jobs: int = 1,
    scheduler: str | None = None,
    notebooks_dir: str | Path | None = None,
    intake: bool = True,
    only: Sequence[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Render every organisation × season and return the summary table.

    Each organisation's intake runs once, before any of its seasons render (two intakes
    of one folder at once would overwrite each other's tables); its seasons then render
    in parallel with everything else.

    Parameters
    ----------
    org_dirs : iterable of path
        Organisation folders (each with ``org.yaml``), or patterns like ``data/*/``.
        Folders that are not organisations are listed in the summary as skipped.
    seasons : sequence of str or None
        Seasons to render; ``None`` means each organisation's latest complete season.
    reports_root : path
        Reports root; ``reports/index.html`` is rewritten at the end.
    n_jobs : int
        Parallel processes on this machine.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``) to run on instead.
    notebooks_dir, only
        Passed to each job (see :class:`Job`).
    intake : bool
        Run intake first. Without it, an organisation whose exports or org.yaml changed
        after its last intake is not rendered (its row says which file changed).
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per job or skipped folder: org (slug), folder (as given), season, status
        (``ok``, ``failed``, ``skipped``: a folder named on its own or with a misnamed
        org.yaml; ``not an organisation``: a folder a pattern matched), seconds,
        notebook, cell, error, report.

    Raises
    ------
    PlaybookError
        Nothing given, or two organisations share a slug (nothing runs then).
    """
    from tqdm.auto import tqdm

    from playbook.render import write_reports_index

    folders = find_org_folders(org_dirs)
    if not folders:
        raise PlaybookError(
            "No organisation folders given.\nWhat to do: pass folders like data/*/."
        )
    orgs = [f for f in folders if not f.skip]
    slugs = check_unique_slugs(orgs)
    results: list[JobResult] = [
        JobResult(
            f.path.name,
            "",
            "skipped" if f.explicit or f.near_miss else "not an organisation",
            0.0,
            error=f.skip,
            folder=f.folder,
        )
        for f in folders
        if f.skip
    ]
    root = Path(reports_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    executor = EXECUTORS["dask"](scheduler) if scheduler else EXECUTORS["local"]()

    def job(f: OrgFolder, season: str | None, *, stage: str) -> Job:
        return Job(
            str(f.path),
            season,
            str(root),
            str(notebooks_dir) if notebooks_dir else None,
            intake=stage == "intake",
            only=tuple(only) if only else None,
            slug=slugs[f.path],
            folder=f.folder,
            render=stage == "render",
            check_fresh=not intake,
        )

    def run(jobs: list[Job], desc: str) -> list[JobResult]:
        if not jobs:
            return []
        bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="org")

        def done(r: JobResult) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{r.org}: {r.status}")

        try:
            return executor(jobs, max(1, n_jobs), done)
        finally:
            bar.close()

    ready = orgs
    if intake:
        by_folder = {
            r.folder: r for r in run([job(f, None, stage="intake") for f in orgs], "intake")
        }
        ready = [f for f in orgs if by_folder[f.folder].status == "ok"]
        for f in orgs:
            r = by_folder[f.folder]
            if r.status != "ok":  # none of its seasons can render: one row per season
                results += [
                    JobResult(**{**asdict(r), "season": s or ""}) for s in dict.fromkeys(seasons)
                ]
    results += run([job(f, s, stage="render") for f in ready for s in seasons], "reports")
    write_reports_index(root)
    table = pd.DataFrame([asdict(r) for r in results], columns=list(JobResult.__dataclass_fields__))
    cols = ["org", "folder", "season", "status", "seconds", "notebook", "cell", "error", "report"]
    table = table[cols].sort_values(["org", "folder", "season"], kind="stable")
    table = table.reset_index(drop=True)
    table["seconds"] = table["seconds"].round(1)
    table.to_csv(root / "batch_summary.csv", index=False)
    return table
