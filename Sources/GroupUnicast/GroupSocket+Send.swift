#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

extension GroupSocket {
    /// Sends `prepend + payload + append` to every recipient, in one system call per chunk.
    ///
    /// `payload` is any collection of bytes: `[UInt8]`, `ArraySlice<UInt8>`, `Data`,
    /// `UnsafeRawBufferPointer` and other contiguous collections are sent from their own storage,
    /// others are copied once.
    ///
    /// Recipients whose datagram would exceed ``maxDatagramSize`` fail with `.messageTooLong`
    /// before any system call. Groups larger than the backend's limit (the module's
    /// `max_recipients`, or 1,024 for `sendmmsg`) are split into several calls. A recipient the
    /// kernel refuses (unreachable network, wrong address family, full buffer on a nonblocking
    /// socket) fails alone and the others are still sent; ``GroupSendResult/failures`` tells which
    /// (by index in `recipients`), and ``GroupSendResult/errors`` gives one slot per recipient.
    ///
    /// Throws only when nothing was sent: the socket is closed or the call itself was refused
    /// (for example `EBADF`, `ENOTSOCK`, or an `ioctl(SENDGROUP_IOC_SEND)` that returned -1).
    /// A call refused after earlier chunks went out marks the recipients it could not attempt
    /// with its errno instead, so the result still says exactly who got the datagram.
    ///
    /// The corresponding C calls are `ioctl(devfd, SENDGROUP_IOC_SEND, &args)` (`.sendgroup`),
    /// `sendmmsg(2)` (`.sendmmsg`) or one `sendmsg(2)` per recipient (`.socket`).
    public func send(
        _ payload: some Collection<UInt8>,
        to recipients: [Recipient]
    ) throws(GroupUnicastError) -> GroupSendResult<Int> {
        try withContiguousBytes(of: payload) { (bytes) throws(GroupUnicastError) in
            try send(bytes, to: recipients, extraFlags: 0)
        }
    }

    /// Sends one datagram to one address and throws if it was not sent.
    ///
    /// The corresponding C function is `sendmsg(2)` (or the socket's backend call for one recipient).
    public func send(_ datagram: some Collection<UInt8>, to address: SocketAddress) throws(GroupUnicastError) {
        let result = try send(datagram, to: [Recipient(address)])
        if let failure = result.failures.first {
            throw .systemCall(call: "sendmsg(\(address))", errno: failure.error)
        }
    }

    /// The group send of every backend.
    ///
    /// `backend` overrides the socket's (a user-space ``MemberGroup`` sends with its own);
    /// `fallsBack` lets `sendmmsg` fall back to a `sendmsg` loop on `ENOSYS`, as
    /// ``GroupSendBackend/automatic`` promises. `checksDatagramSize: false` (a user-space
    /// ``MemberGroup``) leaves the per-recipient size limit to the UDP stack, as a kernel group does.
    internal func send(
        _ payload: UnsafeRawBufferPointer,
        to recipients: [Recipient],
        backend requestedSend: GroupSendBackend? = nil,
        fallsBack: Bool? = nil,
        extraFlags: CInt,
        checksDatagramSize: Bool = true
    ) throws(GroupUnicastError) -> GroupSendResult<Int> {
        // The buffers point at the payload only for the duration of this call.
        let payload = PayloadReference(payload)
        return try sendBuffers.withLock { (buffers) throws(GroupUnicastError) -> GroupSendResult<Int> in
            let (descriptor, device, socketBackend) = try state.withLock { (state) throws(GroupUnicastError) in
                guard let descriptor = state.descriptor else { throw GroupUnicastError.socketClosed }
                return (descriptor, state.device, state.backend)
            }
            var sender = makeSender(
                requestedSend ?? socketBackend, device: device,
                fallsBack: fallsBack ?? (requestedBackend == .automatic && requestedSend == nil))
            var errors = [Errno?](repeating: nil, count: recipients.count)

            // Validate before any system call, identically for every backend.
            var pending: [Int] = []
            pending.reserveCapacity(recipients.count)
            for (index, recipient) in recipients.enumerated() {
                let size = recipient.prepend.count + payload.count + recipient.append.count
                if checksDatagramSize && size > Self.maxDatagramSize {
                    errors[index] = .messageTooLong
                } else {
                    pending.append(index)
                }
            }

            let call = ChunkCall(
                descriptor: descriptor,
                flags: CInt(MSG_NOSIGNAL) | extraFlags | (options.nonBlocking ? CInt(MSG_DONTWAIT) : 0),
                payload: payload)
            var sentSomething = false
            var start = pending.startIndex
            while start < pending.endIndex {
                let chunk = pending[start..<min(start + sender.chunkLimit, pending.endIndex)]
                buffers.prepare(recipients, chunk, payload: payload, family: family, layout: sender.layout)
                switch try sender.send(chunk, buffers, call, &errors) {
                case .done(let sent):
                    sentSomething = sentSomething || sent
                    start = chunk.endIndex
                case .unavailable:
                    // Seccomp or an old kernel: fall back for good, as `.automatic` promises.
                    logger.warning("\(sender.backend) unavailable (ENOSYS); falling back to sendmsg per recipient")
                    sender = SocketSender()
                    if requestedSend == nil { state.withLock { $0.backend = .socket } }
                case .refused(let call, let error):
                    guard sentSomething else { throw .systemCall(call: call, errno: error) }
                    for index in pending[start...] { errors[index] = error }
                    start = pending.endIndex
                }
            }
            buffers.trim()
            return GroupSendResult(backend: sender.backend, errors: errors)
        }
    }

    private func makeSender(_ backend: GroupSendBackend, device: SendgroupDevice?, fallsBack: Bool) -> any ChunkSender {
        switch backend {
        case .sendgroup:
            guard let device else { preconditionFailure("sendgroup backend without an open /dev/sendgroup") }
            return SendgroupSender(device: device)
        case .sendmmsg:
            return SendmmsgSender(fallsBackWhenUnavailable: fallsBack)
        case .socket, .automatic:
            return SocketSender()
        }
    }

    /// The shared payload's address and length as plain values: the send buffers point at it only
    /// while the send that received it runs.
    internal struct PayloadReference: Sendable {
        let address: UInt
        let count: Int

        init(_ buffer: UnsafeRawBufferPointer) {
            address = UInt(bitPattern: buffer.baseAddress)
            count = buffer.count
        }

        var pointer: UnsafeMutableRawPointer? {
            UnsafeMutableRawPointer(bitPattern: address)
        }
    }
}

/// Calls `body` with the bytes of `payload`: its own storage when it has contiguous storage
/// (`withContiguousStorageIfAvailable`), else a copy.
internal func withContiguousBytes<R>(
    of payload: some Collection<UInt8>,
    _ body: (UnsafeRawBufferPointer) throws(GroupUnicastError) -> R
) throws(GroupUnicastError) -> R {
    let direct = payload.withContiguousStorageIfAvailable { buffer in
        Result { () throws(GroupUnicastError) in try body(UnsafeRawBufferPointer(buffer)) }
    }
    if let direct { return try direct.get() }
    return try Array(payload).withUnsafeBytes { bytes in
        Result { () throws(GroupUnicastError) in try body(bytes) }
    }.get()
}
