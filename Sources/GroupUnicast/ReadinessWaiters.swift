import Dispatch
import Synchronization

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

    /// Suspends until `descriptor` is ready for `event`; throws `CancellationError`,
    /// ``GroupUnicastError/socketClosed``, or ``GroupUnicastError/timedOut(_:)`` once `timeout`
    /// (if any) has passed.
    func wait(for event: Event, descriptor: CInt, timeout: Duration? = nil) async throws {
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
                } else if let timeout {
                    let (seconds, attoseconds) = timeout.components
                    let nanoseconds = max(0, seconds) * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000
                    queue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: nanoseconds))) { [self] in
                        finish(id, throwing: GroupUnicastError.timedOut(timeout))
                    }
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
