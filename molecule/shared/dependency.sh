#!/usr/bin/env bash
# Molecule's dependency step, offline: Galaxy is not reachable, the collections the role and the
# scenarios use come with the `ansible` package. Fail early, naming any that is missing.
set -euo pipefail
ansible-galaxy collection list --format json 2>/dev/null | python3 -c '
import json, sys
found = {name for path in json.load(sys.stdin).values() for name in path}
need = ["community.docker", "community.postgresql", "community.general", "ansible.posix"]
missing = [c for c in need if c not in found]
for c in missing:
    print("missing collection: %s (pip install -r requirements-dev.txt)" % c, file=sys.stderr)
sys.exit(1 if missing else 0)
'
