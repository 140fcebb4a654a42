# frozen_string_literal: true

# Ruby value <-> "tagged JSON" (see docs/tagged-json.md).
#
#   TaggedJSON.dump(obj)        -> a JSON-able structure (Hash/Array/String/Integer/Float/true/false/nil)
#   TaggedJSON.dump(obj, packed: true) -> the same, with ActiveSupport MessagePack extension values (Rails 7.1+
#                                  `:message_pack` sessions) other than Symbol, Integer, Time and
#                                  HashWithIndifferentAccess written as {"$packed": "<registered class>",
#                                  "$fields": [<what the packer writes, in order>]}
#   TaggedJSON.load(structure)  -> the Ruby object (accepts every form, "$packed" included)
#   TaggedJSON.generate(obj)    -> JSON text of dump(obj)
#   TaggedJSON.parse(text)      -> load(JSON.parse(text))
#
# Floats: Ruby's JSON generator prints a Float with Float#to_s, which always has a "." or an exponent
# ("1.0", "0.1", "1.0e+20", "-2.5e-07"), so a finite Float stays a Float through JSON text. Non-finite
# floats use the {"$float": ...} tag.
#
# Round trip guarantee (asserted by interop/gen_vectors.rb for every Marshal vector):
#   Marshal.dump(TaggedJSON.load(TaggedJSON.dump(v))) == Marshal.dump(v)
# for session-like values (no object shared between two places, Times that are UTC or have a fixed
# offset without a zone name).

require "json"
require "base64"
require "time"

module TaggedJSON
  class Error < StandardError; end

  INT_MIN = -(2**63)
  INT_MAX = 2**64 - 1

  # tag => allowed keys (first key must be the tag itself)
  TAGS = {
    "$integer" => %w[$integer],
    "$float" => %w[$float],
    "$string" => %w[$string $encoding $ivars],
    "$bytes" => %w[$bytes $encoding $ivars],
    "$symbol" => %w[$symbol],
    "$hash" => %w[$hash $default],
    "$time" => %w[$time $zone],
    "$struct" => %w[$struct $members],
    "$class" => %w[$class $value],
    "$user_defined" => %w[$user_defined $bytes],
    "$user_marshal" => %w[$user_marshal $value],
    "$object" => %w[$object $ivars],
    "$regexp" => %w[$regexp $options $ivars],
    "$class_ref" => %w[$class_ref],
    "$module_ref" => %w[$module_ref],
    "$packed" => %w[$packed $fields],
  }.freeze

  # ActiveSupport::MessagePack::Extensions (7.1-8.0) registered types that use the "$packed" form, in
  # registration order (msgpack-ruby matches an object's class exactly, then the first registered ancestor, so a
  # URI::HTTPS is packed as URI::Generic and a DateTime as DateTime, not Date). The ext type codes:
  # BigDecimal 2, Rational 3, Complex 4, DateTime 5, Date 6, TimeWithZone 8, TimeZone 9, Duration 10, Range 11,
  # Set 12, URI::Generic 13, IPAddr 14, Pathname 15, Regexp 16. (Symbol 0, Integer 1, Time 7 and
  # HashWithIndifferentAccess 17 keep the $symbol/$integer/$time/$class forms.)
  PACKED_CLASSES = %w[
    BigDecimal Rational Complex DateTime Date ActiveSupport::TimeWithZone ActiveSupport::TimeZone
    ActiveSupport::Duration Range Set URI::Generic IPAddr Pathname Regexp
  ].freeze
  DURATION_PARTS = %i[years months weeks days hours minutes seconds].freeze

  module_function

  def generate(obj, packed: false)
    JSON.generate(dump(obj, packed: packed))
  end

  def parse(text)
    load(JSON.parse(text))
  end

  # ---------------------------------------------------------------- Ruby -> tagged JSON
  def dump(obj, packed: false)
    if packed && (name = packed_class_name(obj))
      return { "$packed" => name, "$fields" => packed_fields(name, obj) }
    end
    case obj
    when nil, true, false
      obj
    when Integer
      (INT_MIN..INT_MAX).cover?(obj) ? obj : { "$integer" => obj.to_s }
    when Float
      if obj.nan? then { "$float" => "NaN" }
      elsif obj.infinite? then { "$float" => obj > 0 ? "Infinity" : "-Infinity" }
      else obj
      end
    when Symbol
      { "$symbol" => obj.to_s }
    when Time
      return dump_generic(obj, packed) unless obj.class == Time
      dump_time(obj)
    when String
      return subclass_form(obj, String, packed) unless obj.class == String
      dump_string(obj)
    when Array
      return subclass_form(obj, Array, packed) unless obj.class == Array
      obj.map { |v| dump(v, packed: packed) }
    when Hash
      return subclass_form(obj, Hash, packed) unless obj.class == Hash
      dump_hash(obj, packed)
    when Struct
      { "$struct" => obj.class.name, "$members" => obj.each_pair.to_h { |k, v| [k.to_s, dump(v, packed: packed)] } }
    when Regexp
      return dump_generic(obj, packed) unless obj.class == Regexp
      r = { "$regexp" => obj.source, "$options" => obj.options }
      r["$ivars"] = dump_ivars(obj) unless obj.instance_variables.empty?
      r
    when Class
      { "$class_ref" => obj.name }
    when Module
      { "$module_ref" => obj.name }
    else
      dump_generic(obj, packed)
    end
  end

  # The registered class name when `obj` is packed with one of the "$packed" extension types.
  def packed_class_name(obj)
    # (Module#=== is the real class test: ActiveSupport::Duration#is_a? answers for its value, 1.day.is_a?(Integer))
    return nil if Symbol === obj || Integer === obj || obj.nil? || true.equal?(obj) || false.equal?(obj)
    return nil unless defined?(ActiveSupport::TimeWithZone)
    exact = PACKED_CLASSES.find { |n| (k = packed_const(n)) && obj.class == k }
    return exact if exact
    # first registered ancestor, in registration order; classes registered before (Symbol, Integer) or with
    # their own form (Time, HashWithIndifferentAccess) win where they would in msgpack-ruby.
    %w[BigDecimal Rational Complex DateTime Date Time ActiveSupport::TimeWithZone ActiveSupport::TimeZone
       ActiveSupport::Duration Range Set URI::Generic IPAddr Pathname Regexp
       ActiveSupport::HashWithIndifferentAccess].each do |n|
      k = packed_const(n)
      next unless k && k === obj
      return PACKED_CLASSES.include?(n) ? n : nil
    end
    nil
  end

  def packed_const(name)
    Object.const_get(name)
  rescue NameError
    nil
  end

  def packed_rational(r, packed)
    r.numerator.zero? ? [dump(r.numerator, packed: packed)] : [dump(r.numerator, packed: packed), dump(r.denominator, packed: packed)]
  end

  # Exactly the values ActiveSupport::MessagePack::Extensions' packer writes, each in tagged form.
  def packed_fields(name, obj)
    d = ->(v) { dump(v, packed: true) }
    case name
    when "BigDecimal" then [obj._dump]
    when "Rational" then packed_rational(obj, true)
    when "Complex" then [d[obj.real], d[obj.imaginary]]
    when "DateTime"
      [d[obj.jd], d[obj.hour], d[obj.min], d[obj.sec], *packed_rational(obj.sec_fraction, true),
       *packed_rational(obj.offset, true)]
    when "Date" then [d[obj.jd]]
    when "ActiveSupport::TimeWithZone"
      u = obj.utc
      [d[u.tv_sec], d[u.tv_nsec], d[u.utc_offset], obj.time_zone.name]
    when "ActiveSupport::TimeZone" then [obj.name]
    when "ActiveSupport::Duration" then [d[obj.value], d[obj._parts.values_at(*DURATION_PARTS)]]
    when "Range" then [d[obj.begin], d[obj.end], obj.exclude_end?]
    when "Set" then [d[obj.to_a]]
    when "URI::Generic", "Pathname", "Regexp" then [obj.to_s]
    when "IPAddr"
      [obj.prefix < 32 || (obj.ipv6? && obj.prefix < 128) ? "#{obj}/#{obj.prefix}" : obj.to_s]
    else raise Error, "no $packed form for #{name}"
    end
  end

  def dump_time(t)
    if t.utc?
      { "$time" => t.strftime("%Y-%m-%dT%H:%M:%S.%9NZ") }
    else
      r = { "$time" => t.strftime("%Y-%m-%dT%H:%M:%S.%9N%:z") }
      r["$zone"] = t.zone if t.zone
      r
    end
  end

  def dump_string(s)
    utf8 = s.dup.force_encoding(Encoding::UTF_8)
    r =
      if s.encoding == Encoding::UTF_8 && s.valid_encoding?
        s.instance_variables.empty? ? utf8 : { "$string" => utf8 }
      elsif s.encoding != Encoding::BINARY && s.valid_encoding? && utf8.valid_encoding?
        { "$string" => utf8, "$encoding" => s.encoding.name }
      else
        { "$bytes" => Base64.strict_encode64(s), "$encoding" => s.encoding.name }
      end
    r["$ivars"] = dump_ivars(s) if r.is_a?(Hash) && !s.instance_variables.empty?
    r
  end

  def plain_key?(k)
    k.class == String && k.encoding == Encoding::UTF_8 && k.valid_encoding? && k.instance_variables.empty?
  end

  def dump_hash(h, packed = false)
    if h.default.nil? && h.default_proc.nil? && h.each_key.all? { |k| plain_key?(k) } &&
       !(h.first && h.first[0].start_with?("$"))
      h.each_with_object({}) { |(k, v), o| o[k.dup] = dump(v, packed: packed) }
    else
      r = { "$hash" => h.map { |k, v| [dump(k, packed: packed), dump(v, packed: packed)] } }
      r["$default"] = dump(h.default, packed: packed) unless h.default.nil?
      r
    end
  end

  def subclass_form(obj, base, packed = false)
    plain =
      if base == Hash then Hash.new(obj.default).merge!(obj)
      elsif base == Array then Array.new(obj)
      else String.new(obj)
      end
    { "$class" => obj.class.name, "$value" => dump(plain, packed: packed) }
  end

  def dump_ivars(obj, packed = false)
    obj.instance_variables.each_with_object({}) { |iv, o| o[iv.to_s] = dump(obj.instance_variable_get(iv), packed: packed) }
  end

  def dump_generic(obj, packed = false)
    if obj.respond_to?(:marshal_dump)
      { "$user_marshal" => obj.class.name, "$value" => dump(obj.marshal_dump, packed: packed) }
    elsif obj.respond_to?(:_dump)
      { "$user_defined" => obj.class.name, "$bytes" => Base64.strict_encode64(obj._dump(-1)) }
    else
      { "$object" => obj.class.name, "$ivars" => dump_ivars(obj, packed) }
    end
  end

  # ---------------------------------------------------------------- tagged JSON -> Ruby
  def load(j)
    case j
    when nil, true, false, Integer, Float
      j
    when String
      j.dup.force_encoding(Encoding::UTF_8)
    when Array
      j.map { |v| load(v) }
    when Hash
      first = j.keys.first
      if first && first.start_with?("$")
        load_tag(j)
      else
        j.each_with_object({}) { |(k, v), h| h[k.dup] = load(v) }
      end
    else
      raise Error, "not a JSON value: #{j.class}"
    end
  end

  def const(name)
    raise Error, "bad class name #{name.inspect}" unless name.is_a?(String) && !name.empty?
    Object.const_get(name)
  rescue NameError
    raise Error, "unknown class #{name}"
  end

  def load_tag(j)
    tag = j.keys.first
    allowed = TAGS[tag] or raise Error, "unknown tag #{tag}"
    extra = j.keys - allowed
    raise Error, "unexpected keys #{extra.inspect} in #{tag} object" unless extra.empty?
    v = j[tag]
    case tag
    when "$integer"
      raise Error, "bad $integer" unless v.is_a?(String) && v.match?(/\A-?\d+\z/)
      Integer(v, 10)
    when "$float"
      { "NaN" => Float::NAN, "Infinity" => Float::INFINITY, "-Infinity" => -Float::INFINITY }.fetch(v) do
        raise Error, "bad $float #{v.inspect}"
      end
    when "$string", "$bytes"
      raise Error, "#{tag} needs a string" unless v.is_a?(String)
      enc = Encoding.find(j["$encoding"] || (tag == "$bytes" ? "ASCII-8BIT" : "UTF-8"))
      s = tag == "$bytes" ? Base64.strict_decode64(v) : v.dup
      s.force_encoding(enc)
      load_ivars(s, j["$ivars"])
    when "$symbol"
      raise Error, "bad $symbol" unless v.is_a?(String)
      v.to_sym
    when "$hash"
      raise Error, "bad $hash" unless v.is_a?(Array)
      h = j.key?("$default") ? Hash.new(load(j["$default"])) : {}
      v.each do |pair|
        raise Error, "bad $hash pair" unless pair.is_a?(Array) && pair.size == 2
        h[load(pair[0])] = load(pair[1])
      end
      h
    when "$time"
      load_time(v, j["$zone"])
    when "$struct"
      klass = const(v)
      members = j["$members"] || {}
      raise Error, "bad $members" unless members.is_a?(Hash)
      s = klass.allocate
      members.each { |k, mv| s[k.to_sym] = load(mv) }
      s
    when "$class"
      klass = const(v)
      inner = load(j["$value"])
      if klass <= Hash
        h = klass.allocate
        h.send(:initialize)
        store = Hash.instance_method(:store) # raw store: no key/value conversion (HashWithIndifferentAccess)
        inner.each { |k, val| store.bind_call(h, k, val) }
        h.default = inner.default unless inner.default.nil?
        h
      elsif klass <= Array || klass <= String
        o = klass.allocate
        (klass <= Array ? Array : String).instance_method(:replace).bind_call(o, inner)
        o
      else
        raise Error, "$class #{v} is not a Hash/Array/String subclass"
      end
    when "$user_defined"
      const(v)._load(Base64.strict_decode64(j["$bytes"].to_s))
    when "$user_marshal"
      o = const(v).allocate
      o.marshal_load(load(j["$value"]))
      o
    when "$object"
      o = const(v).allocate
      load_ivars(o, j["$ivars"])
    when "$regexp"
      r = Regexp.new(v, j["$options"] || 0)
      load_ivars(r, j["$ivars"])
    when "$class_ref"
      k = const(v)
      raise Error, "#{v} is not a class" unless k.is_a?(Class)
      k
    when "$module_ref"
      k = const(v)
      raise Error, "#{v} is not a module" unless k.is_a?(Module) && !k.is_a?(Class)
      k
    when "$packed"
      load_packed(v, j["$fields"])
    end
  end

  # The reverse of packed_fields: what ActiveSupport::MessagePack::Extensions' unpacker builds from the fields.
  def load_packed(name, fields)
    raise Error, "unknown $packed class #{name.inspect}" unless PACKED_CLASSES.include?(name)
    raise Error, "$fields must be an array" unless fields.is_a?(Array)
    f = fields.map { |x| load(x) }
    arity = ->(*ok) { raise Error, "$packed #{name}: #{f.size} fields" unless ok.include?(f.size) }
    str = lambda do
      arity[1]
      raise Error, "$packed #{name}: the field must be a string" unless f[0].is_a?(String)
      f[0]
    end
    case name
    when "BigDecimal" then BigDecimal._load(str[])
    when "Rational"
      arity[1, 2]
      raise Error, "$packed Rational: a single field must be 0" if f.size == 1 && f[0] != 0
      raise Error, "$packed Rational: zero numerator takes no denominator" if f.size == 2 && f[0] == 0
      Rational(f[0], f.size == 1 ? 1 : f[1])
    when "Complex" then arity[2]; Complex(f[0], f[1])
    when "DateTime"
      q = f.dup
      jd, h, mi, sec = q.shift(4)
      rat = lambda do
        n = q.shift
        raise Error, "$packed DateTime: missing fields" if n.nil?
        n.zero? ? Rational(0, 1) : Rational(n, q.shift || raise(Error, "$packed DateTime: missing fields"))
      end
      frac = rat[]
      off = rat[]
      raise Error, "$packed DateTime: #{fields.size} fields" unless q.empty? && !sec.nil?
      DateTime.jd(jd, h, mi, sec + frac, off)
    when "Date" then arity[1]; Date.jd(f[0])
    when "ActiveSupport::TimeWithZone"
      arity[4]
      at = Time.respond_to?(:at_without_coercion) ? :at_without_coercion : :at
      ActiveSupport::TimeWithZone.new(Time.public_send(at, f[0], f[1], :nanosecond, in: f[2]),
                                      ActiveSupport::TimeZone[f[3]])
    when "ActiveSupport::TimeZone" then ActiveSupport::TimeZone[str[]] || raise(Error, "unknown time zone #{f[0]}")
    when "ActiveSupport::Duration"
      arity[2]
      raise Error, "$packed Duration: parts must be a list of 7" unless f[1].is_a?(Array) && f[1].size == 7
      ActiveSupport::Duration.new(f[0], DURATION_PARTS.zip(f[1]).to_h.compact)
    when "Range" then arity[3]; Range.new(f[0], f[1], f[2])
    when "Set"
      arity[1]
      raise Error, "$packed Set: the field must be a list" unless f[0].is_a?(Array)
      Set.new(f[0])
    when "URI::Generic" then URI.parse(str[])
    when "IPAddr" then IPAddr.new(str[])
    when "Pathname" then Pathname.new(str[])
    when "Regexp" then Regexp.new(str[])
    end
  end

  def load_ivars(obj, ivars)
    return obj if ivars.nil?
    raise Error, "bad $ivars" unless ivars.is_a?(Hash)
    ivars.each do |name, v|
      raise Error, "bad ivar name #{name}" unless name.start_with?("@")
      obj.instance_variable_set(name, load(v))
    end
    obj
  end

  TIME_RE = /\A(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\z/.freeze

  def load_time(text, zone)
    m = TIME_RE.match(text.to_s) or raise Error, "bad $time #{text.inspect}"
    y, mo, d, h, mi, s = m[1..6].map(&:to_i)
    frac = m[7] ? Rational(m[7].ljust(9, "0").to_i, 10**9) : 0
    sec = frac.zero? ? s : s + frac
    if m[8] == "Z"
      raise Error, "$zone not allowed on a UTC $time" if zone
      Time.utc(y, mo, d, h, mi, sec)
    else
      t = Time.new(y, mo, d, h, mi, sec, m[8])
      if zone
        # Ruby has no public API to attach an arbitrary zone name to a fixed-offset Time. Try the
        # process-local zone (e.g. "UTC", "CET" when TZ says so); otherwise keep the offset only.
        local = Time.at(t).localtime
        t = local if local.zone == zone && local.utc_offset == t.utc_offset
      end
      t
    end
  end
end
