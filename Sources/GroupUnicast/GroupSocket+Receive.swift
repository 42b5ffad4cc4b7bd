#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

extension GroupSocket {

    /// Receives one datagram of at most `maxSize` bytes.
    ///
    /// Returns `nil` when the socket is nonblocking and nothing is queued (`EAGAIN`); a blocking
    /// socket waits for a datagram.
    ///
    /// The corresponding C function is `recvmsg(2)`.
    public func receive(maxSize: Int = 65_535) throws(GroupUnicastError) -> ReceivedDatagram? {
        try receive(count: 1, maxSize: maxSize, batched: false, flags: 0).first
    }

    /// Receives up to `maxCount` datagrams of at most `maxSize` bytes each in one system call.
    ///
    /// The default `maxSize` fits an Ethernet-MTU datagram; a longer one is cut and marked
    /// ``ReceivedDatagram/isTruncated``. Pass 65,535 for any UDP datagram (64 KiB per slot).
    ///
    /// A blocking socket waits for the first datagram and then takes what is already queued
    /// (`MSG_WAITFORONE`); a nonblocking socket returns `[]` when nothing is queued.
    ///
    /// The corresponding C function is `recvmmsg(2)`.
    public func receiveBatch(maxCount: Int = 64, maxSize: Int = 2048) throws(GroupUnicastError) -> [ReceivedDatagram] {
        try receive(count: maxCount, maxSize: maxSize, batched: true, flags: CInt(MSG_WAITFORONE))
    }

    internal func receive(count: Int, maxSize: Int, batched: Bool, flags: CInt) throws(GroupUnicastError) -> [ReceivedDatagram] {
        precondition(count > 0, "maxCount must be positive")
        precondition(maxSize >= 0, "maxSize must not be negative")
        return try receiveBuffers.withLock { (buffers) throws(GroupUnicastError) -> [ReceivedDatagram] in
            let (descriptor, port) = try state.withLock { (state) throws(GroupUnicastError) in
                guard let descriptor = state.descriptor else { throw GroupUnicastError.socketClosed }
                return (descriptor, state.boundPort)
            }
            buffers.prepare(count: count, size: max(maxSize, 1), wantsControl: options.receivesDestinationAddress)
            guard let messages = buffers.messages else { preconditionFailure("receive buffers not prepared") }
            let call: Syscall = batched
                ? .recvmmsg(descriptor: descriptor, messages: messages, count: UInt32(count), flags: flags)
                : .recvmsg(descriptor: descriptor, message: messages.header(0), flags: flags)
            var result = retryingInterrupts(call)
            if !batched, case .success(let length) = result {
                messages[0].msg_len = UInt32(length)
                result = .success(1)
            }
            defer { buffers.trim() }
            if isClosed { throw .socketClosed }
            switch result {
            case .success(let received):
                return (0..<received).compactMap { slot in
                    buffers.datagram(slot: slot, length: Int(messages[slot].msg_len), boundPort: port)
                }
            case .failure(let error) where error == .wouldBlock:
                return []
            case .failure(let error):
                throw .systemCall(call: call.name, errno: error)
            }
        }
    }

    // MARK: Waiting

    /// Waits until a datagram can be received, or `timeout` passes (`nil`: no limit).
    /// Returns whether the socket became readable.
    ///
    /// The corresponding C function is `poll(2)` with `POLLIN`.
    public func waitForReadable(timeout: Duration? = nil) throws(GroupUnicastError) -> Bool {
        try receiveBuffers.withLock { (_) throws(GroupUnicastError) in try poll(for: CShort(POLLIN), timeout: timeout) }
    }

    /// Waits until a datagram can be sent without blocking, or `timeout` passes (`nil`: no limit).
    /// Returns whether the socket became writable.
    ///
    /// The corresponding C function is `poll(2)` with `POLLOUT`.
    public func waitForWritable(timeout: Duration? = nil) throws(GroupUnicastError) -> Bool {
        try sendBuffers.withLock { (_) throws(GroupUnicastError) in try poll(for: CShort(POLLOUT), timeout: timeout) }
    }

    private func poll(for events: CShort, timeout: Duration?) throws(GroupUnicastError) -> Bool {
        let descriptor = try descriptor()
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        let ready = try withUnsafeMutablePointer(to: &entry) { (entry) throws(GroupUnicastError) in
            let outcome = retryingInterrupts { () -> Syscall in
                // Recomputed after every EINTR, so an interrupted wait keeps its deadline.
                var milliseconds: CInt = -1
                if let deadline {
                    let left = clock.now.duration(to: deadline)
                    let (seconds, attoseconds) = left.components
                    milliseconds = left <= .zero ? 0 : CInt(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
                }
                return .poll(entries: entry, count: 1, milliseconds: milliseconds)
            }
            switch outcome {
            case .success(let ready): return ready
            case .failure(let error): throw .systemCall(call: "poll", errno: error)
            }
        }
        if isClosed || entry.revents & CShort(POLLNVAL) != 0 { throw .socketClosed }
        return ready > 0
    }
}
