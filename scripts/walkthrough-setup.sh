#!/bin/sh
# Make what the README's walkthrough uses, offline, with the docker CLI against $DOCKER_HOST:
#   demo/app:1.0  a one-layer image holding a static busybox (from the busybox-static package,
#                 or flattened from the image $WALKTHROUGH_BASE names, e.g. one the engine has)
#   demo/app:2.0  demo/app:1.0 plus one layer
#   web1          a running container of demo/app:1.0
#   web2          a stopped container of demo/app:2.0
# Everything it makes carries the label berth.walkthrough (images pass it on to what is built
# from them). `walkthrough-setup.sh --remove` removes every container and image with that label.
set -eu

LABEL=berth.walkthrough

remove() {
    containers=$(docker ps -aq --filter "label=$LABEL")
    [ -z "$containers" ] || docker rm -f $containers >/dev/null
    # A parent goes only after its children: repeat while images are left.
    for _ in 1 2 3 4; do
        images=$(docker images -q --filter "label=$LABEL" | sort -u)
        [ -n "$images" ] || return 0
        docker rmi -f $images >/dev/null 2>&1 || true
    done
    [ -z "$(docker images -q --filter "label=$LABEL")" ]
}

if [ "${1:-}" = "--remove" ]; then
    remove
    exit 0
fi

remove
for name in web1 web2; do
    if docker container inspect "$name" >/dev/null 2>&1; then
        echo "a container named $name exists and is not the walkthrough's: remove or rename it" >&2
        exit 1
    fi
done
for ref in demo/app:1.0 demo/app:2.0; do
    if docker image inspect "$ref" >/dev/null 2>&1; then
        echo "an image named $ref exists and is not the walkthrough's: remove or rename it" >&2
        exit 1
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${WALKTHROUGH_BASE:-}" ]; then
    cid=$(docker create --network none "$WALKTHROUGH_BASE" sh)
    docker export "$cid" >"$tmp/rootfs.tar"
    docker rm "$cid" >/dev/null
else
    busybox=$(command -v busybox || true)
    if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
        echo "no static busybox: install busybox-static, or set WALKTHROUGH_BASE to an image" >&2
        exit 1
    fi
    mkdir -p "$tmp/root/bin" "$tmp/root/tmp"
    cp "$busybox" "$tmp/root/bin/busybox"
    for applet in sh echo cat ls sleep true; do
        ln -s busybox "$tmp/root/bin/$applet"
    done
    tar -C "$tmp/root" -cf "$tmp/rootfs.tar" .
fi
docker import -m "walkthrough base" -c "LABEL $LABEL=1" -c 'CMD ["/bin/sh"]' \
    -c "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "$tmp/rootfs.tar" demo/app:1.0 >/dev/null

docker run -d --name web1 --network none --label "$LABEL=1" demo/app:1.0 \
    sh -c 'echo one > /first; exec sleep 3600' >/dev/null
docker run --name walkthrough-build --network none --label "$LABEL=1" demo/app:1.0 \
    sh -c 'echo two > /second'
docker commit -m "add /second" walkthrough-build demo/app:2.0 >/dev/null
docker rm walkthrough-build >/dev/null
docker create --name web2 --network none --label "$LABEL=1" demo/app:2.0 >/dev/null
echo "made demo/app:1.0, demo/app:2.0, web1 (running) and web2 (stopped)"
