#!/usr/bin/env bash
# Build the local test host images applogs-test:<suite> (bullseye, bookworm, trixie).
#   scripts/lib/images.sh [suite...]        (default: all three)
# or: source scripts/lib/images.sh && applogs_build_image bookworm
# No registry is reachable here, so the base comes from Debian itself: debootstrap --variant=minbase
# with the mirror of this machine's apt sources, `docker import` as applogs-test:<suite>-minbase, then
# molecule/images/Dockerfile on top. A build is skipped when the image exists and its label
# applogs.build-hash matches the Dockerfile and the host CA bundle; the minbase image is reused.
# Needs: docker running (scripts/lib/dockerd.sh), debootstrap, root.

APPLOGS_IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../molecule/images" && pwd)"
APPLOGS_IMAGE_REPO="${APPLOGS_IMAGE_REPO:-applogs-test}"
APPLOGS_HOST_CA="${APPLOGS_HOST_CA:-/etc/ssl/certs/ca-certificates.crt}"

# The Debian mirror this machine uses (never hard-coded in the repository).
applogs_debian_mirror() {
    local uri=""
    if [ -n "${APPLOGS_DEBIAN_MIRROR:-}" ]; then
        echo "$APPLOGS_DEBIAN_MIRROR"; return 0
    fi
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list.d/debian.sources)"
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '/^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/ && $i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list)"
    fi
    if [ -z "$uri" ]; then
        echo "images.sh: no Debian mirror found in the apt sources; set APPLOGS_DEBIAN_MIRROR" >&2
        return 1
    fi
    echo "$uri"
}

applogs_image_hash() {
    local suite="$1"
    { echo "$suite"; cat "$APPLOGS_IMAGES_DIR/Dockerfile" "$APPLOGS_HOST_CA"; } | sha256sum | cut -c1-16
}

applogs_build_minbase() {
    local suite="$1" name="$APPLOGS_IMAGE_REPO:$1-minbase"
    if docker image inspect "$name" >/dev/null 2>&1; then
        return 0
    fi
    local mirror rootfs t0=$SECONDS
    mirror="$(applogs_debian_mirror)" || return 1
    # What an interrupted debootstrap left behind (we hold the build lock, so nobody else uses it).
    rm -rf "/var/tmp/applogs-rootfs-$suite".*
    rootfs="$(mktemp -d "/var/tmp/applogs-rootfs-$suite.XXXXXX")"
    echo "images.sh: debootstrap $suite (minbase) ..." >&2
    if ! debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
        echo "images.sh: debootstrap $suite failed; see $rootfs.log" >&2
        tail -n 20 "$rootfs.log" >&2
        rm -rf "$rootfs"
        return 1
    fi
    tar -C "$rootfs" -c . | docker import - "$name" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    echo "images.sh: $name imported ($((SECONDS - t0)) s)" >&2
}

applogs_build_image() {
    local suite="$1" name="$APPLOGS_IMAGE_REPO:$1" hash have
    hash="$(applogs_image_hash "$suite")"
    have="$(docker image inspect -f '{{ index .Config.Labels "applogs.build-hash" }}' "$name" 2>/dev/null || true)"
    if [ "$have" = "$hash" ]; then
        echo "images.sh: $name is up to date" >&2
        return 0
    fi
    applogs_build_minbase "$suite" || return 1
    local ctx t0=$SECONDS
    ctx="$(mktemp -d)"
    cp "$APPLOGS_IMAGES_DIR/Dockerfile" "$ctx/Dockerfile"
    cp "$APPLOGS_HOST_CA" "$ctx/host-ca.crt"
    echo "images.sh: building $name ..." >&2
    if ! docker build --network host \
            --build-arg "base=$APPLOGS_IMAGE_REPO:$suite-minbase" --build-arg "suite=$suite" \
            --label "applogs.build-hash=$hash" -t "$name" "$ctx" >"$ctx.log" 2>&1; then
        echo "images.sh: docker build of $name failed:" >&2
        tail -n 40 "$ctx.log" >&2
        rm -rf "$ctx"
        return 1
    fi
    rm -rf "$ctx" "$ctx.log"
    echo "images.sh: $name built ($((SECONDS - t0)) s)" >&2
}

# One build at a time on this machine (a test run and the demo, or two checkouts, may start together):
# the second waits and then finds the image up to date.
applogs_build_images() {
    (
        flock 9
        local suite
        for suite in "$@"; do
            applogs_build_image "$suite" || exit 1
        done
    ) 9>"${APPLOGS_IMAGES_LOCK:-/var/lock/applogs-images.lock}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    if [ "$#" -eq 0 ]; then
        set -- bullseye bookworm trixie
    fi
    applogs_build_images "$@"
fi
