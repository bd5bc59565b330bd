#!/bin/sh
#  store_disk_full.sh STORE_BINARY: the store on a full disk, on a 2 MiB
#  tmpfs (root only: exits 77, skipped, when mount is not permitted).
#  - a store whose lock.mdb was deleted, started on a full disk, exits 1
#    with a message naming lock.mdb (it used to die by SIGBUS, silently);
#  - a new store on a full disk exits 1 and leaves no data.mdb behind;
#  - once space is freed both start, the first at the txnid it had.
set -u
store=$1
tmp=$(mktemp -d /tmp/store_disk_full.XXXXXX)
fs=$tmp/fs
mkdir "$fs"
if ! mount -t tmpfs -o size=2m tmpfs "$fs" 2>/dev/null; then
    rmdir "$fs" "$tmp"
    echo "skipped: cannot mount a tmpfs here"
    exit 77
fi
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    umount "$fs"
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

#  run DIR LOG: starts the store on DIR in the background (pid in $pid).
run() {
    "$store" --store-dir "$1" --store-endpoint "ipc://$tmp/store.ipc" \
        --events-in-endpoint "ipc://$tmp/events.ipc" --cleanup-interval 0 \
        --log-level notice >"$2" 2>&1 &
    pid=$!
}
#  wait_exit: waits (at most 20 s) for $pid to end; its status in $status.
wait_exit() {
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$pid" 2>/dev/null && fail "the store did not exit on a full disk"
    wait "$pid"
    status=$?
    pid=
}
#  serve_and_stop LOG: waits for "serving" in LOG, then SIGTERM, exit 0.
serve_and_stop() {
    i=0
    while ! grep -q "serving on" "$1" && kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.1; i=$((i + 1))
    done
    grep -q "serving on" "$1" || { cat "$1"; fail "the store did not come up"; }
    kill -TERM "$pid"
    wait_exit
    [ "$status" -eq 0 ] || fail "clean stop gave status $status"
}

mkdir "$fs/store"
run "$fs/store" "$tmp/first.log"
serve_and_stop "$tmp/first.log"
txnid=$(sed -n 's/.* at txnid \([0-9]*\) .*/\1/p' "$tmp/first.log")
[ -n "$txnid" ] || fail "no txnid logged at start"

rm "$fs/store/lock.mdb"
dd if=/dev/zero of="$fs/filler" bs=4096 2>/dev/null
run "$fs/store" "$tmp/full.log"
wait_exit
cat "$tmp/full.log"
[ "$status" -lt 128 ] || fail "the store died by signal $((status - 128)) on a full disk"
[ "$status" -eq 1 ] || fail "exit status $status on a full disk, expected 1"
grep -q "lock.mdb.*No space left on device" "$tmp/full.log" || fail "the log does not name lock.mdb and the cause"

mkdir "$fs/new"
run "$fs/new" "$tmp/new.log"
wait_exit
cat "$tmp/new.log"
[ "$status" -eq 1 ] || fail "a new store on a full disk: status $status, expected 1"
[ ! -e "$fs/new/data.mdb" ] || fail "a new store on a full disk left a data.mdb behind"

rm "$fs/filler"
run "$fs/store" "$tmp/freed.log"
serve_and_stop "$tmp/freed.log"
grep -q "opened .* at txnid $txnid " "$tmp/freed.log" || { cat "$tmp/freed.log"; fail "not reopened at txnid $txnid"; }
run "$fs/new" "$tmp/new2.log"
serve_and_stop "$tmp/new2.log"
grep -q "created" "$tmp/new2.log" || fail "the new store was not created once space was freed"
echo "ok: refused on a full disk (status 1, lock.mdb named), served again once space was freed"
