package ScriptingGate::Mock;

# The mock Scripting API (build/scripting-mock, see tools/mock/README.md)
# for test files: starts it, talks to its control endpoints, and fires
# bursts of truly concurrent requests.
#
#   use ScriptingGate::Mock;
#   ScriptingGate::Mock::start(limit => 2, rate => 300, delay => 50);
#   # $ENV{TEST_NGINX_MOCK_PORT} now holds its port, for the configurations
#   ScriptingGate::Mock::reset();
#   ScriptingGate::Mock::plan('abc::v1', '429/ra=1', '200/echo');
#   ScriptingGate::Mock::config(limit => 4);
#   my $k = ScriptingGate::Mock::key_stats('abc::v1');   # {requests => ...}
#   my %st = ScriptingGate::Mock::burst(n => 100, paths => ['/api/v2/scripts/a']);
#
# The helpers run in the test's own perl process (e.g. from "--- init").

use strict;
use warnings;

use Errno qw(EINPROGRESS EWOULDBLOCK EAGAIN EINTR);
use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IO::Poll qw(POLLIN POLLOUT POLLERR POLLHUP);
use IO::Handle;
use JSON::PP;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_ERROR IPPROTO_TCP TCP_NODELAY
              pack_sockaddr_in inet_aton);
use Time::HiRes qw(time);

my $pid;            # the mock's pid
my $owner;          # the pid of the process that started it
my $out;            # the read end of its stdout
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

sub binary {
    return $ENV{SCRIPTING_MOCK_BINARY} if $ENV{SCRIPTING_MOCK_BINARY};
    my $top = File::Spec->rel2abs(dirname(__FILE__) . '/../../..');
    return "$top/build/scripting-mock";
}

sub port { return $ENV{TEST_NGINX_MOCK_PORT} }

# start(limit => N, rate => N, delay => MS, quiet => 1): (re)starts the mock
# on 127.0.0.1, port $TEST_NGINX_MOCK_PORT or else one the kernel picks
# (the mock binds port 0 and says which port it got); returns the port.
sub start {
    my (%opt) = @_;
    stop();

    my $bin = binary();
    die "ScriptingGate::Mock: no mock binary at $bin (make it first)\n"
        unless -x $bin;

    my $port = $ENV{TEST_NGINX_MOCK_PORT} || 0;
    my @args = ('--listen', "127.0.0.1:$port");
    push @args, '--quiet' if !defined $opt{quiet} || $opt{quiet};
    for my $o (qw(limit rate delay)) {
        push @args, "--$o", int($opt{$o}) if defined $opt{$o};
    }

    $pid = open($out, '-|', $bin, @args)
        or die "ScriptingGate::Mock: cannot start $bin: $!\n";
    $owner = $$;

    # its first line, once it listens; EOF if it failed
    my $line;
    {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 10;
        $line = eval { scalar <$out> };
        alarm 0;
    }
    unless (defined $line && $line =~ /^listening on [\d.]+:(\d+)/) {
        stop();
        die "ScriptingGate::Mock: the mock did not start (@args)\n";
    }
    $ENV{TEST_NGINX_MOCK_PORT} = $1;
    # its stdout stays open, unread: it prints nothing more
    return $1;
}

sub stop {
    return unless $pid;
    # not from a forked child of the test: the mock is its parent's
    if (defined $owner && $owner == $$) {
        kill 'TERM', $pid;
        waitpid($pid, 0);
        close $out if $out;
    }
    ($pid, $out, $owner) = (undef, undef, undef);
}

END {
    local $?;
    stop();
}


# the control endpoints

sub esc {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub url {
    my ($path) = @_;
    die "ScriptingGate::Mock: no mock port (start() first)\n"
        unless $ENV{TEST_NGINX_MOCK_PORT};
    return "http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}$path";
}

sub call {
    my ($method, $path) = @_;
    my $res = $http->request($method, url($path));
    die "ScriptingGate::Mock: $method $path: $res->{status} $res->{content}\n"
        unless $res->{success};
    return decode_json($res->{content});
}

# clears all accounting, the plans and the token buckets
sub reset { return call('POST', '/__mock/reset') }

# plan('abc:3:', '429/ra=2', '503', '200/echo'): the next requests of the
# key take these actions in order; key '*': the next requests of any key
sub plan {
    my ($key, @actions) = @_;
    return call('POST', '/__mock/plan?key=' . esc($key)
                        . '&actions=' . esc(join ',', @actions));
}

# config(limit => N, rate => N, delay => MS), any subset
sub config {
    my (%kv) = @_;
    return call('POST', '/__mock/config?'
                        . join '&', map { "$_=" . esc($kv{$_}) } sort keys %kv);
}

# {keys => {KEY => {...}}, total => {...}}
sub stats { return call('GET', '/__mock/stats') }

# "key requests=N peak=N" for each key the mock saw since its last reset
# (what an earlier block left in flight is not this block's)
sub upstream_report {
    my $s = stats();
    my $out = '';
    for my $k (sort keys %{ $s->{keys} }) {
        my $v = $s->{keys}{$k};
        next unless $v->{requests};
        $out .= "$k requests=$v->{requests} peak=$v->{peak_in_flight}\n";
    }
    return $out;
}

# {requests, in_flight, peak_in_flight, status => {200 => N, ...},
#  last_body_len, distinct_bodies, arrivals_ms => [...]}; zeros if unknown
sub key_stats {
    my ($key) = @_;
    return call('GET', '/__mock/stats?key=' . esc($key));
}


# burst(port => P, n => N, paths => [...], method => 'GET', headers => {},
#       body => '...', host => '127.0.0.1', timeout => 30, over => S,
#       responses => \@out)
#
# N requests at once: all N connections are opened first, and only once all
# are established are the requests sent; then every answer is waited for,
# until the timeout.  With over => S (seconds), the requests are sent
# spread evenly over S instead of all at once: request i at i x S / N
# after the first, so that their order of arrival is known.  Request i goes to paths->[i % @paths] (a path, or a
# full http://host:port/path URL).  Returns status => count; a request that
# got no answer (refused, reset, timed out) counts as 599.  With responses,
# @out gets {status, head, body} per request, in order.
sub burst {
    my (%o) = @_;
    my $host = $o{host} || '127.0.0.1';
    my $port = $o{port} || $ENV{TEST_NGINX_SERVER_PORT}
               || $ENV{TEST_NGINX_PORT} || 1984;
    my @paths = $o{paths} ? @{ $o{paths} }
              : $o{path}  ? ($o{path}) : die "burst: no paths\n";
    my $n = $o{n} || scalar @paths;
    my $method = $o{method} || 'GET';
    my $timeout = $o{timeout} || 30;
    my $deadline = time + $timeout;

    my @c;
    for my $i (0 .. $n - 1) {
        my ($h, $p, $path) = ($host, $port, $paths[$i % @paths]);
        if ($path =~ m{^http://([^/:]+)(?::(\d+))?(/.*)?$}) {
            ($h, $p, $path) = ($1, $2 || 80, defined $3 ? $3 : '/');
        }
        my $req = "$method $path HTTP/1.1\r\nHost: $h:$p\r\n"
                . "Connection: close\r\n";
        my %hd = %{ $o{headers} || {} };
        $req .= "$_: $hd{$_}\r\n" for sort keys %hd;
        if (defined $o{body}) {
            $req .= "Content-Length: " . length($o{body}) . "\r\n";
        } elsif ($method eq 'POST' || $method eq 'PUT') {
            $req .= "Content-Length: 0\r\n";
        }
        $req .= "\r\n";
        $req .= $o{body} if defined $o{body};

        my $c = { i => $i, out => $req, in => '', state => 'connecting' };
        push @c, $c;
        my $s;
        unless (socket($s, PF_INET, SOCK_STREAM, IPPROTO_TCP)) {
            # out of descriptors, most likely
            $c->{state} = 'failed';
            next;
        }
        $c->{sock} = $s;
        $s->blocking(0);
        setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
        my $addr = pack_sockaddr_in($p, inet_aton($h));
        unless (connect($s, $addr)) {
            unless ($! == EINPROGRESS || $! == EWOULDBLOCK || $! == EAGAIN) {
                $c->{state} = 'failed';
            }
        } else {
            $c->{state} = 'connected';
        }
    }

    # 1: every connection established (or failed) before anything is sent
    _loop(\@c, $deadline, sub {
        my ($c) = @_;
        return if $c->{state} ne 'connecting';
        my $err = getsockopt($c->{sock}, SOL_SOCKET, SO_ERROR);
        $err = $err ? unpack('i', $err) : 1;
        $c->{state} = $err ? 'failed' : 'connected';
    }, sub { $_[0]{state} eq 'connecting' ? POLLOUT : 0 });

    $_->{state} = 'sending' for grep { $_->{state} eq 'connected' } @c;
    my $t0 = time;
    my $over = $o{over} || 0;
    $_->{due} = $t0 + $over * $_->{i} / $n for @c;

    # 2: the requests, then the answers
    _loop(\@c, $deadline, sub {
        my ($c, $ev) = @_;
        if ($c->{state} eq 'sending' && ($ev & (POLLOUT | POLLERR | POLLHUP))) {
            my $w = syswrite($c->{sock}, $c->{out});
            if (defined $w) {
                substr($c->{out}, 0, $w, '');
                $c->{state} = 'reading' if $c->{out} eq '';
            } elsif (!($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR)) {
                $c->{state} = 'failed';
            }
            return;
        }
        if ($c->{state} eq 'reading' && ($ev & (POLLIN | POLLERR | POLLHUP))) {
            my $r = sysread($c->{sock}, $c->{in}, 65536, length $c->{in});
            if (!defined $r) {
                return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                # a reset: fine only after a whole answer of known length
                $c->{state} = _complete($c, 0) ? 'done' : 'failed';
            } elsif ($r == 0) {
                $c->{state} = _complete($c, 1) ? 'done' : 'failed';
            } elsif (_complete($c, 0)) {
                $c->{state} = 'done';
            }
        }
    }, sub {
        my $c = $_[0];
        return $c->{state} eq 'sending' ? ($c->{due} <= time ? POLLOUT : 0)
             : $c->{state} eq 'reading' ? POLLIN : 0;
    }, sub {
        # the next request not yet due
        my ($next) = grep { $_->{state} eq 'sending' && $_->{due} > time } @c;
        return $next ? $next->{due} : undef;
    });

    my %st;
    for my $c (@c) {
        close $c->{sock} if $c->{sock};
        my $status = 599;
        my ($head, $body) = ('', '');
        if ($c->{state} eq 'done'
            && $c->{in} =~ m{^HTTP/\d\.\d (\d{3})})
        {
            $status = $1;
            ($head, $body) = split /\r\n\r\n/, $c->{in}, 2;
            $body = '' unless defined $body;
        }
        $st{$status}++;
        $o{responses}[$c->{i}] = { status => $status, head => $head,
                                   body => $body }
            if $o{responses};
    }
    return %st;
}

# polls the connections whose want() is not 0 until none is left (and
# next(), if given, says no connection will want anything later) or the
# deadline passes; on() is called for each event
sub _loop {
    my ($c, $deadline, $on, $want, $next) = @_;
    while (1) {
        my $poll = IO::Poll->new;
        my %by;
        for my $x (@$c) {
            my $m = $want->($x) or next;
            $poll->mask($x->{sock} => $m);
            $by{ fileno $x->{sock} } = $x;
        }
        my $due = $next ? $next->() : undef;
        last unless %by || defined $due;
        my $left = $deadline - time;
        if ($left <= 0) {
            # what is still going on has failed
            $_->{state} = 'failed'
                for grep { $_->{state} =~ /^(?:connecting|sending|reading)$/ } @$c;
            last;
        }
        my $wait = $left > 1 ? 1 : $left;
        $wait = $due - time if defined $due && $due - time < $wait;
        $wait = 0 if $wait < 0;
        unless (%by) {
            select(undef, undef, undef, $wait);
            next;
        }
        my $r = $poll->poll($wait);
        next if $r <= 0;
        for my $h ($poll->handles) {
            my $ev = $poll->events($h) or next;
            $on->($by{ fileno $h }, $ev);
        }
    }
}

# a whole answer: its head, and all its body when its length is known;
# otherwise (chunked, or until the close) only at the close
sub _complete {
    my ($c, $eof) = @_;
    my $i = index($c->{in}, "\r\n\r\n");
    return 0 if $i < 0;
    my $head = substr($c->{in}, 0, $i);
    return length($c->{in}) - $i - 4 >= $1
        if $head =~ /^Content-Length:[ \t]*(\d+)[ \t]*\r?$/mi;
    return 1 if $head =~ m{^HTTP/\d\.\d (?:1\d\d|204|304)};
    return $eof ? 1 : 0;
}

1;
