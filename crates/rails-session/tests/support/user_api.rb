# frozen_string_literal: true
#
# An internal User API for the rails-session live tests, backed by the interop app's own database.
#
# Boots interop/app/app.rb without its web server (same models, same sqlite file: pass the app's RAILS_APP_DB)
# and serves, on puma:
#
#   GET /internal/users/:id  ->  200 {"id":1,"email":"user@example.com","authenticatable_salt":"$2a$04$..."}
#                                404 {"error":"not found"}
#
# Prints "listening on http://127.0.0.1:<port>" once ready (PORT=0 picks a free port).
# Start it after the app itself has created the database (both seed users if missing).
abort "user_api.rb: set RAILS_APP_DB to the app's database file" if ENV["RAILS_APP_DB"].to_s.empty?
require_relative "../../../../interop/app/app"
require "puma"
require "puma/events"
require "puma/server"

JSON_HEADERS = { "Content-Type" => "application/json" }.freeze

user_api = lambda do |env|
  match = %r{\A/internal/users/(\d+)\z}.match(env["PATH_INFO"])
  next [404, JSON_HEADERS, ['{"error":"no such route"}']] unless env["REQUEST_METHOD"] == "GET" && match

  ActiveRecord::Base.connection_pool.with_connection do
    user = User.find_by(id: Integer(match[1]))
    if user
      body = { id: user.id, email: user.email, authenticatable_salt: user.authenticatable_salt }
      [200, JSON_HEADERS, [JSON.generate(body)]]
    else
      [404, JSON_HEADERS, ['{"error":"not found"}']]
    end
  end
end

port = Integer(ENV.fetch("PORT", "0"))
events = Puma::Events.new($stderr, $stderr)
server = Puma::Server.new(user_api, events, min_threads: 0, max_threads: 4)
listener = server.add_tcp_listener("127.0.0.1", port)
%w[TERM INT].each { |sig| Signal.trap(sig) { server.stop } }
thread = server.run
$stdout.puts "listening on http://127.0.0.1:#{listener.addr[1]}"
$stdout.flush
thread.join
