#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Logging

/// A minimal HTTP/1.0 endpoint serving `GET /metrics` (Prometheus text format) on its own thread.
/// One request per connection, 1 s to send it; anything else gets 404 or 400.
final class MetricsServer: @unchecked Sendable {
    private let descriptor: CInt
    private let render: @Sendable () -> String
    private let logger: Logger
    private let lock = NSLock()
    private var stopping = false

    enum Failure: Error, CustomStringConvertible {
        case call(String, String, Int32)
        var description: String {
            switch self {
            case .call(let call, let address, let code): "metrics endpoint \(address): \(call) failed: \(String(cString: strerror(code)))"
            }
        }
    }

    init(listeningOn address: SocketAddress, logger: Logger, render: @escaping @Sendable () -> String) throws {
        self.render = render
        self.logger = logger
        let family = address.family == .ipv4 ? AF_INET : AF_INET6
        descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure.call("socket", "\(address)", errno) }
        var one: CInt = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let bound = address.withSockAddr { bind(descriptor, $0, $1) }
        guard bound == 0 else {
            let code = errno
            close(descriptor)
            throw Failure.call("bind", "\(address)", code)
        }
        guard listen(descriptor, 16) == 0 else {
            let code = errno
            close(descriptor)
            throw Failure.call("listen", "\(address)", code)
        }
        let thread = Thread { [self] in serve() }
        thread.name = "groupcast-metrics"
        thread.start()
    }

    func stop() {
        lock.lock()
        stopping = true
        lock.unlock()
    }

    private var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    private func serve() {
        defer { close(descriptor) }
        while !isStopping {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            let client = accept(descriptor, nil, nil)
            guard client >= 0 else { continue }
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: CInt) {
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while request.count < 8192 {
            let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            request += buffer[0..<count]
            if request.count >= 4 && request.suffix(4) == [13, 10, 13, 10] { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let (status, body): (String, String)
        if parts.count >= 2 && parts[0] == "GET" && (parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?")) {
            (status, body) = ("200 OK", render())
        } else if parts.count >= 2 {
            (status, body) = ("404 Not Found", "only GET /metrics is served\n")
        } else {
            (status, body) = ("400 Bad Request", "not an HTTP request\n")
        }
        let response = Array("HTTP/1.0 \(status)\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
        var sent = 0
        while sent < response.count {
            let count = response[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else {
                logger.debug("metrics response cut short: \(String(cString: strerror(errno)))")
                return
            }
            sent += count
        }
    }
}
