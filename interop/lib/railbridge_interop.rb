# frozen_string_literal: true

# Shared code for the Ruby side of railbridge's interop tests: runs the REAL Rails cookie jars
# (ActionDispatch::Cookies from the installed Rails: 6.1.7.10 on the host, 7.2.x inside the Debian trixie root
# made by interop/trixie/setup.sh) to write and read session cookies. The profile table depends on the Rails that
# runs: 6.1 reproduces 4.2 ... 7.0 by configuration (PROFILES_6_1), 7.2 runs its own defaults (PROFILES_7_2).
#
# No cookie crypto is reimplemented here. Every value is produced/consumed by
# ActionDispatch::Cookies::{Encrypted,Signed}KeyRotatingCookieJar through a request env that carries the
# same `action_dispatch.*` keys a booted Rails application puts into `Rails.application.env_config`.
# The only exceptions, each marked below:
#   * Sha256KeyGenerator  - Rails 7.0's KeyGenerator with key_generator_hash_digest_class = SHA256
#                           (6.1's KeyGenerator cannot do it).
#   * LegacyKeyGenerator  - Rails 4.2's LegacyKeyGenerator (returns the raw secret_token).
#   * cookies_digest      - Rails 4.2-5.1 used cookies_digest for the CBC encryptor; 6.1 ignores it for the
#                           primary encryptor, so the jar's encryptor is swapped for one with that digest.
# Under Rails 7.1+ none of these is used: the key generator is Rails' own KeyGenerator with hash_digest_class.

require "active_support/all" # a booted Rails app loads all of ActiveSupport (config.active_support.bare = false)
require "action_dispatch"
require "action_dispatch/middleware/cookies"
require "action_dispatch/middleware/session/cookie_store"
require "active_support/messages/rotation_configuration"
require "rack/mock"
require "openssl"
require "set"
require "json"
require "time"
if ActionPack.version >= Gem::Version.new("7.1")
  # A 7.1+ app with cookies_serializer = :message_pack loads this (SerializerWithFallback[:message_pack]); loading
  # it up front also brings BigDecimal, Date, IPAddr, Pathname and URI for the tagged JSON "$packed" form.
  require "active_support/message_pack"
end
require_relative "tagged_json"

# A Struct used by the Marshal vectors (must be defined for Marshal.load / TaggedJSON.load).
Point = Struct.new(:x, :y) unless defined?(Point)

module RailbridgeInterop
  RAILS_VERSION = ActionPack.version.to_s
  # Rails 7.1+ cookie jars (SerializerWithFallback, Rack 3 responses, 7.x KeyGenerator).
  MODERN = ActionPack.version >= Gem::Version.new("7.1")
  SECRET_KEY_BASE = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"
  OTHER_SECRET_KEY_BASE = "f" * 128
  SECRET_TOKEN = "legacy-secret-token-0123456789abcdef0123456789abcdef"
  SESSION_ID = "0123456789abcdef0123456789abcdef"
  ITERATIONS = 1000
  NOW = Time.utc(2026, 1, 1, 0, 0, 0)

  DEFAULT_SALTS = {
    "encrypted_cookie_salt" => "encrypted cookie",
    "encrypted_signed_cookie_salt" => "signed encrypted cookie",
    "authenticated_encrypted_cookie_salt" => "authenticated encrypted cookie",
    "signed_cookie_salt" => "signed cookie",
  }.freeze

  # ------------------------------------------------------------------ key generators

  # Reproduces Rails 7.0+'s ActiveSupport::KeyGenerator with
  # `config.active_support.key_generator_hash_digest_class = OpenSSL::Digest::SHA256` (load_defaults 7.0):
  #   OpenSSL::PKCS5.pbkdf2_hmac(secret, salt, iterations, key_size, hash_digest_class.new)
  # Rails 6.1's KeyGenerator silently ignores hash_digest_class and always uses SHA1, hence this object.
  # It is wrapped in ActiveSupport::CachingKeyGenerator exactly like Rails.application.key_generator.
  class Sha256KeyGenerator
    def initialize(secret, iterations: ITERATIONS)
      @secret = secret
      @iterations = iterations
    end

    def generate_key(salt, key_size = 64)
      OpenSSL::PKCS5.pbkdf2_hmac(@secret, salt, @iterations, key_size, OpenSSL::Digest::SHA256.new)
    end
  end

  # Rails 4.2's ActiveSupport::LegacyKeyGenerator (app with secret_token and no secret_key_base):
  # generate_key ignores the salt and returns the raw secret_token.
  class LegacyKeyGenerator
    def initialize(secret)
      @secret = secret
    end

    def generate_key(_salt, _key_size = nil)
      @secret
    end
  end

  def self.key_generator(cfg)
    if cfg["secret_key_base"].nil? || cfg["secret_key_base"].empty?
      raise ArgumentError, "need secret_key_base or secret_token" unless cfg["secret_token"]
      return LegacyKeyGenerator.new(cfg["secret_token"])
    end
    iterations = cfg["iterations"] || ITERATIONS
    digest = (cfg["key_generator_hash_digest_class"] || "SHA1").to_s.sub(/\AOpenSSL::Digest::/, "")
    if MODERN
      # Rails 7.x's own KeyGenerator; a booted app sets the class-wide hash_digest_class from
      # config.active_support.key_generator_hash_digest_class (load_defaults 7.0: SHA256). Passing it per instance
      # is the same computation without changing global state.
      klass = { "SHA1" => OpenSSL::Digest::SHA1, "SHA256" => OpenSSL::Digest::SHA256 }.fetch(digest) do
        raise ArgumentError, "key_generator_hash_digest_class must be SHA1 or SHA256"
      end
      return ActiveSupport::CachingKeyGenerator.new(
        ActiveSupport::KeyGenerator.new(cfg["secret_key_base"], iterations: iterations, hash_digest_class: klass)
      )
    end
    case digest
    when "SHA1"
      ActiveSupport::CachingKeyGenerator.new(ActiveSupport::KeyGenerator.new(cfg["secret_key_base"], iterations: iterations))
    when "SHA256"
      ActiveSupport::CachingKeyGenerator.new(Sha256KeyGenerator.new(cfg["secret_key_base"], iterations: iterations))
    else
      raise ArgumentError, "key_generator_hash_digest_class must be SHA1 or SHA256"
    end
  end

  # Raw derived keys through Rails' own KeyGenerator (SHA1) or the 7.0 one above (SHA256).
  def self.derive(secret_key_base, digest, salt, len)
    key_generator({ "secret_key_base" => secret_key_base, "key_generator_hash_digest_class" => digest })
      .generate_key(salt, len)
  end

  # ------------------------------------------------------------------ profiles

  BASE = {
    "secret_key_base" => SECRET_KEY_BASE,
    "cookie_name" => "_app_session",
    "kind" => "encrypted",
    "encrypted_cookie_cipher" => nil,
    "key_generator_hash_digest_class" => "SHA1",
    "iterations" => ITERATIONS,
    "use_authenticated_cookie_encryption" => true,
    "use_cookies_with_metadata" => true,
    "cookies_serializer" => "json",
    **DEFAULT_SALTS,
    "cookies_digest" => nil,
    "signed_cookie_digest" => nil,
    "rotations" => [],
    "secret_token" => nil,
    # internal (not Rails settings): whether this profile's Rails version wrote an exp envelope when the
    # cookie had :expires (4.2-5.1 never did; 6.1's jar always does, so 4.2 profiles skip expiry cases).
    "_expiry_metadata" => true,
  }.freeze

  # Rails 4.2 shape. A 4.2 app has no authenticated_encrypted_cookie_salt setting; leaving it nil also
  # turns off 6.1's "prepare_upgrade" GCM rotation, which a 4.2 app would not have. With
  # use_authenticated_cookie_encryption=false and use_cookies_with_metadata=false, Rails 6.1's jar writes
  # the same bytes as 4.2's EncryptedCookieJar (AES-256-CBC + HMAC-SHA1, no envelope) - spec T1/T2.
  RAILS_4_2 = BASE.merge(
    "use_authenticated_cookie_encryption" => false,
    "use_cookies_with_metadata" => false,
    "authenticated_encrypted_cookie_salt" => nil,
    "_expiry_metadata" => false,
  ).freeze

  def self.sha1_rotation_key
    derive(SECRET_KEY_BASE, "SHA1", "authenticated encrypted cookie", 32)
  end

  # Profiles run by Rails 6.1 (each configured as the Rails version it stands for).
  PROFILES_6_1 = {
    "rails_4_2_json" => RAILS_4_2.merge(
      "_description" => "Rails 4.2 default shape: AES-256-CBC + HMAC-SHA1, no metadata, JSON (6.1 with use_authenticated_cookie_encryption=false, use_cookies_with_metadata=false writes identical bytes)",
    ),
    "rails_4_2_marshal" => RAILS_4_2.merge(
      "cookies_serializer" => "marshal",
      "_description" => "Rails 4.2: AES-256-CBC + HMAC-SHA1, no metadata, Marshal",
    ),
    "rails_4_2_hybrid" => RAILS_4_2.merge(
      "cookies_serializer" => "hybrid",
      "_description" => "Rails 4.2: AES-256-CBC + HMAC-SHA1, no metadata, :hybrid (writes JSON, reads Marshal and rewrites it as JSON)",
    ),
    "rails_5_2_json" => BASE.merge(
      "use_cookies_with_metadata" => false,
      "_description" => "Rails 5.2 defaults: AES-256-GCM, no purpose; an {exp, pur:null} envelope only when the cookie has :expires; JSON",
    ),
    "rails_6_1_json" => BASE.merge(
      "_description" => "Rails 6.1 defaults: AES-256-GCM, purpose metadata, JSON",
    ),
    "rails_6_1_marshal" => BASE.merge(
      "cookies_serializer" => "marshal",
      "_description" => "Rails 6.1 defaults with cookies_serializer = :marshal: AES-256-GCM, purpose metadata, Marshal (reads JSON too)",
    ),
    "rails_7_0_json" => BASE.merge(
      "key_generator_hash_digest_class" => "SHA256",
      "_description" => "Rails 7.0 defaults: PBKDF2-HMAC-SHA256 key derivation, AES-256-GCM, purpose metadata, JSON",
    ),
    "rotation_sha1_to_sha256" => BASE.merge(
      "key_generator_hash_digest_class" => "SHA256",
      "rotations" => [{ "kind" => "encrypted", "key_hex" => :sha1_auth_key, "cipher" => "aes-256-gcm" }],
      "_description" => "Rails 7.0 SHA256 KDF with the upgrade-guide rotation: cookies_rotations.rotate :encrypted, <SHA1-derived 'authenticated encrypted cookie' key>; SHA1 cookies are accepted and rewritten",
    ),
    "custom_salts" => BASE.merge(
      "authenticated_encrypted_cookie_salt" => "my auth salt",
      "encrypted_cookie_salt" => "my encrypted salt",
      "encrypted_signed_cookie_salt" => "my signed encrypted salt",
      "signed_cookie_salt" => "my signed salt",
      "_description" => "Rails 6.1 GCM + purpose, JSON, non-default salts",
    ),
    "custom_salts_cbc" => BASE.merge(
      "use_authenticated_cookie_encryption" => false,
      "authenticated_encrypted_cookie_salt" => "my auth salt",
      "encrypted_cookie_salt" => "my encrypted salt",
      "encrypted_signed_cookie_salt" => "my signed encrypted salt",
      "signed_cookie_salt" => "my signed salt",
      "_description" => "Rails 6.1 with use_authenticated_cookie_encryption=false: AES-256-CBC + HMAC-SHA1, purpose metadata, JSON, non-default salts",
    ),
    "signed_6_1" => BASE.merge(
      "kind" => "signed",
      "_description" => "Rails 6.1 signed cookies (cookies.signed): HMAC-SHA1, purpose metadata, JSON",
    ),
    "signed_sha256_digest" => BASE.merge(
      "kind" => "signed",
      "use_cookies_with_metadata" => false,
      "signed_cookie_digest" => "SHA256",
      "_description" => "Rails 6.1 signed cookies with signed_cookie_digest = SHA256, no metadata, JSON",
    ),
    "legacy_secret_token" => RAILS_4_2.merge(
      "kind" => "signed",
      "secret_key_base" => nil,
      "secret_token" => SECRET_TOKEN,
      "key_generator_hash_digest_class" => nil,
      "encrypted_cookie_salt" => nil,
      "encrypted_signed_cookie_salt" => nil,
      "cookies_serializer" => "marshal",
      "_description" => "Rails 3.2/4.0 signed session (secret_token, no secret_key_base): base64(Marshal)--HMAC-SHA1(raw secret_token). Written by 6.1's signed jar with Rails 4.2's LegacyKeyGenerator, checked equal to ActiveSupport::MessageVerifier.new(secret_token, digest: 'SHA1', serializer: Marshal)",
    ),
    "cbc_sha256_digest" => RAILS_4_2.merge(
      "cookies_digest" => "SHA256",
      "_description" => "Rails 4.2-5.1 with cookies_digest = SHA256: AES-256-CBC + HMAC-SHA256, no metadata, JSON. 6.1 ignores cookies_digest for the primary encryptor, so the jar's encryptor is replaced by MessageEncryptor.new(enc, hmac, cipher: 'aes-256-cbc', digest: 'SHA256', serializer: NullSerializer) = 4.2's EncryptedCookieJar",
    ),
  }.freeze

  # Profiles run by real Rails 7.2 (interop/trixie/run.sh): a new 7.2 app's cookie settings
  # (config.load_defaults 7.2: PBKDF2-HMAC-SHA256 keys, AES-256-GCM, purpose metadata, SameSite=Lax).
  BASE_7_2 = BASE.merge("key_generator_hash_digest_class" => "SHA256").freeze

  PROFILES_7_2 = {
    "rails_7_2_json" => BASE_7_2.merge(
      "_description" => "Rails 7.2 (load_defaults 7.2, cookies_serializer = :json): PBKDF2-HMAC-SHA256 keys, AES-256-GCM, purpose metadata, JSON; MessagePack cookies are read and rewritten, Marshal cookies read as nil",
    ),
    "rails_7_2_json_allow_marshal" => BASE_7_2.merge(
      "cookies_serializer" => "json_allow_marshal",
      "_description" => "Rails 7.2 with cookies_serializer = :json_allow_marshal: writes JSON, reads Marshal and MessagePack cookies and rewrites them as JSON",
    ),
    "rails_7_2_marshal" => BASE_7_2.merge(
      "cookies_serializer" => "marshal",
      "_description" => "Rails 7.2 with cookies_serializer = :marshal: writes Marshal, reads JSON and MessagePack cookies too (never rewritten)",
    ),
    "rails_7_2_message_pack" => BASE_7_2.merge(
      "cookies_serializer" => "message_pack",
      "_description" => "Rails 7.2 with cookies_serializer = :message_pack (msgpack gem): writes CC 80 + MessagePack with ActiveSupport's extension types, reads JSON cookies (rewritten), Marshal cookies read as nil",
    ),
    "rails_7_2_short_secret" => BASE_7_2.merge(
      "secret_key_base" => "0123456789abcdef01234567",
      "_description" => "Rails 7.2 (load_defaults 7.2, :json) with a 24-byte secret_key_base: Rails requires only a non-empty String (Rails::Application#validate_secret_key_base), so such apps exist and their cookies must be read",
    ),
    "rails_7_2_signed_session_id" => BASE_7_2.merge(
      "kind" => "signed",
      "cookie_name" => "session_id",
      "_description" => "Rails 7.2 signed jar as Rails 8's authentication generator uses it: cookies.signed.permanent[:session_id] = id (purpose cookie.session_id, 20-year exp), HMAC-SHA1 with the SHA256-derived 'signed cookie' key, JSON",
    ),
  }.freeze

  PROFILES = MODERN ? PROFILES_7_2 : PROFILES_6_1

  CONFIG_KEYS = %w[
    secret_key_base encrypted_cookie_salt encrypted_signed_cookie_salt authenticated_encrypted_cookie_salt
    signed_cookie_salt cookies_serializer use_authenticated_cookie_encryption use_cookies_with_metadata
    cookies_digest signed_cookie_digest key_generator_hash_digest_class encrypted_cookie_cipher iterations
    rotations secret_token cookie_name kind cipher
  ].freeze

  # Resolve a profile name (+ optional per-request overrides using Rails setting names) to a config hash.
  def self.profile(name, overrides = nil)
    base = PROFILES[name] or raise ArgumentError, "unknown profile #{name.inspect} (known: #{PROFILES.keys.join(', ')})"
    cfg = base.dup
    (overrides || {}).each do |k, v|
      k = k.to_s
      raise ArgumentError, "unknown config key #{k}" unless CONFIG_KEYS.include?(k)
      next if k == "cipher" # derived; accepted so a vector file's config can be passed back verbatim
      cfg[k] = v
    end
    cfg["rotations"] = resolve_rotations(cfg["rotations"] || [])
    cfg
  end

  def self.resolve_rotations(rots)
    rots.map do |r|
      r = r.transform_keys(&:to_s)
      r["key_hex"] = sha1_rotation_key.unpack1("H*") if r["key_hex"] == :sha1_auth_key
      r
    end
  end

  def self.primary_cipher(cfg)
    return nil unless cfg["kind"] == "encrypted"
    cfg["use_authenticated_cookie_encryption"] ? (cfg["encrypted_cookie_cipher"] || "aes-256-gcm") : "aes-256-cbc"
  end

  # The "config" object written into vector files.
  def self.public_config(cfg)
    {
      "secret_key_base" => cfg["secret_key_base"],
      "cookie_name" => cfg["cookie_name"],
      "kind" => cfg["kind"],
      "cipher" => primary_cipher(cfg),
      "key_generator_hash_digest_class" => cfg["key_generator_hash_digest_class"],
      "iterations" => cfg["secret_key_base"] ? cfg["iterations"] : nil,
      "use_authenticated_cookie_encryption" => cfg["use_authenticated_cookie_encryption"],
      "use_cookies_with_metadata" => cfg["use_cookies_with_metadata"],
      "cookies_serializer" => cfg["cookies_serializer"],
      "encrypted_cookie_salt" => cfg["encrypted_cookie_salt"],
      "encrypted_signed_cookie_salt" => cfg["encrypted_signed_cookie_salt"],
      "authenticated_encrypted_cookie_salt" => cfg["authenticated_encrypted_cookie_salt"],
      "signed_cookie_salt" => cfg["signed_cookie_salt"],
      "cookies_digest" => cfg["cookies_digest"],
      "signed_cookie_digest" => cfg["signed_cookie_digest"],
      "rotations" => cfg["rotations"],
      "secret_token" => cfg["secret_token"],
    }
  end

  # ------------------------------------------------------------------ request env (as a booted app builds it)

  if MODERN
    # What a booted 7.2 app with load_defaults 7.2 sets globally and the cookie path can see:
    # config.active_support.use_message_serializer_for_metadata = true (7.1 default; cookie jars use
    # NullSerializer, so their envelope stays {"_rails":{"message":...}}) and config.time_zone = "UTC"
    # (Time.current is a TimeWithZone; PermanentCookieJar's 20.years.from_now uses it).
    ActiveSupport::Messages::Metadata.use_message_serializer_for_metadata = true
    Time.zone_default = Time.find_zone!("UTC")
  end

  SAME_SITE_LAX = proc { :lax } # load_defaults 6.1: cookies_same_site_protection = :lax

  def self.rotation_config(cfg)
    rc = ActiveSupport::Messages::RotationConfiguration.new
    cfg["rotations"].each do |r|
      key = [r["key_hex"]].pack("H*")
      opts = {}
      opts[:cipher] = r["cipher"] if r["cipher"]
      opts[:digest] = r["digest"] if r["digest"]
      case r["kind"]
      when "encrypted"
        if r["sign_key_hex"]
          rc.rotate :encrypted, key, [r["sign_key_hex"]].pack("H*"), **opts
        else
          rc.rotate :encrypted, key, **opts
        end
      when "signed"
        rc.rotate :signed, key, **opts
      else
        raise ArgumentError, "rotation kind must be encrypted or signed"
      end
    end
    rc
  end

  def self.serializer_setting(v)
    v.nil? ? nil : v.to_s.to_sym
  end

  # Rails.application.env_config (railties 6.1 Application#env_config), cookie-related keys.
  def self.env_config(cfg)
    {
      "action_dispatch.parameter_filter" => [],
      "action_dispatch.secret_key_base" => cfg["secret_key_base"],
      "action_dispatch.key_generator" => key_generator(cfg),
      "action_dispatch.signed_cookie_salt" => cfg["signed_cookie_salt"],
      "action_dispatch.encrypted_cookie_salt" => cfg["encrypted_cookie_salt"],
      "action_dispatch.encrypted_signed_cookie_salt" => cfg["encrypted_signed_cookie_salt"],
      "action_dispatch.authenticated_encrypted_cookie_salt" => cfg["authenticated_encrypted_cookie_salt"],
      "action_dispatch.use_authenticated_cookie_encryption" => cfg["use_authenticated_cookie_encryption"],
      "action_dispatch.encrypted_cookie_cipher" => cfg["encrypted_cookie_cipher"],
      "action_dispatch.signed_cookie_digest" => cfg["signed_cookie_digest"],
      "action_dispatch.cookies_serializer" => serializer_setting(cfg["cookies_serializer"]),
      "action_dispatch.cookies_digest" => cfg["cookies_digest"],
      "action_dispatch.cookies_rotations" => rotation_config(cfg),
      "action_dispatch.cookies_same_site_protection" => SAME_SITE_LAX,
      "action_dispatch.use_cookies_with_metadata" => cfg["use_cookies_with_metadata"],
    }
  end

  # cookie_header: the raw Cookie request header (e.g. "_app_session=abc%2B..."), or nil.
  def self.build_request(cfg, cookie_header: nil)
    extra = {}
    extra["HTTP_COOKIE"] = cookie_header if cookie_header
    env = Rack::MockRequest.env_for("http://example.com/", extra)
    env.merge!(env_config(cfg))
    ActionDispatch::Request.new(env)
  end

  # The jar the session store / app would use for this profile's kind.
  def self.jar_for(req, cfg)
    jar = req.cookie_jar
    sub = cfg["kind"] == "signed" ? jar.signed : jar.encrypted
    if cfg["kind"] == "encrypted" && cfg["cookies_digest"] && !cfg["use_authenticated_cookie_encryption"]
      # Rails 4.2-5.1: the CBC EncryptedCookieJar used digest = cookies_digest. 6.1's primary CBC encryptor is
      # always SHA1, so swap in the 4.2 encryptor (same keys, same jar code around it).
      kg = req.key_generator
      secret = kg.generate_key(req.encrypted_cookie_salt, ActiveSupport::MessageEncryptor.key_len("aes-256-cbc"))
      sign_secret = kg.generate_key(req.encrypted_signed_cookie_salt)
      sub.instance_variable_set(:@encryptor, ActiveSupport::MessageEncryptor.new(
        secret, sign_secret, cipher: "aes-256-cbc", digest: cfg["cookies_digest"],
                             serializer: ActiveSupport::MessageEncryptor::NullSerializer
      ))
    end
    sub
  end

  # ------------------------------------------------------------------ determinism / observation hooks

  module FixedIV
    def random_iv
      if Thread.current[:railbridge_fixed_iv]
        iv = (0...iv_len).map(&:chr).join.b
        self.iv = iv
        iv
      else
        super
      end
    end

    # Observe the bytes that get encrypted (plaintext_hex); no behaviour change.
    def update(data, *rest)
      rec = Thread.current[:railbridge_recorder]
      rec[:cipher_input] << data.dup if rec && rec[:encrypting]
      super
    end

    def encrypt(*args)
      rec = Thread.current[:railbridge_recorder]
      rec[:encrypting] = true if rec
      super
    end

    def decrypt(*args)
      rec = Thread.current[:railbridge_recorder]
      rec[:encrypting] = false if rec
      super
    end
  end
  OpenSSL::Cipher.prepend(FixedIV)

  # Observe what MessageVerifier#generate base64-encodes (signed jar plaintext); no behaviour change.
  # (7.1+ also base64-encodes the inner "message" of the envelope through the same method, first; the signed
  # plaintext is then the LAST input.)
  module VerifierObserver
    private

    if MODERN
      def encode(data, **kw)
        rec = Thread.current[:railbridge_recorder]
        rec[:verifier_input] << data.dup if rec
        super
      end
    else
      def encode(data)
        rec = Thread.current[:railbridge_recorder]
        rec[:verifier_input] << data.dup if rec
        super
      end
    end
  end
  ActiveSupport::MessageVerifier.prepend(VerifierObserver)

  if MODERN
    # Rails 7.1+: SerializedCookieJars#commit serializes (serializer.dump) and #parse deserializes. Observe the
    # serialized session (payload_hex) and the payload the jar reads (its format decides the tagged JSON form);
    # `with_payload_override` replaces the serialized bytes before the jar signs/encrypts them (hand-built
    # payloads such as MessagePack ext type 127; the crypto stays the jar's).
    module SerializeObserver
      private

      def commit(name, options)
        super
        rec = Thread.current[:railbridge_recorder]
        override = Thread.current[:railbridge_payload_override]
        options[:value] = override.dup if override
        rec[:payload] << options[:value].dup if rec
      end

      def parse(name, dumped, **kw)
        rec = Thread.current[:railbridge_read_recorder]
        rec[:dumped] = dumped.dup if rec && dumped
        super
      end
    end
    ActionDispatch::Cookies::SerializedCookieJars.prepend(SerializeObserver)
  else
    # Observe the serialized session (payload_hex) as the jar produces it; no behaviour change.
    module SerializeObserver
      protected

      def serialize(value)
        out = super
        rec = Thread.current[:railbridge_recorder]
        rec[:payload] << out.dup if rec
        out
      end
    end
    ActionDispatch::Cookies::SignedKeyRotatingCookieJar.prepend(SerializeObserver)
    ActionDispatch::Cookies::EncryptedKeyRotatingCookieJar.prepend(SerializeObserver)
  end

  module FixedNow
    def now(*args, **kw)
      t = Thread.current[:railbridge_now]
      t ? t.getlocal : super
    end
  end
  Time.singleton_class.prepend(FixedNow)

  def self.with_fixed_iv
    old = Thread.current[:railbridge_fixed_iv]
    Thread.current[:railbridge_fixed_iv] = true
    yield
  ensure
    Thread.current[:railbridge_fixed_iv] = old
  end

  def self.with_payload_override(bytes)
    old = Thread.current[:railbridge_payload_override]
    Thread.current[:railbridge_payload_override] = bytes
    yield
  ensure
    Thread.current[:railbridge_payload_override] = old
  end

  def self.with_now(time)
    return yield if time.nil? # (no ensure here: a nil time must not reset an enclosing with_now)
    old = Thread.current[:railbridge_now]
    Thread.current[:railbridge_now] = time.utc
    begin
      yield
    ensure
      Thread.current[:railbridge_now] = old
    end
  end

  def self.recording
    old = Thread.current[:railbridge_recorder]
    rec = { cipher_input: [], verifier_input: [], payload: [], encrypting: false }
    Thread.current[:railbridge_recorder] = rec
    result = yield
    [result, rec]
  ensure
    Thread.current[:railbridge_recorder] = old
  end

  # ------------------------------------------------------------------ write / read through the real jar

  WriteResult = Struct.new(:cookie, :raw_value, :set_cookie, :payload, :plaintext, keyword_init: true)

  # Writes `value` through cookies.encrypted[name] / cookies.signed[name]. Options as the session store
  # passes them (path "/", HttpOnly, SameSite from cookies_same_site_protection, :expires if set).
  # Raises ActionDispatch::Cookies::CookieOverflow like Rails.
  # `permanent: true` writes through cookies.<kind>.permanent (20-year :expires set by PermanentCookieJar).
  # `now:` fixes the clock while writing (expiry metadata of permanent / relative expiries).
  def self.write_cookie(cfg, value, name: nil, expires: nil, httponly: true, fixed_iv: true, permanent: false, now: nil)
    name ||= cfg["cookie_name"]
    req = build_request(cfg)
    jar = jar_for(req, cfg)
    jar = jar.permanent if permanent
    opts = { value: value }
    opts[:httponly] = true if httponly
    opts[:expires] = expires if expires
    _, rec = recording do
      with_now(now) do
        fixed_iv ? with_fixed_iv { jar[name] = opts } : (jar[name] = opts)
      end
    end
    line = set_cookie_lines(req).find { |l| l.start_with?("#{Rack::Utils.escape(name)}=") }
    escaped = line[/\A[^=]*=([^;]*)/, 1]
    plaintext =
      if cfg["kind"] == "encrypted" then rec[:cipher_input].join.b
      elsif MODERN then rec[:verifier_input].last.b
      else rec[:verifier_input].first.b
      end
    WriteResult.new(cookie: escaped, raw_value: Rack::Utils.unescape(escaped), set_cookie: line,
                    payload: rec[:payload].first.b, plaintext: plaintext)
  end

  # The Set-Cookie lines the jar writes (6.1: one "\n"-joined header in a Hash; 7.1+: CookieJar#write(response)
  # on a Rack 3 response, as ActionDispatch::Cookies#call does).
  def self.set_cookie_lines(req)
    if MODERN
      res = Rack::Response.new
      req.cookie_jar.write(res)
      Array(res.get_header("set-cookie")).flat_map { |h| h.split("\n") }
    else
      headers = {}
      req.cookie_jar.write(headers)
      (headers["Set-Cookie"] || "").split("\n")
    end
  end

  # format: the serialization format of the payload the jar read (:json, :marshal, :message_pack; 7.1+ only).
  ReadResult = Struct.new(:ok, :value, :rewritten, :set_cookie, :error, :format, keyword_init: true)

  def self.payload_format(dumped)
    return nil if dumped.nil?
    if dumped.b.start_with?("\xCC\x80".b) then :message_pack
    elsif dumped.b.start_with?("\x04\x08".b) then :marshal
    else :json
    end
  end

  # Reads cookie `name` from a Cookie header "name=<escaped>" through the real jar. The jar does the
  # two-pass purpose read of 6.1 (purpose "cookie.<name>", then no purpose). `rewritten` is true when the
  # jar queued a Set-Cookie during the read (rotation fallback or :hybrid Marshal upgrade).
  def self.read_cookie(cfg, escaped_value, name: nil, now: NOW)
    name ||= cfg["cookie_name"]
    req = build_request(cfg, cookie_header: "#{Rack::Utils.escape(name)}=#{escaped_value}")
    jar = jar_for(req, cfg)
    unless MODERN
      value = with_now(now) { jar[name] }
      headers = {}
      req.cookie_jar.write(headers)
      rewritten = !headers["Set-Cookie"].nil?
      return ReadResult.new(ok: !value.nil?, value: value, rewritten: rewritten, set_cookie: headers["Set-Cookie"])
    end
    read_rec = { dumped: nil }
    old = Thread.current[:railbridge_read_recorder]
    Thread.current[:railbridge_read_recorder] = read_rec
    begin
      value = with_now(now) { jar[name] }
    ensure
      Thread.current[:railbridge_read_recorder] = old
    end
    lines = set_cookie_lines(req)
    ReadResult.new(ok: !value.nil?, value: value, rewritten: !lines.empty?, set_cookie: lines.empty? ? nil : lines.join("\n"),
                   format: value.nil? ? nil : payload_format(read_rec[:dumped]))
  rescue ActionDispatch::Cookies::CookieOverflow => e
    ReadResult.new(ok: false, error: e.class.name)
  rescue StandardError => e
    # Rails would let this propagate (HTTP 500), e.g. JSON::ParserError for a Marshal payload under :json.
    ReadResult.new(ok: false, error: "#{e.class}: #{e.message}"[0, 200])
  end

  # Tagged JSON of a value the jar read: MessagePack payloads use the "$packed" form for ActiveSupport's
  # extension types (docs/tagged-json.md), everything else the Marshal/JSON forms.
  def self.tagged(value, format)
    TaggedJSON.dump(value, packed: format == :message_pack)
  end

  def self.parse_time(s)
    return nil if s.nil?
    Time.iso8601(s).utc
  end
end
