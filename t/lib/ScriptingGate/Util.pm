package ScriptingGate::Util;

# Helpers for the .t files, usable under the real Test::Nginx and under the
# project's own runner alike: they only talk HTTP to the nginx under test
# and to the mock, and write files into the server root's html directory,
# which the default "location /" serves.

use strict;
use warnings;

use Cwd qw(getcwd);
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(sleep time);
use POSIX ();

use Exporter 'import';
our @EXPORT_OK = qw(server_port servroot html_put http_get status_json
                    wait_until background reap spawn collect
                    master_pid worker_pids children error_log_has);

sub server_port {
    return $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
}

sub servroot {
    my $root = $ENV{TEST_NGINX_SERVROOT} || getcwd() . '/t/servroot';
    return $root;
}

# writes a file that the block's request then fetches, e.g. GET /result.txt
sub html_put {
    my ($name, $text) = @_;
    my $dir = servroot() . '/html';
    open my $fh, '>', "$dir/$name" or die "cannot write $dir/$name: $!";
    print $fh $text;
    close $fh;
}

sub http_get {
    my ($path, %opt) = @_;
    my $http = HTTP::Tiny->new(timeout => $opt{timeout} || 10,
                               keep_alive => 0);
    my $url = $path =~ m{^http://} ? $path
                                   : 'http://127.0.0.1:' . server_port() . $path;
    my $method = $opt{method} || 'GET';
    my $res = $http->request($method, $url,
                             { headers => $opt{headers} || {},
                               defined $opt{body} ? (content => $opt{body})
                                                  : () });
    return $res;
}

# the gate's figures from a scripting_gate_stats location
sub status_json {
    my ($path) = @_;
    my $res = http_get($path || '/status');
    return undef unless $res->{success};
    return decode_json($res->{content});
}

# polls $cond every 10 ms until it is true or $timeout seconds pass
sub wait_until {
    my ($timeout, $cond) = @_;
    my $end = time + $timeout;
    while (time < $end) {
        return 1 if $cond->();
        sleep 0.01;
    }
    return $cond->() ? 1 : 0;
}

# runs each request in a child process; the results come back from reap()
sub background {
    my (@reqs) = @_;
    my @kids;
    for my $req (@reqs) {
        my ($path, %opt) = @$req;
        pipe(my $r, my $w) or die "pipe: $!";
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            close $r;
            my $t0 = time;
            my $res = http_get($path, %opt);
            printf $w "%s %.3f %s %.6f\n", $res->{status}, time - $t0,
                   $res->{status} == 599 ? 'x' : length($res->{content}),
                   time;
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
    return \@kids;
}

# waits for background() children; returns for each
# [status, seconds taken, body length, time of the answer]
sub reap {
    my ($kids) = @_;
    my @out;
    for my $k (@$kids) {
        my ($pid, $r) = @$k;
        my $line = <$r>;
        close $r;
        waitpid($pid, 0);
        $line = "599 0 x 0\n" unless defined $line;
        chomp $line;
        push @out, [split / /, $line];
    }
    return @out;
}

# runs $code in a child process (e.g. a Mock::burst while the test does
# something else); collect() waits for it and returns what $code returned
# (a string or a reference to plain data, which comes back as JSON), or
# dies with what $code died with
sub spawn {
    my ($code) = @_;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $r;
        my $out = eval { $code->() };
        print $w encode_json({ out => $out, error => $@ || undef });
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    return [$pid, $r];
}

sub collect {
    my ($kid) = @_;
    my ($pid, $r) = @$kid;
    my $text = do { local $/; <$r> };
    close $r;
    waitpid($pid, 0);
    my $res = eval { decode_json($text // '') }
        or die "collect: the child $pid said nothing\n";
    die $res->{error} if defined $res->{error};
    return $res->{out};
}

# for what nginx logs outside the block's own requests (during --- init)
sub error_log_has {
    my ($re) = @_;
    open my $fh, '<', servroot() . '/logs/error.log' or return 0;
    while (my $l = <$fh>) {
        return 1 if $l =~ $re;
    }
    return 0;
}

sub master_pid {
    my $file = servroot() . '/logs/nginx.pid';
    open my $fh, '<', $file or return undef;
    my $pid = <$fh>;
    close $fh;
    chomp $pid if defined $pid;
    return $pid;
}

sub worker_pids {
    my $master = master_pid() or return ();
    return children($master);
}

# the pids of a process's children
sub children {
    my ($parent) = @_;
    my @pids;
    for my $dir (glob '/proc/[0-9]*') {
        open my $fh, '<', "$dir/stat" or next;
        my $stat = <$fh>;
        close $fh;
        next unless defined $stat && $stat =~ /^(\d+) \(.*?\) \S+ (\d+)/;
        push @pids, $1 if $2 == $parent;
    }
    return @pids;
}

1;
