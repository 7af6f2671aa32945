"""The row type and its COPY encoding, through its public functions (no database involved)."""
import json

import pytest

from applogs import rows

INT4_MAX = 2147483647


def row(**fields):
    values = dict(created=1785542400.25, level=20, logger="api", module="m", func="f", lineno=1,
                  message="msg", traceback="", ip="10.0.0.1", user="--", request_id="", host="h",
                  process=42, extra=None)
    values.update(fields)
    return tuple(values[name] for name in rows.COLUMNS)


def copy_fields(payload):
    """The fields of each COPY line, by column name."""
    lines = payload.decode("utf-8").split("\n")
    assert lines[-1] == ""
    return [dict(zip(rows.COPY_COLUMNS, line.split("\t"))) for line in lines[:-1]]


def test_extra_up_to_its_limit_is_kept_as_is():
    extra = json.dumps({"k": "v" * 20})
    assert rows.truncate_extra(extra, len(extra)) == extra


def test_extra_over_its_limit_keeps_its_beginning_readable():
    extra = json.dumps({"заказ": "я" * 50}, ensure_ascii=False)
    out = rows.truncate_extra(extra, 20)
    assert json.loads(out) == {"applogs_truncated": "%s [truncated by applogs: 20 of %d characters kept]"
                                                    % (extra[:20], len(extra))}
    assert "заказ" in out  # not \u-escaped: the viewer shows it as written


def test_a_row_counts_its_message_traceback_and_extra_plus_the_overhead():
    assert rows.size(row(message="", traceback="", extra=None)) == rows.ROW_OVERHEAD
    assert rows.size(row(message="m" * 10, traceback="t" * 20, extra='{"a": 1}')) \
        == 10 + 20 + 8 + rows.ROW_OVERHEAD


def test_text_up_to_its_limit_is_kept_and_longer_text_says_how_much_was_cut():
    assert rows.truncate("abc", 3) == "abc"
    assert rows.truncate("abcdef", 3) == "abc\n...[truncated by applogs: 3 of 6 characters kept]"


def test_line_and_process_numbers_outside_int4_are_written_as_null():
    payload, bad = rows.encode([
        row(lineno=INT4_MAX, process=INT4_MAX),
        row(lineno=INT4_MAX + 1, process=INT4_MAX + 1),
        row(lineno=-1, process=None),
        row(lineno="12", process=7.0),  # not ints: converted the slow way
        row(lineno="0", process=float(INT4_MAX)),  # the bounds, the slow way
        row(lineno=0, process=0),
    ])
    assert bad == []
    got = [(f["lineno"], f["process"]) for f in copy_fields(payload)]
    assert got == [(str(INT4_MAX), str(INT4_MAX)), ("\\N", "\\N"), ("\\N", "\\N"), ("12", "7"),
                   ("0", str(INT4_MAX)), ("0", "0")]


def test_levels_are_kept_within_smallint():
    payload, _ = rows.encode([row(level=0), row(level=-5), row(level=50), row(level=40000)])
    assert [f["level"] for f in copy_fields(payload)] == ["0", "0", "50", "32767"]


def test_a_row_that_cannot_be_encoded_is_named_and_the_others_are_kept():
    payload, bad = rows.encode([row(message="a"), row(level="not a level"), row(message="c")])
    assert bad == [1]
    assert [f["message"] for f in copy_fields(payload)] == ["a", "c"]


@pytest.mark.parametrize("message, written", [
    ("one\rtwo", "one\\rtwo"),  # COPY's text format ends a row at a bare carriage return
    ("one\ntwo", "one\\ntwo"),
    ("C:\\temp", "C:\\\\temp"),
    ("a\x00b", "ab"),  # PostgreSQL refuses NUL in text
    ("tab\there", "tab\\there"),
])
def test_a_single_special_character_is_escaped(message, written):
    # Each alone in an otherwise plain row: the check that sends a row down the escaping path
    # must see every one of them.
    payload, _ = rows.encode([row(message=message)])
    assert copy_fields(payload)[0]["message"] == written


def test_a_row_without_extra_writes_an_empty_object():
    payload, _ = rows.encode([row(extra=None), row(message="tab\there", extra=None)])
    assert [f["extra"] for f in copy_fields(payload)] == ["{}", "{}"]


def test_record_times_are_written_to_the_microsecond_in_utc():
    assert rows.timestamp(1785542400.25) == "2026-08-01 00:00:00.250000+00"
    assert rows.timestamp(1785542400.999) == "2026-08-01 00:00:00.999000+00"
    # A fraction that rounds up to a whole second stays within its second.
    assert rows.timestamp(1785542400.9999997) == "2026-08-01 00:00:00.999999+00"
    payload, _ = rows.encode([row(created=1785542400.5), row(created=1785542401.5)])
    assert [f["created"] for f in copy_fields(payload)] == [
        "2026-08-01 00:00:00.500000+00", "2026-08-01 00:00:01.500000+00"]


def test_text_is_cleaned_as_the_table_holds_it():
    assert rows.clean("a\x00b") == "ab"
    assert rows.clean("a\ud800b") == "a?b"


def test_a_spool_line_gives_back_the_row_it_was_made_of():
    r = row(message="заказ №1 \u2028", extra='{"k": "ü"}')
    line = rows.to_json(r)
    assert line.endswith(b"\n")
    assert rows.from_json(line) == r


def test_a_spool_line_with_bytes_that_are_not_utf8_is_read_with_replacements():
    line = json.dumps(list(row(message="cafe"))).encode("ascii").replace(b"cafe", b"caf\xff")
    assert rows.from_json(line)[rows.MESSAGE] == "caf\ufffd"


@pytest.mark.parametrize("line", [
    b"5\n",
    json.dumps(list(row())[:-1]).encode(),  # a column short
    json.dumps(list(row(level=True))).encode(),  # a bool is not a level
    json.dumps(list(row(logger=None))).encode(),
])
def test_a_spool_line_that_is_not_a_row_is_refused(line):
    with pytest.raises(ValueError, match="^not a row$"):
        rows.from_json(line)
