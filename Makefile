# nginx-scripting-gate: build, test and demo entry points.
#
#   make deps    install the Debian packages the project needs
#   make build   the module (build/nginx/*.so) and the mock API
#   make test    deps + build + the Test::Nginx suite
#   make demo    deps + build + the gateway in front of the mock, with a burst
#   make asan, make valgrind   the whole suite under the sanitizers, valgrind
#   make fuzz    the libFuzzer targets of fuzz/, FUZZ_SECONDS each (not in test)
#   make static  the module built into nginx (--add-module) and its tests run
#                against that nginx (not in test: it builds all of nginx)
#   make peer NGINX_TESTS=/path/to/nginx-tests   nginx's own test suite,
#                plain and with the module injected (tools/peer.sh)

SHELL       := /bin/bash
NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx
BUILD       := build
MODULE      := $(BUILD)/nginx/ngx_http_scripting_gate_module.so
MOCK        := $(BUILD)/scripting-mock
ASAN_MODULE := $(BUILD)/asan/ngx_http_scripting_gate_module.so
SOURCES     := config $(wildcard ngx_module/*.c ngx_module/*.h)
DEB_PACKAGES := nginx nginx-dev libjansson-dev libcurl4-openssl-dev \
                libevent-dev libtest-base-perl tini wrk curl openssl chromium gcc make

CFLAGS_MOCK := -O2 -g -Wall -Wextra

.PHONY: all deps build test asan valgrind demo demo-stop bench reliability \
        fuzz static peer clean

all: build

deps:
	@sh tools/deps.sh $(DEB_PACKAGES)

build: $(MODULE) $(MOCK)

$(BUILD)/nginx/Makefile: config
	@mkdir -p $(BUILD)/nginx
	cd $(NGINX_SRC) && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt='-g -O2 -fPIC -fstack-protector-strong -Wformat -Werror=format-security -D_FORTIFY_SOURCE=2 -Wall -Werror' \
	    --add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(BUILD)/nginx \
	    > $(CURDIR)/$(BUILD)/nginx/configure.log 2>&1 \
	    || { tail -30 $(CURDIR)/$(BUILD)/nginx/configure.log; exit 1; }

$(MODULE): $(BUILD)/nginx/Makefile $(SOURCES)
	$(MAKE) -s -f $(CURDIR)/$(BUILD)/nginx/Makefile -C $(NGINX_SRC) modules

# the module built with AddressSanitizer and UndefinedBehaviorSanitizer,
# loaded into Debian's nginx with libasan preloaded (t/run.sh, ASAN=1)
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer

$(ASAN_MODULE): config $(SOURCES)
	@mkdir -p $(BUILD)/asan
	cd $(NGINX_SRC) && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt='-g -O1 -fPIC $(ASAN_FLAGS) -Wall -Werror' \
	    --with-ld-opt='$(ASAN_FLAGS)' \
	    --add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(BUILD)/asan \
	    > $(CURDIR)/$(BUILD)/asan/configure.log 2>&1 \
	    || { tail -30 $(CURDIR)/$(BUILD)/asan/configure.log; exit 1; }
	$(MAKE) -s -f $(CURDIR)/$(BUILD)/asan/Makefile -C $(NGINX_SRC) modules

$(MOCK): tools/mock/scripting_mock.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_MOCK) -o $@ $< -levent -ljansson

# the whole suite, then its gate, retry, async, stats and hostile-input parts
# again under the sanitizers, then the gate, retry and stats parts against
# nginx with the module built in (tools/static-check.sh)
test: deps build $(ASAN_MODULE)
	@sh t/run.sh
	@ASAN=1 TEST_FILES="t/010-gate.t t/020-retry.t t/030-async.t \
	    t/031-async-connections.t t/040-stats.t t/060-hostile.t" sh t/run.sh
	@STATIC_OPTIONAL=1 TEST_FILES="t/010-gate.t t/020-retry.t \
	    t/040-stats.t" sh tools/static-check.sh

# the whole suite under the sanitizers, and under valgrind's memcheck
# (nginx and the module as make build makes them); neither is part of
# make test, which runs the sanitizers on a subset
asan: deps build $(ASAN_MODULE)
	@ASAN=1 sh t/run.sh

valgrind: deps build
	@sh tools/deps.sh valgrind
	@VALGRIND=1 sh t/run.sh

demo: deps build
	@sh tools/demo.sh

demo-stop:
	@sh tools/demo.sh stop

clean:
	rm -rf $(BUILD) t/servroot

bench: deps build
	@sh tools/deps.sh valgrind haproxy wrk
	bash bench/run.sh > bench/RESULTS.md.new && mv bench/RESULTS.md.new bench/RESULTS.md
	@cat bench/RESULTS.md

reliability: deps build
	@sh tools/deps.sh wrk
	bash bench/reliability.sh > bench/RELIABILITY.md.new && mv bench/RELIABILITY.md.new bench/RELIABILITY.md
	@cat bench/RELIABILITY.md

# every parser that sees outside input, one target after another
# (fuzz/README.md); builds nginx's own objects into build/fuzz/
FUZZ_SECONDS ?= 600

static: deps build
	@sh tools/static-check.sh

fuzz:
	@sh fuzz/build.sh
	@sh fuzz/run.sh $(FUZZ_SECONDS)

# nginx's own test suite (a checkout of nginx-tests, or a bare git dir of
# it; not part of this repository) run plain and with the module in every
# location holding proxy_pass; PEER_FILES="proxy* ssi*" picks files and
# PEER_TESTS_REV a commit of nginx-tests; writes build/peer/report.md (the
# record is bench/PEER.md) and fails when a test passes plain and not with
# the module
ifneq ($(filter peer,$(MAKECMDGOALS)),)
ifeq ($(NGINX_TESTS),)
$(error make peer needs NGINX_TESTS=/path/to/nginx-tests, a checkout or a bare git dir of https://github.com/nginx/nginx-tests)
endif
endif

# Perl modules and a daemon that nginx-tests' files need, or they skip
PEER_PACKAGES := libio-socket-ssl-perl libprotocol-websocket-perl \
                 libfcgi-perl libscgi-perl libcache-memcached-perl \
                 libcache-memcached-fast-perl memcached

peer: deps build
	@sh tools/deps.sh $(PEER_PACKAGES)
	@PEER_COMMAND="make peer NGINX_TESTS=$(NGINX_TESTS)" \
	    bash tools/peer.sh "$(NGINX_TESTS)"
