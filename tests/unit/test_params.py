import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.params import (
    MAX_BODY_BYTES,
    RequestParams,
    parse_client_key,
    parse_flag,
    parse_id,
    parse_int,
    parse_name,
    parse_text,
)

UID = "2e86f3d2-9705-4acb-b1c7-980e5bb05ada"


def from_parts(query=None, body=b"", content_type=None):
    return RequestParams.from_request(query or {}, body, content_type)


def test_query_json_and_form_parameters_are_merged():
    p = from_parts({"user_id": [UID]}, json.dumps({"group_id": UID, "to_be_added": 1}).encode(), "application/json")
    assert p.id("user_id") == UID and p.id("group_id") == UID and p.flag("to_be_added") is True
    p = from_parts({}, b"to_block=0&message_text=a+b%26c", "application/x-www-form-urlencoded")
    assert p.flag("to_block") is False and p.message_text() == "a b&c"


def test_the_same_value_twice_is_accepted_and_different_values_are_a_bad_request():
    assert from_parts({"to_block": ["1", "1"]}).flag("to_block") is True
    assert from_parts({"to_block": ["1"]}, b'{"to_block": 1}', "application/json").flag("to_block") is True
    with pytest.raises(BadRequest, match="to_block"):
        from_parts({"to_block": ["1", "0"]}).flag("to_block")
    with pytest.raises(BadRequest, match="limit"):
        from_parts({"limit": ["5"]}, b'{"limit": 6}', "application/json").optional_int("limit", 1, 1000)


def test_a_missing_required_parameter_is_named():
    with pytest.raises(BadRequest, match="user_name: is required"):
        from_parts().name("user_name", 64)


@pytest.mark.parametrize("body, problem", [(b"[1]", "JSON object"), (b"{", "valid JSON"), (b"\xff", "UTF-8")])
def test_a_body_that_is_not_a_json_object_is_a_bad_request_naming_the_body(body, problem):
    with pytest.raises(BadRequest, match=problem) as err:
        from_parts({}, body, "application/json")
    assert err.value.parameter == "body"


def test_a_body_over_64_kib_is_payload_too_large():
    with pytest.raises(PayloadTooLarge):
        from_parts({}, b"x" * (MAX_BODY_BYTES + 1), "application/x-www-form-urlencoded")


def test_an_unsupported_content_type_is_refused():
    with pytest.raises(UnsupportedMediaType):
        from_parts({}, b"hello", "text/plain")


@pytest.mark.parametrize("value", [None, 1, ["x"], {"a": 1}, True])
def test_a_json_value_that_is_not_a_string_is_refused_for_text(value):
    p = from_parts({}, json.dumps({"user_name": value}).encode(), "application/json")
    with pytest.raises(BadRequest, match="user_name"):
        p.name("user_name", 64)


def test_ids_are_uuids_normalised_to_lower_case():
    assert parse_id("user_id", UID.upper()) == UID
    for bad in ["1", "abc", UID + "0", "{" + UID + "}", UID.replace("-", "")]:
        with pytest.raises(BadRequest, match="user_id"):
            parse_id("user_id", bad)


def test_flags_are_one_or_zero():
    assert parse_flag("f", "1") is True and parse_flag("f", 0) is False and parse_flag("f", True) is True
    for bad in ["2", "yes", "", 1.0, 2, None]:
        with pytest.raises(BadRequest, match="f: must be 1 or 0"):
            parse_flag("f", bad)


def test_integers_are_checked_against_their_range():
    assert parse_int("limit", "1000", 1, 1000) == 1000
    for bad in ["0", "1001", "-1", "1.5", "", "x", True, 2.0, "1" * 30]:
        with pytest.raises(BadRequest, match="limit"):
            parse_int("limit", bad, 1, 1000)


def test_text_limits_count_characters_and_keep_the_text_exactly():
    assert parse_text("message_text", "😀" * 4096, 4096) == "😀" * 4096
    assert parse_text("message_text", "a\r\n\tb", 4096) == "a\r\n\tb"
    for bad in ["", "x" * 4097, "a\x00b", "bell\x07", "\x1b[31m", "\x85", "\ud800"]:
        with pytest.raises(BadRequest, match="message_text"):
            parse_text("message_text", bad, 4096)


def test_names_must_not_be_blank():
    assert parse_name("user_name", " shir ", 64) == " shir "
    with pytest.raises(BadRequest, match="user_name: must not be blank"):
        parse_name("user_name", "  \t", 64)


def test_client_keys_are_printable_ascii_without_spaces():
    assert parse_client_key("client_message_id", "a" * 64) == "a" * 64
    for bad in ["", "a b", "a" * 65, "é", "tab\t"]:
        with pytest.raises(BadRequest, match="client_message_id"):
            parse_client_key("client_message_id", bad)


def test_the_idempotency_header_and_parameter_must_agree():
    p = from_parts({"client_message_id": ["k1"]})
    assert p.client_message_id("k1") == "k1"
    assert from_parts().client_message_id("k2") == "k2"
    with pytest.raises(BadRequest, match="client_message_id"):
        p.client_message_id("k2")


@given(st.dictionaries(st.sampled_from(["user_id", "limit", "to_block", "message_text"]),
                       st.lists(st.text(max_size=8), max_size=3)))
def test_any_query_string_parses_or_fails_with_a_named_bad_request(query):
    p = from_parts(query)
    for name, read in [("user_id", lambda: p.id("user_id")), ("limit", lambda: p.optional_int("limit", 1, 1000)),
                       ("to_block", lambda: p.flag("to_block")), ("message_text", lambda: p.message_text())]:
        try:
            read()
        except BadRequest as err:
            assert err.parameter == name


def test_a_deeply_nested_json_body_is_a_bad_request_not_a_crash():
    with pytest.raises(BadRequest, match="body: is not valid JSON"):
        from_parts({}, b"[" * 5000, "application/json")


def test_a_key_repeated_in_a_json_body_counts_as_the_name_given_twice():
    assert from_parts({}, b'{"to_block": "1", "to_block": 1}', "application/json").flag("to_block") is True
    with pytest.raises(BadRequest, match="to_block: given more than once"):
        from_parts({}, b'{"to_block": "1", "to_block": "0"}', "application/json").flag("to_block")


def test_nan_and_infinity_are_not_json():
    for body in (b'{"limit": NaN}', b'{"limit": Infinity}'):
        with pytest.raises(BadRequest, match="body: is not valid JSON"):
            from_parts({}, body, "application/json")


def test_a_lone_surrogate_is_named_as_such():
    with pytest.raises(BadRequest, match="unpaired surrogate U\\+D800"):
        parse_text("message_text", "a\ud800", 4096)


def test_the_registration_limit_counts_an_ipv4_address_or_a_whole_ipv6_64():
    from chalicelib.usecases.accounts import source_network

    assert source_network("203.0.113.7") == "203.0.113.7"
    assert source_network("2001:db8:1:2:aaaa::1") == source_network("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert source_network("2001:db8:1:3::1") != source_network("2001:db8:1:2::1")
    assert source_network("::ffff:203.0.113.7") == "203.0.113.7"
    assert source_network("unknown") == "unknown"


def test_a_handle_is_ascii_letters_digits_and_underscore_in_any_case_kept_in_lower_case():
    from chalicelib.params import parse_handle

    assert parse_handle("handle", "Shir_B2") == "shir_b2"
    for bad in ("\u212aelvin", "shïr", "2shir", "sh", "a" * 33, "has-dash", "has space"):
        with pytest.raises(BadRequest):
            parse_handle("handle", bad)
