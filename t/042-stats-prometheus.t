# The Prometheus text under Prometheus' own checker (promtool check
# metrics, from Debian's prometheus package), and the Grafana dashboard of
# conf-examples/ against that text: every metric it queries is there, every
# family there is on it, and its queries are PromQL that promtool accepts.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Cwd qw(getcwd);
use JSON::PP;
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get wait_until);

ScriptingGate::Mock::start(delay => 0);

no_shuffle();
# info, as in the other async tests: at the debug level, the first async
# job crashes the worker (the debug line of ngx_add_timer() reads
# ngx_event_ident() of the module's shutdown event, whose data is NULL)
log_level('info');

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $arg_k$http_x_k  zone=s:1m;
    scripting_async_zone zone=jobs:1m ttl=1m;
_EOC_

our $Config = <<'_EOC_';
    location /api/ {
        scripting_gate  zone=s limit=2 queue=10 queue_timeout=2s;
        scripting_retry on=429 attempts=3 base=10ms cap=50ms deadline=5s;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location /scripting-gate/jobs/ {
        scripting_async_jobs zone=jobs;
    }
    location = /status {
        scripting_gate_stats;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig);
    $block->set_value('config', $Config);
});

sub artifacts {
    my $dir = getcwd() . '/build/test-artifacts/prometheus';
    system("mkdir -p $dir");
    return $dir;
}

# the Prometheus text after a little of everything: a request, a 429
# retried, a key with a quote and a backslash, an async job
sub scrape {
    ScriptingGate::Mock::reset();
    http_get('/api/v2/scripts/x?k=a');
    ScriptingGate::Mock::plan('*', '429/ra=none');
    http_get('/api/v2/scripts/x?k=b');
    http_get('/api/v2/scripts/x', headers => { 'X-K' => 'q"\\z' });
    my $job = http_get('/api/v2/scripts/x?k=c',
                       headers => { 'Prefer' => 'respond-async' });
    my $loc = $job->{headers}{location} // '';
    wait_until(5, sub { http_get("$loc/result")->{status} != 202 }) if $loc;
    return http_get('/status?format=prometheus')->{content};
}

sub promtool {
    for my $dir (split /:/, $ENV{PATH} || '/usr/bin') {
        return "$dir/promtool" if -x "$dir/promtool";
    }
    return undef;
}

sub dashboard {
    open my $fh, '<', getcwd() . '/conf-examples/grafana-dashboard.json'
        or die "grafana-dashboard.json: $!\n";
    local $/;
    return decode_json(<$fh>);
}

# every query of the dashboard: its panels' and its variables'
sub queries {
    my ($d) = @_;
    my @q;
    for my $p (@{ $d->{panels} }, map { @{ $_->{panels} || [] } }
                                   @{ $d->{panels} }) {
        push @q, map { $_->{expr} } @{ $p->{targets} || [] };
    }
    for my $v (@{ $d->{templating}{list} }) {
        push @q, $v->{query} if $v->{type} eq 'query';
    }
    return @q;
}

# the metric names a query reads: names before a selector's "{", the first
# argument of label_values(), and anything called scripting_gate_*
sub metrics_of {
    my ($q) = @_;
    my %m;
    $m{$1} = 1 while $q =~ /([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g;
    $m{$1} = 1 while $q =~ /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/g;
    $m{$1} = 1 while $q =~ /\b(scripting_gate_[a-zA-Z0-9_]+)/g;
    return keys %m;
}

run_tests();

__DATA__

=== TEST 1: the Prometheus text passes promtool check metrics
--- init
package main;
my $file = artifacts() . '/metrics.txt';
open my $fh, '>', $file or die "$file: $!";
print $fh scrape();
close $fh;
my $promtool = promtool();
my $out = $promtool ? `$promtool check metrics < $file 2>&1` : '';
html_put('result.txt',
    !$promtool ? "promtool: not installed (apt-get install prometheus, or make deps)\n"
    : $? == 0 && $out eq '' ? "promtool: ok\n"
    : "promtool: exit " . ($? >> 8) . "\n$out");
--- request
GET /result.txt
--- response_body
promtool: ok



=== TEST 2: every metric the dashboard queries is in the module's output
--- init
package main;
my $text = scrape();
my %have;
$have{$1} = 1 while $text =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/mg;
my %want = map { $_ => 1 } map { metrics_of($_) } queries(dashboard());
my @missing = grep { !$have{$_} } sort keys %want;
html_put('result.txt', (%want ? "queried: yes\n" : "queried: none\n")
    . "missing: " . (@missing ? "@missing" : "none") . "\n");
--- request
GET /result.txt
--- response_body
queried: yes
missing: none



=== TEST 3: every family of the module's output is on the dashboard
--- init
package main;
my $text = scrape();
my %type;
$type{$1} = $2 while $text =~ /^# TYPE (\S+) (\S+)$/mg;
my %shown;
for my $m (map { metrics_of($_) } queries(dashboard())) {
    (my $f = $m) =~ s/_(?:bucket|sum|count)$//;
    $shown{ ($type{$f} // '') eq 'histogram' ? $f : $m } = 1;
}
my @absent = grep { !$shown{$_} } sort keys %type;
html_put('result.txt', "families: " . (%type ? "yes" : "none") . "\n"
    . "not on the dashboard: " . (@absent ? "@absent" : "none") . "\n");
--- request
GET /result.txt
--- response_body
families: yes
not on the dashboard: none



=== TEST 4: the dashboard's queries are PromQL that promtool accepts
--- init
package main;
my $n = 0;
my @rules;
for my $q (grep { !/^label_values\(/ } queries(dashboard())) {
    (my $e = $q) =~ s/\$__rate_interval/5m/g;
    $e =~ s/\$\{?[a-z_]+\}?/.*/g;
    push @rules, { record => 'dashboard:query_' . ++$n, expr => $e };
}
# YAML reads JSON
my $file = artifacts() . '/dashboard-rules.yml';
open my $fh, '>', $file or die "$file: $!";
print $fh encode_json({ groups => [{ name => 'dashboard', rules => \@rules }] });
close $fh;
my $promtool = promtool();
my $out = $promtool ? `$promtool check rules $file 2>&1` : '';
html_put('result.txt',
    !$promtool ? "promtool: not installed (apt-get install prometheus, or make deps)\n"
    : $? == 0 && $out =~ /SUCCESS: $n rules found/ ? "queries: valid\n"
    : "queries: exit " . ($? >> 8) . "\n$out");
--- request
GET /result.txt
--- response_body
queries: valid
