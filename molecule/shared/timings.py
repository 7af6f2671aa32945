#!/usr/bin/env python3
"""Tee molecule's output to a log and time each action from molecule's own lines.

    molecule test -s default 2>&1 | python3 molecule/shared/timings.py LOG

Molecule prints `<scenario> ➜ <action>: Executing` (`[<scenario> > <action>] Executing` without colour)
when an action starts and `... Executed: ...`
when it ends; this prints a table of those durations at the end (and appends it to LOG).
"""
import re
import sys
import time

# `default ➜ converge: Executing` (colour) or `[default > converge] Executing` (NO_COLOR)
START = re.compile(r'\[?(\S+) (?:\u279c|>) ([a-z_]+)\]?:? Executing')
END = re.compile(r'\[?(\S+) (?:\u279c|>) ([a-z_]+)\]?:? Executed: (\w+)')
ANSI = re.compile(r'\x1b\[[0-9;]*m')


def main():
    log = open(sys.argv[1], 'w', encoding='utf-8')
    rows, current = [], {}
    for raw in sys.stdin.buffer:
        line = raw.decode('utf-8', 'replace')
        sys.stdout.write(line)
        sys.stdout.flush()
        log.write(line)
        plain = ANSI.sub('', line)
        m = START.search(plain)
        if m:
            current[(m.group(1), m.group(2))] = time.monotonic()
            continue
        m = END.search(plain)
        if m and (m.group(1), m.group(2)) in current:
            t = time.monotonic() - current.pop((m.group(1), m.group(2)))
            rows.append((m.group(1), m.group(2), m.group(3), t))
    table = ['%-10s %-12s %-11s %7.1f s' % r for r in rows]
    out = '\n--- molecule action timings\n' + '\n'.join(table) + '\n'
    sys.stdout.write(out)
    log.write(out)
    log.close()


if __name__ == '__main__':
    main()
