#if canImport(Glibc)
import Glibc
#endif
import GroupUnicast
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `groupcast sfu --metrics-listen`: `GET /metrics` (Prometheus text format 0.0.4) and
/// `GET /healthz` (200 once the data plane runs, 503 before and after it stopped), HTTP/1.1 with
/// keep-alive on a swift-nio event loop, so connections are served side by side and an idle or
/// slow one holds up no other. Connections idle for 30 s are closed.
public final class MetricsHTTPServer: Sendable {
    /// What `/healthz` answers: ready, or why not.
    public enum Health: Sendable, Equatable {
        case ready
        case notReady(String)
    }

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// The bound address (the port the kernel chose for port 0).
    public var localPort: Int { channel.localAddress?.port ?? 0 }

    public init(
        listeningOn address: GroupUnicast.SocketAddress, logger: Logger,
        metrics: @escaping @Sendable () -> String, health: @escaping @Sendable () -> Health
    ) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(30)))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(Handler(metrics: metrics, health: health, logger: logger))
                }
            }
        do {
            channel = try bootstrap.bind(to: try Self.nioAddress(address)).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
    }

    /// Closes the listening socket and every connection.
    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    static func nioAddress(_ address: GroupUnicast.SocketAddress) throws -> NIOCore.SocketAddress {
        switch address {
        case .ipv4(let ip, let port):
            return try .init(ipAddress: "\(ip)", port: Int(port))
        case .ipv6(let ip, let port, let scope):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scope
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: ip.bytes) }
            return .init(sin6, host: "\(ip)")
        }
    }

    private final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let metrics: @Sendable () -> String
        let health: @Sendable () -> Health
        let logger: Logger
        var request: HTTPRequestHead?

        init(metrics: @escaping @Sendable () -> String, health: @escaping @Sendable () -> Health, logger: Logger) {
            self.metrics = metrics
            self.health = health
            self.logger = logger
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): request = head
            case .body: break  // GET bodies are ignored
            case .end:
                guard let head = request else { return }
                request = nil
                respond(to: head, context: context)
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is IdleStateHandler.IdleStateEvent {
                context.close(promise: nil)
            } else {
                context.fireUserInboundEventTriggered(event)
            }
        }

        private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let status: HTTPResponseStatus
            let body: String
            var contentType = "text/plain; charset=utf-8"
            switch (head.method, path) {
            case (.GET, "/metrics"), (.HEAD, "/metrics"):
                (status, body) = (.ok, metrics())
                contentType = "text/plain; version=0.0.4; charset=utf-8"
            case (.GET, "/healthz"), (.HEAD, "/healthz"):
                switch health() {
                case .ready: (status, body) = (.ok, "ok\n")
                case .notReady(let why): (status, body) = (.serviceUnavailable, "not ready: \(why)\n")
                }
            case (_, "/metrics"), (_, "/healthz"):
                (status, body) = (.methodNotAllowed, "only GET and HEAD\n")
            default:
                (status, body) = (.notFound, "served: GET /metrics, GET /healthz\n")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            let keepAlive = head.isKeepAlive
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
                buffer.writeString(body)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
