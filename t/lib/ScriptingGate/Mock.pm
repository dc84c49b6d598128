package ScriptingGate::Mock;

# Starts the mock Scripting API (build/scripting-mock) for a test file and
# talks to its control endpoints.  The port is $TEST_NGINX_MOCK_PORT when
# set, otherwise one the mock picks; either way $ENV{TEST_NGINX_MOCK_PORT}
# holds it afterwards, for the nginx configurations of the blocks.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use JSON::PP;

my $pid;
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

sub binary {
    return $ENV{SCRIPTING_MOCK_BINARY} if $ENV{SCRIPTING_MOCK_BINARY};
    my $top = File::Spec->rel2abs(dirname(__FILE__) . '/../../..');
    return "$top/build/scripting-mock";
}

sub start {
    my (%opt) = @_;
    stop();
    my $port = $ENV{TEST_NGINX_MOCK_PORT} || 0;
    my @args = ('--listen', "127.0.0.1:$port", '--quiet');
    push @args, '--limit', $opt{limit} if $opt{limit};
    push @args, '--rate', $opt{rate} if $opt{rate};
    push @args, '--delay', $opt{delay} if $opt{delay};

    $pid = open(my $out, '-|', binary(), @args)
        or die "cannot start " . binary() . ": $!";
    my $line = <$out>;
    die "the mock did not start\n" unless defined $line
                                          && $line =~ /listening on [\d.]+:(\d+)/;
    $ENV{TEST_NGINX_MOCK_PORT} = $1;
    # its stdout stays open, unread: it prints nothing more
    $ScriptingGate::Mock::out = $out;
    return $1;
}

sub stop {
    return unless $pid;
    kill 'TERM', $pid;
    waitpid($pid, 0);
    $pid = undef;
}

END { stop() }

sub esc { my ($s) = @_; $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge; return $s }

sub url { return "http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}$_[0]" }

sub post {
    my ($path) = @_;
    my $res = $http->post(url($path));
    die "mock $path: $res->{status} $res->{content}\n" unless $res->{success};
    return decode_json($res->{content});
}

sub reset { return post('/__mock/reset') }

sub plan {
    my ($key, @actions) = @_;
    return post('/__mock/plan?key=' . esc($key)
                . '&actions=' . esc(join ',', @actions));
}

sub config {
    my (%kv) = @_;
    return post('/__mock/config?' . join '&', map { "$_=$kv{$_}" } sort keys %kv);
}

sub stats {
    my $res = $http->get(url('/__mock/stats'));
    die "mock stats: $res->{status}\n" unless $res->{success};
    return decode_json($res->{content});
}

sub key_stats {
    my ($key) = @_;
    my $res = $http->get(url('/__mock/stats?key=' . esc($key)));
    die "mock stats: $res->{status}\n" unless $res->{success};
    return decode_json($res->{content});
}

1;
