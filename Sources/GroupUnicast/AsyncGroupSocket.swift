#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import SystemPackage

/// A ``GroupSocket`` for async code: receives and sends suspend the task instead of blocking a
/// thread, honour task cancellation, and take a timeout.
///
/// ```swift
/// let socket = try AsyncGroupSocket(bindingTo: try SocketAddress(parsing: "127.0.0.1:0"))
/// for try await datagram in socket.datagrams() {
///     let result = try await socket.send(datagram.bytes, to: subscribers)
///     for failure in result.failures { print(subscribers[failure.recipient].address, failure.error) }
/// }
/// ```
///
/// A separate type from the synchronous ``GroupSocket`` (as swift-nio keeps `NIOAsyncChannel`
/// beside `Channel`), so the compiler never chooses between a blocking and a suspending method of
/// the same name: `try socket.send(...)` on a ``GroupSocket`` is always the synchronous call, in
/// async code too, and `try await` on an `AsyncGroupSocket` always suspends. Both views share one
/// descriptor: ``socket`` is the synchronous one, and ``GroupSocket/close()`` fails pending waits
/// with ``GroupUnicastError/socketClosed``.
///
/// Every call uses `MSG_DONTWAIT`, so the socket need not be created nonblocking. The waits are
/// one-shot `DispatchSource` read or write sources (epoll) on the descriptor.
public struct AsyncGroupSocket: Sendable {
    /// The synchronous socket this one suspends on.
    public let socket: GroupSocket

    /// Wraps `socket`; both can be used side by side.
    public init(_ socket: GroupSocket) {
        self.socket = socket
    }

    /// Creates a UDP socket bound to `address`, as ``GroupSocket/init(bindingTo:backend:options:logger:)``.
    ///
    /// The corresponding C calls are `socket(2)`, `setsockopt(2)` and `bind(2)`.
    public init(
        bindingTo address: SocketAddress,
        backend: GroupSendBackend = .automatic,
        options: GroupSocket.Options = GroupSocket.Options(),
        logger: Logger = Logger(label: "GroupUnicast")
    ) throws(GroupUnicastError) {
        self.init(try GroupSocket(bindingTo: address, backend: backend, options: options, logger: logger))
    }

    // MARK: Receiving

    /// Receives one datagram of at most `maxSize` bytes, suspending until one arrives.
    ///
    /// Throws ``GroupUnicastError/timedOut(_:)`` when `timeout` passes first, `CancellationError`
    /// when the task is cancelled, ``GroupUnicastError/socketClosed`` when the socket is closed.
    ///
    /// The corresponding C function is `recvmsg(2)` with `MSG_DONTWAIT`, between waits for readability.
    public func receive(maxSize: Int = 65_535, timeout: Duration? = nil) async throws -> ReceivedDatagram {
        try await receiving(timeout: timeout) { () throws(GroupUnicastError) in
            try socket.receive(count: 1, maxSize: maxSize, batched: false, flags: CInt(MSG_DONTWAIT))
        }[0]
    }

    /// Receives up to `maxCount` datagrams in one system call, suspending until at least one arrives;
    /// errors as ``receive(maxSize:timeout:)``.
    ///
    /// The corresponding C function is `recvmmsg(2)` with `MSG_DONTWAIT`, between waits for readability.
    public func receiveBatch(maxCount: Int = 64, maxSize: Int = 2048, timeout: Duration? = nil) async throws -> [ReceivedDatagram] {
        try await receiving(timeout: timeout) { () throws(GroupUnicastError) in
            try socket.receive(count: maxCount, maxSize: maxSize, batched: true, flags: CInt(MSG_DONTWAIT))
        }
    }

    /// The datagrams this socket receives, as an `AsyncSequence`, taken `maxCount` per
    /// `recvmmsg(2)` of at most `maxSize` bytes each.
    ///
    /// The sequence ends when the socket is closed or the iterating task is cancelled; it throws
    /// any other error of ``receiveBatch(maxCount:maxSize:timeout:)``.
    ///
    /// The corresponding C function is `recvmmsg(2)` with `MSG_DONTWAIT`, between waits for readability.
    public func datagrams(maxCount: Int = 64, maxSize: Int = 2048) -> Datagrams {
        Datagrams(socket: self, maxCount: maxCount, maxSize: maxSize)
    }

    /// The datagrams an ``AsyncGroupSocket`` receives; see ``AsyncGroupSocket/datagrams(maxCount:maxSize:)``.
    public struct Datagrams: AsyncSequence, Sendable {
        public typealias Element = ReceivedDatagram

        let socket: AsyncGroupSocket
        let maxCount: Int
        let maxSize: Int

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(socket: socket, maxCount: maxCount, maxSize: maxSize)
        }

        /// Receives a batch when the last one is used up.
        public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
            let socket: AsyncGroupSocket
            let maxCount: Int
            let maxSize: Int
            /// The rest of the last batch, last datagram first.
            var pending: [ReceivedDatagram] = []

            public mutating func next() async throws -> ReceivedDatagram? {
                if pending.isEmpty {
                    do {
                        pending = try await socket.receiveBatch(maxCount: maxCount, maxSize: maxSize).reversed()
                    } catch GroupUnicastError.socketClosed {
                        return nil
                    } catch is CancellationError {
                        return nil
                    }
                }
                return pending.popLast()
            }
        }
    }

    /// Runs `attempt` until it returns datagrams, waiting for readability in between.
    private func receiving(
        timeout: Duration?,
        _ attempt: () throws(GroupUnicastError) -> [ReceivedDatagram]
    ) async throws -> [ReceivedDatagram] {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        while true {
            let datagrams = try attempt()
            if !datagrams.isEmpty { return datagrams }
            try await wait(for: .readable, until: deadline, reporting: timeout, clock: clock)
        }
    }

    // MARK: Sending

    /// Sends `prepend + payload + append` to every recipient without blocking a thread: recipients
    /// that fail only because the send buffer is full (`EAGAIN`) are sent again once the socket is
    /// writable, until `timeout` (if any) passes; those still blocked then keep `EAGAIN` in the
    /// result. Every other per-recipient error is returned as by ``GroupSocket/send(_:to:)-(_,[Recipient])``.
    ///
    /// The corresponding C calls are those of ``GroupSocket/send(_:to:)-(_,[Recipient])`` with `MSG_DONTWAIT`.
    public func send(
        _ payload: some Collection<UInt8>,
        to recipients: [Recipient],
        timeout: Duration? = nil
    ) async throws -> GroupSendResult<Int> {
        let payload = Array(payload)
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        let first = try payload.withUnsafeBytes { (bytes) throws(GroupUnicastError) in
            try socket.send(bytes, to: recipients, extraFlags: CInt(MSG_DONTWAIT))
        }
        var errors = first.errors
        var backend = first.backend
        while true {
            let blocked = errors.indices.filter { errors[$0] == .wouldBlock }
            if blocked.isEmpty { break }
            do {
                try await wait(for: .writable, until: deadline, reporting: timeout, clock: clock)
            } catch GroupUnicastError.timedOut {
                break
            }
            let retried = try payload.withUnsafeBytes { (bytes) throws(GroupUnicastError) in
                try socket.send(bytes, to: blocked.map { recipients[$0] }, extraFlags: CInt(MSG_DONTWAIT))
            }
            let retriedErrors = retried.errors
            for (slot, index) in blocked.enumerated() { errors[index] = retriedErrors[slot] }
            backend = retried.backend
        }
        return GroupSendResult(backend: backend, errors: errors)
    }

    /// Sends one datagram to one address and throws if it was not sent, suspending while the send
    /// buffer is full.
    ///
    /// The corresponding C function is `sendmsg(2)` with `MSG_DONTWAIT`.
    public func send(_ datagram: some Collection<UInt8>, to address: SocketAddress, timeout: Duration? = nil) async throws {
        let result = try await send(datagram, to: [Recipient(address)], timeout: timeout)
        if let failure = result.failures.first {
            throw GroupUnicastError.systemCall(call: "sendmsg(\(address))", errno: failure.error)
        }
    }

    // MARK: Waiting

    /// Suspends until a datagram can be received; errors as ``receive(maxSize:timeout:)``.
    ///
    /// The corresponding mechanism is a one-shot `DispatchSource` read source (epoll) on the socket.
    public func waitUntilReadable(timeout: Duration? = nil) async throws {
        let clock = ContinuousClock()
        try await wait(for: .readable, until: timeout.map { clock.now.advanced(by: $0) }, reporting: timeout, clock: clock)
    }

    /// Suspends until a datagram can be sent without blocking; errors as ``receive(maxSize:timeout:)``.
    ///
    /// The corresponding mechanism is a one-shot `DispatchSource` write source (epoll) on the socket.
    public func waitUntilWritable(timeout: Duration? = nil) async throws {
        let clock = ContinuousClock()
        try await wait(for: .writable, until: timeout.map { clock.now.advanced(by: $0) }, reporting: timeout, clock: clock)
    }

    private func wait(
        for event: ReadinessWaiters.Event,
        until deadline: ContinuousClock.Instant?,
        reporting timeout: Duration?,
        clock: ContinuousClock
    ) async throws {
        let left = deadline.map { clock.now.duration(to: $0) }
        if let left, left <= .zero, let timeout { throw GroupUnicastError.timedOut(timeout) }
        do {
            try await socket.readiness.wait(for: event, descriptor: socket.descriptor(), timeout: left)
        } catch GroupUnicastError.timedOut {
            throw GroupUnicastError.timedOut(timeout ?? .zero)
        }
    }
}
