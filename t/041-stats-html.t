# The live page in a real browser (Debian's chromium, headless) during
# traffic: rows for the keys, figures that are not zero.  A screenshot is
# left in build/test-artifacts/stats.png.

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
my $kids = background(map { ["/api/v2/scripts/x?k=alpha",
                             headers => { 'X-Mock-Action' => '200/delay=3000' }] } 1 .. 3);
wait_until(5, sub { status_json('/scripting-gate/status')->{zones}{scripts}{keys}{alpha}{queued} == 1 });
my $url = 'http://127.0.0.1:' . server_port() . '/scripting-gate/status';
my $dom = chromium('dom', $url) // '';
unlink $main::Shot;
chromium('png', $url, $main::Shot);
reap($kids);
my %row;
while ($dom =~ m{<tr data-key="([^"]+)">(.*?)</tr>}g) {
    my ($k, $tr) = ($1, $2);
    my %c;
    while ($tr =~ m{<td class="([a-z_0-9]+)[^"]*">(?:<span.*?</span>)?\s*([^<]*)</td>}g) {
        $c{$1} = $2;
    }
    $row{$k} = "in flight $c{active}, queued $c{queued}, 429s $c{u429}";
}
html_put('result.txt', join('', map { "$_: $row{$_}\n" } sort keys %row)
         . "screenshot: " . (-s $main::Shot ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
alpha: in flight 2 / 2, queued 1, 429s 0
beta: in flight 0 / 2, queued 0, 429s 1
screenshot: yes
--- timeout: 20
