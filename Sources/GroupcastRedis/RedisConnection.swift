import NIOCore
import NIOPosix

/// A message published on a channel this client subscribed to.
public struct RedisPubSubMessage: Hashable, Sendable {
    public var channel: String
    public var payload: [UInt8]
    public init(channel: String, payload: [UInt8]) {
        self.channel = channel
        self.payload = payload
    }
    public var string: String { String(decoding: payload, as: UTF8.self) }
}

/// One TCP connection to a Redis server, without reconnection (``RedisClient`` adds it).
///
/// Commands are pipelined: each is written at once and its reply matched by order. A
/// connection opened for pub/sub hands `message` pushes to its `onMessage` and everything else
/// (subscribe confirmations) to the commands that asked.
public final class RedisConnection: RedisCommandSender {
    let channel: any Channel
    private let commandTimeout: TimeAmount

    private init(channel: any Channel, commandTimeout: TimeAmount) {
        self.channel = channel
        self.commandTimeout = commandTimeout
    }

    /// Connects, then authenticates and selects the database if the configuration says so.
    public static func connect(
        _ configuration: RedisConfiguration, on eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)? = nil
    ) async throws -> RedisConnection {
        let limits = configuration.limits
        let channel = try await ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder(parser: RESPParser(limits: limits))))
                    try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(onMessage: onMessage))
                }
            }
            .connect(host: configuration.host, port: configuration.port).get()
        let connection = RedisConnection(channel: channel, commandTimeout: TimeAmount(configuration.commandTimeout))
        do {
            if let password = configuration.password { _ = try await connection.send(RedisCommand("AUTH", [password])) }
            if configuration.database != 0 { _ = try await connection.send(RedisCommand("SELECT", [String(configuration.database)])) }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    public func send(_ command: RedisCommand) async throws -> RESPValue {
        let response = channel.eventLoop.makePromise(of: RESPValue.self)
        let channel = self.channel
        // The handler fails every pending command and closes: replies after a lost one could
        // not be matched any more.
        let timeout = channel.eventLoop.scheduleTask(in: commandTimeout) { channel.pipeline.fireErrorCaught(RedisError.timeout) }
        response.futureResult.whenComplete { _ in timeout.cancel() }
        channel.writeAndFlush(RedisRequest(command: command, response: response)).whenFailure { error in
            response.fail(error as? RedisError ?? .connectionClosed)
        }
        let reply = try await response.futureResult.get()
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// Whether the connection is still open.
    public var isActive: Bool { channel.isActive }

    public func close() {
        channel.close(promise: nil)
    }

    /// Returns when the connection has closed (either side, or an error).
    public func waitUntilClosed() async {
        try? await channel.closeFuture.get()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

struct RedisRequest: Sendable {
    var command: RedisCommand
    var response: EventLoopPromise<RESPValue>
}

/// Bytes -> RESP values, through the pure ``RESPParser``.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue
    let parser: RESPParser

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let parser = self.parser
        let result = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(RESPError) -> RESPParser.Outcome in try parser.parse(bytes) }
        }
        let outcome: RESPParser.Outcome
        switch result {
        case .success(let value): outcome = value
        case .failure(let error): throw RedisError.protocolViolation(error)
        }
        guard case .value(let value, let consumed) = outcome else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: consumed)
        context.fireChannelRead(wrapInboundOut(value))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Commands out in order, replies matched to them in order; pub/sub messages aside.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private var pending = CircularBuffer<EventLoopPromise<RESPValue>>()
    private var failure: RedisError?
    private let onMessage: (@Sendable (RedisPubSubMessage) -> Void)?

    init(onMessage: (@Sendable (RedisPubSubMessage) -> Void)?) {
        self.onMessage = onMessage
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let failure {
            request.response.fail(failure)
            promise?.fail(failure)
            return
        }
        pending.append(request.response)
        var bytes: [UInt8] = []
        request.command.encode(into: &bytes)
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if let onMessage, let message = Self.pubSubMessage(value) {
            onMessage(message)
            return
        }
        guard let response = pending.popFirst() else {
            fail(context: context, .unexpectedReply("(no command)", value))
            return
        }
        response.succeed(value)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, error as? RedisError ?? .connectionClosed)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failPending(failure ?? .connectionClosed)
        context.fireChannelInactive()
    }

    private func fail(context: ChannelHandlerContext, _ error: RedisError) {
        failPending(error)
        context.close(promise: nil)
    }

    private func failPending(_ error: RedisError) {
        if failure == nil { failure = error }
        while let response = pending.popFirst() { response.fail(error) }
    }

    /// `["message", channel, payload]` (RESP2 pub/sub push).
    static func pubSubMessage(_ value: RESPValue) -> RedisPubSubMessage? {
        guard case .array(let parts) = value, parts.count == 3, parts[0] == .bulkString(Array("message".utf8)),
            let channel = parts[1].string, case .bulkString(let payload) = parts[2]
        else { return nil }
        return RedisPubSubMessage(channel: channel, payload: payload)
    }
}
