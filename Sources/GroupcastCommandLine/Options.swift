import ArgumentParser
import Dispatch
import Foundation
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Logging

extension SocketAddress: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension ForwarderBackend: ExpressibleByArgument {}
extension SendgroupMode: ExpressibleByArgument {}

extension StreamSet: ExpressibleByArgument {
    public init?(argument: String) { self.init(list: argument) }
    /// `asq,vsq,vhq` in --help, not the raw bits.
    public var defaultValueDescription: String { description }
}

/// Options every subcommand shares.
public struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Default: info.")
    public var logLevel: Logger.Level?

    @Option(help: "Log lines on standard error: text, json (one object per line) or logfmt; each with an RFC 3339 UTC timestamp. Default: text.")
    public var logFormat: LogFormat?

    public init() {}

    /// The log handler with the level and format given, else `level` and `format` (`groupcast
    /// sfu`'s configuration file), else info and text.
    public func bootstrap(label: String, level: Logger.Level? = nil, format: LogFormat? = nil) -> Logger {
        let level = logLevel ?? level ?? .info, format = logFormat ?? format ?? .text
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
        return Logger(label: label)
    }
}

extension LogFormat: ExpressibleByArgument {}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `--duration 10`, `--duration 2.5`, `--interval 4ms`, `--interval 500us`, `--expires 1h`.
public struct DurationArgument: ExpressibleByArgument, Sendable {
    public var value: Duration
    public init(_ value: Duration) { self.value = value }
    public init?(argument: String) {
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where argument.hasSuffix(suffix) {
            guard let number = Double(argument.dropLast(suffix.count)), number >= 0 else { return nil }
            // Rounded: 50 x 1e-6 x 1e9 is 49999.99..., which truncation made 49,999 ns.
            value = .nanoseconds(Int64((number * scale * 1e9).rounded()))
            return
        }
        guard let seconds = Double(argument), seconds >= 0 else { return nil }
        value = .nanoseconds(Int64((seconds * 1e9).rounded()))
    }
    public var defaultValueDescription: String { "\(value)" }
}

/// `asq=80,vsq=160,vhq=320`.
public struct SizesArgument: ExpressibleByArgument, Sendable {
    public var sizes: [StreamType: Int]
    public init(_ sizes: [StreamType: Int]) { self.sizes = sizes }
    public init?(argument: String) {
        var sizes: [StreamType: Int] = [:]
        for item in argument.split(separator: ",") {
            let parts = item.split(separator: "=")
            guard parts.count == 2, let type = StreamType(name: String(parts[0])), let size = Int(parts[1]), size >= 12, size <= 1400 else {
                return nil
            }
            sizes[type] = size
        }
        self.sizes = sizes
    }
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// SIGINT/SIGTERM turned into a flag (dispatch sources, so no work in a signal handler).
public final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var name: String?
    private var sources: [DispatchSourceSignal] = []

    public init() {
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                lock.lock()
                if self.name == nil { self.name = name }
                lock.unlock()
            }
            source.resume()
            sources.append(source)
        }
    }

    public var received: Bool { signalName != nil }
    public var signalName: String? {
        lock.lock()
        defer { lock.unlock() }
        return name
    }
}

/// SIGHUP turned into a request to reload the configuration (a dispatch source, like
/// ``StopSignal``); `systemctl reload` sends it.
public final class ReloadSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private let source: DispatchSourceSignal

    public init() {
        signal(SIGHUP, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { [weak self] in
            guard let self else { return }
            lock.withLock { pending = true }
        }
        source.resume()
    }

    /// Whether a SIGHUP came since the last call.
    public func take() -> Bool {
        lock.withLock {
            defer { pending = false }
            return pending
        }
    }
}
