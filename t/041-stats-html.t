# The live page in a real browser (Debian's chromium, headless) during
# traffic: rows for the keys, figures that are not zero; then in real time
# (tools/stats_page.pl), the history of a burst and of its recovery.
# Screenshots are left in build/test-artifacts/stats.png and
# stats-history.png.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use Cwd qw(getcwd);
use ScriptingGate::Util qw(html_put http_get status_json wait_until
                           background reap servroot);

our $Shot = getcwd() . '/build/test-artifacts/stats.png';
mkdir getcwd() . '/build/test-artifacts';

ScriptingGate::Mock::start(delay => 0);

master_on();
workers(2);

sub chromium {
    my ($what, $url, $out) = @_;
    my $profile = "/tmp/scripting-gate-chromium-$$";
    my @cmd = ('chromium', '--headless', '--no-sandbox', '--disable-gpu',
               '--disable-quic', '--no-first-run',
               '--disable-background-networking',
               '--disable-component-update', '--disable-sync',
               "--user-data-dir=$profile", '--virtual-time-budget=2500',
               '--window-size=1500,420', '--hide-scrollbars');
    my $res;
    if ($what eq 'dom') {
        open my $fh, '-|', join(' ', @cmd, '--dump-dom', "'$url'", '2>/dev/null')
            or die "chromium: $!";
        local $/;
        $res = <$fh>;
        close $fh;
    } else {
        system(join(' ', @cmd, "--screenshot=$out", "'$url'", '2>/dev/null'));
        $res = -s $out;
    }
    system("rm -rf $profile");
    return $res;
}

# the values a sparkline drew, from its points (y = h - 1 - (h - 4) * v /
# scale, h = 22), with repeats folded: "0 2 1 0" is a burst and its recovery
sub history {
    my ($svg, $scale) = @_;
    my ($points) = $svg =~ /<polyline[^>]*points="([^"]*)"/ or return 'none';
    my @v = map { my (undef, $y) = split /,/; sprintf '%.0f', (21 - $y) * $scale / 18 }
            split / /, $points;
    my @folded;
    for (@v) { push @folded, $_ unless @folded && $folded[-1] == $_ }
    return "@folded";
}

run_tests();

__DATA__

=== TEST 1: the page shows the keys in flight, queued and answered 429
--- http_config
    scripting_gate_zone  $arg_k  zone=scripts:1m;
--- config
    location /api/ {
        scripting_gate zone=scripts limit=2 queue=10 queue_timeout=10s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /scripting-gate/status {
        scripting_gate_stats;
    }
--- init
package main;
http_get('/api/v2/scripts/x?k=beta', headers => { 'X-Mock-Action' => '429/ra=none' });
http_get('/api/v2/scripts/x?k=beta') for 1 .. 3;
# the three stay until both pages are taken (a headless chromium may take
# seconds to start), then their clients leave
my $kids = background(map { ["/api/v2/scripts/x?k=alpha",
                             headers => { 'X-Mock-Action' => '200/delay=60000' }] } 1 .. 3);
wait_until(5, sub { (status_json('/scripting-gate/status')->{zones}{scripts}{keys}{alpha}{queued} // 0) == 1 });
my $url = 'http://127.0.0.1:' . server_port() . '/scripting-gate/status';
my $dom = chromium('dom', $url) // '';
unlink $main::Shot;
chromium('png', $url, $main::Shot);
kill 'TERM', map { $_->[0] } @$kids;
reap($kids);
my %row;
while ($dom =~ m{<tr data-key="([^"]+)">(.*?)</tr>}g) {
    my ($k, $tr) = ($1, $2);
    my %c;
    while ($tr =~ m{<td class="([a-z_0-9]+)[^"]*">(?:<span.*?</span>)?\s*([^<]*)</td>}g) {
        $c{$1} = $2;
    }
    $row{$k} = "passed $c{passed}, in flight $c{active}, queued $c{queued}, 429s $c{u429}";
}
html_put('result.txt', join('', map { "$_: $row{$_}\n" } sort keys %row)
         . "screenshot: " . (-s $main::Shot ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
alpha: passed 2, in flight 2 / 2, queued 1, 429s 0
beta: passed 4, in flight 0 / 2, queued 0, 429s 1
screenshot: yes
--- timeout: 20



=== TEST 2: in real time, the history shows a burst on a key and its recovery
--- http_config
    scripting_gate_zone  $arg_k  zone=scripts:1m;
--- config
    location /api/ {
        scripting_gate zone=scripts limit=2 queue=10 queue_timeout=10s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /scripting-gate/status {
        scripting_gate_stats;
    }
--- init
package main;
(my $shot = $main::Shot) =~ s/stats\.png$/stats-history.png/;
unlink $shot;
my $url = 'http://127.0.0.1:' . server_port() . '/scripting-gate/status';
# the page is opened first and sees the key idle, then 3 requests of 2 s
# each at limit 2: two in flight and one queued, then one in flight, then
# none
http_get('/api/v2/scripts/x?k=alpha');
my $polls = sub { my $n = 0; open my $fh, '<', servroot() . '/logs/access.log' or return 0;
                   while (<$fh>) { $n++ if m{GET /scripting-gate/status\?} } $n };
my $before = $polls->();
open(my $page, '-|', $^X, 'tools/stats_page.pl', '--url', $url,
     '--seconds', 9, '--dom', '--screenshot', $shot, '--size', '1400,300')
    or die "tools/stats_page.pl: $!";
# the page has drawn the idle key once it has polled twice (however long
# chromium took to start)
wait_until(20, sub { $polls->() >= $before + 2 });
my $kids = background(map { ["/api/v2/scripts/x?k=alpha",
                             headers => { 'X-Mock-Action' => '200/delay=2000' }] } 1 .. 3);
reap($kids);
my $dom = do { local $/; <$page> } // '';
close $page;
my ($tr) = $dom =~ m{<tr data-key="alpha">(.*?)</tr>};
$tr //= '';
my @svg = $tr =~ m{(<svg.*?</svg>)}g;
my ($active) = $tr =~ m{<td class="active">(?:<span.*?</span>)?([^<]*)</td>};
html_put('result.txt',
    "now: in flight " . ($active // 'none') . "\n"
    . "in flight: " . history($svg[0] // '', 2) . "\n"
    . "queued: " . history($svg[1] // '', 1) . "\n"
    . "screenshot: " . (-s $shot ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
now: in flight 0 / 2
in flight: 0 2 1 0
queued: 0 1 0
screenshot: yes
--- timeout: 30
