#!/usr/bin/env bash
# make reliability: faults under load, on loopback, bounded in time.  For
# each fault: what the clients got, what the mock saw (its peak in flight
# per key against the limit), whether a worker crashed, and whether the
# gate's counts went back to zero.  Prints markdown for bench/RELIABILITY.md.
#
#   RELIABILITY_SECONDS  seconds of load per fault (default 15)

set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
B=$top/build/reliability
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
SECS=${RELIABILITY_SECONDS:-15}
MOCK_PORT=19701
GW_PORT=19702
LIMIT=4

. bench/common.sh
mkdir -p "$B/logs" "$B/conf"

cleanup() {
    [ -n "${BG:-}" ] && kill "$BG" 2>/dev/null || true
    [ -f "$B/logs/nginx.pid" ] && kill "$(cat "$B/logs/nginx.pid")" 2>/dev/null || true
    [ -n "${MOCK_PID:-}" ] && kill "$MOCK_PID" 2>/dev/null || true
    sleep 0.3
}
trap cleanup EXIT


start_gateway() {
    local zone=${1:-16m}
    cat > "$B/conf/nginx.conf" <<EOF
load_module $top/build/nginx/ngx_http_scripting_gate_module.so;
worker_processes 2;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 32; }
    map \$uri \$script_key {
        "~^/api/v2/scripts/(?<id>[^/]+)"  "\$id:\$arg_scriptDataVersion:";
    }
    scripting_gate_zone \$script_key zone=scripts:$zone;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout 2s;
    proxy_ignore_client_abort on;
    server {
        listen 127.0.0.1:$GW_PORT;
        location /api/ {
            scripting_gate zone=scripts limit=$LIMIT queue=2000 queue_timeout=5s;
            scripting_gate_log_level info;
            scripting_retry on=429,502,503,504 attempts=3 base=20ms cap=200ms
                            deadline=4s;
            proxy_next_upstream off;
            proxy_pass http://mock;
        }
        location = /status { scripting_gate_stats; }
    }
}
EOF
    [ -f "$B/logs/nginx.pid" ] && kill "$(cat "$B/logs/nginx.pid")" 2>/dev/null && sleep 0.5 || true
    : > "$B/logs/error.log"
    "$NGINX" -p "$B/" -c conf/nginx.conf
    sleep 0.2
}


# $1 fault, $2 connections, $3 wrk --timeout, $4 versions; env ACTIONS
run() {
    local fault=$1 conns=$2 timeout=$3 versions=${4:-8} out peak left crashes
    drain
    curl -s -X POST http://127.0.0.1:$MOCK_PORT/__mock/reset > /dev/null
    : > "$B/logs/error.log"
    out=$(VERSIONS=$versions PATH_PREFIX=/api/v2/scripts/ wrk -t2 -c"$conns" \
          -d"${SECS}s" --timeout "$timeout" -s bench/keys.lua \
          http://127.0.0.1:$GW_PORT 2>&1 | grep '^RESULT' || echo "RESULT wrk failed")
    [ -n "${BG:-}" ] && { kill "$BG" 2>/dev/null; wait "$BG" 2>/dev/null || true; BG=; }
    drain
    sleep 1.2      # a killed worker's slots come back within a second
    peak=$(curl -s http://127.0.0.1:$MOCK_PORT/__mock/stats | perl -MJSON::PP -e '
        my $s = decode_json(join "", <STDIN>); my $p = 0;
        for (values %{$s->{keys}}) { $p = $_->{peak_in_flight} if $_->{peak_in_flight} > $p }
        print $p')
    left=$(curl -s -m 5 http://127.0.0.1:$GW_PORT/status | perl -MJSON::PP -e '
        my $t = decode_json(join "", <STDIN>)->{zones}{scripts}{totals};
        print "active $t->{active}, queued $t->{queued}"' 2>/dev/null || echo "no answer")
    crashes=$(grep -c 'exited on signal [^9]' "$B/logs/error.log" || true)
    echo "| $fault | $out | $peak (limit $LIMIT) | $crashes | $left |" |
        sed 's/RESULT //; s/statuses=/clients: /'
}

echo "# Reliability results"
echo
echo "Produced by \`make reliability\` (bench/reliability.sh) on $(date -u +%Y-%m-%d),"
echo "$(nproc) cores, nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'). Each fault: ${SECS} s of"
echo "load from wrk (bench/keys.lua) through the gateway (limit $LIMIT per version,"
echo "queue 2000, queue_timeout 5s, retry of 429/5xx, 3 attempts, deadline 4s,"
echo "proxy_read_timeout 2s, proxy_ignore_client_abort on) to the mock, on loopback. \"errors\" are wrk's"
echo "connect/read/timeout errors (a client that gave up or was cut off);"
echo "a status of 499 is never seen by a client. Crashes: workers that exited on a"
echo "signal other than the SIGKILL the scenario sent. Left: the gate's totals"
echo "once the load is over and the mock has nothing in flight. A fault is"
echo "injected per request (X-Mock-Action), and a retry sends the same header"
echo "again: a request picked for a reset or a 503 gets it on every attempt, so"
echo "what reaches the clients is those requests, after their retries."
echo
echo "| fault | figures | mock peak in flight per key | crashes | left in the gate |"
echo "|---|---|---|---|---|"

start_mock --delay 20
start_gateway
ACTIONS="reset:10" run "upstream resets 10 % of requests (first attempts and retries)" 64 10s
ACTIONS="429/ra=none:30,503:10" run "upstream 429 (30 %) and 503 (10 %): retries" 64 10s
ACTIONS="200/delay=30000:5" run "a stalled upstream for 5 % (proxy_read_timeout 2s; see below)" 64 10s
ACTIONS="200/delay=800:20" run "a slow upstream for 20 % (800 ms)" 64 10s
ACTIONS="200/delay=400:100" run "clients giving up after 1 s while queued (400 ms answers, 256 clients)" 256 1s
ACTIONS="429/ra=1:50" run "clients giving up after 1 s, during Retry-After waits" 128 1s

ACTIONS=""
( while true; do sleep 1; "$NGINX" -p "$B/" -c conf/nginx.conf -s reload; done ) &
BG=$!
run "nginx -s reload every second" 128 10s

( while true; do sleep 3; kill -9 "$(pgrep -P "$(cat "$B/logs/nginx.pid")" | head -1)" 2>/dev/null || true; done ) &
BG=$!
run "SIGKILL of a worker every 3 s" 128 10s

start_gateway 32k
run "a zone too small for the keys (32 KB, 5000 versions)" 128 10s 5000

echo
echo "The mock counts a request in flight until it answers. When nginx gives up"
echo "on an upstream request (proxy_read_timeout, or a client gone away with"
echo "proxy_ignore_client_abort off), the slot is freed at once while the mock"
echo "still works on the abandoned request: its peak then exceeds the limit, as"
echo "in the stalled-upstream row. That is the gate keeping its count of what"
echo "nginx has in flight, not of what the upstream still does; see README,"
echo "scripting_gate."
