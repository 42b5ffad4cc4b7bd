import GroupcastCommandLine
import GroupcastSFU
import GroupUnicast
import Logging

/// Every setting of `groupcast sfu` as one source gives it, each `nil` where that source is
/// silent: the flags make one, the configuration file (``ConfigurationFile``) another, and
/// ``EffectiveSettings`` stacks them, flags over file. What no source gives comes from the
/// defaults of `SFUServer.Configuration` and `ForwarderConfiguration` (and ``defaultControl``,
/// ``defaultMedia``): the one place each default lives, which `--help` quotes too.
public struct SFUSettings: Sendable, Equatable {
    /// `rooms`: declared in the configuration file itself, or a room file (`--room`, JSON).
    public enum Rooms: Sendable, Equatable, CustomStringConvertible {
        case file(String)
        case declared([RoomFile.Declaration])

        public var description: String {
            switch self {
            case .file(let path): path
            case .declared(let rooms): "rooms " + rooms.map(\.name).joined(separator: ",")
            }
        }
    }

    // Control plane.
    public var control: SocketAddress?
    public var rooms: Rooms?
    public var capacity: Int?
    public var maxParticipants: Int?
    public var maxRooms: Int?
    public var roomCreation: Bool?
    public var controlRate: Double?
    public var controlBurst: Double?
    public var keepaliveTimeout: Duration?
    public var echo: Bool?
    // Join tokens.
    public var authKeyFile: String?
    public var authKeyEnv: String?
    // Data plane.
    public var media: SocketAddress?
    public var backend: ForwarderBackend?
    public var interfaces: [String]?
    public var xdpMode: XDPMode?
    public var xdpIngress: FastPathIngress?
    public var sendgroupMode: SendgroupMode?
    public var batch: Int?
    public var receiveBuffer: Int?
    public var sendBuffer: Int?
    public var shedVhq: Double?
    public var shedVsq: Double?
    public var backlog: Int?
    public var ringQueue: UInt32?
    public var ringMode: RingMode?
    public var ringSize: UInt32?
    public var ringFrameCount: UInt32?
    public var ringFrameSize: UInt32?
    public var ringBusyPoll: Duration?
    public var ringCoalesce: Duration?
    // Service.
    public var statsInterval: Duration?
    public var statsFile: String?
    public var metricsListen: SocketAddress?
    // Cluster (Docs/cluster.md).
    public var cluster: String?
    public var node: String?
    public var advertise: SocketAddress?
    public var relayFanout: Int?
    public var logLevel: Logger.Level?
    public var logFormat: LogFormat?

    public init() {}

    public static let defaultControl = SocketAddress.ipv4(.any, port: 7000)
    public static let defaultMedia = SocketAddress.ipv4(.any, port: 7002)
    /// The control plane's defaults (limits, keepalive, echo, rate limit).
    public static let serverDefaults = SFUServer.Configuration(controlAddress: defaultControl)
    /// The data plane's defaults (batch, buffers, shedding, ring).
    public static let forwarderDefaults = ForwarderConfiguration(backend: .fastestAvailable, mediaAddress: defaultMedia)
    public static let defaultLogLevel = Logger.Level.info
    public static let defaultLogFormat = LogFormat.text

    /// Each setting of `self` where it has one, else `base`'s.
    public func overriding(_ base: SFUSettings) -> SFUSettings {
        var result = base
        for field in Self.fields { field.fill(&result, self) }
        return result
    }

    /// The settings given in `self`, by key.
    public var givenKeys: [String] { Self.fields.filter { $0.isGiven(self) }.map(\.key) }
}

/// A setting refused: its key (the flag's long name, the file's key) and why.
public struct SettingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var key: String
    public var reason: String
    /// In a file, the line of the value inside the key's (a room entry), where not the key's own.
    public var line: Int?
    public init(_ key: String, _ reason: String, line: Int? = nil) {
        self.key = key
        self.reason = reason
        self.line = line
    }
    public var description: String { "\(key): \(reason)" }
}

// MARK: The settings, by key

extension SFUSettings {
    /// One setting: its key, whether a reload may change it while the SFU runs, and how a file
    /// gives it (`parse`: a YAML scalar or list as text values) — typed access through a key path.
    struct Field: @unchecked Sendable {
        let key: String
        let reloadable: Bool
        let parse: (ConfigurationValue, inout SFUSettings) throws(SettingError) -> Void
        let isGiven: (SFUSettings) -> Bool
        let same: (SFUSettings, SFUSettings) -> Bool
        let fill: (inout SFUSettings, SFUSettings) -> Void
        let describe: (SFUSettings) -> String
    }

    private static func field<Value: Equatable>(
        _ key: String, _ path: WritableKeyPath<SFUSettings, Value?>, reloadable: Bool,
        _ convert: @escaping (ConfigurationValue, _ key: String) throws(SettingError) -> Value
    ) -> Field {
        Field(
            key: key, reloadable: reloadable,
            parse: { value, settings throws(SettingError) in settings[keyPath: path] = try convert(value, key) },
            isGiven: { $0[keyPath: path] != nil },
            same: { $0[keyPath: path] == $1[keyPath: path] },
            fill: { result, top in if let value = top[keyPath: path] { result[keyPath: path] = value } },
            describe: { $0[keyPath: path].map { "\($0)" } ?? "(default)" })
    }

    /// Every key of the configuration file; each is a flag of `groupcast sfu` of the same name
    /// (`rooms` is `--room FILE`, or the rooms themselves). Reloadable: the control plane's
    /// limits and rooms (``SFUServer/reload(_:)``); the rest needs a restart.
    static let fields: [Field] = [
        field("control", \.control, reloadable: false) { value, key throws(SettingError) in try value.address(key) },
        field("rooms", \.rooms, reloadable: true) { value, _ throws(SettingError) in try value.rooms() },
        field("capacity", \.capacity, reloadable: true) { value, key throws(SettingError) in try value.integer(key) },
        field("max-participants", \.maxParticipants, reloadable: true) { value, key throws(SettingError) in try value.integer(key) },
        field("max-rooms", \.maxRooms, reloadable: true) { value, key throws(SettingError) in try value.integer(key) },
        field("room-creation", \.roomCreation, reloadable: true) { value, key throws(SettingError) in try value.boolean(key) },
        field("control-rate", \.controlRate, reloadable: true) { value, key throws(SettingError) in try value.number(key) },
        field("control-burst", \.controlBurst, reloadable: true) { value, key throws(SettingError) in try value.number(key) },
        field("keepalive-timeout", \.keepaliveTimeout, reloadable: true) { value, key throws(SettingError) in try value.duration(key) },
        field("echo", \.echo, reloadable: true) { value, key throws(SettingError) in try value.boolean(key) },
        field("auth-key-file", \.authKeyFile, reloadable: false) { value, key throws(SettingError) in try value.text(key) },
        field("auth-key-env", \.authKeyEnv, reloadable: false) { value, key throws(SettingError) in try value.text(key) },
        field("media", \.media, reloadable: false) { value, key throws(SettingError) in try value.address(key) },
        field("backend", \.backend, reloadable: false) { value, key throws(SettingError) in try value.choice(key, of: ForwarderBackend.self) },
        field("interface", \.interfaces, reloadable: false) { value, key throws(SettingError) in try value.texts(key) },
        field("xdp-mode", \.xdpMode, reloadable: false) { value, key throws(SettingError) in try value.choice(key, of: XDPMode.self) },
        field("xdp-ingress", \.xdpIngress, reloadable: false) { value, key throws(SettingError) in try value.choice(key, of: FastPathIngress.self) },
        field("sendgroup-mode", \.sendgroupMode, reloadable: false) { value, key throws(SettingError) in try value.choice(key, of: SendgroupMode.self) },
        field("batch", \.batch, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("receive-buffer", \.receiveBuffer, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("send-buffer", \.sendBuffer, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("shed-vhq", \.shedVhq, reloadable: false) { value, key throws(SettingError) in try value.number(key) },
        field("shed-vsq", \.shedVsq, reloadable: false) { value, key throws(SettingError) in try value.number(key) },
        field("backlog", \.backlog, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("ring-queue", \.ringQueue, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("ring-mode", \.ringMode, reloadable: false) { value, key throws(SettingError) in try value.choice(key, of: RingMode.self) },
        field("ring-size", \.ringSize, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("ring-frame-count", \.ringFrameCount, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("ring-frame-size", \.ringFrameSize, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("ring-busy-poll", \.ringBusyPoll, reloadable: false) { value, key throws(SettingError) in try value.duration(key) },
        field("ring-coalesce", \.ringCoalesce, reloadable: false) { value, key throws(SettingError) in try value.duration(key) },
        field("stats-interval", \.statsInterval, reloadable: false) { value, key throws(SettingError) in try value.duration(key) },
        field("stats-file", \.statsFile, reloadable: false) { value, key throws(SettingError) in try value.text(key) },
        field("metrics-listen", \.metricsListen, reloadable: false) { value, key throws(SettingError) in try value.address(key) },
        field("cluster", \.cluster, reloadable: false) { value, key throws(SettingError) in try value.text(key) },
        field("node", \.node, reloadable: false) { value, key throws(SettingError) in try value.text(key) },
        field("advertise", \.advertise, reloadable: false) { value, key throws(SettingError) in try value.address(key) },
        field("relay-fanout", \.relayFanout, reloadable: false) { value, key throws(SettingError) in try value.integer(key) },
        field("log-level", \.logLevel, reloadable: false) { value, key throws(SettingError) in try value.choice(key, of: Logger.Level.self) },
        field("log-format", \.logFormat, reloadable: false) { value, key throws(SettingError) in try value.choice(key, of: LogFormat.self) },
    ]

    static func field(named key: String) -> Field? { fields.first { $0.key == key } }

    /// The flag that gives `key` on the command line (`rooms` is `--room FILE`).
    public static func flag(for key: String) -> String { key == "rooms" ? "--room" : "--\(key)" }

    /// Keys whose effective value (given, else the default) differs between `self` and `other`
    /// and that only a restart applies: a default written out is no change.
    public func restartNeeded(comparedWith other: SFUSettings) -> [(key: String, running: String, configured: String)] {
        let running = overriding(Self.defaults), configured = other.overriding(Self.defaults)
        return Self.fields.filter { !$0.reloadable && !$0.same(running, configured) }.map {
            ($0.key, $0.describe(running), $0.describe(configured))
        }
    }

    /// The defaults as settings, read from the configurations that hold them (a setting whose
    /// default is "none", such as `send-buffer` or `metrics-listen`, stays nil).
    static var defaults: SFUSettings {
        let server = serverDefaults, forwarder = forwarderDefaults
        var settings = SFUSettings()
        settings.control = defaultControl
        settings.capacity = server.capacity
        settings.maxParticipants = server.limits.maxParticipants
        settings.maxRooms = server.limits.maxRooms
        settings.roomCreation = server.limits.allowRoomCreation
        settings.controlRate = server.controlRateLimit?.rate ?? 0
        settings.controlBurst = server.controlRateLimit?.burst
        settings.keepaliveTimeout = server.keepaliveTimeout
        settings.echo = server.echo
        settings.media = defaultMedia
        settings.backend = forwarder.backend
        settings.interfaces = forwarder.interfaces
        settings.xdpMode = forwarder.xdpMode
        settings.xdpIngress = forwarder.xdpIngress
        settings.sendgroupMode = forwarder.sendgroupMode
        settings.batch = forwarder.batchSize
        settings.receiveBuffer = forwarder.receiveBufferSize
        settings.sendBuffer = forwarder.sendBufferSize
        settings.shedVhq = forwarder.shedVHQAt
        settings.shedVsq = forwarder.shedVSQAt
        settings.backlog = forwarder.backlogCapacity
        settings.ringQueue = forwarder.ringQueue
        settings.ringMode = forwarder.ringMode
        settings.ringSize = forwarder.ringSize
        settings.ringFrameCount = forwarder.ringFrameCount
        settings.ringFrameSize = forwarder.ringFrameSize
        settings.ringBusyPoll = forwarder.ringBusyPoll
        settings.ringCoalesce = forwarder.ringCoalesce
        settings.logLevel = defaultLogLevel
        settings.logFormat = defaultLogFormat
        return settings
    }
}

// MARK: Checks

extension SFUSettings {
    /// Each given value within its range (the file checks these with its line, before merging).
    public func checkValues() throws(SettingError) {
        func atLeast<T: Comparable>(_ key: String, _ value: T?, _ least: T) throws(SettingError) {
            if let value, value < least { throw SettingError(key, "\(value) is below \(least)") }
        }
        try atLeast("capacity", capacity, 1)
        try atLeast("max-participants", maxParticipants, 1)
        try atLeast("max-rooms", maxRooms, 1)
        try atLeast("control-rate", controlRate, 0)
        try atLeast("control-burst", controlBurst, 1)
        try atLeast("receive-buffer", receiveBuffer, 1)
        try atLeast("send-buffer", sendBuffer, 1)
        try atLeast("backlog", backlog, 1)
        try atLeast("relay-fanout", relayFanout, 0)
        if let batch, !(1...1024).contains(batch) { throw SettingError("batch", "\(batch) is not within 1...1024") }
        if let ringSize, ringSize.nonzeroBitCount != 1 || ringSize > 65536 {
            throw SettingError("ring-size", "\(ringSize) is not a power of two up to 65536")
        }
        if let ringFrameSize, ringFrameSize != 2048 && ringFrameSize != 4096 {
            throw SettingError("ring-frame-size", "\(ringFrameSize) is neither 2048 nor 4096")
        }
        // The ring core's limits (GC_RING_MAX_BUSY_POLL_US, GC_RING_MAX_COALESCE_US).
        for (key, value) in [("ring-busy-poll", ringBusyPoll), ("ring-coalesce", ringCoalesce)] {
            if let value, value > .milliseconds(100) { throw SettingError(key, "\(value) is above 100 ms") }
        }
        for (key, value) in [("shed-vhq", shedVhq), ("shed-vsq", shedVsq)] {
            if let value, !(value > 0 && value <= 1) { throw SettingError(key, "\(value) is not within (0, 1]") }
        }
        if let keepaliveTimeout, keepaliveTimeout <= .zero { throw SettingError("keepalive-timeout", "must be above 0") }
    }

    /// ``checkValues()`` and the rules between settings, each taken as given or by default; the
    /// key named is the one that breaks the rule (the later of two).
    public func check() throws(SettingError) {
        try checkValues()
        let forwarder = Self.forwarderDefaults
        let vhq = shedVhq ?? forwarder.shedVHQAt, vsq = shedVsq ?? forwarder.shedVSQAt
        if vhq > vsq { throw SettingError(shedVsq != nil ? "shed-vsq" : "shed-vhq", "need shed-vhq (\(vhq)) <= shed-vsq (\(vsq))") }
        let backend = backend ?? forwarder.backend
        if backend == .ring, (batch ?? forwarder.batchSize) > Int(ringSize ?? forwarder.ringSize) {
            throw SettingError("batch", "must not exceed ring-size (\(ringSize ?? forwarder.ringSize))")
        }
        if backend != .sendgroup, let sendgroupMode, sendgroupMode != forwarder.sendgroupMode {
            throw SettingError("sendgroup-mode", "applies to the sendgroup backend, not \(backend)")
        }
        if !backend.needsInterface {
            if interfaces?.isEmpty == false { throw SettingError("interface", "applies to the xdp and ring backends, not \(backend)") }
            if let xdpMode, xdpMode != forwarder.xdpMode { throw SettingError("xdp-mode", "applies to the xdp backend, not \(backend)") }
        }
        if backend != .xdp, let xdpIngress, xdpIngress != forwarder.xdpIngress {
            throw SettingError("xdp-ingress", "applies to the xdp backend, not \(backend)")
        }
        if authKeyFile != nil && authKeyEnv != nil { throw SettingError("auth-key-env", "one key, not two: auth-key-file is given too") }
    }
}

// MARK: The configurations they make

extension SFUSettings {
    /// The control plane's configuration (without the key: `auth-key-file`/`auth-key-env` are
    /// read by the command). Precedence (Docs/operations.md): a room file's SFU-wide
    /// `keepaliveTimeoutMs` gives way to `keepalive-timeout`; a room's own `capacity` beats
    /// `capacity`, which is the capacity of every room without one. `notes`: each such decision,
    /// to be logged.
    public func serverConfiguration() throws(SettingError) -> (configuration: SFUServer.Configuration, notes: [String]) {
        var notes: [String] = []
        var configuration = Self.serverDefaults
        configuration.controlAddress = control ?? Self.defaultControl
        if let capacity { configuration.capacity = capacity }
        if let maxParticipants { configuration.limits.maxParticipants = maxParticipants }
        if let maxRooms { configuration.limits.maxRooms = maxRooms }
        if let roomCreation { configuration.limits.allowRoomCreation = roomCreation }
        if controlRate != nil || controlBurst != nil {
            let rate = controlRate ?? configuration.controlRateLimit?.rate ?? 0
            let burst = controlBurst ?? configuration.controlRateLimit?.burst ?? 1
            configuration.controlRateLimit = rate > 0 ? RateLimiter.Limit(rate: rate, burst: burst) : nil
        }
        if let echo { configuration.echo = echo }
        switch rooms {
        case .file(let path):
            do { configuration.room = try RoomFile.load(path: path) } catch { throw SettingError("rooms", error.description) }
        case .declared(let declarations):
            configuration.room = RoomFile(rooms: declarations)
        case nil:
            break
        }
        let fileTimeout = configuration.room?.keepaliveTimeoutMilliseconds
        configuration.keepaliveTimeout = keepaliveTimeout ?? fileTimeout.map { .milliseconds($0) } ?? configuration.keepaliveTimeout
        if let fileTimeout, let keepaliveTimeout, keepaliveTimeout != .milliseconds(fileTimeout) {
            notes.append("keepalive timeout \(keepaliveTimeout) (--keepalive-timeout) overrides the room file's keepaliveTimeoutMs \(fileTimeout)")
        }
        for declared in configuration.room?.rooms ?? [] {
            if let own = declared.capacity, own != configuration.capacity {
                notes.append("room \(declared.name): capacity \(own) from the room file (--capacity \(configuration.capacity) is for rooms without their own)")
            }
        }
        return (configuration, notes)
    }

    /// The data plane's configuration.
    public var forwarderConfiguration: ForwarderConfiguration {
        var forwarder = Self.forwarderDefaults
        forwarder.backend = backend ?? forwarder.backend
        forwarder.mediaAddress = media ?? Self.defaultMedia
        if let batch { forwarder.batchSize = batch }
        if let receiveBuffer { forwarder.receiveBufferSize = receiveBuffer }
        if let sendBuffer { forwarder.sendBufferSize = sendBuffer }
        if let shedVhq { forwarder.shedVHQAt = shedVhq }
        if let shedVsq { forwarder.shedVSQAt = shedVsq }
        if let backlog { forwarder.backlogCapacity = backlog }
        if let interfaces { forwarder.interfaces = interfaces }
        if let xdpMode { forwarder.xdpMode = xdpMode }
        if let xdpIngress { forwarder.xdpIngress = xdpIngress }
        if let sendgroupMode { forwarder.sendgroupMode = sendgroupMode }
        if let ringQueue { forwarder.ringQueue = ringQueue }
        if let ringMode { forwarder.ringMode = ringMode }
        if let ringSize { forwarder.ringSize = ringSize }
        if let ringFrameCount { forwarder.ringFrameCount = ringFrameCount }
        if let ringFrameSize { forwarder.ringFrameSize = ringFrameSize }
        if let ringBusyPoll { forwarder.ringBusyPoll = ringBusyPoll }
        if let ringCoalesce { forwarder.ringCoalesce = ringCoalesce }
        return forwarder
    }
}

/// The flags over the configuration file: the settings `groupcast sfu` runs with, checked, each
/// refusal naming where the value came from (`--flag`, or `FILE:LINE: key`).
public struct EffectiveSettings: Sendable {
    public let flags: SFUSettings
    public let file: ConfigurationFile?
    public let settings: SFUSettings

    public init(flags: SFUSettings, file: ConfigurationFile?) throws(ConfigurationFileError) {
        self.flags = flags
        self.file = file
        settings = flags.overriding(file?.settings ?? SFUSettings())
        do { try settings.check() } catch { throw refusal(error) }
    }

    /// `error` with where its key's value came from.
    public func refusal(_ error: SettingError) -> ConfigurationFileError {
        if flags.givenKeys.contains(error.key) || file == nil {
            return ConfigurationFileError(path: nil, line: nil, reason: "\(SFUSettings.flag(for: error.key)): \(error.reason)")
        }
        return ConfigurationFileError(path: file?.path, line: error.line ?? file?.lines[error.key], reason: error.description)
    }

    /// Each setting a flag gives against the file's value, to be logged.
    public var notes: [String] {
        guard let file else { return [] }
        return SFUSettings.fields.filter { $0.isGiven(flags) && $0.isGiven(file.settings) && !$0.same(flags, file.settings) }.map {
            "\($0.key) \($0.describe(flags)) (\(SFUSettings.flag(for: $0.key))) overrides \(file.path)'s \($0.describe(file.settings))\(file.lines[$0.key].map { " (line \($0))" } ?? "")"
        }
    }
}
