#!/usr/bin/env bash
# Foundation smoke test for the Rails 6.1 + Devise test app (interop/app/app.rb).
#
#   interop/app/smoke.sh                 # profiles 6.1 4.2 7.0 6.1-marshal
#   interop/app/smoke.sh 6.1 7.0         # just these
#
# For each profile: start the app on an ephemeral port, drive it with curl + a cookie jar
# (real Devise sign-in form, CSRF, session endpoints, password change, sign-out), decrypt
# the session cookie independently with plain OpenSSL to check the profile's wire format,
# and always stop the app.  Prints "smoke: N passed, 0 failed"; exits non-zero on failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
profiles=("$@")
[[ ${#profiles[@]} -eq 0 ]] && profiles=(6.1 4.2 7.0 6.1-marshal)

SKB="${SECRET_KEY_BASE:-4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6}"
export SECRET_KEY_BASE="$SKB"
unset SESSION_KEY DOMAIN COOKIES_SERIALIZER SESSION_EXPIRE_AFTER SEED_EMAIL SEED_PASSWORD \
  SESSION_ENCRYPTED_COOKIE_SALT SESSION_ENCRYPTED_SIGNED_COOKIE_SALT \
  SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT SESSION_SIGNED_COOKIE_SALT DEVISE_TIMEOUT_IN

work="$(mktemp -d "${TMPDIR:-/tmp}/railbridge-smoke.XXXXXX")"
APP_PID=""
cleanup() {
  [[ -n "$APP_PID" ]] && "$here/stop.sh" "$APP_PID"
  APP_PID=""
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
ok()   { passed=$((passed + 1)); echo "  ok   [$PROFILE] $1"; }
fail() { failed=$((failed + 1)); echo "  FAIL [$PROFILE] $1${2:+ -- $2}"; }
# check NAME ACTUAL EXPECTED
check() { if [[ "$2" == "$3" ]]; then ok "$1"; else fail "$1" "got $(printf %q "$2"), want $(printf %q "$3")"; fi; }
# check_re NAME ACTUAL REGEX
check_re() { if [[ "$2" =~ $3 ]]; then ok "$1"; else fail "$1" "got $(printf %q "$2"), want =~ $3"; fi; }

JAR=""; BODY="$work/body"; HDRS="$work/headers"; STATUS=""
# req METHOD PATH [curl args...]  -> $STATUS, $BODY, $HDRS; uses/updates the cookie jar
req() {
  local m="$1" p="$2"; shift 2
  STATUS="$(curl -s -o "$BODY" -D "$HDRS" -w '%{http_code}' -b "$JAR" -c "$JAR" -X "$m" "$@" "$BASE$p")"
}
# j 'ruby expr on j' -> value of the expression on the last JSON body (strings raw, else JSON)
j() {
  ruby -rjson -e 'j = JSON.parse(File.read(ARGV[1])) rescue (puts "<not json>"; exit); x = eval(ARGV[0]); puts(x.is_a?(String) ? x : x.to_json)' "$1" "$BODY"
}
header() { grep -i "^$1:" "$HDRS" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
form_token() { grep -o 'name="authenticity_token" value="[^"]*"' "$BODY" | head -1 | sed 's/.*value="//;s/"$//'; }
meta_token() { grep -o '<meta name="csrf-token" content="[^"]*"' "$BODY" | head -1 | sed 's/.*content="//;s/"$//'; }
jar_cookie() { awk -v n="$1" '$6 == n { v = $7 } END { print v }' "$JAR"; }
db_hash() { ruby -rsqlite3 -e 'db = SQLite3::Database.new(ARGV[0]); puts db.get_first_value("select encrypted_password from users where email = ?", ARGV[1])' "$DB" "$1"; }

# Independent decoder (plain OpenSSL, no Rails) for the session cookie -> JSON session hash.
# Prints {"format":..,"pur":..,"session":..} or {"error":..}.
decode_cookie() {
  ruby -ropenssl -rbase64 -rjson -rcgi -e '
    skb, kdf, raw = ARGV
    v = CGI.unescape(raw)
    derive = ->(salt, len) { OpenSSL::PKCS5.pbkdf2_hmac(skb, salt, 1000, len, OpenSSL::Digest.new(kdf)) }
    parts = v.split("--")
    out = {}
    begin
      if parts.size == 3
        ct, iv, tag = parts.map { |p| Base64.strict_decode64(p) }
        c = OpenSSL::Cipher.new("aes-256-gcm").decrypt
        c.key = derive.("authenticated encrypted cookie", 32); c.iv = iv; c.auth_tag = tag; c.auth_data = ""
        data = c.update(ct) + c.final
        out["format"] = "gcm"
      elsif parts.size == 2
        body, mac = parts
        want = OpenSSL::HMAC.hexdigest("SHA1", derive.("signed encrypted cookie", 64), body)
        raise "bad hmac" unless want == mac
        ct, iv = Base64.strict_decode64(body).split("--").map { |p| Base64.strict_decode64(p) }
        c = OpenSSL::Cipher.new("aes-256-cbc").decrypt
        c.key = derive.("encrypted cookie", 32); c.iv = iv
        data = c.update(ct) + c.final
        out["format"] = "cbc"
      else
        raise "unexpected shape"
      end
      if data.start_with?("{\"_rails\":")
        env = JSON.parse(data)["_rails"]
        out["pur"] = env["pur"]; out["exp"] = env["exp"]
        data = Base64.strict_decode64(env["message"])
      end
      if data.start_with?("\x04\x08".b)
        out["serializer"] = "marshal"
        out["session"] = Marshal.load(data)
      else
        out["serializer"] = "json"
        out["session"] = JSON.parse(data)
      end
    rescue => e
      out = { "error" => "#{e.class}: #{e.message}" }
    end
    puts out.to_json
  ' "$SKB" "$1" "$2"
}

sign_in() { # sign_in EMAIL PASSWORD -> status of the POST
  req GET /users/sign_in
  local tok; tok="$(form_token)"
  req POST /users/sign_in --data-urlencode "authenticity_token=$tok" \
    --data-urlencode "user[email]=$1" --data-urlencode "user[password]=$2" --data-urlencode "user[remember_me]=0"
}

run_profile() {
  PROFILE="$1"
  echo "== profile $PROFILE"
  JAR="$work/jar-$PROFILE"; : >"$JAR"
  DB="$work/db-$PROFILE.sqlite3"
  local kdf=SHA1 fmt=gcm pur=cookie._app_session ser=json samesite=yes csrf_re masked_len=86
  csrf_re='^[A-Za-z0-9_-]{43}=$'
  case "$PROFILE" in
    4.2) fmt=cbc; pur=none; samesite=no; csrf_re='^[A-Za-z0-9+/]{43}=$'; masked_len=88 ;;
    7.0) kdf=SHA256; csrf_re='^[A-Za-z0-9_-]{43}$' ;;
    6.1-marshal) ser=marshal ;;
  esac

  local t0 t1 out
  t0=$(date +%s%N)
  if ! out="$(RAILS_PROFILE="$PROFILE" RAILS_TEST_HELPERS=1 RAILS_APP_DB="$DB" PORT=0 \
              RAILS_APP_LOG="$work/app-$PROFILE.log" "$here/start.sh")"; then
    fail "app starts"; return
  fi
  t1=$(date +%s%N)
  eval "$out"   # PORT=.. PID=..
  APP_PID="$PID"; BASE="http://127.0.0.1:$PORT"
  ok "app starts ($(( (t1 - t0) / 1000000 )) ms to ready, port $PORT)"

  req GET /up;            check "GET /up" "$STATUS $(cat "$BODY")" "200 ok"
  req GET /info;          check "profile reported" "$(j 'j["profile"]')" "$PROFILE"

  req GET /session.json;  check "fresh /session.json" "$STATUS $(j '[j["session"], j["user_signed_in"]]')" '200 [{},false]'

  # --- sign in through the real Devise form ---
  req GET /users/sign_in
  check "GET /users/sign_in" "$STATUS" 200
  local tok; tok="$(form_token)"
  check_re "form has authenticity_token" "$tok" '^[A-Za-z0-9_+/=-]{86,88}$'
  check_re "layout has csrf meta tag" "$(meta_token)" '^[A-Za-z0-9_+/=-]{86,88}$'
  local sc; sc="$(header Set-Cookie)"
  check_re "Set-Cookie _app_session ... HttpOnly" "$sc" '^_app_session=[^;]+; path=/; HttpOnly'
  if [[ $samesite == yes ]]; then check_re "SameSite=Lax" "$sc" 'SameSite=Lax$'
  else check_re "no SameSite" "$sc" 'HttpOnly$'; fi

  req POST /users/sign_in --data-urlencode "authenticity_token=$tok" \
    --data-urlencode "user[email]=user@example.com" --data-urlencode "user[password]=password123"
  check "POST /users/sign_in -> 302 /" "$STATUS $(header Location)" "302 $BASE/"

  local hash1; hash1="$(db_hash user@example.com)"
  req GET /session.json
  check "warden key after sign-in" "$(j 'j["session"]["warden.user.user.key"]')" "[[1],\"${hash1:0:29}\"]"
  check "user_signed_in / current_user_id" "$(j '[j["user_signed_in"], j["current_user_id"]]')" "[true,1]"
  check_re "session_id is 32 hex" "$(j 'j["session"]["session_id"]')" '^[0-9a-f]{32}$'
  check "timeoutable last_request_at is Integer" "$(j 'j["session"]["warden.user.user.session"]["last_request_at"].class.name')" "Integer"
  check "Devise cleared _csrf_token on sign-in" "$(j 'j["session"].key?("_csrf_token")')" "false"
  local sid; sid="$(j 'j["session"]["session_id"]')"

  # --- independent decode of the cookie ---
  local dec; dec="$(decode_cookie "$kdf" "$(jar_cookie _app_session)")"
  BODY_SAVE="$(cat "$BODY")"; echo "$dec" >"$BODY"
  check "cookie decodes with OpenSSL ($fmt, KDF $kdf)" "$(j 'j["error"] || j["format"]')" "$fmt"
  check "cookie purpose metadata" "$(j 'j["pur"] || "none"')" "$pur"
  check "cookie serializer" "$(j 'j["serializer"]')" "$ser"
  check "cookie session_id matches /session.json" "$(j 'j["session"]["session_id"]')" "$sid"
  check "cookie warden key" "$(j 'j["session"]["warden.user.user.key"]')" "[[1],\"${hash1:0:29}\"]"
  echo "$BODY_SAVE" >"$BODY"

  # --- CSRF + session writes ---
  req GET /csrf
  local xt stored; xt="$(j 'j["token"]')"; stored="$(j 'j["session_csrf_token"]')"
  check "masked token length" "${#xt}" "$masked_len"
  check_re "stored _csrf_token shape" "$stored" "$csrf_re"
  req POST /session/counter -H "X-CSRF-Token: $xt"
  check "POST /session/counter with token" "$STATUS $(cat "$BODY")" '200 {"counter":1}'
  req POST /session/counter -H "X-CSRF-Token: $xt"
  check "counter increments" "$STATUS $(cat "$BODY")" '200 {"counter":2}'
  req POST /session/counter
  check "POST /session/counter without token -> 422" "$STATUS" 422
  req POST /session/counter -H "X-CSRF-Token: $(printf 'x%.0s' {1..86})"
  check "POST /session/counter with garbage token -> 422" "$STATUS" 422
  req POST /session/set -H "X-CSRF-Token: $xt" --data-urlencode key=color --data-urlencode "value=blue <&>"
  check "POST /session/set (form)" "$STATUS" 200
  req POST /session/set -H "X-CSRF-Token: $xt" -H 'Content-Type: application/json' --data '{"key":"obj","value":{"a":[1,2.5,null]}}'
  check "POST /session/set (json)" "$STATUS" 200
  req GET /session.json
  check "session after writes" "$(j '[j["session"]["counter"], j["session"]["color"], j["session"]["obj"], j["session"]["session_id"]]')" \
    "[2,\"blue <&>\",{\"a\":[1,2.5,null]},\"$sid\"]"
  req GET /
  check_re "GET / shows signed in" "$(cat "$BODY")" 'Signed in as user@example.com'

  # --- sign out (GET allowed via sign_out_via) ---
  req GET /users/sign_out -H 'Accept: text/html'   # curl's */* would get 204 No Content
  check "GET /users/sign_out -> 302" "$STATUS" 302
  req GET /session.json
  check "after sign-out: no warden key, signed out" "$(j '[j["session"].key?("warden.user.user.key"), j["user_signed_in"], j["session"].key?("counter")]')" "[false,false,false]"
  local sid2; sid2="$(j 'j["session"]["session_id"]')"
  if [[ "$sid2" =~ ^[0-9a-f]{32}$ && "$sid2" != "$sid" ]]; then ok "session_id renewed by sign-out"
  else fail "session_id renewed by sign-out" "got $sid2 (before: $sid)"; fi

  # --- password change by the test helper invalidates the session ---
  sign_in user@example.com password123
  check "sign in again" "$STATUS" 302
  req GET /session.json; check "signed in" "$(j 'j["user_signed_in"]')" true
  req POST /test/reset_password --data-urlencode email=user@example.com --data-urlencode password=newpass789
  check "POST /test/reset_password" "$STATUS $(j 'j["ok"]')" "200 true"
  req GET /session.json
  check "after helper password change: signed out" "$(j '[j["user_signed_in"], j["current_user_id"]]')" "[false,null]"
  check "snapshot still shows the stale warden key" "$(j 'j["session"].key?("warden.user.user.key")')" true
  req GET /session.json
  check "Warden dropped the stale key on the next request" "$(j 'j["session"].key?("warden.user.user.key")')" false
  sign_in user@example.com password123
  check "old password rejected (no redirect)" "$STATUS" 200
  sign_in user@example.com newpass789
  check "new password accepted" "$STATUS" 302
  local hash2; hash2="$(db_hash user@example.com)"
  req GET /session.json
  check "warden key has the new salt" "$(j 'j["session"]["warden.user.user.key"]')" "[[1],\"${hash2:0:29}\"]"

  # --- authenticated password change endpoint (no bypass_sign_in) ---
  req GET /csrf; xt="$(j 'j["token"]')"
  req POST /users/password_change --data-urlencode password=password123
  check "password_change without CSRF token -> 422" "$STATUS" 422
  req POST /users/password_change -H "X-CSRF-Token: $xt" --data-urlencode password=password123
  check "POST /users/password_change" "$STATUS" 200
  req GET /session.json
  check "after own password change: signed out" "$(j 'j["user_signed_in"]')" false

  # --- second user ---
  sign_in other@example.com password456
  check "sign in as other@example.com" "$STATUS" 302
  req GET /session.json
  check "other user's warden key" "$(j 'j["session"]["warden.user.user.key"]')" "[[2],\"$(db_hash other@example.com | cut -c1-29)\"]"
  req GET /users/sign_out

  "$here/stop.sh" "$APP_PID"
  if kill -0 "$APP_PID" 2>/dev/null; then fail "app stopped"; else ok "app stopped"; fi
  APP_PID=""
}

for p in "${profiles[@]}"; do
  run_profile "$p"
done
echo "smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
