package ScriptingGate::Raw;

# A scripted upstream for the tests of nginx features under retry: answers
# that the mock does not give (X-Accel-Redirect, a body cut short, a
# WebSocket upgrade, a fixed body for ranges), in a planned order.
#
#   use ScriptingGate::Raw;
#   ScriptingGate::Raw::start();     # $ENV{TEST_NGINX_RAW_PORT} holds its port
#   # GET /t/<name>/<a1>,<a2>,...: the n-th request of that path takes
#   # action n (the last one repeats)
#   my $n = ScriptingGate::Raw::count('/t/x/429,200');   # requests it saw
#
# Actions: 429 (no Retry-After), 404, 200 (the body "0123456789abcdefghij"),
# 200ns (the same with Cache-Control: no-store), xar (200 with
# X-Accel-Redirect: /internal/<name>), cut (Content-Length: 1000, 10 bytes,
# then the connection closes), chunkcut (one chunk, then it closes without
# the last chunk), ws (101 Switching Protocols, then an echo).
#
# It speaks HTTP/1.x and SCGI (REQUEST_URI is the path).  One process
# answers one connection at a time, and closes it after the answer; a
# WebSocket gets a process of its own.

use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();

my $pid;
my $owner;

sub start {
    my $srv = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                    LocalPort => 0, Proto => 'tcp',
                                    ReuseAddr => 1)
        or die "ScriptingGate::Raw: cannot listen: $!\n";
    $ENV{TEST_NGINX_RAW_PORT} = $srv->sockport;
    $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        serve($srv);
        POSIX::_exit(0);
    }
    $owner = $$;
    close $srv;
    return $ENV{TEST_NGINX_RAW_PORT};
}

END {
    local $?;
    if ($pid && defined $owner && $owner == $$) {
        kill 'TERM', $pid;
        waitpid($pid, 0);
    }
}

sub count {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_RAW_PORT},
                                  Timeout => 5) or return -1;
    print $s "GET /__count$path HTTP/1.0\r\n\r\n";
    local $/;
    my $res = <$s> // '';
    close $s;
    return $res =~ /\r\n\r\n(\d+)$/ ? $1 : -1;
}

my $BODY = '0123456789abcdefghij';

sub answer {
    my ($status, $head, $body) = @_;
    return "HTTP/1.1 $status\r\n$head"
         . (defined $body ? "Content-Length: " . length($body) . "\r\n" : '')
         . "Connection: close\r\n\r\n" . ($body // '');
}

sub serve {
    my ($srv) = @_;
    my %seen;
    $SIG{CHLD} = 'IGNORE';
    while (my $c = $srv->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/ && !scgi_done($req)) {
            my $n = sysread($c, $req, 8192, length $req);
            last unless $n;
        }
        my ($path) = $req =~ m{^[A-Z]+ (\S+)};
        my $scgi = !defined $path && $req =~ /\0REQUEST_URI\0([^\0]*)\0/;
        $path = $1 if $scgi;
        $path //= '/';
        $path =~ s/\?.*//;

        if ($path =~ m{^/__count(/.*)$}) {
            syswrite($c, answer('200 OK', '', $seen{$1} // 0));
            close $c;
            next;
        }

        my $n = $seen{$path}++;
        my ($name, $plan) = $path =~ m{^/t/([^/]+)/(.*)$};
        my @acts = split /,/, $plan // '200';
        my $act = $acts[$n < @acts ? $n : $#acts];
        my $text = "Content-Type: text/plain\r\n";
        my $out;

        if ($act eq '429') {
            $out = answer('429 Too Many Requests',
                          "Content-Type: application/json\r\n",
                          '{"code":"too.many.requests","status":429}');
        } elsif ($act eq '404') {
            $out = answer('404 Not Found', $text, "not here\n");
        } elsif ($act eq '200') {
            $out = answer('200 OK', $text, $BODY);
        } elsif ($act eq '200ns') {
            $out = answer('200 OK', $text . "Cache-Control: no-store\r\n", $BODY);
        } elsif ($act eq 'xar') {
            $out = answer('200 OK', "X-Accel-Redirect: /internal/$name\r\n", '');
        } elsif ($act eq 'cut') {
            $out = "HTTP/1.1 200 OK\r\n${text}Content-Length: 1000\r\n"
                   . "Connection: close\r\n\r\n" . substr($BODY, 0, 10);
        } elsif ($act eq 'chunkcut') {
            $out = "HTTP/1.1 200 OK\r\n${text}Transfer-Encoding: chunked\r\n"
                   . "Connection: close\r\n\r\na\r\n" . substr($BODY, 0, 10)
                   . "\r\n";
        } elsif ($act eq 'ws') {
            my $kid = fork();
            if (defined $kid && $kid == 0) {
                syswrite($c, "HTTP/1.1 101 Switching Protocols\r\n"
                             . "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
                while (sysread($c, my $buf, 8192)) {
                    syswrite($c, $buf);
                }
                POSIX::_exit(0);
            }
        }

        if (defined $out) {
            # SCGI answers as CGI does: a Status header, not a status line
            $out =~ s{^HTTP/1\.1 }{Status: } if $scgi;
            syswrite($c, $out);
        }
        close $c;
    }
}

# an SCGI request: a netstring of NUL-separated headers, read whole
sub scgi_done {
    my ($req) = @_;
    return 0 unless $req =~ /^(\d+):/;
    return length($req) >= length($1) + 2 + $1;
}

1;
