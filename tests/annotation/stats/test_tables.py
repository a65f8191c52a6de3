"""Long-format rows to reliability and count matrices; the CSV reader's errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotation.stats.tables import (
    count_matrix,
    ratings_from_rows,
    read_long_csv,
    reliability_matrix,
    reliability_matrix_from_values,
    repeat_pairs,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reliability_matrix_places_each_first_judgment_and_nan_elsewhere():
    ratings = ratings_from_rows(units=["u1", "u1", "u2"], raters=["a", "b", "a"], values=["X", "Y", "X"])
    matrix = reliability_matrix(ratings=ratings)
    assert matrix.units == ("u1", "u2") and matrix.raters == ("a", "b") and matrix.categories == ("X", "Y")
    np.testing.assert_array_equal(matrix.codes, [[0, 1], [0, np.nan]])


def test_count_matrix_counts_categories_per_unit_without_repeats():
    ratings = ratings_from_rows(
        units=["u1", "u1", "u1", "u2"],
        raters=["a", "b", "a", "b"],
        values=["X", "Y", "Y", "Y"],
        is_repeat=[False, False, True, False],
    )
    np.testing.assert_array_equal(count_matrix(ratings=ratings).counts, [[1, 1], [0, 1]])
    np.testing.assert_array_equal(count_matrix(ratings=ratings, include_repeats=True).counts, [[1, 2], [0, 1]])


def test_repeat_flag_decides_which_judgment_is_the_first_occasion():
    # The repeat row comes first in the file but is flagged, so the later unflagged row is occasion 0.
    ratings = ratings_from_rows(units=["u1", "u1"], raters=["a", "a"], values=["X", "Y"], is_repeat=[True, False])
    np.testing.assert_array_equal(ratings.occasion, [1, 0])
    assert reliability_matrix(ratings=ratings).codes[0, 0] == 1  # Y
    pairs = repeat_pairs(ratings=ratings)["a"]
    assert pairs.units == ("u1",)
    assert pairs.first.tolist() == [1] and pairs.repeat.tolist() == [0]


def test_unflagged_repeats_keep_file_order():
    ratings = ratings_from_rows(units=["u", "u", "u"], raters=["a", "a", "a"], values=["X", "Y", "X"])
    np.testing.assert_array_equal(ratings.occasion, [0, 1, 2])
    assert repeat_pairs(ratings=ratings)["a"].first.tolist() == [0, 0]


def test_numeric_categories_sort_numerically():
    ratings = ratings_from_rows(units=["u1", "u1", "u1"], raters=["a", "b", "c"], values=[10.0, 2.0, 1.5])
    assert ratings.categories == (1.5, 2.0, 10.0)
    np.testing.assert_array_equal(reliability_matrix(ratings=ratings).values, [[10.0, 2.0, 1.5]])


def test_reliability_matrix_from_values_keeps_missing():
    matrix = reliability_matrix_from_values(values=np.array([[1.0, np.nan], [3.0, 1.0]]))
    assert matrix.categories == (1.0, 3.0)
    np.testing.assert_array_equal(matrix.values, [[1.0, np.nan], [3.0, 1.0]])


def test_read_long_csv_reads_krippendorff_2011_fixture():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers × 12 units, 41 values.
    ratings = read_long_csv(path=FIXTURES / "krippendorff_2011.csv", numeric=True)
    assert ratings.n_judgments == 41
    assert len(ratings.units) == 12 and ratings.raters == ("A", "B", "C", "D")
    assert ratings.categories == (1.0, 2.0, 3.0, 4.0, 5.0)


def test_read_long_csv_custom_columns_repeat_flag_and_extra(tmp_path):
    path = _write(
        tmp_path / "labels.csv", "lat,who,code,is_repeat,rationale\nL1,r1,A,false,consolidation\nL1,r1,B,True,edema\n"
    )
    ratings = read_long_csv(
        path=path, unit_column="lat", rater_column="who", value_column="code", extra_columns=("rationale", "absent")
    )
    assert ratings.occasion.tolist() == [0, 1]
    assert ratings.extra == {"rationale": ("consolidation", "edema")}


def test_read_long_csv_skips_blank_values(tmp_path):
    path = _write(tmp_path / "labels.csv", "latent_id,rater,concept_code\nL1,r1,A\nL1,r2,\n")
    assert read_long_csv(path=path).n_judgments == 1


def test_read_long_csv_names_the_missing_column(tmp_path):
    path = _write(tmp_path / "labels.csv", "latent_id,rater,code\nL1,r1,A\n")
    with pytest.raises(ValueError, match="column 'concept_code' is not in .*latent_id, rater, code"):
        read_long_csv(path=path)


def test_read_long_csv_rejects_an_empty_file(tmp_path):
    with pytest.raises(ValueError, match="is empty"):
        read_long_csv(path=_write(tmp_path / "empty.csv", ""))


def test_read_long_csv_rejects_a_header_without_rows(tmp_path):
    with pytest.raises(ValueError, match="no rows"):
        read_long_csv(path=_write(tmp_path / "header.csv", "latent_id,rater,concept_code\n"))


def test_read_long_csv_reports_the_line_of_a_non_number(tmp_path):
    path = _write(tmp_path / "labels.csv", "latent_id,rater,concept_code\nL1,r1,2\nL1,r2,high\n")
    with pytest.raises(ValueError, match="line 3: concept_code='high' is not a number"):
        read_long_csv(path=path, numeric=True)


def test_read_long_csv_rejects_blank_unit(tmp_path):
    path = _write(tmp_path / "labels.csv", "latent_id,rater,concept_code\n,r1,A\n")
    with pytest.raises(ValueError, match="line 2"):
        read_long_csv(path=path)


def test_ratings_from_rows_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        ratings_from_rows(units=["u"], raters=["a", "b"], values=["X"])


def test_ratings_from_rows_rejects_mixed_value_types():
    with pytest.raises(ValueError, match="all strings or all numbers"):
        ratings_from_rows(units=["u", "u"], raters=["a", "b"], values=["X", 1.0])
