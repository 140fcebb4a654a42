# frozen_string_literal: true

# The Rails 7.2 part of interop/gen_vectors.rb (loaded by it when the running Rails is 7.1+; not a program of
# its own). Run it with real Rails 7.2 from the Debian trixie root:
#
#   interop/trixie/setup.sh                                  (once per machine, as root)
#   interop/trixie/run.sh ruby interop/gen_vectors.rb        (writes tests/vectors/rails_7_2_*.json)
#
# Everything here goes through the real 7.2 jars like the rest of the generator; the only hand-made bytes are the
# MessagePack payloads of the ext-type cases (ext_127_object, ext_unknown_type), which are then signed/encrypted
# by the real jar (RailbridgeInterop.with_payload_override).

# A class Rails' *cache* MessagePack serializer can write as ext type 127 (LOAD_WITH_MSGPACK_EXT); used only to
# build the ext_127_object payload the cookie serializer must refuse to read.
class RailbridgeOpaque
  def self.from_msgpack_ext(data)
    new(data)
  end

  def initialize(data = "opaque")
    @data = data
  end

  def to_msgpack_ext
    @data
  end
end

module Gen72
  module_function

  HWIA = ActiveSupport::HashWithIndifferentAccess

  # Values ActiveSupport::JSON writes for Ruby objects (load_defaults 7.2, cookies_serializer = :json). Built at
  # the fixed "now" so Time.current is deterministic.
  def json_sessions
    I.with_now(I::NOW) do
      {
        "ruby_values" => {
          "session_id" => SID,
          "time_with_zone" => Time.use_zone("Europe/Berlin") { Time.current },
          "time_with_zone_utc" => Time.current,
          "time_with_zone_frac" => ActiveSupport::TimeZone["Europe/Berlin"].local(2024, 7, 1, 12, 0, 1.123456789r),
          "time_utc" => Time.utc(2024, 1, 2, 3, 4, 5, 678_901.234r),
          "time_offset" => Time.new(2024, 1, 2, 3, 4, 5, "+05:30"),
          "date" => Date.new(2024, 2, 29),
          "datetime" => DateTime.new(2024, 1, 2, 3, 4, 5.25r, "+01:00"),
          "set" => Set[1, "two", :three],
          "symbol" => :hello,
          sym_key: 1,
          "bignum" => 2**64 + 1,
          "neg_bignum" => -(2**64) - 1,
          "bigdecimal" => BigDecimal("3.14159"),
          "bigdecimal_tiny" => BigDecimal("1e-20"),
          "rational" => Rational(1, 3),
          "duration" => 1.day + 3.hours,
          "range" => (1..3),
          "float_nan" => Float::NAN,
          "hwia" => HWIA.new("a" => 1),
        },
        "escapes" => {
          "session_id" => SID,
          "html" => "<script>alert('x & y')</script>",
          "separators" => "a\u2028b\u2029c",
          "<&>" => "key with <&>",
          "mixed" => "\u2028<>&\u2029\u00e9\u{1F600}",
        },
      }
    end
  end

  # Every ActiveSupport MessagePack extension type Rails 7.2 registers (active_support/message_pack/extensions.rb).
  def message_pack_sessions
    I.with_now(I::NOW) do
      {
        "mp_symbols" => { "session_id" => SID, sym: :hello, "list" => [:a, :b, :a], nested: { role: :admin },
                          "quoted" => :"with space" },
        "mp_bignum" => { "session_id" => SID, "p64p1" => 2**64 + 1, "n64m1" => -(2**64) - 1, "p100" => 2**100,
                         "n100" => -(2**100), "u64max" => 2**64 - 1, "i64min" => -(2**63), "n63m1" => -(2**63) - 1 },
        "mp_bigdecimal" => { "session_id" => SID, "pi" => BigDecimal("3.14159"), "tiny" => BigDecimal("1e-20"),
                             "neg" => BigDecimal("-0.5"), "int" => BigDecimal("12345678901234567890"),
                             "zero" => BigDecimal("0") },
        "mp_rational" => { "session_id" => SID, "third" => Rational(1, 3), "neg" => Rational(-7, 2),
                           "zero" => Rational(0), "whole" => Rational(4, 1), "big" => Rational(2**70, 3) },
        "mp_complex" => { "session_id" => SID, "int" => Complex(1, 2), "float" => Complex(1.5, -0.25),
                          "rational" => Complex(Rational(1, 2), 3) },
        "mp_datetime" => {
          "session_id" => SID,
          "frac_offset" => DateTime.new(2024, 1, 2, 3, 4, 5.123456789r, "+05:30"),
          "utc" => DateTime.new(2024, 1, 2, 3, 4, 5),
          "neg_offset" => DateTime.new(1999, 12, 31, 23, 59, 59.5r, "-08:00"),
        },
        "mp_date" => { "session_id" => SID, "leap" => Date.new(2024, 2, 29), "epoch" => Date.new(1970, 1, 1),
                       "old" => Date.new(1, 1, 1) },
        "mp_time" => { "session_id" => SID, "utc" => Time.utc(2024, 1, 2, 3, 4, 5, 678_901.234r),
                       "utc0" => Time.utc(2000, 1, 1), "offset" => Time.new(2024, 1, 2, 3, 4, 5, "+05:30"),
                       "neg_offset" => Time.new(1999, 12, 31, 23, 59, 59.5r, "-08:00"),
                       "before_epoch" => Time.utc(1969, 7, 20, 20, 17, 40) },
        "mp_time_with_zone" => {
          "session_id" => SID,
          "berlin" => Time.use_zone("Europe/Berlin") { Time.current },
          "utc" => Time.use_zone("UTC") { Time.current },
          "berlin_summer_frac" => ActiveSupport::TimeZone["Europe/Berlin"].local(2024, 7, 1, 12, 0, 1.123456789r),
          "tokyo" => ActiveSupport::TimeZone["Tokyo"].local(2024, 1, 2, 3, 4, 5),
        },
        "mp_time_zone" => { "session_id" => SID, "berlin" => ActiveSupport::TimeZone["Europe/Berlin"],
                            "utc" => ActiveSupport::TimeZone["UTC"], "eastern" => ActiveSupport::TimeZone["Eastern Time (US & Canada)"] },
        "mp_duration" => { "session_id" => SID, "day_3h" => 1.day + 3.hours, "months" => 2.months,
                           "seconds" => 90.seconds, "mixed" => 1.year + 2.weeks + 30.minutes,
                           "negative" => -5.minutes, "fractional" => 1.5.seconds },
        "mp_range" => { "session_id" => SID, "incl" => (1..10), "excl" => (1...10), "endless" => (1..),
                        "beginless" => (..5), "strings" => ("a".."z"),
                        "dates" => (Date.new(2024, 1, 1)..Date.new(2024, 12, 31)), "floats" => (0.5...1.5) },
        "mp_set" => { "session_id" => SID, "mixed" => Set[1, "two", :three], "empty" => Set.new,
                      "nested" => Set[Set[1, 2]] },
        "mp_uri" => { "session_id" => SID, "https" => URI("https://example.com/a/b?c=1&d=%20#frag"),
                      "http" => URI("http://user@example.com:8080/"), "mailto" => URI("mailto:a@example.com"),
                      "generic" => URI::Generic.build(scheme: "custom", host: "h", path: "/p") },
        "mp_ipaddr" => { "session_id" => SID, "v4" => IPAddr.new("192.168.1.10"),
                         "v4_net" => IPAddr.new("192.168.1.0/24"), "v6" => IPAddr.new("2001:db8::1"),
                         "v6_net" => IPAddr.new("2001:db8::/32") },
        "mp_pathname" => { "session_id" => SID, "abs" => Pathname.new("/var/log/app.log"),
                           "rel" => Pathname.new("a/../b c") },
        "mp_regexp" => { "session_id" => SID, "icase" => /ab+c/i, "plain" => /x\d+/, "multi" => /a.b/mx },
        "mp_hwia" => { "session_id" => SID, "h" => HWIA.new("a" => 1, "b" => { "c" => [1, { "d" => 2 }] }) },
        "mp_binary" => { "session_id" => SID, "bin" => "\xFF\x00\x80abc".b, "empty_bin" => "".b },
        "mp_float_special" => { "session_id" => SID, "inf" => Float::INFINITY, "ninf" => -Float::INFINITY,
                                "nan" => Float::NAN, "neg_zero" => -0.0 },
        "mp_nested_ext" => {
          "session_id" => SID,
          "list" => [Date.new(2024, 1, 1), { at: Time.utc(2024, 1, 1) }, Set[BigDecimal("1.5"), Rational(1, 2)]],
          "range_of_times" => (Time.utc(2024, 1, 1)..Time.utc(2024, 1, 2)),
          "hwia_with_ext" => HWIA.new("d" => Date.new(2024, 1, 1), "ip" => IPAddr.new("10.0.0.1")),
        },
      }
    end
  end

  def extra_sessions(g, profile_name)
    case profile_name
    when "rails_7_2_json"
      json_sessions.each { |n, v| g.positive(n, v) }
    when "rails_7_2_message_pack"
      marshal_sessions.slice("symbols", "symbol_keys", "time_utc", "hwia", "set", "binary", "bignum").each do |n, v|
        g.positive("marshal_like_#{n}", v)
      end
      message_pack_sessions.each { |n, v| g.positive(n, v) }
      refuse_to_write(g.cfg)
    end
  end

  # What Rails 7.2 does when a :message_pack session holds an object without a registered extension type.
  # Recorded on stdout (no vector: nothing is written).
  def refuse_to_write(cfg)
    [["Object.new", Object.new], ["a Struct (Point)", Point.new(1, 2)], ["a Hash subclass", Class.new(Hash)]].each do |label, v|
      v = v.new if v.is_a?(Class)
      begin
        I.write_cookie(cfg, { "session_id" => SID, "obj" => v })
        raise "CHECK FAILED: Rails 7.2 wrote a :message_pack cookie holding #{label}"
      rescue StandardError => e
        raise if e.message.start_with?("CHECK FAILED")
        $refusals << "#{label}: #{e.class}: #{e.message[0, 120]}"
      end
    end
  end

  # MessagePack payloads that Rails' cookie serializer must refuse to read.
  def ext_payloads
    # Rails' cache serializer (install_unregistered_type_fallback) writes unregistered objects as ext 127.
    fallback = MessagePack::Factory.new
    ActiveSupport::MessagePack::Extensions.install(fallback)
    ActiveSupport::MessagePack::Extensions.install_unregistered_type_fallback(fallback)
    ext127 = fallback.dump(128) + fallback.dump({ "session_id" => SID, "obj" => RailbridgeOpaque.new })
    plain = MessagePack::Factory.new
    ActiveSupport::MessagePack::Extensions.install(plain)
    # ext type 42 (registered by nobody): fixext 4 D6 2A "abcd"
    unknown = plain.dump(128) + "\x82".b + plain.dump("session_id") + plain.dump(SID) + plain.dump("obj") +
              "\xD6\x2A".b + "abcd".b
    { "ext_127_object" => ext127, "ext_unknown_type" => unknown }
  end

  def serializer_negative(g, name, writer_cfg, payload: nil, value: DEVISE, note:)
    w = payload ? I.with_payload_override(payload) { I.write_cookie(writer_cfg, value) } : I.write_cookie(writer_cfg, value)
    g.negative(name, w.cookie, "serializer", note: "#{note}; payload #{w.payload.unpack1('H*')}")
  end

  def cross_cases(g, profile_name)
    prof = ->(n) { I.profile(n) }
    cfg = g.cfg
    case profile_name
    when "rails_7_2_json"
      g.positive("message_pack_cookie", DEVISE, writer: prof["rails_7_2_message_pack"],
                                                writer_name: "rails_7_2_message_pack", rewritten: true)
      serializer_negative(g, "marshal_cookie", prof["rails_7_2_marshal"],
                          note: "Marshal payload (rails_7_2_marshal): :json does not fall back to Marshal; the jar's parse rescues the error and reads nil")
      g.negative("sha1_kdf_cookie", I.write_cookie(cfg.merge("key_generator_hash_digest_class" => "SHA1"), DEVISE).cookie,
                 "wrong_key", note: "written by Rails 7.2 with key_generator_hash_digest_class = SHA1 (a 6.1-derived key), no rotation configured")
    when "rails_7_2_json_allow_marshal"
      g.positive("marshal_upgrade", marshal_sessions["symbols"], writer: prof["rails_7_2_marshal"],
                                                                 writer_name: "rails_7_2_marshal", rewritten: true)
      g.positive("marshal_upgrade_devise", DEVISE, writer: prof["rails_7_2_marshal"], writer_name: "rails_7_2_marshal",
                                                   rewritten: true)
      g.positive("message_pack_upgrade", DEVISE, writer: prof["rails_7_2_message_pack"],
                                                 writer_name: "rails_7_2_message_pack", rewritten: true)
    when "rails_7_2_marshal"
      g.positive("json_cookie_fallback", DEVISE, writer: prof["rails_7_2_json"], writer_name: "rails_7_2_json")
      g.positive("message_pack_cookie_fallback", DEVISE, writer: prof["rails_7_2_message_pack"],
                                                         writer_name: "rails_7_2_message_pack")
    when "rails_7_2_message_pack"
      g.positive("json_cookie_upgrade", DEVISE, writer: prof["rails_7_2_json"], writer_name: "rails_7_2_json",
                                                rewritten: true)
      serializer_negative(g, "marshal_cookie", prof["rails_7_2_marshal"],
                          note: "Marshal payload (rails_7_2_marshal): :message_pack does not fall back to Marshal; read as nil")
      p = ext_payloads
      serializer_negative(g, "ext_127_object", cfg, payload: p["ext_127_object"],
                          note: "hand-built payload: ext type 127 (generic object, as Rails' cache serializer writes it: [0, class name, to_msgpack_ext]) encrypted by the real jar; the cookie serializer's ext-127 unpacker raises \"Invalid format\", the jar reads nil")
      serializer_negative(g, "regexp_extended_comment", cfg, value: { "session_id" => SID, "r" => /a.b # c/x },
                          note: "written by Rails itself: /a.b # c/x packs as ext 16 \"(?x-mi:a.b # c)\"; Regexp.new of that string fails (the comment swallows the closing parenthesis), so Rails cannot read its own cookie and reads nil")
      serializer_negative(g, "ext_unknown_type", cfg, payload: p["ext_unknown_type"],
                          note: "hand-built payload: fixext 4 of unregistered ext type 42 encrypted by the real jar; msgpack raises, the jar reads nil")
    end
  end

  # cookies.signed(.permanent)[:session_id] = 42, as Rails 8's authentication generator writes it.
  def signed_session_id(g)
    cfg = g.cfg
    w = g.positive("permanent_42", 42, permanent: true, now: I::NOW)
    check(g.cases.last["expires"] == "2046-01-01T00:00:00Z", "permanent: 20 years from now expected, got #{g.cases.last['expires']}")
    check(w.set_cookie.include?("expires=Mon, 01 Jan 2046 00:00:00 GMT"), "permanent: Set-Cookie expires #{w.set_cookie}")
    g.positive("plain_42", 42)
    g.positive("permanent_big_id", 1_234_567_890_123, permanent: true, now: I::NOW)
    g.positive("with_expires", 42, expires: FUTURE)
    g.positive("string_id", "42")
    old = Time.utc(2005, 1, 1)
    exp = I.write_cookie(cfg, 42, permanent: true, now: old)
    g.negative("expired", exp.cookie, "expired", note: "cookies.signed.permanent written at #{iso(old)} (exp 2025-01-01), read at #{iso(I::NOW)}")
    other = I.write_cookie(cfg, 42, name: "other_id", permanent: true, now: I::NOW)
    g.negative("wrong_purpose", other.cookie, "purpose", note: "cookies.signed.permanent[:other_id] read as session_id")
    wrong = I.write_cookie(cfg.merge("secret_key_base" => I::OTHER_SECRET_KEY_BASE), 42, permanent: true, now: I::NOW)
    g.negative("wrong_key", wrong.cookie, "wrong_key")
    sha1 = I.write_cookie(cfg.merge("key_generator_hash_digest_class" => "SHA1"), 42, permanent: true, now: I::NOW)
    g.negative("sha1_kdf_cookie", sha1.cookie, "wrong_key", note: "signed with the SHA1-derived key (Rails < 7.0 defaults)")
    g.negative("empty_cookie", "", "malformed", note: "Cookie header `session_id=` (empty value)")
    raw = I.write_cookie(cfg, 42, permanent: true, now: I::NOW).raw_value
    signed_negatives(g, raw)
    g.oversize("oversize", "x" * 4000)
  end
end

$refusals = []
