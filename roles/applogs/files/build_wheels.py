#!/usr/bin/env python3
"""Build the applogs/xlsexport wheels and fetch their third-party wheels on the controller.

Usage: build_wheels.py WHEEL_DIR SOURCE_DIR [SOURCE_DIR ...] --python X.Y [--python X.Y ...] -- [REQUIREMENT ...]

Prints a JSON object: target Python version "X.Y" -> normalised distribution name ->
{"version", "file", "local"}, where "local" is true for the wheels built from SOURCE_DIRs (pure Python,
one wheel for every target; rebuilt only when their source files changed since the last build).
Third-party wheels are downloaded for each target Python
(`pip download --python-version X.Y --only-binary=:all:`, so pip picks the newest release that still
supports that Python) into WHEEL_DIR/pyX.Y; they are taken from there when already present (a
controller without internet works once the cache is filled). Uses the running interpreter's pip.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename


def pip(*args):
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.returncode, proc.stdout


# What a wheel is built from: the source tree without build output, caches and tests.
_IGNORE = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                 ".pytest_cache", "tests", ".tox", ".nox")


def source_digest(src):
    """sha256 of the files a wheel is built from (their paths and contents)."""
    digest = hashlib.sha256()
    for top, dirs, files in os.walk(src):
        ignored = _IGNORE(top, dirs + files)
        dirs[:] = sorted(d for d in dirs if d not in ignored)
        for name in sorted(f for f in files if f not in ignored):
            path = os.path.join(top, name)
            digest.update(os.path.relpath(path, src).encode("utf-8", "surrogateescape") + b"\0")
            with open(path, "rb") as fh:
                digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()


def build_local(wheel_dir, src):
    """Build one of our apps from a clean copy of SOURCE_DIR, unless the wheel built last time came
    from the same files; return its canonical name."""
    with open(os.path.join(src, "pyproject.toml"), encoding="utf-8") as fh:
        name = canonicalize_name(re.search(r'^name\s*=\s*"([^"]+)"', fh.read(), re.M).group(1))
    prefix = name.replace("-", "_")
    stamp = os.path.join(wheel_dir, prefix + ".source-sha256")
    digest = source_digest(src)
    built = glob.glob(os.path.join(wheel_dir, prefix + "-*.whl"))
    try:
        with open(stamp, encoding="utf-8") as fh:
            if fh.read() == digest and len(built) == 1:
                return name
    except OSError:
        pass
    # Otherwise rebuild: drop the old wheels of the same distribution first.
    for old in built:
        os.unlink(old)
    # A clean copy: no stale build/ or egg-info of the source tree ends up in the wheel, and the
    # source tree is left untouched.
    with tempfile.TemporaryDirectory(prefix="applogs-build.") as tmp:
        copy = os.path.join(tmp, os.path.basename(os.path.abspath(src)))
        shutil.copytree(src, copy, ignore=_IGNORE)
        rc, out = pip("wheel", "--no-deps", "--find-links", wheel_dir, "--wheel-dir", wheel_dir, copy)
    if rc:
        sys.stderr.write(out)
        sys.exit("pip wheel failed for %s" % src)
    with open(stamp, "w", encoding="utf-8") as fh:
        fh.write(digest)
    return name


def download(dest, python, reqs):
    """Third-party wheels for one target Python: from the cache, else from the package index."""
    target = ["--only-binary=:all:", "--python-version", python, "--dest", dest]
    rc, out = pip("download", "--no-index", "--find-links", dest, *target, *reqs)
    if rc:
        rc, out = pip("download", *target, *reqs)
        if rc:
            sys.stderr.write(out)
            sys.exit("pip download for Python %s failed for %s" % (python, " ".join(reqs)))


def newest(paths, wanted, local):
    """Newest wheel of each wanted distribution among paths (a reused cache may hold others)."""
    found = {}
    for path in paths:
        name, version, _build, _tags = parse_wheel_filename(os.path.basename(path))
        spec = wanted.get(name)
        if spec is None or not spec.contains(version, prereleases=True):
            continue
        if name not in found or version > found[name][0]:
            found[name] = (version, path)
    return {name: {"version": str(v), "file": p, "local": name in local} for name, (v, p) in found.items()}


def main(argv):
    sep = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel_dir")
    ap.add_argument("sources", nargs="+")
    ap.add_argument("--python", action="append", required=True, metavar="X.Y",
                    help="a target interpreter version (repeatable)")
    args = ap.parse_args(argv[:sep])
    reqs = [Requirement(r) for r in argv[sep + 1:]]
    os.makedirs(args.wheel_dir, exist_ok=True)

    local = {build_local(args.wheel_dir, src) for src in args.sources}
    local_paths = glob.glob(os.path.join(args.wheel_dir, "*.whl"))
    # Our apps: any version we just built; third-party: what the requirement allows.
    wanted = {name: Requirement(name).specifier for name in local}
    wanted.update({canonicalize_name(r.name): r.specifier for r in reqs})

    manifest = {}
    for python in sorted(set(args.python)):
        dest = os.path.join(args.wheel_dir, "py" + python)
        os.makedirs(dest, exist_ok=True)
        if reqs:
            download(dest, python, [str(r) for r in reqs])
        manifest[python] = newest(local_paths + glob.glob(os.path.join(dest, "*.whl")), wanted, local)
    json.dump(manifest, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
