import ArgumentParser
import GroupcastCommandLine
import Dispatch
import Foundation
import GroupcastAuth
import GroupcastProtocol
import GroupcastSFU
import GroupcastBackends
import GroupcastCluster
import GroupcastRedis
import GroupcastConfiguration
import GroupcastFastPath
import GroupcastMetrics
import CoreMetrics
import Prometheus
import GroupcastRingBackend
import GroupUnicast
import Logging
import Synchronization

/// `groupcast sfu`: run the SFU until SIGINT/SIGTERM, printing statistics periodically.
struct SFUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sfu",
        abstract: "Run the selective forwarding unit.",
        discussion: "Control requests on --control, RTP media on --media (Docs/protocol.md). Every flag can be given in a configuration file (--config); a flag given beats the file. SIGHUP reloads the file's rooms and limits while media flows. Stops cleanly on SIGINT or SIGTERM and prints final statistics on standard output. Configuration, logs, metrics and health: Docs/operations.md."
    )

    @Option(help: "Configuration file (YAML): any flag below by its long name as a key (`max-participants: 100`), and `rooms` (Docs/operations.md). Flags given beat it; SIGHUP reloads it.")
    var config: String?

    @OptionGroup(title: "Control plane") var controlPlane: ControlPlaneOptions
    @OptionGroup(title: "Join tokens") var authKey: AuthKeyOptions
    @OptionGroup(title: "Forwarding (data plane)") var forwarding: ForwarderOptions
    @OptionGroup(title: "Cluster") var clusterOptions: ClusterOptions

    @Option(help: "Log a statistics line every interval (0: none; statistics are printed at exit either way). Default: 1s when standard error is a terminal, else 0 (a service under journald: use --metrics-listen).")
    var statsInterval: DurationArgument?

    @Option(help: "Write statistics as JSON to this file at every interval and at exit.")
    var statsFile: String?

    @Option(help: "Serve Prometheus metrics at http://ADDRESS/metrics and readiness at /healthz (e.g. 127.0.0.1:9464; Docs/operations.md).")
    var metricsListen: SocketAddress?

    @OptionGroup var logging: LoggingOptions

    /// The flags given, as settings (the others nil).
    var flagSettings: SFUSettings {
        var settings = SFUSettings()
        controlPlane.add(to: &settings)
        forwarding.add(to: &settings)
        clusterOptions.add(to: &settings)
        settings.authKeyFile = authKey.authKeyFile
        settings.authKeyEnv = authKey.authKeyEnv
        settings.statsInterval = statsInterval?.value
        settings.statsFile = statsFile
        settings.metricsListen = metricsListen
        settings.logLevel = logging.logLevel
        settings.logFormat = logging.logFormat
        return settings
    }

    /// The flags over the configuration file (read again at each call), checked; with the
    /// control plane's configuration (the room file read again too) and the notes to log.
    func loadSettings() throws(ConfigurationFileError) -> (EffectiveSettings, SFUServer.Configuration, notes: [String]) {
        var file: ConfigurationFile?
        if let config { file = try ConfigurationFile.load(path: config) }
        let effective = try EffectiveSettings(flags: flagSettings, file: file)
        do {
            let (configuration, notes) = try effective.settings.serverConfiguration()
            return (effective, configuration, effective.notes + notes)
        } catch {
            throw effective.refusal(error)
        }
    }

    func run() throws {
        let startup: EffectiveSettings
        var configuration: SFUServer.Configuration
        let notes: [String]
        do { (startup, configuration, notes) = try loadSettings() } catch { throw ValidationError(error.description) }
        let settings = startup.settings
        let logger = logging.bootstrap(label: "groupcast.sfu", level: settings.logLevel, format: settings.logFormat)
        for note in notes { logger.notice("\(note)") }
        OpenFileLimit.raiseToHard(logger: logger)
        configuration.authKey = try AuthKeyOptions.load(file: settings.authKeyFile, environment: settings.authKeyEnv, logger: logger)
        if configuration.authKey == nil {
            logger.warning("no --auth-key-file: the SFU is open, anyone who reaches the control port may join any room (trusted networks only)")
        }
        let statsInterval = settings.statsInterval, statsFile = settings.statsFile, metricsListen = settings.metricsListen
        let forwarder = settings.forwarderConfiguration
        // Before anything is attached: a signal during start-up must reach the clean shutdown
        // below (the default action would leave the xdp backend's programs attached).
        let stop = StopSignal()
        let reload = ReloadSignal()
        let membership: ClusterMembership?
        do {
            membership = try ClusterMembership(settings: settings, logger: logger)
        } catch {
            throw ValidationError("\(error)")
        }
        if let membership { configuration.participantsChanged = membership.participantsChanged }
        defer { membership?.stop() }
        let server: SFUServer
        do {
            server = try Backends.makeServer(configuration, forwarder: forwarder, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(2)
        }
        membership?.relay(to: server)
        // The endpoint comes up before the data plane: /healthz answers 503 until it runs.
        let health = HealthState()
        var metrics: MetricsHTTPServer?
        if let metricsListen {
            let exporter = SFUMetrics { server.statistics() }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: exporter.registry))
            do {
                metrics = try MetricsHTTPServer(
                    listeningOn: metricsListen, logger: logger, metrics: { exporter.render() },
                    health: {
                        if let failure = server.failure { return .notReady("data plane stopped: \(failure)") }
                        return health.running ? .ready : .notReady("starting")
                    })
            } catch {
                logger.critical("cannot start: metrics endpoint \(metricsListen): \(error)")
                server.stop()
                throw ExitCode(2)
            }
        }
        defer { metrics?.stop() }
        server.start()
        health.running = true
        logger.info("SFU up: \(configuration.authKey == nil ? "open" : "authenticated"), backend \(forwarder.backend), control \((try? server.controlAddress).map { "\($0)" } ?? "?"), media \((try? server.mediaAddress).map { "\($0)" } ?? "?"), \(server.participants().count) static participants")

        let reporter = StatisticsReporter(authenticated: configuration.authKey != nil)
        let interval = (statsInterval ?? (isatty(STDERR_FILENO) != 0 ? .seconds(1) : .zero))
        let intervalNs = interval.wholeNanoseconds
        var nextReport = monotonicNanoseconds() + (intervalNs == 0 ? UInt64.max / 2 : intervalNs)
        let statsLogger = Logger(label: "groupcast.sfu.stats")
        while !stop.received, server.failure == nil {
            usleep(20_000)
            if reload.take() { self.reload(server: server, startup: startup, logger: logger) }
            if monotonicNanoseconds() >= nextReport {
                nextReport += intervalNs
                let statistics = server.statistics()
                statsLogger.info("stats", metadata: reporter.metadata(statistics))
                if let statsFile { writeStatistics(statistics, reporter: reporter, to: statsFile) }
            }
        }
        health.running = false
        let failure = server.failure
        server.stop()
        let statistics = server.statistics()
        print("final: " + reporter.line(statistics, sinceStart: true))
        print(StatisticsReporter.dropsLine(statistics.forwarder))
        if let statsFile { writeStatistics(statistics, reporter: reporter, to: statsFile, final: true) }
        if let failure {
            logger.critical("SFU failed: \(failure)")
            throw ExitCode(1)
        }
        logger.info("SFU stopped (\(stop.signalName ?? "exit"))")
    }

    /// SIGHUP: reads the configuration again and applies what may change while media flows
    /// (``SFUServer/reload(_:)``); a setting only a restart applies is named as such. A
    /// configuration that does not load or apply changes nothing.
    func reload(server: SFUServer, startup: EffectiveSettings, logger: Logger) {
        let source = config ?? controlPlane.room ?? "the flags"
        do {
            var (next, configuration, notes) = try loadSettings()
            configuration.authKey = server.configuration.authKey
            try server.reload(configuration)
            for note in notes { logger.notice("\(note)") }
            for change in startup.settings.restartNeeded(comparedWith: next.settings) {
                logger.warning(
                    "reload: \(change.key) \(change.running) -> \(change.configured) needs a restart (running with \(change.running) until then)",
                    metadata: ["key": "\(change.key)", "needs_restart": "true"])
            }
            let limits = configuration.limits
            logger.notice(
                "configuration reloaded from \(source): rooms \(server.rooms().filter(\.isConfigured).map(\.name).joined(separator: ",")), capacity \(limits.roomCapacity), max-participants \(limits.maxParticipants), max-rooms \(limits.maxRooms), room-creation \(limits.allowRoomCreation), keepalive-timeout \(configuration.keepaliveTimeout), echo \(configuration.echo)")
        } catch {
            logger.error("reload refused, the running configuration stays: \(error)")
        }
    }

    func writeStatistics(_ statistics: SFUStatistics, reporter: StatisticsReporter, to path: String, final: Bool = false) {
        let text = reporter.json(statistics, final: final)
        let temporary = path + ".tmp"
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            _ = rename(temporary, path)
        } catch {
            FileHandle.standardError.write(Data("groupcast sfu: cannot write \(path): \(error)\n".utf8))
        }
    }
}

/// Formats periodic statistics lines: rates since the previous line, delay percentiles, CPU.
final class StatisticsReporter {
    private var previous: (time: UInt64, cpu: CPUTime, received: UInt64, sent: UInt64, dropped: UInt64)?
    private let start = (time: monotonicNanoseconds(), cpu: CPUTime.now())
    /// Whether REGISTER needs a join token (`--auth-key-file`): in the JSON, so the lab's demo and
    /// benchmark can show they ran with authentication on.
    private let authenticated: Bool

    init(authenticated: Bool) { self.authenticated = authenticated }

    /// The figures of one statistics line, in order: totals, rates since the previous call (or
    /// since start), delay percentiles, CPU.
    func fields(_ s: SFUStatistics, sinceStart: Bool = false) -> [(key: String, value: String)] {
        let now = monotonicNanoseconds()
        let base = sinceStart ? (start.time, start.cpu, UInt64(0), UInt64(0), UInt64(0)) : (previous ?? (start.time, start.cpu, 0, 0, 0))
        let elapsed = now - base.0
        let cpu = s.cpu.percent(since: base.1, elapsed: elapsed)
        let seconds = Double(elapsed) / 1e9
        let f = s.forwarder
        if !sinceStart { previous = (now, s.cpu, f.received, f.sent, f.dropped) }
        func rate(_ a: UInt64, _ b: UInt64) -> String { seconds > 0 ? "\(Int(Double(a - min(a, b)) / seconds))" : "0" }
        return [
            ("backend", "\(s.backend)"), ("participants", "\(s.control.participants)"),
            ("received", "\(f.received)"), ("received_per_s", rate(f.received, base.2)),
            ("sent", "\(f.sent)"), ("sent_per_s", rate(f.sent, base.3)), ("echoed", "\(f.echoed)"), ("relayed", "\(f.relayed)"), ("dropped", "\(f.dropped)"),
            ("delay_p50_us", microseconds(f.delay.quantile(0.5))), ("delay_p99_us", microseconds(f.delay.quantile(0.99))),
            ("delay_max_us", microseconds(f.delay.count == 0 ? 0 : f.delay.max)),
            ("cpu_user_percent", String(format: "%.1f", cpu.user)), ("cpu_system_percent", String(format: "%.1f", cpu.system)),
        ]
    }

    /// The periodic line as log metadata (structured in the json and logfmt formats).
    func metadata(_ s: SFUStatistics) -> Logger.Metadata {
        Logger.Metadata(uniqueKeysWithValues: fields(s).map { ($0.key, .string($0.value)) })
    }

    /// The line printed at exit.
    func line(_ s: SFUStatistics, sinceStart: Bool = false) -> String {
        let v = Dictionary(uniqueKeysWithValues: fields(s, sinceStart: sinceStart).map { ($0.key, $0.value) })
        return "\(v["backend"]!) participants \(v["participants"]!) in \(v["received"]!) (\(v["received_per_s"]!)/s) out \(v["sent"]!) (\(v["sent_per_s"]!)/s) "
            + "echo \(v["echoed"]!) relayed \(v["relayed"]!) dropped \(v["dropped"]!) delay p50 \(v["delay_p50_us"]!) p99 \(v["delay_p99_us"]!) "
            + "max \(v["delay_max_us"]!) us cpu user \(v["cpu_user_percent"]!)% sys \(v["cpu_system_percent"]!)%"
    }

    static func dropsLine(_ f: ForwarderStatistics) -> String {
        "drops: " + DropReason.allCases.map { "\($0) \(f[$0])" }.joined(separator: " ") + " deferred \(f.deferred)"
            + " tx_stalls \(f.transmitStalls) tx_stall_us \(f.transmitStallNanoseconds / 1000)"
    }

    func json(_ s: SFUStatistics, final: Bool) -> String {
        let f = s.forwarder
        let cpu = s.cpu.percent(since: start.cpu, elapsed: monotonicNanoseconds() - start.time)
        let drops = DropReason.allCases.map { "\"\($0)\":\(f[$0])" }.joined(separator: ",")
        let errors = ControlErrorCode.allCases.map { "\"\($0)\":\(s.control.errors[$0] ?? 0)" }.joined(separator: ",")
        // Room names are A-Z a-z 0-9 . _ - (the protocol's rule): no escaping needed.
        let rooms = s.control.rooms.sorted { $0.key < $1.key }.map {
            "\"\($0.key)\":{\"participants\":\($0.value.participants),\"registered\":\($0.value.registered),\"left\":\($0.value.left),\"expired\":\($0.value.expired)}"
        }.joined(separator: ",")
        return """
            {"backend":"\(s.backend)","authenticated":\(authenticated),"final":\(final),"uptime_ns":\(s.uptime),"participants":\(s.control.participants),"routes":\(s.control.routes),"relay_children":\(s.control.relayChildren),\
            "received":\(f.received),"forwarded":\(f.forwarded),"echoed":\(f.echoed),"relayed":\(f.relayed),"in_kernel":\(f.inKernel),"deferred":\(f.deferred),"dropped":{\(drops)},\
            "tx_stalls":\(f.transmitStalls),"tx_stall_ns":\(f.transmitStallNanoseconds),\
            "send_ns":\(f.sendNanoseconds),"send_calls":\(f.sendCalls),"busy_ns":\(f.busyNanoseconds),\
            "delay_ns":{"count":\(f.delay.count),"sum":\(f.delay.sum),"p50":\(f.delay.quantile(0.5)),"p99":\(f.delay.quantile(0.99)),"max":\(f.delay.count == 0 ? 0 : f.delay.max)},\
            "cpu_percent":{"user":\(String(format: "%.2f", cpu.user)),"system":\(String(format: "%.2f", cpu.system))},\
            "control":{"requests":\(s.control.requests),"registered":\(s.control.registered),"left":\(s.control.left),"expired":\(s.control.expired),\
            "challenges":\(s.control.challenges),"rate_limited":\(s.control.rateLimited),"unanswered":\(s.control.unanswered),"errors":{\(errors)},"rooms":{\(rooms)}}}

            """
    }
}

func microseconds(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1000) }

/// Whether the data plane runs, for `/healthz` (set by the command's thread, read by the endpoint's).
final class HealthState: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var running: Bool {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}


/// `--cluster`: the Redis client, the node's membership, the publisher of the SFU's
/// participants and the relay of media between nodes, each a task beside the SFU's threads
/// (Docs/cluster.md).
final class ClusterMembership: Sendable {
    private let publisher: ClusterPublisher
    private let node: ClusterNode
    private let logger: Logger
    private let tasks: Mutex<[Task<Void, Never>]>
    /// Set once the SFU exists (``relay(to:)``); the relay installs the other nodes into it.
    private let server = ServerSlot()
    private let mediaRelay: ClusterRelay

    /// `nil` without `--cluster`.
    init?(settings: SFUSettings, logger: Logger) throws {
        guard let url = settings.cluster else {
            if settings.node != nil || settings.advertise != nil || settings.relayFanout != nil {
                throw ClusterSettingError("--node, --advertise and --relay-fanout need --cluster")
            }
            return nil
        }
        let redis: RedisConfiguration
        do { redis = try RedisConfiguration(url: url) } catch { throw ClusterSettingError("--cluster: \(error)") }
        guard let advertise = settings.advertise else { throw ClusterSettingError("--cluster needs --advertise IP:PORT") }
        let backend = settings.forwarderConfiguration.backend
        guard !backend.needsInterface else {
            throw ClusterSettingError("--cluster: media between nodes runs on the socket, sendmmsg and sendgroup backends, not \(backend) (Docs/cluster.md)")
        }
        let name = settings.node ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        let client = RedisClient(configuration: redis, logger: Logger(label: "groupcast.redis"))
        var configuration = ClusterNode.Configuration(name: name, advertise: "\(advertise)")
        configuration.relayFanout = settings.relayFanout ?? 0
        do {
            node = try ClusterNode(configuration: configuration, client: client, logger: Logger(label: "groupcast.cluster"))
        } catch {
            throw ClusterSettingError("--node: \(error)")
        }
        publisher = ClusterPublisher(node: node, logger: logger)
        self.logger = logger
        let server = self.server
        mediaRelay = ClusterRelay(node: node, logger: logger) { nodes, relays in
            do throws(SFUError) { try server.value.withLock { $0 }?.setRemoteNodes(nodes, relays: relays) } catch {
                logger.error("cluster: other nodes not installed: \(error)")
            }
        }
        let node = self.node, publisher = self.publisher
        tasks = Mutex([Task { await client.run() }, Task { await node.run() }, Task { await publisher.run() }])
        logger.info("joining cluster \(redis.host):\(redis.port) as node \(name), advertising \(advertise)")
    }

    /// ``SFUServer/Configuration/participantsChanged``: the publisher and the relay take the list.
    var participantsChanged: @Sendable ([Participant]) -> Void {
        { [publisher, mediaRelay] participants in
            publisher.update(participants)
            mediaRelay.update(participants)
        }
    }

    /// Starts relaying media between `server` and the other nodes, and reporting its load
    /// (copies sent per second, which the cluster compares to pick a relay parent).
    func relay(to server: SFUServer) {
        self.server.value.withLock { $0 = server }
        let relay = mediaRelay, node = self.node
        tasks.withLock {
            $0.append(Task { await relay.run() })
            $0.append(Task {
                var last = (time: monotonicNanoseconds(), sent: server.statistics().forwarder.sent)
                while !Task.isCancelled {
                    try? await Task.sleep(for: node.configuration.heartbeatInterval)
                    let now = (time: monotonicNanoseconds(), sent: server.statistics().forwarder.sent)
                    if now.time > last.time { node.setLoad((Double(now.sent &- last.sent) * 1e9 / Double(now.time - last.time)).rounded()) }
                    last = now
                }
            })
        }
    }

    /// Leaves the cluster (at most 2 s: Redis may be down), then stops the tasks.
    func stop() {
        let done = DispatchSemaphore(value: 0)
        let node = self.node
        Task {
            try? await node.leave()
            done.signal()
        }
        _ = done.wait(timeout: .now() + 2)
        tasks.withLock { $0.forEach { $0.cancel() } }
    }
}

/// The SFU of a ``ClusterMembership``, made after it.
final class ServerSlot: Sendable {
    let value = Mutex<SFUServer?>(nil)
}

struct ClusterSettingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
