# Retry inside the request: backoff, Retry-After (seconds and HTTP-date),
# deadline, attempts, budget, body replay, streaming, client aborts.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Digest::MD5 qw(md5_hex);
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get status_json
                           wait_until background reap worker_pids
                           error_log_has);
use Time::HiRes qw(time sleep);
use IO::Socket::INET;

ScriptingGate::Mock::start(delay => 0);

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $script_id  zone=s:1m;

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

# what the upstream saw of one key
sub seen {
    my ($key) = @_;
    my $k = ScriptingGate::Mock::key_stats($key);
    my @t = @{ $k->{arrivals_ms} || [] };
    my @gaps = map { $t[$_] - $t[$_ - 1] } 1 .. $#t;
    return ($k, @gaps);
}

sub within { my ($v, $lo, $hi) = @_; return ($v >= $lo && $v <= $hi) ? 'ok' : "out($v)"; }

run_tests();

__DATA__

=== TEST 1: 429 twice then 200: one clean answer; the same body three times; the waits honour Retry-After
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 deadline=10s;
        add_header X-Retries $scripting_retry_count;
        add_header X-Upstream $upstream_status;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('r1::v1', '429/ra=1', '429/ra=1', '200/echo');
my $body = '{"fileName":"a.json","versionId":"v1"}';
my $res = http_get('/api/v2/scripts/r1/export', method => 'POST', body => $body,
                   headers => { 'Content-Type' => 'application/json' });
my ($k, @gaps) = seen('r1::v1');
html_put('result.txt', join '',
    "client: $res->{status} $res->{content}\n",
    "retries: $res->{headers}{'x-retries'}\n",
    "upstream_status: $res->{headers}{'x-upstream'}\n",
    "upstream: requests=$k->{requests} distinct_bodies=$k->{distinct_bodies}\n",
    "waits: ", join(' ', map { within($_, 1000, 1300) } @gaps), "\n");
--- request
GET /result.txt
--- response_body
client: 200 {"fileName":"a.json","versionId":"v1"}
retries: 2
upstream_status: 429, 429, 200
upstream: requests=3 distinct_bodies=1
waits: ok ok
--- timeout: 10



=== TEST 2: a body spooled to a temporary file is sent byte for byte on every attempt
--- config
    client_body_buffer_size 1k;
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 base=10ms cap=50ms deadline=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('big::v2', '429/ra=none', '429/ra=none', '200/echo');
my $body = '{"versionId":"v2","data":"' . ('0123456789' x 20000) . '"}';
my $res = http_get('/api/v2/scripts/big/export', method => 'POST', body => $body);
my ($k) = seen('big::v2');
html_put('result.txt', join '',
    "client: $res->{status} ", ($res->{content} eq $body ? "same" : "different"), "\n",
    "upstream: requests=$k->{requests} distinct_bodies=$k->{distinct_bodies}",
    " last_body_len=$k->{last_body_len}\n");
--- request
GET /result.txt
--- response_body
client: 200 same
upstream: requests=3 distinct_bodies=1 last_body_len=200028
--- timeout: 10



=== TEST 3: Retry-After as an HTTP-date is honoured
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=2 deadline=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('date::', '429/date=2', '200');
my $res = http_get('/api/v2/scripts/date');
my ($k, @gaps) = seen('date::');
# an HTTP-date counts whole seconds: 2 s ahead is 1 to 2 s away
html_put('result.txt', "client: $res->{status}\nupstream: requests=$k->{requests}\n"
         . "wait: " . within($gaps[0], 1000, 2300) . "\n");
--- request
GET /result.txt
--- response_body
client: 200
upstream: requests=2
wait: ok
--- timeout: 10



=== TEST 4: Retry-After above max: the upstream's 429 reaches the client at once, unchanged
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 deadline=600s;
        scripting_retry_after on max=60s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('long::', '429/ra=200');
--- request
GET /api/v2/scripts/long
--- error_code: 429
--- response_headers
Retry-After: 200
Content-Type: application/json
Cache-Control: no-cache, no-store, must-revalidate
--- response_body_like chomp
^\{"message":"Rate limit exceeded the maximum\. Retry the request in \[200\] seconds","code":"too\.many\.requests\.retry\.after","status":429,"contextId":"[-0-9a-f]{36}","details":\[\],"errors":\[\]\}$
--- error_log
is beyond the maximum, the answer goes to the client



=== TEST 5: Retry-After beyond the deadline: the 429 reaches the client at once
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 deadline=2s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('late::', '429/ra=5');
--- request
GET /api/v2/scripts/late
--- error_code: 429
--- response_headers
Retry-After: 5
--- error_log
is beyond the deadline, the answer goes to the client



=== TEST 6: attempts exhausted: the last upstream answer reaches the client unchanged
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429,503 attempts=3 base=10ms cap=20ms deadline=10s;
        add_header X-Retries $scripting_retry_count always;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('ex::', '429/ra=none', '429/ra=none', '503', '200');
--- request
GET /api/v2/scripts/ex
--- error_code: 503
--- response_headers
X-Retries: 2
--- response_body_like: "code":"service.unavailable"



=== TEST 7: statuses not listed pass through at once
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 base=10ms;
        add_header X-Retries $scripting_retry_count always;
        proxy_pass http://mock;
    }
--- more_headers
X-Mock-Action: 502
--- request
GET /api/v2/scripts/other
--- error_code: 502
--- response_headers
X-Retries: 0



=== TEST 8: a 503 of a POST is not retried without non_idempotent
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429,503 attempts=3 base=10ms;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('post::', '503', '200');
--- request
POST /api/v2/scripts/post/export
{}
--- error_code: 503



=== TEST 9: a 503 of a POST is retried with non_idempotent
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429,503 attempts=3 base=10ms non_idempotent;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('post::', '503', '200');
--- request
POST /api/v2/scripts/post/export
{}
--- response_body_like: "url"



=== TEST 10: a 10 MB answer streams through byte for byte, without the worker holding it
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 base=10ms;
        proxy_pass http://mock;
    }
--- init
package main;
sub rss { my $kb = 0;
    for my $pid (worker_pids()) {
        open my $fh, '<', "/proc/$pid/status" or next;
        while (<$fh>) { $kb += $1 if /^VmRSS:\s+(\d+)/ }
    }
    return $kb;
}
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('huge::', '429/ra=none', '200/size=10485760');
my $ref = http_get("http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/api/v2/scripts/x",
                   headers => { 'X-Mock-Size' => 10485760 })->{content};
http_get('/api/v2/scripts/warm');
my $before = rss();
my $res = http_get('/api/v2/scripts/huge');
my $grew = rss() - $before;
html_put('result.txt', join '',
    "client: $res->{status} length=", length($res->{content}),
    " ", (md5_hex($res->{content}) eq md5_hex($ref) ? "same" : "different"), "\n",
    "worker memory grew by less than 4 MB: ", ($grew < 4096 ? "yes" : "no ($grew kB)"), "\n");
--- request
GET /result.txt
--- response_body
client: 200 length=10485760 same
worker memory grew by less than 4 MB: yes
--- timeout: 20



=== TEST 11: a client that goes away during the backoff: nothing is retried
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 deadline=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('gone::', '429/ra=1', '200');
# the client goes away once the first attempt has had its 429 (not after
# a fixed time, which a slow nginx, under valgrind say, may not meet)
my $kids = background(['/api/v2/scripts/gone', timeout => 10]);
wait_until(5, sub { (seen('gone::'))[0]{requests} >= 1 });
kill 'KILL', $kids->[0][0];
my ($res) = reap($kids);
# the retry would have gone out 1 s after the 429
sleep 1.5;
my ($k) = seen('gone::');
html_put('result.txt', "client: $res->[0]\nupstream: requests=$k->{requests}\n");
--- request
GET /result.txt
--- response_body
client: 599
upstream: requests=1
--- timeout: 10



=== TEST 12: the retry budget stops retries against an upstream that answers 429 to everything
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=20;
        scripting_retry on=429 attempts=5 base=50ms cap=50ms jitter=none
                        budget=0% budget_min=1 deadline=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# 400 ms per answer: all ten are in flight before the first 429 comes back,
# even under the sanitizers
my $kids = background(map { ["/api/v2/scripts/dead",
                             headers => { 'X-Mock-Action' => '429/ra=none/delay=400' }] } 1 .. 10);
my %st; $st{ $_->[0] }++ for reap($kids);
my ($k) = seen('dead::');
html_put('result.txt', join('', map { "client $_ x $st{$_}\n" } sort keys %st)
         . "upstream: requests=$k->{requests}\n"
         . "logged: " . (error_log_has(qr/retry budget exhausted/) ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
client 429 x 10
upstream: requests=14
logged: yes
--- timeout: 10



=== TEST 13: with the gate, a 429 closes the key for its Retry-After: nobody else goes out meanwhile
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=2 queue=50 queue_timeout=10s;
        scripting_retry on=429 attempts=3 deadline=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('cool::', '429/ra=1', ('200/delay=100') x 6);
my $kids = background(map { ["/api/v2/scripts/cool"] } 1 .. 6);
my %st; $st{ $_->[0] }++ for reap($kids);
my ($k, @gaps) = seen('cool::');
my $max = 0; $max = $_ > $max ? $_ : $max for @gaps;
html_put('result.txt', join('', map { "client $_ x $st{$_}\n" } sort keys %st)
         . "upstream: requests=$k->{requests} peak=$k->{peak_in_flight} 429=$k->{status}{429}\n"
         # nginx's cached time may lag by a loop's length: tens of ms
         # under valgrind (SCRIPTING_GATE_SLOW, set by t/run.sh)
         . "a pause of a second: "
         . ($max >= ($ENV{SCRIPTING_GATE_SLOW} ? 850 : 950) ? "yes" : "no ($max)") . "\n");
--- request
GET /result.txt
--- response_body
client 200 x 6
upstream: requests=7 peak=2 429=1
a pause of a second: yes
--- timeout: 10



=== TEST 14: an unknown jitter fails the configuration, naming it
--- config
    location /api/ {
        scripting_retry on=429 jitter=random;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
invalid jitter "jitter=random"



=== TEST 15: a status code out of range fails the configuration
--- config
    location /api/ {
        scripting_retry on=429,200;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
invalid status code in "on=429,200"



=== TEST 16: attempts=0 fails the configuration
--- config
    location /api/ {
        scripting_retry attempts=0;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
invalid attempts "attempts=0"



=== TEST 17: an upstream that resets the connection, through the gate: retried, nothing breaks
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=2;
        scripting_retry on=502 attempts=3 base=10ms cap=20ms;
        add_header X-Retries $scripting_retry_count;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('rst::', 'reset', 'reset', '200');
--- request
GET /api/v2/scripts/rst
--- response_headers
X-Retries: 2
--- response_body_like: "id":"rst"
--- no_error_log
exited on signal



=== TEST 18: proxy_request_buffering off: a request with a body is not retried, its 429 goes through and is logged; one without a body is retried
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        proxy_request_buffering off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        scripting_retry on=429 attempts=3 deadline=10s;
        add_header X-Retries $scripting_retry_count always;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('stream::v1', '429/ra=1', '200/echo');
ScriptingGate::Mock::plan('stream::', '429/ra=1', '200');
my $body = '{"fileName":"a.json","versionId":"v1"}';
my $post = http_get('/api/v2/scripts/stream/export', method => 'POST',
                    body => $body,
                    headers => { 'Content-Type' => 'application/json' });
my ($kp) = seen('stream::v1');
my $get = http_get('/api/v2/scripts/stream');
my ($kg) = seen('stream::');
html_put('result.txt', join '',
    "post: $post->{status} retries=$post->{headers}{'x-retries'}",
    " upstream requests=$kp->{requests} body_len=$kp->{last_body_len}\n",
    "get: $get->{status} retries=$get->{headers}{'x-retries'}",
    " upstream requests=$kg->{requests}\n");
--- request
GET /result.txt
--- response_body
post: 429 retries=0 upstream requests=1 body_len=38
get: 200 retries=1 upstream requests=2
--- error_log
scripting_retry: the upstream's 429 goes to the client, the request body was streamed (proxy_request_buffering off) and cannot be sent again
--- timeout: 10



=== TEST 19: proxy_request_buffering off: requests with a body still go through the gate
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        proxy_request_buffering off;
        scripting_gate zone=s limit=2 queue=50 queue_timeout=10s;
        scripting_retry on=429 attempts=3 deadline=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('sgate::', ('200/delay=100') x 6);
my $kids = background(map { ["/api/v2/scripts/sgate", method => 'POST',
                              body => "{\"n\":$_}"] } 1 .. 6);
my %st; $st{ $_->[0] }++ for reap($kids);
my ($k) = seen('sgate::');
html_put('result.txt', join('', map { "client $_ x $st{$_}\n" } sort keys %st)
         . "upstream: requests=$k->{requests} peak=$k->{peak_in_flight}\n");
--- request
GET /result.txt
--- response_body
client 200 x 6
upstream: requests=6 peak=2
--- timeout: 10



=== TEST 20: proxy_request_buffering off: a chunked body that nginx sends as HTTP/1.0 is read whole, and retried
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        proxy_request_buffering off;
        scripting_retry on=429 attempts=3 deadline=10s;
        add_header X-Retries $scripting_retry_count always;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('chunk::v1', '429/ra=1', '200/echo');
my @parts = ('{"fileName":"a.json",', '"versionId":"v1"}');
my $res = http_get('/api/v2/scripts/chunk/export', method => 'POST',
                   body => sub { shift @parts },
                   headers => { 'Content-Type' => 'application/json' });
my ($k) = seen('chunk::v1');
html_put('result.txt', "client: $res->{status} retries=$res->{headers}{'x-retries'} $res->{content}\n"
         . "upstream: requests=$k->{requests} distinct_bodies=$k->{distinct_bodies}\n");
--- request
GET /result.txt
--- response_body
client: 200 retries=1 {"fileName":"a.json","versionId":"v1"}
upstream: requests=2 distinct_bodies=1
--- no_error_log
cannot be sent again
--- timeout: 10



=== TEST 21: a request gated in one location and redirected to a location with retry keeps its one slot, and gives it back
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=1;
        proxy_intercept_errors on;
        error_page 429 = @retry;
        proxy_pass http://mock;
    }
    location @retry {
        scripting_gate zone=s limit=1;
        scripting_retry on=429 attempts=3 deadline=10s;
        proxy_pass http://mock;
    }
    location = /status {
        scripting_gate_stats;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('redir::', '429/ra=none', '200');
my $res = http_get('/api/v2/scripts/redir');
# the slot goes back when nginx has closed the request, just after the answer
my $k = {};
wait_until(5, sub {
    my $st = status_json('/status');
    $k = $st->{zones}{s}{keys}{'redir'} || {};
    ($k->{active} // 1) == 0;
});
html_put('result.txt', "client: $res->{status}\n"
         . "active after: " . ($k->{active} // 'none') . "\n");
--- request
GET /result.txt
--- response_body
client: 200
active after: 0
--- timeout: 10



=== TEST 22: the waits spread as the jitter says: full in [0, v), equal in [v/2, v], none exactly v, doubling
--- config
    location ~ ^/full/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=2 base=400ms cap=400ms jitter=full
                        budget=100% deadline=10s;
        proxy_pass http://mock/api/v2/scripts/$script_id;
    }
    location ~ ^/equal/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=2 base=400ms cap=400ms jitter=equal
                        budget=100% deadline=10s;
        proxy_pass http://mock/api/v2/scripts/$script_id;
    }
    location ~ ^/none/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 base=150ms cap=5s jitter=none
                        budget=100% deadline=10s;
        proxy_pass http://mock/api/v2/scripts/$script_id;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my @full = map { "jf$_" } 1 .. 24;
my @equal = map { "je$_" } 1 .. 12;
ScriptingGate::Mock::plan("$_\::", '429/ra=none', '200') for @full, @equal;
ScriptingGate::Mock::plan('jn::', '429/ra=none', '429/ra=none', '200');
my %st = ScriptingGate::Mock::burst(
    paths => [ (map { "/full/$_" } @full), (map { "/equal/$_" } @equal),
               '/none/jn' ]);
my $gap = sub { my (undef, @g) = seen($_[0]); return @g };
my @f = map { $gap->("$_\::") } @full;
my @e = map { $gap->("$_\::") } @equal;
my @n = $gap->('jn::');
my $below = sub { my ($lim, @v) = @_; return scalar grep { $_ < $lim } @v };
# a uniform wait in [0, 400): some of 24 fall below 150 (all but surely:
# each misses with p = 0.625, all 24 with p < 2e-5); in [200, 400]: none
# below 190, some of 12 below 330
html_put('result.txt', join '',
    "clients: ", join(' ', map { "$_ x $st{$_}" } sort keys %st), "\n",
    "full: ", scalar(@f), " waits, all below 450: ",
        ($below->(450, @f) == @f ? "yes" : "no (@f)"), ", some below 150: ",
        ($below->(150, @f) ? "yes" : "no (@f)"), "\n",
    "equal: ", scalar(@e), " waits, none below 190: ",
        ($below->(190, @e) ? "no (@e)" : "yes"), ", all below 450: ",
        ($below->(450, @e) == @e ? "yes" : "no (@e)"), ", some below 330: ",
        ($below->(330, @e) ? "yes" : "no (@e)"), "\n",
    "none: ", join(' ', within($n[0], 150, 230), within($n[1], 300, 380)), "\n");
--- request
GET /result.txt
--- response_body
clients: 200 x 37
full: 24 waits, all below 450: yes, some below 150: yes
equal: 12 waits, none below 190: yes, all below 450: yes, some below 330: yes
none: ok ok
--- timeout: 20



=== TEST 23: a backoff that would end past the deadline is not waited: the answer goes to the client at once
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=5 base=1s cap=1s jitter=none
                        deadline=1500ms;
        add_header X-Retries $scripting_retry_count always;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('dl::', ('429/ra=none') x 5);
my $t0 = time;
my $res = http_get('/api/v2/scripts/dl');
my $took = time - $t0;
my ($k) = seen('dl::');
# one wait of 1 s fits in the deadline of 1.5 s, a second one does not
# (under valgrind, SCRIPTING_GATE_SLOW, each answer takes longer)
html_put('result.txt', "client: $res->{status} retries=$res->{headers}{'x-retries'}\n"
         . "took: " . within(int($took * 1000), 950,
                             $ENV{SCRIPTING_GATE_SLOW} ? 2500 : 1450) . "\n"
         . "upstream: requests=$k->{requests}\n");
--- request
GET /result.txt
--- response_body
client: 429 retries=1
took: ok
upstream: requests=2
--- timeout: 10



=== TEST 24: the retry budget is a share of the requests under way: 50 % of 10 lets 5 of them retry
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=20;
        scripting_retry on=429 attempts=2 base=50ms cap=50ms jitter=none
                        budget=50% budget_min=1 deadline=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# 600 ms per answer: all ten are under way before the first 429 comes back;
# a retry holds its share until its request ends
my $kids = background(map { ["/api/v2/scripts/share",
                             headers => { 'X-Mock-Action' => '429/ra=none/delay=600' }] } 1 .. 10);
my %st; $st{ $_->[0] }++ for reap($kids);
my ($k) = seen('share::');
html_put('result.txt', join('', map { "client $_ x $st{$_}\n" } sort keys %st)
         . "upstream: requests=$k->{requests}\n");
--- request
GET /result.txt
--- response_body
client 429 x 10
upstream: requests=15
--- timeout: 10



=== TEST 25: decorrelated jitter: each wait from base to three times the last one, never above cap
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=5 base=100ms cap=150ms
                        jitter=decorrelated budget=100% deadline=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my @keys = map { "dj$_" } 1 .. 4;
ScriptingGate::Mock::plan("$_\::", ('429/ra=none') x 4, '200') for @keys;
my %st = ScriptingGate::Mock::burst(paths => [ map { "/api/v2/scripts/$_" } @keys ]);
my @g = map { my (undef, @gaps) = seen("$_\::"); @gaps } @keys;
# uncapped, a wait is in [100, 300) ms at first and grows from there
html_put('result.txt', "clients: " . join(' ', map { "$_ x $st{$_}" } sort keys %st) . "\n"
    . "waits: " . scalar(@g) . ", all in [90, 230]: "
    . ((grep { $_ < 90 || $_ > 230 } @g) ? "no (@g)" : "yes") . "\n");
--- request
GET /result.txt
--- response_body
clients: 200 x 4
waits: 16, all in [90, 230]: yes
--- timeout: 15



=== TEST 26: a client that sends its body slowly holds no slot while it comes
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=1 queue=10 queue_timeout=1s;
        scripting_retry on=429 attempts=3 deadline=10s;
        add_header X-Gate $scripting_gate_status always;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# A sends half its body and stalls; B comes meanwhile and must get the slot
my $a = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => ScriptingGate::Util::server_port(),
                              Timeout => 10) or die "connect: $!";
print $a "POST /api/v2/scripts/slow/export HTTP/1.0\r\nHost: localhost\r\n"
         . "X-Mock-Echo: 1\r\nContent-Length: 10\r\n\r\n01234";
sleep 0.2;
my $b = http_get('/api/v2/scripts/slow');
print $a "56789";
local $/;
my $ares = <$a> // '';
close $a;
my ($astatus) = $ares =~ m{^HTTP/1\.\d (\d+)};
my (undef, $abody) = split /\r\n\r\n/, $ares, 2;
html_put('result.txt', "B: $b->{status} $b->{headers}{'x-gate'}\n"
                       . "A: $astatus " . ($abody // '') . "\n");
--- request
GET /result.txt
--- response_body
B: 200 PASSED
A: 200 0123456789
--- timeout: 10
