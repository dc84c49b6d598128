# The gate: per-key limit across workers, FIFO queue, rejections, release
# on every path.  The mock answers after 100 ms by default and has no limit
# of its own, so its peak in flight per key is exactly what the gate let by.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get status_json
                           wait_until background reap master_pid
                           worker_pids error_log_has);

ScriptingGate::Mock::start(delay => 100);

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $script_key  zone=s:1m;
    scripting_json_var   $body_version_id  /versionId;

    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 16;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
});

sub scripts { my ($n, $keys) = @_;
    return map { "/api/v2/scripts/s" . ($_ % $keys) . "?scriptDataVersion=1" }
           0 .. $n - 1;
}

sub client_report {
    my %st;
    $st{ $_->[0] }++ for @_;
    return join '', map { "$_ x $st{$_}\n" } sort keys %st;
}

run_tests();

__DATA__

=== TEST 1: a burst of 120 over 4 keys: the upstream never sees more than the limit per key
--- config
    location ~ ^/api/v2/scripts/(?:published/)?(?<script_id>[^/]+) {
        set $script_key "$script_id:$arg_scriptDataVersion:$body_version_id";
        scripting_gate zone=s limit=3 queue=200 queue_timeout=10s;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# all 120 connections are open before any request is sent: forked clients
# come one by one, and on a slow start may never fill the limit
my %st = ScriptingGate::Mock::burst(n => 120, paths => [scripts(120, 4)]);
html_put('result.txt', join('', map { "$_ x $st{$_}\n" } sort keys %st)
                       . ScriptingGate::Mock::upstream_report());
--- request
GET /result.txt
--- response_body
200 x 120
s0:1: requests=30 peak=3
s1:1: requests=30 peak=3
s2:1: requests=30 peak=3
s3:1: requests=30 peak=3
--- timeout: 20



=== TEST 2: with one slot, queued requests are served in the order they came, across workers
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=100 queue_timeout=10s;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
ScriptingGate::Mock::reset();
my @kids;
for my $i (1 .. 8) {
    push @kids, background(["/api/v2/scripts/order?n=$i",
                            headers => { 'X-Mock-Action' => '200/delay=150' }]);
    # the next one comes when this one is in the queue (or holds the slot)
    wait_until(5, sub {
        my $s = status_json('/status') or return 0;
        my $k = $s->{zones}{s}{keys}{order} or return 0;
        return $k->{active} + $k->{queued} == $i;
    });
}
my @finish = map { (reap($_))[0][3] } @kids;
my $ordered = 1;
for my $i (1 .. $#finish) {
    $ordered = 0 if $finish[$i] < $finish[$i - 1] - 0.02;
}
html_put('result.txt', "ordered=$ordered\n"
                       . ScriptingGate::Mock::upstream_report());
--- request
GET /result.txt
--- response_body
ordered=1
order:: requests=8 peak=1
--- timeout: 20



=== TEST 3: queue full: 429 at once, Retry-After and the upstream's JSON error shape
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=1 queue_timeout=10s;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
our $kids3 = background(map { ["/api/v2/scripts/full",
                                headers => { 'X-Mock-Action' => '200/delay=1000' }] } 1 .. 2);
wait_until(5, sub {
    my $s = status_json('/status') or return 0;
    my $k = $s->{zones}{s}{keys}{full} or return 0;
    return $k->{active} == 1 && $k->{queued} == 1;
});
--- request
GET /api/v2/scripts/full
--- error_code: 429
--- response_headers
Content-Type: application/json
Cache-Control: no-cache, no-store, must-revalidate
Retry-After: 2
--- response_body_like chomp
^\{"message":"Rate limit exceeded the maximum\. Retry the request in \[2\] seconds","code":"too\.many\.requests\.retry\.after","status":429,"contextId":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}","details":\[\],"errors":\[\]\}$
--- error_log
limiting requests by scripting_gate, queue full, key "full" in zone "s"



=== TEST 4: queue timeout: 429 after queue_timeout, logged at scripting_gate_log_level
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=10 queue_timeout=300ms;
        scripting_gate_log_level warn;
        scripting_gate_status 503;
        add_header X-Gate $scripting_gate_status always;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
our $kids4 = background(["/api/v2/scripts/slow",
                         headers => { 'X-Mock-Action' => '200/delay=1500' }]);
wait_until(5, sub {
    my $s = status_json('/status') or return 0;
    my $k = $s->{zones}{s}{keys}{slow} or return 0;
    return $k->{active} == 1;
});
--- request
GET /api/v2/scripts/slow
--- error_code: 503
--- response_headers
X-Gate: TIMEOUT
Content-Type: application/json
--- response_body_like chomp
^\{"message":"Rate limit exceeded the maximum\. Retry the request in \[\d+\] seconds","code":"service\.unavailable","status":503,"contextId":"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}","details":\[\],"errors":\[\]\}$
--- error_log eval
qr/\[warn\] .*limiting requests by scripting_gate, queue timeout, key "slow" in zone "s"/



=== TEST 5: clients that go away while queued leave nothing behind
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=100 queue_timeout=10s;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
ScriptingGate::Mock::reset();
my $hold = background(["/api/v2/scripts/abort",
                       headers => { 'X-Mock-Action' => '200/delay=800' }]);
wait_until(5, sub { ScriptingGate::Mock::key_stats('abort::')->{in_flight} });
# five clients that give up after 200 ms, while queued
my $quitters = background(map { ["/api/v2/scripts/abort", timeout => 0.2] } 1 .. 5);
reap($quitters);
wait_until(5, sub { status_json('/status')->{zones}{s}{keys}{abort}{queued} == 0 });
my $k = status_json('/status')->{zones}{s}{keys}{abort};
my $during = "during: active=$k->{active} queued=$k->{queued}\n";
reap($hold);
wait_until(5, sub { status_json('/status')->{zones}{s}{keys}{abort}{active} == 0 });
$k = status_json('/status')->{zones}{s}{keys}{abort};
html_put('result.txt', $during . "after: active=$k->{active} queued=$k->{queued}\n"
         . ScriptingGate::Mock::upstream_report());
--- request
GET /result.txt
--- response_body
during: active=1 queued=0
after: active=0 queued=0
abort:: requests=1 peak=1
--- timeout: 10



=== TEST 6: a worker killed with SIGKILL while holding slots: the others take them back
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=2 queue=100 queue_timeout=10s;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
# POST: HTTP::Tiny sends a GET again when its connection breaks
my $kids = background(map { ["/api/v2/scripts/killed", method => 'POST', body => '{}',
                             headers => { 'X-Mock-Action' => '200/delay=5000' }] } 1 .. 2);
wait_until(5, sub {
    my $s = status_json('/status') or return 0;
    my $k = $s->{zones}{s}{keys}{killed} or return 0;
    return $k->{active} == 2;
});
kill 'KILL', worker_pids();
my @clients = reap($kids);
my $back = wait_until(5, sub {
    my $s = status_json('/status') or return 0;
    return $s->{zones}{s}{keys}{killed}{active} == 0;
});
my $res = http_get('/api/v2/scripts/killed');
html_put('result.txt', "slots back: " . ($back ? "yes" : "no") . "\n"
    . "logged: " . (error_log_has(qr/scripting_gate: reclaimed what process \d+ held in zone "s"/) ? "yes" : "no") . "\n"
    . "next request: $res->{status}\n");
--- request
GET /result.txt
--- response_body
slots back: yes
logged: yes
next request: 200
--- timeout: 10



=== TEST 7: nginx -s reload during a burst: every request ends 200, counts go back to zero
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=2 queue=200 queue_timeout=10s;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
ScriptingGate::Mock::reset();
my $kids = background(map { ["/api/v2/scripts/reload$_"] } map { $_ % 2 } 1 .. 40);
wait_until(5, sub {
    my $s = status_json('/status') or return 0;
    my $k = $s->{zones}{s}{keys}{reload0} or return 0;
    return $k->{queued} > 0;
});
kill 'HUP', master_pid();
my $clients = client_report(reap($kids));
wait_until(5, sub {
    my $s = status_json('/status') or return 0;
    my $z = $s->{zones}{s}{keys};
    return $z->{reload0}{active} + $z->{reload0}{queued}
           + $z->{reload1}{active} + $z->{reload1}{queued} == 0;
});
my $z = status_json('/status')->{zones}{s}{keys};
html_put('result.txt', $clients
         . "left: $z->{reload0}{active} $z->{reload0}{queued} "
         . "$z->{reload1}{active} $z->{reload1}{queued}\n"
         . ScriptingGate::Mock::upstream_report());
--- request
GET /result.txt
--- response_body
200 x 40
left: 0 0 0 0
reload0:: requests=20 peak=2
reload1:: requests=20 peak=2
--- timeout: 20



=== TEST 8: a 429 with Retry-After closes the key: the next request is answered at once
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=4 queue=10 queue_timeout=500ms;
        add_header X-Gate $scripting_gate_status always;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
http_get('/api/v2/scripts/cool', headers => { 'X-Mock-Action' => '429/ra=5' });
--- request
GET /api/v2/scripts/cool
--- error_code: 429
--- response_headers
X-Gate: REJECTED
Retry-After: 5
--- response_body_like: "code":"too.many.requests.retry.after"



=== TEST 9: dry run: delays and rejects nothing, says what it would have done
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=0;
        scripting_gate_dry_run on;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $kids = background(map { ["/api/v2/scripts/dry"] } 1 .. 6);
html_put('result.txt', client_report(reap($kids))
    . "logged: " . (error_log_has(qr/dry run, limiting requests by scripting_gate, queue full, key "dry"/) ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
200 x 6
logged: yes



=== TEST 10: the key is read from the JSON body; the body reaches the upstream intact
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id:$arg_scriptDataVersion:$body_version_id";
        scripting_gate zone=s limit=2;
        add_header X-Key $scripting_gate_key;
        add_header X-Gate $scripting_gate_status;
        proxy_pass http://mock;
    }
--- request
POST /api/v2/scripts/abc/export
{"fileName": "x.json", "versionId": "v-42"}
--- more_headers
Content-Type: application/json
X-Mock-Echo: 1
--- response_headers
X-Key: abc::v-42
X-Gate: PASSED
--- response_body chomp
{"fileName": "x.json", "versionId": "v-42"}



=== TEST 11: a body that is not JSON gives an empty value and still goes through
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id:$body_version_id";
        scripting_gate zone=s limit=2;
        add_header X-Key $scripting_gate_key;
        proxy_pass http://mock;
    }
--- request
POST /api/v2/scripts/abc/export
{"versionId":
--- more_headers
X-Mock-Echo: 1
--- response_headers
X-Key: abc:
--- response_body chomp
{"versionId":
--- error_log
scripting_json_var: request body is not JSON



=== TEST 12: an empty key is not gated
--- config
    location /api/ {
        set $script_key "";
        scripting_gate zone=s limit=1 queue=0;
        add_header X-Gate "[$scripting_gate_status]";
        proxy_pass http://mock;
    }
--- request
GET /api/v2/scripts/x
--- response_headers
X-Gate: []



=== TEST 13: a flood of distinct keys in a small zone evicts idle keys and keeps working
--- http_config
    scripting_gate_zone  $arg_k  zone=tiny:32k;
    upstream mock { server 127.0.0.1:$TEST_NGINX_MOCK_PORT; }
--- config
    location /api/ {
        scripting_gate zone=tiny limit=1 queue=10;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
my %st;
for my $i (1 .. 600) {
    $st{ http_get("/api/v2/scripts/f?k=" . ('x' x 40) . $i,
                  headers => { 'X-Mock-Action' => '200/delay=0' })->{status} }++;
}
my $s = status_json('/status')->{zones}{tiny};
html_put('result.txt', join('', map { "$_ x $st{$_}\n" } sort keys %st)
         . "evicted: " . ($s->{evicted} > 0 ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
200 x 600
evicted: yes
--- timeout: 30



=== TEST 14: a parameter that is not known fails the configuration, naming it
--- config
    location /api/ {
        scripting_gate zone=s limit=1 queue_size=3;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
invalid parameter "queue_size=3"



=== TEST 15: a malformed limit fails the configuration
--- config
    location /api/ {
        scripting_gate zone=s limit=ten;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
invalid limit "limit=ten"



=== TEST 16: scripting_gate without a zone fails the configuration
--- config
    location /api/ {
        scripting_gate limit=3;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
"scripting_gate" must have "zone" parameter



=== TEST 17: a zone size that is not a size fails the configuration
--- http_config
    scripting_gate_zone  $arg_k  zone=z:lots;
--- config
--- must_die
--- error_log
invalid zone size "zone=z:lots"



=== TEST 18: a zone truly full of keys in use: the requests that find no room are rejected, the others go on
--- http_config
    scripting_gate_zone  $arg_k  zone=tiny:32k;
    upstream mock { server 127.0.0.1:$TEST_NGINX_MOCK_PORT; }
--- config
    location /api/ {
        scripting_gate zone=tiny limit=1 queue=0;
        add_header X-Gate $scripting_gate_status always;
        proxy_pass http://mock;
    }
--- init
package main;
my $long = 'k' x 300;
# all 200 at once: forked clients that come one by one on a loaded machine
# may never have enough keys in use together to fill the zone
my %st = ScriptingGate::Mock::burst(
    paths => [ map { "/api/v2/scripts/full?k=$long$_" } 1 .. 200 ],
    headers => { 'X-Mock-Action' => '200/delay=1000' });
my $after = http_get("/api/v2/scripts/full?k=after")->{status};
html_put('result.txt', "some passed: " . ($st{200} ? "yes" : "no") . "\n"
    . "some refused: " . ($st{429} ? "yes" : "no") . "\n"
    . "nothing else: " . (join(',', sort keys %st) eq '200,429' ? "yes" : "no") . "\n"
    . "logged: " . (error_log_has(qr/scripting_gate: zone "tiny" is full/) ? "yes" : "no") . "\n"
    . "afterwards: $after\n");
--- request
GET /result.txt
--- response_body
some passed: yes
some refused: yes
nothing else: yes
logged: yes
afterwards: 200
--- timeout: 15



=== TEST 19: a request that waited in the queue leaves a client that goes away to proxy_ignore_client_abort
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=10 queue_timeout=10s;
        proxy_ignore_client_abort on;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
ScriptingGate::Mock::reset();
# A holds the slot 600 ms; B waits, then is at the upstream for 600 ms, and
# its client gives up meanwhile; C comes after that
my $a = background(["/api/v2/scripts/ica", headers => { 'X-Mock-Action' => '200/delay=600' }]);
wait_until(5, sub { ScriptingGate::Mock::key_stats('ica::')->{in_flight} });
my $b = background(["/api/v2/scripts/ica", timeout => 1,
                    headers => { 'X-Mock-Action' => '200/delay=600' }]);
my @b = reap($b);
my $c = http_get('/api/v2/scripts/ica', headers => { 'X-Mock-Action' => '200/delay=0' });
reap($a);
wait_until(5, sub { ScriptingGate::Mock::key_stats('ica::')->{in_flight} == 0 });
my $k = ScriptingGate::Mock::key_stats('ica::');
html_put('result.txt', "B: $b[0][0]\nC: $c->{status}\n"
         . "upstream: requests=$k->{requests} peak=$k->{peak_in_flight}\n");
--- request
GET /result.txt
--- response_body
B: 599
C: 200
upstream: requests=3 peak=1
--- timeout: 10



=== TEST 20: a request queued when a cool-down starts waits it out; one whose queue timeout ends first is answered at once
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=10 queue_timeout=10s;
        proxy_pass http://mock;
    }
    location ~ ^/short/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=10 queue_timeout=1s;
        proxy_pass http://mock/api/v2/scripts/$script_id;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
ScriptingGate::Mock::reset();
# A holds the only slot for 400 ms and gets a 429 with Retry-After: 2;
# B (may wait 10 s) and C (1 s) are queued behind it by then
my $a = background(["/api/v2/scripts/cq",
                    headers => { 'X-Mock-Action' => '429/ra=2/delay=400' }]);
wait_until(5, sub { ScriptingGate::Mock::key_stats('cq::')->{in_flight} });
my $b = background(["/api/v2/scripts/cq"]);
wait_until(5, sub { (status_json('/status') || {})->{zones}{s}{keys}{cq}{queued} });
my $c = background(["/short/cq"]);
wait_until(5, sub { ((status_json('/status') || {})->{zones}{s}{keys}{cq}{queued} || 0) == 2 });
my ($ra) = reap($a);
my ($rc) = reap($c);
my ($rb) = reap($b);
my $k = ScriptingGate::Mock::key_stats("cq::");
my @t = @{ $k->{arrivals_ms} };
# B reaches the upstream only when the cool-down is over: 2 s after A's
# answer, which came 400 ms after A's arrival
my $b_wait = $t[1] - $t[0] - 400;
html_put('result.txt', join '',
    "A: $ra->[0]\n",
    "C: $rc->[0] ", ($rc->[3] - $ra->[3] < 0.5 ? "with A's answer" : "late"), "\n",
    "B: $rb->[0]\n",
    "B waited the cool-down: ", ($b_wait >= 1900 ? "yes" : "no ($b_wait ms)"), "\n",
    "upstream: requests=$k->{requests} peak=$k->{peak_in_flight}\n");
--- request
GET /result.txt
--- response_body
A: 429
C: 429 with A's answer
B: 200
B waited the cool-down: yes
upstream: requests=2 peak=1
--- timeout: 15



=== TEST 21: a rejection's correlation id: ININ-Correlation-Id and contextId are one id in Genesys' UUID shape, the access log's $request_id without its dashes
--- http_config
    scripting_gate_zone  $script_key  zone=s:1m;
    log_format  rid  '$request_id $status';

    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=0;
        access_log logs/rid.log rid;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
my $kids = background(["/api/v2/scripts/rid",
                       headers => { 'X-Mock-Action' => '200/delay=1000' }]);
wait_until(5, sub {
    my $s = status_json('/status') or return 0;
    my $k = $s->{zones}{s}{keys}{rid} or return 0;
    return $k->{active} == 1;
});
my $res = http_get('/api/v2/scripts/rid');
reap($kids);
my $id = $res->{headers}{'inin-correlation-id'} // '';
my ($ctx) = ($res->{content} // '') =~ /"contextId":"([^"]*)"/;
(my $hex = $id) =~ tr/-//d;
my $logged = 0;
if (open my $fh, '<', ScriptingGate::Util::servroot() . '/logs/rid.log') {
    $logged = grep { $_ eq "$hex 429\n" } <$fh>;
}
html_put('result.txt', join '',
    "status: $res->{status}\n",
    "ININ-Correlation-Id: ", ($id =~ /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
                              ? "a UUID" : "<$id>"), "\n",
    "contextId: ", (defined $ctx && $ctx eq $id ? "the same" : "<" . ($ctx // '') . ">"), "\n",
    "access log: ", ($logged == 1 ? "the same without its dashes" : "$logged lines"), "\n");
--- request
GET /result.txt
--- response_body
status: 429
ININ-Correlation-Id: a UUID
contextId: the same
access log: the same without its dashes
--- timeout: 10



=== TEST 22: a request that timed out in the queue leaves it: the next one finds its place
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=1 queue=1 queue_timeout=300ms;
        add_header X-Gate $scripting_gate_status always;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $a = background(["/api/v2/scripts/tq", headers => { 'X-Mock-Action' => '200/delay=3000' }]);
wait_until(5, sub { ScriptingGate::Mock::key_stats('tq::')->{in_flight} });
my $b = http_get('/api/v2/scripts/tq');
my $c = http_get('/api/v2/scripts/tq');
reap($a);
html_put('result.txt', "B: $b->{status} $b->{headers}{'x-gate'}\n"
                       . "C: $c->{status} $c->{headers}{'x-gate'}\n");
--- request
GET /result.txt
--- response_body
B: 429 TIMEOUT
C: 429 TIMEOUT
--- timeout: 10



=== TEST 23: a cool-down lasts at most scripting_retry_after's max, whatever the Retry-After
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id";
        scripting_gate zone=s limit=2 queue=10 queue_timeout=100ms;
        scripting_retry_after on max=1s;
        add_header X-Gate $scripting_gate_status always;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
ScriptingGate::Mock::reset();
my $first = http_get('/api/v2/scripts/cmax', headers => { 'X-Mock-Action' => '429/ra=30' });
my $during = http_get('/api/v2/scripts/cmax');
# the key opens again after max (1 s), not after the upstream's 30 s
wait_until(5, sub { ((status_json('/status') || {})->{zones}{s}{keys}{cmax}{cooldown_ms} // 1) == 0 });
my $after = http_get('/api/v2/scripts/cmax');
html_put('result.txt', "first: $first->{status}\n"
    . "during: $during->{status} $during->{headers}{'x-gate'} Retry-After $during->{headers}{'retry-after'}\n"
    . "after: $after->{status} $after->{headers}{'x-gate'}\n");
--- request
GET /result.txt
--- response_body
first: 429
during: 429 REJECTED Retry-After 1
after: 200 PASSED
--- timeout: 10
