# frozen_string_literal: true

# Generates crates/rails-cookie/tests/vectors/<profile>.json with the REAL Rails cookie jars of the Rails that
# runs it: Rails 6.1 (host) writes the 6.1-run profiles, Rails 7.2 (Debian trixie root) the rails_7_2_* ones.
#
#   ruby interop/gen_vectors.rb                        (from the repo root; Rails 6.1 profiles)
#   interop/trixie/run.sh ruby interop/gen_vectors.rb  (Rails 7.2 profiles; see interop/trixie/setup.sh)
#
# Both are deterministic: fixed IV, ids and times.
#
# Every positive case is written through cookies.encrypted[...]= / cookies.signed[...]= and read back
# through the jar of the profile; every negative case is checked to return nil from the real jar.
# plaintext_hex / payload_hex are observed while the jar writes (see RailbridgeInterop::FixedIV etc.).

require "fileutils"
require_relative "lib/railbridge_interop"

I = RailbridgeInterop
SID = I::SESSION_ID
OUT_DIR = File.expand_path("../crates/rails-cookie/tests/vectors", __dir__)
FUTURE = Time.utc(2030, 1, 2, 3, 4, 5)
FAR_FUTURE = Time.utc(2099, 12, 31, 23, 59, 59)
PAST = Time.utc(2020, 1, 2, 3, 4, 5)

def check(cond, msg)
  raise "CHECK FAILED: #{msg}" unless cond
end

def iso(t)
  t&.utc&.strftime("%Y-%m-%dT%H:%M:%SZ")
end

# Marshal-level round trip through tagged JSON text.
def assert_tagged_roundtrip(v, where)
  back = TaggedJSON.load(JSON.parse(JSON.generate(TaggedJSON.dump(v))))
  check(Marshal.dump(back) == Marshal.dump(v), "tagged JSON round trip changed Marshal bytes in #{where}: #{v.inspect}")
end

# MessagePack-level round trip through tagged JSON text ("$packed" form).
def assert_packed_roundtrip(v, where)
  back = TaggedJSON.load(JSON.parse(JSON.generate(TaggedJSON.dump(v, packed: true))))
  check(ActiveSupport::MessagePack.dump(back) == ActiveSupport::MessagePack.dump(v),
        "tagged JSON round trip changed MessagePack bytes in #{where}: #{v.inspect}")
end

# ------------------------------------------------------------------ spec §15 cross-checks (unescaped values)
SPEC_SESSION = {
  "session_id" => SID, "_csrf_token" => "3q2-7wX9yZ8A_bCdEfGhIjKlMnOpQrStUvWxYz01234=",
  "user_id" => 42, "flash" => { "discard" => [], "flashes" => { "notice" => "Signed in <ok> & done" } },
}.freeze
SPEC_T2_SESSION = {
  "session_id" => SID, "warden.user.user.key" => [[1], "$2a$12$KIXe0sYfXJ0x1YQ0b1c2de"],
  "_csrf_token" => "3q2-7wX9yZ8A_bCdEfGhIjKlMnOpQrStUvWxYz01234=",
}.freeze
SPEC = {
  "T1" => "bmp3cWpWaFZzMFBiUnFROUdFUnlIbDIyWFpUS0IwZk1Kb29FWlRCSE9RWkRoQjRZam9NTFNGWUlRTlZacUt4Y0Q5YUp3NUVzYVNzeHdxMit4dEwwU3V5Tk9rb3VQYUc0ZHFtUXBWSmsxVEF2VlRMcVJYMkpjQVFYMWlaTyt0L1c1U25jeEovcDFNTXhpcnR1UFRoZ3FSNUcrNmF0L0x3N2hueThuelNYUGlwOTl6R0IwMlN2YUNubzRNY01HV0VLYmQ0WWl6UnNUd0VEUkdORkgyU0VweU5DUng2SjlDell0bkQzclpuV2VtRkdLejhxT0wvUW9Qd3JPNlpTODc3L2tEUmRPRHlZRXNIa2FBZXZES2JuOXc9PS0tQUFFQ0F3UUZCZ2NJQ1FvTERBME9Edz09--1fc6111876dc874a98fc2f3ab46a7dc8796134d9",
  "T2" => "VFZSMjZ1b1BTQnhoUk5SbCthenBCUENaL01HTmo1d3RyY2RMZ09LUFVtQzJPMGVRMysxdlhPNjJGRmRPUTU4QXlkQ3RrbFIzTEt2NXRpYUl5Ry9wY2N6TXBCV1I3Ui9uaml3dVMxOVlvRjZrKzVGL3N0Z09XWThyek9YdnFiRSs5SXIrdVZHL3M0V2tKekpQM0paSlI3QU5Yb0djYmNjRzgxWEF5NHh0RHhyQTlrMjI3NzFJUlRDeXdIOEVzQUlmRDM4WjNoYlhXR1grL3hCdERhcHY2cUtHSmpDL09ua0FSQnl0VlFudnowbTBpQlFWTGxhUUJsVStvY3BpUENuOENWZDVUMmtobUVwZWx1dk9URUllM0E9PS0tQUFFQ0F3UUZCZ2NJQ1FvTERBME9Edz09--d64aebd3c294747bbcd7d8b01def8827f9e8a41d",
  "T3" => "hJVzMuhBNarN+8Wsr7xdm1yFbQ1FS5xvr0KAEfy/KSNkRwLI0wEhOwG0sgh1ujwx6dvxst6+DrbwkF6bvN1iU/1PJrc3BUETmBK7BJPPIPiuNAk223B/ZIrsY4Re9sy0+JMF9Ne03XZFfuaWFoWIF9U/SqaBGjdA92E1QPhj+D892kmQhQV6fensFr0Gko7Yerh1ZzAHEDJRWN+akMSCrm3Zl1US05EgEiXyvbjege/zMtKWNlUuhPRONSY4+39ppxcoBK/K2rrdoJi/DzkRRTrj/M9j4XAERifwL5q6rANHciR/tJ02IezJ7LKtR09hNxrByCWwvuT7MbRx36mpkGkrPPbgRW2iOWqAepntDeEr2YUNcgnFccQkvjk3d7TRMSRHfhqUBr2pAbNEzv/VHY1kT67a62VxxyI1MwDT40uPz0bydBn/TMAf9IbBT4VriCjFmQ==--AAECAwQFBgcICQoL--nI5czWcWnIWcZ9a3s0s/7w==",
  "T4" => "hJVfJfpbMLaBntfq4OMM2AzQOxtKX84u3Fm4KtagLkRsAGnOilxfaVe8nS9UphdplMjgu874J77ClmzMgJMCG49GWfBNQld+uHvMAaDFOvGlORQJy3N4S43kdcdB/cWslNUwvvqijy4+e5vBetHnC5ZpXMiPS3AsrGdINKdmyH4HvimAww5AWfrBBpwV3YG2FMhwZx9ELg94IoCn3pygnkHDvw15yIsgAiLzgdbbjKOWN7jlTAAPq+FITHtR7QZtnEhRXOnd97jhtdnwPCw=--AAECAwQFBgcICQoL--lwvzg9dKFQIpLJOCn9NcAw==",
  "T5" => "hJVzMuhBNarN+8Wsr7xdm1yFbQ1FS5xvr0KAEfy/KSNkRwLI0wEhOwG0sgh1ujwx6dvxst6+DrbwkF6bvN1iU/1PJrc3BUETmBK7BJPPIPiuNAk223B/ZIrsY4Re9sy0+JMF9Ne03XZFfuaWFoWIF9U/SqaBGjdA92E1QPhj+D892kmQhQV6fensFr0Gko7Yerh1ZzAHEDJRWN+akMSCrm3Zl1US05EgEiXyvbjege/zMtKWNlUuhPRONSY4+39ppxcoBK/K2rrdoJi/DzkRRTrj/M9j4XAERifwL5q6rANHciR/tJ02IezJ7LKtR09hNxrByCWwvuT7MbRx36mpkGkrPPbgRW2iOWqAepntDeEr2YUNcgnFccQkvjk3d7TRMSRHfhqUBr2pAbNEzv/VHY1kA+mGtHl+h2ZqIQilsBfalButanOwDIBw3cGeHpxxlCiCxmSEDHMBg+QxWwev3n/zTorEFulZP2s=--AAECAwQFBgcICQoL--2940dI2akW/xkGw5hDO/Tg==",
  "T6" => "hJVzMuhBNarN+8Wsr7xdm1yFbQ1FS5xvr0KAEfy/KSNkRwLI0wEhOwG0sgh1ujwx6dvxst6+DrbwkF6bvN1iU/1PJrc3BUETmBK7BJPPIPiuNAk223B/ZIrsY4Re9sy0+JMF9Ne03XZFfuaWFoWIF9U/SqaBGjdA92E1QPhj+D892kmQhQV6fensFr0Gko7Yerh1ZzAHEDJRWN+akMSCrm3Zl1US05EgEiXyvbjege/zMtKWNlUuhPRONSY4+39ppxcoBK/K2rrdoJi/DzkRRTrj/M9j4XAERifwL5q6rANHciR/tJ02IezJ7LKtR09hNxrByCWwvuT7MbRx36mpkGkrPPbgRW2iOWqAepntDeEr2YUNcgnFccQkvjk3d7TRMSRHfhqUBr2pAbNEzv/VHY1kA+mGtHl+h2ZqIQilsBfalButanOwDIBw3cGeHpxxlCiCinKHD2UV--AAECAwQFBgcICQoL--hpQ6lumsdw8N4xusuqKFdQ==",
  "T7" => "eyJfcmFpbHMiOnsibWVzc2FnZSI6Ilcxc3hYU3dpSkRKaEpERXlKRXRKV0dVd2MxbG1XRW93ZURGWlVUQmlNV015WkdVaUxDSXhOekF3TURBd01EQXdMakV5TXpRMU5pSmQiLCJleHAiOiIyMDMwLTAxLTAyVDAzOjA0OjA1LjAwMFoiLCJwdXIiOiJjb29raWUucmVtZW1iZXJfdXNlcl90b2tlbiJ9fQ==--6fb363b994468e89d529b127b1bc0437d9b74040",
  "T9" => "PWLaZRG457aro8FVz8VvnjKactLnISEa9jHxUtTklGfR1PGm/sgRg6OAIcW3Py2LsxPQXcDK2Yrrhm4OjCOmVTzlpgoahatWgAp4ryZArbPwB7InMss4KFN7LllcwaNyGQiEa1dCADZr8Lx8ox6F4vqPcPoKAEPsSl2dHe14l5Losrzc2jIDP0Zi2DKtH2VHnPSvbKtuJXcmsSjypMLveBBXTK3vpdyQlDuG36nrtdDRzjV80oBBneZ01fHk6p/U22jTlZIJ3qgHxoek4m0tZgK4FtfHuIZYfFxmdTrhNpnrTr9ZW6amgfWTtYXEp+bJm2XRDBbDLyadDn66a2sZ5pFf8F4W+T6ytN1AiQ+3QfeLBg1uOkBLcNR2KRl6Y9fHTW/1q17jz2g2rEQWThUCtfegLG/7oBYtX4edNMAxXEMIoscqMDUemFhAsqo5ItPxRnljzQ==--AAECAwQFBgcICQoL--AUrH/ieVnmk7HB5PTWRCdg==",
  "T10" => "eyJ0aGVtZSI6ImRhcmsifQ==--ad2560fdf01a00b011a6a99e64f16f85f6aa047399c1094311d3c21b901cf61d",
  "T11" => "bmp3cWpWaFZzMFBiUnFROUdFUnlIbDIyWFpUS0IwZk1Kb29FWlRCSE9RWkRoQjRZam9NTFNGWUlRTlZacUt4Y0Q5YUp3NUVzYVNzeHdxMit4dEwwU3V5Tk9rb3VQYUc0ZHFtUXBWSmsxVEF2VlRMcVJYMkpjQVFYMWlaTyt0L1c1U25jeEovcDFNTXhpcnR1UFRoZ3FSNUcrNmF0L0x3N2hueThuelNYUGlwOTl6R0IwMlN2YUNubzRNY01HV0VLYmQ0WWl6UnNUd0VEUkdORkgyU0VweU5DUng2SjlDell0bkQzclpuV2VtRkdLejhxT0wvUW9Qd3JPNlpTODc3L2tEUmRPRHlZRXNIa2FBZXZES2JuOXc9PS0tQUFFQ0F3UUZCZ2NJQ1FvTERBME9Edz09--b9d8343807709d62e7bfdcf575088b0937a3bf1a49079b0f809f9d3abe8ddb85",
  "T13" => "BAh7B0kiD3Nlc3Npb25faWQGOgZFVEkiJTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmBjsAVEkiDHVzZXJfaWQGOwBUaS8=--6d72251d568ff66153d2521ee696fffbe8c16052",
}.freeze

# ------------------------------------------------------------------ session values

DEVISE = {
  "session_id" => SID,
  "warden.user.user.key" => [[1], "$2a$12$KIXe0sYfXJ0x1YQ0b1c2de"],
  "_csrf_token" => "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
  "warden.user.user.session" => { "last_request_at" => 1_700_000_000 },
}.freeze

def common_sessions
  {
    "empty" => { "session_id" => SID },
    "devise_login" => DEVISE,
    "flash" => { "session_id" => SID, "flash" => { "discard" => [], "flashes" => { "notice" => "Signed in." } } },
    "unicode" => { "session_id" => SID, "name" => "é 😀 日本", "日本" => "キー" },
    "html" => { "session_id" => SID, "html" => "<a href='x'>&</a> \u2028\u2029" },
    "control_chars" => { "session_id" => SID, "s" => "\u0000\u0001\b\f\n\r\t\"\\/\u007f" },
    "nested" => { "session_id" => SID, "a" => { "b" => { "c" => [1, [2, [3, { "d" => "e" }]], {}] }, "empty" => [] } },
    "integers" => {
      "session_id" => SID, "zero" => 0, "one" => 1, "neg" => -1, "i122" => 122, "i123" => 123,
      "neg123" => -123, "neg124" => -124, "i255" => 255, "i256" => 256, "i65536" => 65_536,
      "i2_30m1" => 2**30 - 1, "i2_30" => 2**30, "neg2_30" => -(2**30), "neg2_30m1" => -(2**30) - 1,
      "i2_31" => 2**31, "i2_32" => 2**32, "pow40" => 2**40, "negpow40" => -(2**40),
      "i2_62" => 2**62, "i2_63m1" => 2**63 - 1, "neg2_63" => -(2**63), "i2_64m1" => 2**64 - 1,
    },
    "floats" => {
      "session_id" => SID, "one" => 1.0, "tenth" => 0.1, "big" => 1.0e20, "tiny" => -2.5e-7,
      "pi" => 3.141592653589793, "neg_zero" => -0.0, "e16" => 1.0e16, "e15" => 1.0e15, "third" => 1.0 / 3,
    },
    "booleans" => { "session_id" => SID, "t" => true, "f" => false, "list" => [true, false, true] },
    "nils" => { "session_id" => SID, "top" => nil, "nested" => { "x" => nil }, "list" => [nil, 1, nil] },
    "large" => { "session_id" => SID, "blob" => "x" * 1500 },
    "dollar_first_key" => { "$weird" => 1, "session_id" => SID },
  }
end

def marshal_sessions
  {
    "symbols" => { "session_id" => SID, "sym" => :hello, "list" => [:a, :b, :a], "quoted" => :"with space" },
    "symbol_keys" => { user_id: 1, "session_id" => SID, nested: { role: :admin } },
    "symlink" => { "session_id" => SID, a: :a, "k" => [:a, :b, :b, { b: :a }] },
    "time_utc" => { "session_id" => SID, "t" => Time.utc(2024, 1, 2, 3, 4, 5, 678_901.234r), "t0" => Time.utc(2000, 1, 1) },
    "time_offset" => { "session_id" => SID, "t" => Time.new(2024, 1, 2, 3, 4, 5, "+05:30"),
                       "neg" => Time.new(1999, 12, 31, 23, 59, 59.5r, "-08:00") },
    "hwia" => { "session_id" => SID,
                "h" => ActiveSupport::HashWithIndifferentAccess.new("a" => 1, "b" => { "c" => [1, { "d" => 2 }] }) },
    "set" => { "session_id" => SID, "s" => Set[1, "two", :three] },
    "binary" => { "session_id" => SID, "bin" => "\xFF\x00\x80abc".b, "empty_bin" => "".b },
    "us_ascii" => { "session_id" => SID, "ascii" => "plain text".dup.force_encoding("US-ASCII") },
    "latin1" => { "session_id" => SID, "latin1" => "caf\xE9".dup.force_encoding("ISO-8859-1") },
    "struct" => { "session_id" => SID, "p" => Point.new(1, "two") },
    "bignum" => { "session_id" => SID, "p64" => 2**64, "n64" => -(2**64), "p100" => 2**100 },
    "float_special" => { "session_id" => SID, "inf" => Float::INFINITY, "ninf" => -Float::INFINITY, "nan" => Float::NAN },
    
  }
end

# ------------------------------------------------------------------ case builders

class Gen
  attr_reader :cases, :cfg

  def initialize(name, cfg)
    @name = name
    @cfg = cfg
    @cases = []
  end

  def marshal?
    @cfg["cookies_serializer"] == "marshal"
  end

  def fixed_iv_hex(cfg)
    case I.primary_cipher(cfg)
    when nil then nil
    when /gcm/ then "000102030405060708090a0b"
    else "000102030405060708090a0b0c0d0e0f"
    end
  end

  # writer: config used to write (default: this profile). Reads always with this profile.
  # permanent/now (7.2 runs): write through cookies.<kind>.permanent with the clock at `now`; the case's
  # "expires" is then the exp Rails put in the envelope.
  def positive(name, value, cookie_name: nil, expires: nil, httponly: true, writer: nil, writer_name: nil,
               rewritten: false, spec: nil, exact_value: true, permanent: false, now: nil)
    cookie_name ||= @cfg["cookie_name"]
    wcfg = writer || @cfg
    w = if permanent || now
          I.write_cookie(wcfg, value, name: cookie_name, expires: expires, httponly: httponly, permanent: permanent, now: now)
        else
          I.write_cookie(wcfg, value, name: cookie_name, expires: expires, httponly: httponly)
        end
    expires = envelope_exp(w, wcfg) if permanent
    r = I.read_cookie(@cfg, w.cookie, name: cookie_name)
    check(r.ok && r.error.nil?, "#{@name}/#{name}: real jar did not accept its own cookie: #{r.error}")
    check(r.rewritten == rewritten, "#{@name}/#{name}: rewritten=#{r.rewritten}, expected #{rewritten}")
    check(w.cookie == Rack::Utils.escape(w.raw_value), "#{@name}/#{name}: escape mismatch")
    if spec
      check(w.raw_value == SPEC.fetch(spec), "#{@name}/#{name}: does not reproduce spec #{spec}")
    end
    if marshal? && writer.nil? && exact_value
      check(Marshal.dump(r.value) == Marshal.dump(value), "#{@name}/#{name}: read-back differs from written value")
      assert_tagged_roundtrip(value, "#{@name}/#{name} (written)")
    end
    assert_tagged_roundtrip(r.value, "#{@name}/#{name} (read)") if marshal? || wcfg["cookies_serializer"] == "marshal"
    if r.format == :message_pack
      assert_packed_roundtrip(r.value, "#{@name}/#{name}")
      if writer.nil?
        check(ActiveSupport::MessagePack.dump(r.value) == w.payload, "#{@name}/#{name}: Rails re-packs the value it read differently")
      end
    else
      check(TaggedJSON.load(JSON.parse(JSON.generate(TaggedJSON.dump(r.value)))).eql?(r.value) || marshal?,
            "#{@name}/#{name}: tagged JSON does not round-trip") unless value.to_s.include?("NaN")
    end
    c = {
      "name" => name,
      "cookie_name" => cookie_name,
      "cookie" => w.cookie,
      "set_cookie" => w.set_cookie,
      "expires" => iso(expires),
      "fixed_iv_hex" => fixed_iv_hex(wcfg),
      "plaintext_hex" => w.plaintext.unpack1("H*"),
      "payload_hex" => w.payload.unpack1("H*"),
      "expected" => { "ok" => true, "session" => I.tagged(r.value, r.format), "rewritten" => r.rewritten },
    }
    c["note"] = "written with the configuration of profile #{writer_name}" if writer_name
    c["note"] = "reproduces spec vector #{spec}" if spec
    @cases << c
    w
  end

  # The exp of the metadata envelope a write produced (plaintext = the envelope JSON).
  def envelope_exp(w, wcfg)
    exp = JSON.parse(w.plaintext.force_encoding(Encoding::UTF_8)).dig("_rails", "exp")
    check(exp, "#{@name}: no exp in the envelope")
    Time.iso8601(exp).utc
  end

  def negative(name, escaped_cookie, reason, cookie_name: nil, note: nil)
    cookie_name ||= @cfg["cookie_name"]
    r = I.read_cookie(@cfg, escaped_cookie, name: cookie_name)
    check(!r.ok && r.error.nil?, "#{@name}/#{name}: expected nil from the real jar, got #{r.value.inspect} #{r.error}")
    check(!r.rewritten, "#{@name}/#{name}: unexpected rewrite")
    c = { "name" => name, "cookie_name" => cookie_name, "cookie" => escaped_cookie,
          "expected" => { "ok" => false, "reason" => reason } }
    c["note"] = note if note
    @cases << c
  end

  def oversize(name, value, cookie_name: nil)
    cookie_name ||= @cfg["cookie_name"]
    raised = false
    begin
      I.write_cookie(@cfg, value, name: cookie_name)
    rescue ActionDispatch::Cookies::CookieOverflow
      raised = true
    end
    check(raised, "#{@name}/#{name}: expected CookieOverflow")
    @cases << { "name" => name, "cookie_name" => cookie_name, "session" => TaggedJSON.dump(value), "cookie" => nil,
                "error" => "overflow", "expected" => { "ok" => false, "reason" => "overflow" } }
  end
end

# ------------------------------------------------------------------ tampering helpers (string edits only)

def flip_b64(ch)
  ch == "A" ? "B" : "A"
end

def flip_hex(ch)
  ch == "0" ? "1" : "0"
end

def esc(raw)
  Rack::Utils.escape(raw)
end

def gcm_negatives(g, raw)
  ct, iv, tag = raw.split("--")
  g.negative("tampered_ciphertext", esc("#{flip_b64(ct[0])}#{ct[1..]}--#{iv}--#{tag}"), "tampered")
  g.negative("tampered_tag", esc("#{ct}--#{iv}--#{flip_b64(tag[0])}#{tag[1..]}"), "tampered")
  g.negative("tampered_iv", esc("#{ct}--#{flip_b64(iv[0])}#{iv[1..]}--#{tag}"), "tampered")
  g.negative("swapped_iv_and_tag", esc("#{ct}--#{tag}--#{iv}"), "tampered")
  g.negative("truncated", esc("#{ct}--#{iv}"), "truncated", note: "tag part missing")
  g.negative("truncated_ciphertext", esc("#{ct[0...-8]}#{ct[-4..]}--#{iv}--#{tag}"), "truncated",
             note: "4 base64 chars (3 bytes) removed from the ciphertext; still valid base64")
  g.negative("truncated_tag", esc("#{ct}--#{iv}--#{tag[0, 16]}"), "truncated", note: "12-byte tag")
  g.negative("bad_base64_char", esc("#{ct[0]}!#{ct[2..]}--#{iv}--#{tag}"), "malformed")
  g.negative("bad_base64_padding", esc("#{ct}--#{iv}--#{tag.delete('=')}"), "malformed", note: "tag without '=' padding")
  last = tag[21]
  alphabet = [*"A".."Z", *"a".."z", *"0".."9", "+", "/"]
  nonzero = alphabet[alphabet.index(last) | 1]
  g.negative("bad_base64_trailing_bits", esc("#{ct}--#{iv}--#{tag[0, 21]}#{nonzero}=="), "malformed",
             note: "tag's last base64 char has non-zero unused bits (strict_decode64 rejects)")
  g.negative("bad_base64_whitespace", esc("#{ct}--#{iv}--#{tag[0, 12]} #{tag[12..]}"), "malformed")
  if (i = ct.index(/[+\/]/))
    g.negative("bad_base64_urlsafe", esc("#{ct[0, i]}#{ct[i] == '+' ? '-' : '_'}#{ct[i + 1..]}--#{iv}--#{tag}"), "malformed",
               note: "one '+'/'/' replaced by its URL-safe counterpart")
  end
  if esc(raw).include?("%2B")
    g.negative("plus_unescaped", esc(raw).gsub("%2B", "+"), "malformed",
               note: "literal '+' in the Cookie header decodes to a space")
  end
  g.negative("no_separators", esc(ct), "malformed")
end

def cbc_negatives(g, raw)
  data, mac = raw.split("--")
  inner = Base64.strict_decode64(data)
  ict, iiv = inner.split("--")
  g.negative("tampered_ciphertext", esc("#{Base64.strict_encode64("#{flip_b64(ict[0])}#{ict[1..]}--#{iiv}")}--#{mac}"), "tampered",
             note: "inner ciphertext base64 changed, outer base64 re-encoded, MAC kept")
  g.negative("tampered_iv", esc("#{Base64.strict_encode64("#{ict}--#{flip_b64(iiv[0])}#{iiv[1..]}")}--#{mac}"), "tampered",
             note: "inner IV base64 changed, outer base64 re-encoded, MAC kept")
  g.negative("tampered_data", esc("#{flip_b64(data[0])}#{data[1..]}--#{mac}"), "tampered")
  g.negative("tampered_digest", esc("#{data}--#{flip_hex(mac[0])}#{mac[1..]}"), "tampered")
  g.negative("truncated", esc("#{data}--#{mac[0...-2]}"), "truncated", note: "MAC one byte short")
  g.negative("truncated_no_digest", esc(data), "truncated")
  g.negative("bad_hex_digest", esc("#{data}--#{mac.upcase}"), "malformed", note: "uppercase hex MAC") if mac.match?(/[a-f]/)
  g.negative("bad_base64_char", esc("#{data[0]}!#{data[2..]}--#{mac}"), "malformed")
  if esc(raw).include?("%2B")
    g.negative("plus_unescaped", esc(raw).gsub("%2B", "+"), "malformed", note: "literal '+' decodes to a space")
  end
end

def signed_negatives(g, raw)
  data, mac = raw.split("--")
  g.negative("tampered_data", esc("#{flip_b64(data[0])}#{data[1..]}--#{mac}"), "tampered")
  g.negative("tampered_digest", esc("#{data}--#{flip_hex(mac[0])}#{mac[1..]}"), "tampered")
  g.negative("truncated", esc("#{data}--#{mac[0...-2]}"), "truncated", note: "MAC one byte short")
  g.negative("truncated_no_digest", esc(data), "truncated")
  g.negative("bad_hex_digest", esc("#{data}--#{mac.upcase}"), "malformed", note: "uppercase hex MAC") if mac.match?(/[a-f]/)
  g.negative("bad_base64_char", esc("#{data[0]}!#{data[2..]}--#{mac}"), "malformed")
end

# ------------------------------------------------------------------ per-profile generation

def generate(profile_name)
  cfg = I.profile(profile_name)
  g = Gen.new(profile_name, cfg)
  encrypted = cfg["kind"] == "encrypted"
  meta_exp = cfg["_expiry_metadata"]

  if profile_name == "rails_7_2_signed_session_id"
    Gen72.signed_session_id(g)
    return document(profile_name, cfg, g)
  end

  # spec cross-checks
  case profile_name
  when "rails_4_2_json" then g.positive("spec_t1", SPEC_SESSION, spec: "T1")
  when "rails_4_2_marshal" then g.positive("spec_t2", SPEC_T2_SESSION, spec: "T2")
  when "rails_5_2_json"
    g.positive("spec_t4", SPEC_SESSION, spec: "T4")
    g.positive("spec_t6", SPEC_SESSION, expires: FUTURE, spec: "T6")
  when "rails_6_1_json"
    g.positive("spec_t3", SPEC_SESSION, spec: "T3")
    g.positive("spec_t5", SPEC_SESSION, expires: FUTURE, spec: "T5")
  when "rails_7_0_json" then g.positive("spec_t9", SPEC_SESSION, spec: "T9")
  when "rails_7_2_json" then g.positive("spec_t9", SPEC_SESSION, spec: "T9") # 7.2's jar writes 7.0's bytes
  when "cbc_sha256_digest" then g.positive("spec_t11", SPEC_SESSION, spec: "T11")
  when "signed_sha256_digest" then g.positive("spec_t10", { "theme" => "dark" }, cookie_name: "user_pref", httponly: false, spec: "T10")
  when "legacy_secret_token"
    w = g.positive("spec_t13", { "session_id" => SID, "user_id" => 42 }, spec: "T13")
    mv = ActiveSupport::MessageVerifier.new(I::SECRET_TOKEN, digest: "SHA1", serializer: Marshal)
    check(mv.generate({ "session_id" => SID, "user_id" => 42 }) == w.raw_value, "legacy: jar != MessageVerifier")
  when "signed_6_1"
    g.positive("spec_t7", [[1], "$2a$12$KIXe0sYfXJ0x1YQ0b1c2de", "1700000000.123456"],
               cookie_name: "remember_user_token", expires: FUTURE, spec: "T7")
  end

  first = nil
  common_sessions.each do |n, v|
    w = g.positive(n, v)
    first ||= w
  end
  if g.marshal?
    marshal_sessions.each { |n, v| g.positive(n, v) }
  end
  Gen72.extra_sessions(g, profile_name) if I::MODERN

  # signed cookie shapes
  if cfg["kind"] == "signed"
    g.positive("string_value", "hello", cookie_name: "user_pref", httponly: false)
    g.positive("integer_value", 42, cookie_name: "user_pref", httponly: false)
    g.positive("array_value", [1, "two", nil], cookie_name: "user_pref", httponly: false)
    g.positive("user_pref", { "theme" => "dark" }, cookie_name: "user_pref", httponly: false)
    g.positive("remember_me", [[1], "$2a$12$KIXe0sYfXJ0x1YQ0b1c2de", "1700000000.123456"],
               cookie_name: "remember_user_token", expires: (meta_exp ? FAR_FUTURE : nil))
  end

  # expiry
  if meta_exp
    g.positive("with_expires", DEVISE, expires: FUTURE)
    g.positive("with_expires_2099", { "session_id" => SID }, expires: FAR_FUTURE)
    exp = I.write_cookie(cfg, DEVISE, expires: PAST)
    g.negative("expired", exp.cookie, "expired", note: "exp #{iso(PAST)}, now #{iso(I::NOW)}")
  end

  # purpose
  if cfg["use_cookies_with_metadata"]
    other = I.write_cookie(cfg, DEVISE, name: "_other_session")
    g.negative("wrong_purpose", other.cookie, "purpose", note: "written as _other_session, read as #{cfg['cookie_name']}")
  else
    g.positive("other_name_no_purpose", DEVISE, writer: cfg.merge("cookie_name" => "_other_session"),
                                               writer_name: "#{profile_name} (cookie written under _other_session)")
    g.cases.last["note"] = "no purpose metadata: a cookie written as _other_session is accepted under #{cfg['cookie_name']}"
  end

  # wrong key
  wrong = if cfg["secret_key_base"]
            cfg.merge("secret_key_base" => I::OTHER_SECRET_KEY_BASE)
          else
            cfg.merge("secret_token" => "another-secret-token-0123456789abcdef0123456789")
          end
  g.negative("wrong_key", I.write_cookie(wrong, DEVISE).cookie, "wrong_key")
  g.negative("empty_cookie", "", "malformed", note: "Cookie header `_app_session=` (empty value)")

  # structural tampering of a real cookie of this profile (devise_login)
  raw = I.write_cookie(cfg, DEVISE).raw_value
  if !encrypted then signed_negatives(g, raw)
  elsif I.primary_cipher(cfg).include?("gcm") then gcm_negatives(g, raw)
  else cbc_negatives(g, raw)
  end

  # cross-profile / upgrade cases
  prof = ->(n) { I.profile(n) }
  case profile_name
  when "rails_6_1_json"
    g.positive("cbc_upgrade", DEVISE, writer: prof["rails_4_2_json"], writer_name: "rails_4_2_json", rewritten: true)
    g.positive("bare_payload_5_2", DEVISE, writer: prof["rails_5_2_json"], writer_name: "rails_5_2_json")
    g.positive("limit_4092_bytes", { "session_id" => "0" * 32, "blob" => "x" * 2170 })
    check(g.cases.last["cookie"].then { |c| Rack::Utils.unescape(c).bytesize } == 4092, "T14 size")
  when "rails_6_1_marshal"
    g.positive("json_cookie_fallback", DEVISE, writer: prof["rails_6_1_json"], writer_name: "rails_6_1_json")
  when "rails_4_2_hybrid"
    g.positive("marshal_upgrade", marshal_sessions["symbols"], writer: prof["rails_4_2_marshal"],
                                                              writer_name: "rails_4_2_marshal", rewritten: true)
    g.positive("marshal_upgrade_devise", DEVISE, writer: prof["rails_4_2_marshal"], writer_name: "rails_4_2_marshal", rewritten: true)
  when "rails_4_2_json"
    g.negative("gcm_cookie", I.write_cookie(prof["rails_6_1_json"], DEVISE).cookie, "wrong_key",
               note: "GCM cookie (rails_6_1_json) read by a CBC-only 4.2 app")
  when "rails_7_0_json"
    g.negative("sha1_kdf_cookie", I.write_cookie(prof["rails_6_1_json"], DEVISE).cookie, "wrong_key",
               note: "SHA1-derived key (rails_6_1_json), no rotation configured")
  when "rotation_sha1_to_sha256"
    %w[empty devise_login flash unicode].each do |n|
      g.positive("sha1_#{n}", common_sessions[n], writer: prof["rails_6_1_json"], writer_name: "rails_6_1_json", rewritten: true)
    end
    g.positive("sha1_with_expires", DEVISE, expires: FUTURE, writer: prof["rails_6_1_json"], writer_name: "rails_6_1_json",
                                            rewritten: true)
    g.positive("sha256_cbc_legacy", DEVISE, writer: cfg.merge("use_authenticated_cookie_encryption" => false, "rotations" => []),
                                            writer_name: "#{profile_name} with use_authenticated_cookie_encryption=false (built-in legacy CBC rotation)",
                                            rewritten: true)
  when "custom_salts"
    g.negative("default_salts_cookie", I.write_cookie(prof["rails_6_1_json"], DEVISE).cookie, "wrong_key",
               note: "written with the default salts (rails_6_1_json)")
  when "custom_salts_cbc"
    g.positive("gcm_prepare_upgrade", DEVISE, writer: prof["custom_salts"], writer_name: "custom_salts", rewritten: true)
  else
    Gen72.cross_cases(g, profile_name) if I::MODERN
  end

  g.oversize("oversize", { "session_id" => SID, "blob" => "x" * 3000 })
  document(profile_name, cfg, g)
end

def document(profile_name, cfg, g)
  names = g.cases.map { |c| c["name"] }
  check(names.uniq.size == names.size, "#{profile_name}: duplicate case names #{names.tally.select { |_, c| c > 1 }.keys}")

  {
    "generator" => "interop/gen_vectors.rb",
    "rails_version" => I::RAILS_VERSION,
    "ruby_version" => RUBY_VERSION,
    "profile" => profile_name,
    "description" => cfg["_description"],
    "now" => iso(I::NOW),
    "config" => I.public_config(cfg),
    "cases" => g.cases,
  }
end

require_relative "gen_vectors_7_2" if I::MODERN

if $PROGRAM_NAME == __FILE__
  FileUtils.mkdir_p(OUT_DIR)
  I::PROFILES.each_key do |name|
    doc = generate(name)
    path = File.join(OUT_DIR, "#{name}.json")
    File.write(path, JSON.pretty_generate(doc) + "\n")
    pos = doc["cases"].count { |c| c["expected"]["ok"] }
    puts format("%-26s %3d cases (%d accepted, %d rejected) %7d bytes  %s", name, doc["cases"].size, pos,
                doc["cases"].size - pos, File.size(path), path.sub("#{Dir.pwd}/", ""))
  end
  if I::MODERN
    $refusals.each { |r| puts "rails_7_2_message_pack refuses to write #{r}" }
  end
end
