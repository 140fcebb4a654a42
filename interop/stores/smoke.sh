#!/usr/bin/env bash
# Smoke test: the two real Rails test apps keep their session in a server-side store (Redis / memcached).
#
#   interop/stores/smoke.sh                      # all cases below
#   interop/stores/smoke.sh 61-redis-store       # some of them
#
# Needs (run as root, after scripts/test installed its packages and interop/trixie/setup.sh made the trixie root):
#   Debian bookworm packages: redis-server (brings redis-tools: redis-cli), memcached, ruby-redis, ruby-dalli,
#   ruby-redis-actionpack (+ what interop/app needs: ruby ruby-rails ruby-devise ruby-sqlite3 puma), curl, jq
#   Rails 7.2 cases: the trixie root with ruby-redis + ruby-dalli (interop/trixie/setup.sh, marker "...+stores")
#
# Starts its own redis-server and memcached on free loopback ports (killed at exit). For each case it starts the
# app (interop/app: start.sh; interop/app72: run.sh in its own process group, like app72/start.sh, which does not
# pass the SESSION_STORE* variables on), signs in through the real form with curl and a cookie jar, and checks:
#   * /info reports the expected session store class (and, for 7.2, the cache format version);
#   * whoami (6.1: /session.json, 7.2: /whoami.json) shows the user;
#   * the session cookie value is a bare 32-hex id;
#   * the store key exists: cache_store "<ns>:_session_id:2::<sha256hex(cookie)>", redis_store "<ns>:2::<sha256hex>",
#     and its first bytes have the expected format (F61 04 08 6f / Marshal hash 04 08 7b / F71 00 11 / F70 00 04 08);
#   * GET /session_value.json reads a value from the stored session, and the counter Rails writes is read back;
#   * sign-out: whoami shows nobody and the old store key is gone.
# Prints one "PASS <case> ..." or "FAIL <case> -- reason" line per case (details and the app log follow a FAIL),
# then "stores-smoke: N passed, M failed". Exits non-zero on any failure. Bounded: every curl has a timeout, each
# app start at most RAILS_APP_START_TIMEOUT (default 60 s), the whole run at most STORES_SMOKE_TIMEOUT (default
# 600 s).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
ALL_CASES=(61-cache-redis 61-cache-memcached 61-redis-store 72-cache-redis-f71 72-cache-redis-f70)
cases=("$@")
[[ ${#cases[@]} -eq 0 ]] && cases=("${ALL_CASES[@]}")
for c in "${cases[@]}"; do
  [[ " ${ALL_CASES[*]} " == *" $c "* ]] || { echo "smoke.sh: unknown case '$c' (known: ${ALL_CASES[*]})" >&2; exit 2; }
done
for cmd in redis-server redis-cli memcached curl jq ruby sha256sum setsid; do
  command -v "$cmd" >/dev/null || { echo "smoke.sh: needs $cmd (see the package list at the top)" >&2; exit 2; }
done

export SECRET_KEY_BASE="${SECRET_KEY_BASE:-4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6}"
unset SESSION_KEY DOMAIN COOKIES_SERIALIZER SESSION_EXPIRE_AFTER SEED_EMAIL SEED_PASSWORD RAILS_PROFILE RAILS_AUTH \
  DATABASE_URL RAILS_APP_DB SESSION_STORE SESSION_STORE_URL SESSION_STORE_NAMESPACE CACHE_FORMAT_VERSION \
  RAILS_APP_PIDFILE RAILS_APP_PORTFILE PORT DEVISE_TIMEOUT_IN
export RAILS_APP_START_TIMEOUT="${RAILS_APP_START_TIMEOUT:-60}"
CURL=(curl -s --max-time 15)

work="$(mktemp -d "${TMPDIR:-/tmp}/railbridge-stores-smoke.XXXXXX")"
REDIS_PID="" MC_PID="" APP_PID="" APP_KIND="" WATCHDOG=""
stop_app() {
  if [[ -z "$APP_PID" && $APP_KIND == 61 && -s "$work/app61.pid" ]]; then APP_PID="$(tr -dc 0-9 <"$work/app61.pid")"; fi
  rm -f "$work/app61.pid"
  if [[ -n "$APP_PID" ]]; then
    if [[ $APP_KIND == 72 ]]; then "$repo/interop/app72/stop.sh" "$APP_PID"; else "$repo/interop/app/stop.sh" "$APP_PID"; fi
  fi
  APP_PID=""
}
stop_pid() { # stop_pid PID: TERM, then KILL after 5 s
  local p="$1"; [[ -n "$p" ]] || return 0
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
  stop_app
  stop_pid "$REDIS_PID"; REDIS_PID=""
  stop_pid "$MC_PID"; MC_PID=""
  if [[ -n "$WATCHDOG" ]]; then kill "$WATCHDOG" 2>/dev/null; wait "$WATCHDOG" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "stores-smoke: interrupted (or STORES_SMOKE_TIMEOUT reached)" >&2; exit 124' INT TERM
# watchdog: TERM this script after STORES_SMOKE_TIMEOUT seconds (the trap above then cleans up)
# (it waits with the read builtin on a fifo that never delivers, so it has no child process to leave behind)
mkfifo "$work/watchdog"
( exec 7<>"$work/watchdog"
  for _ in $(seq 1 "${STORES_SMOKE_TIMEOUT:-600}"); do read -r -t 1 -u 7 _; kill -0 $$ 2>/dev/null || exit 0; done
  kill -TERM $$ 2>/dev/null ) >/dev/null 2>&1 &
WATCHDOG=$!

free_port() { ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); print s.addr[1]; s.close'; }
# mc CMD PORT [KEY]: "ping" -> VERSION line; "get" -> "flags=F len=N hex=<first 16 bytes>" or "miss"
mc() {
  ruby -rsocket -e '
    cmd, port, key = ARGV
    s = Socket.tcp("127.0.0.1", Integer(port), connect_timeout: 3)
    if cmd == "ping"
      s.write("version\r\n"); print s.gets.to_s.strip
    else
      s.write("get #{key}\r\n"); l = s.gets.to_s
      if l.start_with?("VALUE ")
        _, _, flags, len = l.split; data = s.read(Integer(len))
        print "flags=#{flags} len=#{len} hex=#{data.bytes.first(16).map { |b| format("%02x", b) }.join(" ")}"
      else
        print "miss"
      end
    end' "$@" 2>/dev/null
}

start_redis() {
  local p
  for _ in 1 2 3; do
    p="$(free_port)"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$work" \
      >"$work/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 50); do
      [[ "$(timeout 2 redis-cli -p "$p" ping 2>/dev/null)" == PONG ]] && { RPORT="$p"; return 0; }
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$REDIS_PID"; REDIS_PID=""
  done
  echo "stores-smoke: redis-server did not start; log:" >&2; cat "$work/redis.log" >&2; return 1
}
start_memcached() {
  local p user=()
  [[ $EUID -eq 0 ]] && user=(-u nobody) # memcached refuses to run as root without -u
  for _ in 1 2 3; do
    p="$(free_port)"
    memcached -p "$p" -l 127.0.0.1 -U 0 "${user[@]}" >"$work/memcached.log" 2>&1 &
    MC_PID=$!
    for _ in $(seq 1 50); do
      [[ "$(mc ping "$p")" == VERSION* ]] && { MPORT="$p"; return 0; }
      kill -0 "$MC_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$MC_PID"; MC_PID=""
  done
  echo "stores-smoke: memcached did not start; log:" >&2; cat "$work/memcached.log" >&2; return 1
}

JAR="" BODY="$work/body" STATUS="" BASE=""
req() { # req METHOD PATH [curl args...] -> $STATUS, $BODY; uses/updates the cookie jar
  local m="$1" p="$2"; shift 2
  STATUS="$("${CURL[@]}" -o "$BODY" -w '%{http_code}' -b "$JAR" -c "$JAR" -X "$m" "$@" "$BASE$p")"
}
j() { jq -c -r "$1" "$BODY" 2>/dev/null || echo "<not json: $(head -c 200 "$BODY")>"; }
form_token() { grep -o 'name="authenticity_token" value="[^"]*"' "$BODY" | head -1 | sed 's/.*value="//;s/"$//'; }
jar_cookie() { awk -v n="$1" '($6 == n) { v = $7 } END { print v }' "$JAR"; }

# start the app of kind 61|72 with the env assignments given; sets APP_PID, BASE; returns non-zero on failure
start_app() {
  local kind="$1"; shift
  APP_KIND="$kind"; APP_LOG="$work/app-$CASE.log"; : >"$APP_LOG"
  if [[ $kind == 61 ]]; then
    local out
    # the pid file lets cleanup stop the app even when a signal lands while start.sh is still waiting for it
    rm -f "$work/app61.pid"
    out="$(env "$@" RAILS_APP_DB="$work/db-$CASE.sqlite3" RAILS_APP_LOG="$APP_LOG" RAILS_APP_PIDFILE="$work/app61.pid" \
             PORT=0 "$repo/interop/app/start.sh" 2>&1)" \
      || { REASON="app did not start: $(tail -3 <<<"$out" | tr '\n' ' ')"; return 1; }
    eval "$out" # PORT=.. PID=..
    APP_PID="$PID"; BASE="http://127.0.0.1:$PORT"
    return 0
  fi
  # Rails 7.2 in the trixie root: run.sh clears the environment, so the variables go as arguments.
  setsid "$repo/interop/trixie/run.sh" env "$@" PORT=0 SECRET_KEY_BASE="$SECRET_KEY_BASE" \
    ruby "$repo/interop/app72/app.rb" </dev/null >>"$APP_LOG" 2>&1 &
  APP_PID=$!
  local deadline=$(( $(date +%s) + RAILS_APP_START_TIMEOUT )) port=""
  while :; do
    kill -0 "$APP_PID" 2>/dev/null || { REASON="app exited during boot"; APP_PID=""; return 1; }
    [[ -z "$port" ]] && port="$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$APP_LOG" | head -1)"
    if [[ -n "$port" && "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/up" 2>/dev/null)" == 200 ]]; then
      BASE="http://127.0.0.1:$port"; return 0
    fi
    (( $(date +%s) >= deadline )) && { REASON="app not ready after ${RAILS_APP_START_TIMEOUT}s"; return 1; }
    sleep 0.1
  done
}

passed=0 failed=0
# run_case NAME: sets REASON/DETAIL; returns 0 on success
run_case() {
  CASE="$1"; REASON=""; INFO=""
  JAR="$work/jar-$CASE"; : >"$JAR"
  local kind store backend ns db="" fv="" key_fmt prefix_re class env=()
  case "$CASE" in
    61-cache-redis)     kind=61; store=cache_store; backend=redis;     ns=rb61cache; db=0 ;;
    61-cache-memcached) kind=61; store=cache_store; backend=memcached; ns=rb61cache ;;
    61-redis-store)     kind=61; store=redis_store; backend=redis;     ns=rb61:session; db=1 ;;
    72-cache-redis-f71) kind=72; store=cache_store; backend=redis;     ns=rb72f71; db=2 ;;
    72-cache-redis-f70) kind=72; store=cache_store; backend=redis;     ns=rb72f70; db=3; fv=7.0 ;;
  esac
  if [[ $backend == redis ]]; then env+=(SESSION_STORE_URL="redis://127.0.0.1:$RPORT/$db")
  else env+=(SESSION_STORE_URL="memcached://127.0.0.1:$MPORT"); fi
  env+=(SESSION_STORE="$store" SESSION_STORE_NAMESPACE="$ns")
  [[ -n "$fv" ]] && env+=(CACHE_FORMAT_VERSION="$fv")
  # redis_store runs WITHOUT expire_after on purpose: that is the redis-rack 2.1.2 bug the app works around
  case "$kind/$store/$fv" in
    61/cache_store/)  prefix_re='^04 08 6f 3a 20'; class=ActionDispatch::Session::CacheStore ;;      # F61 Entry
    61/redis_store/)  prefix_re='^04 08 7b';       class=ActionDispatch::Session::RedisStore ;;      # Marshal hash
    72/cache_store/)  prefix_re='^00 11 01';       class=ActionDispatch::Session::CacheStore ;;      # F71
    72/cache_store/7.0) prefix_re='^(00 04 08 5b|01 78)'; class=ActionDispatch::Session::CacheStore ;; # F70
  esac

  start_app "$kind" "${env[@]}" || return 1
  req GET /info
  [[ "$(j .session_store_class)" == "$class" ]] || { REASON="/info session_store_class $(j .session_store_class), want $class"; return 1; }
  if [[ $kind == 72 ]]; then
    local want_fv="${fv:-7.1}"
    [[ "$(j .cache_format_version)" == "$want_fv" ]] || { REASON="/info cache_format_version $(j .cache_format_version), want $want_fv"; return 1; }
  fi

  # --- sign in through the real form ---
  local who email uid_expr
  if [[ $kind == 61 ]]; then
    req GET /users/sign_in
    [[ $STATUS == 200 ]] || { REASON="GET /users/sign_in -> $STATUS"; return 1; }
    req POST /users/sign_in --data-urlencode "authenticity_token=$(form_token)" \
      --data-urlencode "user[email]=user@example.com" --data-urlencode "user[password]=password123"
    who=/session.json; email=user@example.com; uid_expr=.current_user_email
  else
    req GET /session/new
    [[ $STATUS == 200 ]] || { REASON="GET /session/new -> $STATUS"; return 1; }
    req POST /session --data-urlencode "authenticity_token=$(form_token)" \
      --data-urlencode "email_address=alice@example.com" --data-urlencode "password=alice-password-1"
    who=/whoami.json; email=alice@example.com; uid_expr=.email_address
  fi
  [[ $STATUS == 302 ]] || { REASON="sign-in POST -> $STATUS (want 302)"; return 1; }
  req GET "$who"
  [[ "$(j "$uid_expr")" == "$email" ]] || { REASON="$who after sign-in: $(head -c 300 "$BODY")"; return 1; }

  # --- cookie = bare public id; store key = private id ---
  local cookie h key bytes
  cookie="$(jar_cookie _app_session)"
  [[ "$cookie" =~ ^[0-9a-f]{32}$ ]] || { REASON="session cookie is not a bare 32-hex id: '${cookie:0:80}'"; return 1; }
  h="$(printf '%s' "$cookie" | sha256sum | cut -d' ' -f1)"
  if [[ $store == cache_store ]]; then key="$ns:_session_id:2::$h"; else key="$ns:2::$h"; fi
  if [[ $backend == redis ]]; then
    [[ "$(redis-cli -p "$RPORT" -n "$db" EXISTS "$key")" == 1 ]] \
      || { REASON="redis key $key missing (db $db has: $(redis-cli -p "$RPORT" -n "$db" --scan | head -5 | tr '\n' ' '))"; return 1; }
    bytes="$(redis-cli -p "$RPORT" -n "$db" --raw GET "$key" | head -c 16 | od -An -tx1 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')"
    INFO="key=$key bytes=$bytes"
  else
    local got; got="$(mc get "$MPORT" "$key")"
    [[ "$got" == flags=* ]] || { REASON="memcached key $key: $got"; return 1; }
    [[ "$got" == flags=1\ * ]] || { REASON="memcached flags not 1 (Marshal): $got"; return 1; }
    bytes="${got#*hex=}"
    INFO="key=$key ${got% hex=*} bytes=$bytes"
  fi
  [[ "$bytes" =~ $prefix_re ]] || { REASON="stored value starts '$bytes', want =~ $prefix_re"; return 1; }

  # --- session_value reads the stored session; a value Rails writes (counter) is read back ---
  if [[ $kind == 61 ]]; then
    req GET "/session_value.json?key=warden.user.user.key"
    [[ "$(j '[.present, .value[0][0]]')" == "[true,1]" ]] || { REASON="session_value warden key: $(head -c 300 "$BODY")"; return 1; }
    req GET /csrf; local xt; xt="$(j .token)"
    req POST /session/counter -H "X-CSRF-Token: $xt"
  else
    req GET "/session_value.json?key=user_id"
    [[ "$(j '[.present, .class]')" == '[true,"Integer"]' ]] || { REASON="session_value user_id: $(head -c 300 "$BODY")"; return 1; }
    req GET /csrf.json; local xt; xt="$(j .token)"
    req POST /counter.json -H "X-CSRF-Token: $xt"
  fi
  [[ "$STATUS $(j .counter)" == "200 1" ]] || { REASON="counter POST -> $STATUS $(head -c 200 "$BODY")"; return 1; }
  req GET "/session_value.json?key=counter"
  [[ "$(j '[.key, .value, .class]')" == '["counter",1,"Integer"]' ]] || { REASON="session_value counter: $(head -c 300 "$BODY")"; return 1; }

  # --- sign out ---
  if [[ $kind == 61 ]]; then
    req GET /users/sign_out -H 'Accept: text/html'
    [[ $STATUS == 302 ]] || { REASON="GET /users/sign_out -> $STATUS"; return 1; }
    req GET /session.json
    [[ "$(j '[.user_signed_in, .current_user_id]')" == "[false,null]" ]] || { REASON="after sign-out: $(head -c 300 "$BODY")"; return 1; }
  else
    req POST /session/destroy -H "X-CSRF-Token: $xt"
    [[ $STATUS == 303 ]] || { REASON="POST /session/destroy -> $STATUS"; return 1; }
    req GET /whoami.json
    [[ "$(j .user_id)" == null ]] || { REASON="after sign-out: $(head -c 300 "$BODY")"; return 1; }
  fi
  local after; after="$(jar_cookie _app_session)"
  [[ "$after" =~ ^[0-9a-f]{32}$ && "$after" != "$cookie" ]] || { REASON="cookie after sign-out '$after' (before $cookie)"; return 1; }
  if [[ $backend == redis ]]; then
    [[ "$(redis-cli -p "$RPORT" -n "$db" EXISTS "$key")" == 0 ]] || { REASON="old key $key still in Redis after sign-out"; return 1; }
  else
    [[ "$(mc get "$MPORT" "$key")" == miss ]] || { REASON="old key $key still in memcached after sign-out"; return 1; }
  fi
  return 0
}

start_redis || exit 1
start_memcached || exit 1
echo "stores-smoke: redis-server on 127.0.0.1:$RPORT, memcached on 127.0.0.1:$MPORT"
for c in "${cases[@]}"; do
  if run_case "$c"; then
    passed=$((passed + 1)); echo "PASS $c $INFO"
    stop_app
  else
    failed=$((failed + 1)); echo "FAIL $c -- $REASON"
    [[ -n "$INFO" ]] && echo "     $INFO"
    stop_app
    echo "----- app log ($c) -----"; tail -40 "$APP_LOG" 2>/dev/null; echo "-----"
  fi
done
echo "stores-smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
