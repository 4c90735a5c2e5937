#!/usr/bin/env bash
# Build the container's base image from Debian packages, without Docker Hub:
#   scripts/base-image.sh berth-base:bookworm
#   docker build --build-arg BASE=berth-base:bookworm -t berth .
# mmdebstrap makes a Debian root filesystem (python3, python3-venv, CA certificates, useradd)
# and `docker import` tags it. Nothing is done when the tag already exists in the engine.
# Needs root; installs mmdebstrap when it is missing. The engine is the docker CLI's: set
# DOCKER_HOST (and DOCKER_CONFIG) to use another; DOCKER names the CLI (default: docker).
# SUITE (default bookworm, whose python3 is the 3.11 Berth is pinned for) and MIRROR
# (default: mmdebstrap's, deb.debian.org) choose where the packages come from.
set -euo pipefail
tag=${1:?usage: scripts/base-image.sh TAG}
suite=${SUITE:-bookworm}
docker=${DOCKER:-docker}

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
    echo "base-image: $tag exists" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "base-image: run as root (mmdebstrap builds the root filesystem as root)" >&2
    exit 1
fi
if ! command -v mmdebstrap >/dev/null; then
    echo "base-image: installing mmdebstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >&2; }
fi

work=$(mktemp -d -t berth-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "base-image: building $tag from Debian $suite" >&2
# Documentation is left out; each package's copyright file stays.
mmdebstrap --variant=apt --include=python3,python3-venv,ca-certificates,passwd \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$suite" "$work/rootfs.tar" ${MIRROR:+"$MIRROR"} >&2
"$docker" import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' \
    "$work/rootfs.tar" "$tag" >/dev/null
echo "base-image: $tag imported" >&2
