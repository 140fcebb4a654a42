# frozen_string_literal: true

# Serves a Rack app with Puma on 127.0.0.1 the way the test kit expects of every interop app (Rails 6.1 + Devise on
# the host, Rails 7.2 in the trixie root): PORT (0 = a free port), RAILS_APP_PIDFILE / RAILS_APP_PORTFILE written
# when set, TERM/INT stop the server, and "listening on http://127.0.0.1:<port>" on stdout once it accepts.
require "puma"
require "puma/events"
require "puma/server"

module RailbridgeServe
  module_function

  def env(name, default = nil)
    v = ENV[name]
    v.nil? || v.strip.empty? ? default : v
  end

  def run(app)
    port = Integer(env("PORT", "0"))
    # Puma 6: Events.new takes no arguments (logging went to LogWriter); Puma 5: (stdout, stderr).
    events = Puma::Events.instance_method(:initialize).arity.zero? ? Puma::Events.new : Puma::Events.new($stderr, $stderr)
    server = Puma::Server.new(app, events, { min_threads: 0, max_threads: 5, environment: "production" })
    real_port = server.add_tcp_listener("127.0.0.1", port).addr[1]
    (f = env("RAILS_APP_PIDFILE")) && File.write(f, "#{Process.pid}\n")
    (f = env("RAILS_APP_PORTFILE")) && File.write(f, "#{real_port}\n")
    %w[TERM INT].each { |sig| Signal.trap(sig) { server.stop } }
    thread = server.run
    $stdout.puts "listening on http://127.0.0.1:#{real_port}"
    $stdout.flush
    thread.join
  end
end
