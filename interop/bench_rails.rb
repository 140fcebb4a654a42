# Times real Rails (Debian's 6.1.7.10) decoding and encoding the same realistic Devise session cookie that
# crates/rails-cookie/benches/codec.rs measures, so the speed-up over Rails is measured, not claimed.
#
#   ruby interop/bench_rails.rb [seconds-per-measurement]
#
# Prints one line per measurement: "<name> <microseconds per op>". Two levels are timed:
#   * MessageEncryptor: ActiveSupport::MessageEncryptor#decrypt_and_verify with the purpose check and JSON.parse
#     (the codec alone, keys derived once — the fair comparison with rails-cookie);
#   * cookie jar: what a request pays, cookies.encrypted[name] on a fresh request (jar construction, key lookup
#     in the caching key generator, two-pass purpose read, JSON).
require_relative "lib/railbridge_interop"
require "benchmark"

include RailbridgeInterop

SECONDS = (ARGV[0] || "2").to_f

SESSION = {
  "session_id" => "8f3a9c2e5b7d1f4a6c8e0b2d4f6a8c1e",
  "warden.user.user.key" => [[1042], "$2a$12$KIXe0sYfXJ0x1YQ0b1c2de"],
  "warden.user.user.session" => { "last_request_at" => 1_764_000_000 },
  "_csrf_token" => "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
  "user_return_to" => "/dashboard/reports?tab=weekly",
  "flash" => { "discard" => [], "flashes" => { "notice" => "Signed in successfully." } },
}.freeze

def per_op_us(seconds)
  n = 0
  batch = 100
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  elapsed = 0.0
  while elapsed < seconds
    batch.times { yield }
    n += batch
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
  end
  elapsed / n * 1e6
end

cfg = RailbridgeInterop.profile("rails_6_1_json")
name = cfg["cookie_name"]
written = RailbridgeInterop.write_cookie(cfg, SESSION, fixed_iv: false)
cookie = written.cookie

# The codec alone, as rails-cookie's CookieCodec: keys derived once, then decrypt + purpose + JSON per cookie.
req = RailbridgeInterop.build_request(cfg)
key = req.key_generator.generate_key(req.authenticated_encrypted_cookie_salt, 32)
encryptor = ActiveSupport::MessageEncryptor.new(key, cipher: "aes-256-gcm",
                                                serializer: ActiveSupport::MessageEncryptor::NullSerializer)
raw = Rack::Utils.unescape(cookie)
purpose = "cookie.#{name}"
decoded = JSON.parse(encryptor.decrypt_and_verify(raw, purpose: purpose))
raise "decode mismatch" unless decoded == SESSION

warm = ->(s) { [s / 4, 0.2].max }
per_op_us(warm.(SECONDS)) { JSON.parse(encryptor.decrypt_and_verify(raw, purpose: purpose)) }
puts format("rails_message_encryptor_decode %.2f", per_op_us(SECONDS) { JSON.parse(encryptor.decrypt_and_verify(raw, purpose: purpose)) })
puts format("rails_message_encryptor_encode %.2f",
            per_op_us(SECONDS) { encryptor.encrypt_and_sign(ActiveSupport::JSON.encode(SESSION), purpose: purpose) })

header = "#{name}=#{cookie}"
# One env_config for the whole run, as a booted app has: its CachingKeyGenerator derives each key once.
app_env = RailbridgeInterop.env_config(cfg)
jar_read = lambda do
  env = Rack::MockRequest.env_for("http://example.com/", "HTTP_COOKIE" => header)
  env.merge!(app_env)
  ActionDispatch::Request.new(env).cookie_jar.encrypted[name]
end
raise "jar mismatch" unless jar_read.call == SESSION
per_op_us(warm.(SECONDS)) { jar_read.call }
puts format("rails_cookie_jar_decode %.2f", per_op_us(SECONDS) { jar_read.call })
