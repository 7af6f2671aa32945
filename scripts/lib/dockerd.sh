#!/usr/bin/env bash
# Start the project's own Docker engine, idempotently.
#   source scripts/lib/dockerd.sh && applogs_dockerd_start
# or run it: scripts/lib/dockerd.sh [start|stop|status]
# The engine uses its own data root, pidfile and log (override with the variables below), so it does
# not touch a docker the machine may already run elsewhere. A no-op when `docker info` already works.
# Needs the Debian package docker.io (dockerd, containerd, runc) and a docker CLI.

APPLOGS_DOCKER_ROOT="${APPLOGS_DOCKER_ROOT:-/var/lib/applogs-docker}"
APPLOGS_DOCKER_PIDFILE="${APPLOGS_DOCKER_PIDFILE:-/run/applogs-dockerd.pid}"
APPLOGS_DOCKER_LOG="${APPLOGS_DOCKER_LOG:-/var/log/applogs-dockerd.log}"

applogs_dockerd_start() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "dockerd.sh: docker is not running and starting it needs root" >&2
        return 1
    fi
    command -v dockerd >/dev/null || { echo "dockerd.sh: dockerd missing (apt-get install docker.io)" >&2; return 1; }
    # A stale pidfile from a killed engine would make dockerd refuse to start.
    if [ -f "$APPLOGS_DOCKER_PIDFILE" ]; then
        local old
        old="$(cat "$APPLOGS_DOCKER_PIDFILE" 2>/dev/null)"
        if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
            echo "dockerd.sh: dockerd (pid $old) runs but docker info fails; waiting" >&2
        else
            rm -f "$APPLOGS_DOCKER_PIDFILE"
        fi
    fi
    if [ ! -f "$APPLOGS_DOCKER_PIDFILE" ]; then
        mkdir -p "$APPLOGS_DOCKER_ROOT" "$(dirname "$APPLOGS_DOCKER_LOG")"
        echo "dockerd.sh: starting dockerd (data root $APPLOGS_DOCKER_ROOT, log $APPLOGS_DOCKER_LOG)" >&2
        # setsid: the engine outlives the script that started it (a test run, the demo); the
        # subshell: it is not a job of that script, whose `wait` and job count must not see it.
        (setsid dockerd --data-root "$APPLOGS_DOCKER_ROOT" --pidfile "$APPLOGS_DOCKER_PIDFILE" \
            >>"$APPLOGS_DOCKER_LOG" 2>&1 </dev/null &)
    fi
    local i
    for i in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "dockerd.sh: docker did not come up in 30 s; last lines of $APPLOGS_DOCKER_LOG:" >&2
    tail -n 30 "$APPLOGS_DOCKER_LOG" >&2
    return 1
}

applogs_dockerd_stop() {
    local pid
    pid="$(cat "$APPLOGS_DOCKER_PIDFILE" 2>/dev/null)" || return 0
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    local i
    for i in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    echo "dockerd.sh: dockerd (pid $pid) still running after 20 s" >&2
    return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-start}" in
        start) applogs_dockerd_start ;;
        stop) applogs_dockerd_stop ;;
        status) docker info >/dev/null 2>&1 && echo running || { echo stopped; exit 1; } ;;
        *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
    esac
fi
