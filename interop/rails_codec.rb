# frozen_string_literal: true

# Live oracle: "does real Rails (ActionDispatch cookie jars) accept this cookie, and what does it read?" and "what
# cookie does real Rails write for this session?". Used by the Rust tests. Runs with whichever Rails loads:
#   ruby interop/rails_codec.rb ...                         Rails 6.1.7.10 (host): the 6.1-run profiles
#   interop/trixie/run.sh ruby interop/rails_codec.rb ...   Rails 7.2 (trixie root): the rails_7_2_* profiles
#
#   ruby interop/rails_codec.rb decode --profile NAME [--cookie-name N] [--now ISO8601] [--config JSON]
#       stdin: ONE cookie value as it appears in a Cookie header (percent-encoded); a trailing newline is ignored.
#       stdout: {"ok":true,"session":<tagged JSON>,"rewritten":<bool>}  or  {"ok":false}
#               ({"ok":false,"error":"..."} when Rails *raised* instead of returning nil, e.g. JSON::ParserError
#               for a Marshal payload under :json - a real app would answer 500). Exit 0.
#
#   ruby interop/rails_codec.rb encode --profile NAME [--cookie-name N] [--expires ISO8601] [--fixed-iv] [--config JSON]
#       stdin: a session in tagged JSON (docs/tagged-json.md).
#       stdout: the cookie value as it appears in Set-Cookie (percent-encoded), nothing else.
#       CookieOverflow: prints "overflow" on stderr, exit 1.
#
#   ruby interop/rails_codec.rb serve [--profile NAME]
#       one JSON request per stdin line, one JSON answer per stdout line (flushed):
#         {"op":"decode","cookie":"...","cookie_name":"_app_session","now":"2026-01-01T00:00:00Z"}
#           -> {"ok":true,"session":...,"rewritten":false} | {"ok":false}
#         {"op":"encode","session":<tagged>,"cookie_name":"...","expires":null,"fixed_iv":false}
#           -> {"ok":true,"cookie":"..."} | {"ok":false,"error":"overflow"}
#           optional: "permanent":true (write through cookies.<kind>.permanent: 20-year expiry from "now"),
#                     "now":"ISO8601" (clock while writing; default the real clock)
#         {"op":"ping"} -> {"ok":true}
#       Optional per request: "profile": NAME (overrides --profile), "config": {<Rails setting name>: value, ...}.
#       A malformed request is answered with {"ok":false,"error":"..."}; the server keeps running.
#
# Exit status 2 on usage errors. "rewritten" is true when the jar queued a Set-Cookie while reading
# (a rotation fallback - SHA1->SHA256 KDF, CBC->GCM, GCM prepare_upgrade - or a :hybrid Marshal upgrade).
# Decoding uses the two-pass purpose read of the running Rails (purpose "cookie.<name>", then none).
# "now" defaults to the real clock; expiry is checked against it. Decoded sessions whose payload is MessagePack
# (7.1+) print ActiveSupport's extension values in the "$packed" tagged form; encode accepts every form.

require_relative "lib/railbridge_interop"

module RailsCodec
  I = RailbridgeInterop
  module_function

  class UsageError < StandardError; end

  USAGE = <<~TXT
    usage: ruby interop/rails_codec.rb decode --profile NAME [--cookie-name N] [--now ISO8601] [--config JSON]
           ruby interop/rails_codec.rb encode --profile NAME [--cookie-name N] [--expires ISO8601] [--fixed-iv] [--config JSON]
           ruby interop/rails_codec.rb serve [--profile NAME]
    profiles: #{I::PROFILES.keys.join(', ')}
  TXT

  def decode(cfg, cookie, cookie_name: nil, now: nil)
    r = I.read_cookie(cfg, cookie.to_s, name: cookie_name, now: now)
    if r.ok
      { "ok" => true, "session" => I.tagged(r.value, r.format), "rewritten" => r.rewritten }
    elsif r.error
      { "ok" => false, "error" => r.error }
    else
      { "ok" => false }
    end
  end

  # -> [escaped cookie, nil] or [nil, "overflow"]
  def encode(cfg, session, cookie_name: nil, expires: nil, fixed_iv: false, permanent: false, now: nil)
    w = if permanent || now
          I.write_cookie(cfg, session, name: cookie_name, expires: expires, fixed_iv: fixed_iv, permanent: permanent, now: now)
        else
          I.write_cookie(cfg, session, name: cookie_name, expires: expires, fixed_iv: fixed_iv)
        end
    [w.cookie, nil]
  rescue ActionDispatch::Cookies::CookieOverflow
    [nil, "overflow"]
  end

  def config_for(profile, overrides)
    raise UsageError, "no profile given" if profile.nil?
    raise UsageError, "config must be a JSON object" unless overrides.nil? || overrides.is_a?(Hash)
    I.profile(profile, overrides)
  end

  def serve(default_profile)
    $stdout.sync = true
    $stdin.each_line do |line|
      next if line.strip.empty?
      answer =
        begin
          req = JSON.parse(line)
          raise UsageError, "request must be a JSON object" unless req.is_a?(Hash)
          case req["op"]
          when "ping"
            { "ok" => true }
          when "decode"
            cfg = config_for(req["profile"] || default_profile, req["config"])
            decode(cfg, req["cookie"], cookie_name: req["cookie_name"], now: I.parse_time(req["now"]))
          when "encode"
            cfg = config_for(req["profile"] || default_profile, req["config"])
            raise UsageError, "encode needs \"session\"" unless req.key?("session")
            cookie, err = encode(cfg, TaggedJSON.load(req["session"]), cookie_name: req["cookie_name"],
                                                                     expires: I.parse_time(req["expires"]),
                                                                     fixed_iv: req["fixed_iv"] == true,
                                                                     permanent: req["permanent"] == true,
                                                                     now: I.parse_time(req["now"]))
            err ? { "ok" => false, "error" => err } : { "ok" => true, "cookie" => cookie }
          else
            raise UsageError, "unknown op #{req['op'].inspect}"
          end
        rescue StandardError => e
          { "ok" => false, "error" => "#{e.class}: #{e.message}"[0, 300] }
        end
      $stdout.write(JSON.generate(answer) + "\n")
      $stdout.flush
    end
  end

  def parse_args(argv)
    mode = argv.shift
    opts = {}
    until argv.empty?
      a = argv.shift
      case a
      when "--profile" then opts[:profile] = argv.shift or raise UsageError, "--profile needs a value"
      when "--cookie-name" then opts[:cookie_name] = argv.shift or raise UsageError, "--cookie-name needs a value"
      when "--expires" then opts[:expires] = argv.shift or raise UsageError, "--expires needs a value"
      when "--now" then opts[:now] = argv.shift or raise UsageError, "--now needs a value"
      when "--config" then opts[:config] = argv.shift or raise UsageError, "--config needs a value"
      when "--fixed-iv" then opts[:fixed_iv] = true
      when "-h", "--help" then raise UsageError, ""
      else raise UsageError, "unknown argument #{a}"
      end
    end
    [mode, opts]
  end

  def main(argv)
    mode, opts = parse_args(argv.dup)
    overrides = opts[:config] && JSON.parse(opts[:config])
    case mode
    when "decode"
      cfg = config_for(opts[:profile], overrides)
      now = I.parse_time(opts[:now])
      puts JSON.generate(decode(cfg, $stdin.read.chomp, cookie_name: opts[:cookie_name], now: now))
      0
    when "encode"
      cfg = config_for(opts[:profile], overrides)
      session = TaggedJSON.parse($stdin.read)
      cookie, err = encode(cfg, session, cookie_name: opts[:cookie_name], expires: I.parse_time(opts[:expires]),
                                         fixed_iv: opts[:fixed_iv])
      if err
        warn err
        return 1
      end
      puts cookie
      0
    when "serve"
      I.profile(opts[:profile]) if opts[:profile] # validate early
      serve(opts[:profile])
      0
    else
      raise UsageError, "unknown mode #{mode.inspect}"
    end
  rescue UsageError, ArgumentError, JSON::ParserError, TaggedJSON::Error => e
    warn e.message unless e.message.empty?
    warn USAGE
    2
  end
end

exit(RailsCodec.main(ARGV)) if $PROGRAM_NAME == __FILE__
