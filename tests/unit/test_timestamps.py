from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import BadRequest
from chalicelib.params import parse_timestamp


def ts(text):
    return parse_timestamp("min_timestamp", text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-07-01 09:10:00.0", datetime(2024, 7, 1, 9, 10, 0)),
        ("2024-07-01 09:10:00", datetime(2024, 7, 1, 9, 10, 0)),
        ("2024-07-01 09:10:00.123456", datetime(2024, 7, 1, 9, 10, 0, 123456)),
        ("2024-07-01T09:10:00.5Z", datetime(2024, 7, 1, 9, 10, 0, 500000)),
        ("2024-07-01T09:10:00z", datetime(2024, 7, 1, 9, 10, 0)),
        ("2024-07-01T11:10:00+02:00", datetime(2024, 7, 1, 9, 10, 0)),
        ("2024-07-01T11:10:00+0200", datetime(2024, 7, 1, 9, 10, 0)),
        ("2024-07-01T04:10:00-05", datetime(2024, 7, 1, 9, 10, 0)),
        ("2024-07-01T00:30:00+01:00", datetime(2024, 6, 30, 23, 30, 0)),
        ("2024-07-01", datetime(2024, 7, 1)),
        ("2024-07-01T09:10", datetime(2024, 7, 1, 9, 10)),
    ],
)
def test_accepted_timestamp_forms_mean_the_same_utc_instant(text, expected):
    assert ts(text) == expected


def test_a_plus_that_arrived_as_a_space_is_read_as_plus():
    assert ts("2024-07-01T11:10:00 02:00") == ts("2024-07-01T11:10:00+02:00")


def test_digits_past_the_microsecond_round_up_so_the_bound_stays_inclusive():
    assert ts("2024-07-01 09:10:00.1234561") == datetime(2024, 7, 1, 9, 10, 0, 123457)
    assert ts("2024-07-01 09:10:00.123456000") == datetime(2024, 7, 1, 9, 10, 0, 123456)
    assert ts("2024-12-31 23:59:59.9999999") == datetime(2025, 1, 1)


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2024-13-01 00:00:00", "2024-02-30", "2024-07-01 25:00:00", "2024-07-01 09:60:00",
     "2024-07-01T09:10:00+24:00", "2024/07/01 09:10:00", "1720000000", "2024-07-01 09:10:00.", "0000-01-01",
     "0001-01-01T00:00:00+01:00"],
)
def test_malformed_timestamps_are_a_bad_request_naming_min_timestamp(text):
    with pytest.raises(BadRequest) as err:
        ts(text)
    assert err.value.parameter == "min_timestamp"
    assert "min_timestamp" in err.value.message


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1)))
def test_any_datetime_written_in_the_original_form_parses_back_to_itself(moment):
    assert ts(moment.strftime("%Y-%m-%d %H:%M:%S.%f")) == moment
    assert ts(moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")) == moment


@given(st.text(max_size=40))
def test_arbitrary_text_either_parses_or_is_a_bad_request(text):
    try:
        assert isinstance(ts(text), datetime)
    except BadRequest as err:
        assert err.parameter == "min_timestamp"


@pytest.mark.parametrize("text", ["2024-07-01 ٠٩:١٠", "2024-07-01T09:10:00.١Z", "2024-07-01T09:10:00+٠٢:00",
                                  "٢٠٢٤-07-01"])
def test_digits_of_other_scripts_are_not_timestamps(text):
    with pytest.raises(BadRequest):
        ts(text)
