# Async jobs when the worker is out of connections: a socket of a job's
# transfer that cannot become an nginx connection fails that transfer
# only; the worker's other and later transfers go on.  One worker, few
# connections: what is tested is the worker's own accounting.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use IO::Socket::INET;
use JSON::PP qw(decode_json);
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get wait_until);
use Time::HiRes qw(sleep);

ScriptingGate::Mock::start(delay => 0);

master_on();
workers(1);
worker_connections(6);
log_level('info');
no_shuffle();

run_tests();

__DATA__

=== TEST 1: a retry that finds no free connection fails its job, and the next job runs
--- http_config
    scripting_async_zone zone=jobs:1m;
--- config
    location /api/ {
        scripting_retry on=429 attempts=2 deadline=10s;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/jobs/;
    }
    location /jobs/ {
        scripting_async_jobs zone=jobs;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# the retry's answer comes late, so curl has to watch its socket: an answer
# already there when curl first looks would need no nginx connection at all
ScriptingGate::Mock::plan('cx::', '429/ra=2', '200/delay=300');
sub submit {
    my $res = http_get($_[0], headers => { 'Prefer' => 'respond-async' });
    return $res->{headers}{location};
}
sub job {
    my $res = http_get($_[0]);
    return eval { decode_json($res->{content}) } || {};
}
my $loc = submit('/api/v2/scripts/cx');
wait_until(5, sub { (job($loc)->{status} // 0) == 429 });
# the worker's connections taken by clients that send half a request
# (nginx would close idle ones to make room) until it has none left,
# while the job waits to retry
my @idle;
for (1 .. 8) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => ScriptingGate::Util::server_port())
        or last;
    $s->autoflush(1);
    print $s "GET /half HTTP/1.1\r\nHost: localhost\r\n";
    push @idle, $s;
    # read by nginx before the next comes: until then a connection is one
    # it may close to make room for another
    sleep 0.05;
}
sleep 3;
close $_ for @idle;
sleep 0.2;
my $j = {};
wait_until(5, sub { $j = job($loc); $j->{state} ne 'running' });
my $loc2 = submit('/api/v2/scripts/cy');
my $j2 = {};
wait_until(5, sub { $j2 = job($loc2); ($j2->{state} // '') =~ /succeeded|failed/ });
html_put('result.txt', "first: $j->{state}\nnext: $j2->{state} $j2->{status}\n");
--- request
GET /result.txt
--- response_body
first: failed
next: succeeded 200
--- error_log
a socket of a transfer could not be watched
--- no_error_log
exited on signal
--- timeout: 20
