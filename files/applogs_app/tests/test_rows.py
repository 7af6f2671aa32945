"""The row type and its COPY encoding, through its public functions (no database involved)."""
import json

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


def test_every_row_counts_at_least_its_overhead_against_the_byte_bound():
    empty = row(message="", traceback="", extra=None)
    assert rows.size(empty) >= rows.ROW_OVERHEAD
    assert rows.size(row(message="x" * 1000)) >= 1000 + rows.ROW_OVERHEAD


def test_line_and_process_numbers_outside_int4_are_written_as_null():
    payload, bad = rows.encode([
        row(lineno=INT4_MAX, process=INT4_MAX),
        row(lineno=INT4_MAX + 1, process=INT4_MAX + 1),
        row(lineno=-1, process=None),
        row(lineno="12", process=7.0),  # not ints: converted the slow way
    ])
    assert bad == []
    got = [(f["lineno"], f["process"]) for f in copy_fields(payload)]
    assert got == [(str(INT4_MAX), str(INT4_MAX)), ("\\N", "\\N"), ("\\N", "\\N"), ("12", "7")]


def test_a_row_that_cannot_be_encoded_is_named_and_the_others_are_kept():
    payload, bad = rows.encode([row(message="a"), row(level="not a level"), row(message="c")])
    assert bad == [1]
    assert [f["message"] for f in copy_fields(payload)] == ["a", "c"]


def test_a_carriage_return_alone_is_escaped():
    # COPY's text format ends a row at a bare carriage return.
    payload, _ = rows.encode([row(message="one\rtwo")])
    assert b"\r" not in payload
    assert copy_fields(payload)[0]["message"] == "one\\rtwo"


def test_a_row_without_extra_writes_an_empty_object():
    payload, _ = rows.encode([row(extra=None), row(message="tab\there", extra=None)])
    assert [f["extra"] for f in copy_fields(payload)] == ["{}", "{}"]
