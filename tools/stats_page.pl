#!/usr/bin/perl
# Opens the status page in headless Chromium in real time (not the virtual
# time of --virtual-time-budget, which would squeeze the polls together), so
# that the page's history holds what really happened, then prints its DOM
# and/or saves a screenshot.  It talks the DevTools protocol over
# --remote-debugging-pipe (NUL-separated JSON on fds 3 and 4): Perl's core
# modules are enough, no websocket client needed.
#
#   perl tools/stats_page.pl --url URL [--seconds 8] [--dom]
#        [--screenshot out.png] [--size 1400,500]
#
# Used by t/041-stats-html.t and to make docs/stats-page.png.

use strict;
use warnings;

use Getopt::Long;
use IO::Select;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use POSIX qw(WNOHANG);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

my %o = (seconds => 8, size => '1400,500');
GetOptions(\%o, 'url=s', 'seconds=f', 'dom', 'screenshot=s', 'size=s',
           'chromium=s')
    or die "usage: $0 --url URL [--seconds N] [--dom] [--screenshot F]\n";
die "$0: --url is required\n" unless $o{url};

my $profile = tempdir('scripting-gate-chromium-XXXXXX', TMPDIR => 1,
                      CLEANUP => 1);

pipe(my $to_r, my $to_w) or die "pipe: $!";
pipe(my $from_r, my $from_w) or die "pipe: $!";

my $pid = fork();
die "fork: $!" unless defined $pid;

if ($pid == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    # the protocol's descriptors: Chromium reads 3 and writes 4
    my $r = POSIX::dup(fileno $to_r);
    my $w = POSIX::dup(fileno $from_w);
    POSIX::dup2($r, 3);
    POSIX::dup2($w, 4);
    no warnings 'exec';
    exec($o{chromium} || 'chromium', '--headless', '--no-sandbox',
         '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--hide-scrollbars', '--remote-debugging-pipe',
         "--window-size=$o{size}", "--user-data-dir=$profile",
         'about:blank');
    POSIX::_exit(127);
}

close $to_r;
close $from_w;
select((select($to_w), $| = 1)[0]);

my ($id, $in, $session) = (0, '');
my $sel = IO::Select->new($from_r);

# sends a command and waits for its answer; events in between are ignored
sub cdp {
    my ($method, $params, $timeout) = @_;
    my $n = ++$id;
    my $msg = { id => $n, method => $method, params => $params || {} };
    $msg->{sessionId} = $session if $session;
    print $to_w encode_json($msg) . "\0";
    my $end = time + ($timeout || 20);
    while (time < $end) {
        while ($in =~ s/^([^\0]*)\0//) {
            my $m = decode_json($1);
            next unless defined $m->{id} && $m->{id} == $n;
            die "$method: $m->{error}{message}\n" if $m->{error};
            return $m->{result};
        }
        next unless $sel->can_read($end - time);
        sysread($from_r, $in, 1 << 20, length $in) or last;
    }
    die "$method: no answer from chromium\n";
}

my $ok = eval {
    my $t = cdp('Target.createTarget', { url => 'about:blank' });
    $session = cdp('Target.attachToTarget',
                   { targetId => $t->{targetId}, flatten => JSON::PP::true })
               ->{sessionId};
    cdp('Page.enable');
    cdp('Page.navigate', { url => $o{url} });
    sleep $o{seconds};

    if ($o{dom}) {
        my $r = cdp('Runtime.evaluate',
                    { expression => 'document.documentElement.outerHTML',
                      returnByValue => JSON::PP::true });
        print $r->{result}{value}, "\n";
    }

    if ($o{screenshot}) {
        my $r = cdp('Page.captureScreenshot', { format => 'png' });
        open my $fh, '>:raw', $o{screenshot}
            or die "cannot write $o{screenshot}: $!\n";
        print $fh decode_base64($r->{data});
        close $fh;
    }

    $session = undef;
    eval { cdp('Browser.close', {}, 5) };
    1;
};
my $err = $@;

# Chromium exits on Browser.close; make sure of it
for (1 .. 50) {
    last if waitpid($pid, WNOHANG) == $pid;
    sleep 0.1;
    kill 'KILL', $pid if $_ == 40;
}

die $err unless $ok;
