#!/usr/bin/env bash
# Molecule's dependency step, offline: Galaxy is not reachable, the collections the role and the
# scenarios use come with the `ansible` package. Fail early, naming any that is missing.
set -euo pipefail
missing=0
for c in community.docker community.postgresql community.general ansible.posix; do
    if ! ansible-galaxy collection list "$c" 2>/dev/null | grep -q "^$c "; then
        echo "missing collection: $c (pip install -r requirements-dev.txt)" >&2
        missing=1
    fi
done
exit "$missing"
