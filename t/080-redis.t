# scripting_gate_redis (issue 14): a zone shared by several nginx
# instances through one Redis.  Each block starts its own instances
# ("nodes", t/lib/ScriptingGate/Nodes.pm: masters of their own, two workers
# each) in front of the mock, against a real redis-server started by the
# test (t/lib/ScriptingGate/Redis.pm), and checks what a user would: what
# the upstream saw (the mock's peak in flight per key), what the clients
# got, what Redis holds (ZCARD of a key's slots and queue), the status
# JSON and the error logs.  The nginx of the block itself only serves the
# report (GET /result.txt), except in the configuration errors and in the
# fallback=closed block, where it is the node.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Nodes;
use ScriptingGate::Redis;
use ScriptingGate::Util qw(html_put http_get status_json wait_until
                           background reap spawn collect);
use List::Util qw(max);
use Time::HiRes qw(time sleep);

ScriptingGate::Mock::start(delay => 100);
ScriptingGate::Redis::start();

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

# each block: Redis running and empty, the mock's figures cleared
sub fresh {
    my (%mock) = @_;
    ScriptingGate::Redis::start() unless ScriptingGate::Redis::running();
    ScriptingGate::Redis::cmd('FLUSHALL');
    ScriptingGate::Mock::reset();
    ScriptingGate::Mock::config(limit => 0, delay => 100, %mock);
}

# The http{} text of a node: zone "s" keyed by the script id, shared
# through the test's Redis (with $o{redis} parameters), the gate in front
# of the mock ($o{gate}), a location with a short queue timeout, the status
# page and an access log of the gate's figures.
sub node_http {
    my (%o) = @_;
    my $text = <<'_EOC_';
    log_format gate '$msec $request_time $upstream_response_time '
                    '$scripting_gate_key $scripting_gate_status '
                    '$scripting_gate_wait $status $pid';
    access_log logs/gate.log gate;

    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_gate_redis zone=s redis://127.0.0.1:$TEST_NGINX_REDIS_PORT REDIS_PARAMS;

    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_NODE_PORT;
        add_header X-Gate $scripting_gate_status always;

        location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
            scripting_gate zone=s GATE_PARAMS;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://mock;
        }

        location ~ ^/short/(?<script_id>[^/]+) {
            scripting_gate zone=s limit=2 queue=200 queue_timeout=300ms;
            proxy_pass http://mock/api/v2/scripts/$script_id;
        }

        location = /status { scripting_gate_stats; }
    }
_EOC_
    # timeout=1s, not the default 200ms: a test machine busy with other
    # work can leave a reply that late, and the node would rightly give
    # Redis up for a moment; these blocks are about other things
    my $redis = $o{redis} // '';
    $redis .= ' timeout=1s' unless $redis =~ /timeout=/;
    my $gate = $o{gate} // 'limit=2 queue=200 queue_timeout=10s';
    $text =~ s/ REDIS_PARAMS/ $redis/;
    $text =~ s{redis://}{redis://$o{auth}\@} if $o{auth};
    $text =~ s/GATE_PARAMS/$gate/;
    return $text;
}

sub start_nodes {
    my ($n, %o) = @_;
    my @nodes = ScriptingGate::Nodes::start_nodes($n, http => node_http(%o),
                                                  tag => $o{tag});
    await_state('up', @nodes);
    return @nodes;
}

sub node_status {
    my ($node) = @_;
    return status_json(ScriptingGate::Nodes::url($node, '/status')) || {};
}

sub redis_of {
    my ($node) = @_;
    return node_status($node)->{zones}{s}{redis} || {};
}

sub key_of {
    my ($node, $key) = @_;
    return node_status($node)->{zones}{s}{keys}{$key} || {};
}

# waits until every node says Redis is "up" (or "down"): each worker
# connects when it starts
sub await_state {
    my ($state, @nodes) = @_;
    for my $node (@nodes) {
        wait_until(10, sub { (redis_of($node)->{state} // '') eq $state })
            or die "node $node->{name}: redis state not \"$state\"\n";
    }
}

# what Redis holds for a key of zone s: "slots=N queue=N"
sub redis_counts {
    my ($key) = @_;
    return 'slots=' . ScriptingGate::Redis::cmd('ZCARD', "sg:{s:$key}:s")
         . ' queue=' . ScriptingGate::Redis::cmd('ZCARD', "sg:{s:$key}:q");
}

sub statuses {
    my (%st) = @_;
    return join ' ', map { "$_ x $st{$_}" } sort keys %st;
}

# the lines of the nodes' error logs that no run should have: a crash, an
# alert, an emergency
sub bad_lines {
    my (@nodes) = @_;
    return map { "$_->{name}: $_" }
           map { ScriptingGate::Nodes::error_log($_,
                     qr/\[(?:alert|emerg|crit)\]|exited on signal/) } @nodes;
}

# the burst's paths, request i to node i % nodes, key k(i % keys)
sub paths {
    my ($n, $keys, @nodes) = @_;
    return map {
        ScriptingGate::Nodes::url($nodes[$_ % @nodes],
                                  '/api/v2/scripts/k' . ($_ % $keys))
    } 0 .. $n - 1;
}

run_tests();

__DATA__

=== TEST 1: a redis URL with a database that is not a number fails the configuration
--- http_config
    scripting_gate_zone  $uri  zone=s:1m;
    scripting_gate_redis zone=s redis://127.0.0.1:$TEST_NGINX_REDIS_PORT/x;
--- config
    location = /t { return 200; }
--- must_die
--- error_log eval
qr/invalid redis URL "redis:\/\/127\.0\.0\.1:\d+\/x"/



=== TEST 2: a redis URL with a port out of range fails the configuration
--- http_config
    scripting_gate_zone  $uri  zone=s:1m;
    scripting_gate_redis zone=s redis://127.0.0.1:70000;
--- config
    location = /t { return 200; }
--- must_die
--- error_log
invalid redis URL "redis://127.0.0.1:70000"



=== TEST 3: a zone that no scripting_gate_zone declares fails the configuration
--- http_config
    scripting_gate_zone  $uri  zone=s:1m;
    scripting_gate_redis zone=nope redis://127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /t { return 200; }
--- must_die
--- error_log
unknown zone "nope"



=== TEST 4: a lease that is not a time fails the configuration, naming the parameter
--- http_config
    scripting_gate_zone  $uri  zone=s:1m;
    scripting_gate_redis zone=s redis://127.0.0.1:$TEST_NGINX_REDIS_PORT lease=x;
--- config
    location = /t { return 200; }
--- must_die
--- error_log
invalid parameter "lease=x"



=== TEST 5: a timeout that is not a time fails the configuration, naming the parameter
--- http_config
    scripting_gate_zone  $uri  zone=s:1m;
    scripting_gate_redis zone=s redis://127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=soon;
--- config
    location = /t { return 200; }
--- must_die
--- error_log
invalid parameter "timeout=soon"



=== TEST 6: an unknown fallback fails the configuration, naming the parameter
--- http_config
    scripting_gate_zone  $uri  zone=s:1m;
    scripting_gate_redis zone=s redis://127.0.0.1:$TEST_NGINX_REDIS_PORT fallback=open;
--- config
    location = /t { return 200; }
--- must_die
--- error_log
invalid parameter "fallback=open"



=== TEST 7: the status JSON of a Redis zone: redis up, its round trip, and the cluster's figures beside the node's own
--- config
--- init
package main;
main::fresh();
my ($a, $b) = main::start_nodes(2, tag => 't7-', gate => 'limit=1 queue=10 queue_timeout=10s');
# B holds the cluster's one slot of key "st"; A's request waits at Redis
my $hold = background([ScriptingGate::Nodes::url($b, '/api/v2/scripts/st'),
                       headers => { 'X-Mock-Action' => '200/delay=1500' }]);
wait_until(5, sub { ScriptingGate::Mock::key_stats('st::')->{in_flight} });
my $wait = background([ScriptingGate::Nodes::url($a, '/api/v2/scripts/st')]);
my $ka = {};
wait_until(5, sub { $ka = main::key_of($a, 'st'); ($ka->{queued} // 0) == 1
                    && ($ka->{cluster_queued} // 0) == 1 });
my $in_redis = main::redis_counts('st');
my $kb = main::key_of($b, 'st');
my $r = main::redis_of($a);
my @res = (reap($hold), reap($wait));
my $after = {};
wait_until(5, sub { $after = main::key_of($a, 'st');
                    main::redis_counts('st') eq 'slots=0 queue=0' });
my $in_redis_after = main::redis_counts('st');
my @bad = main::bad_lines($a, $b);
my @stop = ScriptingGate::Nodes::stop($a, $b);
html_put('result.txt', join '',
    "redis: state=$r->{state} fallback=$r->{fallback} changes=$r->{changes}",
    " rtt_ms=", (defined $r->{rtt_ms} && $r->{rtt_ms} =~ /^[\d.]+$/ && $r->{rtt_ms} < 100
                 ? "a number" : "<" . ($r->{rtt_ms} // 'none') . ">"), "\n",
    "A while B holds the slot: active=$ka->{active} queued=$ka->{queued}",
    " cluster_active=$ka->{cluster_active} cluster_queued=$ka->{cluster_queued}\n",
    "B: active=$kb->{active} queued=$kb->{queued} cluster_active=$kb->{cluster_active}\n",
    "in Redis: $in_redis\n",
    "answers: ", join(' ', map { $_->[0] } @res), "\n",
    "A after: active=$after->{active} queued=$after->{queued}\n",
    "in Redis after: $in_redis_after\n",
    "stopped: @stop\n", @bad);
--- request
GET /result.txt
--- response_body
redis: state=up fallback=local changes=0 rtt_ms=a number
A while B holds the slot: active=0 queued=1 cluster_active=1 cluster_queued=1
B: active=1 queued=0 cluster_active=1
in Redis: slots=1 queue=1
answers: 200 200
A after: active=0 queued=0
in Redis after: slots=0 queue=0
stopped: stopped stopped
--- timeout: 30



=== TEST 8: two instances, one Redis, limit=2: a burst split across both never has more than 2 of a key in flight upstream
--- config
--- init
package main;
main::fresh();
my @n = main::start_nodes(2, tag => 't8-', gate => 'limit=2 queue=200 queue_timeout=20s');
my %st = ScriptingGate::Mock::burst(n => 80, timeout => 30,
                                    paths => [main::paths(80, 2, @n)]);
# the last releases may reach Redis just after the last answers
my $left = '';
wait_until(2, sub { ($left = join ' ', map { main::redis_counts("k$_") } 0 .. 1) !~ /[1-9]/ });
my @bad = main::bad_lines(@n);
ScriptingGate::Nodes::stop(@n);
html_put('result.txt', main::statuses(%st) . "\n" . ScriptingGate::Mock::upstream_report()
                       . "left in Redis: $left\n" . join('', @bad));
--- request
GET /result.txt
--- response_body
200 x 80
k0:: requests=40 peak=2
k1:: requests=40 peak=2
left in Redis: slots=0 queue=0 slots=0 queue=0
--- timeout: 40



=== TEST 9: three instances share one Redis: 600 requests over 8 keys, upstream limit 4: never over it, no 429, and no wait over 1.5 x the ideal FIFO wait + 150 ms
--- config
--- init
package main;
# the upstream refuses a 5th request of a key with its own 429
main::fresh(limit => 4, delay => 100);
my ($L, $D) = (4, 100);
my @n = main::start_nodes(3, tag => 't9-', gate => "limit=$L queue=200 queue_timeout=30s");
my $t0 = time;
# the 600 connections are open before the first request is sent; the
# requests go out over 1 s, so that each key's order of arrival is known
# (about 13 ms apart), while each key gets about twice what it can serve
my %st = ScriptingGate::Mock::burst(n => 600, timeout => 60, over => 1,
                                    paths => [main::paths(600, 8, @n)]);
my $took = time - $t0;
my $m = ScriptingGate::Mock::stats();
my $left = '';
wait_until(2, sub { ($left = join ' ', map { main::redis_counts("k$_") } 0 .. 7) !~ /[1-9]/ });
my @bad = main::bad_lines(@n);
ScriptingGate::Nodes::stop(@n);

# Each request's times, from the nodes' access logs: its arrival a (the
# start of the request, $msec - $request_time), its wait w (the time it
# did not spend at the upstream: $request_time - $upstream_response_time,
# what the gate cost it, locally and at Redis), and $scripting_gate_wait,
# which should say the same within 50 ms.
#
# Its ideal FIFO wait: one queue per key across the cluster, served in
# order of arrival, L requests at a time, each taking the mock's delay D
# (arrivals are ms apart: sent all at once, the requests of a key would
# all arrive within the same few ms, in no order that can be measured):
# in arrival order, the i-th request of a key starts at
#   s(i) = a(i)                          for i < L
#   s(i) = max(a(i), s(i - L) + D)       after
# and ideally waits s(i) - a(i).  A request passes when
#   w <= 1.5 x (s(i) - a(i)) + 150 ms.
my (%by_key, $logged, @bad_wait, %var_off);
for my $node (@n) {
    for (ScriptingGate::Nodes::log_lines($node, 'gate.log')) {
        my ($msec, $rt, $urt, $key, $gs, $gw, $status) = split ' ';
        next unless defined $status && $key =~ /^k\d$/;
        $logged++;
        my $w = ($rt - ($urt =~ /^[\d.]+$/ ? $urt : 0)) * 1000;
        push @{ $by_key{$key} }, { a => ($msec - $rt) * 1000, w => $w,
                                   gw => $gw, node => $node->{name} };
    }
}
my $worst;
for my $key (sort keys %by_key) {
    my @r = sort { $a->{a} <=> $b->{a} } @{ $by_key{$key} };
    my @s;
    for my $i (0 .. $#r) {
        $s[$i] = $i < $L ? $r[$i]{a} : max($r[$i]{a}, $s[$i - $L] + $D);
        my $ideal = $s[$i] - $r[$i]{a};
        my $allowed = 1.5 * $ideal + 150;
        $worst = max($worst // $r[$i]{w} - $ideal, $r[$i]{w} - $ideal);
        push @bad_wait, sprintf("%s #%d (node %s): waited %d ms, ideal %d ms\n",
                                $key, $i, $r[$i]{node}, $r[$i]{w}, $ideal)
            if $r[$i]{w} > $allowed;
        $var_off{ abs($r[$i]{gw} - $r[$i]{w}) > 50 ? 'off' : 'ok' }++;
    }
}
my $over = 0;
my $refused = 0;
my $peaks = '';
for my $k (map { "k$_" . '::' } 0 .. 7) {
    my $v = $m->{keys}{$k} || {};
    $over++ if ($v->{peak_in_flight} // 0) > $L;
    $refused += $v->{status}{429} // 0;
    $peaks .= " " . ($v->{peak_in_flight} // 0);
}
html_put('result.txt', join '',
    "answers: ", main::statuses(%st), "\n",
    "upstream: requests=$m->{total}{requests} 429s=$refused",
    " keys over the limit: $over\n",
    "logged: $logged\n",
    "waits over 1.5 x ideal + 150 ms: ", scalar(@bad_wait), "\n",
    @bad_wait[0 .. ($#bad_wait > 9 ? 9 : $#bad_wait)],
    "\$scripting_gate_wait more than 50 ms off: ", $var_off{off} // 0, "\n",
    "left in Redis: ", ($left =~ /[1-9]/ ? $left : "nothing"), "\n",
    @bad);
print STDERR sprintf("# TEST 9: burst %.2f s, peaks%s, waits at most %+d ms over their ideal\n",
                     $took, $peaks, $worst // 0);
--- request
GET /result.txt
--- response_body
answers: 200 x 600
upstream: requests=600 429s=0 keys over the limit: 0
logged: 600
waits over 1.5 x ideal + 150 ms: 0
$scripting_gate_wait more than 50 ms off: 0
left in Redis: nothing
--- timeout: 90



=== TEST 10: an instance SIGKILLed while it holds slots: the others get them back within the lease + 1 s, and every count comes back to 0
--- config
--- init
package main;
main::fresh();
my ($a, $b) = main::start_nodes(2, tag => 't10-', redis => 'lease=2s',
                                gate => 'limit=2 queue=200 queue_timeout=20s');
# B holds both slots of "kill" for 10 s
my $held = background(map { [ScriptingGate::Nodes::url($b, '/api/v2/scripts/kill'),
                             headers => { 'X-Mock-Action' => '200/delay=10000' }] } 1 .. 2);
wait_until(5, sub { main::redis_counts('kill') eq 'slots=2 queue=0' });
# six more through A: two wait at Redis, four in A's own queue
my $burst = spawn(sub {
    my %st = ScriptingGate::Mock::burst(n => 6, timeout => 30,
        paths => [ScriptingGate::Nodes::url($a, '/api/v2/scripts/kill')]);
    return \%st;
});
wait_until(5, sub { main::redis_counts('kill') eq 'slots=2 queue=2' });
my $before = main::redis_counts('kill');
my $t0 = time;
ScriptingGate::Nodes::kill9($b);
# A's first request reaches the upstream once B's leases have run out
wait_until(10, sub { ScriptingGate::Mock::key_stats('kill::')->{requests} > 2 });
my $back = time - $t0;
my $st = collect($burst);
reap($held);
my ($k, $counts) = ({}, '');
wait_until(5, sub {
    $k = main::key_of($a, 'kill');
    $counts = main::redis_counts('kill');
    return $counts eq 'slots=0 queue=0' && !$k->{active} && !$k->{queued};
});
my @bad = main::bad_lines($a);
ScriptingGate::Nodes::stop($a);
html_put('result.txt', join '',
    "before the kill: $before\n",
    "slots back after ", ($back >= 1 && $back <= 3 ? "between 1 s and the lease + 1 s"
                                                   : sprintf("%.2f s", $back)), "\n",
    "A's answers: ", main::statuses(%$st), "\n",
    "A after: active=$k->{active} queued=$k->{queued}",
    " cluster_active=$k->{cluster_active} cluster_queued=$k->{cluster_queued}\n",
    "in Redis after: $counts\n", @bad);
--- request
GET /result.txt
--- response_body
before the kill: slots=2 queue=2
slots back after between 1 s and the lease + 1 s
A's answers: 200 x 6
A after: active=0 queued=0 cluster_active=0 cluster_queued=0
in Redis after: slots=0 queue=0
--- timeout: 40



=== TEST 11: Redis restarted mid-burst (fallback=local): no crash, every request answered, each change logged once, gating shared again once Redis is back
--- config
--- init
package main;
main::fresh();
my @n = main::start_nodes(2, tag => 't11-', gate => 'limit=2 queue=200 queue_timeout=20s');
my $burst = spawn(sub {
    my %st = ScriptingGate::Mock::burst(n => 60, timeout => 30,
                                        paths => [main::paths(60, 1, @n)]);
    return \%st;
});
wait_until(5, sub { ScriptingGate::Mock::key_stats('k0::')->{requests} >= 6 });
ScriptingGate::Redis::restart();
# every node is back on Redis within the reconnection's backoff (2 s)
my $t0 = time;
my $up = wait_until(10, sub { !grep { (main::redis_of($_)->{state} // '') ne 'up' } @n });
my $back = time - $t0;
my $st = collect($burst);
my $mid = ScriptingGate::Mock::key_stats('k0::');
my @changes = map { main::redis_of($_)->{changes} } @n;
ScriptingGate::Mock::reset();
my %again = ScriptingGate::Mock::burst(n => 40, timeout => 30,
                                       paths => [main::paths(40, 1, @n)]);
my $after = ScriptingGate::Mock::key_stats('k0::');
my @logs = map {
    my $node = $_;
    my $down = () = ScriptingGate::Nodes::error_log($node,
        qr/scripting_gate_redis: zone "s": redis at \S+ is unreachable \(.*\), gating with this node's shared memory/);
    my $upl = () = ScriptingGate::Nodes::error_log($node,
        qr/scripting_gate_redis: zone "s": redis at \S+ is reachable again, gating shared/);
    "$node->{name}: unreachable x $down, reachable again x $upl\n";
} @n;
my @bad = main::bad_lines(@n);
ScriptingGate::Nodes::stop(@n);
html_put('result.txt', join '',
    "during: ", main::statuses(%$st), ", upstream peak ",
    ($mid->{peak_in_flight} <= 4 ? "at most 2 per node" : $mid->{peak_in_flight}), "\n",
    "up again: ", ($up && $back < 3 ? "within 3 s" : sprintf("no (%.1f s)", $back)),
    ", changes: @changes\n",
    "after: ", main::statuses(%again), ", upstream peak $after->{peak_in_flight}\n",
    @logs, @bad);
--- request
GET /result.txt
--- response_body
during: 200 x 60, upstream peak at most 2 per node
up again: within 3 s, changes: 2 2
after: 200 x 40, upstream peak 2
a: unreachable x 1, reachable again x 1
b: unreachable x 1, reachable again x 1
--- timeout: 60



=== TEST 12: Redis that stops answering (SIGSTOP) with its connections open: after the timeout the requests go on under fallback=local, and shared gating comes back when it answers again
--- config
--- init
package main;
main::fresh();
my @n = main::start_nodes(2, tag => 't12-', redis => 'timeout=300ms',
                          gate => 'limit=2 queue=200 queue_timeout=20s');
ScriptingGate::Redis::freeze();
my $t0 = time;
# 8 requests, 4 per node: once Redis is given up, each node lets 2 at a time
my %st = ScriptingGate::Mock::burst(n => 8, timeout => 20,
                                    paths => [main::paths(8, 1, @n)]);
my $took = time - $t0;
my @states = map { main::redis_of($_)->{state} } @n;
# each node's first two requests waited the timeout for Redis; once it was
# given up, the next two should wait only for their turn at the node (one
# round of 100 ms), not for Redis again
my @again_waited;
for my $node (@n) {
    my @w = sort { $a <=> $b } map { (split ' ')[5] }
            grep { (split ' ')[3] eq 'k0' } ScriptingGate::Nodes::log_lines($node, 'gate.log');
    push @again_waited, "$node->{name}: @w" if @w == 4 && $w[2] > $w[1] + 100 + 100;
}
# a longer outage: the workers' attempts to connect again are spaced out
# (up to 2 s apart), and one that is waiting to try when the other worker
# of its node finds Redis back must not gate alone meanwhile
sleep 2;
ScriptingGate::Redis::thaw();
my $up = wait_until(10, sub { !grep { (main::redis_of($_)->{state} // '') ne 'up' } @n });
ScriptingGate::Mock::reset();
my $t1 = time;
my %again = ScriptingGate::Mock::burst(n => 20, timeout => 20,
                                       paths => [main::paths(20, 1, @n)]);
my $again_took = time - $t1;
# nothing is in flight: Redis holds no slot of the key (the acquires sent
# while it was frozen answered nobody: a slot they took would stay taken
# until its lease ends, 10 s)
my $held = '';
wait_until(2, sub { ($held = main::redis_counts('k0')) eq 'slots=0 queue=0' });
my $k = ScriptingGate::Mock::key_stats('k0::');
my @why = map { my $node = $_;
    scalar(() = ScriptingGate::Nodes::error_log($node, qr/scripting_gate_redis: zone "s": redis at \S+ is unreachable \(no reply in time\)/))
} @n;
my @bad = main::bad_lines(@n);
ScriptingGate::Nodes::stop(@n);
html_put('result.txt', join '',
    "frozen: ", main::statuses(%st),
    # two rounds of 100 ms after the 300 ms timeout, and the watchdog's
    # period (timeout / 2)
    ($took < 1.2 ? " within the timeout and two rounds" : sprintf(" after %.2f s", $took)), "\n",
    "states while frozen: @states\n",
    "once given up, waited for Redis again: ",
    (@again_waited ? join(', ', @again_waited) . " (ms)" : "no"), "\n",
    "logged \"no reply in time\": @why\n",
    "answering again: ", ($up ? "up" : "not up"), ", in Redis: $held\n",
    # 10 rounds of 100 ms
    "then: ", main::statuses(%again), ($again_took < 2.5 ? " within 2.5 s"
                                       : sprintf(" after %.1f s", $again_took)),
    ", upstream peak $k->{peak_in_flight}\n", @bad);
--- request
GET /result.txt
--- response_body
frozen: 200 x 8 within the timeout and two rounds
states while frozen: down down
once given up, waited for Redis again: no
logged "no reply in time": 1 1
answering again: up, in Redis: slots=0 queue=0
then: 200 x 20 within 2.5 s, upstream peak 2
--- timeout: 40



=== TEST 13: fallback=closed with Redis stopped: the gate's status, Retry-After and the upstream's JSON error shape; gated requests pass again once it is back
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_gate_redis zone=s redis://127.0.0.1:$TEST_NGINX_REDIS_PORT fallback=closed timeout=1s;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=2 queue=10 queue_timeout=5s;
        add_header X-Gate $scripting_gate_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
main::fresh();
my $state = sub { ((status_json('/status') || {})->{zones}{s}{redis} || {}) };
wait_until(10, sub { ($state->()->{state} // '') eq 'up' });
my $up = http_get('/api/v2/scripts/closed');
ScriptingGate::Redis::stop();
wait_until(10, sub { ($state->()->{state} // '') eq 'down' });
my $r = $state->();
my $no = http_get('/api/v2/scripts/closed');
my $body = $no->{content} // '';
ScriptingGate::Redis::start();
wait_until(10, sub { ($state->()->{state} // '') eq 'up' });
my $again = http_get('/api/v2/scripts/closed');
html_put('result.txt', join '',
    "while up: $up->{status} $up->{headers}{'x-gate'}\n",
    "status page: $r->{state} $r->{fallback}\n",
    "Redis stopped: $no->{status} $no->{headers}{'x-gate'} Retry-After ",
    $no->{headers}{'retry-after'} // 'none', " ", $no->{headers}{'content-type'} // '', "\n",
    "body: ", ($body =~ /^\{"message":"[^"]+","code":"too\.many\.requests\.retry\.after","status":429,"contextId":"[0-9a-f-]+","details":\[\],"errors":\[\]\}$/
               ? "Genesys' shape" : "<$body>"), "\n",
    "Redis back: $again->{status} $again->{headers}{'x-gate'}\n");
--- request
GET /result.txt
--- response_body
while up: 200 PASSED
status page: down closed
Redis stopped: 429 REJECTED Retry-After 1 application/json
body: Genesys' shape
Redis back: 200 PASSED
--- error_log eval
[qr/scripting_gate_redis: zone "s": redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable \(.*\), refusing gated requests/,
 qr/scripting_gate_redis: zone "s": redis at redis:\/\/127\.0\.0\.1:\d+ is reachable again, gating shared/]
--- timeout: 30



=== TEST 14: a cool-down shared across instances: A's upstream 429 with Retry-After: 1 holds B's request for the key that long, and refuses at once one whose queue timeout is shorter
--- config
--- init
package main;
main::fresh();
my ($a, $b) = main::start_nodes(2, tag => 't14-', gate => 'limit=2 queue=200 queue_timeout=10s');
my $first = http_get(ScriptingGate::Nodes::url($a, '/api/v2/scripts/cool'),
                     headers => { 'X-Mock-Action' => '429/ra=1' });
my $t_a = time;
# A sends the cool-down to Redis as the 429 leaves for its client, not
# before: B asks once Redis has it
my $cooling = wait_until(1, sub {
    (ScriptingGate::Redis::cmd('HGET', 'sg:{s:cool}:h', 'c') // '') =~ /^\d+$/ });
my $t0 = time;
my $short = http_get(ScriptingGate::Nodes::url($b, '/short/cool'));
my $short_took = time - $t0;
my $long = http_get(ScriptingGate::Nodes::url($b, '/api/v2/scripts/cool'));
my $took = time - $t_a;
my $k = ScriptingGate::Mock::key_stats('cool::');
my @bad = main::bad_lines($a, $b);
ScriptingGate::Nodes::stop($a, $b);
html_put('result.txt', join '',
    "A: $first->{status} Retry-After $first->{headers}{'retry-after'}",
    ($cooling ? ", the key cooling at Redis" : ", no cool-down at Redis"), "\n",
    "B, queue timeout 300ms: $short->{status} $short->{headers}{'x-gate'}",
    " Retry-After ", $short->{headers}{'retry-after'} // 'none',
    ($short_took < 0.25 ? " at once" : sprintf(" after %.2f s", $short_took)), "\n",
    "B, queue timeout 10s: $long->{status} $long->{headers}{'x-gate'}",
    ($took >= 0.9 && $took < 1.6 ? " after the cool-down" : sprintf(" after %.2f s", $took)), "\n",
    "upstream: requests=$k->{requests}\n", @bad);
--- request
GET /result.txt
--- response_body
A: 429 Retry-After 1, the key cooling at Redis
B, queue timeout 300ms: 429 REJECTED Retry-After 1 at once
B, queue timeout 10s: 200 QUEUED after the cool-down
upstream: requests=2
--- timeout: 30



=== TEST 15: a waiter that Redis's loss let through under fallback=local is done with Redis: a later wake-up naming it sends nothing more upstream
--- config
--- init
package main;
main::fresh();
my ($n) = main::start_nodes(1, tag => 't15-', redis => 'timeout=300ms',
                            gate => 'limit=1 queue=10 queue_timeout=20s');
# the key's one slot held at Redis by someone else
my ($sec, $usec) = @{ ScriptingGate::Redis::cmd('TIME') };
ScriptingGate::Redis::cmd('ZADD', 'sg:{s:k0}:s', $sec * 1000 + 60000, 'other');
my $bg = background([ScriptingGate::Nodes::url($n, '/api/v2/scripts/k0'),
                     timeout => 20,
                     headers => { 'X-Mock-Action' => '200/delay=3000' }]);
my $queued = wait_until(5, sub {
    ScriptingGate::Redis::cmd('ZCARD', 'sg:{s:k0}:q') == 1 });
my ($member) = @{ ScriptingGate::Redis::cmd('ZRANGE', 'sg:{s:k0}:q', 0, 0) || [] };
# Redis stops answering: the node gives it up, the waiter goes upstream
ScriptingGate::Redis::freeze();
my $went = wait_until(5, sub {
    ScriptingGate::Mock::key_stats('k0::')->{requests} });
ScriptingGate::Redis::thaw();
wait_until(10, sub { (main::redis_of($n)->{state} // '') eq 'up' });
# the other holder leaves, and a wake-up names the waiter as Redis would
ScriptingGate::Redis::cmd('ZREM', 'sg:{s:k0}:s', 'other');
ScriptingGate::Redis::cmd('PUBLISH', 'sg:{s}:wake', $member // 'none');
my ($res) = reap($bg);
my $k = ScriptingGate::Mock::key_stats('k0::');
my $held = '';
wait_until(3, sub { ($held = main::redis_counts('k0')) eq 'slots=0 queue=0' });
my @bad = main::bad_lines($n);
ScriptingGate::Nodes::stop($n);
html_put('result.txt', join '',
    "queued at Redis: ", ($queued && $member ? "yes" : "no"), "\n",
    "went upstream under the fallback: ", ($went ? "yes" : "no"), "\n",
    "client: $res->[0]\n",
    "upstream requests: $k->{requests}, peak $k->{peak_in_flight}\n",
    "in Redis after: $held\n", @bad);
--- request
GET /result.txt
--- response_body
queued at Redis: yes
went upstream under the fallback: yes
client: 200
upstream requests: 1, peak 1
in Redis after: slots=0 queue=0
--- timeout: 40



=== TEST 16: rate= is the cluster's: two instances, rate=20r/s, a burst of 40 on one key split across both: at most 21 starts upstream in any second, spread over 1.8 s or more, and all answered within 3 s
--- config
--- init
package main;
main::fresh();
# a timeout near the default: a waiter's next ask, 50 ms on, is set while
# the timer for a late reply (the timeout) is still on
my @n = main::start_nodes(2, tag => 't16-', redis => 'timeout=300ms',
                          gate => 'limit=50 rate=20r/s queue=200 queue_timeout=20s');
my $t0 = time;
my %st = ScriptingGate::Mock::burst(n => 40, timeout => 20,
                                    paths => [main::paths(40, 1, @n)]);
my $took = time - $t0;
my @arr = sort { $a <=> $b } @{ ScriptingGate::Mock::key_stats('k0::')->{arrivals_ms} };
my $most = 0;
for my $i (0 .. $#arr) {
    my $j = $i;
    $j++ while $j < $#arr && $arr[$j + 1] - $arr[$i] < 1000;
    $most = max($most, $j - $i + 1);
}
# 39 intervals of 50 ms: 1.95 s; each node alone would take half that
my $span = @arr ? $arr[-1] - $arr[0] : 0;
my @bad = main::bad_lines(@n);
ScriptingGate::Nodes::stop(@n);
html_put('result.txt', join '',
    "answers: ", main::statuses(%st), "\n",
    "upstream: ", scalar(@arr), " starts, most in a second: ",
    ($most <= 21 ? "<= 21" : $most), "\n",
    "spread: ", ($span >= 1800 ? "over 1.8 s or more" : "$span ms"), "\n",
    # the rate's 1.95 s and the mock's 100 ms, not a poll's pace
    "burst: ", ($took < 3 ? "within 3 s" : sprintf("%.1f s", $took)), "\n",
    @bad);
--- request
GET /result.txt
--- response_body
answers: 200 x 40
upstream: 40 starts, most in a second: <= 21
spread: over 1.8 s or more
burst: within 3 s
--- timeout: 30



=== TEST 17: an ACL user without the wake-up channel: SUBSCRIBE is refused, each worker says so once (warn), and gating stays shared, woken by the poll: two instances never over limit=2, every request answered, no error
--- config
--- init
package main;
# the nodes log in as "gate", who may use the keys sg:* and no channel
# (PUBLISH refused too); the default user, the test's, keeps every right
ScriptingGate::Redis::start(args => ['--user', 'gate', 'on', '>gatepw', '~sg:*',
                                     'resetchannels', '+@all']);
main::fresh();
my @n = main::start_nodes(2, tag => 't17-', auth => 'gate:gatepw');
my $refused = qr/scripting_gate_redis: zone "s": redis at \S+ refused to subscribe to "sg:\{s\}:wake" \(NOPERM[^)]*\), waiters ask again every 250 ms/;
# each worker subscribes when it starts
for my $node (@n) {
    wait_until(5, sub { ScriptingGate::Nodes::error_log($node, $refused) >= 2 });
}
# 16 over the two nodes: some wait at Redis for the other node's slots
my %st = ScriptingGate::Mock::burst(n => 16, timeout => 20,
                                    paths => [main::paths(16, 1, @n)]);
my $k = ScriptingGate::Mock::key_stats('k0::');
my @said = map { scalar(() = ScriptingGate::Nodes::error_log($_, $refused)) } @n;
my @err = map { ScriptingGate::Nodes::error_log($_, qr/\[(?:error|alert|emerg|crit)\]/) } @n;
my @states = map { main::redis_of($_)->{state} // '' } @n;
my $queued = 0;
$queued += main::key_of($_, 'k0')->{queued_total} // 0 for @n;
ScriptingGate::Nodes::stop(@n);
ScriptingGate::Redis::start();
html_put('result.txt', join '',
    "answers: ", main::statuses(%st), ", upstream peak $k->{peak_in_flight}\n",
    "queued: ", ($queued > 0 ? "some" : "none"), "\n",
    "refused to subscribe, logged: @said\n",
    "redis: @states\n",
    "errors: ", scalar(@err), "\n", @err);
--- request
GET /result.txt
--- response_body
answers: 200 x 16, upstream peak 2
queued: some
refused to subscribe, logged: 2 2
redis: up up
errors: 0
--- timeout: 30
