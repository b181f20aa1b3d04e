# Runs a Vagrantfile the way Vagrant does (it is Ruby, loaded as code) and records the
# configuration calls it makes, for `vmfile init --from Vagrantfile` (src/vagrant/).
#
#   ruby recorder.rb VAGRANTFILE     (cwd: the Vagrantfile's directory)
#
# Prints one JSON document on stdout; whatever the Vagrantfile itself prints goes to
# stderr. The document is untrusted input for vmfile, which checks it with zod:
#   { "recorder": 1, "configs": [[EVENT...]...], "env": [READ...], "plugins": [NAME...] }
#   EVENT = { "target": ["vm"], "method": "network", "args": [VALUE...], "at": "Vagrantfile:12",
#             "blocks": [[EVENT...], ...] }     (one list per block parameter, when a block was given)
#   READ  = { "name": "MEMORY", "value": "512" | null, "used": VALUE, "at": "Vagrantfile:3" }
# A config object records every call made on it (method_missing): nothing is
# interpreted here, so nothing is dropped here either.
require 'json'

module VmfileRecorder
  ROOT = File.expand_path(ARGV.fetch(0))
  HERE = File.expand_path(__FILE__)

  def self.where
    loc = caller_locations.find { |l| l.absolute_path && File.expand_path(l.absolute_path) != HERE }
    return nil if loc.nil?
    path = File.expand_path(loc.absolute_path)
    shown = path.start_with?(Dir.pwd + '/') ? path[(Dir.pwd.length + 1)..] : path
    "#{shown}:#{loc.lineno}"
  end

  def self.value(v)
    case v
    when nil, true, false, Integer, String then v
    when Float then v.finite? ? v : v.to_s
    when Symbol then v.to_s
    when Array then v.map { |x| value(x) }
    when Hash then v.each_with_object({}) { |(k, x), h| h[k.to_s] = value(x) }
    when Recorder then { '$config' => v.__path.join('.') }
    else { '$ruby' => v.class.name.to_s, 'inspect' => v.inspect[0, 200] }
    end
  end

  # One config namespace (config, config.vm, a provider's or provisioner's block parameter).
  class Recorder < BasicObject
    def initialize(events, path)
      @events = events
      @path = path
      @values = {}
      @children = {}
    end

    def __path = @path

    def respond_to?(*) = true
    def respond_to_missing?(*) = true
    def is_a?(klass) = klass == Recorder
    def nil? = false
    def inspect = "#<config #{@path.join('.')}>"
    def to_s = inspect
    def class = Recorder

    # `vmx["memsize"] = "1024"` (VMware) and reads of it.
    def []=(key, value)
      method_missing(:[]=, key, value)
    end

    def [](key)
      @values.fetch("[#{key}]") { method_missing(:[], key) }
    end

    def method_missing(name, *args, **kwargs, &block)
      name = name.to_s
      # A read of something assigned before gives it back (`config.vm.hostname` after `=`).
      return @values[name] if args.empty? && kwargs.empty? && block.nil? && @values.key?(name)
      # A plain read of anything else is a namespace (config.vm, config.ssh, vb.customize...).
      if args.empty? && kwargs.empty? && block.nil? && !name.end_with?('=', '?', '!')
        return @children[name] ||= Recorder.new(@events, @path + [name])
      end
      all = kwargs.empty? ? args : args + [kwargs]
      event = { 'target' => @path, 'method' => name, 'args' => all.map { |a| ::VmfileRecorder.value(a) }, 'at' => ::VmfileRecorder.where }
      @values[name.chomp('=')] = args[0] if name.end_with?('=') && args.length == 1
      @values["[#{args[0]}]"] = args[1] if name == '[]=' && args.length == 2
      @events << event
      if block
        # Each block parameter is a fresh recorder: a define's machine config, a
        # provider's settings (and its `override` config), a provisioner's settings.
        lists = ::Array.new([block.arity, 1].max) { [] }
        params = lists.each_with_index.map { |list, i| Recorder.new(list, i.zero? ? [] : ['override']) }
        block.call(*params)
        event['blocks'] = lists
      end
      nil
    end
  end

  CONFIGS = []
  READS = []
  PLUGINS = []

  # Reads of the environment are recorded with the value the Vagrantfile got, so the
  # Vmfile can say which values it was made with.
  module EnvReads
    def [](name)
      super.tap { |v| ::VmfileRecorder.read(name, v, v) }
    end

    def fetch(name, *default, &block)
      got = super(name) { nil }
      used = got.nil? ? (block ? block.call(name) : default.fetch(0) { super(name) }) : got
      ::VmfileRecorder.read(name, got, used)
      used
    end

    %i[key? has_key? include? member?].each do |m|
      define_method(m) { |name| super(name).tap { |v| ::VmfileRecorder.read(name, self.to_h[name.to_s], v) } }
    end
  end

  # Only the project's own reads count: Ruby's libraries (rubygems on `require 'yaml'`)
  # read the environment too, and those values are not the Vagrantfile's.
  def self.read(name, value, used)
    at = where
    return if at.nil? || at.start_with?('/')
    READS << { 'name' => name.to_s, 'value' => value, 'used' => value(used), 'at' => at }
  end
end

ENV.singleton_class.prepend(VmfileRecorder::EnvReads)

module Vagrant
  VERSION = '2.4.1'

  def self.configure(version = '2')
    events = []
    VmfileRecorder::CONFIGS << { 'version' => version.to_s, 'events' => events }
    yield VmfileRecorder::Recorder.new(events, [])
  end

  # No plugin is installed where vmfile runs the file: the Vagrantfile takes its
  # no-plugin branch, and vmfile says which plugins it asked about.
  def self.has_plugin?(name, *)
    VmfileRecorder::PLUGINS << name.to_s
    false
  end

  def self.require_version(*); end
end

out = STDOUT.dup
# The Vagrantfile's own output (puts, system) must not mix with the JSON.
STDOUT.reopen(STDERR)
$stdout = STDOUT
begin
  load VmfileRecorder::ROOT
rescue Exception => e # rubocop:disable Lint/RescueException
  raise if e.is_a?(SignalException) || (e.is_a?(SystemExit) && e.success?)
  loc = e.backtrace_locations&.find { |l| l.absolute_path && File.expand_path(l.absolute_path) != VmfileRecorder::HERE }
  warn "#{loc ? "#{loc.path}:#{loc.lineno}: " : ''}#{e.class}: #{e.message}"
  exit 3
end
out.write(JSON.generate({ 'recorder' => 1, 'configs' => VmfileRecorder::CONFIGS, 'env' => VmfileRecorder::READS, 'plugins' => VmfileRecorder::PLUGINS.uniq }))
out.flush
