package PeerInject;

# Loaded into each nginx-tests test by tools/peer.sh (PERL5OPT=-MPeerInject).
# With PEER_INJECT set to the directives to add, it wraps
# Test::Nginx::write_file_expand so that every "location" block holding a
# proxy_pass (directly, or in its "if" and "limit_except" blocks, where the
# module's directives are not allowed) gets them as its first lines.
# Without PEER_INJECT it changes nothing: the plain run loads it too, so
# that the two runs differ by the injection alone.
#
# The snapshot's files are not touched; the configuration is rewritten as
# the test writes it.  PEER_INJECT_LOG, when set, names a file where each
# rewritten configuration is appended (to check what was injected).

use strict;
use warnings;

our $DIRECTIVES = $ENV{PEER_INJECT};

if (defined $DIRECTIVES && $DIRECTIVES ne '' && defined $ENV{PEER_TESTS_LIB}) {
    unshift @INC, $ENV{PEER_TESTS_LIB};

    if (eval { require Test::Nginx; 1 }) {
        no warnings 'redefine';

        my $orig = \&Test::Nginx::write_file_expand;

        *Test::Nginx::write_file_expand = sub ($$) {
            my ($self, $name, $content) = @_;
            my ($new, $n) = inject($content, $DIRECTIVES);

            if ($n && $ENV{PEER_INJECT_LOG}
                && open(my $fh, '>>', $ENV{PEER_INJECT_LOG}))
            {
                print $fh "### $0 $name: $n location(s)\n$new\n";
                close $fh;
            }

            return $orig->($self, $name, $new);
        };

    } else {
        warn "PeerInject: cannot load Test::Nginx: $@";
    }
}


# Returns the configuration text with $text inserted after the "{" of
# every location block that holds a proxy_pass, and how many there were.
# The lexer follows ngx_conf_read_token(): "#" starts a comment at the
# start of a token, quotes and backslashes escape, an unquoted token ends
# at white space, ";" or "{" (not at "}", and "${" is part of it).

sub inject {
    my ($conf, $text) = @_;
    my (@stack, @at, @stmt);
    my $len = length $conf;
    my $i = 0;

    while ($i < $len) {
        my $c = substr($conf, $i, 1);

        if ($c =~ /\s/) {
            $i++;

        } elsif ($c eq '#') {
            my $e = index($conf, "\n", $i);
            $i = $e < 0 ? $len : $e + 1;

        } elsif ($c eq ';') {
            if (@stmt && $stmt[0] eq 'proxy_pass') {
                for my $b (reverse @stack) {
                    next if $b->{name} eq 'if' || $b->{name} eq 'limit_except';
                    $b->{proxy} = 1 if $b->{name} eq 'location';
                    last;
                }
            }
            @stmt = ();
            $i++;

        } elsif ($c eq '{') {
            push @stack, { name => (@stmt ? $stmt[0] : ''), pos => $i + 1,
                           proxy => 0 };
            @stmt = ();
            $i++;

        } elsif ($c eq '}') {
            my $b = pop @stack;
            push @at, $b->{pos} if $b && $b->{name} eq 'location'
                                   && $b->{proxy};
            @stmt = ();
            $i++;

        } else {
            my $tok = '';

            if ($c eq '"' || $c eq "'") {
                $i++;
                while ($i < $len) {
                    my $d = substr($conf, $i, 1);
                    if ($d eq '\\') { $tok .= substr($conf, $i, 2); $i += 2; next; }
                    $i++;
                    last if $d eq $c;
                    $tok .= $d;
                }

            } else {
                while ($i < $len) {
                    my $d = substr($conf, $i, 1);
                    if ($d eq '\\') { $tok .= substr($conf, $i, 2); $i += 2; next; }
                    if ($d eq '$' && substr($conf, $i + 1, 1) eq '{') {
                        $tok .= '${';
                        $i += 2;
                        next;
                    }
                    last if $d =~ /[\s;{]/;
                    $tok .= $d;
                    $i++;
                }
            }

            push @stmt, $tok;
        }
    }

    for my $p (sort { $b <=> $a } @at) {
        substr($conf, $p, 0) = "\n        $text\n";
    }

    return ($conf, scalar @at);
}

1;
