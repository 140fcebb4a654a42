# frozen_string_literal: true

# Self-check of interop/rails_codec.rb against the generated vectors, through `serve` mode:
#   * decode every case's cookie (at the file's "now") -> must equal the case's "expected";
#   * for every accepted case written by the profile itself: encode the expected session with the
#     fixed IV (and the case's expires) -> must reproduce the case's cookie byte for byte;
#   * encode (random IV) then decode -> same session.
#
#   ruby interop/check_codec.rb                        (Rails 6.1: every file but rails_7_2_*)
#   interop/trixie/run.sh ruby interop/check_codec.rb  (Rails 7.2: the rails_7_2_* files)
# (from the repo root, after the matching gen_vectors.rb run)

require "json"
require "open3"
require "action_pack/version"

modern = ActionPack.version >= Gem::Version.new("7.1")
root = File.expand_path("..", __dir__)
files = Dir[File.join(root, "crates/rails-cookie/tests/vectors/*.json")].sort
files = files.select { |f| File.basename(f).start_with?("rails_7_2_") == modern }
abort "no vectors; run ruby interop/gen_vectors.rb" if files.empty?

Open3.popen2("ruby", File.join(__dir__, "rails_codec.rb"), "serve") do |sin, sout, _thr|
  ask = lambda do |req|
    sin.puts(JSON.generate(req))
    sin.flush
    JSON.parse(sout.gets)
  end
  raise "ping failed" unless ask.call("op" => "ping") == { "ok" => true }

  failures = 0
  counts = Hash.new(0)
  files.each do |f|
    doc = JSON.parse(File.read(f))
    prof = doc["profile"]
    doc["cases"].each do |c|
      next if c["cookie"].nil? # oversize
      got = ask.call("op" => "decode", "profile" => prof, "cookie" => c["cookie"], "cookie_name" => c["cookie_name"],
                     "now" => doc["now"])
      want = c["expected"].reject { |k, _| k == "reason" }
      if got != want
        failures += 1
        warn "#{prof}/#{c['name']}: decode #{got.inspect[0, 300]} != #{want.inspect[0, 300]}"
      end
      counts[:decode] += 1
      next unless c["expected"]["ok"]

      unless c["note"]&.start_with?("written with") || c["expected"]["rewritten"]
        enc = ask.call("op" => "encode", "profile" => prof, "session" => c["expected"]["session"],
                       "cookie_name" => c["cookie_name"], "expires" => c["expires"], "fixed_iv" => true)
        if enc != { "ok" => true, "cookie" => c["cookie"] }
          failures += 1
          warn "#{prof}/#{c['name']}: fixed-IV encode did not reproduce the cookie: #{enc.inspect[0, 200]}"
        end
        counts[:encode_exact] += 1
      end

      # a JSON-serializer profile cannot keep Ruby-only values (e.g. symbols read by :hybrid from Marshal)
      next if !%w[marshal message_pack].include?(doc["config"]["cookies_serializer"]) &&
              JSON.generate(c["expected"]["session"]).include?('"$')

      enc = ask.call("op" => "encode", "profile" => prof, "session" => c["expected"]["session"],
                     "cookie_name" => c["cookie_name"], "expires" => c["expires"])
      back = ask.call("op" => "decode", "profile" => prof, "cookie" => enc["cookie"], "cookie_name" => c["cookie_name"],
                      "now" => doc["now"])
      if back != { "ok" => true, "session" => c["expected"]["session"], "rewritten" => false }
        failures += 1
        warn "#{prof}/#{c['name']}: encode->decode round trip failed: #{back.inspect[0, 200]}"
      end
      counts[:roundtrip] += 1
    end
  end
  sin.close
  puts "decode checks: #{counts[:decode]}, exact re-encodes: #{counts[:encode_exact]}, round trips: #{counts[:roundtrip]}, failures: #{failures}"
  exit(failures.zero? ? 0 : 1)
end
