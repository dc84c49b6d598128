#!/usr/bin/env bash
# make reliability: faults under load, on loopback, bounded in time.  For
# each fault: how many times it was injected or tried, what the clients
# got, what the mock saw (its answers, its peak in flight per key against
# the limit), whether a worker crashed, and whether the gate's counts went
# back to zero.  Prints markdown for bench/RELIABILITY.md, with
# bench/memory-safety.md (the sanitizer and valgrind runs, the hostile
# input of t/060-hostile.t, recorded by hand) at its end.
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
    scripting_json_var \$vid /versionId;
    map \$uri \$script_key {
        "~^/api/v2/scripts/(?<id>[^/]+)"  "\$id:\$arg_scriptDataVersion:\$vid";
    }
    scripting_gate_zone \$script_key zone=scripts:$zone;
    scripting_async_zone zone=jobs:16m ttl=1m;
    # faults for the retries only: the first attempt gets the first
    # action, every retry the second (\$scripting_retry_count per attempt)
    map "\$http_x_mock_action:\$scripting_retry_count" \$mock_action {
        volatile;
        "~^429-then-stall:0\$"  "429/ra=none";
        "~^429-then-stall:"     "200/delay=30000";
        "~^503-then-reset:0\$"  "503";
        "~^503-then-reset:"     "reset";
        default                 \$http_x_mock_action;
    }
    # large answers go to the client at 1 MB/s, so that it can leave
    # in the middle of one
    map \$http_x_mock_action \$slow_rate {
        volatile;
        "~size="  1m;
        default   0;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header X-Mock-Action \$mock_action;
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
            limit_rate \$slow_rate;
            scripting_async zone=jobs pass=http://127.0.0.1:$MOCK_PORT
                            jobs_uri=/jobs/ timeout=30s;
            proxy_pass http://mock;
        }
        location /jobs/ { scripting_async_jobs zone=jobs; }
        location = /status { scripting_gate_stats; }
    }
}
EOF
    [ -f "$B/logs/nginx.pid" ] && kill "$(cat "$B/logs/nginx.pid")" 2>/dev/null && sleep 0.5 || true
    : > "$B/logs/error.log"
    "$NGINX" -p "$B/" -c conf/nginx.conf
    sleep 0.2
}


# $1 fault, $2 connections, $3 wrk --timeout, $4 versions; env ACTIONS,
# and TRIED: what counts the times the fault was injected or tried
# (wrk:injected the requests sent with ACTIONS' faults, mock:STATUS[+...]
# the mock's answers of those statuses, log:TEXT the gateway's error.log
# lines with TEXT, wrk:errors the clients cut off, file:NAME lines of
# $B/NAME, gate:no_memory)
run() {
    local fault=$1 conns=$2 timeout=$3 versions=${4:-8} out peak left crashes
    local mock tried injected
    drain
    curl -s -X POST http://127.0.0.1:$MOCK_PORT/__mock/reset > /dev/null
    : > "$B/logs/error.log"
    rm -f "$B/reloads" "$B/kills" "$B"/aborts.*
    # clients that leave: curl -m closes its connection at its deadline
    # (wrk's --timeout only counts an answer as late, it never leaves)
    local j end=$(( $(date +%s) + SECS )) leavers=""
    for j in $(seq 1 "${LEAVERS:-0}"); do
        ( i=$j
          while [ "$(date +%s)" -lt $end ]; do
              rc=0
              curl -s -o /dev/null -m "$LEAVE_AFTER" -H "X-Mock-Action: $LEAVE_ACTION" \
                   -w '%{http_code} %{size_download}' \
                   "http://127.0.0.1:$GW_PORT/api/v2/scripts/script-$((i % versions))?scriptDataVersion=1" \
                  || rc=$?
              echo " $rc"
              i=$((i + 1))
          done > "$B/aborts.$j" ) &
        leavers="$leavers $!"
    done
    out=$(VERSIONS=$versions PATH_PREFIX=/api/v2/scripts/ wrk -t2 -c"$conns" \
          -d"${SECS}s" --timeout "$timeout" -s bench/keys.lua \
          http://127.0.0.1:$GW_PORT 2>&1 | grep '^RESULT' || echo "RESULT wrk failed")
    [ -n "${BG:-}" ] && { kill "$BG" 2>/dev/null; wait "$BG" 2>/dev/null || true; BG=; }
    for j in $leavers; do wait "$j" || true; done
    drain
    sleep 1.2      # a killed worker's slots come back within a second
    # the most in flight at once for one key, and its answers by status
    # (keys over 1024 bytes, gated by their digest, apart; requests
    # of the regular versions and of flooding new ones counted apart)
    mock=$(curl -s http://127.0.0.1:$MOCK_PORT/__mock/stats | perl -MJSON::PP -e '
        my $s = decode_json(join "", <STDIN>); my ($p, $pl, $n, %st, %by) = (0, 0, 0);
        for my $name (keys %{$s->{keys}}) {
            my $k = $s->{keys}{$name};
            # the mock keeps 255 bytes of a versionId
            my $long = $name =~ /v{255}/;
            if ($long) { $pl = $k->{peak_in_flight} if $k->{peak_in_flight} > $pl }
            else { $p = $k->{peak_in_flight} if $k->{peak_in_flight} > $p }
            $n += $k->{requests};
            $by{$long ? "keys over 1024 bytes" : $name =~ /^script-r/ ? "new versions"
                : "regular versions"} += $k->{requests};
            $st{$_} += $k->{status}{$_} for keys %{$k->{status}};
        }
        print $p . ($pl ? "; keys over 1024 bytes: $pl" : "")
              . "|requests=$n " . join(",", map { "$_=$st{$_}" } sort keys %st)
              . (keys %by > 1 ? " (" . join(", ", map { "$_ $by{$_}" } sort keys %by) . ")" : "")')
    peak=${mock%%|*}
    mock=${mock#*|}
    if [ -n "${ASYNC:-}" ]; then
        # the jobs still under way end (or fail, if their worker was
        # killed) within their timeout
        for j in $(seq 1 400); do
            [ "$(curl -s -m 5 http://127.0.0.1:$GW_PORT/status | perl -MJSON::PP -e '
                my $j = decode_json(join "", <STDIN>)->{jobs}{jobs};
                print $j->{queued} + $j->{running}' 2>/dev/null)" = 0 ] && break
            sleep 0.1
        done
        drain
    fi
    left=$(curl -s -m 5 http://127.0.0.1:$GW_PORT/status | ASYNC=${ASYNC:-} perl -MJSON::PP -e '
        my $s = decode_json(join "", <STDIN>);
        my $z = $s->{zones}{scripts}; my $t = $z->{totals}; my $j = $s->{jobs}{jobs};
        print "active $t->{active}, queued $t->{queued}"
            . ($ENV{ASYNC} ? "; jobs: $j->{accepted} accepted, $j->{succeeded} succeeded, "
                                . "$j->{failed} failed, $j->{queued} queued, $j->{running} running"
                              : "")
            . "|$z->{no_memory}"' 2>/dev/null || echo "no answer|?")
    crashes=$(grep -c 'exited on signal [^9]' "$B/logs/error.log" || true)
    injected=${out##* injected=}
    out=${out% injected=*}
    if [ "${LEAVERS:-0}" -gt 0 ]; then
        # curl's exit status 28: it left at its deadline
        out="$out, and curl: $(cat "$B"/aborts.* | perl -ne '
            my ($code, $size, $rc) = split; $n++;
            if ($rc == 28) { $left++; $mid++ if $size > 0 } else { $st{$code}++ }
            END { printf "%d requests, %d left after '"$LEAVE_AFTER"' s (%d of them mid-body)%s",
                  $n, $left, $mid, join "", map { ", $_=$st{$_}" } sort keys %st }')"
    fi
    case "${TRIED:-}" in
    curl:left)  tried="$(cat "$B"/aborts.* | grep -c ' 28$' || true) clients left" ;;
    wrk:injected) tried="$injected requests sent with it" ;;
    log:*)      tried="$(grep -c "${TRIED#log:}" "$B/logs/error.log" || true) \"${TRIED#log:}\" in the log" ;;
    mock:*)     tried=0
                for st in $(echo "${TRIED#mock:}" | tr + ' '); do
                    tried=$((tried + $(echo "$mock" | grep -o "[ ,]$st=[0-9]*" | sed 's/.*=//' || echo 0)))
                done
                tried="$tried upstream answers ${TRIED#mock:}" ;;
    wrk:errors) tried="$(echo "$out" | sed 's/.*errors=\([0-9]*\).*/\1/') clients cut off" ;;
    file:*)     tried="$(cat "$B/${TRIED#file:}" 2>/dev/null | wc -l) ${TRIED#file:}" ;;
    gate:no_memory) tried="${left#*|} requests refused: zone full" ;;
    *)          tried="-" ;;
    esac
    left=${left%|*}
    echo "| $fault | $tried | $out | $mock | ${peak%%;*} (limit $LIMIT)${peak#"${peak%%;*}"} | $crashes | $left |" |
        sed 's/RESULT //; s/statuses=/clients: /'
}

echo "# Reliability results"
echo
echo "Produced by \`make reliability\` (bench/reliability.sh) on $(date -u +%Y-%m-%d),"
echo "$(nproc) cores, nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'). Each fault: ${SECS} s of"
echo "load from wrk (bench/keys.lua) through the gateway (limit $LIMIT per version,"
echo "queue 2000, queue_timeout 5s, retry of 429/5xx, 3 attempts, deadline 4s,"
echo "proxy_read_timeout 2s, proxy_ignore_client_abort on) to the mock, on loopback. \"errors\" are wrk's"
echo "connect/read errors (a connection cut off) and answers later than its"
echo "--timeout of 10 s (wrk never leaves a request: a late answer is only"
echo "counted, so clients that leave are curl processes with -m, started"
echo "alongside wrk, the \"and curl:\" figures; exit status 28: curl left at"
echo "its deadline, mid-body when it had received part of the body)."
echo "A status of 499 is never seen by a client. Crashes: workers that exited on a"
echo "signal other than the SIGKILL the scenario sent. Left: the gate's totals"
echo "once the load is over and the mock has nothing in flight. A fault is"
echo "injected per request (X-Mock-Action), and a retry sends the same header"
echo "again: a request picked for a reset or a 503 gets it on every attempt, so"
echo "what reaches the clients is those requests, after their retries. The"
echo "rows \"during retries only\" give the first attempt one fault and every"
echo "retry another (a map of X-Mock-Action and \$scripting_retry_count)."
echo
echo "Injected / tried: how many times the fault happened during the row: the"
echo "mock's answers carrying it (a reset, a 429, a stall: counted once per"
echo "attempt), the curl clients that left, the reloads or SIGKILLs sent, the"
echo "requests refused for want of room in the zone. Clients: what wrk got."
echo "Mock saw: the requests that reached it, by the answer it gave."
echo
echo "| fault | injected / tried | clients got | mock saw | mock peak in flight per key | crashes | left in the gate |"
echo "|---|---|---|---|---|---|---|"

start_mock --delay 20
start_gateway
TRIED=wrk:injected ACTIONS="reset:10" run "upstream resets 10 % of requests (first attempts and retries)" 64 10s
TRIED=mock:reset ACTIONS="503-then-reset:10" run "upstream resets during retries only: 10 % answered 503, then reset on every retry" 64 10s
TRIED=wrk:injected ACTIONS="429/ra=none:30,503:10" run "upstream 429 (30 %) and 503 (10 %): retries" 64 10s
TRIED="log:upstream timed out" ACTIONS="200/delay=30000:5" run "a stalled upstream for 5 % (proxy_read_timeout 2s; see below)" 64 10s
TRIED="log:upstream timed out" ACTIONS="429-then-stall:5" run "upstream timeouts during retries only: 5 % answered 429, then stalled on every retry" 64 10s
TRIED=wrk:injected ACTIONS="200/delay=800:20" run "a slow upstream for 20 % (800 ms)" 64 10s
LEAVERS=32 LEAVE_AFTER=1 LEAVE_ACTION=200/delay=400 TRIED=curl:left ACTIONS="200/delay=400:100" \
    run "clients leaving after 1 s while queued (400 ms answers, 128 wrk clients queued ahead, 32 curl clients leaving)" 128 10s
LEAVERS=32 LEAVE_AFTER=1 LEAVE_ACTION=429/ra=2 TRIED=curl:left ACTIONS="429/ra=1:10" \
    run "clients leaving after 1 s during Retry-After waits (32 curl clients get 429 with Retry-After: 2)" 64 10s
LEAVERS=32 LEAVE_AFTER=1 LEAVE_ACTION=200/size=2097152 TRIED=curl:left ACTIONS="" \
    run "clients leaving mid-response (32 curl clients get 2 MB at 1 MB/s, leave after 1 s)" 64 10s

ACTIONS=""
TRIED=wrk:injected BODIES=malformed:50 run "hostile JSON bodies on 50 % (truncated, not UTF-8, 10000 levels deep, 1e999999, and valid), the key read from them" 64 10s
TRIED=wrk:injected BODIES=longkey:50 run "a versionId of 1100 bytes on 50 %: keys over 1024 bytes are gated by their digest" 64 10s

start_gateway     # the jobs' figures from zero
TRIED=wrk:injected ASYNC=20 ACTIONS="429/ra=none:30" \
    run "async jobs: 20 % of requests ask for one (202 at once), 429 on 30 % of all, jobs and requests under the same gate and retry" 64 10s

start_gateway
( while true; do sleep 3; kill -9 "$(pgrep -P "$(cat "$B/logs/nginx.pid")" | head -1)" 2>/dev/null && echo >> "$B/kills" || true; done ) &
BG=$!
TRIED=file:kills ASYNC=20 ACTIONS="" \
    run "async jobs on 20 % of requests, SIGKILL of a worker every 3 s: the jobs of a killed worker are marked failed" 128 10s

( while true; do sleep 1; "$NGINX" -p "$B/" -c conf/nginx.conf -s reload; echo >> "$B/reloads"; done ) &
BG=$!
TRIED=file:reloads run "nginx -s reload every second" 128 10s

( while true; do sleep 3; kill -9 "$(pgrep -P "$(cat "$B/logs/nginx.pid")" | head -1)" 2>/dev/null && echo >> "$B/kills" || true; done ) &
BG=$!
TRIED=file:kills run "SIGKILL of a worker every 3 s" 128 10s

start_gateway 32k
TRIED=gate:no_memory run "a zone too small for the keys (32 KB, 5000 versions)" 128 10s 5000
start_gateway 128k
TRIED=wrk:injected RANDOM_VERSIONS=90 run "a flood of random versions (90 % of requests, each a new key) in a 128 KB zone, room for the keys in use but not for the flood, beside the 8 regular versions" 128 10s

echo
echo "The mock counts a request in flight until it answers. When nginx gives up"
echo "on an upstream request (proxy_read_timeout, or a client gone away with"
echo "proxy_ignore_client_abort off), the slot is freed at once while the mock"
echo "still works on the abandoned request: its peak then exceeds the limit, as"
echo "in the rows of a stalled upstream and of timeouts during retries. That"
echo "is the gate keeping its count of what nginx has in flight, not of what"
echo "the upstream still does; see README, scripting_gate. A client that leaves"
echo "mid-response ends its request even with proxy_ignore_client_abort on (nginx"
echo "has nowhere to send the rest) and frees the slot while the mock may still"
echo "be writing the body: the mock then refuses a request that comes in that"
echo "moment with 429 (its peak stays at its limit), as may show in the"
echo "mid-response row."
echo
echo "In the async rows, the clients that asked for a job got 202 at once;"
echo "the jobs then went through the same gate (the mock's peak covers them"
echo "too) and retry. \"Left\" adds the jobs' figures once every job has ended:"
echo "none may stay queued or running. A job fails when its upstream answered"
echo "429 after its 3 attempts, or when its worker was killed (marked failed by"
echo "another worker within a second or two)."
echo
echo "A key longer than 1024 bytes is logged and gated by its first 991"
echo "bytes and the MD5 of the whole (README, scripting_gate_zone): a client"
echo "that controls the key cannot get past the limit by making it long (the"
echo "row with a versionId of 1100 bytes)."
echo
cat bench/memory-safety.md
