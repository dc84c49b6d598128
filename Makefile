# nginx-scripting-gate: build, test and demo entry points.
#
#   make deps    install the Debian packages the project needs
#   make build   the module (build/nginx/*.so) and the mock API
#   make deb     the Debian package libnginx-mod-http-scripting-gate
#                (build/deb/*.deb), built with debhelper and dh_nginx
#   make test    deps + build + deb + Genesys' JavaScript SDK for
#                t/071-sdk.t (npm ci in t/sdk/) + the Test::Nginx suite
#   make demo    deps + build + the gateway in front of the mock, with a burst
#   make asan, make valgrind   the whole suite under the sanitizers, valgrind
#   make fuzz    the libFuzzer targets of fuzz/, FUZZ_SECONDS each (not in test)
#   make static  the module built into nginx (--add-module) and its tests run
#                against that nginx (not in test: it builds all of nginx)
#   make mutants the bugs of tools/mutants.txt planted one at a time, each
#                against its tests; writes t/MUTANTS.md (not in test: it
#                takes 20 minutes); MUTANTS=id1,id2 runs those only
#   make peer NGINX_TESTS=/path/to/nginx-tests   nginx's own test suite,
#                plain and with the module injected (tools/peer.sh)

SHELL       := /bin/bash
NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx
BUILD       := build
MODULE      := $(BUILD)/nginx/ngx_http_scripting_gate_module.so
MOCK        := $(BUILD)/scripting-mock
ASAN_MODULE := $(BUILD)/asan/ngx_http_scripting_gate_module.so
POLL_MODULE := $(BUILD)/poll/ngx_http_scripting_gate_module.so
SOURCES     := config $(wildcard ngx_module/*.c ngx_module/*.h)

# the version is set in one place: the first entry of debian/changelog
VERSION     := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_ARCH    := $(shell dpkg --print-architecture)
DEB         := $(BUILD)/deb/libnginx-mod-http-scripting-gate_$(VERSION)_$(DEB_ARCH).deb

# what each target needs from Debian; every target installs what is missing
# (tools/deps.sh), or names the apt-get command that does
BUILD_PACKAGES := nginx nginx-dev libjansson-dev libcurl4-openssl-dev \
                  libhiredis-dev libevent-dev gcc make
DEB_BUILD_PACKAGES := $(BUILD_PACKAGES) build-essential debhelper dpkg-dev
DEB_PACKAGES := $(DEB_BUILD_PACKAGES) libtest-base-perl tini wrk curl openssl \
                chromium prometheus redis-server

CFLAGS_MOCK := -O2 -g -Wall -Wextra

# Genesys' JavaScript SDK, as t/sdk/package-lock.json pins it, from the npm
# registry; installed again when t/sdk/package*.json change
SDK_STAMP   := t/sdk/node_modules/.installed

.PHONY: all deps build-deps deb-deps build deb test asan valgrind demo \
        demo-stop bench reliability fuzz static mutants peer clean

all: build

# node and npm: Debian's nodejs and npm unless both commands are there
# already (NodeSource's nodejs package carries npm and conflicts with
# Debian's npm package)
deps:
	@sh tools/deps.sh $(DEB_PACKAGES)
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
	    || sh tools/deps.sh nodejs npm

build-deps:
	@sh tools/deps.sh $(BUILD_PACKAGES)

deb-deps:
	@sh tools/deps.sh $(DEB_BUILD_PACKAGES)

build: $(MODULE) $(MOCK)

# $(call configure,DIR,CC_OPT[,LD_OPT]): Debian's nginx configured with the
# module as a dynamic one, into $(BUILD)/DIR
define configure
	@mkdir -p $(BUILD)/$(1)
	cd $(NGINX_SRC) && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt='$(2)' $(if $(3),--with-ld-opt='$(3)') \
	    --add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(BUILD)/$(1) \
	    > $(CURDIR)/$(BUILD)/$(1)/configure.log 2>&1 \
	    || { tail -30 $(CURDIR)/$(BUILD)/$(1)/configure.log; exit 1; }
endef

CC_OPT := -g -O2 -fPIC -fstack-protector-strong -Wformat \
          -Werror=format-security -D_FORTIFY_SOURCE=2 -Wall -Werror

$(BUILD)/nginx/Makefile: config | build-deps
	$(call configure,nginx,$(CC_OPT))

$(MODULE): $(BUILD)/nginx/Makefile $(SOURCES)
	$(MAKE) -s -f $(CURDIR)/$(BUILD)/nginx/Makefile -C $(NGINX_SRC) modules

# the module built with AddressSanitizer and UndefinedBehaviorSanitizer,
# loaded into Debian's nginx with libasan preloaded (t/run.sh, ASAN=1)
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer

$(ASAN_MODULE): config $(SOURCES) | build-deps
	$(call configure,asan,-g -O1 -fPIC $(ASAN_FLAGS) -Wall -Werror,$(ASAN_FLAGS))
	$(MAKE) -s -f $(CURDIR)/$(BUILD)/asan/Makefile -C $(NGINX_SRC) modules

# the module with a Redis waiter's poll of 20 ms, not 250: make bench
# measures wake-ups by that poll alone against pub/sub's
$(POLL_MODULE): config $(SOURCES) | build-deps
	$(call configure,poll,$(CC_OPT) -DNGX_HTTP_SCRIPTING_GATE_REDIS_POLL=20)
	$(MAKE) -s -f $(CURDIR)/$(BUILD)/poll/Makefile -C $(NGINX_SRC) modules

$(MOCK): tools/mock/scripting_mock.c | build-deps
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_MOCK) -o $@ $< -levent -ljansson

# the package, built the way Debian builds its libnginx-mod-* packages
# (debhelper, dh-sequence-nginx), from a copy of the sources in build/deb/,
# where dpkg-buildpackage leaves the .deb
DEB_SOURCES := config $(SOURCES) LICENSE README.md docs/STATS.md \
               $(wildcard conf-examples/*) $(wildcard debian/* debian/*/*)

deb: $(DEB)

$(DEB): $(DEB_SOURCES) | deb-deps
	rm -rf $(BUILD)/deb
	mkdir -p $(BUILD)/deb/src/docs
	cp -R config ngx_module LICENSE README.md conf-examples debian \
	    $(BUILD)/deb/src/
	cp docs/STATS.md $(BUILD)/deb/src/docs/
	cd $(BUILD)/deb/src && dpkg-buildpackage -b -us -uc \
	    > $(CURDIR)/$(BUILD)/deb/build.log 2>&1 \
	    || { tail -30 $(CURDIR)/$(BUILD)/deb/build.log; exit 1; }
	@echo "$@"

$(SDK_STAMP): t/sdk/package.json t/sdk/package-lock.json | deps
	cd t/sdk && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the whole suite (the package's test installs make deb's package), then its
# gate, retry, async, stats, hostile-input and Redis parts again under the
# sanitizers, then the gate, retry and stats parts against nginx with the
# module built in (tools/static-check.sh)
test: deps build $(ASAN_MODULE) $(DEB) $(SDK_STAMP)
	@sh t/run.sh
	@ASAN=1 TEST_FILES="t/010-gate.t t/011-gates.t t/020-retry.t \
	    t/021-retry-features.t t/030-async.t t/031-async-connections.t \
	    t/033-async-security.t t/034-async-proxy-headers.t t/040-stats.t \
	    t/060-hostile.t t/080-redis.t" sh t/run.sh
	@STATIC_OPTIONAL=1 TEST_FILES="t/010-gate.t t/011-gates.t t/020-retry.t \
	    t/021-retry-features.t t/040-stats.t" sh tools/static-check.sh

# the whole suite under the sanitizers, and under valgrind's memcheck
# (nginx and the module as make build makes them); neither is part of
# make test, which runs the sanitizers on a subset
asan: deps build $(ASAN_MODULE) $(DEB) $(SDK_STAMP)
	@ASAN=1 sh t/run.sh

valgrind: deps build $(DEB) $(SDK_STAMP)
	@sh tools/deps.sh valgrind
	@VALGRIND=1 sh t/run.sh

demo: deps build
	@sh tools/demo.sh

demo-stop:
	@sh tools/demo.sh stop

clean:
	rm -rf $(BUILD) t/servroot t/sdk/node_modules

bench: deps build $(POLL_MODULE) $(SDK_STAMP)
	@sh tools/deps.sh valgrind haproxy wrk redis-server
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

# a test of the tests: the catalogue's mutants, killed or survived
# (tools/mutants.sh builds and tests a scratch copy in build/mutants/)
mutants: deps build
	@bash tools/mutants.sh

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
