"""The data audit (notebook 00): what came in, what was dropped, what it unlocks."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from playbook import charts
from playbook.intake import read_ledger
from playbook.ledger import REASONS
from playbook.parsing import isin
from playbook.privacy import mask_small_cells
from playbook.report import UNLOCKS, Context
from playbook.schema import TABLE_NAMES, TABLES
from playbook.schema import Attendance as AT
from playbook.schema import OrderLines as OL
from playbook.schema import Performances as PF
from playbook.schema import Productions as PR
from playbook.seasons import season_of
from playbook.tables import Tables, effective_tickets

# Analyses and the tables each needs (order_lines is always there).
ANALYSES: dict[str, tuple[str, ...]] = {
    "Maturity tiers, RFM and clustering": ("order_lines",),
    "Artform breadth and favourite artform": ("productions", "performances"),
    "Personas with booking habits": ("performances",),
    "Journey map: discover stage": ("interactions",),
    "Journey map: attend stage (no-shows)": ("attendance",),
    "Journey map: reflect stage (NPS)": ("survey_responses",),
    "Lifetime value (BG/NBD, Gamma-Gamma)": ("order_lines",),
    "Membership renewal curves (sBG)": ("memberships",),
    "Giving in lifetime value, donor moments": ("donations",),
    "Consent-aware action lists": ("consents",),
    "Birthday and household moments": ("customers",),
}

_DATE_COLS = {
    "customers": "created_at",
    "consents": "consent_date",
    "performances": "start_time",
    "order_lines": "purchase_time",
    "attendance": "scanned_at",
    "memberships": "start_date",
    "donations": "donation_date",
    "interactions": "occurred_at",
    "survey_responses": "responded_at",
}


def ledger_tables(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger as two tables for reading aloud.

    Returns
    -------
    per_file : pandas.DataFrame
        file, table, rows read, kept, dropped and the share dropped.
    per_reason : pandas.DataFrame
        reason, what it means, rows dropped (all files together).
    """
    summary, dropped = read_ledger(ctx.config)
    per_file = summary[["file", "table", "rows_read", "rows_kept", "rows_dropped"]].copy()
    per_file["share_dropped"] = (
        per_file["rows_dropped"] / per_file["rows_read"].where(per_file["rows_read"] > 0)
    ).fillna(0.0)
    counts = dropped["reason"].value_counts()
    per_reason = pd.DataFrame(
        {
            "reason": counts.index.astype(str),
            "meaning": [REASONS.get(r, "") for r in counts.index],
            "rows_dropped": counts.to_numpy(),
        }
    )
    return per_file, per_reason


def table_coverage(tables: Tables) -> pd.DataFrame:
    """One row per canonical table: rows, customers covered, date range, what it unlocks."""
    n_customers = tables.customers["customer_id"].nunique() if tables.has("customers") else 0
    records = []
    for name in TABLE_NAMES:
        df = tables[name]
        present = tables.has(name)
        customers = df["customer_id"].nunique() if present and "customer_id" in df else None
        date_col = _DATE_COLS.get(name)
        first = df[date_col].min() if present and date_col else pd.NaT
        last = df[date_col].max() if present and date_col else pd.NaT
        records.append(
            {
                "table": name,
                "status": "present"
                if present
                else ("required, missing" if TABLES[name].required else "absent"),
                "rows": len(df),
                "customers": customers,
                "share_of_customers": (customers / n_customers)
                if customers and n_customers
                else None,
                "from": str(first.date()) if pd.notna(first) else "–",
                "to": str(last.date()) if pd.notna(last) else "–",
                "unlocks": UNLOCKS.get(name, "every analysis (ticket sales)"),
            }
        )
    out = pd.DataFrame(records)
    out["customers"] = out["customers"].astype("Int64")
    out["share_of_customers"] = out["share_of_customers"].astype("Float64")
    return out


def unlocked_analyses(tables: Tables) -> pd.DataFrame:
    """Which analyses the available tables unlock, and what is missing for the rest."""
    rows = []
    for analysis, needs in ANALYSES.items():
        missing = [t for t in needs if not tables.has(t)]
        rows.append(
            {
                "analysis": analysis,
                "available": "yes" if not missing else "no",
                "needs": ", ".join(missing) if missing else "nothing more",
            }
        )
    return pd.DataFrame(rows)


def ticket_facts(tables: Tables, start_month: int) -> pd.DataFrame:
    """Effective tickets with season, artform and whether each was scanned.

    Made once per loaded tables and season start (:meth:`Tables.view`): the audit's
    overview, matrix and charts all read it.
    """
    return tables.view(("ticket_facts", start_month), lambda: _ticket_facts(tables, start_month))


def _ticket_facts(tables: Tables, start_month: int) -> pd.DataFrame:
    tickets = effective_tickets(tables.order_lines)
    out = tickets[
        [
            OL.line_id,
            OL.customer_id,
            OL.performance_id,
            OL.purchase_time,
            OL.paid_amount,
            OL.quantity,
        ]
    ].copy()
    perf = tables.performances[[PF.performance_id, PF.production_id, PF.start_time]]
    prod = tables.productions[[PR.production_id, PR.artform]]
    out = out.merge(perf, on=OL.performance_id, how="left").merge(
        prod, on=PR.production_id, how="left"
    )
    when = out[PF.start_time].fillna(out[OL.purchase_time])
    out["season"] = season_of(when, start_month)
    out[PR.artform] = out[PR.artform].fillna("unknown")
    if tables.has("attendance"):
        scanned = tables.attendance[AT.line_id].dropna()
        out["attended"] = isin(out[OL.line_id], scanned)
    else:
        out["attended"] = pd.NA
    return out


def season_overview(ctx: Context) -> pd.DataFrame:
    """Per season: customers, new customers, tickets, ticket revenue, attendance.

    A count of fewer than ``ctx.min_group`` customers (and the figures about them) is
    hidden; the first season's new customers are unknown (see ``attrs["footnote"]``).
    """
    facts = ticket_facts(ctx.tables, ctx.config.season_start_month)
    first = facts.groupby(OL.customer_id)["season"].min()
    g = facts.groupby("season")
    out = pd.DataFrame(
        {
            "customers": g[OL.customer_id].nunique(),
            "new_customers": first.value_counts(),
            "tickets": g[OL.quantity].sum(),
            "ticket_revenue": g[OL.paid_amount].sum(),
        }
    )
    if ctx.tables.has("attendance"):
        out["attended"] = facts.loc[facts["attended"] == True].groupby("season")[OL.quantity].sum()  # noqa: E712
        out["attendance_rate"] = out["attended"] / out["tickets"]
    out = out.fillna({"new_customers": 0}).reset_index().rename(columns={"index": "season"})
    for c in ("customers", "new_customers", "tickets"):
        out[c] = out[c].astype("int64")
    if "attended" in out:
        out["attended"] = out["attended"].fillna(0).astype("int64")
    # a season's count of a few people, and the figures about them, are hidden
    few = (out["customers"] > 0) & (out["customers"] < ctx.min_group)
    few_new = (out["new_customers"] > 0) & (out["new_customers"] < ctx.min_group)
    out["new_customers"] = out["new_customers"].astype("Int64").mask(few | few_new)
    for c in ("customers", "tickets", "ticket_revenue", "attended", "attendance_rate"):
        if c in out:
            out[c] = (out[c].astype("Int64") if out[c].dtype == "int64" else out[c]).mask(few)
    if len(out):  # the records start in the first season: nobody in it can be seen as new
        out["new_customers"] = out["new_customers"].where(out.index > 0)
        out.attrs["footnote"] = (
            f"{out.loc[0, 'season']} is the first season in the records, so whether its "
            "customers were new cannot be told: their earlier visits are not in the data."
        )
    return out


def artform_by_season(ctx: Context, value: str = "ticket_revenue") -> pd.DataFrame:
    """Artform × season matrix of ticket revenue (or ``tickets``), small cells masked.

    A cell with fewer customers than the suppression threshold is left blank.
    """
    facts = ticket_facts(ctx.tables, ctx.config.season_start_month)
    col = OL.paid_amount if value == "ticket_revenue" else OL.quantity
    values = facts.pivot_table(
        index=PR.artform, columns="season", values=col, aggfunc="sum", fill_value=0
    )
    counts = facts.pivot_table(
        index=PR.artform, columns="season", values=OL.customer_id, aggfunc="nunique", fill_value=0
    )
    out = mask_small_cells(counts, values, ctx.min_group)
    out = out.loc[out.sum(axis=1).sort_values(ascending=False).index]
    return out


def revenue_chart(ctx: Context) -> Figure | None:
    """Ticket revenue by artform and season (bars); a note instead when all cells are hidden."""
    matrix = artform_by_season(ctx)
    tidy = (
        matrix.reset_index()
        .melt(id_vars=PR.artform, var_name="season", value_name="revenue")
        .dropna()
    )
    if tidy.empty:
        from IPython.display import Markdown, display

        display(
            Markdown("*Every artform group is below the privacy threshold, so no chart is drawn.*")
        )
        return None
    symbol = _symbol(ctx)
    return charts.bar(
        tidy,
        x=PR.artform,
        y="revenue",
        hue="season",
        title="Ticket revenue by artform and season",
        xlabel="Artform",
        ylabel=f"Ticket revenue ({ctx.config.currency})",
        money=symbol,
    )


def attendance_chart(ctx: Context) -> Figure:
    """Tickets and attendance by season (bars)."""
    seasons = season_overview(ctx)
    cols = ["tickets"] + (["attended"] if "attended" in seasons else [])
    tidy = seasons.melt(id_vars="season", value_vars=cols, var_name="measure", value_name="count")
    tidy["count"] = tidy["count"].astype("float64")  # a hidden season draws no bar
    return charts.bar(
        tidy,
        x="season",
        y="count",
        hue="measure",
        title="Tickets sold and tickets scanned at the door, by season",
        xlabel="Season",
        ylabel="Tickets",
    )


def _symbol(ctx: Context) -> str:
    from playbook.report import CURRENCY_SYMBOLS

    return CURRENCY_SYMBOLS.get(ctx.config.currency, ctx.config.currency + " ")
