#!/usr/bin/env bash
# The project's test command (`npm test`): build, build the libcni driver, run unit tests,
# then integration tests (root only). Counts come from vitest's JSON reports; the LAST line
# printed is exactly "N passed, N failed". Exit status is non-zero on any failure or if no
# test ran.
#   TSCNI_SKIP_BUILD=1   skip `npm run build` and the driver build (use what is there)
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
out=$(mktemp -d /tmp/tscni-testrun-XXXXXX)
trap 'rm -rf "$out"' EXIT

note() { printf '\n== %s\n' "$*" >&2; }
fail_step() { note "FAILED: $*"; failed=$((failed + 1)); }

# count REPORT.json VITEST_EXIT: add the report's totals; a failing run that reported no
# failed test (global setup/teardown error, a file that did not load) counts as one failure.
count() {
  local report=$1 rc=$2 p=0 f=0
  if [ -s "$report" ]; then
    read -r p f < <(node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const broken = (r.testResults ?? []).filter((t) => t.status === "failed" &&
        !(t.assertionResults ?? []).some((a) => a.status === "failed")).length;
      console.log(r.numPassedTests ?? 0, (r.numFailedTests ?? 0) + broken);
    ' "$report") || { p=0; f=0; }
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  note "$(basename "$report" .json): $p passed, $f failed (vitest exit $rc)"
}

vitest_project() {
  local project=$1 rc
  note "vitest: $project"
  npx vitest run --project "$project" --passWithNoTests \
    --reporter=default --reporter=json --outputFile.json="$out/$project.json" >&2
  rc=$?
  count "$out/$project.json" "$rc"
}

if [ "${TSCNI_SKIP_BUILD:-}" != 1 ]; then
  note "setup (installs only what is missing)"
  bash scripts/setup.sh >&2 || fail_step "scripts/setup.sh"
  note "build"
  npm run build >&2 || fail_step "npm run build"
  note "build libcni driver"
  bash scripts/build-driver.sh >&2 || fail_step "scripts/build-driver.sh"
fi

vitest_project unit

if [ "$(id -u)" -eq 0 ]; then
  vitest_project integration
else
  fail_step "integration tests need root (they create network namespaces); not running them"
fi

if [ $((passed + failed)) -eq 0 ]; then
  note "no test ran"
  failed=1
fi

rm -rf "$out"
trap - EXIT
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
