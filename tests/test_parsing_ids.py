"""Ids written as plain whole numbers are looked up as numbers, with the same answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from playbook import parsing


def _arrow(values: list[str | None]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, pa.large_string())])


def test_decimal_ids_only_for_plain_numbers() -> None:
    assert parsing.decimal_ids(_arrow(["1", "0", "10", None])).tolist() == [1, 0, 10, -1]
    assert parsing.decimal_ids(_arrow(["123456789012345678"])).tolist() == [123456789012345678]
    for odd in (
        "007",
        "+5",
        "-5",
        "0x10",
        " 5",
        "5 ",
        "",
        "1e3",
        "5.0",
        "٣",
        "1234567890123456789",
    ):
        assert parsing.decimal_ids(_arrow(["12", odd])) is None, odd
    assert parsing.decimal_ids(_arrow([None, None])) is None


@pytest.mark.parametrize("seed", range(12))
def test_lookups_by_number_match_arrow(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    spread = [1_000, 10**6, 10**15][seed % 3]
    keys = rng.integers(0, spread, 3_000).astype(str).astype(object)
    values = rng.integers(0, spread, 5_000).astype(str).astype(object)
    if seed % 4 == 1:
        keys[rng.integers(0, len(keys), 20)] = None
    if seed % 4 in (1, 2):
        values[rng.integers(0, len(values), 20)] = None
    values[:50] = keys[:50]  # some hits even when the numbers are spread out
    dtype = ["string", "str"][seed % 2]
    v, k = pd.Series(values, dtype=dtype), pd.Series(keys, dtype=dtype)
    a, m = parsing._arrow_strings(v), parsing._arrow_strings(k)
    want_pos = pc.index_in(a, value_set=m, skip_nulls=False).fill_null(-1).to_numpy(False)
    want_isin = pc.is_in(a, value_set=m, skip_nulls=False).to_numpy(False)
    monkeypatch.setattr(parsing, "_NUMBERS_MIN_ROWS", 0)
    assert (parsing.positions(v, k) == want_pos).all()
    assert (parsing.isin(v, k).to_numpy() == want_isin).all()


@pytest.mark.parametrize("dtype", ["string", "str"])
def test_factorize_by_number_matches_pandas(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "_NUMBERS_MIN_ROWS", 0)
    s = pd.Series(["30", "4", "30", "0", "1000", "4"], dtype=dtype)
    codes, uniques = parsing.factorize(s)
    want_codes, want_uniques = pd.factorize(s)
    assert (codes == want_codes).all()
    pd.testing.assert_index_equal(uniques, want_uniques)
    text = pd.Series(["30", "04", "30"], dtype=dtype)  # "04" is not plain: text is hashed
    pd.testing.assert_index_equal(parsing.factorize(text)[1], pd.factorize(text)[1])


def test_clean_text_still_finds_empty_words_among_long_values() -> None:
    s = pd.Series([" 1234567 ", "NULL", "n/a", "-", "none ", "12345"], dtype="string")
    assert parsing.clean_text(s).isna().tolist() == [False, True, True, True, True, False]
    long_only = pd.Series(["1234567", " 7654321"], dtype="string")
    assert parsing.clean_text(long_only).tolist() == ["1234567", "7654321"]
