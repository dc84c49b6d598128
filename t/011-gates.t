# Interface v2 of scripting_gate: rates, several gates in one location,
# cool-downs scoped to a gate, limits that learn (adaptive), and
# $scripting_gate_limit.  The mock answers after 50 ms and has no limit of
# its own unless a block sets one, so what it saw is what the gates let by.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get status_json servroot
                           wait_until background reap master_pid
                           worker_pids);
use Time::HiRes qw(time sleep);

ScriptingGate::Mock::start(delay => 50);

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $script_key  zone=v:1m;
    scripting_gate_zone  $http_authorization  zone=t:1m;

    log_format order '$arg_i $msec $request_time $scripting_gate_wait';

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

sub client_report {
    my (%st) = @_;
    return join '', map { "$_ x $st{$_}\n" } sort keys %st;
}

# the most attempts the upstream saw start within any one second
sub most_in_a_second {
    my @t = sort { $a <=> $b } @_;
    my ($most, $j) = (0, 0);
    for my $i (0 .. $#t) {
        $j++ while $t[$i] - $t[$j] >= 1000;
        $most = $i - $j + 1 if $i - $j + 1 > $most;
    }
    return $most;
}

run_tests();

__DATA__

=== TEST 1: rate=10r/s, a burst of 50 on one key: at most 10 (+1) starts in any second, all 50 answered 200; a queue behind the rate is served in arrival order
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=50 rate=10r/s queue=100 queue_timeout=20s;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://mock;
        access_log logs/order.log order;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my %st = ScriptingGate::Mock::burst(
    n => 50, timeout => 20,
    paths => [map { "/api/v2/scripts/r?i=$_" } 0 .. 49]);
my $k = ScriptingGate::Mock::key_stats('r::');
my @arr = @{ $k->{arrivals_ms} };
my $span = @arr ? $arr[-1] - $arr[0] : 0;
# in arrival order: eight more sent 30 ms apart queue behind the rate
# (one start every 100 ms); nginx's access log says when each came (the
# end less $request_time) and when it left the queue (came + the wait):
# one that came clearly earlier left earlier
my @kids;
for my $i (0 .. 7) {
    push @kids, @{ background(["/api/v2/scripts/r?i=o$i"]) };
    sleep 0.03;
}
reap(\@kids);
my @t;
if (open my $fh, '<', servroot() . '/logs/order.log') {
    for (<$fh>) {
        my ($i, $end, $rt, $wait) = split;
        push @t, [$end - $rt, $end - $rt + $wait / 1000] if $i =~ /^o/;
    }
}
my $order = @t == 8 ? 'yes' : 'logged ' . scalar(@t);
for my $x (@t) {
    for my $y (@t) {
        $order = 'no' if $x->[0] + 0.02 < $y->[0] && $x->[1] >= $y->[1];
    }
}
html_put('result.txt', client_report(%st)
    . "upstream: requests=$k->{requests}\n"
    . "most starts in a second: " . (most_in_a_second(@arr) <= 11 ? "<= 11" : most_in_a_second(@arr)) . "\n"
    . "span: " . ($span >= 4500 ? "ok" : "short ($span ms)") . "\n"
    . "in arrival order: $order\n");
--- request
GET /result.txt
--- response_body
200 x 50
upstream: requests=50
most starts in a second: <= 11
span: ok
in arrival order: yes



=== TEST 2: rate=300r/m: six starts take five intervals of 200 ms; the stats show the rate
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=10 rate=300r/m queue_timeout=10s;
        proxy_pass http://mock;
    }
    location = /status {
        scripting_gate_stats;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my %st = ScriptingGate::Mock::burst(n => 6, paths => ['/api/v2/scripts/m']);
my @arr = @{ ScriptingGate::Mock::key_stats('m::')->{arrivals_ms} };
my $span = $arr[-1] - $arr[0];
my $v = status_json('/status')->{zones}{v}{keys}{'/api/v2/scripts/m'};
html_put('result.txt', client_report(%st)
    # without the rate the six would come within a few ms; the bound
    # leaves room for a slow first connection (valgrind, a busy host)
    . "span: " . ($span >= 800 ? "about 5 x 200 ms" : "$span ms") . "\n"
    . "rate: $v->{rate}\n");
--- request
GET /result.txt
--- response_body
200 x 6
span: about 5 x 200 ms
rate: 5



=== TEST 3: two gates in a location, each with its own zone and key: with one token, the token's gate is the tighter one
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=3 queue_timeout=10s;
        scripting_gate zone=t limit=1 queue_timeout=10s;
        proxy_pass http://mock;
    }
    location = /status {
        scripting_gate_stats;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my %st = ScriptingGate::Mock::burst(n => 6, paths => ['/api/v2/scripts/a'],
                                    headers => { Authorization => 'Bearer A' });
my $k = ScriptingGate::Mock::key_stats('a::');
my $s = status_json('/status')->{zones};
html_put('result.txt', client_report(%st)
    . "peak: $k->{peak_in_flight}\n"
    . "passed: version $s->{v}{keys}{'/api/v2/scripts/a'}{passed}, "
    . "token $s->{t}{keys}{'Bearer A'}{passed}\n");
--- request
GET /result.txt
--- response_body
200 x 6
peak: 1
passed: version 6, token 6



=== TEST 4: two gates: with a token each, the version's gate is the tighter one
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=3 queue_timeout=10s;
        scripting_gate zone=t limit=1 queue_timeout=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# each answer takes 300 ms, so that the nine overlap
my $kids = background(map { ['/api/v2/scripts/c',
                             headers => { Authorization => "Bearer C$_",
                                          'X-Mock-Action' => '200/delay=300' }] }
                      1 .. 9);
my @r = reap($kids);
my %st;
$st{ $_->[0] }++ for @r;
my $k = ScriptingGate::Mock::key_stats('c::');
html_put('result.txt', client_report(%st)
    . "peak: $k->{peak_in_flight}\n");
--- request
GET /result.txt
--- response_body
200 x 9
peak: 3



=== TEST 5: cooldown=off on the version's gate: token A's Retry-After holds token A only, token B is not delayed
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=4 cooldown=off queue_timeout=10s;
        scripting_gate zone=t limit=10 queue_timeout=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $a1 = http_get('/api/v2/scripts/d',
                  headers => { Authorization => 'Bearer A',
                               'X-Mock-Action' => '429/ra=2' });
my $t0 = time;
my $b = http_get('/api/v2/scripts/d', headers => { Authorization => 'Bearer B' });
my $tb = time - $t0;
$t0 = time;
my $a2 = http_get('/api/v2/scripts/d', headers => { Authorization => 'Bearer A' });
my $ta = time - $t0;
html_put('result.txt', "A: $a1->{status}\n"
    . "B: $b->{status} " . ($tb < 0.5 ? "at once" : sprintf("after %.2f s", $tb)) . "\n"
    . "A again: $a2->{status} " . ($ta >= 1.5 ? "after the cool-down" : sprintf("after %.2f s", $ta)) . "\n");
--- request
GET /result.txt
--- response_body
A: 429
B: 200 at once
A again: 200 after the cool-down



=== TEST 6: the same with cooldown on (the default) on both: token B waits for A's cool-down of the version
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=4 queue_timeout=10s;
        scripting_gate zone=t limit=10 queue_timeout=10s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
http_get('/api/v2/scripts/e',
         headers => { Authorization => 'Bearer A', 'X-Mock-Action' => '429/ra=2' });
my $t0 = time;
my $b = http_get('/api/v2/scripts/e', headers => { Authorization => 'Bearer B' });
my $tb = time - $t0;
html_put('result.txt', "B: $b->{status} " . ($tb >= 1.5 ? "after the cool-down" : sprintf("after %.2f s", $tb)) . "\n");
--- request
GET /result.txt
--- response_body
B: 200 after the cool-down



=== TEST 7: adaptive over an upstream that admits 4: every client gets 200, the limit learns 4 and shows in the stats and $scripting_gate_limit
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=64 adaptive cooldown=off queue=500 queue_timeout=20s;
        scripting_retry on=429 attempts=10 base=20ms cap=200ms deadline=20s budget=100%;
        scripting_retry_after off;
        add_header X-Limit $scripting_gate_limit always;
        proxy_pass http://mock;
    }
    location = /status {
        scripting_gate_stats;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::config(limit => 4);
my %st = ScriptingGate::Mock::burst(n => 120, timeout => 30,
                                    paths => ['/api/v2/scripts/f']);
my $k = ScriptingGate::Mock::key_stats('f::');
my $v = status_json('/status')->{zones}{v}{keys}{'/api/v2/scripts/f'};
my $last = http_get('/api/v2/scripts/f');
ScriptingGate::Mock::config(limit => 0);
my $u429 = $k->{status}{429} || 0;
html_put('result.txt', client_report(%st)
    . "limit: $v->{limit}\n"
    . "effective_limit: " . (($v->{effective_limit} >= 3 && $v->{effective_limit} <= 5) ? "3 to 5" : $v->{effective_limit}) . "\n"
    . "decreased: " . ($v->{limit_decreases} >= 1 ? "yes" : "no") . "\n"
    . "increased: " . ($v->{limit_increases} >= 3 ? "yes" : "no") . "\n"
    . "upstream 429s: " . ($u429 <= 24 ? "few" : "$u429 of $k->{requests}") . "\n"
    . "X-Limit: " . ($last->{headers}{'x-limit'} == $v->{effective_limit} ? "the effective limit" : $last->{headers}{'x-limit'}) . "\n");
--- request
GET /result.txt
--- response_body
200 x 120
limit: 64
effective_limit: 3 to 5
decreased: yes
increased: yes
upstream 429s: few
X-Limit: the effective limit



=== TEST 8: adaptive never goes below min, and a learnt limit survives a reload
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=10 adaptive min=3 queue_timeout=10s;
        scripting_retry_after off;
        proxy_pass http://mock;
    }
    location = /status {
        scripting_gate_stats;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# every attempt a 429: the limit comes down, but to min at the lowest
ScriptingGate::Mock::plan('g::', ('429') x 12);
my %st = ScriptingGate::Mock::burst(n => 12, paths => ['/api/v2/scripts/g']);
my $before = status_json('/status')->{zones}{v}{keys}{'/api/v2/scripts/g'};
my %old = map { $_ => 1 } worker_pids();
kill 'HUP', master_pid();
# the old workers close their listeners once the new ones are there
my $new = wait_until(10, sub {
    my $s = status_json('/status');
    return $s && !$old{ $s->{pid} };
});
my $after = status_json('/status')->{zones}{v}{keys}{'/api/v2/scripts/g'};
html_put('result.txt', client_report(%st)
    . "effective_limit: $before->{effective_limit}\n"
    . "after a reload: " . ($new ? $after->{effective_limit} : "no new worker") . "\n");
--- request
GET /result.txt
--- response_body
429 x 12
effective_limit: 3
after a reload: 3



=== TEST 9: $scripting_gate_limit of a gate that does not learn is its limit; of an ungated request, empty
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=7;
        add_header X-Limit "[$scripting_gate_limit]" always;
        proxy_pass http://mock;
    }
    location /free/ {
        add_header X-Limit "[$scripting_gate_limit]" always;
        return 200 "free\n";
    }
--- init
package main;
my $g = http_get('/api/v2/scripts/h');
my $f = http_get('/free/x');
html_put('result.txt', "gated: $g->{status} $g->{headers}{'x-limit'}\n"
                       . "free: $f->{status} $f->{headers}{'x-limit'}\n");
--- request
GET /result.txt
--- response_body
gated: 200 [7]
free: 200 []



=== TEST 10: adaptive needs a limit that is a number
--- config
    location / {
        set $script_key "$uri";
        scripting_gate zone=v limit=$arg_l adaptive;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
"adaptive" needs a "limit" that is a number



=== TEST 11: min above limit fails the configuration
--- config
    location / {
        scripting_gate zone=v limit=2 adaptive min=3;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
"min" must not be above "limit"



=== TEST 12: a malformed rate fails the configuration, naming it
--- config
    location / {
        scripting_gate zone=v limit=2 rate=10r/h;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
invalid rate "rate=10r/h"



=== TEST 13: the same zone twice in one location is a duplicate
--- config
    location / {
        scripting_gate zone=v limit=2;
        scripting_gate zone=v limit=3;
        proxy_pass http://mock;
    }
--- must_die
--- error_log
"scripting_gate" directive is duplicate



=== TEST 14: a location's own scripting_gate lines replace the server's, as limit_conn's do; "off" turns them off
--- config
    set $script_key "$uri";
    scripting_gate zone=t limit=1;
    location /api/v2/scripts/ {
        scripting_gate zone=v limit=2;
        add_header X-Key "[$scripting_gate_key]" always;
        proxy_pass http://mock;
    }
    location /off/ {
        scripting_gate off;
        add_header X-Key "[$scripting_gate_key]" always;
        proxy_pass http://mock;
    }
    location /inherit/ {
        add_header X-Key "[$scripting_gate_key]" always;
        proxy_pass http://mock;
    }
--- init
package main;
my $out = '';
for my $p ('/api/v2/scripts/i', '/off/i', '/inherit/i') {
    my $r = http_get($p, headers => { Authorization => 'Bearer Z' });
    $out .= "$p: $r->{status} $r->{headers}{'x-key'}\n";
}
html_put('result.txt', $out);
--- request
GET /result.txt
--- response_body
/api/v2/scripts/i: 200 [/api/v2/scripts/i]
/off/i: 404 []
/inherit/i: 404 [Bearer Z]



=== TEST 15: a zone with "digest" keeps, shows and logs its keys as SHA-1 digests, never the token
--- http_config
    scripting_gate_zone  $http_authorization  zone=t:1m  digest;

    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- config
    location /api/v2/scripts/ {
        scripting_gate zone=t limit=1 queue=0;
        add_header X-Key "$scripting_gate_key" always;
        proxy_pass http://mock;
    }
    location = /status {
        scripting_gate_stats;
    }
--- init
package main;
my %st = ScriptingGate::Mock::burst(
    n => 2, paths => ['/api/v2/scripts/j'],
    headers => { Authorization => 'Bearer s3cr3t', 'X-Mock-Action' => '200/delay=300' });
my $r = http_get('/api/v2/scripts/j', headers => { Authorization => 'Bearer s3cr3t' });
my @keys = keys %{ status_json('/status')->{zones}{t}{keys} };
open my $fh, '<', servroot() . '/logs/error.log';
my $logged = grep { /s3cr3t/ } <$fh>;
html_put('result.txt', client_report(%st)
    . "X-Key: $r->{headers}{'x-key'}\n"
    . "stats keys: @keys\n"
    . "token in the error log: " . ($logged ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
200 x 1
429 x 1
X-Key: 90235ab92619a8e45944d7aff15ee35af295c029
stats keys: 90235ab92619a8e45944d7aff15ee35af295c029
token in the error log: no



=== TEST 16: a request through an adaptive gate is retried without a share of the retry budget; through a fixed gate it is not
--- config
    location /adaptive/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=4 adaptive;
        scripting_retry on=429 attempts=3 base=10ms cap=20ms budget=0% budget_min=0;
        scripting_retry_after off;
        rewrite ^/adaptive/(.*)$ /api/v2/scripts/$1 break;
        proxy_pass http://mock;
    }
    location /fixed/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=4;
        scripting_retry on=429 attempts=3 base=10ms cap=20ms budget=0% budget_min=0;
        scripting_retry_after off;
        rewrite ^/fixed/(.*)$ /api/v2/scripts/$1 break;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('k::', '429');
my $a = http_get('/adaptive/k');
ScriptingGate::Mock::plan('l::', '429');
my $f = http_get('/fixed/l');
html_put('result.txt', "adaptive: $a->{status}\nfixed: $f->{status}\n");
--- request
GET /result.txt
--- response_body
adaptive: 200
fixed: 429



=== TEST 17: a request waiting for its retry holds no slot: another one of its key goes at once
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=1 queue_timeout=10s;
        scripting_retry on=429 attempts=2 base=1s cap=1s jitter=none;
        scripting_retry_after off;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('n::', '429');
my $kids = background(['/api/v2/scripts/n']);
# the first one has had its 429 and waits a second to try again
sleep 0.3;
my $t0 = time;
my $b = http_get('/api/v2/scripts/n');
my $tb = time - $t0;
my ($a) = reap($kids);
html_put('result.txt', "first: $a->[0]\n"
    . "second: $b->{status} " . ($tb < 0.5 ? "at once" : sprintf("after %.2f s", $tb)) . "\n");
--- request
GET /result.txt
--- response_body
first: 200
second: 200 at once



=== TEST 18: rate=5r/s, three at once, a queue deadline 550 ms on: the third starts at its turn (400 ms after the first), not at its deadline
--- config
    location /api/v2/scripts/ {
        set $script_key "$uri";
        scripting_gate zone=v limit=10 rate=5r/s queue=10 queue_timeout=550ms;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# the second waits for the first's start, the third for the second's: its
# turn comes when it is woken, its own timer set for the deadline
my @kids;
for my $i (0 .. 2) {
    push @kids, @{ background(["/api/v2/scripts/near?i=$i"]) };
    sleep 0.01;
}
my @r = reap(\@kids);
my @arr = sort { $a <=> $b }
          @{ ScriptingGate::Mock::key_stats('near::')->{arrivals_ms} };
my $third = @arr == 3 ? $arr[2] - $arr[0] : -1;
html_put('result.txt', join(' ', map { $_->[0] } @r) . "\n"
         . "third start: " . ($third >= 350 && $third < 520
                              ? "at its turn" : "$third ms after the first")
         . "\n");
--- request
GET /result.txt
--- response_body
200 200 200
third start: at its turn
