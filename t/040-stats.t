# The status endpoint: JSON with exact figures after known traffic, the
# Prometheus text line by line, the two agreeing, reset, bad input.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JSON::PP;
use IO::Socket::INET;
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get status_json wait_until
                           background reap);

ScriptingGate::Mock::start(delay => 0);

master_on();
workers(2);
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $arg_k$http_x_k  zone=s:1m;
_EOC_

our $Config = <<'_EOC_';
    location /api/ {
        scripting_gate zone=s limit=2 queue=0;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status {
        scripting_gate_stats;
    }
    location = /status-reset {
        scripting_gate_stats reset=on;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
    $block->set_value('config', $Config) unless defined $block->config;
});

# known traffic: 3 requests for a, 1 for b, 1 for "c" refused (queue=0)
# while two slow ones hold its slots
sub traffic {
    http_get("/api/v2/scripts/x?k=a") for 1 .. 3;
    http_get("/api/v2/scripts/x?k=b");
    my $kids = background(map { ["/api/v2/scripts/x?k=c",
                                 headers => { 'X-Mock-Action' => '200/delay=500' }] } 1 .. 2);
    wait_until(5, sub { (status_json('/status')->{zones}{s}{keys}{c}{active} // 0) == 2 });
    my $r = http_get("/api/v2/scripts/x?k=c");
    reap($kids);
    # each worker gives its slots back as it ends its requests, which may
    # be just after their clients have the answers
    wait_until(2, sub {
        my $keys = status_json('/status')->{zones}{s}{keys} || {};
        !grep { $_->{active} } values %$keys;
    });
    return $r->{status};
}

# a request with bytes HTTP::Tiny refuses to send (not UTF-8, say)
sub raw_get {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => ScriptingGate::Util::server_port(),
                                  Timeout => 5) or die "connect: $!";
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $res = <$s>;
    close $s;
    return $res;
}

# What is wrong with a text in the Prometheus exposition format 0.0.4, by
# its grammar: HELP and TYPE lines, samples of the family last declared and
# never a family split in two, label values escaped, a final newline; and
# for histograms, buckets that never decrease and a +Inf bucket equal to
# _count.  Returns the problems found, none when all is well.
sub prometheus_problems {
    my ($text) = @_;
    my (@bad, %type, %help, $family, %hist);
    my $name = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
    my $value = qr/"(?:[^"\\\n]|\\[\\"n])*"/;
    my $pair = qr/[a-zA-Z_][a-zA-Z0-9_]*=$value/;
    my $num = qr/[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN/;

    push @bad, "no final newline" unless $text =~ /\n\z/;
    push @bad, "not UTF-8" unless utf8::decode(my $copy = $text);

    for my $l (split /\n/, $text) {
        if ($l =~ /^# HELP ($name) (.*)$/) {
            push @bad, "HELP $1 twice" if $help{$1}++;

        } elsif ($l =~ /^# TYPE ($name) (counter|gauge|histogram|summary|untyped)$/) {
            push @bad, "TYPE $1 twice" if $type{$1};
            $type{$1} = $2;
            $family = $1;

        } elsif ($l =~ /^($name)(\{(?:$pair(?:,$pair)*)?\})? ($num)$/) {
            my ($m, $labels, $v) = ($1, $2 // '', $3);
            my $f = $m;
            $f =~ s/_(?:bucket|sum|count)$// if defined $family
                && ($type{$family} // '') eq 'histogram';
            push @bad, "$m outside its family" unless defined $family
                                                       && $f eq $family;
            if ($m =~ /_bucket$/) {
                my $le = $labels =~ /le="([^"]*)"/ ? $1 : undef;
                (my $set = $labels) =~ s/,?le="[^"]*"//;
                push @bad, "$m without le" unless defined $le;
                my $h = $hist{"$f$set"} //= { last => -1 };
                push @bad, "$m$labels decreases" if $v < $h->{last};
                $h->{last} = $v;
                $h->{inf} = $v if defined $le && $le eq '+Inf';
            } elsif ($m =~ /_count$/ && $type{$f} eq 'histogram') {
                my $h = $hist{"$f$labels"};
                push @bad, "$m$labels differs from its +Inf bucket"
                    unless $h && defined $h->{inf} && $h->{inf} == $v;
            }

        } else {
            push @bad, "bad line: $l";
        }
    }

    for my $f (keys %type) {
        push @bad, "$f without HELP" unless $help{$f};
    }

    return @bad;
}

run_tests();

__DATA__

=== TEST 1: JSON: the documented fields, with exact figures
--- init
package main;
traffic();
--- request
GET /status
--- response_headers
Content-Type: application/json
--- response_body_like chomp
^\{"zones":\{"s":\{"keys":\{"c":\{"passed":2,"queued_total":0,"rejected":1,"timed_out":0,"upstream_429":0,"retries":0,"limit":2,"active":0,"queued":0,"cooldown_ms":0,"effective_limit":2,"limit_decreases":0,"limit_increases":0\},"b":\{"passed":1,"queued_total":0,"rejected":0,"timed_out":0,"upstream_429":0,"retries":0,"limit":2,"active":0,"queued":0,"cooldown_ms":0,"effective_limit":2,"limit_decreases":0,"limit_increases":0\},"a":\{"passed":3,"queued_total":0,"rejected":0,"timed_out":0,"upstream_429":0,"retries":0,"limit":2,"active":0,"queued":0,"cooldown_ms":0,"effective_limit":2,"limit_decreases":0,"limit_increases":0\}\},"totals":\{"passed":6,"queued_total":0,"rejected":1,"timed_out":0,"upstream_429":0,"retries":0,"active":0,"queued":0\},"keys_count":3,"keys_truncated":false,"evicted":0,"no_memory":0,"retry_budget":\{"requests":0,"retrying":0,"exhausted":0\},"histograms":\{"queue_wait_ms":\{"buckets":\[\{"le":5,"count":0\},.*\{"le":"\+Inf","count":0\}\],"sum":0,"count":0\},"upstream_ms":\{"buckets":\[.*\{"le":"\+Inf","count":6\}\],"sum":\d+,"count":6\}\}\}\},"time_ms":\d+,"pid":\d+\}$



=== TEST 2: Prometheus: families, labels, histograms
--- init
package main;
traffic();
--- request
GET /status?format=prometheus
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like chomp
^# HELP scripting_gate_limit .*
# TYPE scripting_gate_limit gauge
scripting_gate_limit\{zone="s",key="c"\} 2
scripting_gate_limit\{zone="s",key="b"\} 2
scripting_gate_limit\{zone="s",key="a"\} 2
# HELP scripting_gate_active .*
# TYPE scripting_gate_active gauge
scripting_gate_active\{zone="s",key="c"\} 0
.*
# TYPE scripting_gate_passed_total counter
scripting_gate_passed_total\{zone="s",key="c"\} 2
scripting_gate_passed_total\{zone="s",key="b"\} 1
scripting_gate_passed_total\{zone="s",key="a"\} 3
.*
# TYPE scripting_gate_rejected_total counter
scripting_gate_rejected_total\{zone="s",key="c"\} 1
.*
# TYPE scripting_gate_keys gauge
scripting_gate_keys\{zone="s"\} 3
.*
# TYPE scripting_gate_queue_wait_seconds histogram
scripting_gate_queue_wait_seconds_bucket\{zone="s",le="0.005"\} 0
scripting_gate_queue_wait_seconds_bucket\{zone="s",le="0.01"\} 0
.*
scripting_gate_queue_wait_seconds_bucket\{zone="s",le="1"\} 0
scripting_gate_queue_wait_seconds_bucket\{zone="s",le="2.5"\} 0
.*
scripting_gate_queue_wait_seconds_bucket\{zone="s",le="\+Inf"\} 0
scripting_gate_queue_wait_seconds_sum\{zone="s"\} 0.000
scripting_gate_queue_wait_seconds_count\{zone="s"\} 0
# HELP scripting_gate_upstream_seconds .*
# TYPE scripting_gate_upstream_seconds histogram
.*
scripting_gate_upstream_seconds_bucket\{zone="s",le="\+Inf"\} 6
scripting_gate_upstream_seconds_sum\{zone="s"\} \d+\.\d{3}
scripting_gate_upstream_seconds_count\{zone="s"\} 6$



=== TEST 3: JSON and Prometheus agree
--- init
package main;
traffic();
my $j = status_json('/status')->{zones}{s};
my $p = http_get('/status?format=prometheus')->{content};
my @diff;
for my $k (sort keys %{ $j->{keys} }) {
    for my $f (qw(passed rejected timed_out retries upstream_429)) {
        my ($v) = $p =~ /^scripting_gate_${f}_total\{zone="s",key="\Q$k\E"\} (\d+)$/m;
        push @diff, "$k $f" unless defined $v && $v == $j->{keys}{$k}{$f};
    }
    for my $f (qw(limit active effective_limit)) {
        my ($v) = $p =~ /^scripting_gate_${f}\{zone="s",key="\Q$k\E"\} (\d+)$/m;
        push @diff, "$k $f" unless defined $v && $v == $j->{keys}{$k}{$f};
    }
}
html_put('result.txt', @diff ? "differ: @diff\n" : "agree\n");
--- request
GET /result.txt
--- response_body
agree



=== TEST 4: a key with a quote and a backslash is escaped in Prometheus labels
--- init
package main;
http_get('/api/v2/scripts/x', headers => { 'X-K' => 'q"\\z' });
--- request
GET /status?format=prometheus
--- response_body_like chomp
scripting_gate_passed_total\{zone="s",key="q\\"\\\\x5Cz"\} 1



=== TEST 5: DELETE resets the counters where reset=on
--- init
package main;
traffic();
--- request
DELETE /status-reset
--- error_code: 204
--- error_log
scripting_gate_stats: counters reset



=== TEST 6: the counters are zero after a reset, the keys stay
--- init
package main;
traffic();
http_get('/status-reset', method => 'DELETE');
--- request
GET /status
--- response_body_like chomp
^(?=.*"a":\{"passed":0,"queued_total":0,"rejected":0,"timed_out":0,"upstream_429":0,"retries":0,"limit":2,)(?=.*"c":\{"passed":0,"queued_total":0,"rejected":0,"timed_out":0,"upstream_429":0,"retries":0,"limit":2,)



=== TEST 7: DELETE is refused without reset=on
--- request
DELETE /status
--- error_code: 405
--- response_headers
Allow: GET, HEAD



=== TEST 8: an unknown format is a bad request
--- request
GET /status?format=xml
--- error_code: 400



=== TEST 9: a browser gets the page
--- more_headers
Accept: text/html,application/xhtml+xml
--- request
GET /status
--- response_headers
Content-Type: text/html; charset=utf-8
--- response_body_like chomp
<title>scripting gate</title>



=== TEST 10: max_keys caps the keys listed, most recently used first
--- config
    location /api/ {
        scripting_gate zone=s limit=2;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status {
        scripting_gate_stats max_keys=2;
    }
--- init
package main;
http_get("/api/v2/scripts/x?k=k$_") for 1 .. 5;
--- request
GET /status
--- response_body_like chomp
^\{"zones":\{"s":\{"keys":\{"k5":\{[^}]*\},"k4":\{[^}]*\}\},"totals":\{[^}]*\},"keys_count":5,"keys_truncated":true,



=== TEST 11: an unknown parameter fails the configuration
--- config
    location = /status {
        scripting_gate_stats reset=yes;
    }
--- must_die
--- error_log
invalid parameter "reset=yes"



=== TEST 12: the Prometheus text follows the 0.0.4 grammar, odd keys included
--- init
package main;
traffic();
http_get('/api/v2/scripts/x', headers => { 'X-K' => "q\"\\z" });
my $p = http_get('/status?format=prometheus')->{content};
my @bad = prometheus_problems($p);
# and Prometheus' own linter where it is installed (Debian's prometheus)
if (system('command -v promtool >/dev/null 2>&1') == 0) {
    my $out = ScriptingGate::Util::servroot() . '/promtool.out';
    open my $fh, '|-', "promtool check metrics > $out 2>&1";
    print $fh $p;
    close $fh;
    push @bad, "promtool: " . `cat $out` if $?;
    unlink $out;
}
html_put('result.txt', @bad ? join("\n", @bad) . "\n" : "valid\n");
--- request
GET /result.txt
--- response_body
valid



=== TEST 13: a key that is not UTF-8 is shown with \xHH, the answers stay valid
--- init
package main;
http_get('/api/v2/scripts/x?k=a');
raw_get("/api/v2/scripts/x?k=x\xff\xfeok\xc3\xa9\xed\xa0\x80");
my $j = http_get('/status');
my $keys = eval { decode_json($j->{content})->{zones}{s}{keys} } || {};
my $p = http_get('/status?format=prometheus')->{content};
html_put('result.txt',
    "json $j->{status}: " . join(' ', map { encode_json([$_]) } sort keys %$keys) . "\n"
    . "prometheus: " . (prometheus_problems($p) ? "invalid" : "valid") . "\n"
    . ($p =~ /^(scripting_gate_passed_total\{zone="s",key="x.*)$/m ? "$1\n" : "no line\n"));
--- request
GET /result.txt
--- response_body
json 200: ["a"] ["x\\xFF\\xFEoké\\xED\\xA0\\x80"]
prometheus: valid
scripting_gate_passed_total{zone="s",key="x\\xFF\\xFEoké\\xED\\xA0\\x80"} 1



=== TEST 14: a zone name with a quote and a backslash is escaped in every label
--- http_config
    scripting_gate_zone  $arg_k  "zone=q\"z\\w:1m";
--- config
    location /api/ {
        scripting_gate "zone=q\"z\\w" limit=2;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status {
        scripting_gate_stats;
    }
--- init
package main;
http_get('/api/v2/scripts/x?k=a');
my $p = http_get('/status?format=prometheus')->{content};
my @zones = $p =~ /zone="((?:[^"\\]|\\.)*)"/g;
my %z = map { $_ => 1 } @zones;
html_put('result.txt', join(' ', sort keys %z) . "\n"
    . (prometheus_problems($p) ? "invalid" : "valid") . "\n");
--- request
GET /result.txt
--- response_body
q\"z\\w
valid



=== TEST 15: HEAD gives the length of GET and no body; Vary only without format
--- init
package main;
traffic();
my $get = http_get('/status?format=prometheus');
my $head = http_get('/status?format=prometheus', method => 'HEAD');
my $plain = http_get('/status');
html_put('result.txt',
    "head: $head->{status} length "
    . ($head->{headers}{'content-length'} == length($get->{content})
       ? "as get" : "$head->{headers}{'content-length'} != " . length($get->{content}))
    . " body " . length($head->{content} // '') . "\n"
    . "vary with format: " . ($get->{headers}{vary} // 'none') . "\n"
    . "vary without: " . ($plain->{headers}{vary} // 'none') . "\n"
    . "cache-control: " . ($plain->{headers}{'cache-control'} // 'none') . "\n");
--- request
GET /result.txt
--- response_body
head: 200 length as get body 0
vary with format: none
vary without: Accept
cache-control: no-cache



=== TEST 16: an invalid max_keys fails the configuration
--- config
    location = /status {
        scripting_gate_stats max_keys=many;
    }
--- must_die
--- error_log
invalid max_keys "max_keys=many"



=== TEST 17: the directive twice in a location fails the configuration
--- config
    location = /status {
        scripting_gate_stats;
        scripting_gate_stats reset=on;
    }
--- must_die
--- error_log
"scripting_gate_stats" directive is duplicate
