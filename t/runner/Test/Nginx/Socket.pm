package Test::Nginx::Socket;

=pod

A compact stand-in for openresty's Test::Nginx::Socket (the test-nginx
distribution on CPAN), used by `make test` only when the real one is not
installed (prove -I t/runner).  The .t files are written for the real one;
this runner gives what they use the real one's meaning, checked against
its source (lib/Test/Nginx/Socket.pm and Util.pm, v0.33).  Like the real
one it is a Test::Base subclass: Test::Base reads the blocks, applies its
default filters (CRLF to LF; leading blank lines and trailing whitespace
trimmed to one final newline; the one-line "--- name: value" form has
none) and the per-section ones (chomp, eval, ...), and exports Test::More's
and its own functions.

Functions: plan (use Test::Nginx::Socket 'no_plan' / tests => N),
run_tests, repeat_each, workers, worker_connections (default 64),
master_on, master_off, master_process_enabled, log_level (default debug),
no_shuffle (blocks are shuffled by default), no_root_location,
no_long_string, check_accum_error_log, config_preamble, env_to_nginx,
add_block_preprocessor, add_cleanup_handler, add_test_cleanup_handler,
html_dir, server_root, server_port, server_port_for_client, server_addr,
server_name, timeout (default 3 s), bail_out, is_str, blocks and the rest
of Test::Base.  Variables (not exported to the test file, as in the real
one): $Test::Nginx::Util::ServerPort, ::ServRoot, ::ConfFile, ::PidFile,
::RepeatEach, ::NginxVersion.

Sections: config, http_config, main_config, post_main_config, server_name,
log_level, user_files, post_setup_server_root, init, request (one request,
or with eval an array of them; an array of packets is sent as such),
raw_request, more_headers, error_code, error_code_like, response_headers
("! Name": absent; "Name:" with no value: empty or absent),
response_headers_like (regex anchored at both ends; checked only when
there is no response_headers, as in the real one), response_body (eval: a
string or a qr//), response_body_like, response_body_unlike, error_log,
no_error_log (lines of substrings, or with eval a string, a qr// or an
array of them; each matched against single lines of the log), timeout
(5, 1.5, 50ms), abort, wait, must_die (with an optional exit code),
ONLY, SKIP, LAST (Test::Base).  Not supported: pipelined_requests,
http2/3, stap, tcp/udp servers, skip_nginx and friends, grep_error_log,
response_body_filters, HUP/valgrind/check-leak modes.

Environment: TEST_NGINX_BINARY (default nginx on PATH, then
/usr/sbin/nginx), TEST_NGINX_LOAD_MODULES (.so paths, space separated:
load_module lines), TEST_NGINX_SERVER_PORT / TEST_NGINX_PORT (1984),
TEST_NGINX_CLIENT_PORT, TEST_NGINX_SERVROOT (t/servroot),
TEST_NGINX_TIMEOUT, TEST_NGINX_SLEEP, TEST_NGINX_NO_SHUFFLE,
TEST_NGINX_LOG_LEVEL, TEST_NGINX_MASTER_PROCESS,
TEST_NGINX_FAST_SHUTDOWN (TERM instead of QUIT), TEST_NGINX_NO_CLEAN,
TEST_NGINX_CHECK_ACCUM_ERR_LOG, TEST_NGINX_FORCE_RESTART_ON_TEST.
$TEST_NGINX_FOO is replaced from %ENV in config, http_config, main_config,
post_main_config, user_files and response_body (not in request, as in the
real one); the runner sets TEST_NGINX_SERVER_PORT and
TEST_NGINX_SERVER_ROOT.  $ServerPort in response_body(_like) and
response_headers is the port.

--- init is Perl code eval'ed once per block, after nginx has started
(on a fresh server root) and before the first of the repeat_each()
requests; like the real one it runs in package Test::Nginx::Util under
strict, so the test file's own subs are called as main::foo() there.
The error_log/no_error_log window of the first repetition is the whole
log of this nginx (start-up and what --- init made it log included), of
each later one what came after the previous check; 45 ms (3 x
TEST_NGINX_SLEEP) are given to late lines before each check.  See
Test/Nginx/Util.pm for the rest of the order of things in a block.

=cut

use strict;
use warnings;

use Test::Base -base;
use Test::Nginx::Util;
use IO::Select ();
use IO::Socket::INET ();
use Errno ();
use Time::HiRes qw(sleep);

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test repeat_each config_preamble
    worker_connections master_process_enabled no_long_string workers
    master_on master_off log_level no_shuffle no_root_location server_name
    server_addr server_root html_dir server_port server_port_for_client
    timeout check_accum_error_log add_block_preprocessor bail_out
    add_test_cleanup_handler add_cleanup_handler
);

$RunTestHelper = \&run_test_helper;
$CheckErrorLog = \&check_error_log;

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    return like($got, $expected, $desc) if ref $expected eq 'Regexp';
    return is($got, $expected, $desc);
}

# ---- requests -------------------------------------------------------------

sub parse_more_headers {
    my ($in) = @_;
    my ($out, $chunked) = ('', 0);
    for my $h (split /\n+/, $in) {
        next if $h =~ /^\s*#/;
        my ($k, $v) = split /:\s*/, $h, 2;
        $v //= '';
        $chunked = 1 if lc($k) eq 'transfer-encoding' && $v eq 'chunked';
        $out .= "$k: $v\r\n";
    }
    return ($out, $chunked);
}

# "METHOD [URI [HTTP/x.y]]\nbody" and the more_headers: the bytes to send
sub build_request {
    my ($name, $req, $more) = @_;
    my ($first, $content) = $req =~ /\A([^\n]*\n?)(.*)\z/s;
    my ($meth, $url, $ver) =
        $first =~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$first\".");
    $url //= '/';
    $ver //= 'HTTP/1.1';
    my ($hdr, $chunked) = parse_more_headers($more);
    my $len = '';
    if (!$chunked && $content ne '' && $hdr !~ /(?:^|\n)Content-Length:/) {
        $content =~ s/^\s+|\s+$//gs;
        $len = 'Content-Length: ' . length($content) . "\r\n";
    }
    my $h = '';
    $h .= "Host: $ServerName\r\n" if $hdr !~ /(?:^|\n)Host:/msi;
    $h .= "Connection: close\r\n" if $hdr !~ /(?:^|\n)Connection/msi;
    return "$meth $url $ver\r\n$h$hdr$len\r\n$content";
}

# a list of requests, each a list of [bytes, delay before sending them]
sub get_req_from_block {
    my ($block) = @_;
    my $name = $block->name;

    if (defined(my $raw = $block->raw_request)) {
        return [[map { [ref $_ ? $_->{value} : $_,
                        ref $_ ? $_->{delay_before} : undef] }
                 ref $raw eq 'ARRAY' ? @$raw : ($raw)]];
    }
    bail_out("$name - --- pipelined_requests is not supported by this "
             . "runner") if defined $block->pipelined_requests;

    my $request = $block->request;
    bail_out("$name - request empty") unless defined $request;
    my $more = $block->more_headers // '';
    if (!ref $request) {
        1 while $request =~ s/^\s*#[^\n]+\s+|^\s+//s;
    }
    my @reqs = ref $request eq 'ARRAY' ? @$request : ($request);
    bail_out("$name - invalid ---request : MUST be string or array of "
             . "requests") if ref $request && ref $request ne 'ARRAY';

    my @out;
    for my $i (0 .. $#reqs) {
        my $hdrs = ref $more eq 'ARRAY' ? $more->[$i] : $more;
        bail_out("--- more_headers lacks data for the ${i}th request")
            unless defined $hdrs;
        my $one = $reqs[$i];
        if (!ref $one) {
            push @out, [[build_request($name, $one, $hdrs), undef]];
            next;
        }
        # packets: the added headers go into the first one
        my @p = map { ref $_ eq 'HASH' ? [$_->{value}, $_->{delay_before}]
                                       : [$_, undef] } @$one;
        my $full = build_request($name, join('', map { $_->[0] } @p), $hdrs);
        my $tail = join '', map { $_->[0] } @p[1 .. $#p];
        if (length $tail && substr($full, -length $tail) eq $tail) {
            $p[0][0] = substr($full, 0, length($full) - length $tail);
        } else {
            @p = ([$full, $p[0][1]]);
        }
        push @out, \@p;
    }
    return \@out;
}

# sends the packets, reads to EOF; $timeout is the longest wait for one
# I/O event, as in the real one
sub send_request {
    my ($packets, $timeout, $block) = @_;
    my $name = $block->name;
    my $sock;
    for my $try (1 .. 50) {
        $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                      PeerPort => $ServerPortForClient,
                                      Proto => 'tcp', Timeout => $timeout);
        last if $sock;
        my $wait = (sleep_time() + sleep_time() * $try) * $try / 2;
        $wait = 1 if $wait > 1;
        sleep $wait;
    }
    if (!$sock) {
        Test::More::fail("$name - Can't connect to $ServerAddr:"
                         . "$ServerPortForClient: $! (aborted)\n");
        return '';
    }
    binmode $sock;
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my @queue = @$packets;
    my ($buf, $off) = (undef, 0);
    my $resp = '';
    my $sel = IO::Select->new($sock);
    my $writing = 1;
    while (1) {
        if ($writing && !defined $buf) {
            if (!@queue) {
                $writing = 0;
            } else {
                my $p = shift @queue;
                sleep $p->[1] if $p->[1];
                ($buf, $off) = ($p->[0], 0);
            }
        }
        my ($r, $w) = IO::Select->select($sel, $writing ? $sel : undef,
                                         undef, $timeout);
        if (!$r && !$w) {
            next if $!{EINTR};
            close $sock;
            Test::More::fail("ERROR: client socket timed out - $name\n")
                unless defined $block->abort;
            return $resp;
        }
        if ($w && @$w) {
            my $n = syswrite($sock, $buf, length($buf) - $off, $off);
            if (defined $n) {
                $off += $n;
                undef $buf if $off >= length $buf;
            } elsif (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR}) {
                $writing = 0;    # nginx answered and closed early
            }
        }
        if ($r && @$r) {
            my $n = sysread($sock, $resp, 65536, length $resp);
            if (defined $n) {
                last if $n == 0;
            } elsif (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR}) {
                last;
            }
        }
    }
    close $sock;
    return $resp;
}

# ---- responses ------------------------------------------------------------

# { code, headers => [[name, value], ...], content }, the raw header block
sub parse_response {
    my ($name, $raw, $head_req) = @_;
    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my ($status_line, $rest) = split /\r?\n/, $raw, 2;
    $rest //= '';
    my %res = (headers => [], content => '');
    my (undef, $code) = split ' ', $status_line // '', 3;
    $res{code} = defined $code && $code =~ /^\d+$/ ? $code : undef;
    while ($rest =~ s/^([^\s:]+)[ \t]*: ?(.*)\n?//) {
        my ($k, $v) = ($1, $2);
        $v =~ s/\r\z//;
        push @{ $res{headers} }, [$k, $v];
    }
    $rest =~ s/^\r?\n//;
    $res{content} = $rest;
    my $res = \%res;
    my $code_ = $res{code} // 0;
    return ($res, $raw_headers) if $code_ == 304 || $code_ == 101;

    my $te = res_header($res, 'Transfer-Encoding');
    my $len = res_header($res, 'Content-Length');
    if (defined $te && $te eq 'chunked') {
        my ($in, $out) = ($rest, '');
        while (1) {
            if ($in =~ /\G[ \t]*([A-Fa-f0-9]+)[^\r\n]*\r\n/gc) {
                my $size = hex $1;
                if ($size == 0) {
                    last;
                }
                if (length($in) - pos($in) < $size + 2) {
                    Test::More::fail("$name - invalid chunked data received "
                        . "(not enought octets for the data section)");
                    return ($res, $raw_headers);
                }
                $out .= substr($in, pos($in), $size);
                pos($in) += $size;
                if ($in !~ /\G\r\n/gc) {
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(expected CRLF).");
                    return ($res, $raw_headers);
                }
            } else {
                Test::More::fail("$name - no last chunk found - "
                                 . substr($in, pos($in) // 0));
                return ($res, $raw_headers);
            }
        }
        $res{content} = $out;
    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $rest < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($rest) . "\n" unless $head_req;
        } else {
            $res{content} = substr $rest, 0, $len;
        }
    }
    return ($res, $raw_headers);
}

# all values of a header, joined by ", " (as HTTP::Headers does)
sub res_header {
    my ($res, $key) = @_;
    return undef unless $res;
    (my $k = lc $key) =~ tr/_/-/;
    my @v = map { $_->[1] }
            grep { (my $n = lc $_->[0]) =~ tr/_/-/; $n eq $k }
            @{ $res->{headers} };
    return @v ? join(', ', @v) : undef;
}

sub get_indexed_value {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return ref $value eq 'ARRAY' ? $value->[0] : $value;
}

sub check_error_code {
    my ($block, $res, $idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->{code}) || '';
    if (defined $block->error_code_like) {
        my $v = get_indexed_value($name, scalar $block->error_code_like,
                                  $idx, $need_array);
        like($code, qr/$v/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        is($code, get_indexed_value($name, scalar $block->error_code,
                                    $idx, $need_array),
           "$name - status code ok");
    } else {
        is($code, 200, "$name - status code ok");
    }
}

# "Name: value" lines; "! Name" (or a line without a colon): absent
sub parse_headers {
    my ($s) = @_;
    my (@order, %h);
    for my $l (split /\n/, $s) {
        $l =~ s/^\s+|\s+$//g;
        my $neg = $l =~ s/^!\s*//;
        my ($k, $v) = $neg ? ($l, undef) : split /\s*:\s*/, $l, 2;
        push @order, $k unless exists $h{$k};
        $h{$k} = $v;
    }
    return map { [$_, $h{$_}] } @order;
}

sub check_response_headers {
    my ($block, $res, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->response_headers) {
        for my $kv (parse_headers(get_indexed_value($name,
                        scalar $block->response_headers, $idx, $need_array)))
        {
            my ($k, $v) = @$kv;
            if (!defined $v) {
                unlike($raw_headers, qr/^\s*\Q$k\E\s*:/ms,
                       "$name - header $k not present in the raw headers");
                next;
            }
            $v =~ s/\$ServerPort\b/$ServerPort/g;
            $v =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            is(res_header($res, $k) // '', $v, "$name - header $k ok");
        }
    } elsif (defined $block->response_headers_like) {
        for my $kv (parse_headers(get_indexed_value($name,
                        scalar $block->response_headers_like, $idx,
                        $need_array)))
        {
            my ($k, $v) = @$kv;
            $v //= '';
            like(res_header($res, $k) // '', qr/^$v$/,
                 "$name - header $k like ok");
        }
    }
}

sub check_response_body {
    my ($block, $res, $idx, $rep, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->{content} : undef;
    if (defined $block->response_body) {
        my $expected = get_indexed_value($name, scalar $block->response_body,
                                         $idx, $need_array);
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected = expand_env_in_text($expected, $name);
        }
        my $desc = "$name - response_body - response is expected "
                   . "(repeated req $rep, req $idx)";
        if (ref $expected) {
            like($content, $expected,
                 "$name - response_body - like (repeated req $rep, "
                 . "req $idx)");
        } else {
            is($content, $expected, $desc);
        }
    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $pat = get_indexed_value($name, scalar($type eq 'like'
                                    ? $block->response_body_like
                                    : $block->response_body_unlike),
                                    $idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = $content // '';
        $summary =~ s/^\s+|\s+$//g;
        $summary =~ s/\n/ /g;
        $summary =~ s/\s{2,}/ /g;
        my $desc = "$name - response_body_$type - response is expected "
                   . "($summary)";
        $type eq 'like' ? like($content, qr/$pat/s, $desc)
                        : unlike($content, qr/$pat/s, $desc);
    }
}

sub fmt_str {
    my ($s) = @_;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub log_patterns {
    my ($pats) = @_;
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats] if ref $pats eq 'ARRAY';
    chomp $pats;
    return [split /\n+/, $pats];
}

# one check per pattern; each pattern is matched against single lines
sub check_error_log {
    my ($block, $res, $dry_run, $rep, $need_array) = @_;
    my $name = $block->name;
    my $el = $block->error_log;
    my $nel = $block->no_error_log;
    my $lines;
    my %seen_level;
    for my $p (grep { defined } $el, $nel) {
        for my $lvl (qw(alert crit emerg)) {
            $seen_level{$lvl} = 1
                if grep { defined && "$_" =~ /\Q[$lvl\E/ }
                   ref $p eq 'ARRAY' ? @$p : ($p);
        }
    }
    my $match = sub {
        my ($line, $pat) = @_;
        return ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/;
    };

    if (defined $el) {
        my $pats = log_patterns($el);
        $lines ||= error_log_data() || [];
        for my $line (@$lines) {
            for my $pat (@$pats) {
                next unless defined $pat && $match->($line, $pat);
                pass("$name - pattern \"$pat\" matches a line in error.log "
                     . "(req $rep)");
                undef $pat;
            }
        }
        for my $pat (grep { defined } @$pats) {
            fail("$name - pattern \"$pat\" should match a line in error.log "
                 . "(req $rep)");
        }
    }

    if (defined $nel) {
        my $pats = log_patterns($nel);
        $lines ||= error_log_data() || [];
        my %found;
        for my $i (0 .. $#$lines) {
            for my $pat (grep { defined } @$pats) {
                next unless $match->($lines->[$i], $pat);
                $found{$pat} = 1;
                my $last = $i + 9 < $#$lines ? $i + 9 : $#$lines;
                fail("$name - pattern \"" . fmt_str($pat) . "\" should not "
                     . "match any line in error.log but matches line \""
                     . fmt_str($lines->[$i]) . "\" (req $rep)\n"
                     . join '', @$lines[$i + 1 .. $last]);
            }
        }
        for my $pat (grep { defined && !$found{$_} } @$pats) {
            pass("$name - pattern \"" . fmt_str($pat) . "\" does not match "
                 . "a line in error.log (req $rep)");
        }
    }

    $lines ||= error_log_data(1) || [];
    for my $line (@$lines) {
        for my $lvl (qw(alert crit emerg)) {
            warn "WARNING: $name - " . fmt_str($line) . "\n"
                if !$seen_level{$lvl} && $line =~ /\[$lvl\]/;
        }
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            fail("$name - $l\n");
        }
    }
}

sub run_test_helper {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;
    my $timeout = parse_time($block->timeout) // timeout();
    my $need_array = @$reqs > 1;

    for my $idx (0 .. $#$reqs) {
        my $packets = $reqs->[$idx];
        my $head_req = $packets->[0][0] =~ /^\s*HEAD\s+/ ? 1 : 0;
        my $raw = send_request($packets, $timeout, $block);
        if (!defined $block->ignore_response) {
            my ($res, $raw_headers) = parse_response($name, $raw, $head_req);
            check_error_code($block, $res, $idx, $need_array);
            check_response_headers($block, $res, $raw_headers, $idx,
                                   $need_array);
            check_response_body($block, $res, $idx, $rep, $need_array);
        }
        if ($idx < $#$reqs) {
            sleep $block->wait if $block->wait;
            check_error_log($block, undef, 0, $rep, $need_array);
        }
    }
    sleep $block->wait if $block->wait;
    check_error_log($block, undef, 0, $rep, $need_array);
}

1;
