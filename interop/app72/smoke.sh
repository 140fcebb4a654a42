#!/usr/bin/env bash
# Smoke test for the Rails 7.2 test app (interop/app72/app.rb), driven with curl only (jq reads the JSON).
#
#   interop/app72/smoke.sh                          # both auth modes on SQLite (+ PostgreSQL if $PG_URL answers)
#   interop/app72/smoke.sh rails-authentication     # one mode
#   PG_URL=postgres://user:pw@127.0.0.1:5432/db interop/app72/smoke.sh
#
# Per run: start the app (start.sh), sign in through the form (fetching it first for the CSRF token and the
# cookie), check /whoami.json, the cookies the app sets, GET /, CSRF on POST /protected, the session counter,
# sign-out (both routes), wrong password / unknown user, return_to, then stop the app (stop.sh) and check the
# process group is gone. Prints "smoke: N passed, M failed"; on any failure the app log is printed and the exit
# status is non-zero.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${RAILBRIDGE_TRIXIE_ROOT:-/var/cache/railbridge/trixie}"
modes=("$@")
[[ ${#modes[@]} -eq 0 ]] && modes=(session-key rails-authentication)
command -v jq >/dev/null || { echo "smoke.sh: needs jq" >&2; exit 2; }

export SECRET_KEY_BASE="${SECRET_KEY_BASE:-4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6}"
# SMOKE_COOKIES_SERIALIZER (json, message_pack, marshal, ...) is passed on to the app as COOKIES_SERIALIZER.
unset SESSION_KEY COOKIES_SERIALIZER DATABASE_URL RAILS_AUTH DOMAIN SESSION_EXPIRE_AFTER AUTH_RATE_LIMIT \
  RAILS_APP_PIDFILE RAILS_APP_PORTFILE PORT

work="$(mktemp -d "${TMPDIR:-/tmp}/railbridge-smoke72.XXXXXX")"
# an explicit sqlite file shared by both modes (path inside the trixie root: the app runs chroot'ed there)
SHARED_DB="/tmp/railbridge-app72-smoke-$$.sqlite3"
APP_PID=""
cleanup() {
  [[ -n "$APP_PID" ]] && "$here/stop.sh" "$APP_PID"
  APP_PID=""
  rm -f "$ROOT$SHARED_DB" "$ROOT$SHARED_DB-journal" "$ROOT$SHARED_DB-wal" "$ROOT$SHARED_DB-shm"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
run_failed=0
ok()   { passed=$((passed + 1)); echo "  ok   [$RUN] $1"; }
fail() { failed=$((failed + 1)); run_failed=1; echo "  FAIL [$RUN] $1${2:+ -- $2}"; }
# check NAME ACTUAL EXPECTED
check() { if [[ "$2" == "$3" ]]; then ok "$1"; else fail "$1" "got $(printf %q "$2"), want $(printf %q "$3")"; fi; }
# check_re NAME ACTUAL REGEX
check_re() { if [[ "$2" =~ $3 ]]; then ok "$1"; else fail "$1" "got $(printf %q "$2"), want =~ $3"; fi; }

JAR=""; BODY="$work/body"; HDRS="$work/headers"; STATUS=""
# req METHOD PATH [curl args...] -> $STATUS, $BODY, $HDRS; uses/updates the cookie jar
req() {
  local m="$1" p="$2"; shift 2
  STATUS="$(curl -s -o "$BODY" -D "$HDRS" -w '%{http_code}' -b "$JAR" -c "$JAR" -X "$m" "$@" "$BASE$p")"
}
j() { jq -c -r "$1" "$BODY" 2>/dev/null || echo "<not json: $(head -c 200 "$BODY")>"; }
header() { grep -i "^$1:" "$HDRS" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
set_cookie() { grep -i '^set-cookie:' "$HDRS" | sed 's/^[^:]*: *//' | tr -d '\r' | grep "^$1=" | head -1; }
form_token() { grep -o 'name="authenticity_token" value="[^"]*"' "$BODY" | head -1 | sed 's/.*value="//;s/"$//'; }
jar_cookie() { awk -v n="$1" '($6 == n) { v = $7 } END { print v }' "$JAR"; }
csrf() { req GET /csrf.json; j .token; }

sign_in() { # sign_in EMAIL PASSWORD -> $STATUS/$HDRS of the POST
  req GET /session/new
  local tok; tok="$(form_token)"
  req POST /session --data-urlencode "authenticity_token=$tok" \
    --data-urlencode "email_address=$1" --data-urlencode "password=$2"
}

# run_app NAME MODE DATABASE_URL(or empty)
run_app() {
  RUN="$1"; local mode="$2" db="$3"
  run_failed=0
  echo "== $RUN (RAILS_AUTH=$mode, DATABASE_URL=${db:-<temp sqlite>})"
  local tag="${RUN//\//-}"
  JAR="$work/jar-$tag"; : >"$JAR"
  local log="$work/app-$tag.log" out
  local dbenv=(); [[ -n "$db" ]] && dbenv=("DATABASE_URL=$db")
  ENVELOPE=""
  [[ -n "${SMOKE_COOKIES_SERIALIZER:-}" ]] && dbenv+=("COOKIES_SERIALIZER=$SMOKE_COOKIES_SERIALIZER")
  if ! out="$(env RAILS_AUTH="$mode" "${dbenv[@]}" RAILS_APP_LOG="$log" "$here/start.sh" 2>&1)"; then
    fail "app starts" "$out"; return
  fi
  eval "$out" # PORT=.. PID=..
  APP_PID="$PID"; BASE="http://127.0.0.1:$PORT"
  ok "app starts (port $PORT, pid $PID)"

  req GET /up;        check "GET /up" "$STATUS $(cat "$BODY")" "200 ok"
  req GET /info
  check "info: mode, Rails 7.2" "$(j '[.auth_mode, (.rails | test("^7\\.2\\."))]')" "[\"$mode\",true]"
  local alice bob
  alice="$(j '.users[] | select(.[1] == "alice@example.com") | .[0]')"
  bob="$(j '.users[] | select(.[1] == "bob@example.com") | .[0]')"
  check_re "seeded alice + bob" "$alice/$bob" '^[0-9]+/[0-9]+$'

  req GET /whoami.json
  check "fresh whoami" "$STATUS $(j '[.user_id, .session, .auth_session_id]')" '200 [null,{},null]'

  # --- sign-in form ---
  req GET /session/new
  check "GET /session/new" "$STATUS" 200
  local tok; tok="$(form_token)"
  check_re "form has authenticity_token" "$tok" '^[A-Za-z0-9_-]{86}$'
  check_re "form has email_address + password fields" "$(grep -c -E 'name="(email_address|password)"' "$BODY")" '^2$'
  local sc; sc="$(set_cookie _app_session)"
  check_re "Set-Cookie _app_session; path=/; httponly; samesite=lax" "$sc" '^_app_session=[^;]+; path=/; [Hh]ttp[Oo]nly; [Ss]ame[Ss]ite=[Ll]ax$'
  echo "       $(printf '%.110s' "$sc")..."

  req POST /session --data-urlencode "authenticity_token=$tok" \
    --data-urlencode "email_address=alice@example.com" --data-urlencode "password=alice-password-1"
  check "POST /session -> 302 /" "$STATUS $(header Location)" "302 $BASE/"
  local sid_cookie; sid_cookie="$(set_cookie session_id)"
  if [[ $mode == rails-authentication ]]; then
    check_re "Set-Cookie session_id (signed, permanent, httponly, lax)" "$sid_cookie" \
      '^session_id=[A-Za-z0-9%_=-]+--[0-9a-f]{40}; path=/; expires=[^;]+ GMT; httponly; samesite=lax$'
    echo "       $sid_cookie"
    # the part before "--" is base64 of the JSON metadata envelope (JSON serializer only)
    local envelope; envelope="$(printf '%s' "${sid_cookie#session_id=}" | sed 's/--.*//; s/%3D/=/g; s/%2B/+/g; s/%2F/\//g' | base64 -d 2>/dev/null)"
    if [[ "${SMOKE_COOKIES_SERIALIZER:-json}" == json ]]; then
      check_re "signed session_id envelope: purpose cookie.session_id, ~20 years" \
        "$(printf '%s' "$envelope" | jq -c -r '[._rails.pur, (._rails.exp | .[0:4] | tonumber) - (now | strftime("%Y") | tonumber)] | @text' 2>&1)" \
        '^\["cookie\.session_id",20\]$'
      ENVELOPE="$envelope"
    fi
  else
    check "no session_id cookie in session-key mode" "$sid_cookie" ""
  fi

  req GET /whoami.json
  check "whoami after sign-in" "$(j '[.user_id, .email_address]')" "[$alice,\"alice@example.com\"]"
  check_re "session_id is 32 hex" "$(j .session.session_id)" '^[0-9a-f]{32}$'
  local row=""
  if [[ $mode == rails-authentication ]]; then
    row="$(j .auth_session_id)"
    check_re "auth_session_id (Session row)" "$row" '^[0-9]+$'
    if [[ -n "${ENVELOPE:-}" ]]; then
      check "signed envelope message = base64(JSON row id)" "$(printf '%s' "$ENVELOPE" | jq -r '._rails.message' | base64 -d)" "$row"
    fi
    check "signed session_id cookie == Session row id" "$(j .signed_session_id_cookie)" "$row"
    check "no user_id in the cookie session" "$(j '.session | has("user_id")')" false
  else
    check "session[user_id]" "$(j .session.user_id)" "$alice"
    check "no Session row" "$(j .auth_session_id)" null
  fi
  local signed_in_app_cookie; signed_in_app_cookie="$(jar_cookie _app_session)"
  local signed_in_sid; signed_in_sid="$(jar_cookie session_id)"

  req GET /
  check "GET / shows the user" "$STATUS $(grep -o 'Signed in as [^<]*' "$BODY")" "200 Signed in as alice@example.com"

  # --- CSRF ---
  local xt; xt="$(csrf)"
  check_re "masked token (86 chars)" "$xt" '^[A-Za-z0-9_-]{86}$'
  check_re "stored _csrf_token (43 chars)" "$(j .session_csrf_token)" '^[A-Za-z0-9_-]{43}$'
  req POST /protected -H "X-CSRF-Token: $xt"
  check "POST /protected with X-CSRF-Token" "$STATUS $(cat "$BODY")" '200 {"ok":true}'
  req POST /protected --data-urlencode "authenticity_token=$xt"
  check "POST /protected with authenticity_token param" "$STATUS" 200
  req POST /protected
  check "POST /protected without token -> 422" "$STATUS" 422
  req POST /protected -H "X-CSRF-Token: $(printf 'x%.0s' {1..86})"
  check "POST /protected with garbage token -> 422" "$STATUS" 422

  # --- counter ---
  req POST /counter.json -H "X-CSRF-Token: $xt"
  check "POST /counter" "$STATUS $(cat "$BODY")" '200 {"counter":1}'
  req POST /counter.json -H "X-CSRF-Token: $xt"
  req GET /counter.json
  check "GET /counter.json" "$(j '[.counter, .class]')" '[2,"Integer"]'

  # --- sign out (POST /session/destroy) ---
  req POST /session/destroy -H "X-CSRF-Token: $xt"
  check "POST /session/destroy -> 303 /session/new" "$STATUS $(header Location)" "303 $BASE/session/new"
  local del; del="$(set_cookie session_id)"
  if [[ $mode == rails-authentication ]]; then
    check_re "session_id cookie deleted" "$del" '^session_id=; path=/; max-age=0; expires=Thu, 01 Jan 1970 00:00:00 GMT'
    echo "       $del"
  fi
  req GET /whoami.json
  check "whoami after sign-out" "$(j '[.user_id, .auth_session_id]')" '[null,null]'
  if [[ $mode == rails-authentication ]]; then
    check "counter survives sign-out (no reset_session)" "$(j .session.counter)" 2
    STATUS="$(curl -s -o "$BODY" -w '%{http_code}' -H "Cookie: session_id=$signed_in_sid" "$BASE/whoami.json")"
    check "replayed session_id cookie after sign-out -> nobody (row destroyed)" "$(j '[.user_id, .signed_session_id_cookie]')" "[null,$row]"
  else
    check "reset_session dropped counter" "$(j '.session | has("counter")')" false
    STATUS="$(curl -s -o "$BODY" -w '%{http_code}' -H "Cookie: _app_session=$signed_in_app_cookie" "$BASE/whoami.json")"
    check "replayed pre-sign-out cookie still signs in (cookie store cannot revoke)" "$(j .user_id)" "$alice"
  fi

  # --- wrong password / unknown user ---
  sign_in alice@example.com wrong-password
  check "wrong password -> 302 /session/new" "$STATUS $(header Location)" "302 $BASE/session/new"
  req GET /whoami.json; check "wrong password: not signed in" "$(j .user_id)" null
  req GET /session/new
  check_re "alert shown" "$(cat "$BODY")" 'Try another email address or password\.'
  sign_in nobody@example.com alice-password-1
  req GET /whoami.json; check "unknown user: not signed in" "$(j .user_id)" null

  # --- return_to + DELETE /session as bob ---
  req GET /
  check "GET / signed out -> 302 /session/new" "$STATUS $(header Location)" "302 $BASE/session/new"
  req GET /whoami.json
  check "return_to stored in session" "$(j .session.return_to_after_authenticating)" "$BASE/"
  sign_in " BOB@example.com " bob-password-2
  check "bob (email normalized) -> 302 to return_to" "$STATUS $(header Location)" "302 $BASE/"
  req GET /whoami.json
  check "whoami bob" "$(j '[.user_id, .email_address, (.session | has("return_to_after_authenticating"))]')" "[$bob,\"bob@example.com\",false]"
  xt="$(csrf)"
  req DELETE /session -H "X-CSRF-Token: $xt"
  check "DELETE /session -> 303" "$STATUS" 303
  req GET /whoami.json; check "signed out" "$(j .user_id)" null
  req DELETE /session
  check "DELETE /session without token -> 422" "$STATUS" 422

  # --- stop: the whole process group goes away ---
  "$here/stop.sh" "$APP_PID"
  if kill -0 -- "-$APP_PID" 2>/dev/null; then fail "app stopped (process group $APP_PID gone)"
  else ok "app stopped (process group $APP_PID gone)"; fi
  if curl -s -o /dev/null "$BASE/up"; then fail "port $PORT closed"; else ok "port $PORT closed"; fi
  APP_PID=""
  if [[ $run_failed == 1 ]]; then
    echo "----- app log ($RUN) -----"; cat "$log"; echo "-----"
  fi
}

for m in "${modes[@]}"; do
  run_app "$m/sqlite-temp" "$m" ""
done
for m in "${modes[@]}"; do # same explicit file for both modes: schema + seeds are idempotent across restarts
  run_app "$m/sqlite-file" "$m" "sqlite3:$SHARED_DB"
done

pg_reachable() {
  [[ -n "${PG_URL:-}" ]] || return 1
  if command -v pg_isready >/dev/null; then pg_isready -q -t 3 -d "$PG_URL"; return; fi
  local hp="${PG_URL#*://}"; hp="${hp#*@}"; hp="${hp%%/*}"; hp="${hp%%\?*}"
  local host="${hp%%:*}" port=5432; [[ "$hp" == *:* ]] && port="${hp##*:}"
  timeout 3 bash -c "exec 3<>/dev/tcp/${host:-127.0.0.1}/$port" 2>/dev/null
}
if pg_reachable; then
  for m in "${modes[@]}"; do
    run_app "$m/postgres" "$m" "$PG_URL"
  done
else
  if [[ -n "${PG_URL:-}" ]]; then echo "== postgres: skipped (no server answering at \$PG_URL)"
  else echo "== postgres: skipped (PG_URL not set)"; fi
fi

echo "smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
