#!/usr/bin/env bash
# Build toolgate's container image without a Docker engine or a registry: the static
# binary is built on this machine exactly as deploy/Dockerfile builds it, and buildah
# assembles the Dockerfile's runtime stage (FROM scratch) around it.
#
#   deploy/build-image.sh [--skip-build] [--run] [--save FILE] [--tag NAME]
#
#   --skip-build  use the binary already in target/ (fails if there is none)
#   --run         start the image with podman, check /healthz, /readyz, two tool
#                 calls and the image's HEALTHCHECK, then stop it with SIGTERM while
#                 a call is in flight: the call must answer 200 and the exit code be 0
#   --save FILE   also write the image as a docker-archive tarball (for `docker
#                 load` or `kind load image-archive`)
#   --tag NAME    image name (default docker.io/library/toolgate:latest: the name
#                 that `toolgate:latest`, as deploy/kubernetes refers to it, means to
#                 Docker and containerd; buildah alone would make it localhost/...)
#
# Needs: rustup's x86_64-unknown-linux-musl target, musl-tools (musl-gcc), buildah,
# and podman for --run. On Debian:
#   apt-get install -y musl-tools buildah podman
#   rustup target add x86_64-unknown-linux-musl
#
# Environment:
#   CARGO            default `cargo` (e.g. `flock /tmp/toolgate-cargo.lock cargo`)
#   STORAGE_DRIVER   e.g. `vfs` where overlayfs does not work
#   PORT             host port for --run (default 18080)
#   PODMAN_OPTS      global podman options for --run, e.g. `--runtime runc` where
#                    crun refuses the host's cgroup layout
#   PODMAN_RUN_OPTS  extra `podman run` options, e.g. `--ulimit nofile=20000:20000
#                    --ulimit nproc=10000:10000` where the default limits exceed the
#                    host's and setrlimit fails
set -euo pipefail

cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
PROFILE=dist
FEATURES=mimalloc
BIN="target/$TARGET/$PROFILE/toolgate"
TAG=docker.io/library/toolgate:latest
SKIP_BUILD=0
RUN=0
SAVE=""
read -r -a CARGO_CMD <<<"${CARGO:-cargo}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --skip-build) SKIP_BUILD=1 ;;
        --run) RUN=1 ;;
        --save) SAVE="$2"; shift ;;
        --tag) TAG="$2"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

BUILDAH=(buildah)
read -r -a PODMAN <<<"podman ${PODMAN_OPTS:-}"
read -r -a RUN_OPTS <<<"${PODMAN_RUN_OPTS:-}"
if [[ -n "${STORAGE_DRIVER:-}" ]]; then
    BUILDAH+=(--storage-driver "$STORAGE_DRIVER")
    PODMAN+=(--storage-driver "$STORAGE_DRIVER")
fi

# 1. The binary: the Dockerfile's command, profile, target and features.
if [[ $SKIP_BUILD -eq 0 ]]; then
    echo "==> cargo build --profile $PROFILE --locked --target $TARGET -p toolgate --features $FEATURES"
    "${CARGO_CMD[@]}" build --profile "$PROFILE" --locked --target "$TARGET" \
        -p toolgate --features "$FEATURES"
fi
[[ -x "$BIN" ]] || { echo "build-image.sh: no binary at $BIN" >&2; exit 1; }
if ! file "$BIN" | grep -Eq 'static(-pie)?( |-)linked'; then
    echo "build-image.sh: $BIN is not statically linked:" >&2
    file "$BIN" >&2
    exit 1
fi
echo "==> binary: $BIN, $(stat -c %s "$BIN") bytes"
file "$BIN"

# 2. The runtime stage's file system: the binary, /tmp (1777) and /etc/toolgate.
ROOTFS="$(mktemp -d)"
CTR=""
cleanup() {
    rm -rf "$ROOTFS"
    if [[ -n "$CTR" ]]; then "${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
mkdir -p "$ROOTFS/tmp" "$ROOTFS/etc/toolgate"
chmod 1777 "$ROOTFS/tmp"
chmod 0755 "$ROOTFS" "$ROOTFS/etc" "$ROOTFS/etc/toolgate"
install -m 0755 "$BIN" "$ROOTFS/toolgate"

# 3. FROM scratch, COPY, and the Dockerfile's USER/ENV/EXPOSE/HEALTHCHECK/ENTRYPOINT/CMD.
# Docker format: the OCI image format has no HEALTHCHECK.
echo "==> assembling $TAG with buildah"
CTR="$("${BUILDAH[@]}" from --format docker scratch)"
"${BUILDAH[@]}" copy --quiet "$CTR" "$ROOTFS/" / >/dev/null
"${BUILDAH[@]}" config \
    --user 65532:65532 \
    --env TOOLGATE_HEALTHCHECK_URL=http://127.0.0.1:8080/healthz \
    --port 8080 \
    --healthcheck 'CMD /toolgate healthcheck' \
    --healthcheck-interval 10s --healthcheck-timeout 3s \
    --healthcheck-start-period 5s --healthcheck-retries 3 \
    --entrypoint '["/toolgate"]' \
    --cmd '["serve", "--listen", "0.0.0.0:8080"]' \
    --label org.opencontainers.image.title=toolgate \
    --label org.opencontainers.image.source=deploy/Dockerfile \
    "$CTR"
"${BUILDAH[@]}" commit --quiet --format docker --rm "$CTR" "$TAG" >/dev/null
CTR=""

"${BUILDAH[@]}" images "$TAG"
if command -v podman >/dev/null; then
    echo "==> image $TAG: $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$TAG") bytes"
fi

if [[ -n "$SAVE" ]]; then
    rm -f "$SAVE"
    "${PODMAN[@]}" save --format docker-archive -o "$SAVE" "$TAG"
    echo "==> saved to $SAVE ($(stat -c %s "$SAVE") bytes)"
fi

# 4. Optional smoke test of the image itself.
if [[ $RUN -eq 1 ]]; then
    PORT="${PORT:-18080}"
    NAME="toolgate-smoke-$$"
    KEY="smoke-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d " \n")"
    echo "==> podman run $TAG on 127.0.0.1:$PORT"
    # Removed on any exit, also when `podman run` itself fails (it may leave the
    # container created).
    stop_smoke() { "${PODMAN[@]}" rm -f "$NAME" >/dev/null 2>&1 || true; }
    trap 'stop_smoke; cleanup' EXIT
    "${PODMAN[@]}" run -d --name "$NAME" -p "127.0.0.1:$PORT:8080" \
        -e TOOLGATE_API_KEY="$KEY" --read-only --tmpfs /tmp:rw,mode=1777 \
        --stop-timeout 40 "${RUN_OPTS[@]}" "$TAG" >/dev/null
    for _ in $(seq 1 50); do
        curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    # Each check fails the script (set -e) on a non-2xx answer.
    check() {
        local what="$1" out
        shift
        out="$(curl -fsS "$@")"
        echo "--- $what: $out"
    }
    check /healthz "http://127.0.0.1:$PORT/healthz"
    check /readyz "http://127.0.0.1:$PORT/readyz"
    check echo "http://127.0.0.1:$PORT/api/v1/tools/echo" -H "X-Tool-API-Key: $KEY" \
        -H 'Content-Type: application/json' -d '{"from": "the image"}'
    check top_customers "http://127.0.0.1:$PORT/api/v1/tools/top_customers" \
        -H "X-Tool-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"country": "DE", "limit": 2}'
    "${PODMAN[@]}" healthcheck run "$NAME"
    echo "--- the image's HEALTHCHECK (podman healthcheck run): healthy"
    # A call in flight when SIGTERM arrives must still complete (the drain).
    SLOW="$(mktemp)"
    curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/tools/sleep" \
        -H "X-Tool-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"ms": 1500}' >"$SLOW" &
    SLOW_PID=$!
    sleep 0.5
    echo "--- stopping (SIGTERM) with a 1.5 s call in flight"
    "${PODMAN[@]}" stop -t 40 "$NAME" >/dev/null
    wait "$SLOW_PID"
    echo "--- the call in flight answered $(cat "$SLOW")"
    [[ "$(cat "$SLOW")" == 200 ]] || { echo "build-image.sh: the drain lost a call" >&2; exit 1; }
    rm -f "$SLOW"
    CODE="$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")"
    echo "--- exit code after SIGTERM: $CODE; last log lines:"
    "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -n 3
    [[ "$CODE" == 0 ]] || { echo "build-image.sh: the container exited $CODE" >&2; exit 1; }
    echo "==> smoke test passed"
fi
