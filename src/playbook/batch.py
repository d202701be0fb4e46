"""Season-end batch: intake and render many organisations, in parallel.

Each organisation runs in its own process (or on a Dask cluster with ``scheduler=``).
One organisation failing never stops the others: its result records the notebook, cell
and error, its partly executed notebook stays in ``reports/<org>/<season>.failed/``, and
the summary lists everything. Executors are a small registry keyed by name.
"""

from __future__ import annotations

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
    """One organisation and season to render."""

    org_dir: str
    season: str | None
    reports_root: str
    notebooks_dir: str | None = None
    intake: bool = True
    only: tuple[str, ...] | None = None


@dataclass
class JobResult:
    """What happened to one job."""

    org: str
    season: str
    status: str  # "ok" or "failed"
    seconds: float
    notebook: str = ""
    cell: str = ""
    error: str = ""
    report: str = ""


def run_job(job: Job) -> JobResult:
    """Intake (optionally) and render one organisation; never raises."""
    from playbook.intake import run_intake
    from playbook.render import RenderError, render_season

    t0 = time.perf_counter()
    org = Path(job.org_dir).name
    season = job.season or ""
    try:
        if job.intake:
            run_intake(job.org_dir)
        result = render_season(
            job.org_dir,
            job.season,
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
        )
    except RenderError as exc:
        return JobResult(
            org,
            season,
            "failed",
            time.perf_counter() - t0,
            notebook=exc.notebook,
            cell=str(exc.cell if exc.cell is not None else ""),
            error=_first_line(exc.error),
            report=str(exc.kept or ""),
        )
    except PlaybookError as exc:
        return JobResult(
            org,
            season,
            "failed",
            time.perf_counter() - t0,
            notebook="(intake / settings)",
            error=_first_line(str(exc)),
        )
    except Exception as exc:  # a bug must not stop the other organisations
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return JobResult(
            org, season, "failed", time.perf_counter() - t0, notebook="(kit)", error=tb
        )


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[:2])


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

    Parameters
    ----------
    org_dirs : iterable of path
        Organisation folders (each with ``org.yaml``).
    seasons : sequence of str or None
        Seasons to render; ``None`` means each organisation's latest complete season.
    reports_root : path
        Reports root; ``reports/index.html`` is rewritten at the end.
    n_jobs : int
        Parallel processes on this machine.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``) to run on instead.
    notebooks_dir, intake, only
        Passed to each job (see :class:`Job`).
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per job: org, season, status, seconds, notebook, cell, error, report.
    """
    from tqdm.auto import tqdm

    from playbook.render import write_reports_index

    root = Path(reports_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    jobs = [
        Job(
            str(Path(o).resolve()),
            s,
            str(root),
            str(notebooks_dir) if notebooks_dir else None,
            intake,
            tuple(only) if only else None,
        )
        for o in org_dirs
        for s in seasons
    ]
    if not jobs:
        raise PlaybookError(
            "No organisation folders given.\nWhat to do: pass folders like data/*/."
        )
    executor = EXECUTORS["dask"](scheduler) if scheduler else EXECUTORS["local"]()
    bar = tqdm(total=len(jobs), desc="organisations", disable=not progress, unit="org")

    def done(r: JobResult) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{r.org}: {r.status}")

    try:
        results = executor(jobs, max(1, n_jobs), done)
    finally:
        bar.close()
    write_reports_index(root)
    table = pd.DataFrame([asdict(r) for r in results])
    table = table.sort_values(["org", "season"], kind="stable").reset_index(drop=True)
    table["seconds"] = table["seconds"].round(1)
    table.to_csv(root / "batch_summary.csv", index=False)
    return table
