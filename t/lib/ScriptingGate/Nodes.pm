package ScriptingGate::Nodes;

# Extra nginx instances ("nodes") beside the one Test::Nginx runs: several
# masters of their own, each with its own prefix under the server root,
# its own error log and pid file (prefix(): the server root's path with
# "-nodes/NAME" added), in the foreground (daemon off) as
# children of the test, loading the module as the runner does
# ($TEST_NGINX_LOAD_MODULES).  For what needs more than one nginx: a gate
# shared through Redis, PID namespaces (t/062-hardening.t).
#
#   use ScriptingGate::Nodes;
#   my @n = ScriptingGate::Nodes::start_nodes(3, http => <<'_EOC_');
#       scripting_gate_zone $script_id zone=s:1m;
#       server {
#           listen 127.0.0.1:$TEST_NGINX_NODE_PORT;
#           ...
#       }
#   _EOC_
#   # $n[0]{port}, {name} (a, b, c...), {dir}, {pid} (its master)
#   ScriptingGate::Nodes::url($n[1], '/api/v2/scripts/x');
#   ScriptingGate::Nodes::kill9($n[2]);    # master and workers, SIGKILL
#   ScriptingGate::Nodes::error_log($n[0]);  # its lines
#   ScriptingGate::Nodes::stop(@n);        # QUIT, waits; KILL after 10 s
#
# In the http{} text, $TEST_NGINX_NODE_PORT and $TEST_NGINX_NODE_NAME are
# the node's, then any other $TEST_NGINX_FOO is taken from %ENV, as
# Test::Nginx does in its sections.  Ports are server_port() + 1, + 2...
# unless given.  Nodes still running are stopped in END, by the process
# that started them.

use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use IO::Socket::INET;

use ScriptingGate::Util qw(servroot server_port wait_until children);

my %running;        # pid => node, for END
my $owner = $$;

# a node's prefix: beside the server root, not in it (anything left in the
# server root stops the next block, under the real Test::Nginx too), so
# that its logs outlive the block; emptied when the node starts again
sub prefix {
    my ($name) = @_;
    return servroot() . "-nodes/$name";
}

sub nginx_binary { return $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx' }

# the nginx.conf of a node: the main context, then http { $http }
sub write_conf {
    my ($node, $http) = @_;
    my $modules = join '', map { "load_module $_;\n" }
                           split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '';
    for ($http) {
        s/\$TEST_NGINX_NODE_PORT\b/$node->{port}/g;
        s/\$TEST_NGINX_NODE_NAME\b/$node->{name}/g;
        s/\$(TEST_NGINX_[_A-Z0-9]+)/
            defined $ENV{$1} ? $ENV{$1}
                             : die "ScriptingGate::Nodes: \$$1 is not set\n"/ge;
    }
    my $dir = $node->{dir};
    open my $fh, '>', "$dir/conf/nginx.conf" or die "$dir/conf: $!";
    print $fh <<"_EOC_";
${modules}worker_processes $node->{workers};
daemon off;
master_process on;
pid logs/nginx.pid;
error_log logs/error.log $node->{log_level};
events { worker_connections $node->{worker_connections}; }
http {
$http
}
_EOC_
    close $fh;
}

# start_node(name => 'a', port => P, http => TEXT, workers => 2,
#            worker_connections => 1024, log_level => 'info',
#            exec_prefix => ['unshare', '--pid', '--fork', ...],
#            tag => 'burst-', wait => 1)
# starts one node (its prefix, prefix("$tag$name"), emptied first: a tag
# keeps a block's logs apart from another's); with wait (the default),
# returns once it accepts connections on its port and its master has its
# workers.  Dies, with its error log, if it does not start.
sub start_node {
    my (%o) = @_;
    my $node = {
        name => $o{name} // 'a',
        port => $o{port} // server_port() + 1,
        workers => $o{workers} // 2,
        worker_connections => $o{worker_connections} // 1024,
        log_level => $o{log_level} // 'info',
        prefixed => $o{exec_prefix} ? 1 : 0,
    };
    my $dir = $node->{dir} = prefix(($o{tag} // '') . $node->{name});
    remove_tree($dir);
    make_path("$dir/logs", "$dir/conf");
    write_conf($node, $o{http} // '');

    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>', "$dir/logs/stdout";
        open STDERR, '>&', \*STDOUT;
        { exec @{ $o{exec_prefix} || [] }, nginx_binary(),
               '-p', "$dir/", '-c', "$dir/conf/nginx.conf" };
        POSIX::_exit(127);
    }
    $node->{pid} = $pid;
    $running{$pid} = $node;

    return $node if defined $o{wait} && !$o{wait};
    await($node);
    return $node;
}

# start_nodes(N, http => TEXT, ports => [...], %other): nodes a, b, c...
# on server_port() + 1, + 2... (or the ports given); all started at once,
# then each waited for
sub start_nodes {
    my ($n, %o) = @_;
    my @ports = $o{ports} ? @{ delete $o{ports} }
                          : map { server_port() + $_ } 1 .. $n;
    my @nodes = map {
        start_node(%o, name => chr(ord('a') + $_), port => $ports[$_],
                   wait => 0)
    } 0 .. $n - 1;
    for my $node (@nodes) {
        eval { await($node); 1 } or do { my $e = $@; stop(@nodes); die $e };
    }
    return @nodes;
}

# waits until the node accepts connections on its port and its master has
# its workers (the listening sockets are the master's: the workers come
# next); dies with its error log if it does not, or if it exited
sub await {
    my ($node) = @_;
    my $ok = wait_until(10, sub {
        return 0 unless alive($node);
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$node->{port}",
                                      Timeout => 1) or return 0;
        close $s;
        return workers($node) >= $node->{workers};
    });
    return 1 if $ok;
    my $log = join '', error_log($node), slurp("$node->{dir}/logs/stdout");
    stop($node);
    die "ScriptingGate::Nodes: node $node->{name} did not start on "
        . "port $node->{port}:\n$log";
}

sub url {
    my ($node, $path) = @_;
    return "http://127.0.0.1:$node->{port}" . ($path // '/');
}

sub alive {
    my ($node) = @_;
    return 0 unless $node->{pid};
    return 0 if waitpid($node->{pid}, WNOHANG) == $node->{pid};
    return kill 0, $node->{pid};
}

# the nginx master: the node's process, or its child under an exec_prefix
sub master {
    my ($node) = @_;
    return $node->{pid} unless $node->{prefixed};
    my ($m) = children($node->{pid});
    return $m;
}

sub workers {
    my ($node) = @_;
    my $m = master($node) or return ();
    return children($m);
}

sub _gone {
    my ($pid) = @_;
    # ours (the master, or an orphaned worker under a subreaper): reaped
    my $w = waitpid($pid, WNOHANG);
    return 1 if $w == $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    my $st = <$fh> // '';
    return $st =~ /^\d+ \(.*\) Z /s ? 1 : 0;
}

# stop(@nodes): QUIT (graceful), as "nginx -s quit" does; a node still
# there after $timeout (10 s) is killed.  Returns, per node, "stopped" or
# "killed after QUIT timed out"
sub stop {
    my (@nodes) = @_;
    my %how;
    my @left = grep { $_->{pid} } @nodes;
    kill 'QUIT', $_ for grep { $_ } map { master($_) } @left;
    for my $node (@left) {
        my $pid = $node->{pid};
        my $ok = wait_until(10, sub { _gone($pid) });
        unless ($ok) {
            kill9($node);
            $how{ $node->{name} } = 'killed after QUIT timed out';
            next;
        }
        waitpid($pid, 0);
        delete $running{$pid};
        $node->{pid} = undef;
        $how{ $node->{name} } = 'stopped';
    }
    return wantarray ? map { $how{ $_->{name} } // 'not running' } @nodes
                     : $how{ $nodes[0]{name} };
}

# kill9($node): SIGKILL to the master and its workers at once, as when the
# machine or the container goes; waits until they are gone
sub kill9 {
    my ($node) = @_;
    my $pid = $node->{pid} or return;
    my $master = master($node);
    my @pids = grep { $_ } ($master, $master ? children($master) : ());
    push @pids, $pid if !$master || $master != $pid;
    kill 'KILL', @pids;
    wait_until(10, sub { !grep { !_gone($_) } @pids });
    waitpid($pid, 0);
    delete $running{$pid};
    $node->{pid} = undef;
    return scalar @pids;
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return ();
    return <$fh>;
}

# the node's error-log lines (those matching $re, when given)
sub error_log {
    my ($node, $re) = @_;
    my @l = slurp("$node->{dir}/logs/error.log");
    return defined $re ? grep { $_ =~ $re } @l : @l;
}

# a log file of the node's, by name, e.g. access_log('gate.log')
sub log_lines {
    my ($node, $name) = @_;
    return slurp("$node->{dir}/logs/$name");
}

END {
    local $?;
    stop(values %running) if $$ == $owner && %running;
}

1;
