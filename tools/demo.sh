#!/bin/sh
# make demo: the mock Scripting API (a per-version limit of 4, 50 ms per
# request) and the gateway (conf-examples/demo.conf) on loopback; the same
# burst once straight at the mock and once through the gateway, then what
# the clients got and what the upstream saw.
set -e
cd "$(dirname "$0")/.."
top=$PWD
D=$top/build/demo
NGINX=${NGINX_BIN:-/usr/sbin/nginx}
N=${DEMO_REQUESTS:-400}

stop() {
    if [ -f "$D/logs/nginx.pid" ]; then
        "$NGINX" -p "$D" -c conf/nginx.conf -s stop 2>/dev/null || true
        rm -f "$D/logs/nginx.pid"
    fi
    if [ -f "$D/mock.pid" ]; then
        kill "$(cat "$D/mock.pid")" 2>/dev/null || true
        rm -f "$D/mock.pid"
    fi
}

if [ "${1:-}" = stop ]; then
    stop
    echo "demo stopped"
    exit 0
fi

stop
mkdir -p "$D/logs" "$D/conf" "$D/modules"
ln -sf "$top/build/nginx/ngx_http_scripting_gate_module.so" "$D/modules/"
cp conf-examples/demo.conf "$D/conf/nginx.conf"

"$top/build/scripting-mock" --listen 127.0.0.1:9001 --limit 4 --delay 50 \
    --quiet > "$D/mock.log" 2>&1 &
echo $! > "$D/mock.pid"
i=0
until curl -s -o /dev/null http://127.0.0.1:9001/__mock/stats; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "the mock did not start"; exit 1; }
    sleep 0.05
done

"$NGINX" -p "$D" -c conf/nginx.conf

burst() {
    # $N concurrent GETs over 8 script versions, all started at once
    cfg="$D/burst.curl"
    : > "$cfg"
    i=0
    while [ $i -lt "$N" ]; do
        echo "url = \"$1/api/v2/scripts/script-$((i % 8))?scriptDataVersion=1\"" >> "$cfg"
        echo 'output = "/dev/null"' >> "$cfg"
        i=$((i + 1))
    done
    curl -s --parallel --parallel-immediate --parallel-max "$N" -K "$cfg" \
        -w '%{http_code}\n' 2>/dev/null | sort | uniq -c | \
        awk '{ printf "    %s x %s\n", $2, $1 }'
}

upstream() {
    curl -s http://127.0.0.1:9001/__mock/stats | perl -MJSON::PP -e '
        my $s = decode_json(join "", <STDIN>);
        for my $k (sort keys %{$s->{keys}}) {
            my $v = $s->{keys}{$k};
            printf "    %-22s requests %4d  peak in flight %2d  429s sent %4d\n",
                $k, $v->{requests}, $v->{peak_in_flight}, $v->{status}{429} // 0;
        }'
}

echo "== $N concurrent requests straight at the mock (limit 4 per version)"
curl -s -X POST http://127.0.0.1:9001/__mock/reset > /dev/null
burst http://127.0.0.1:9001
echo "  the upstream saw:"
upstream

echo
echo "== the same $N requests through the gateway (scripting_gate limit=4)"
curl -s -X POST http://127.0.0.1:9001/__mock/reset > /dev/null
burst http://127.0.0.1:8080
echo "  the upstream saw:"
upstream

echo
echo "== an async job: Prefer: respond-async, while the mock answers 429 once"
curl -s -X POST http://127.0.0.1:9001/__mock/reset > /dev/null
curl -s -X POST 'http://127.0.0.1:9001/__mock/plan?key=script-async%3A%3Av1&actions=429%2Fra%3D1%2C200%2Fecho' > /dev/null
loc=$(curl -s -D - -o "$D/job.json" -H 'Prefer: respond-async' \
        -H 'Content-Type: application/json' -d '{"versionId":"v1"}' \
        http://127.0.0.1:8080/api/v2/scripts/script-async/export \
      | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
echo "  at once: 202, Location: $loc"
echo "    $(cat "$D/job.json")"
i=0
while :; do
    code=$(curl -s -o "$D/result.json" -w '%{http_code}' "http://127.0.0.1:8080$loc/result")
    [ "$code" != 202 ] && break
    i=$((i + 1)); [ $i -lt 500 ] || break
    sleep 0.02
done
echo "  the job, once done:"
echo "    $(curl -s "http://127.0.0.1:8080$loc")"
echo "  its result: $code $(cat "$D/result.json")"

echo
echo "The mock (127.0.0.1:9001) and the gateway (127.0.0.1:8080) keep running:"
echo "  status page: http://127.0.0.1:8080/scripting-gate/status?format=html"
echo "  stop them with: make demo-stop"
