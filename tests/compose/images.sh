# Shared by tests/compose/run and tests/swarm/run (sourced, POSIX sh; needs
# $ROOT, the repository,
# ok/bad from scenario.sh and a scratch directory in $work).
# build_images TAG: builds chatmesh:TAG and chatmesh-nginx:TAG from this tree
# (the debian:bookworm-slim base first when missing, made locally by
# compose/bootstrap-base-image). Docker's layer cache makes a second call on
# an unchanged tree take seconds. 0 when both images are built.
build_image() { # build_image TAG DOCKERFILE CONTEXT: retried with host networking
                # when the Debian archive is unreachable from the default bridge.
    timeout 900 docker build --force-rm --build-arg JOBS=2 -t "$1" -f "$2" "$3" \
        >"$work/build.log" 2>&1 && return 0
    grep -Eqi 'resolv|Unable to fetch|Failed to fetch|Could not connect' "$work/build.log" || return 1
    echo "the archive is unreachable from the bridge; building with --network host"
    timeout 900 docker build --force-rm --network host --build-arg JOBS=2 -t "$1" -f "$2" "$3" \
        >"$work/build.log" 2>&1
}
build_images() {
    images_root=$ROOT
    if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
        timeout 900 "$images_root/compose/bootstrap-base-image" \
            || { bad "base image debian:bookworm-slim"; return 1; }
    fi
    images_start=$(date +%s)
    if build_image "chatmesh:$1" "$images_root/compose/Dockerfile" "$images_root" \
       && build_image "chatmesh-nginx:$1" "$images_root/compose/nginx/Dockerfile" \
                      "$images_root/compose/nginx"; then
        ok "images chatmesh:$1 and chatmesh-nginx:$1 built ($(( $(date +%s) - images_start )) s)"
    else
        tail -30 "$work/build.log"
        bad "image build"
        return 1
    fi
}
