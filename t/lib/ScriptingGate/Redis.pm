package ScriptingGate::Redis;

# A real redis-server (Debian's /usr/bin/redis-server) for the tests of
# scripting_gate_redis: started as a child of the test, in the foreground,
# with nothing saved to disk, on 127.0.0.1 only; stopped, killed and
# restarted on the same port; and a small RESP client so that a test can
# read what the gate keeps there.
#
#   use ScriptingGate::Redis;
#   ScriptingGate::Redis::start();       # $ENV{TEST_NGINX_REDIS_PORT}
#   ScriptingGate::Redis::cmd('ZCARD', 'sg:{s:k}:s');    # 2
#   ScriptingGate::Redis::cmd('FLUSHALL');
#   ScriptingGate::Redis::stop();        # TERM, then waits for it
#   ScriptingGate::Redis::kill9();       # SIGKILL, then waits for it
#   ScriptingGate::Redis::restart();     # stop and start on the same port
#   ScriptingGate::Redis::freeze();      # SIGSTOP: no answers; thaw(): SIGCONT
#   ScriptingGate::Redis::start(password => 's3cret');  # requirepass; cmd()
#                                        # then sends AUTH first
#
# The port is $TEST_NGINX_REDIS_PORT when set, else a free one the kernel
# gives.  Its log goes to build/test-artifacts/redis/redis-PORT.log.  An
# END block stops it, in the process that started it only (as Mock.pm
# does for the mock), so a forked child that exits does not.

use strict;
use warnings;

use Errno qw(EINTR);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Spec;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my $pid;            # the server's pid
my $owner;          # the pid of the process that started it
my $conn;           # cmd()'s connection
my $conn_pid;       # the process that opened it (a fork has its own)
my $password;       # requirepass, if started with one

sub binary { return $ENV{SCRIPTING_REDIS_BINARY} || '/usr/bin/redis-server' }

sub port { return $ENV{TEST_NGINX_REDIS_PORT} }

sub pid { return $pid }

sub dir {
    my $top = File::Spec->rel2abs(dirname(__FILE__) . '/../../..');
    return "$top/build/test-artifacts/redis";
}

sub logfile { return dir() . '/redis-' . port() . '.log' }

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1, ReuseAddr => 1)
        or die "ScriptingGate::Redis: no free port: $!\n";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# start(password => P, args => [...]): (re)starts the server; returns its
# port once it answers PING
sub start {
    my (%opt) = @_;
    stop() if $pid;
    $password = $opt{password};

    my $bin = binary();
    die "ScriptingGate::Redis: no redis-server at $bin\n" unless -x $bin;

    $ENV{TEST_NGINX_REDIS_PORT} ||= free_port();
    my $port = $ENV{TEST_NGINX_REDIS_PORT};
    my $dir = dir();
    make_path($dir);

    my @args = ('--port', $port, '--bind', '127.0.0.1', '--save', '',
                '--appendonly', 'no', '--daemonize', 'no', '--dir', $dir,
                '--loglevel', 'notice');
    push @args, '--requirepass', $password if defined $password;
    push @args, @{ $opt{args} } if $opt{args};

    $pid = fork();
    die "ScriptingGate::Redis: fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        # its log, appended: a restart adds to what was there
        open STDOUT, '>>', logfile() or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        { exec $bin, @args };
        POSIX::_exit(127);
    }
    $owner = $$;

    my $end = time + 10;
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $pid = undef;
            die "ScriptingGate::Redis: redis-server exited at start: "
                . tail() . "\n";
        }
        my $pong = eval { cmd('PING') };
        return $port if defined $pong && $pong eq 'PONG';
        sleep 0.01;
    }
    stop();
    die "ScriptingGate::Redis: redis-server did not answer PING on $port: "
        . tail() . "\n";
}

sub _reap {
    my ($sig) = @_;
    return unless $pid;
    disconnect();
    # not from a forked child of the test: the server is its parent's
    if (defined $owner && $owner == $$) {
        kill 'CONT', $pid;
        kill $sig, $pid;
        waitpid($pid, 0);
    }
    ($pid, $owner) = (undef, undef);
}

# TERM, and waits for it to exit
sub stop { _reap('TERM') }

# SIGKILL: what a crash or an OOM kill does
sub kill9 { _reap('KILL') }

# SIGSTOP and SIGCONT: a Redis that answers nothing, its connections open
# (a stalled host, a long fork), and then answers again
sub freeze { kill 'STOP', $pid if $pid }
sub thaw { kill 'CONT', $pid if $pid }

# stops it and starts it again on the same port, empty (nothing is saved),
# with the same password
sub restart {
    my (%opt) = @_;
    my $pw = $password;
    stop();
    return start(defined $pw ? (password => $pw) : (), %opt);
}

sub running { return $pid && kill(0, $pid) && waitpid($pid, WNOHANG) == 0 }

END {
    local $?;
    stop();
}

sub tail {
    open my $fh, '<', logfile() or return '(no log)';
    my @l = <$fh>;
    close $fh;
    return join '', @l[($#l > 9 ? $#l - 9 : 0) .. $#l];
}


# the RESP client

sub disconnect {
    close $conn if $conn;
    ($conn, $conn_pid) = (undef, undef);
}

sub _connect {
    return $conn if $conn && $conn_pid == $$;
    $conn = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => port(), Proto => 'tcp',
                                  Timeout => 2)
        or die "ScriptingGate::Redis: connect to " . port() . ": $!\n";
    $conn->autoflush(1);
    $conn_pid = $$;
    if (defined $password) {
        my $c = $conn;
        my $ok = cmd('AUTH', $password);
        die "ScriptingGate::Redis: AUTH: $ok\n" unless $ok eq 'OK';
        return $c;
    }
    return $conn;
}

# cmd('ZCARD', 'sg:{s:k}:s'): the answer as Perl data: a status or a bulk
# string as a string, an integer as a number, a nil as undef, an array as
# an array reference; a Redis error dies with its message.  The connection
# is kept; a failure closes it and dies.
sub cmd {
    my (@args) = @_;
    my $c = _connect();
    my $req = '*' . @args . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @args;
    my $ok = eval {
        local $SIG{PIPE} = 'IGNORE';
        print $c $req or die "write: $!\n";
        1;
    };
    unless ($ok) {
        disconnect();
        die "ScriptingGate::Redis: @args: $@";
    }
    my $buf = '';
    my $r = eval { _reply($c, \$buf, time + 5) };
    if (my $e = $@) {
        # a Redis error was read whole: the connection stays usable
        die $e if $e =~ /^ScriptingGate::Redis: ERR: / && $buf eq '';
        disconnect();
        die "ScriptingGate::Redis: @args: $e";
    }
    return $r;
}

sub _line {
    my ($c, $buf, $end) = @_;
    while ((my $i = index($$buf, "\r\n")) < 0) {
        _fill($c, $buf, $end);
    }
    my $i = index($$buf, "\r\n");
    my $l = substr($$buf, 0, $i);
    substr($$buf, 0, $i + 2, '');
    return $l;
}

sub _fill {
    my ($c, $buf, $end) = @_;
    my $left = $end - time;
    die "timeout\n" if $left <= 0;
    my @ready = IO::Select->new($c)->can_read($left);
    die "timeout\n" unless @ready;
    my $n = sysread($c, $$buf, 65536, length $$buf);
    return if !defined $n && $! == EINTR;
    die "read: $!\n" unless defined $n;
    die "connection closed\n" if $n == 0;
}

sub _reply {
    my ($c, $buf, $end) = @_;
    my $l = _line($c, $buf, $end);
    my ($t, $v) = (substr($l, 0, 1), substr($l, 1));
    return $v if $t eq '+';
    return $v + 0 if $t eq ':';
    die "ScriptingGate::Redis: ERR: $v\n" if $t eq '-';
    if ($t eq '$') {
        return undef if $v < 0;
        _fill($c, $buf, $end) while length($$buf) < $v + 2;
        my $s = substr($$buf, 0, $v);
        substr($$buf, 0, $v + 2, '');
        return $s;
    }
    if ($t eq '*') {
        return undef if $v < 0;
        return [map { _reply($c, $buf, $end) } 1 .. $v];
    }
    die "unexpected reply \"$l\"\n";
}

# the keys that match a pattern, sorted (KEYS: the test's Redis is small);
# in scalar context, how many
sub keys_like {
    my ($pattern) = @_;
    my @k = sort @{ cmd('KEYS', $pattern) || [] };
    return wantarray ? @k : scalar @k;
}

1;
