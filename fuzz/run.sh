#!/usr/bin/env bash
# Runs every fuzz target for a bounded time each and prints a summary line per target.
#   fuzz/run.sh [seconds-per-target]     (default 60; FUZZ_TARGETS="cache_entry marshal_load" for some only)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 lets it use the
# sanitizer flags. Seeds come from the Rails-generated vectors.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
export RUSTC_BOOTSTRAP=1
all=(decode_gcm decode_cbc decode_signed marshal_load message_pack_load envelope tagged_json cookie_header cache_entry gateway_assertion inspect)
# FUZZ_TARGETS="a b" runs only those.
read -r -a targets <<<"${FUZZ_TARGETS:-${all[*]}}"
# Seed corpora from real Rails cookies and payloads.
python3 - <<'PY'
import json, glob, os, binascii
for t in ["decode_gcm", "decode_cbc", "decode_signed", "marshal_load", "message_pack_load", "envelope", "tagged_json", "cookie_header", "cache_entry", "gateway_assertion", "inspect"]:
    os.makedirs(f"corpus/{t}", exist_ok=True)
for i, path in enumerate(sorted(glob.glob("../crates/rails-cookie/tests/vectors/*.json"))):
    doc = json.load(open(path))
    for j, case in enumerate(doc["cases"]):
        tag = f"{i}_{j}"
        cookie = case.get("cookie")
        if cookie:
            target = "decode_signed" if doc["config"]["kind"] == "signed" else (
                "decode_gcm" if doc["config"].get("cipher") == "aes-256-gcm" else "decode_cbc")
            open(f"corpus/{target}/{tag}", "w").write(cookie)
            open(f"corpus/cookie_header/{tag}", "w").write(f"a=1; _app_session={cookie};  _s=x\0%5Fs=y")
            open(f"corpus/inspect/{tag}", "w").write(case.get("set_cookie") or cookie)
        if case.get("payload_hex"):
            payload = binascii.unhexlify(case["payload_hex"])
            sub = "marshal_load" if payload[:2] == b"\x04\x08" else "envelope"
            open(f"corpus/{sub}/{tag}", "wb").write(payload)
        if case.get("plaintext_hex"):
            open(f"corpus/envelope/p{tag}", "wb").write(binascii.unhexlify(case["plaintext_hex"]))
        if "session" in case.get("expected", {}):
            open(f"corpus/tagged_json/{tag}", "w").write(json.dumps(case["expected"]["session"]))
# MessagePack seeds: ActiveSupport's signature, a session map with a symbol ext, a bignum ext, a Time ext.
for seed in ["cc8082a7757365725f69642ad4006bcb3ff8000000000000", "cc80c70d0100000000000000000000000001",
             "cc80c70907ce6553f10005cd0e10"]:
    open(f"corpus/message_pack_load/{seed}", "wb").write(binascii.unhexlify(seed))
# Every MessagePack payload Rails 7.2 wrote (all of ActiveSupport's extension types) seeds its reader too.
for i, path in enumerate(sorted(glob.glob("../crates/rails-cookie/tests/vectors/rails_7_2_*.json"))):
    for j, case in enumerate(json.load(open(path))["cases"]):
        payload = binascii.unhexlify(case.get("payload_hex") or "")
        if payload[:2] == b"\xcc\x80":
            open(f"corpus/message_pack_load/mp{i}_{j}", "wb").write(payload)
# Cache entries of the store spec (§8): Rails 6.1's F61, 7.0+'s F70 and 7.1+'s F71 of the same Devise session, and a
# compressed F71 (zlib of an empty Hash, as the header says).
d = "04087b084922105f637372665f746f6b656e063a064554492231494345694979516c4a69636f4b536f724c4330754c7a41784d6a4d304e5459334f446b364f7a7739506a383d063b004649221977617264656e2e757365722e757365722e6b6579063b00545b075b066906492222243261243132244b49586530735966584a307831595130623163326465063b005449221d77617264656e2e757365722e757365722e73657373696f6e063b00547b064922146c6173745f726571756573745f6174063b00546c2b07cd3c086b"
import zlib
seeds = {
    "f61": "04086f3a20416374697665537570706f72743a3a43616368653a3a456e747279093a0b4076616c75657b003a0d4076657273696f6e303a1040637265617465645f61746617313739353730313936352e313535333139323a1040657870697265735f696e30",
    "f70": "0004085b07" + d[4:] + "6617313739353730353536352e31353533313932",
    "f71": "001101c0f049b712c2da41ffffffff" + d,
    "f71z": "001181000000000000f0bfffffffff" + zlib.compress(bytes.fromhex("04087b00")).hex(),
    "f70z": "01" + zlib.compress(bytes.fromhex("04085b067b00")).hex(),
}
for name, h in seeds.items():
    open(f"corpus/cache_entry/{name}", "wb").write(binascii.unhexlify(h))
# Token shapes for the assertion verifier: a JWS with each supported header, a JWE header, junk around dots.
import base64
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
claims = b64(b'{"iss":"railbridge","aud":"api","sub":"1","sid":"s","iat":1,"exp":4000000000}')
for i, header in enumerate([b'{"alg":"EdDSA","kid":"ed","typ":"JWT"}', b'{"alg":"ES256","kid":"ec"}', b'{"alg":"none"}',
                            b'{"alg":"HS256","kid":"ed"}', b'{"alg":"dir","enc":"A256GCM","kid":"k","cty":"JWT"}']):
    open(f"corpus/gateway_assertion/t{i}", "w").write(f"{b64(header)}.{claims}.{b64(bytes(64))}")
PY
total=0
for t in "${targets[@]}"; do
  start=$(date +%s)
  if cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 \
      >"$t.log" 2>&1; then
    result="ok"
  else
    result="FAILED (see fuzz/$t.log and fuzz/artifacts/$t)"
  fi
  end=$(date +%s)
  total=$((total + end - start))
  runs=$(grep -oE '#[0-9]+' "$t.log" | tail -1 || true)
  echo "$t: ${result}, $((end - start)) s, ${runs:-?} executions"
done
echo "fuzzing: ${#targets[@]} targets, ${total} s in all"
