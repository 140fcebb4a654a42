# frozen_string_literal: true
#
# railbridge interop test app: a real single-file Rails 6.1 + Devise 4.8 application.
#
# The Rust test-suite signs in here (or reads/writes the session cookie this app
# issues) to prove that railbridge speaks the exact cookie/session/CSRF/Devise
# formats a real Rails app uses.  See README.md next to this file for the env
# variables and endpoints.  Uses only Debian's system gems (no bundler).
#
#   ruby interop/app/app.rb      # prints "listening on http://127.0.0.1:<port>"
#
require "tmpdir"
require "json"
require "openssl"
require "securerandom"

# ---------------------------------------------------------------------------
# Configuration from the environment (same names the Rust side uses)
# ---------------------------------------------------------------------------
module AppEnv
  DEFAULT_SECRET_KEY_BASE =
    "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6" \
    "e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
  PROFILES = %w[6.1 4.2 7.0 6.1-marshal].freeze

  module_function

  def str(name, default = nil)
    v = ENV[name]
    v.nil? || v.empty? ? default : v
  end

  def profile
    @profile ||= begin
      p = str("RAILS_PROFILE", "6.1")
      abort "app.rb: RAILS_PROFILE must be one of #{PROFILES.join(', ')} (got #{p.inspect})" unless PROFILES.include?(p)
      p
    end
  end

  def serializer
    s = str("COOKIES_SERIALIZER") || (profile == "6.1-marshal" ? "marshal" : "json")
    unless %w[json marshal hybrid].include?(s)
      abort "app.rb: COOKIES_SERIALIZER must be json, marshal or hybrid (got #{s.inspect})"
    end
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

  def kdf_digest
    profile == "7.0" ? "SHA256" : "SHA1"
  end

  # --- server-side session stores (SESSION_STORE, SESSION_STORE_URL, SESSION_STORE_NAMESPACE) ---
  SESSION_STORES = %w[cookie_store cache_store redis_store].freeze
  REDIS_STORE_DEFAULT_NAMESPACE = "rack:session" # redis-rack's own default

  def session_store
    @session_store ||= begin
      s = str("SESSION_STORE", "cookie_store")
      unless SESSION_STORES.include?(s)
        abort "app.rb: SESSION_STORE must be one of #{SESSION_STORES.join(', ')} (got #{s.inspect})"
      end
      s
    end
  end

  def session_store_uri
    @session_store_uri ||= begin
      require "uri"
      raw = str("SESSION_STORE_URL") or abort "app.rb: SESSION_STORE=#{session_store} needs SESSION_STORE_URL " \
                                                "(redis://127.0.0.1:PORT/DB or memcached://127.0.0.1:PORT)"
      uri = URI.parse(raw) rescue abort("app.rb: SESSION_STORE_URL is not a URL: #{raw.inspect}")
      ok = session_store == "redis_store" ? %w[redis] : %w[redis memcached]
      unless ok.include?(uri.scheme) && uri.host
        abort "app.rb: SESSION_STORE=#{session_store} needs SESSION_STORE_URL #{ok.map { |x| "#{x}://HOST:PORT" }.join(' or ')} " \
              "(got #{raw.inspect})"
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

  # The ActiveSupport cache behind SESSION_STORE=cache_store.  Its gem (redis / dalli) is
  # required only here, so the app runs without them for the other stores.
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

  # Loads redis-actionpack, fixing redis-rack < 2.1.3 (Debian bookworm: 2.1.2 with redis-store 1.9.0):
  # Rack::Session::Redis#write_session hands Rails' ActionDispatch::Request::Session::Options to
  # Redis::Store#set, and redis-store 1.9.0's Interface#set calls `options.key?`, which that class
  # lacks -> NoMethodError on every session write when there is no expire_after (with expire_after,
  # Ttl#set turns the write into SETEX before it gets there).  Upstream redis-store issue #336,
  # fixed in redis-rack 2.1.3 the same way: give the store a plain Hash.  The stored bytes and the
  # TTL are unchanged.
  module RedisRackOptionsFix
    def write_session(req, sid, new_session, options)
      options = options.to_hash if !options.respond_to?(:key?) && options.respond_to?(:to_hash)
      super(req, sid, new_session, options)
    end
  end

  def require_redis_actionpack
    require "redis-actionpack"
    if Gem::Version.new(Redis::Rack::VERSION) < Gem::Version.new("2.1.3")
      Rack::Session::Redis.prepend(RedisRackOptionsFix)
    end
  end

  # redis-actionpack's `servers:` entry: redis://[:pw@]host:port/DB/NAMESPACE
  def redis_store_server
    uri = session_store_uri
    db = uri.path.to_s.sub(%r{\A/}, "").split("/").first
    db = "0" if db.nil? || db.empty?
    auth = uri.userinfo ? "#{uri.userinfo}@" : ""
    "redis://#{auth}#{uri.host}:#{uri.port || 6379}/#{db}/#{session_store_namespace || REDIS_STORE_DEFAULT_NAMESPACE}"
  end
end

ENV["RAILS_ENV"] ||= "production"
ENV["SECRET_KEY_BASE"] = AppEnv.str("SECRET_KEY_BASE", AppEnv::DEFAULT_SECRET_KEY_BASE)

DB_PATH = AppEnv.str("RAILS_APP_DB") || File.join(Dir.tmpdir, "railbridge-app-#{Process.pid}.sqlite3")
DB_IS_TEMP = AppEnv.str("RAILS_APP_DB").nil?
ENV["DATABASE_URL"] = "sqlite3:#{File.expand_path(DB_PATH)}?timeout=5000" # busy timeout: puma runs 5 threads
if DB_IS_TEMP
  main_pid = Process.pid
  at_exit do
    if Process.pid == main_pid
      [DB_PATH, "#{DB_PATH}-journal", "#{DB_PATH}-wal", "#{DB_PATH}-shm"].each do |f|
        File.delete(f) if File.exist?(f)
      end
    end
  end
end

require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"
require "devise"

# Rails 7.0's `config.active_support.key_generator_hash_digest_class = OpenSSL::Digest::SHA256`
# (set by `load_defaults 7.0`).  Rails 6.1's ActiveSupport::KeyGenerator always uses
# PBKDF2-HMAC-SHA1 and silently ignores `hash_digest_class:`, so for RAILS_PROFILE=7.0 we
# swap in this generator: PBKDF2-HMAC-SHA256(secret_key_base, salt, 1000 iterations, len),
# memoised like ActiveSupport::CachingKeyGenerator.
class Sha256KeyGenerator
  def initialize(secret, iterations: 1000)
    @secret = secret
    @iterations = iterations
    @cache = Concurrent::Map.new
  end

  def generate_key(salt, key_size = 64)
    @cache.compute_if_absent("#{salt}|#{key_size}") do
      OpenSSL::PKCS5.pbkdf2_hmac(@secret, salt, @iterations, key_size, OpenSSL::Digest::SHA256.new)
    end
  end
end

# Logger formatter that drops the FATAL backtrace ActionDispatch prints for an expected
# CSRF failure (the tests provoke 422s on purpose); everything else is kept.
class QuietFormatter < ::Logger::Formatter
  def tags_text
    ""
  end

  def call(severity, time, progname, msg)
    text = msg.is_a?(String) ? msg : msg.inspect
    return "" if text.include?("ActionController::InvalidAuthenticityToken")
    "[rails-app] #{severity}: #{text}\n"
  end
end

class RailbridgeApp < Rails::Application
  case AppEnv.profile
  when "4.2"
    # No load_defaults: Rails 6.1's framework defaults are the pre-5.0 ones
    # (CBC+HMAC cookies, no purpose metadata, no per-form tokens, no origin check,
    # no SameSite).
    config.action_dispatch.use_authenticated_cookie_encryption = false
    config.action_dispatch.use_cookies_with_metadata = false
    config.action_controller.urlsafe_csrf_tokens = false
  else # "6.1", "6.1-marshal", "7.0"
    config.load_defaults "6.1"
  end
  config.autoloader = :zeitwerk
  config.action_dispatch.cookies_serializer = AppEnv.serializer

  config.root = __dir__
  config.paths["app/views"] = File.join(__dir__, "views")
  config.eager_load = false
  config.cache_classes = true
  config.consider_all_requests_local = false
  config.hosts.clear
  config.secret_key_base = ENV["SECRET_KEY_BASE"]
  config.require_master_key = false
  config.public_file_server.enabled = false

  config.logger = ActiveSupport::Logger.new($stderr).tap { |l| l.formatter = QuietFormatter.new }
  config.log_level = (AppEnv.str("RAILS_APP_LOG_LEVEL") || "warn").to_sym
  config.active_support.deprecation = :silence
  config.active_record.migration_error = false
  config.active_record.dump_schema_after_migration = false

  {
    "SESSION_ENCRYPTED_COOKIE_SALT" => :encrypted_cookie_salt,
    "SESSION_ENCRYPTED_SIGNED_COOKIE_SALT" => :encrypted_signed_cookie_salt,
    "SESSION_AUTHENTICATED_ENCRYPTED_COOKIE_SALT" => :authenticated_encrypted_cookie_salt,
    "SESSION_SIGNED_COOKIE_SALT" => :signed_cookie_salt,
  }.each do |env, key|
    v = AppEnv.str(env)
    config.action_dispatch.public_send("#{key}=", v) if v
  end

  session_opts = { key: AppEnv.str("SESSION_KEY", "_app_session") }
  session_opts[:domain] = AppEnv.domain if AppEnv.domain
  if (ea = AppEnv.str("SESSION_EXPIRE_AFTER"))
    session_opts[:expire_after] = Integer(ea)
  end
  case AppEnv.session_store
  when "cookie_store"
    config.session_store :cookie_store, **session_opts
  when "cache_store"
    # The cookie holds only the bare 32-hex session id; the session lives in the cache under
    # "[NAMESPACE:]_session_id:2::<sha256 hex of the id>".
    config.session_store :cache_store, **session_opts, cache: AppEnv.build_session_cache
  when "redis_store"
    # redis-actionpack (Debian ruby-redis-actionpack): key "NAMESPACE:2::<sha256 hex>", raw Marshal value.
    AppEnv.require_redis_actionpack
    config.session_store :redis_store, **session_opts, servers: [AppEnv.redis_store_server]
  end

  if AppEnv.profile == "7.0"
    # See Sha256KeyGenerator.  Both the cookie jars (env "action_dispatch.key_generator")
    # and message_verifier go through this method.
    def key_generator
      @sha256_key_generator ||= Sha256KeyGenerator.new(secret_key_base, iterations: 1000)
    end
  end
end

Devise.setup do |config|
  require "devise/orm/active_record"
  config.stretches = 4 # bcrypt minimum cost -> "$2a$04$..."
  config.timeout_in = Integer(AppEnv.str("DEVISE_TIMEOUT_IN", (30 * 60).to_s)).seconds
  config.sign_out_via = [:delete, :get]
  config.skip_session_storage = [:http_auth]
  config.mailer_sender = "noreply@example.com"
end

# Routing gotcha (single-file app): Devise configures Warden (strategies, serializers for
# the :user scope) and generates its URL helpers (session_path(:user), ...) exactly once,
# in the first RouteSet#finalize! it sees.  During initialize! the routes reloader clears
# every route set, loads routes files, then finalizes the engines' (empty) route sets
# BEFORE the app's -- so `devise_for` must already have run by then.  Routes drawn after
# initialize!, or in an `append` block (evaluated only by the app's own finalize!), leave
# Warden without the :user scope.  `prepend` blocks run in clear!, i.e. early enough.
# The User model is defined from that block because `devise_for` needs the class.
def define_user_model!
  return if Object.const_defined?(:User, false)
  Object.const_set(:User, Class.new(ActiveRecord::Base)) # named before `devise` runs
  User.class_eval do
    devise :database_authenticatable, :rememberable, :timeoutable
  end
end

RailbridgeApp.routes.prepend do
  define_user_model!
  devise_for :users
  root to: "home#index"
  get "/up", to: "home#up"
  get "/info", to: "home#info"
  # explicit `as:` names: a route named "session" would shadow Devise's session_path(:user)
  get "/session", to: "session#show", defaults: { format: "json" }, as: :app_session_snapshot
  post "/session/counter", to: "session#counter", as: :app_session_counter
  get "/session_value", to: "session#value", defaults: { format: "json" }, as: :app_session_value
  post "/session/set", to: "session#set", as: :app_session_set
  get "/csrf", to: "session#csrf", as: :app_csrf
  post "/users/password_change", to: "account#password"
  put "/account/password", to: "account#password"
  patch "/account/password", to: "account#password"
  post "/test/reset_password", to: "test_helpers#reset_password"
end

Rails.application.initialize!

# ---------------------------------------------------------------------------
# Database: create schema and seed users (idempotent, so an explicit RAILS_APP_DB
# survives restarts with the same users/bcrypt salts).
# ---------------------------------------------------------------------------
ActiveRecord::Migration.verbose = false
ActiveRecord::Schema.define do
  create_table :users, if_not_exists: true do |t|
    t.string :email, null: false, default: ""
    t.string :encrypted_password, null: false, default: ""
    t.datetime :remember_created_at
    t.timestamps null: false
  end
  add_index :users, :email, unique: true, if_not_exists: true
end

[
  [AppEnv.str("SEED_EMAIL", "user@example.com"), AppEnv.str("SEED_PASSWORD", "password123")],
  ["other@example.com", "password456"],
].each do |email, password|
  next if User.exists?(email: email)
  User.create!(email: email, password: password, password_confirmation: password)
end


# ---------------------------------------------------------------------------
# Controllers
# ---------------------------------------------------------------------------
class ApplicationController < ActionController::Base
  protect_from_forgery with: :exception

  if AppEnv.profile == "7.0"
    # Rails 7.0 stores SecureRandom.urlsafe_base64(32) = 43 chars without "=" padding
    # (6.1 with urlsafe_csrf_tokens keeps the padding, a 6.1 quirk).
    def generate_csrf_token
      SecureRandom.urlsafe_base64(ActionController::RequestForgeryProtection::AUTHENTICITY_TOKEN_LENGTH)
    end
  end
end

class HomeController < ApplicationController
  def index
    render :index
  end

  def up
    render plain: "ok"
  end

  def info
    render json: {
      profile: AppEnv.profile,
      rails: Rails.version,
      devise: (require("devise/version") && Devise::VERSION),
      cookies_serializer: Rails.application.config.action_dispatch.cookies_serializer,
      kdf_digest: AppEnv.kdf_digest,
      session_key: Rails.application.config.session_options[:key],
      session_options: Rails.application.config.session_options.except(:key, :cache),
      session_store: AppEnv.session_store,
      session_store_class: Rails.application.config.session_store&.name,
      session_store_url: (AppEnv.session_store_url_redacted unless AppEnv.session_store == "cookie_store"),
      session_store_namespace: AppEnv.session_store_namespace,
      session_cache: Rails.application.config.session_options[:cache]&.class&.name,
      use_authenticated_cookie_encryption: Rails.application.config.action_dispatch.use_authenticated_cookie_encryption,
      use_cookies_with_metadata: Rails.application.config.action_dispatch.use_cookies_with_metadata,
      urlsafe_csrf_tokens: ActionController::Base.urlsafe_csrf_tokens,
      per_form_csrf_tokens: ActionController::Base.per_form_csrf_tokens,
      salts: %i[authenticated_encrypted_cookie_salt encrypted_cookie_salt encrypted_signed_cookie_salt signed_cookie_salt]
        .to_h { |k| [k, Rails.application.config.action_dispatch.public_send(k)] },
      timeout_in: Devise.timeout_in.to_i,
      test_helpers: ENV["RAILS_TEST_HELPERS"] == "1",
      db: DB_PATH,
    }
  end
end

class SessionController < ApplicationController
  # GET /session.json -- snapshot the decoded session BEFORE asking Warden for the user
  # (Devise :timeoutable rewrites warden.user.user.session.last_request_at, and a failed
  # salt check deletes warden.user.user.key, on the same request).
  # ?skip_user=1 skips the Warden lookup entirely.
  def show
    snapshot = session.to_hash.deep_dup
    user = nil
    warden_error = nil
    unless params[:skip_user].present?
      thrown = catch(:warden) do
        user = current_user
        nil
      end
      if thrown
        warden_error = thrown.is_a?(Hash) ? thrown[:message].to_s : thrown.to_s
        user = nil
      end
    end
    body = { session: snapshot, current_user_id: user&.id, user_signed_in: !user.nil? }
    body[:current_user_email] = user&.email
    body[:warden_error] = warden_error if warden_error
    render json: body
  end

  # GET /session_value.json?key=K -- one session value as this request brought it in (e.g. one a
  # Rust writer put into a server-side store).  "class"/"inspect" show the Ruby type, which the
  # JSON "value" cannot (Symbol, Time, ... survive in Marshal stores).
  def value
    key = params[:key].to_s
    return render(json: { error: "key required" }, status: :bad_request) if key.empty?
    v = session[key]
    render json: { key: key, present: session.key?(key), value: v, class: v.class.name, inspect: v.inspect }
  end

  # POST /session/counter (CSRF-protected)
  def counter
    session["counter"] = session["counter"].to_i + 1
    render json: { counter: session["counter"] }
  end

  # POST /session/set (CSRF-protected); key + value, form or JSON body.  A JSON body may give
  # any JSON value (stored as plain Hash/Array/String/Integer/Float/true/false); value
  # null (or missing) deletes the key.
  def set
    key = params[:key].to_s
    return render(json: { error: "key required" }, status: :bad_request) if key.empty?
    value =
      if request.media_type == "application/json"
        # raw body: Rails' deep_munge would turn [1, null] into [1]; keep JSON exact
        JSON.parse(request.raw_post)["value"]
      else
        params[:value]
      end
    value = value.to_unsafe_h.to_hash if value.is_a?(ActionController::Parameters)
    if value.nil?
      session.delete(key)
    else
      session[key] = value
    end
    render json: { key: key, value: value }
  end

  # GET /csrf -- masked global token + the raw stored session["_csrf_token"]
  def csrf
    token = form_authenticity_token
    render json: { token: token, session_csrf_token: session["_csrf_token"] }
  end
end

class AccountController < ApplicationController
  before_action :authenticate_user!

  # POST /users/password_change or PUT/PATCH /account/password (CSRF + auth).
  # Like a typical app that forgets bypass_sign_in: the session's stored salt no longer
  # matches, so this and every other session of the user is signed out on the next request.
  def password
    pw = params[:password].to_s
    return render(json: { error: "password required" }, status: :unprocessable_entity) if pw.empty?
    current_user.update!(password: pw, password_confirmation: params[:password_confirmation].presence || pw)
    render json: { ok: true, user_id: current_user.id }
  end
end

class TestHelpersController < ApplicationController
  skip_forgery_protection

  # POST /test/reset_password email=..&password=.. (only with RAILS_TEST_HELPERS=1)
  def reset_password
    return head(:not_found) unless ENV["RAILS_TEST_HELPERS"] == "1"
    user = User.find_by(email: params[:email].to_s)
    return render(json: { error: "no such user" }, status: :not_found) unless user
    pw = params[:password].to_s
    return render(json: { error: "password required" }, status: :unprocessable_entity) if pw.empty?
    user.update!(password: pw, password_confirmation: pw)
    render json: { ok: true, user_id: user.id, authenticatable_salt: user.authenticatable_salt }
  end
end

# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------
if $PROGRAM_NAME == __FILE__
  require_relative "../lib/serve_app"
  RailbridgeServe.run(Rails.application)
end
