"""The spool on a temporary directory, through its public methods (no database involved)."""
import errno
import json
import os
import stat
import time

import pytest

from applogs import rows
from applogs.spool import HEADER_LEN, Spool, SpoolFile


def row(i, pid=1):
    return (time.time(), 20, "applogs.tests.spool", "m", "f", 1, "spooled %d" % i, "", "", "", "",
            "h", pid, None)


def make(tmp_path, **kwargs):
    args = dict(max_bytes=1 << 30, min_free=0)
    args.update(kwargs)
    return Spool(str(tmp_path / "spool"), "applogs-test-0123456789", **args)


def replay_all(f):
    got, skipped = [], []
    while True:
        batch, _, bad = f.read(2, 1 << 20)
        if not batch and not bad:
            return got, skipped
        got.extend(batch)
        skipped.extend(bad)
        f.commit(f.pos)


def test_directory_is_created_private_and_files_0600(tmp_path):
    spool = make(tmp_path)
    assert spool.append(rows.to_json(row(0)))
    directory = tmp_path / "spool"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (name,) = os.listdir(str(directory))
    assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600


def test_default_directory_is_in_the_users_own_cache(monkeypatch, tmp_path):
    from applogs import conf

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert conf.default_spool_dir() == str(tmp_path / ".cache" / "applogs" / "spool")


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_directory_others_can_write_is_refused(tmp_path, mode):
    d = tmp_path / "spool"
    d.mkdir()
    os.chmod(str(d), mode)
    spool = make(tmp_path)
    assert spool.append(rows.to_json(row(0))) is False
    assert spool.error == "%s is writable by others (mode %o)" % (d, mode)
    assert spool.write_head([rows.to_json(row(0))]) == 0
    assert os.listdir(str(d)) == []


def test_symlinked_spool_file_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    spool = make(tmp_path)
    assert spool.open()
    os.symlink(str(victim), str(tmp_path / "spool" / spool.name("2")))
    assert spool.append(rows.to_json(row(0))) is False
    assert spool.error == "%s: %s" % (spool.name("2"), os.strerror(errno.EEXIST))
    head = make(tmp_path)
    os.symlink(str(victim), str(tmp_path / "spool" / head.name("1")))
    assert head.write_head([rows.to_json(row(0))]) == 0
    assert head.error == "%s: %s" % (head.name("1"), os.strerror(errno.EEXIST))
    assert victim.read_text() == "untouched\n"


def test_planted_symlink_and_hardlink_orphans_are_not_adopted(tmp_path):
    spool = make(tmp_path)
    assert spool.open()
    d = tmp_path / "spool"
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(row(0)) + "\n")
    os.symlink(str(outside), str(d / "applogs-test-0123456789-4194305-1.2.jsonl"))
    os.link(str(outside), str(d / "applogs-test-0123456789-4194306-1.2.jsonl"))
    assert spool.claim_orphans() == []
    assert len(os.listdir(str(d))) == 2


def test_lines_that_are_not_rows_are_skipped_and_the_rest_is_read(tmp_path):
    spool = make(tmp_path)
    assert spool.open()
    d = tmp_path / "spool"
    lines = [json.dumps(row(0)), "5", "[1, 2]", json.dumps(row(1)), "{not json", '"text"',
             json.dumps(list(row(2)[:-1]) + [{"not": "text"}]), json.dumps(row(3)), '{"torn": ']
    (d / "applogs-test-0123456789-4194305-1.1.jsonl").write_text("\n".join(lines))
    (orphan,) = spool.claim_orphans()
    got, skipped = replay_all(orphan)
    assert [r[rows.MESSAGE] for r in got] == ["spooled 0", "spooled 1", "spooled 3"]
    assert len(skipped) == 6


def test_committed_position_survives_reopening(tmp_path):
    spool = make(tmp_path)
    for i in range(5):
        assert spool.append(rows.to_json(row(i)))
    f = spool.open_tail()
    batch, ends, _ = f.read(2, 1 << 20)
    assert [r[rows.MESSAGE] for r in batch] == ["spooled 0", "spooled 1"]
    f.commit(ends[-1])
    f.read(2, 1 << 20)  # read, never committed (the write failed)
    f.close()
    again = SpoolFile(spool, spool.name("2"))
    got, _ = replay_all(again)
    assert [r[rows.MESSAGE] for r in got] == ["spooled 2", "spooled 3", "spooled 4"]


def test_byte_cap_and_free_disk_floor(tmp_path):
    line = rows.to_json(row(0))
    capped = make(tmp_path, max_bytes=HEADER_LEN + 3 * len(line))
    assert [capped.append(line) for _ in range(5)] == [True, True, True, False, False]
    # Its header counts too; a tail written to the database gives its room back.
    tight = make(tmp_path, max_bytes=HEADER_LEN + 3 * len(line) - 1)
    assert [tight.append(line) for _ in range(3)] == [True, True, False]
    f = capped.open_tail()
    replay_all(f)
    capped.drop_tail(f)
    assert capped.append(line)
    floor = Spool(str(tmp_path / "other"), "p", max_bytes=1 << 30, min_free=1 << 62)
    assert floor.append(line) is False



def test_missing_parent_directories_are_created_private(tmp_path):
    spool = Spool(str(tmp_path / "cache" / "spool"), "p", max_bytes=1 << 30, min_free=0)
    assert spool.append(rows.to_json(row(0)))
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_symlinked_spool_directory_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "spool").symlink_to(target)
    spool = make(tmp_path)
    assert spool.append(rows.to_json(row(0))) is False
    assert spool.error == "%s is a symlink" % (tmp_path / "spool")
    assert os.listdir(str(target)) == []


def test_files_of_a_writer_that_is_gone_are_adopted_head_first(tmp_path):
    # What the writer held in memory at exit (the head) is older than its tail: the next writer
    # replays the head first.
    gone = make(tmp_path)
    for i in (2, 3):
        assert gone.append(rows.to_json(row(i)))
    assert gone.write_head([rows.to_json(row(i)) for i in (0, 1)]) == 2
    gone.close()
    claimed = make(tmp_path).claim_orphans()
    got = []
    for f in claimed:
        got.extend(replay_all(f)[0])
    assert [r[rows.MESSAGE] for r in got] == ["spooled 0", "spooled 1", "spooled 2", "spooled 3"]


def test_head_lines_are_written_in_order_or_not_at_all(tmp_path):
    small, big = rows.to_json(row(0)), rows.to_json(row(1)[:6] + ("x" * 500,) + row(1)[7:])
    spool = make(tmp_path, max_bytes=HEADER_LEN + len(small) + 100)
    assert spool.write_head([big, small]) == 0  # never the later line without the earlier one
    assert spool.write_head([]) == 0


def test_every_orphan_is_claimed_and_a_claim_survives_its_claimer(tmp_path):
    d = tmp_path / "spool"
    d.mkdir(mode=0o700)
    # A live process's file among dead ones (2**22 and above is beyond Linux's largest pid).
    (d / ("applogs-test-0123456789-%d-1.2.jsonl" % os.getppid())).write_text(json.dumps(row(9)) + "\n")
    for pid in range(4194305, 4194310):
        (d / ("applogs-test-0123456789-%d-1.2.jsonl" % pid)).write_text(json.dumps(row(0, pid=pid)) + "\n")
    first = make(tmp_path)
    assert len(first.claim_orphans()) == 5
    first.close()  # the claimer dies before replaying: the next writer claims its files again
    again = make(tmp_path).claim_orphans()
    got = [r[rows.PROCESS] for f in again for r in replay_all(f)[0]]
    assert got == list(range(4194305, 4194310))
