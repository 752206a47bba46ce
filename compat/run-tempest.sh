#!/usr/bin/env bash
# Run the tempest identity tests of compat/tempest-identity.txt (all 138) and the
# keystone-tempest-plugin API tests of compat/tempest-plugin.txt against a fresh Limen.
# Fails if any test fails or if fewer tests passed than the lists name.
# Uses $LIMEN_TEST_DATABASE_URL as-is when set (the caller provides a fresh database).
# TEMPEST_LISTS (space-separated files) replaces the two lists, e.g. to run a subset.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(dirname "$here")/.venv"
lists="${TEMPEST_LISTS:-$here/tempest-identity.txt $here/tempest-plugin.txt}"

if [[ "${1:-}" == "--under-limen" ]]; then
  # Second half: runs inside limen_server.py, which exports LIMEN_AUTH_URL and
  # LIMEN_ADMIN_PASSWORD for the server it started.
  ws="$2"
  cd "$ws"
  # compat/tempest.conf with this server's URL and password, plus the [DEFAULT] log_dir
  # and [oslo_concurrency] lock_path that `tempest init` wrote for this workspace.
  sed -e "s|^admin_password = .*|admin_password = $LIMEN_ADMIN_PASSWORD|" \
      -e "s|^uri_v3 = .*|uri_v3 = $LIMEN_AUTH_URL|" "$here/tempest.conf" > etc/tempest.conf.new
  cat etc/tempest.conf >> etc/tempest.conf.new
  mv etc/tempest.conf.new etc/tempest.conf
  export TEMPEST_CONFIG_DIR="$ws/etc" TEMPEST_CONFIG=tempest.conf
  list="$ws/include-list.txt"
  # shellcheck disable=SC2086 # the lists are space-separated paths
  cat $lists > "$list"
  rc=0
  "$venv/bin/tempest" run --include-list "$list" --concurrency 2 > tempest-run.log 2>&1 || rc=$?
  # Keep the failures and the totals; the whole log is long.
  grep -E '\.\.\. (FAILED|SKIPPED)|^(Ran|Totals)| - (Passed|Skipped|Failed)' tempest-run.log || true
  want=$(grep -c '^\^' "$list")
  passed=$(sed -n 's/^ - Passed: \([0-9]*\)$/\1/p' tempest-run.log | tail -1)
  failed=$(sed -n 's/^ - Failed: \([0-9]*\)$/\1/p' tempest-run.log | tail -1)
  passed=${passed:-0} failed=${failed:-0}
  if [[ $failed -ne 0 ]]; then
    # The failures' tracebacks (the workspace is deleted on exit).
    sed -n '/^Failed [0-9]* tests* - output below/,/^Totals$/p' tempest-run.log | head -400
  elif [[ $rc -ne 0 ]]; then
    tail -40 tempest-run.log   # tempest itself broke (config, import): show why
  fi
  echo "tempest: $passed passed, $failed failed"
  if [[ $rc -ne 0 || $failed -ne 0 || $passed -lt $want ]]; then
    echo "tempest: FAILED (exit $rc; $passed of $want listed tests passed)" >&2
    exit 1
  fi
  exit 0
fi

bash "$here/setup-venv.sh"
tmp="$(mktemp -d -t limen-tempest-XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# Own workspace registry: tempest init refuses names already in ~/.tempest/workspace.yaml.
"$venv/bin/tempest" init --workspace-path "$tmp/workspaces.yaml" "$tmp/ws" > "$tmp/init.log" 2>&1 \
  || { cat "$tmp/init.log"; exit 1; }
# Keystone's tempest-gate security-compliance settings, which some user tests rely on.
cat > "$tmp/limen.toml" <<'EOF'
[security_compliance]
lockout_failure_attempts = 2
lockout_duration = 5
unique_last_password_count = 2
minimum_password_age = 0
[identity]
password_hash_rounds = 4
EOF
python3 "$here/lib/limen_server.py" --config "$tmp/limen.toml" -- \
  bash "$here/run-tempest.sh" --under-limen "$tmp/ws"
