"""The spool: rows on local disk, in order, while the database cannot take them.

One private directory (owned by this user, writable by nobody else: anything else is refused).
Each writer has its files there, named <prefix>-<pid>-<n>.<seq>.jsonl, replayed in seq order:
    .0.<k>  orphan files of dead writers, claimed by this one (renamed: only one writer wins)
    .1      the head: what was in memory when the writer stopped (at exit)
    .2      the tail: records that did not fit in memory, appended as they come
A file starts with a fixed-size header that holds how far it has been written to the database
(rewritten in place after each committed batch), then one JSON row per line. Files are opened
without following symlinks, created 0600, and only files of this user whose writer process is gone
are adopted. Like every descriptor Python opens, theirs are not inherited by child processes.
"""
import errno
import itertools
import os
import re
import stat

from . import rows

HEADER = b"#applogs-spool v1 done=%016d\n"
HEADER_LEN = len(HEADER % 0)
HEAD, TAIL = "1", "2"

# Free disk is looked at again after this many bytes appended.
_DISK_CHECK_BYTES = 1 << 20

_numbers = itertools.count(1)
# Writers of this process that are alive: their files are not orphans.
_live_tokens = set()


class SpoolRefused(Exception):
    """The spool directory or file is not safe (or not usable); the message says why."""


def open_private_dir(path):
    """A descriptor of path, created 0700 if missing; refused unless it is a real directory
    owned by this user that no one else can write to."""
    path = os.path.abspath(path)
    try:
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o700)
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and os.path.islink(path)):
            raise SpoolRefused("%s is a symlink" % path)
        raise SpoolRefused("%s: %s" % (path, exc.strerror or exc))
    st = os.fstat(fd)  # a directory: O_DIRECTORY refuses anything else
    problem = None
    if st.st_uid != os.geteuid():
        problem = "owned by uid %d, not by this process's user (uid %d)" % (st.st_uid, os.geteuid())
    elif st.st_mode & 0o022:
        problem = "writable by others (mode %o)" % stat.S_IMODE(st.st_mode)
    if problem:
        os.close(fd)
        raise SpoolRefused("%s is %s" % (path, problem))
    return fd


class SpoolFile:
    """One spool file opened for replay: rows in batches from where the database left off."""

    def __init__(self, spool, name, adopt=False):
        self.spool = spool
        self.name = name
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW, dir_fd=spool.dirfd)
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or (adopt and st.st_nlink != 1)):
            os.close(fd)
            raise SpoolRefused("%s is not a spool file of this user" % name)
        self.fd = fd
        self.reader = os.fdopen(os.dup(fd), "rb")
        head = os.pread(fd, HEADER_LEN, 0)
        if head.startswith(b"#applogs-spool v1 done="):
            self.has_header = True
            self.done = max(HEADER_LEN, int(head[23:39]))
        else:  # written by an older version: plain JSON lines, nothing committed
            self.has_header = False
            self.done = 0
        self.pos = self.done

    def read(self, max_rows, max_chars, end=None):
        """(rows, ends, skipped): up to max_rows rows (and about max_chars) from the read
        position up to offset end; ends[i] is the offset just past row i, skipped the offsets
        just past lines that are not rows (a torn last line, or not a row at all)."""
        self.reader.seek(self.pos)
        got, ends, skipped, chars = [], [], [], 0
        pos = self.pos
        while len(got) < max_rows and chars < max_chars and (end is None or pos < end):
            line = self.reader.readline()
            if not line:
                break
            pos += len(line)
            try:
                row = rows.from_json(line)
            except Exception:  # a torn last line, or something that is not a row at all
                skipped.append(pos)
                continue
            got.append(row)
            ends.append(pos)
            chars += len(line)
        self.pos = pos
        return got, ends, skipped

    def commit(self, offset):
        """Rows before offset are in the database: a later replay starts after them."""
        self.done = self.pos = max(self.done, offset)
        if self.has_header:
            os.pwrite(self.fd, HEADER % self.done, 0)

    def rewind(self):
        """After a failed write: read again from what is committed."""
        self.pos = self.done

    def size(self):
        return os.fstat(self.fd).st_size

    def close(self):
        for close in (self.reader.close, lambda: os.close(self.fd)):
            try:
                close()
            except OSError:
                pass

    def remove(self):
        self.close()
        try:
            os.unlink(self.name, dir_fd=self.spool.dirfd)
        except OSError:
            pass


class Spool:
    """This writer's files in the spool directory. Not thread-safe: the writer serialises it."""

    def __init__(self, path, prefix, max_bytes, min_free):
        self.path = path
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.min_free = min_free
        self.token = "%d-%d" % (os.getpid(), next(_numbers))
        self.dirfd = None
        self.error = None  # why the spool is unusable (refused directory), once known
        self.tail = None  # buffered appender of the tail file
        self.tail_bytes = 0
        self.bytes = 0  # bytes in this writer's files
        self.claims = 0
        self.disk_ok = True
        self.disk_checked_at = None

    def name(self, seq):
        return "%s-%s.%s.jsonl" % (self.prefix, self.token, seq)

    def open(self):
        """True when usable; the first failure is kept in error (and stays)."""
        if self.dirfd is None and self.error is None:
            try:
                self.dirfd = open_private_dir(self.path)
                _live_tokens.add(self.token)
            except SpoolRefused as exc:
                self.error = str(exc)
        return self.dirfd is not None

    def _room(self, n):
        if self.bytes + n > self.max_bytes:
            return False
        if self.disk_checked_at is None or self.bytes - self.disk_checked_at >= _DISK_CHECK_BYTES:
            self.disk_checked_at = self.bytes
            try:
                st = os.statvfs(self.dirfd)
                self.disk_ok = st.f_bavail * st.f_frsize - n >= self.min_free
            except OSError:
                self.disk_ok = False
        return self.disk_ok

    def _create(self, seq):
        fd = os.open(self.name(seq), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
                     | os.O_NOFOLLOW, 0o600, dir_fd=self.dirfd)
        # Unbuffered: a line is in the file (and survives a crash of the process) once
        # append() returns; one write call costs about as much as encoding the row.
        f = os.fdopen(fd, "ab", 0)
        f.write(HEADER % HEADER_LEN)
        self.bytes += HEADER_LEN
        return f

    def append(self, line):
        """Append one JSON row line to the tail; False (nothing written) when there is no room
        or the file cannot be written. Raises nothing."""
        if not self.open() or not self._room(len(line)):
            return False
        try:
            if self.tail is None:
                self.tail = self._create(TAIL)
                self.tail_bytes = HEADER_LEN
            written = self.tail.write(line)
            if written != len(line):  # disk full in the middle of the line: cut it off
                os.ftruncate(self.tail.fileno(), self.tail_bytes)
                raise OSError(errno.ENOSPC, "short write")
        except (OSError, ValueError) as exc:
            self.error = self.error or "%s: %s" % (self.name(TAIL), getattr(exc, "strerror", None) or exc)
            return False
        self.tail_bytes += len(line)
        self.bytes += len(line)
        return True

    def tail_end(self):
        """The tail's size (0: no tail)."""
        return self.tail_bytes if self.tail is not None else 0

    def open_tail(self):
        return SpoolFile(self, self.name(TAIL))

    def drop_tail(self, reader):
        """The tail is written to the database completely: remove it."""
        try:
            self.tail.close()
        except (OSError, ValueError):
            pass
        self.tail = None
        self.bytes -= self.tail_bytes
        self.tail_bytes = 0
        reader.remove()

    def write_head(self, lines):
        """At exit: what is in memory, before the tail. Returns how many lines were written."""
        if not lines or not self.open():
            return 0
        n = 0
        try:
            f = self._create(HEAD)
            with f:
                for line in lines:
                    if not self._room(len(line)):
                        break
                    f.write(line)
                    self.bytes += len(line)
                    n += 1
        except OSError as exc:
            self.error = self.error or "%s: %s" % (self.name(HEAD), exc.strerror or exc)
            return 0
        return n

    def close(self):
        if self.tail is not None:
            try:
                self.tail.close()
            except (OSError, ValueError):
                pass
            self.tail = None
        _live_tokens.discard(self.token)

    def claim_orphans(self):
        """Spool files of writers that are gone (same user, process no longer running), renamed
        to this writer, oldest writer first: a list of SpoolFile to replay in order."""
        if not self.open():
            return []
        pattern = re.compile(r"^%s-(\d+)(?:-(\d+))?((?:\.\d+)*)\.jsonl$" % re.escape(self.prefix))
        found = []
        for name in os.listdir(self.dirfd):
            m = pattern.match(name)
            if not m:
                continue
            pid = int(m.group(1))
            token = "%d-%s" % (pid, m.group(2)) if m.group(2) else None
            if token in _live_tokens or (pid != os.getpid() and _pid_alive(pid)):
                continue
            if pid == os.getpid() and token is None:
                continue
            seq = tuple(int(x) for x in m.group(3).split(".") if x)
            found.append(((pid, int(m.group(2) or 0)) + seq, name))
        claimed = []
        for _, name in sorted(found):
            self.claims += 1
            new = self.name("0.%d" % self.claims)
            try:
                st = os.stat(name, dir_fd=self.dirfd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
                    continue  # planted by someone else: never replayed as our records
                os.rename(name, new, src_dir_fd=self.dirfd, dst_dir_fd=self.dirfd)  # one winner
                claimed.append(SpoolFile(self, new, adopt=True))
            except (OSError, SpoolRefused):
                continue
        return claimed


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True

