#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
import Synchronization
import SystemPackage

extension GroupSocket {
    /// Suspends until a datagram can be received, without blocking a thread.
    ///
    /// Throws `CancellationError` when the task is cancelled and ``GroupUnicastError/socketClosed``
    /// when the socket is closed meanwhile.
    ///
    /// The corresponding mechanism is a `DispatchSource` read source (epoll) on the socket.
    public func waitUntilReadable() async throws {
        try await readiness.wait(for: .readable, descriptor: descriptor())
    }

    /// Suspends until a datagram can be sent without blocking, without blocking a thread.
    ///
    /// Throws `CancellationError` when the task is cancelled and ``GroupUnicastError/socketClosed``
    /// when the socket is closed meanwhile.
    ///
    /// The corresponding mechanism is a `DispatchSource` write source (epoll) on the socket.
    public func waitUntilWritable() async throws {
        try await readiness.wait(for: .writable, descriptor: descriptor())
    }

    /// Receives one datagram, suspending (not blocking) until one arrives.
    ///
    /// The corresponding C function is `recvmsg(2)` with `MSG_DONTWAIT`, between waits for readability.
    public func receive(maxSize: Int = 65_535) async throws -> ReceivedDatagram {
        while true {
            if let datagram = try receive(count: 1, maxSize: maxSize, batched: false, flags: CInt(MSG_DONTWAIT)).first {
                return datagram
            }
            try await waitUntilReadable()
        }
    }

    /// Receives up to `maxCount` datagrams in one system call, suspending (not blocking) until at
    /// least one arrives.
    ///
    /// The corresponding C function is `recvmmsg(2)` with `MSG_DONTWAIT`, between waits for readability.
    public func receiveBatch(maxCount: Int = 64, maxSize: Int = 2048) async throws -> [ReceivedDatagram] {
        while true {
            let datagrams = try receive(count: maxCount, maxSize: maxSize, batched: true, flags: CInt(MSG_DONTWAIT))
            if !datagrams.isEmpty { return datagrams }
            try await waitUntilReadable()
        }
    }

    /// Sends `prepend + payload + append` to every recipient without blocking a thread: recipients
    /// that fail only because the send buffer is full (`EAGAIN`) are sent again once the socket is
    /// writable. Every other per-recipient error is returned as by ``send(_:to:)-([UInt8],_)``.
    ///
    /// The corresponding C calls are those of ``send(_:to:)-([UInt8],_)`` with `MSG_DONTWAIT`.
    public func send(_ payload: [UInt8], to recipients: [Recipient]) async throws -> GroupSendResult {
        var result = try payload.withUnsafeBytes { (bytes) throws(GroupUnicastError) in
            try send(bytes, to: recipients, extraFlags: CInt(MSG_DONTWAIT))
        }
        while true {
            let blocked = result.failures.filter { $0.error == .wouldBlock }.map(\.index)
            if blocked.isEmpty { return result }
            try await waitUntilWritable()
            let retried = try payload.withUnsafeBytes { (bytes) throws(GroupUnicastError) in
                try send(bytes, to: blocked.map { recipients[$0] }, extraFlags: CInt(MSG_DONTWAIT))
            }
            for (slot, index) in blocked.enumerated() {
                result.errors[index] = retried.errors[slot]
            }
            result.backend = retried.backend
        }
    }
}

/// Async waits for readability or writability of one socket, each a one-shot `DispatchSource`.
///
/// ``closeAll()`` fails every pending wait and returns only once Dispatch has stopped watching the
/// descriptor (every source's cancel handler ran), so the socket can then close it safely.
internal final class ReadinessWaiters: Sendable {
    enum Event {
        case readable
        case writable
    }

    // Dispatch sources are thread-safe objects; the overlay just does not say so.
    private struct Waiter: @unchecked Sendable {
        let source: any DispatchSourceProtocol
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var isClosed = false
        var nextID = 0
        var waiters: [Int: Waiter] = [:]
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "GroupUnicast.readiness")
    private let watching = DispatchGroup()

    func wait(for event: Event, descriptor: CInt) async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let source: any DispatchSourceProtocol = switch event {
                case .readable: DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
                case .writable: DispatchSource.makeWriteSource(fileDescriptor: descriptor, queue: queue)
                }
                watching.enter()
                source.setEventHandler { [self] in finish(id, throwing: nil) }
                source.setCancelHandler { [watching] in watching.leave() }
                let registered = state.withLock { state in
                    guard !state.isClosed else { return false }
                    state.waiters[id] = Waiter(source: source, continuation: continuation)
                    return true
                }
                source.activate()
                guard registered else {
                    source.cancel()
                    continuation.resume(throwing: GroupUnicastError.socketClosed)
                    return
                }
                if Task.isCancelled {
                    finish(id, throwing: CancellationError())
                }
            }
        } onCancel: {
            finish(id, throwing: CancellationError())
        }
    }

    private func finish(_ id: Int, throwing error: (any Error)?) {
        guard let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) else { return }
        waiter.source.cancel()
        if let error {
            waiter.continuation.resume(throwing: error)
        } else {
            waiter.continuation.resume()
        }
    }

    /// Fails every pending wait with ``GroupUnicastError/socketClosed``, refuses new ones, and
    /// blocks until no `DispatchSource` watches the descriptor any more.
    func closeAll() {
        let waiters = state.withLock { state in
            state.isClosed = true
            defer { state.waiters = [:] }
            return state.waiters
        }
        for waiter in waiters.values {
            waiter.source.cancel()
            waiter.continuation.resume(throwing: GroupUnicastError.socketClosed)
        }
        watching.wait()
    }
}
