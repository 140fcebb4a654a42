# frozen_string_literal: true
#
# railbridge interop test app #2: a single-file Rails 7.2 application (no Devise).
#
# Runs inside the Debian trixie root (interop/trixie/run.sh), which ships Rails 7.2 as
# system gems.  It lets the Rust test-suite sign in against a real Rails 7.2 app and read /
# write the session cookie that app issues, in two login styles:
#
#   RAILS_AUTH=session-key            session[:user_id] = user.id in the cookie session
#   RAILS_AUTH=rails-authentication   what Rails 8's `bin/rails generate authentication` does:
#                                     a `sessions` row + a signed permanent `session_id` cookie
#
# See README.md next to this file for env variables and endpoints.
#
#   interop/trixie/run.sh ruby interop/app72/app.rb   # prints "listening on http://127.0.0.1:<port>"
#
require "tmpdir"
require "json"
require "securerandom"

# ---------------------------------------------------------------------------
# Configuration from the environment
# ---------------------------------------------------------------------------
module AppEnv
  DEFAULT_SECRET_KEY_BASE =
    "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6" \
    "e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
  AUTH_MODES = %w[session-key rails-authentication].freeze
  SERIALIZERS = %w[json message_pack marshal json_allow_marshal message_pack_allow_marshal hybrid].freeze
  SEED_USERS = [
    ["alice@example.com", "alice-password-1"],
    ["bob@example.com", "bob-password-2"],
  ].freeze

  module_function

  def str(name, default = nil)
    v = ENV[name]
    v.nil? || v.empty? ? default : v
  end

  def auth_mode
    @auth_mode ||= begin
      m = str("RAILS_AUTH", "session-key")
      abort "app.rb: RAILS_AUTH must be one of #{AUTH_MODES.join(', ')} (got #{m.inspect})" unless AUTH_MODES.include?(m)
      m
    end
  end

  def rails_authentication?
    auth_mode == "rails-authentication"
  end

  def serializer
    s = str("COOKIES_SERIALIZER", "json")
    abort "app.rb: COOKIES_SERIALIZER must be one of #{SERIALIZERS.join(', ')} (got #{s.inspect})" unless SERIALIZERS.include?(s)
    s.to_sym
  end

  # "all" / ":all" -> :all ; "a.test,b.test" -> array ; else the string verbatim
  def domain
    d = str("DOMAIN")
    return nil if d.nil?
    return :all if %w[all :all].include?(d)
    return d.split(",").map(&:strip) if d.include?(",")
    d
  end

  # --- server-side session store (SESSION_STORE, SESSION_STORE_URL, SESSION_STORE_NAMESPACE,
  # CACHE_FORMAT_VERSION) ---
  SESSION_STORES = %w[cookie_store cache_store].freeze
  CACHE_FORMAT_VERSIONS = { "7.0" => 7.0, "7.1" => 7.1 }.freeze

  def session_store
    @session_store ||= begin
      s = str("SESSION_STORE", "cookie_store")
      if s == "redis_store"
        abort "app.rb: SESSION_STORE=redis_store (redis-actionpack) exists only in interop/app (Rails 6.1); " \
              "use cache_store here"
      end
      abort "app.rb: SESSION_STORE must be one of #{SESSION_STORES.join(', ')} (got #{s.inspect})" unless SESSION_STORES.include?(s)
      s
    end
  end

  def session_store_uri
    @session_store_uri ||= begin
      require "uri"
      raw = str("SESSION_STORE_URL") or abort "app.rb: SESSION_STORE=#{session_store} needs SESSION_STORE_URL " \
                                                "(redis://127.0.0.1:PORT/DB or memcached://127.0.0.1:PORT)"
      uri = URI.parse(raw) rescue abort("app.rb: SESSION_STORE_URL is not a URL: #{raw.inspect}")
      unless %w[redis memcached].include?(uri.scheme) && uri.host
        abort "app.rb: SESSION_STORE_URL must be redis://HOST:PORT[/DB] or memcached://HOST:PORT (got #{raw.inspect})"
      end
      uri
    end
  end

  def session_store_namespace
    str("SESSION_STORE_NAMESPACE")
  end

  # SESSION_STORE_URL without a password, for /info
  def session_store_url_redacted
    u = session_store_uri.dup
    u.password = "***" if u.password
    u.to_s
  end

  # CACHE_FORMAT_VERSION=7.0|7.1 -> config.active_support.cache_format_version (unset: load_defaults 7.2's 7.1)
  def cache_format_version
    v = str("CACHE_FORMAT_VERSION")
    return nil if v.nil?
    CACHE_FORMAT_VERSIONS.fetch(v) { abort "app.rb: CACHE_FORMAT_VERSION must be 7.0 or 7.1 (got #{v.inspect})" }
  end

  # The ActiveSupport cache behind SESSION_STORE=cache_store; redis / dalli are required only here.
  # Must be called after Rails applied cache_format_version (the Bootstrap initializer :initialize_cache):
  # since 7.1 a store picks its entry coder (F70 or F71) when it is created.
  def build_session_cache
    uri = session_store_uri
    ns = session_store_namespace
    case uri.scheme
    when "redis"
      require "redis"
      require "active_support/cache/redis_cache_store"
      ActiveSupport::Cache::RedisCacheStore.new(url: uri.to_s, namespace: ns)
    when "memcached"
      require "dalli"
      require "active_support/cache/mem_cache_store"
      ActiveSupport::Cache::MemCacheStore.new("#{uri.host}:#{uri.port || 11211}", namespace: ns)
    end
  end
end

ENV["RAILS_ENV"] ||= "production"
ENV["SECRET_KEY_BASE"] = AppEnv.str("SECRET_KEY_BASE", AppEnv::DEFAULT_SECRET_KEY_BASE)

# Database: DATABASE_URL as given (sqlite3:/abs/path or postgres://...), else a temp
# sqlite file that is deleted at exit.
if AppEnv.str("DATABASE_URL").nil?
  db_path = File.join(Dir.tmpdir, "railbridge-app72-#{Process.pid}.sqlite3")
  ENV["DATABASE_URL"] = "sqlite3:#{db_path}?timeout=5000" # busy timeout: puma runs 5 threads
  main_pid = Process.pid
  at_exit do
    if Process.pid == main_pid
      [db_path, "#{db_path}-journal", "#{db_path}-wal", "#{db_path}-shm"].each do |f|
        File.delete(f) if File.exist?(f)
      end
    end
  end
end
DATABASE_URL = ENV["DATABASE_URL"]

require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"
require "bcrypt"

# Logger formatter: one line per message, and no FATAL backtrace for the CSRF failures
# the tests provoke on purpose.
class QuietFormatter < ::Logger::Formatter
  def tags_text
    ""
  end

  def call(severity, _time, _progname, msg)
    text = msg.is_a?(String) ? msg : msg.inspect
    return "" if text.include?("ActionController::InvalidAuthenticityToken")
    "[rails72-app] #{severity}: #{text}\n"
  end
end

class RailbridgeApp72 < Rails::Application
  config.load_defaults 7.2
  config.action_dispatch.cookies_serializer = AppEnv.serializer

  config.root = __dir__
  config.eager_load = false
  config.enable_reloading = false
  config.consider_all_requests_local = false
  config.hosts.clear
  config.secret_key_base = ENV["SECRET_KEY_BASE"]
  config.require_master_key = false
  config.public_file_server.enabled = false
  config.cache_store = :memory_store # backs rate_limit (AUTH_RATE_LIMIT)

  config.logger = ActiveSupport::Logger.new($stderr).tap { |l| l.formatter = QuietFormatter.new }
  config.log_level = AppEnv.str("RAILS_APP_LOG_LEVEL", "warn").to_sym
  config.active_support.deprecation = :silence
  config.active_support.report_deprecations = false
  config.active_record.migration_error = false
  config.active_record.dump_schema_after_migration = false

  session_opts = { key: AppEnv.str("SESSION_KEY", "_app_session") }
  session_opts[:domain] = AppEnv.domain if AppEnv.domain
  if (ea = AppEnv.str("SESSION_EXPIRE_AFTER"))
    session_opts[:expire_after] = Integer(ea)
  end
  # load_defaults 7.2 means cache_format_version 7.1 (entries "\x00\x11..." = F71); 7.0 gives F70.
  if (fv = AppEnv.cache_format_version)
    config.active_support.cache_format_version = fv
  end

  case AppEnv.session_store
  when "cookie_store"
    config.session_store :cookie_store, **session_opts
  when "cache_store"
    # The cookie holds only the bare 32-hex session id; the session lives in the cache under
    # "[NAMESPACE:]_session_id:2::<sha256 hex of the id>".  The store is built in an initializer, not
    # here: cache_format_version reaches ActiveSupport::Cache.format_version only in the Bootstrap
    # initializer :initialize_cache, and a store built before that would keep the library default (7.0,
    # i.e. F70) whatever the config says.  This runs before Finisher's :setup_default_session_store /
    # :build_middleware_stack, which read config.session_store.
    initializer "railbridge.session_cache_store", after: :initialize_cache do |app|
      cache = AppEnv.build_session_cache
      want = AppEnv.cache_format_version || 7.1
      if ActiveSupport::Cache.format_version != want
        abort "app.rb: ActiveSupport::Cache.format_version is #{ActiveSupport::Cache.format_version}, want #{want}"
      end
      app.config.session_store :cache_store, **session_opts, cache: cache
    end
  end
end

Rails.application.initialize!

# bcrypt cost for has_secure_password (4 = the minimum, so hashes look like "$2a$04$...").
BCrypt::Engine.cost = Integer(AppEnv.str("BCRYPT_COST", "4"))

# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------
Rails.application.routes.draw do
  root "home#index"
  get "/up", to: "home#up"
  get "/info", to: "home#info", defaults: { format: "json" }

  # what the generator adds: `resource :session` (new/create/destroy used)
  resource :session, only: %i[new create destroy]
  post "/session/destroy", to: "sessions#destroy", as: :session_destroy # curl convenience

  get "/whoami", to: "probe#whoami", defaults: { format: "json" }
  get "/csrf", to: "probe#csrf", defaults: { format: "json" }
  get "/counter", to: "probe#counter", defaults: { format: "json" }
  post "/counter", to: "probe#increment", defaults: { format: "json" }
  get "/session_value", to: "probe#session_value", defaults: { format: "json" }
  post "/protected", to: "probe#protected_action", defaults: { format: "json" }
end

# ---------------------------------------------------------------------------
# Database: schema + seed users (both idempotent, so an explicit DATABASE_URL survives
# restarts and can be shared between the two auth modes).
# ---------------------------------------------------------------------------
ActiveRecord::Base.with_connection do |c|
  c.create_table :users, if_not_exists: true do |t|
    t.string :email_address, null: false
    t.string :password_digest, null: false
    t.timestamps
  end
  c.add_index :users, :email_address, unique: true, if_not_exists: true
  c.create_table :sessions, if_not_exists: true do |t|
    t.references :user, null: false, foreign_key: true
    t.string :ip_address
    t.string :user_agent
    t.timestamps
  end
end

class ApplicationRecord < ActiveRecord::Base
  primary_abstract_class
end

class User < ApplicationRecord
  has_secure_password
  has_many :sessions, dependent: :destroy

  normalizes :email_address, with: ->(e) { e.strip.downcase }
end

class Session < ApplicationRecord
  belongs_to :user
end

# Like the generator's Current, plus `session_user` for the session-key mode (where there is
# no Session row to delegate to).
class Current < ActiveSupport::CurrentAttributes
  attribute :session, :session_user

  def user
    session ? session.user : session_user
  end
end

AppEnv::SEED_USERS.each do |email, password|
  next if User.exists?(email_address: email)
  begin
    User.create!(email_address: email, password: password)
  rescue ActiveRecord::RecordNotUnique
    # another app instance on the same database seeded it first
  end
end

# ---------------------------------------------------------------------------
# Authentication: two interchangeable concerns with the same interface
# (authenticated?, require_authentication, resume_session, start_new_session_for,
# terminate_session, after_authentication_url, allow_unauthenticated_access).
# ---------------------------------------------------------------------------
module AuthenticationCommon
  extend ActiveSupport::Concern

  included do
    before_action :require_authentication
    helper_method :authenticated?
  end

  class_methods do
    def allow_unauthenticated_access(**options)
      skip_before_action :require_authentication, **options
    end
  end

  private

  def authenticated?
    resume_session
  end

  def require_authentication
    resume_session || request_authentication
  end

  def request_authentication
    session[:return_to_after_authenticating] = request.url
    redirect_to new_session_path
  end

  def after_authentication_url
    session.delete(:return_to_after_authenticating) || root_url
  end
end

# RAILS_AUTH=rails-authentication: the behaviour of Rails 8.0/8.1's authentication
# generator (app/controllers/concerns/authentication.rb).
module RailsAuthentication
  extend ActiveSupport::Concern
  include AuthenticationCommon

  private

  def resume_session
    Current.session ||= find_session_by_cookie
  end

  def find_session_by_cookie
    Session.find_by(id: cookies.signed[:session_id]) if cookies.signed[:session_id]
  end

  def start_new_session_for(user)
    user.sessions.create!(user_agent: request.user_agent, ip_address: request.remote_ip).tap do |row|
      Current.session = row
      cookies.signed.permanent[:session_id] = { value: row.id, httponly: true, same_site: :lax }
    end
  end

  def terminate_session
    Current.session.destroy
    cookies.delete(:session_id)
  end
end

# RAILS_AUTH=session-key: the classic hand-rolled login, user id in the cookie session.
module SessionKeyAuthentication
  extend ActiveSupport::Concern
  include AuthenticationCommon

  private

  def resume_session
    Current.session_user ||= find_user_by_session
  end

  def find_user_by_session
    User.find_by(id: session[:user_id]) if session[:user_id]
  end

  def start_new_session_for(user)
    return_to = session[:return_to_after_authenticating]
    reset_session # new session id, drops the pre-login session (session fixation)
    session[:return_to_after_authenticating] = return_to if return_to
    session[:user_id] = user.id
    Current.session_user = user
  end

  def terminate_session
    reset_session
    Current.session_user = nil
  end
end

# ---------------------------------------------------------------------------
# Controllers
# ---------------------------------------------------------------------------
class ApplicationController < ActionController::Base
  protect_from_forgery with: :exception
  include(AppEnv.rails_authentication? ? RailsAuthentication : SessionKeyAuthentication)

  rescue_from ActionController::InvalidAuthenticityToken do |e|
    render json: { ok: false, error: e.class.name }, status: 422
  end
end

SIGN_IN_ERB = <<~ERB
  <!DOCTYPE html>
  <html>
  <head><title>Sign in</title><%= csrf_meta_tags %></head>
  <body>
  <% if flash[:alert] %><p id="alert"><%= flash[:alert] %></p><% end %>
  <% if flash[:notice] %><p id="notice"><%= flash[:notice] %></p><% end %>
  <%= form_with url: session_path do |form| %>
    <%= form.email_field :email_address, required: true, autofocus: true, autocomplete: "username", placeholder: "Enter your email address", value: params[:email_address] %>
    <%= form.password_field :password, required: true, autocomplete: "current-password", placeholder: "Enter your password", maxlength: 72 %>
    <%= form.submit "Sign in" %>
  <% end %>
  </body>
  </html>
ERB

HOME_ERB = <<~ERB
  <!DOCTYPE html>
  <html>
  <head><title>Home</title><%= csrf_meta_tags %></head>
  <body>
  <p>Signed in as <%= Current.user.email_address %></p>
  <%= button_to "Sign out", session_path, method: :delete %>
  </body>
  </html>
ERB

class SessionsController < ApplicationController
  allow_unauthenticated_access only: %i[new create]
  if (limit = AppEnv.str("AUTH_RATE_LIMIT")) # the generator's rate limit is opt-in here (tests sign in a lot)
    rate_limit to: Integer(limit), within: 3.minutes, only: :create,
               with: -> { redirect_to new_session_path, alert: "Try again later." }
  end

  def new
    render inline: SIGN_IN_ERB
  end

  def create
    if (user = User.authenticate_by(params.permit(:email_address, :password)))
      start_new_session_for user
      redirect_to after_authentication_url
    else
      redirect_to new_session_path, alert: "Try another email address or password."
    end
  end

  def destroy
    terminate_session
    redirect_to new_session_path, status: :see_other
  end
end

class HomeController < ApplicationController
  allow_unauthenticated_access only: %i[up info]

  # GET / -- requires authentication (redirects to /session/new like the generator's app)
  def index
    render inline: HOME_ERB
  end

  def up
    render plain: "ok"
  end

  def info
    opts = Rails.application.config.session_options
    render json: {
      rails: Rails.version,
      ruby: RUBY_VERSION,
      auth_mode: AppEnv.auth_mode,
      cookies_serializer: Rails.application.config.action_dispatch.cookies_serializer,
      session_key: opts[:key],
      session_options: opts.except(:key, :cache).transform_values { |v| v.respond_to?(:call) ? v.call(request) : v },
      session_store: AppEnv.session_store,
      session_store_class: Rails.application.config.session_store&.name,
      session_store_url: (AppEnv.session_store_url_redacted unless AppEnv.session_store == "cookie_store"),
      session_store_namespace: AppEnv.session_store_namespace,
      session_cache: opts[:cache]&.class&.name,
      cache_format_version: ActiveSupport::Cache.format_version.to_s,
      key_generator_hash_digest_class: Rails.application.config.active_support.key_generator_hash_digest_class&.name,
      use_authenticated_cookie_encryption: Rails.application.config.action_dispatch.use_authenticated_cookie_encryption,
      use_cookies_with_metadata: Rails.application.config.action_dispatch.use_cookies_with_metadata,
      use_message_serializer_for_metadata: ActiveSupport::Messages::Metadata.use_message_serializer_for_metadata,
      signed_cookie_digest: Rails.application.config.action_dispatch.signed_cookie_digest,
      per_form_csrf_tokens: ActionController::Base.per_form_csrf_tokens,
      database_adapter: ActiveRecord::Base.connection_db_config.adapter,
      database_url: DATABASE_URL.sub(%r{//[^@/]*@}, "//***@"),
      users: User.order(:id).pluck(:id, :email_address),
    }
  end
end

class ProbeController < ApplicationController
  allow_unauthenticated_access

  # GET /whoami.json -- the session as this request brought it in, then the user after
  # resume_session (Current.session / Current.user).
  def whoami
    snapshot = session.to_hash.deep_dup
    signed_session_id = cookies.signed[:session_id]
    resume_session
    user = Current.user
    render json: {
      auth_mode: AppEnv.auth_mode,
      user_id: user&.id,
      email_address: user&.email_address,
      session: snapshot,
      auth_session_id: Current.session&.id,
      signed_session_id_cookie: signed_session_id,
    }
  end

  # GET /csrf.json -- the masked global token, plus the raw token session["_csrf_token"] holds
  # after this response.  Since Rails 7.1 a new token lives in
  # request.env["action_controller.csrf_token"] during the request and is written to the session
  # only when the request ends (commit_csrf_token), so session["_csrf_token"] itself is still the
  # incoming value here: that one is reported as session_csrf_token_before.
  def csrf
    before = session["_csrf_token"]
    token = form_authenticity_token
    render json: {
      token: token,
      session_csrf_token: request.env[ActionController::RequestForgeryProtection::CSRF_TOKEN] || before,
      session_csrf_token_before: before,
    }
  end

  # GET /counter.json -- session["counter"] as Rails reads it (whatever type it is)
  def counter
    render json: { counter: session["counter"], class: session["counter"].class.name }
  end

  # GET /session_value.json?key=K -- one session value as this request brought it in (e.g. one a
  # Rust writer put into the store).  "class"/"inspect" show the Ruby type, which the JSON "value"
  # cannot (Symbol, Time, ... survive in Marshal-based stores).
  def session_value
    key = params[:key].to_s
    return render(json: { error: "key required" }, status: :bad_request) if key.empty?
    v = session[key]
    render json: { key: key, present: session.key?(key), value: v, class: v.class.name, inspect: v.inspect }
  end

  # POST /counter.json (CSRF) -- session["counter"] += 1
  def increment
    session["counter"] = session["counter"].to_i + 1
    render json: { counter: session["counter"] }
  end

  # POST /protected (CSRF) -- 200 {"ok":true}, or 422 via rescue_from
  def protected_action
    render json: { ok: true }
  end
end

# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------
if $PROGRAM_NAME == __FILE__
  require_relative "../lib/serve_app"
  RailbridgeServe.run(Rails.application)
end
