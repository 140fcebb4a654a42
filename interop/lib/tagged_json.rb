# frozen_string_literal: true

# Ruby value <-> "tagged JSON" (see docs/tagged-json.md).
#
#   TaggedJSON.dump(obj)        -> a JSON-able structure (Hash/Array/String/Integer/Float/true/false/nil)
#   TaggedJSON.load(structure)  -> the Ruby object
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
  }.freeze

  module_function

  def generate(obj)
    JSON.generate(dump(obj))
  end

  def parse(text)
    load(JSON.parse(text))
  end

  # ---------------------------------------------------------------- Ruby -> tagged JSON
  def dump(obj)
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
      return dump_generic(obj) unless obj.class == Time
      dump_time(obj)
    when String
      return subclass_form(obj, String) unless obj.class == String
      dump_string(obj)
    when Array
      return subclass_form(obj, Array) unless obj.class == Array
      obj.map { |v| dump(v) }
    when Hash
      return subclass_form(obj, Hash) unless obj.class == Hash
      dump_hash(obj)
    when Struct
      { "$struct" => obj.class.name, "$members" => obj.each_pair.to_h { |k, v| [k.to_s, dump(v)] } }
    when Regexp
      return dump_generic(obj) unless obj.class == Regexp
      r = { "$regexp" => obj.source, "$options" => obj.options }
      r["$ivars"] = dump_ivars(obj) unless obj.instance_variables.empty?
      r
    when Class
      { "$class_ref" => obj.name }
    when Module
      { "$module_ref" => obj.name }
    else
      dump_generic(obj)
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

  def dump_hash(h)
    if h.default.nil? && h.default_proc.nil? && h.each_key.all? { |k| plain_key?(k) } &&
       !(h.first && h.first[0].start_with?("$"))
      h.each_with_object({}) { |(k, v), o| o[k.dup] = dump(v) }
    else
      r = { "$hash" => h.map { |k, v| [dump(k), dump(v)] } }
      r["$default"] = dump(h.default) unless h.default.nil?
      r
    end
  end

  def subclass_form(obj, base)
    plain =
      if base == Hash then Hash.new(obj.default).merge!(obj)
      elsif base == Array then Array.new(obj)
      else String.new(obj)
      end
    { "$class" => obj.class.name, "$value" => dump(plain) }
  end

  def dump_ivars(obj)
    obj.instance_variables.each_with_object({}) { |iv, o| o[iv.to_s] = dump(obj.instance_variable_get(iv)) }
  end

  def dump_generic(obj)
    if obj.respond_to?(:marshal_dump)
      { "$user_marshal" => obj.class.name, "$value" => dump(obj.marshal_dump) }
    elsif obj.respond_to?(:_dump)
      { "$user_defined" => obj.class.name, "$bytes" => Base64.strict_encode64(obj._dump(-1)) }
    else
      { "$object" => obj.class.name, "$ivars" => dump_ivars(obj) }
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
