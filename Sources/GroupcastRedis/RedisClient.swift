import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A Redis client that stays connected: ``run()`` keeps one command connection and one pub/sub
/// connection open, reconnecting with backoff after either closes.
///
/// Commands never wait for a connection: without one they throw ``RedisError/notConnected`` at
/// once, so a caller that can do without Redis (the SFU's local routing) is never held up by
/// it. ``connectionEvents()`` tells when the connection comes and goes; a caller that keeps
/// state in Redis writes it again on every `.connected` (a restarted server has lost it).
///
/// ``subscribe(to:)`` outlives connections: after a reconnect the channel is subscribed again
/// and the stream yields ``SubscriptionEvent/subscribed`` once more, because messages published
/// while the connection was down are lost and the subscriber must read the state afresh.
public final class RedisClient: RedisCommandSender {
    public enum ConnectionEvent: Hashable, Sendable {
        case connected
        case disconnected
    }

    public enum SubscriptionEvent: Hashable, Sendable {
        /// The server confirmed the subscription (first time or after a reconnect): messages
        /// from here on arrive; earlier ones may have been missed.
        case subscribed
        case message(RedisPubSubMessage)
    }

    public let configuration: RedisConfiguration
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let state = Mutex(State())

    private struct State {
        var commands: RedisConnection?
        var pubSub: RedisConnection?
        var nextStreamID = 0
        var connectionListeners: [Int: AsyncStream<ConnectionEvent>.Continuation] = [:]
        /// Channel -> its subscribers' streams.
        var subscribers: [String: [Int: AsyncStream<SubscriptionEvent>.Continuation]] = [:]
    }

    public init(
        configuration: RedisConfiguration, logger: Logger = Logger(label: "groupcast.redis"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
    }

    /// Keeps both connections up until the task is cancelled, then closes them.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.maintain(pubSub: false) }
            group.addTask { await self.maintain(pubSub: true) }
        }
        let streams = state.withLock { state in
            state.commands = nil
            state.pubSub = nil
            defer {
                state.connectionListeners = [:]
                state.subscribers = [:]
            }
            return (Array(state.connectionListeners.values), state.subscribers.values.flatMap(\.values))
        }
        streams.0.forEach { $0.finish() }
        streams.1.forEach { $0.finish() }
    }

    public var isConnected: Bool { state.withLock { $0.commands != nil } }

    public func send(_ command: RedisCommand) async throws -> RESPValue {
        guard let connection = state.withLock({ $0.commands }) else { throw RedisError.notConnected }
        return try await connection.send(command)
    }

    /// The command connection's changes, starting with its state now.
    public func connectionEvents() -> AsyncStream<ConnectionEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: ConnectionEvent.self, bufferingPolicy: .bufferingNewest(16))
        let id = state.withLock { state in
            let id = state.nextStreamID
            state.nextStreamID += 1
            state.connectionListeners[id] = continuation
            continuation.yield(state.commands == nil ? .disconnected : .connected)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.connectionListeners.removeValue(forKey: id) }
        }
        return stream
    }

    /// Messages on `channel` for as long as the stream is iterated; ends when ``run()`` ends.
    public func subscribe(to channel: String) -> AsyncStream<SubscriptionEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: SubscriptionEvent.self, bufferingPolicy: .bufferingNewest(1024))
        let (id, connection) = state.withLock { state in
            let id = state.nextStreamID
            state.nextStreamID += 1
            state.subscribers[channel, default: [:]][id] = continuation
            return (id, state.pubSub)
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(channel, id: id) }
        // Without a connection, the pub/sub loop subscribes when it connects.
        if let connection {
            Task { await self.subscribe(connection, to: channel) }
        }
        return stream
    }

    private func unsubscribe(_ channel: String, id: Int) {
        let connection: RedisConnection? = state.withLock { state in
            state.subscribers[channel]?.removeValue(forKey: id)
            guard state.subscribers[channel]?.isEmpty == true else { return nil }
            state.subscribers.removeValue(forKey: channel)
            return state.pubSub
        }
        if let connection {
            Task { _ = try? await connection.send(RedisCommand("UNSUBSCRIBE", [channel])) }
        }
    }

    /// SUBSCRIBE one channel; on the confirmation, tells its subscribers.
    private func subscribe(_ connection: RedisConnection, to channel: String) async {
        do {
            _ = try await connection.send(RedisCommand("SUBSCRIBE", [channel]))
        } catch {
            // The connection is gone: the loop subscribes again after reconnecting.
            logger.debug("SUBSCRIBE failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
            return
        }
        let continuations = state.withLock { state in
            state.pubSub === connection ? state.subscribers[channel].map { Array($0.values) } ?? [] : []
        }
        for continuation in continuations { continuation.yield(.subscribed) }
    }

    private func deliver(_ message: RedisPubSubMessage) {
        let continuations = state.withLock { $0.subscribers[message.channel].map { Array($0.values) } ?? [] }
        for continuation in continuations { continuation.yield(.message(message)) }
    }

    /// Connect, serve until the connection closes, wait, again; until cancelled.
    private func maintain(pubSub: Bool) async {
        let role = pubSub ? "pub/sub" : "commands"
        var delay = configuration.reconnectDelay.lowerBound
        var failures = 0
        while !Task.isCancelled {
            do {
                var onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
                if pubSub {
                    onMessage = { [weak self] message in
                        guard let self else { return }
                        self.deliver(message)
                    }
                }
                let connection = try await RedisConnection.connect(configuration, on: eventLoopGroup, onMessage: onMessage)
                if failures > 0 { logger.info("Redis reconnected", metadata: ["role": "\(role)", "after": "\(failures) failed attempts"]) }
                failures = 0
                delay = configuration.reconnectDelay.lowerBound
                if pubSub {
                    let channels = state.withLock { state in
                        state.pubSub = connection
                        return Array(state.subscribers.keys)
                    }
                    for channel in channels { await subscribe(connection, to: channel) }
                } else {
                    let listeners = state.withLock { state in
                        state.commands = connection
                        return Array(state.connectionListeners.values)
                    }
                    for listener in listeners { listener.yield(ConnectionEvent.connected) }
                }
                await withTaskCancellationHandler {
                    await connection.waitUntilClosed()
                } onCancel: {
                    connection.close()
                }
                let listeners = state.withLock { state in
                    if pubSub {
                        state.pubSub = nil
                        return [AsyncStream<ConnectionEvent>.Continuation]()
                    }
                    state.commands = nil
                    return Array(state.connectionListeners.values)
                }
                for listener in listeners { listener.yield(.disconnected) }
                if !Task.isCancelled { logger.warning("Redis connection closed", metadata: ["role": "\(role)"]) }
            } catch {
                failures += 1
                // The first failure is worth a warning, the retries are not.
                if failures == 1 {
                    logger.warning("cannot connect to Redis", metadata: ["role": "\(role)", "server": "\(configuration.host):\(configuration.port)", "error": "\(error)"])
                }
            }
            guard !Task.isCancelled else { break }
            let jitter = delay / 4 * Double.random(in: 0...1)
            try? await Task.sleep(for: delay + jitter)
            delay = min(delay * 2, configuration.reconnectDelay.upperBound)
        }
    }
}
