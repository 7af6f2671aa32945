#!/usr/bin/env python3
"""Build the applogs/xlsexport wheels and fetch their third-party wheels on the controller.

Usage: build_wheels.py WHEEL_DIR SOURCE_DIR [SOURCE_DIR ...] -- [REQUIREMENT ...]

Prints a JSON object: normalised distribution name -> {"version", "file", "local"} where "local" is
true for the wheels built from SOURCE_DIRs. Uses the running interpreter's pip. Third-party wheels
are taken from WHEEL_DIR when already there (so a controller without internet works once the cache
is filled) and downloaded from the package index otherwise.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def norm(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def vkey(version):
    return [int(p) if p.isdigit() else p for p in re.split(r"[.+-]", version)]


def pip(*args):
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.returncode, proc.stdout


def main(argv):
    sep = argv.index("--") if "--" in argv else len(argv)
    wheel_dir, sources, reqs = argv[0], argv[1:sep], argv[sep + 1:]
    os.makedirs(wheel_dir, exist_ok=True)
    local = set()
    for src in sources:
        # Rebuild our own wheels every time: drop the old ones of the same distribution first.
        name = None
        with open(os.path.join(src, "pyproject.toml"), encoding="utf-8") as fh:
            m = re.search(r'^name\s*=\s*"([^"]+)"', fh.read(), re.M)
            name = norm(m.group(1))
        for old in glob.glob(os.path.join(wheel_dir, name + "-*.whl")):
            os.unlink(old)
        # Build from a clean copy: no stale build/ or egg-info of the source tree ends up in the wheel,
        # and the source tree is left untouched.
        with tempfile.TemporaryDirectory(prefix="applogs-build.") as tmp:
            copy = os.path.join(tmp, os.path.basename(os.path.abspath(src)))
            shutil.copytree(src, copy, ignore=shutil.ignore_patterns(
                "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache", "tests"))
            rc, out = pip("wheel", "--no-deps", "--find-links", wheel_dir, "--wheel-dir", wheel_dir, copy)
        if rc:
            sys.stderr.write(out)
            sys.exit("pip wheel failed for %s" % src)
        local.add(name)
    if reqs:
        rc, out = pip("download", "--no-index", "--find-links", wheel_dir, "--only-binary=:all:",
                      "--dest", wheel_dir, *reqs)
        if rc:
            rc, out = pip("download", "--only-binary=:all:", "--dest", wheel_dir, *reqs)
            if rc:
                sys.stderr.write(out)
                sys.exit("pip download failed for %s" % " ".join(reqs))
    # Only what was asked for: a reused cache may hold wheels of requirements dropped since.
    wanted = local | {norm(re.match(r"[A-Za-z0-9._-]+", r).group(0)) for r in reqs}
    found = {}
    for path in glob.glob(os.path.join(wheel_dir, "*.whl")):
        fname = os.path.basename(path)
        name, version = fname.split("-")[:2]
        name = norm(name)
        if name not in wanted:
            continue
        if name not in found or vkey(version) > vkey(found[name]["version"]):
            found[name] = {"version": version, "file": path, "local": name in local}
    json.dump(found, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
