"""The prepared moment data: fast paths give exactly what the plain pandas/numpy ways give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_moments_triggers import DEFAULTS, History

from playbook.moments import find_moments, prepare_moments
from playbook.moments.data import (
    _parent_rows,
    factorize_text,
    lexsort,
    locate,
    merge_sorted,
    sort_within,
    text_codes,
)
from playbook.moments.triggers import repeated
from playbook.tables import Tables

RNG = np.random.default_rng(20250301)


# ---------------------------------------------------------------------------
# The helpers, against the plain ways on many small random inputs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        ["1", "2", "2", "5"],  # integers in ascending order: no hashing
        ["3", "1", "3", None, "2"],
        ["007", "007", "8"],  # written one way: the text is kept as written
        ["7", "007", "7"],  # one integer written two ways: plain factorisation
        ["1", "+1"],
        ["1", "1.0"],
        [" 1", "1"],
        ["1", "99999999999999999999"],  # too large for int64
        ["C0a3", "C0a3", "B1"],
        [],
        [None, None],
        [1, 2, 2],
    ],
)
def test_factorize_text_is_pandas_factorize_of_the_text(values: list) -> None:
    s = pd.Series(values, dtype=object)
    codes, uniques = pd.factorize(s.astype("string"))
    got_codes, got_uniques = factorize_text(s)
    assert got_codes.dtype == np.int64
    assert np.array_equal(got_codes, codes)
    assert got_uniques.equals(pd.Index(uniques, dtype="string"))
    assert got_uniques.dtype == pd.Index(uniques, dtype="string").dtype
    assert np.array_equal(text_codes(s), codes)


def test_lexsort_is_numpy_lexsort() -> None:
    for _ in range(2000):
        n = int(RNG.integers(0, 40))
        keys = [RNG.integers(-5, 10 ** int(RNG.integers(1, 18)), n)]
        keys += [RNG.integers(-2, int(RNG.integers(1, 6)), n) for _ in range(RNG.integers(1, 4))]
        if RNG.random() < 0.3:
            keys[0] = np.sort(keys[0])  # already in order: no first sort
        if RNG.random() < 0.1:
            keys.append(RNG.random(n))  # not integers: numpy's own
        assert np.array_equal(lexsort(tuple(keys)), np.lexsort(tuple(keys)))
    wide = (np.arange(10), np.array([2**61, 0] * 5))  # too wide to pack
    assert np.array_equal(lexsort(wide), np.lexsort(wide))


def test_sort_within_is_lexsort_for_grouped_rows() -> None:
    for _ in range(500):
        n = int(RNG.integers(0, 40))
        groups = np.sort(RNG.integers(0, 6, n))
        values = RNG.integers(0, 5, n)
        assert np.array_equal(sort_within(groups, values), np.lexsort((values, groups)))


def test_merge_sorted_is_a_stable_sort_of_both() -> None:
    for _ in range(500):
        parts = []
        for size in (int(RNG.integers(0, 30)), int(RNG.integers(0, 10))):
            part = {
                "cust": RNG.integers(0, 5, size),
                "time": RNG.integers(0, 6, size),
                "amount": RNG.random(size),
            }
            order = np.lexsort((part["time"], part["cust"]))
            parts.append({k: v[order] for k, v in part.items()})
        a, b = parts
        both = {k: np.concatenate([a[k], b[k]]) for k in a}
        order = np.lexsort((both["time"], both["cust"]))
        got = merge_sorted(a, b)
        for k in a:
            assert np.array_equal(got[k], both[k][order]) and got[k].dtype == both[k].dtype


def test_locate_gives_first_positions() -> None:
    hay = pd.Index(["a", "b", "c", "b", None, "d"], dtype="string")
    keys = pd.Series(["b", "z", None, "d", "a", "b"], dtype="string")
    assert locate(keys, hay).tolist() == [1, -1, -1, 5, 0, 1]
    assert locate(keys, pd.Index([], dtype="string")).tolist() == [-1] * 6
    assert locate(pd.Series([], dtype="string"), hay).tolist() == []


def test_repeated_marks_keys_seen_more_than_once() -> None:
    for _ in range(300):
        keys = RNG.integers(0, 30, int(RNG.integers(0, 40)))
        expected = pd.Series(keys).duplicated(keep=False).to_numpy()
        assert np.array_equal(repeated(keys), expected)


def _parent_rows_by_factorising(ol: pd.DataFrame, orig: np.ndarray, rev_rows: np.ndarray):
    """The plain way: one code space for line ids and parent ids."""
    rev = np.zeros(len(ol), dtype=bool)
    rev[rev_rows] = True
    both = pd.concat(
        [ol["line_id"].astype("string"), ol["parent_line_id"].astype("string")[rev]],
        ignore_index=True,
    )
    codes, uniques = pd.factorize(both)
    line_code, parent_code = codes[: len(ol)], codes[len(ol) :]
    row_of = np.full(len(uniques), -1, dtype=np.int64)
    row_of[line_code[np.flatnonzero(orig)]] = np.flatnonzero(orig)
    return np.where(parent_code >= 0, row_of[np.maximum(parent_code, 0)], -1)


def test_parent_rows_by_bisection_or_lookup_match_the_plain_way() -> None:
    for _ in range(500):
        n = int(RNG.integers(1, 30))
        ids = np.sort(RNG.integers(1, 40, n)) if RNG.random() < 0.7 else RNG.integers(1, 40, n)
        lines = [str(x) for x in ids]
        if RNG.random() < 0.2:
            lines[int(RNG.integers(0, n))] = "0" + lines[0]  # one id written two ways
        if RNG.random() < 0.1:
            lines = ["L" + x for x in lines]  # not integers
        orig = RNG.random(n) < 0.7
        rev_rows = np.flatnonzero(~orig)
        parents: list[str | None] = [None] * n
        for r in rev_rows:
            u = RNG.random()
            parents[r] = (
                None
                if u < 0.1
                else lines[int(RNG.integers(0, n))]
                if u < 0.8
                else str(int(RNG.integers(0, 50)))
            )
            if RNG.random() < 0.05:
                parents[r] = f"0{parents[r]}"
        ol = pd.DataFrame(
            {
                "line_id": pd.Series(lines, dtype="string"),
                "parent_line_id": pd.Series(parents, dtype="string"),
            }
        )
        expected = _parent_rows_by_factorising(ol, orig, rev_rows)
        assert np.array_equal(_parent_rows(ol, orig, rev_rows), expected)


# ---------------------------------------------------------------------------
# Whole histories: integer ids (fast paths) and text ids (plain paths) agree
# ---------------------------------------------------------------------------
def _history(with_returns: bool) -> History:
    h = History()
    h.perf("F1", "P1", "2024-10-01 19:30").perf("F2", "P1", "2024-10-03 19:30")
    h.perf("F3", "P2", "2024-11-05 19:30").perf("F4", "P3", "2025-03-20 19:30")
    h.perf("F5", "P2", "2024-11-06 19:30", cancelled=True)
    for i, cust in enumerate(["A", "B", "C", "D"]):
        h.customer(cust, birth=(3, 10 + i)).consent(cust, "email")
        h.book(cust, "F1", f"2024-09-0{i + 1} 10:00")
        h.book(cust, "F1", f"2024-09-0{i + 1} 10:00")  # two seats, one booking
        h.book(cust, "F3" if i % 2 else "F2", f"2024-09-1{i} 11:00")
        h.book(cust, "F4", f"2025-02-1{i} 09:00")
        h.book(cust, "F5", f"2024-10-1{i} 09:00")
    h.book("E", None, "2024-12-01 10:00")  # a ticket without a performance
    if with_returns:
        line = h.book("C", "F4", "2025-02-20 10:00")
        h.reverse("C", line, "2025-02-21 10:00")
        line = h.book("D", "F3", "2024-10-20 10:00")
        h.reverse("D", line, "2024-10-22 10:00", status="exchanged")
    h.member("A", "2024-04-01", "2025-03-31").give("B", "2024-12-24", 500.0)
    h.click("C", "P3", "2025-02-01").click("C", "P3", "2025-02-02")
    h.survey("A", "2024-10-02", 10, "F1").survey("B", "2024-10-02", 2, "F1")
    return h


def _as_integers(tables: Tables) -> Tables:
    """The same tables with line and order ids as integer text ("L12" -> "12")."""
    frames = dict(tables.frames)
    ol = frames["order_lines"].copy()
    for col in ("line_id", "parent_line_id", "order_id"):
        ol[col] = ol[col].astype("string").str.slice(1)
    frames["order_lines"] = ol
    return Tables(frames=frames, available=tables.available)


def _arrays(data) -> dict:
    out = {}
    for name in ("tickets", "reversals", "money", "memberships", "clicks", "surveys"):
        for k, v in getattr(data, name).items():
            out[f"{name}.{k}"] = v
    for name in ("anonymised", "birth_month", "birth_day", "perf_start", "perf_prod", "prod_art"):
        out[name] = getattr(data, name)
    return out


@pytest.mark.parametrize("with_returns", [False, True])
def test_integer_and_text_ids_prepare_the_same_data(with_returns: bool) -> None:
    text = _history(with_returns).tables()
    ints = _as_integers(text)
    a, b = prepare_moments(text), prepare_moments(ints)
    assert a.ids.equals(b.ids) and list(a.consent) == list(b.consent)
    for name, v in _arrays(a).items():
        assert np.array_equal(v, _arrays(b)[name]), name
    if with_returns:  # the returned and the exchanged ticket are linked to their lines
        assert (a.tickets["reversed_at"] < np.iinfo(np.int64).max).sum() == 2
    found = [find_moments(d, "2025-03-01", settings=DEFAULTS) for d in (a, b)]
    pd.testing.assert_frame_equal(found[0], found[1])
    assert len(found[0])


def test_withdrawn_consents_and_do_not_contact_flags_per_customer() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    for c in ("C1", "C2", "C3"):
        h.book(c, "A", "2025-01-01 10:00")
    h.rows["customers"] += [
        {"customer_id": "C1", "anonymised": False, "do_not_contact": True},
        {"customer_id": "C2", "anonymised": False, "do_not_contact": False},
    ]  # C3 has no customer record: not flagged
    h.consent("C1", "email", "withdrawn").consent("C2", "email", "granted")
    h.consent("C2", "phone", "withdrawn").consent("C3", "email", "unknown")
    d = prepare_moments(h.tables())
    pos = {c: i for i, c in enumerate(d.ids)}
    order = [pos[c] for c in ("C1", "C2", "C3")]
    assert d.do_not_contact[order].tolist() == [True, False, False]
    assert sorted(d.withdrawn) == ["email", "phone"]
    assert d.withdrawn["email"][order].tolist() == [True, False, False]
    assert d.withdrawn["phone"][order].tolist() == [False, True, False]
    assert d.consent["email"][order].tolist() == [False, True, False]
    # tables written before the column existed: nobody flagged
    t = h.tables()
    t.frames["customers"] = t.frames["customers"].drop(columns="do_not_contact")
    assert not prepare_moments(t).do_not_contact.any()
