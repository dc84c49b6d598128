#!/bin/bash
# Mutation testing: a test of the tests.  Plants the bugs of the catalogue
# (tools/mutants.txt) in the module one at a time, in a scratch copy of the
# repository, rebuilds it and runs the test files each one names.  A mutant
# is killed when they fail (or hang: MUTANTS_TIMEOUT), and survives when
# they pass: then a test is missing, or the mutation changes nothing that
# can be seen (an equivalent mutation, to be explained in its note).
#
#   bash tools/mutants.sh                  the whole catalogue; the result
#                                          is recorded in t/MUTANTS.md
#   MUTANTS=id1,id2 bash tools/mutants.sh  those mutants only, not recorded
#   MUTANTS_CHECK=1 bash tools/mutants.sh  only checks that every mutation
#                                          applies and compiles (a minute)
#   MUTANTS_RECORD=1 bash tools/mutants.sh writes t/MUTANTS.md again from
#                                          the last full run, with the notes
#                                          of the catalogue as they are now
#
#   MUTANTS_PORT      the port of nginx in the tests (3990, away from the
#                     default 1984 of other runs of the suite on the host)
#   MUTANTS_TIMEOUT   seconds a mutant's tests may take; beyond, it hangs
#                     and counts as killed (300)
#   MUTANTS_DIR       the scratch directory (build/mutants): the copy in
#                     src/, the logs of each build and test run in logs/
#   NGINX_SRC         nginx's source, as for make build
#
# A worker that crashes during a mutant's tests (the runner warns of the
# "[alert] ... exited on signal N" line; 9, SIGKILL, is the tests' own)
# kills it too, even when no block looked: make test's sanitizer pass would
# fail on it.
#
# Before the first mutant, every mutation of the run must be found exactly
# once in the sources, and the test files are run on the unmutated copy,
# up to three times each until they pass: a block that fails there is
# unreliable (a timing test on a busy host, say), it is named, and its
# failing does not kill a mutant; otherwise every mutant would look killed.
# A baseline that hangs, or fails without naming a block, stops the run.
# Mutants run one after another: each run starts nginx with two workers.
#
# Exits 1 when a mutation does not apply, does not compile, or the baseline
# cannot be used; 0 otherwise, whatever the kill rate.

set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD

catalogue=tools/mutants.txt
nginx_src=${NGINX_SRC:-/usr/share/nginx/src}
port=${MUTANTS_PORT:-3990}
limit=${MUTANTS_TIMEOUT:-300}
work=${MUTANTS_DIR:-$top/build/mutants}
src=$work/src
logs=$work/logs
record=t/MUTANTS.md


# the catalogue's reader: list, check, apply, field (see the usage below)

read -r -d '' catalogue_pl <<'PERL' || true
use strict;
use warnings;

my ($cmd, $file, @args) = @ARGV;
my (@m, %by_id, @bad);

open my $fh, '<', $file or die "$file: $!\n";
my ($cur, $block, $field);
while (my $line = <$fh>) {
    chomp $line;
    if ($line =~ /^=== (\S+)\s*$/) {
        $cur = { id => $1, at => $. };
        push @m, $cur;
        ($block, $field) = (undef, undef);
    } elsif ($line =~ /^--- (from|to)\s*$/) {
        push(@bad, "$file:$.: \"--- $1\" outside an entry"), next unless $cur;
        push @bad, "$file:$.: $cur->{id}: a second \"--- $1\""
            if $cur->{$1};
        $block = $1;
        $cur->{$block} = [];
    } elsif ($line =~ /^#(?: |$)/) {
        # a comment of the catalogue, not C ("#define", "#if" have no space)
        ($block, $field) = (undef, undef);
    } elsif (defined $block) {
        push @{ $cur->{$block} }, $line;
    } elsif ($line =~ /^\s*$/) {
        $field = undef;
    } elsif ($cur && $line =~ /^(file|tests|bug|note):\s*(.*?)\s*$/) {
        push @bad, "$file:$.: $cur->{id}: a second \"$1\"" if defined $cur->{$1};
        ($field, $cur->{$1}) = ($1, $2);
    } elsif ($cur && $field && $line =~ /^\s+(\S.*?)\s*$/) {
        $cur->{$field} .= " $1";
    } else {
        push @bad, "$file:$.: not understood: $line";
    }
}
close $fh;

for my $m (@m) {
    for my $b (qw(from to)) {
        next unless $m->{$b};
        pop @{ $m->{$b} } while @{ $m->{$b} } && $m->{$b}[-1] =~ /^\s*$/;
        $m->{$b} = join "\n", @{ $m->{$b} };
    }
    my $w = "$file:$m->{at}: $m->{id}";
    push @bad, "$w: the id is not [a-z0-9-]+" unless $m->{id} =~ /^[a-z0-9-]+$/;
    push @bad, "$w: the id is used twice" if $by_id{ $m->{id} }++;
    for my $f (qw(file tests bug)) {
        push @bad, "$w: no \"$f:\"" unless defined $m->{$f} && length $m->{$f};
    }
    push @bad, "$w: no \"--- from\" text" unless defined $m->{from} && length $m->{from};
    push @bad, "$w: no \"--- to\"" unless defined $m->{to};
    push @bad, "$w: \"--- to\" is the same as \"--- from\""
        if defined $m->{from} && defined $m->{to} && $m->{from} eq $m->{to};
    push @bad, "$w: a tab in its fields" if grep { /\t/ }
        map { $m->{$_} // '' } qw(file tests bug note);
}
%by_id = map { $_->{id} => $_ } @m;

if (@bad) {
    print STDERR "$_\n" for @bad;
    exit 1;
}

sub count {
    my ($text, $s) = @_;
    my ($n, $pos) = (0, 0);
    while (($pos = index($text, $s, $pos)) >= 0) {
        $n++;
        $pos += length $s;
    }
    return $n;
}

sub slurp {
    my ($path) = @_;
    open my $in, '<', $path or return undef;
    local $/;
    my $text = <$in>;
    close $in;
    return $text;
}

if ($cmd eq 'list') {
    # id, file, tests, bug; one mutant a line, tab separated
    print join("\t", @$_{qw(id file tests bug)}), "\n" for @m;

} elsif ($cmd eq 'check') {
    # check DIR ID...: each mutation applies exactly once to DIR's files,
    # and its test files are there
    my $dir = shift @args;
    for my $id (@args) {
        my $m = $by_id{$id} or do { push @bad, "$id: no such mutant in $file"; next };
        my $text = slurp("$dir/$m->{file}");
        if (!defined $text) {
            push @bad, "$id: no file $m->{file}";
            next;
        }
        my $n = count($text, $m->{from});
        push @bad, "$id: its \"from\" text is found $n times in $m->{file},"
                   . " not once: write it against the code as it is now"
            if $n != 1;
        for my $t (split ' ', $m->{tests}) {
            push @bad, "$id: no test file $t" unless -f "$dir/$t";
        }
    }
    if (@bad) {
        print STDERR "$_\n" for @bad;
        exit 1;
    }

} elsif ($cmd eq 'apply') {
    # apply DIR ID: plants the bug in DIR's copy of the file
    my ($dir, $id) = @args;
    my $m = $by_id{$id} or die "$id: no such mutant in $file\n";
    my $path = "$dir/$m->{file}";
    my $text = slurp($path) // die "$path: $!\n";
    my $n = count($text, $m->{from});
    die "$id: its \"from\" text is found $n times in $m->{file}, not once\n"
        if $n != 1;
    my $at = index($text, $m->{from});
    substr($text, $at, length $m->{from}) = $m->{to};
    open my $out, '>', $path or die "$path: $!\n";
    print $out $text;
    close $out or die "$path: $!\n";

} elsif ($cmd eq 'field') {
    # field ID NAME: one field of a mutant (empty when it has none)
    my ($id, $name) = @args;
    my $m = $by_id{$id} or die "$id: no such mutant in $file\n";
    print $m->{$name} // '';

} else {
    die "usage: list | check DIR ID... | apply DIR ID | field ID NAME\n";
}
PERL

# cat_pl COMMAND ARGS...: the reader's command on the catalogue
cat_pl() {
    local cmd=$1
    shift
    perl -e "$catalogue_pl" -- "$cmd" "$top/$catalogue" "$@"
}


# A test run has a session of its own (setsid), so that all it started can
# be found and stopped when it is cut short: timeout(1) alone signals its
# process group, and tini puts prove in another one.  nginx daemonizes into
# yet another session: it is stopped by the pid in its pid file.

run_sid=""

stop_run() {
    local pids pid kids i

    if [ -n "$run_sid" ]; then
        for sig in TERM KILL; do
            pids=$(ps -eo pid=,sid= | awk -v s="$run_sid" '$2 == s { print $1 }')
            [ -n "$pids" ] || break
            kill -"$sig" $pids 2>/dev/null || true
            sleep 1
        done
        wait "$run_sid" 2>/dev/null || true
        run_sid=""
    fi

    pid=$(cat "$src/t/servroot/logs/nginx.pid" 2>/dev/null) || return 0
    [ -n "$pid" ] && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = nginx ] \
        || return 0

    kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true

    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done

    kill -KILL "$pid" $kids 2>/dev/null || true
}

trap 'echo "mutants: interrupted" >&2; stop_run; exit 130' INT TERM

# runs test files against the scratch copy's module, the log to $2; the
# status of the run, 124 when it was cut at MUTANTS_TIMEOUT
run_tests() {
    local files=$1 log=$2 rc=0 end

    (
        cd "$src"
        exec setsid env -u TEST_NGINX_SERVER_PORT -u ASAN -u VALGRIND \
            TEST_NGINX_PORT="$port" \
            TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}" \
            TEST_NGINX_LOAD_MODULES="$src/build/nginx/ngx_http_scripting_gate_module.so" \
            SCRIPTING_MOCK_BINARY="$src/build/scripting-mock" \
            TEST_FILES="$files" \
            sh t/run.sh
    ) > "$log" 2>&1 < /dev/null &
    run_sid=$!

    end=$((SECONDS + limit))

    while kill -0 "$run_sid" 2>/dev/null; do
        if [ $SECONDS -ge $end ]; then
            echo "mutants: cut after $limit s" >> "$log"
            stop_run
            return 124
        fi
        sleep 0.5
    done

    wait "$run_sid" || rc=$?
    stop_run

    return $rc
}

# the blocks that failed in a test log, one a line: "010 TEST 1"
failed_blocks() {
    { grep -o "Failed test 't/[^ ]*\.t TEST [0-9]*" "$1" 2>/dev/null || true; } \
        | sed -e "s|^Failed test 't/||" -e 's|-[^ ]*\.t||' | awk '!seen[$0]++'
}

# the blocks in which a worker crashed: "020 TEST 11 (signal 11)"
crashes() {
    { grep -E "^WARNING: t/[^ ]+\.t TEST [0-9]+: .* exited on signal [0-9]+" \
           "$1" 2>/dev/null || true; } \
        | sed -E 's|^WARNING: t/([0-9]+)-[^ ]*\.t (TEST [0-9]+): .* exited on signal ([0-9]+).*|\1 \2 (signal \3)|' \
        | grep -v "(signal 9)$" | awk '!seen[$0]++' || true
}

# lines as one: "010 TEST 1, 010 TEST 4"
list() {
    paste -sd, - | sed 's/,/, /g'
}

build_module() {
    make -s -f "$src/build/nginx/Makefile" -C "$nginx_src" modules
}


# ---- the record --------------------------------------------------------------

# t/MUTANTS.md, from the results of the run (or of the last run saved in
# build/mutants/last-run, with MUTANTS_RECORD=1) and the catalogue's notes

write_record() {
    {
        echo "# Mutation testing: the last run"
        echo
        echo "- command: \`make mutants\` (\`bash tools/mutants.sh\`, the catalogue"
        echo "  \`$catalogue\`)"
        echo "- commit: $commit"
        echo "- date: $date; the run took $took min"
        echo
        echo "Each mutant is one small bug planted in a scratch copy of the module;"
        echo "it is killed when the test files it names fail (or hang), and"
        echo "survives when they pass.  The results of one run: the tests that"
        echo "depend on timing may decide differently on another."
        echo
        echo "**Kill rate: $killed/$tested ($rate %)**"
        echo
        if [ ${#unreliable[@]} -gt 0 ]; then
            echo "Blocks that failed on the unmutated code, in the baseline's runs"
            echo "(up to $baseline_tries a file), and so killed no mutant:"
            echo
            for b in "${!unreliable[@]}"; do
                echo "- $b: failed in ${unreliable[$b]} run(s)"
            done | sort
            echo
        fi
        echo "| mutant | bug | tests | result | s | killed by |"
        echo "|---|---|---|---|---|---|"
        for id in "${ids[@]}"; do
            tests=$(echo "${m_tests[$id]}" | sed -e 's|t/||g' -e 's|-[^ ]*\.t||g')
            by=${killed_by[$id]:-}
            if [ -n "${ignored_by[$id]:-}" ]; then
                by+="${by:+; }unreliable: ${ignored_by[$id]}"
            fi
            echo "| \`$id\` | ${m_bug[$id]} | $tests | ${result[$id]} | ${secs[$id]} | $by |"
        done
        echo
        echo "## Survivors"
        echo
        if [ $survived -eq 0 ]; then
            echo "None."
        fi
        for id in "${ids[@]}"; do
            [ "${result[$id]}" = SURVIVED ] || continue
            note=$(cat_pl field "$id" note)
            echo "- \`$id\` (${m_file[$id]#ngx_module/}): ${m_bug[$id]}."
            echo "  ${note:-No note: explain it in $catalogue, or write the test that kills it.}"
        done
    }  > "$top/$record.new"
    mv "$top/$record.new" "$top/$record"

    echo "recorded in $record"
}


if [ -n "${MUTANTS_RECORD:-}" ]; then
    if [ ! -f "$work/last-run" ]; then
        echo "mutants: no full run saved in $work/last-run" >&2
        exit 1
    fi

    . "$work/last-run"
    write_record
    exit 0
fi


# ---- the mutants of this run --------------------------------------------

cat_pl list > /dev/null || {
    echo "mutants: $catalogue is malformed (above)" >&2
    exit 1
}

mapfile -t entries < <(cat_pl list)

declare -A m_file=() m_tests=() m_bug=()
all=()
for e in "${entries[@]}"; do
    IFS=$'\t' read -r id file tests bug <<< "$e"
    all+=("$id")
    m_file[$id]=$file
    m_tests[$id]=$tests
    m_bug[$id]=$bug
done

if [ -n "${MUTANTS:-}" ]; then
    IFS=, read -r -a ids <<< "$MUTANTS"
    for id in "${ids[@]}"; do
        if [ -z "${m_file[$id]:-}" ]; then
            echo "mutants: no mutant \"$id\" in $catalogue" >&2
            exit 1
        fi
    done
    full=0
else
    ids=("${all[@]}")
    full=1
fi

commit=$(git rev-parse --short HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    commit="$commit with uncommitted changes"
fi

started=$SECONDS
date=$(date -u '+%Y-%m-%d %H:%M UTC')

echo "mutants: ${#ids[@]} of the ${#all[@]} of $catalogue, on $commit"


# ---- the scratch copy: the repository's files, built once ---------------

rm -rf "$src" "$logs" "$work/pristine"
mkdir -p "$src" "$logs" "$work/pristine"

git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read -T - -cf - \
    | tar -xf - -C "$src"

# every mutation must apply before anything is built
if ! cat_pl check "$src" "${ids[@]}"; then
    echo "mutants: FAILED: the catalogue no longer fits the code (above);" \
         "rewrite those mutations, do not drop them" >&2
    exit 1
fi

for id in "${ids[@]}"; do
    f=${m_file[$id]}
    mkdir -p "$work/pristine/$(dirname "$f")"
    cp "$src/$f" "$work/pristine/$f"
done

echo "building the scratch copy in $src"
if ! make -s -C "$src" NGINX_SRC="$nginx_src" build > "$logs/build.log" 2>&1
then
    cat "$logs/build.log"
    echo "mutants: FAILED: the unmutated copy does not build" >&2
    exit 1
fi


# ---- only applying and compiling: the catalogue still fits the code ----

if [ -n "${MUTANTS_CHECK:-}" ]; then
    errors=0
    last=""

    for id in "${ids[@]}"; do
        f=${m_file[$id]}
        [ -n "$last" ] && cp "$work/pristine/$last" "$src/$last"
        last=$f

        if cat_pl apply "$src" "$id" \
           && build_module > "$logs/$id.build.log" 2>&1
        then
            echo "compiles $id"
        else
            echo "ERROR    $id: does not compile, see $logs/$id.build.log"
            errors=$((errors + 1))
        fi
    done

    [ -n "$last" ] && cp "$work/pristine/$last" "$src/$last"

    if [ $errors -gt 0 ]; then
        echo "mutants: FAILED: $errors mutations do not compile" >&2
        exit 1
    fi

    echo "every mutation applies and compiles"
    exit 0
fi


# ---- the baseline: the test files must pass on the unmutated code -------

declare -A seen=()
files=()
for id in "${ids[@]}"; do
    for t in ${m_tests[$id]}; do
        if [ -z "${seen[$t]:-}" ]; then
            seen[$t]=1
            files+=("$t")
        fi
    done
done

# blocks that failed on the unmutated code: how many of its runs
declare -A unreliable=()
baseline_tries=3

for t in "${files[@]}"; do
    for try in $(seq $baseline_tries); do
        s=$SECONDS
        log=$logs/baseline-$(basename "$t" .t)-$try.log
        rc=0
        run_tests "$t" "$log" || rc=$?

        crashed=$(crashes "$log")

        while read -r b; do
            [ -n "$b" ] || continue
            unreliable["crash in $b"]=$(( ${unreliable["crash in $b"]:-0} + 1 ))
        done <<< "$crashed"

        if [ $rc -eq 0 ]; then
            echo "baseline: $t passes ($((SECONDS - s)) s)${crashed:+, but a worker crashed: $(list <<< "$crashed")}"
            break
        fi

        blocks=$(failed_blocks "$log")

        if [ $rc -eq 124 ] || [ -z "$blocks" ]; then
            echo "mutants: FAILED: $t fails on the unmutated code" \
                 "($([ $rc -eq 124 ] && echo "a hang" || echo "exit status $rc")," \
                 "no block named); see $log" >&2
            exit 1
        fi

        while read -r b; do
            unreliable[$b]=$(( ${unreliable[$b]:-0} + 1 ))
        done <<< "$blocks"

        echo "baseline: $t FAILED on the unmutated code ($(list <<< "$blocks")," \
             "run $try of $baseline_tries)"
    done
done

for b in "${!unreliable[@]}"; do
    echo "UNRELIABLE: $b failed in ${unreliable[$b]} of the baseline's runs:" \
         "it kills no mutant"
done


# ---- the mutants, one at a time ------------------------------------------

declare -A result=() secs=() killed_by=() ignored_by=()
killed=0
survived=0
errors=0
last=""

for id in "${ids[@]}"; do
    f=${m_file[$id]}
    s=$SECONDS

    # the file the last mutant changed is itself again
    if [ -n "$last" ]; then
        cp "$work/pristine/$last" "$src/$last"
    fi
    last=$f

    if ! cat_pl apply "$src" "$id"; then
        result[$id]=ERROR
        killed_by[$id]="does not apply"
        secs[$id]=0
        errors=$((errors + 1))
        echo "ERROR    $id: does not apply"
        continue
    fi

    if ! build_module > "$logs/$id.build.log" 2>&1; then
        result[$id]=ERROR
        killed_by[$id]="does not compile"
        secs[$id]=$((SECONDS - s))
        errors=$((errors + 1))
        echo "ERROR    $id: does not compile, see $logs/$id.build.log"
        continue
    fi

    rc=0
    run_tests "${m_tests[$id]}" "$logs/$id.log" || rc=$?
    secs[$id]=$((SECONDS - s))

    # the blocks that failed and the crashes, but for the unreliable ones
    blocks=$(failed_blocks "$logs/$id.log")
    killers=""
    ignored=""
    while read -r b; do
        [ -n "$b" ] || continue
        if [ -n "${unreliable[$b]:-}" ]; then
            ignored+="$b"$'\n'
        else
            killers+="$b"$'\n'
        fi
    done <<< "$blocks"

    while read -r b; do
        [ -n "$b" ] || continue
        if [ -n "${unreliable["crash in $b"]:-}" ]; then
            ignored+="a crash in $b"$'\n'
        else
            killers+="a worker crash in $b"$'\n'
        fi
    done <<< "$(crashes "$logs/$id.log")"

    if [ $rc -eq 124 ]; then
        killed_by[$id]="a hang: cut at $limit s"
    elif [ -n "$killers" ]; then
        killed_by[$id]=$(printf %s "$killers" | list)
    elif [ $rc -ne 0 ] && [ -z "$blocks" ]; then
        killed_by[$id]="exit status $rc"
    fi

    if [ -n "${killed_by[$id]:-}" ]; then
        result[$id]=KILLED
        killed=$((killed + 1))
        how=" by ${killed_by[$id]}"
    else
        result[$id]=SURVIVED
        survived=$((survived + 1))
        how=""
    fi

    if [ -n "$ignored" ]; then
        ignored_by[$id]=$(printf %s "$ignored" | list)
        how+=" (failed also: ${ignored_by[$id]}, unreliable)"
    fi

    printf '%-8s %s: %s (%s s)%s\n' "${result[$id]}" "$id" "${m_bug[$id]}" \
           "${secs[$id]}" "$how"
done

if [ -n "$last" ]; then
    cp "$work/pristine/$last" "$src/$last"
fi

tested=$((killed + survived))
rate=0
[ $tested -gt 0 ] && rate=$((100 * killed / tested))
took=$(( (SECONDS - started + 30) / 60 ))

echo
echo "kill rate: $killed/$tested ($rate %)"
[ $errors -gt 0 ] && echo "errors: $errors (mutants that do not apply or do not compile)"
for b in "${!unreliable[@]}"; do
    echo "unreliable on the unmutated code, killing nothing: $b"
done
echo "took $took min"

if [ $errors -gt 0 ]; then
    echo "mutants: FAILED: fix the entries in error in $catalogue" >&2
    exit 1
fi

[ $full -eq 1 ] || exit 0

declare -p ids m_file m_tests m_bug result secs killed_by ignored_by \
    unreliable baseline_tries killed survived tested rate took commit date \
    > "$work/last-run"

write_record
