#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// What the kernel granted a socket's buffer compared with what was asked, logged once at start:
/// the kernel doubles an `SO_RCVBUF`/`SO_SNDBUF` request (bookkeeping overhead) after capping it
/// at `net.core.rmem_max`/`wmem_max` (stock Debian: 212,992 bytes), and the SFU's shedding
/// thresholds are fractions of what it got.
public struct SocketBufferGrant: Sendable, Equatable {
    /// `SO_RCVBUF` or `SO_SNDBUF`.
    public var option: String
    /// Bytes asked for; `nil`: the system default was kept.
    public var requested: Int?
    /// Bytes the kernel reports (`getsockopt`, already doubled).
    public var granted: Int
    /// The sysctl that caps requests, and its value (`nil` if unreadable).
    public var sysctl: String
    public var sysctlValue: Int?

    public init(option: String, requested: Int?, granted: Int, sysctl: String, sysctlValue: Int?) {
        self.option = option
        self.requested = requested
        self.granted = granted
        self.sysctl = sysctl
        self.sysctlValue = sysctlValue
    }

    /// Whether the request was cut: the kernel grants twice the request unless the cap applied.
    public var isCapped: Bool {
        guard let requested else { return false }
        return granted < Swift.min(2 * requested, Int(Int32.max))
    }

    /// One log line: granted vs requested, and for a capped request the sysctl that lifts it.
    public var message: String {
        guard let requested else {
            return "media socket \(option): \(granted) bytes (system default, \(sysctl.replacingOccurrences(of: "_max", with: "_default")))"
        }
        guard isCapped else { return "media socket \(option): \(granted) bytes granted for \(requested) requested (the kernel doubles it)" }
        let cap = sysctlValue.map { "\(sysctl) = \($0)" } ?? sysctl
        return "media socket \(option): \(granted) bytes granted for \(requested) requested: capped by \(cap); "
            + "lift it with `sysctl -w \(sysctl)=\(requested)` (and in /etc/sysctl.d to keep it)"
    }

    /// Reads the grants of `descriptor`'s receive and send buffers.
    public static func read(descriptor: CInt, requestedReceive: Int?, requestedSend: Int?) -> [SocketBufferGrant] {
        func granted(_ option: CInt) -> Int {
            var value: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            return getsockopt(descriptor, SOL_SOCKET, option, &value, &length) == 0 ? Int(value) : -1
        }
        return [
            SocketBufferGrant(option: "SO_RCVBUF", requested: requestedReceive, granted: granted(SO_RCVBUF), sysctl: "net.core.rmem_max", sysctlValue: sysctl("net/core/rmem_max")),
            SocketBufferGrant(option: "SO_SNDBUF", requested: requestedSend, granted: granted(SO_SNDBUF), sysctl: "net.core.wmem_max", sysctlValue: sysctl("net/core/wmem_max")),
        ]
    }

    /// Logs each grant: a capped one as a warning, the others at notice.
    public static func log(_ grants: [SocketBufferGrant], logger: Logger) {
        for grant in grants {
            let metadata: Logger.Metadata = [
                "option": "\(grant.option)", "granted": "\(grant.granted)", "requested": "\(grant.requested.map(String.init) ?? "default")",
                "capped": "\(grant.isCapped)",
            ]
            logger.log(level: grant.isCapped ? .warning : .notice, "\(grant.message)", metadata: metadata)
        }
    }

    static func sysctl(_ path: String) -> Int? {
        guard let file = fopen("/proc/sys/" + path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, CInt(buffer.count), file) != nil else { return nil }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return Int(text.filter(\.isNumber))
    }
}
