"""Intake's shortcuts for big exports give exactly what the plain pandas/hashlib ways give."""

from __future__ import annotations

import hmac
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from playbook import intake, parsing, readers
from playbook.intake import (
    _hmac_heads,
    _lexsort_ranks,
    _repeated_rows,
    _shared_rows,
    _sort_rows,
    _sorted_key_unique,
    pseudonymise,
    run_intake,
)
from playbook.schema import TABLES
from playbook.synth import SynthConfig, generate

TODAY = "2026-09-01"


@pytest.mark.parametrize("salt", [b"fixed-salt", b"ab" * 32, b"k" * 65, b"", b"x" * 200])
def test_hmac_matches_the_standard_library(salt: bytes) -> None:
    rng = random.Random(3)
    ids = ["1001", "", "é", "日本語", "a\x00b", "x" * 55, "y" * 56, "z" * 300]
    ids += [
        "".join(chr(rng.randint(32, 0x2000)) for _ in range(rng.randint(0, 70))) for _ in range(500)
    ]
    heads = _hmac_heads(pa.array(ids, pa.large_string()), salt)
    expected = [
        int.from_bytes(hmac.new(salt, i.encode(), "sha256").digest()[:8], "big") for i in ids
    ]
    assert heads.tolist() == expected
    pseudonyms = pseudonymise(pd.Series([*ids, None], dtype="string"), salt, prefix="H")
    assert pseudonyms.iloc[:-1].tolist() == [f"H{h:016x}" for h in expected]
    assert pd.isna(pseudonyms.iloc[-1])


def _random_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    words = np.array(["b", "a", "c", "ab", "é", "B", "10", "9"], dtype=object)
    text = words[rng.integers(0, len(words), n)]
    text[rng.random(n) < 0.1] = None
    times = pd.to_datetime(rng.integers(0, 5, n), unit="D").to_numpy().copy()
    times[rng.random(n) < 0.1] = np.datetime64("NaT")
    return pd.DataFrame(
        {
            "t": pd.array(text, dtype="string"),
            "d": times,
            "i": rng.integers(0, 4, n),
            "f": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 3, n).astype(float)),
            "u": pd.array(rng.permutation(n).astype(str), dtype="string"),
            "r": np.sort(rng.integers(0, 6, n)),
        }
    )


@pytest.mark.parametrize("seed", range(6))
def test_sort_rows_matches_pandas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _random_frame(rng, 3_000)
    for key in (["t"], ["t", "d", "i"], ["i", "r"], ["d", "t"], ["u", "t"], ["f", "t"], ["r", "i"]):
        expected = frame.sort_values(key, kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(_sort_rows(frame, key), expected)
        codes, uniques = pd.factorize(frame["t"])
        coded = {"t": (codes, uniques, np.argsort(uniques.to_numpy(dtype=object), kind="stable"))}
        pd.testing.assert_frame_equal(_sort_rows(frame, key, coded), expected)
        # the column holds stand-ins; its values come from the codes
        stand_in = frame.assign(t=pd.array(["?"] * len(frame), dtype="string"))
        pd.testing.assert_frame_equal(_sort_rows(stand_in, key, coded, ["t"]), expected)


def test_sort_rows_of_plain_numbers_all_different() -> None:
    rng = np.random.default_rng(1)
    ids = rng.permutation(np.arange(1_000_000, 1_030_000)).astype(str)
    frame = pd.DataFrame({"line_id": pd.array(ids, dtype="string"), "n": np.arange(len(ids))})
    expected = frame.sort_values(["line_id", "n"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(_sort_rows(frame, ["line_id", "n"]), expected)


@pytest.mark.parametrize("seed", range(4))
def test_lexsort_ranks_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5_000
    spans = [n, n, 7, n] if seed == 0 else [int(s) for s in rng.integers(1, 60, 3)]
    ranks = [rng.integers(0, s, n) for s in spans]
    assert (_lexsort_ranks(ranks, spans) == np.lexsort(ranks[::-1])).all()


def test_sorted_key_unique_sees_repeats_and_missing() -> None:
    frame = pd.DataFrame(
        {
            "a": pd.array(["1", "1", "2", None, None], dtype="string"),
            "b": pd.array(["x", "y", "x", "z", "z"], dtype="string"),
        }
    )
    assert not _sorted_key_unique(frame, ["a", "b"])  # missing equals missing
    assert _sorted_key_unique(frame.iloc[:4], ["a", "b"])
    assert not _sorted_key_unique(frame.iloc[:2], ["a"])


@pytest.mark.parametrize("seed", range(3))
def test_repeated_rows_match_pandas(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "_NUMBERS_MIN_ROWS", 0)
    rng = np.random.default_rng(seed)
    n = 30_000
    ids = rng.integers(100, 100 + n // (1 + seed * 5), n).astype(str).astype(object)
    ids[rng.random(n) < 0.01] = None
    frame = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "kind": pd.array(np.array(["a", "b"])[rng.integers(0, 2, n)], dtype="string"),
            "when": pd.to_datetime(rng.integers(0, 3, n), unit="D"),
        }
    )
    cols = list(frame.columns)
    factorized: dict = {}
    shared = _shared_rows(frame, cols, factorized)
    assert (shared == frame.duplicated(subset=cols, keep=False).to_numpy()).all()
    repeated = _repeated_rows(frame, cols, (), factorized)
    assert (repeated == frame.duplicated(subset=cols, keep="first")).all()
    distinct = frame.assign(customer_id=pd.array(rng.permutation(n).astype(str), dtype="string"))
    assert not _shared_rows(distinct, cols).any()


def test_factorize_reused_from_dedupe_turns_missing_into_minus_one() -> None:
    s = pd.Series(["7", None, "5", "7", None], dtype="string", name="customer_id")
    src = intake._Source.__new__(intake._Source)
    src.factorized = {}
    codes, uniques = pd.factorize(s, use_na_sentinel=False)
    src.factorized["customer_id"] = (parsing._arrow_strings(s), codes, uniques)
    got_codes, got_uniques = src.factorize(s)
    want_codes, want_uniques = pd.factorize(s)
    assert (got_codes == want_codes).all()
    pd.testing.assert_index_equal(got_uniques, want_uniques)


def test_blank_line_and_utf8_checks_match_python() -> None:
    rng = random.Random(0)
    pieces = [b"\n", b"\r", b"a", b"\xff", b"\xe9", b"\xc3", b"\xa9", b",", b"\xed\xa0\x80"]
    for _ in range(3_000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        assert readers._has_blank_line(data) == (readers._BLANK_LINE.search(data) is not None)
        try:
            data.decode("utf-8")
            decodes = True
        except UnicodeDecodeError:
            decodes = False
        assert readers._valid_utf8(data) == decodes


def _messy_org(root: Path) -> Path:
    """A small generated organisation with repeats, reused ids, odd ids and blank lines."""
    generate(root, SynthConfig(seed=11, customers=400, messy=15))
    rng = random.Random(5)
    ex = root / "exports"

    def rewrite(name: str, edit) -> None:
        lines = (ex / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (ex / name).write_text(lines[0] + "".join(edit(lines[1:])), encoding="utf-8")

    def customers(body: list[str]) -> list[str]:
        body = [line for line in body if rng.random() > 0.05]  # some become stubs
        reused = [line.replace(",No\n", ",Yes\n") for line in rng.sample(body, 20)]
        return body + rng.sample(body, 20) + reused

    def odd_ids(body: list[str]) -> list[str]:
        out = []
        for line in body:
            parts = line.split(",")
            if rng.random() < 0.05:
                parts[2] = rng.choice(["0", " ", "X"]) + parts[2]
            out.append(",".join(parts))
        return out

    rewrite("customers.csv", customers)
    rewrite("consents.csv", lambda body: body + rng.sample(body, 30))
    rewrite("scans.csv", lambda body: body + rng.sample(body, 30))
    rewrite("sales.csv", odd_ids)
    rewrite("donations.csv", lambda body: body[:5] + ["\n"] + body[5:])
    return root


def _outputs(org: Path) -> dict[str, pd.DataFrame | bytes]:
    out: dict[str, pd.DataFrame | bytes] = {}
    for path in [*(org / "canonical").glob("*"), org / "private" / "id_map.parquet"]:
        out[path.name] = pd.read_parquet(path) if path.suffix == ".parquet" else path.read_bytes()
    return out


def test_shortcuts_give_the_plain_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shortcut forced on, then every one off: the same tables, ledger and id map."""
    org = _messy_org(tmp_path / "org")
    monkeypatch.setattr(intake, "_SMALL", 3)
    monkeypatch.setattr(parsing, "_NUMBERS_MIN_ROWS", 0)
    run_intake(org, today=TODAY)
    fast = _outputs(org)
    shutil.rmtree(org / "canonical")
    monkeypatch.setattr(intake, "_SMALL", 10**12)
    monkeypatch.setattr(parsing, "_NUMBERS_MIN_ROWS", 10**12)
    run_intake(org, today=TODAY)
    plain = _outputs(org)
    assert fast.keys() == plain.keys()
    for name, value in plain.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(fast[name], value, check_exact=True)
        else:
            assert fast[name] == value, name
    summary = pd.read_csv(org / "canonical" / "ledger_summary.csv")
    assert summary[["duplicate_line", "duplicate_id", "blank_row"]].sum().min() > 0
    assert json.loads((org / "canonical" / "intake.json").read_text())["stub_customers"] > 0


def test_canonical_tables_are_sorted_and_pseudonymised(tmp_path: Path) -> None:
    org = _messy_org(tmp_path / "org")
    result = run_intake(org, today=TODAY)
    id_map = pd.read_parquet(org / "private" / "id_map.parquet")
    salt = (org / "private" / "salt").read_text().strip().encode()
    assert id_map["customer_id"].is_monotonic_increasing
    again = pseudonymise(id_map["source_customer_id"].astype("string"), salt)
    assert (again.to_numpy() == id_map["customer_id"].to_numpy()).all()
    for name, frame in result.tables.frames.items():
        key = list(TABLES[name].key) or list(frame.columns[:3])
        pd.testing.assert_frame_equal(
            frame, frame.sort_values(key, kind="stable").reset_index(drop=True)
        )
        if "customer_id" in frame and name != "attendance":
            assert frame["customer_id"].dropna().isin(id_map["customer_id"]).all()


def _match_returns_by_loop(frame: pd.DataFrame, reversing: pd.Series) -> pd.Series:
    """The plain way: per ticket in time order, each return takes the latest open sale."""
    parent = frame["parent_line_id"].copy()
    todo = reversing & parent.isna() & frame["ticket_ref"].notna()
    sub = frame[frame["ticket_ref"].isin(set(frame.loc[todo, "ticket_ref"]))]
    for _, group in sub.sort_values("purchase_time", kind="stable").groupby("ticket_ref"):
        open_sales: list[str] = []
        for idx, row in group.iterrows():
            if not reversing[idx]:
                open_sales.append(row["line_id"])
            elif todo[idx] and open_sales:
                parent[idx] = open_sales.pop()
    return parent


@pytest.mark.parametrize("seed", range(8))
def test_match_returns_pairs_like_the_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4_000
    status = np.array(["active", "returned", "exchanged"])[rng.choice(3, n, p=[0.5, 0.3, 0.2])]
    parent = np.array([None] * n, dtype=object)
    named = (status != "active") & (rng.random(n) < 0.2)  # some returns name their sale
    parent[named] = "X"
    refs = rng.integers(0, [5, 60, 600, 2_000][seed % 4], n).astype(str).astype(object)
    refs[rng.random(n) < 0.05] = None
    frame = pd.DataFrame(
        {
            "line_id": pd.array([f"L{i}" for i in range(n)], dtype="string"),
            "purchase_time": pd.to_datetime(rng.integers(0, 50, n), unit="D"),
            "status": pd.array(status, dtype="string"),
            "parent_line_id": pd.array(parent, dtype="string"),
            "ticket_ref": pd.array(refs, dtype="string"),
        },
        index=rng.permutation(n) + 10,  # labels, not positions
    )
    reversing = frame["status"].isin(["returned", "exchanged"])
    got = intake._match_returns(frame, reversing)
    want = _match_returns_by_loop(frame, reversing)
    pd.testing.assert_series_equal(got, want)
    assert got.notna().sum() > named.sum()  # returns were linked


def _plan_lines_by_loop(seats: pd.DataFrame, own: pd.DataFrame, repeated: bool) -> pd.DataFrame:
    """The plain way: one group of seats at a time."""
    keys = ["order_id", "customer_id", "plan_id"]
    with_own = own.drop_duplicates()
    new_lines = []
    for key, group in seats.groupby(keys, sort=False):
        has_own = (
            (with_own["order_id"] == key[0])
            & (with_own["customer_id"] == key[1])
            & (with_own["plan_id"] == key[2])
        ).any()
        if has_own:
            continue
        per_perf = group.groupby("performance_id", sort=False)
        n_perf = per_perf.ngroups
        paid = group["paid_amount"].sum()
        listed = group["list_price"].sum(min_count=1)
        if repeated:
            paid, listed = paid / n_perf, (listed / n_perf if pd.notna(listed) else listed)
        line = group.iloc[0].copy()
        line["line_id"] = f"{key[0]}:plan:{key[2]}"
        line["purchase_time"] = group["purchase_time"].min()
        line["item_type"] = "subscription"
        line["performance_id"] = pd.NA
        line["price_band"] = pd.NA
        line["ticket_type"] = str(key[2])
        line["quantity"] = int(per_perf.size().max())
        line["paid_amount"] = paid
        line["list_price"] = listed
        line["discount"] = np.nan
        line["is_comp"] = False
        new_lines.append(line)
    return pd.DataFrame(new_lines)


@pytest.mark.parametrize("seed", range(6))
def test_plan_lines_match_the_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 1_200
    orders = rng.integers(0, 150, n)
    price = np.round(rng.uniform(5, 60, n), 2)
    listed = np.where(rng.random(n) < 0.3, np.nan, price + 5)
    seats = pd.DataFrame(
        {
            "line_id": pd.array([f"L{i}" for i in range(n)], dtype="string"),
            "order_id": pd.array([f"O{o}" for o in orders], dtype="string"),
            "customer_id": pd.array([f"C{o % 97}" for o in orders], dtype="string"),
            "purchase_time": pd.to_datetime(rng.integers(0, 90, n), unit="D"),
            "item_type": pd.array(["ticket"] * n, dtype="string"),
            "performance_id": pd.array([f"P{p}" for p in rng.integers(0, 8, n)], dtype="string"),
            "price_band": pd.array(["A"] * n, dtype="string"),
            "ticket_type": pd.array(["Standard"] * n, dtype="string"),
            "quantity": np.ones(n, dtype=np.int64),
            "paid_amount": price,
            "list_price": listed,
            "discount": np.zeros(n),
            "is_comp": np.zeros(n, dtype=bool),
            "plan_id": pd.array([f"PL{p}" for p in rng.integers(0, 3, n)], dtype="string"),
        },
        index=rng.permutation(n) + 5,
    )
    own = seats.sample(40, random_state=seed)[["order_id", "customer_id", "plan_id"]]
    for repeated in (False, True):
        got = intake._plan_lines(seats, own, repeated).astype(seats.dtypes.to_dict())
        want = _plan_lines_by_loop(seats, own, repeated).astype(seats.dtypes.to_dict())
        assert len(got) > 50
        # amounts may differ in the last bit: groupby sums with compensated addition
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-13, atol=0)
