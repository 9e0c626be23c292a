# bronze: `make` sets up the machine and builds the default image; `make test` runs every test.
PROFILE ?= default
# extra `bronze build` options, e.g. BUILD_FLAGS="--cache-from R/cache --cache-to R/cache"
BUILD_FLAGS ?=
NODE = $(shell scripts/node.sh)
# npm's own CLI, run by the provisioned Node (the system Node may be older than our dependencies allow)
NPM = $(NODE) $(shell readlink -f "$$(command -v npm)")
# each test file mirrors the module of src/ it tests (test/<folder>/<module>.test.ts); those that build,
# boot or publish images are <module>.integration.test.ts and run after the others
ALL_TESTS = $(sort $(wildcard test/*/*.test.ts))
UNIT_TESTS = $(filter-out %.integration.test.ts,$(ALL_TESTS))
TEST_FILES ?= $(UNIT_TESTS) $(filter %.integration.test.ts,$(ALL_TESTS))
# TEST_JUNIT=FILE also writes a JUnit report there: every test with its file and time
TEST_JUNIT ?=

.PHONY: all setup host-packages deps build test unit check typecheck lint bench repro structure clean

all: build

setup: host-packages deps

host-packages:
	@scripts/setup-host.sh

# npm dependencies, reinstalled when the lock file changes
deps: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

build: setup
	bin/bronze build --profile $(PROFILE) $(BUILD_FLAGS)

check: setup typecheck lint

typecheck: deps
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p tsconfig.json

lint: deps
	$(NODE) node_modules/eslint/bin/eslint.js --max-warnings 0 .

# in lanes (scripts/test.ts): the type and lint checks, and with integration tests the minimal image
# they share, built beside the checks, first
test: setup
	TEST_JUNIT=$(TEST_JUNIT) $(NODE) scripts/test.ts $(TEST_FILES)

# the unit tests alone: a minute, nothing built
unit:
	@$(MAKE) --no-print-directory test TEST_FILES="$(UNIT_TESTS)"

# side-by-side measurements (not tests): writes bench/results.json; BENCH_RUNS=N to change the run count
bench: setup
	$(NODE) bench/run.ts

# the redesign's counts (long functions, many imports, cache lookups, arch names, process starts, ...) in src/
structure: deps
	$(NODE) scripts/structure.ts

# builds $(PROFILE) twice in different surroundings (two kernel builds) and compares every artifact
repro: setup
	bin/bronze repro --profile $(PROFILE)

clean:
	rm -rf _out _work
