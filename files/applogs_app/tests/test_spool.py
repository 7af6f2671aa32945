"""The spool on a temporary directory, through its public methods (no database involved)."""
import errno
import fcntl
import json
import os
import resource
import signal
import stat
import subprocess
import time

import pytest

from applogs import rows
from applogs.spool import HEADER, HEADER_LEN, Spool, SpoolFile, SpoolRefused


def row(i, pid=1):
    return (time.time(), 20, "applogs.tests.spool", "m", "f", 1, "spooled %d" % i, "", "", "", "",
            "h", pid, None)


def line(i):
    """A spool line of a fixed length."""
    return rows.to_json((1785542400.25,) + row(i)[1:])


def orphan(tmp_path, name, *messages, pid=4194305):
    """A spool file of another writer, named `name` (without its prefix)."""
    d = tmp_path / "spool"
    d.mkdir(mode=0o700, exist_ok=True)
    r = row(0, pid=pid)
    text = "".join(json.dumps(r[:6] + (m,) + r[7:]) + "\n" for m in messages)
    (d / ("applogs-test-0123456789-" + name)).write_text(text)
    return text


def messages(files):
    return [r[rows.MESSAGE] for f in files for r in replay_all(f)[0]]


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
    planted = ["applogs-test-0123456789-4194305-1.2.jsonl", "applogs-test-0123456789-4194306-1.2.jsonl"]
    for name in ("linked", "hardlinked"):
        (tmp_path / name).write_text(json.dumps(row(0)) + "\n")
    os.symlink(str(tmp_path / "linked"), str(d / planted[0]))
    os.link(str(tmp_path / "hardlinked"), str(d / planted[1]))
    orphan(tmp_path, "4194307-1.2.jsonl", "a real one")  # after the planted ones in replay order
    assert messages(spool.claim_orphans()) == ["a real one"]
    assert set(planted) <= set(os.listdir(str(d)))  # left as they are


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
    # A live process's file among dead ones (2**22 and above is beyond Linux's largest pid).
    orphan(tmp_path, "%d-1.2.jsonl" % os.getppid(), "alive", pid=os.getppid())
    for pid in range(4194305, 4194310):
        orphan(tmp_path, "%d-1.2.jsonl" % pid, "spooled 0", pid=pid)
    first = make(tmp_path)
    assert len(first.claim_orphans()) == 5
    first.close()  # the claimer dies before replaying: the next writer claims its files again
    again = make(tmp_path).claim_orphans()
    got = [r[rows.PROCESS] for f in again for r in replay_all(f)[0]]
    assert got == list(range(4194305, 4194310))


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_a_spool_path_that_is_not_a_directory_is_refused(tmp_path, kind):
    # A FIFO planted there must not hang the writer: opening one for reading waits for a writer.
    path = tmp_path / "spool"
    if kind == "file":
        path.write_text("")
    else:
        os.mkfifo(str(path))
    spool = make(tmp_path)
    assert spool.append(rows.to_json(row(0))) is False
    assert spool.error == "%s: %s" % (path, os.strerror(errno.ENOTDIR))


def test_a_directory_others_can_read_but_not_write_is_used(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    os.chmod(str(d), 0o755)
    spool = make(tmp_path)
    assert spool.append(rows.to_json(row(0)))
    assert spool.error is None


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_spool_file_of_another_user_is_refused(tmp_path):
    spool = make(tmp_path)
    assert spool.open()
    name = "applogs-test-0123456789-4194305-1.2.jsonl"
    orphan(tmp_path, "4194305-1.2.jsonl", "theirs")
    os.chown(str(tmp_path / "spool" / name), 65534, 65534)
    with pytest.raises(SpoolRefused, match="^%s is not a spool file of this user$" % name):
        SpoolFile(spool, name)
    assert spool.claim_orphans() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_a_directory_of_another_user_is_refused(tmp_path):
    d = tmp_path / "spool"
    d.mkdir(mode=0o700)
    os.chown(str(d), 65534, 65534)
    spool = make(tmp_path)
    assert spool.append(rows.to_json(row(0))) is False
    assert spool.error == "%s is owned by uid 65534, not by this process's user (uid 0)" % d


def test_a_live_writer_of_this_process_keeps_its_files(tmp_path):
    live = make(tmp_path)
    assert live.append(line(0))
    assert make(tmp_path).claim_orphans() == []
    live.close()
    assert messages(make(tmp_path).claim_orphans()) == ["spooled 0"]


def test_files_of_a_live_process_are_left_and_the_process_is_not_signalled(tmp_path):
    # SIGHUP's default action (a caller under nohup would pass it on ignored): a stray signal ends it.
    child = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        orphan(tmp_path, "%d-1.2.jsonl" % child.pid, "alive", pid=child.pid)
        assert make(tmp_path).claim_orphans() == []
    finally:
        child.terminate()
        child.wait()
    # Ended by this SIGTERM: a signal sent before it (and still pending) would have come first.
    assert child.returncode == -signal.SIGTERM


def test_files_named_by_the_older_version_are_adopted_once_their_writer_is_gone(tmp_path):
    # Names without a writer token: <prefix>-<pid>.<seq>.jsonl. This process's own pid with such a
    # name is an older process's (the pid was reused), never this one's.
    orphan(tmp_path, "4194305.2.jsonl", "old tail")
    orphan(tmp_path, "4194305.1.jsonl", "old head")
    orphan(tmp_path, "%d.2.jsonl" % os.getpid(), "pid reused")
    for pid in range(4194306, 4194310):
        orphan(tmp_path, "%d-1.2.jsonl" % pid, "new %d" % pid, pid=pid)
    got = messages(make(tmp_path).claim_orphans())
    assert got == ["old head", "old tail"] + ["new %d" % pid for pid in range(4194306, 4194310)]


def test_files_of_two_writers_of_a_dead_process_are_replayed_writer_by_writer(tmp_path):
    for n in (2, 1):
        for seq in (2, 1):
            orphan(tmp_path, "4194305-%d.%d.jsonl" % (n, seq), "writer %d file %d" % (n, seq))
    assert messages(make(tmp_path).claim_orphans()) == [
        "writer 1 file 1", "writer 1 file 2", "writer 2 file 1", "writer 2 file 2"]


def test_a_file_of_the_older_version_is_never_written_to(tmp_path):
    # It has no header to keep the committed position in.
    text = orphan(tmp_path, "4194305.2.jsonl", "a", "b", "c")
    (f,) = make(tmp_path).claim_orphans()
    _, ends, _ = f.read(1, 1 << 20)
    f.commit(ends[0])
    f.close()
    assert (tmp_path / "spool" / f.name).read_text() == text


def test_a_read_stops_at_its_end_offset_and_at_about_its_size_bound(tmp_path):
    spool = make(tmp_path)
    for i in range(6):
        assert spool.append(line(i))
    f = spool.open_tail()
    got, ends, _ = f.read(10, 1 << 20, end=HEADER_LEN + 2 * len(line(0)))
    assert [r[rows.MESSAGE] for r in got] == ["spooled 0", "spooled 1"]
    assert ends == [HEADER_LEN + len(line(0)), HEADER_LEN + 2 * len(line(0))]
    got, _, _ = f.read(10, 2 * len(line(0)))
    assert [r[rows.MESSAGE] for r in got] == ["spooled 2", "spooled 3"]


def test_the_head_counts_against_the_byte_cap_with_the_tail(tmp_path):
    spool = make(tmp_path, max_bytes=2 * HEADER_LEN + 3 * len(line(0)))
    assert spool.append(line(0)) and spool.append(line(1))
    assert spool.write_head([line(i) for i in range(3)]) == 1
    alone = make(tmp_path, max_bytes=HEADER_LEN + 2 * len(line(0)))
    assert alone.write_head([line(i) for i in range(3)]) == 2


def test_spool_descriptors_are_not_leaked_or_inherited(tmp_path):
    def descriptors():
        return len(os.listdir("/proc/self/fd"))

    before = descriptors()
    spool = make(tmp_path)
    assert spool.append(line(0))
    assert descriptors() == before + 2  # the directory and the tail
    assert spool.open() and spool.append(line(1))
    f = spool.open_tail()
    f.close()
    assert descriptors() == before + 2
    for fd in (spool.dirfd, spool.tail.fileno()):
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_a_line_cut_short_by_a_full_disk_is_taken_back(tmp_path):
    # The file size limit makes the second line's write stop 10 bytes in, as a full disk would.
    spool = make(tmp_path)
    assert spool.append(line(0))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (HEADER_LEN + len(line(0)) + 10, hard))
    try:
        cut = spool.append(line(1))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert cut is False
    assert spool.error == "%s: short write" % spool.name("2")
    assert spool.append(line(2))
    with open(str(tmp_path / "spool" / spool.name("2")), "rb") as fh:
        assert fh.read() == HEADER % HEADER_LEN + line(0) + line(2)
