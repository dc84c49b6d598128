# The helpers of the multi-instance tests, checked on their own:
# ScriptingGate::Redis (a real redis-server: start, RESP commands, stop,
# SIGKILL, restart on the same port) and ScriptingGate::Nodes (several
# nginx masters with two workers each, started from an http{} text,
# stopped, one SIGKILLed with its workers).  No scripting_gate_redis here:
# t/080-redis.t is about that.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Nodes;
use ScriptingGate::Redis;
use ScriptingGate::Util qw(html_put http_get wait_until children);
use IO::Socket::INET;

ScriptingGate::Mock::start(delay => 100);
ScriptingGate::Redis::start();

no_shuffle();

sub refused {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1);
    return $s ? 0 : 1;
}

run_tests();

__DATA__

=== TEST 1: redis-server answers the RESP client, and is stopped, killed and restarted on its port
--- config
--- init
package main;
my $R = 'ScriptingGate::Redis';
my $port = $ENV{TEST_NGINX_REDIS_PORT};
my @out;
push @out, 'ping: ' . ScriptingGate::Redis::cmd('PING');
ScriptingGate::Redis::cmd('FLUSHALL');
push @out, 'zadd: ' . ScriptingGate::Redis::cmd('ZADD', 'sg:{z:k}:s', 1000, 'w1', 2000, 'w2');
push @out, 'zcard: ' . ScriptingGate::Redis::cmd('ZCARD', 'sg:{z:k}:s');
push @out, 'zrange: ' . join(',', @{ ScriptingGate::Redis::cmd('ZRANGE', 'sg:{z:k}:s', 0, -1, 'WITHSCORES') });
push @out, 'hget of nothing: ' . (defined ScriptingGate::Redis::cmd('HGET', 'sg:{z:k}:h', 'x') ? 'defined' : 'nil');
ScriptingGate::Redis::cmd('SET', 'bin', "a\r\nb\0c");
push @out, 'binary safe: ' . (ScriptingGate::Redis::cmd('GET', 'bin') eq "a\r\nb\0c" ? 'yes' : 'no');
eval { ScriptingGate::Redis::cmd('INCR', 'sg:{z:k}:s') };
push @out, 'error: ' . ($@ =~ /WRONGTYPE/ ? 'WRONGTYPE' : "<$@>");
push @out, 'after an error: ' . ScriptingGate::Redis::cmd('PING');
push @out, 'keys: ' . join(' ', ScriptingGate::Redis::keys_like('sg:*'));

my $pid = ScriptingGate::Redis::pid();
ScriptingGate::Redis::stop();
push @out, 'stopped: ' . (kill(0, $pid) ? 'no' : 'yes') . ', port refused: ' . main::refused($port);
eval { ScriptingGate::Redis::cmd('PING') };
push @out, 'cmd while down: ' . ($@ ? 'dies' : 'answers');

ScriptingGate::Redis::start();
push @out, 'started again on the same port: ' . ($ENV{TEST_NGINX_REDIS_PORT} == $port ? 'yes' : 'no')
    . ', ' . ScriptingGate::Redis::cmd('PING')
    . ', empty: ' . ScriptingGate::Redis::cmd('DBSIZE');
ScriptingGate::Redis::cmd('SET', 'x', 1);
$pid = ScriptingGate::Redis::pid();
ScriptingGate::Redis::kill9();
push @out, 'killed: ' . (kill(0, $pid) ? 'no' : 'yes') . ', port refused: ' . main::refused($port);
ScriptingGate::Redis::restart();
push @out, 'restarted: ' . ScriptingGate::Redis::cmd('PING') . ', x: '
    . (ScriptingGate::Redis::cmd('GET', 'x') // 'nil');
ScriptingGate::Redis::restart();
push @out, 'restarted while up: ' . ScriptingGate::Redis::cmd('PING');
html_put('result.txt', join '', map { "$_\n" } @out);
--- request
GET /result.txt
--- response_body
ping: PONG
zadd: 2
zcard: 2
zrange: w1,1000,w2,2000
hget of nothing: nil
binary safe: yes
error: WRONGTYPE
after an error: PONG
keys: sg:{z:k}:s
stopped: yes, port refused: 1
cmd while down: dies
started again on the same port: yes, PONG, empty: 0
killed: yes, port refused: 1
restarted: PONG, x: nil
restarted while up: PONG
--- timeout: 20



=== TEST 2: three nginx instances, two workers each, from one http{} text; one SIGKILLed with its workers, the others stopped
--- config
--- init
package main;
ScriptingGate::Mock::reset();
my @n = ScriptingGate::Nodes::start_nodes(3, http => <<'_EOC_');
    access_log off;
    scripting_gate_zone  $script_id  zone=s:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_NODE_PORT;
        location = /name { return 200 "$TEST_NGINX_NODE_NAME $TEST_NGINX_NODE_PORT\n"; }
        location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
            scripting_gate zone=s limit=1 queue=50 queue_timeout=10s;
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        }
    }
_EOC_
my @out;
my $base = ScriptingGate::Util::server_port();
for my $node (@n) {
    my $r = http_get(ScriptingGate::Nodes::url($node, '/name'));
    (my $body = $r->{content}) =~ s/(\d+)\n$/'+' . ($1 - $base)/e;
    push @out, "$node->{name}: $r->{status} $body, workers: "
               . scalar(ScriptingGate::Nodes::workers($node));
}
# each gates on its own (no Redis): 3 nodes x limit 1
my %st = ScriptingGate::Mock::burst(n => 12, timeout => 20,
    paths => [map { ScriptingGate::Nodes::url($n[$_ % 3], '/api/v2/scripts/own') } 0 .. 11]);
push @out, 'burst: ' . join(' ', map { "$_ x $st{$_}" } sort keys %st)
    . ', upstream peak ' . ScriptingGate::Mock::key_stats('own::')->{peak_in_flight};

my @pids = ($n[2]{pid}, ScriptingGate::Nodes::workers($n[2]));
my $port = $n[2]{port};
ScriptingGate::Nodes::kill9($n[2]);
push @out, 'c killed: ' . scalar(grep { kill 0, $_ } @pids) . ' of '
           . scalar(@pids) . ' processes left, port refused: ' . main::refused($port);
push @out, 'a still answers: ' . http_get(ScriptingGate::Nodes::url($n[0], '/name'))->{status};
push @out, 'stop: ' . join(' ', ScriptingGate::Nodes::stop(@n));
push @out, 'ports refused: ' . join(' ', map { main::refused($_->{port}) } @n);
push @out, 'errors: ' . scalar(map { ScriptingGate::Nodes::error_log($_, qr/\[(emerg|alert|crit)\]/) } @n);
html_put('result.txt', join '', map { "$_\n" } @out);
--- request
GET /result.txt
--- response_body
a: 200 a +1, workers: 2
b: 200 b +2, workers: 2
c: 200 c +3, workers: 2
burst: 200 x 12, upstream peak 3
c killed: 0 of 3 processes left, port refused: 1
a still answers: 200
stop: stopped stopped not running
ports refused: 1 1 1
errors: 0
--- timeout: 30
