#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// How log records are written (`--log-format`): one line per record on standard error, with a
/// UTC timestamp (RFC 3339, microseconds), so journald and log shippers can take them as they are.
public enum LogFormat: String, CaseIterable, Sendable {
    /// `2026-11-29T04:30:00.123456Z info groupcast.sfu: message key=value`
    case text
    /// `{"ts":"2026-11-29T04:30:00.123456Z","level":"info","logger":"groupcast.sfu","msg":"message","key":"value"}`
    case json
    /// `ts=2026-11-29T04:30:00.123456Z level=info logger=groupcast.sfu msg=message key=value`
    case logfmt
}

/// A swift-log handler writing ``LogFormat`` lines to a file descriptor (standard error), one
/// `write(2)` per record so lines from several threads never interleave.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    public let format: LogFormat
    private let descriptor: CInt

    public init(label: String, format: LogFormat, level: Logger.Level, descriptor: CInt = STDERR_FILENO) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.descriptor = descriptor
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let given = event.metadata { merged.merge(given) { _, new in new } }
        let line = Self.format(
            format, timestamp: Self.timestamp(), level: event.level, label: label, message: "\(event.message)", metadata: merged)
        let bytes = Array(line.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }  // nowhere to report a failing log
            written += count
        }
    }

    /// One record as a line (with its newline). Metadata keys in sorted order.
    public static func format(
        _ format: LogFormat, timestamp: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata
    ) -> String {
        let fields = metadata.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        switch format {
        case .text:
            let tail = fields.map { "\(logfmtKey($0.0))=\(logfmtValue($0.1))" }.joined(separator: " ")
            return "\(timestamp) \(level) \(label): \(message)\(tail.isEmpty ? "" : " " + tail)\n"
        case .logfmt:
            let pairs = [("ts", timestamp), ("level", "\(level)"), ("logger", label), ("msg", message)] + fields
            return pairs.map { "\(logfmtKey($0.0))=\(logfmtValue($0.1))" }.joined(separator: " ") + "\n"
        case .json:
            // Reserved keys first; metadata never replaces them (a clash is written with a `_` prefix).
            let reserved = ["ts", "level", "logger", "msg"]
            let pairs = [("ts", timestamp), ("level", "\(level)"), ("logger", label), ("msg", message)]
                + fields.map { (reserved.contains($0.0) ? "_" + $0.0 : $0.0, $0.1) }
            return "{" + pairs.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}\n"
        }
    }

    /// Now, as RFC 3339 UTC with microseconds.
    public static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1000), 6))Z"
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A logfmt value: bare when it has no space, quote, `=` or control character, else quoted.
    static func logfmtValue(_ text: String) -> String {
        let plain = !text.isEmpty && text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0 != "\\" }
        return plain ? text : jsonString(text)
    }

    /// A logfmt key: characters that would break the pair become `_`.
    static func logfmtKey(_ key: String) -> String {
        String(key.unicodeScalars.map { $0.value > 0x20 && $0 != "\"" && $0 != "=" ? Character($0) : "_" })
    }
}
