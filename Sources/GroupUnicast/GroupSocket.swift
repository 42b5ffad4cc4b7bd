#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGroupUnicast
import Logging
import Synchronization
import SystemPackage

/// A UDP socket that sends one shared payload to many recipients in one call.
///
/// ```swift
/// let socket = try GroupSocket(bindingTo: try SocketAddress(parsing: "127.0.0.1:0"))
/// let result = try socket.send(snapshot, to: clients)
/// for (index, error) in result.failures { print(clients[index].address, error) }
/// ```
///
/// A group send goes through the backend in ``backend``: the `/dev/sendgroup` ioctl when the
/// sendgroup module is loaded, else `sendmmsg(2)`. Every backend gives the same observable
/// result: the same bytes on the wire and the same per-recipient errno for the same cause.
///
/// The socket is closed by ``close()`` or, at the latest, when the object is released.
/// All methods may be called from any thread; sends are serialised with sends and receives
/// with receives.
public final class GroupSocket: Sendable {
    /// Options applied when the socket is created.
    public struct Options: Hashable, Sendable {
        /// Open the socket with `O_NONBLOCK` (`SOCK_NONBLOCK`): receives with nothing queued return
        /// `nil` or `[]`, sends that would block fail per recipient with `EAGAIN`.
        public var nonBlocking: Bool
        /// `IPV6_V6ONLY` for IPv6 sockets; `nil` keeps the system default.
        public var ipv6Only: Bool?
        /// `SO_REUSEADDR`.
        public var reuseAddress: Bool
        /// `SO_RCVBUF` in bytes; `nil` keeps the system default.
        public var receiveBufferSize: Int?
        /// `SO_SNDBUF` in bytes; `nil` keeps the system default.
        public var sendBufferSize: Int?
        /// Report each received datagram's local destination address
        /// (`IP_PKTINFO` / `IPV6_RECVPKTINFO`) in ``ReceivedDatagram/destination``.
        public var receivesDestinationAddress: Bool

        /// Creates options; the defaults give a blocking socket with system defaults.
        public init(
            nonBlocking: Bool = false,
            ipv6Only: Bool? = nil,
            reuseAddress: Bool = false,
            receiveBufferSize: Int? = nil,
            sendBufferSize: Int? = nil,
            receivesDestinationAddress: Bool = false
        ) {
            self.nonBlocking = nonBlocking
            self.ipv6Only = ipv6Only
            self.reuseAddress = reuseAddress
            self.receiveBufferSize = receiveBufferSize
            self.sendBufferSize = sendBufferSize
            self.receivesDestinationAddress = receivesDestinationAddress
        }
    }

    /// The largest datagram (prepend + payload + append) a group send accepts on any backend:
    /// `SENDGROUP_MAX_DATAGRAM`, 65,507 bytes, the largest UDP payload over IPv4.
    public static let maxDatagramSize = Int(SENDGROUP_MAX_DATAGRAM)

    /// The most recipients one `sendmmsg(2)` call takes (`UIO_MAXIOV`); larger groups are split.
    public static let sendmmsgBatchLimit = 1024

    /// Whether `/dev/sendgroup` exists, that is whether the sendgroup module is loaded.
    ///
    /// The corresponding C function is `access(2)`.
    public static var isKernelModuleLoaded: Bool {
        SendgroupDevice.isPresent
    }

    /// The socket's address family.
    public let family: AddressFamily
    /// The backend asked for at creation.
    public let requestedBackend: GroupSendBackend
    /// The options the socket was created with.
    public let options: Options

    private let logger: Logger
    private let state: Mutex<State>
    private let sendBuffers = Mutex(SendBuffers())
    private let receiveBuffers = Mutex(ReceiveBuffers())
    internal let readiness = ReadinessWaiters()
    /// The groups made by ``makeGroup(placement:)`` that are still alive: ``close()`` closes them.
    private let groups = Mutex<[ObjectIdentifier: WeakGroup]>([:])

    private struct WeakGroup: Sendable {
        weak var group: MemberGroup?
    }

    private struct State {
        var descriptor: CInt?
        var device: SendgroupDevice?
        var backend: GroupSendBackend
        var boundPort: UInt16 = 0
    }

    // MARK: Creating and closing

    /// Creates an unbound UDP socket.
    ///
    /// With ``GroupSendBackend/automatic`` the socket uses the kernel module when `/dev/sendgroup`
    /// can be opened and `sendmmsg(2)` otherwise, without error. With ``GroupSendBackend/kernel``
    /// a missing module throws ``GroupUnicastError/kernelModuleNotLoaded``.
    ///
    /// The corresponding C calls are `socket(AF_INET or AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP)`,
    /// `setsockopt(2)` for the options, and `open("/dev/sendgroup")` plus `ioctl(SENDGROUP_IOC_INFO)`
    /// for the kernel backend.
    public init(
        family: AddressFamily,
        backend: GroupSendBackend = .automatic,
        options: Options = Options(),
        logger: Logger = Logger(label: "GroupUnicast")
    ) throws(GroupUnicastError) {
        self.family = family
        self.requestedBackend = backend
        self.options = options
        self.logger = logger

        var device: SendgroupDevice?
        let resolved: GroupSendBackend
        switch backend {
        case .kernel:
            device = try SendgroupDevice.open()
            resolved = .kernel
        case .automatic:
            do {
                device = try SendgroupDevice.open()
                resolved = .kernel
            } catch .kernelModuleNotLoaded {
                logger.debug("sendgroup module not loaded; using sendmmsg")
                resolved = .sendmmsg
            } catch {
                logger.warning("cannot use \(SendgroupDevice.path), using sendmmsg: \(error)")
                resolved = .sendmmsg
            }
        case .sendmmsg, .sendmsgLoop:
            resolved = backend
        }

        let type = CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
            | (options.nonBlocking ? CInt(SOCK_NONBLOCK.rawValue) : 0)
        let descriptor = try systemCall("socket") { socket(family.rawValue, type, CInt(IPPROTO_UDP)) }
        do {
            try Self.apply(options, family: family, to: descriptor)
        } catch {
            _ = Glibc.close(descriptor)
            throw error
        }
        state = Mutex(State(descriptor: descriptor, device: device, backend: resolved))
        logger.debug("GroupSocket fd \(descriptor) \(family) backend \(resolved)")
    }

    /// Creates a UDP socket of `address`'s family bound to `address` (port 0: the kernel picks one;
    /// read it from ``localAddress``).
    ///
    /// The corresponding C calls are those of ``init(family:backend:options:logger:)`` and `bind(2)`.
    public convenience init(
        bindingTo address: SocketAddress,
        backend: GroupSendBackend = .automatic,
        options: Options = Options(),
        logger: Logger = Logger(label: "GroupUnicast")
    ) throws(GroupUnicastError) {
        try self.init(family: address.family, backend: backend, options: options, logger: logger)
        try bind(to: address)
    }

    private static func apply(_ options: Options, family: AddressFamily, to descriptor: CInt) throws(GroupUnicastError) {
        func set(_ level: CInt, _ name: CInt, _ value: CInt, _ call: String) throws(GroupUnicastError) {
            var value = value
            _ = try systemCall("setsockopt(\(call))") {
                setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<CInt>.size))
            }
        }
        if let ipv6Only = options.ipv6Only, family == .ipv6 {
            try set(CInt(IPPROTO_IPV6), IPV6_V6ONLY, ipv6Only ? 1 : 0, "IPV6_V6ONLY")
        }
        if options.reuseAddress {
            try set(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
        }
        if let size = options.receiveBufferSize {
            try set(SOL_SOCKET, SO_RCVBUF, CInt(clamping: size), "SO_RCVBUF")
        }
        if let size = options.sendBufferSize {
            try set(SOL_SOCKET, SO_SNDBUF, CInt(clamping: size), "SO_SNDBUF")
        }
        if options.receivesDestinationAddress {
            _ = try systemCall(family == .ipv6 ? "setsockopt(IPV6_RECVPKTINFO)" : "setsockopt(IP_PKTINFO)") {
                CGroupUnicast_set_receive_pktinfo(descriptor, family.rawValue, 1)
            }
        }
    }

    /// Closes the socket (and its `/dev/sendgroup` descriptor) now.
    ///
    /// Operations blocked on other threads are woken (`shutdown(2)`) and fail with
    /// ``GroupUnicastError/socketClosed``; `close` returns once none of them uses the descriptor any
    /// more. Throws ``GroupUnicastError/socketClosed`` when already closed.
    ///
    /// The corresponding C calls are `shutdown(fd, SHUT_RDWR)` and `close(2)`.
    public func close() throws(GroupUnicastError) {
        let taken = state.withLock { state -> (CInt, SendgroupDevice?)? in
            guard let descriptor = state.descriptor else { return nil }
            defer {
                state.descriptor = nil
                state.device = nil
            }
            return (descriptor, state.device)
        }
        guard let (descriptor, device) = taken else { throw .socketClosed }
        // Wake receives and waits blocked in the kernel; unconnected UDP answers ENOTCONN but wakes them.
        _ = shutdown(descriptor, CInt(SHUT_RDWR))
        readiness.closeAll()
        // A kernel group holds its own reference to the socket: close the groups so the socket
        // really goes away now. Their blocked sends were woken by the shutdown above.
        let liveGroups = groups.withLock { groups in
            defer { groups = [:] }
            return groups.values.compactMap(\.group)
        }
        for group in liveGroups { group.closeBecauseSocketClosed() }
        // Wait for operations in progress, and free their memory.
        sendBuffers.withLock { $0 = SendBuffers() }
        receiveBuffers.withLock { $0 = ReceiveBuffers() }
        withExtendedLifetime(device) {}
        // Not through the choke point: Linux releases the descriptor even when close(2) reports
        // EINTR, so retrying could close a descriptor another thread just opened.
        if Glibc.close(descriptor) == -1 {
            let error = Errno(rawValue: errno)
            if error != .interrupted { throw .systemCall(call: "close", errno: error) }
        }
    }

    deinit {
        // No other reference exists, so nothing else can use the descriptor.
        if let descriptor = state.withLock({ $0.descriptor }) {
            readiness.closeAll()
            _ = Glibc.close(descriptor)
        }
    }

    // MARK: Properties

    /// Whether ``close()`` has been called.
    public var isClosed: Bool {
        state.withLock { $0.descriptor == nil }
    }

    /// The backend group sends use now: ``GroupSendBackend/kernel``, ``GroupSendBackend/sendmmsg`` or
    /// ``GroupSendBackend/sendmsgLoop``, never ``GroupSendBackend/automatic``.
    public var backend: GroupSendBackend {
        state.withLock { $0.backend }
    }

    /// What the sendgroup module reported, when this socket uses it.
    ///
    /// The corresponding C call is `ioctl(fd, SENDGROUP_IOC_INFO)`.
    public var kernelModuleInfo: SendgroupModuleInfo? {
        state.withLock { $0.device?.info }
    }

    /// The socket's file descriptor, for an event loop (epoll, kqueue-like wrappers, DispatchSource).
    ///
    /// The descriptor stays owned by this object: do not close it; it is invalid after ``close()``.
    public var fileDescriptor: FileDescriptor {
        get throws(GroupUnicastError) {
            FileDescriptor(rawValue: try descriptor())
        }
    }

    /// The address the socket is bound to.
    ///
    /// The corresponding C function is `getsockname(2)`.
    public var localAddress: SocketAddress {
        get throws(GroupUnicastError) {
            let descriptor = try descriptor()
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = try withUnsafeMutablePointer(to: &storage) { (pointer) throws(GroupUnicastError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(GroupUnicastError) in
                    try systemCall("getsockname") { getsockname(descriptor, address, &length) }
                }
            }
            guard let address = SocketAddress(&storage) else {
                preconditionFailure("getsockname returned a non-IP family on a UDP socket")
            }
            return address
        }
    }

    /// Binds the socket to `address`. On an IPv6 socket an IPv4 address binds its IPv4-mapped form.
    ///
    /// The corresponding C function is `bind(2)`.
    public func bind(to address: SocketAddress) throws(GroupUnicastError) {
        let descriptor = try descriptor()
        let address = family == .ipv6 ? address.mappedToIPv6 : address
        _ = try address.withSockAddr { (pointer, length) throws(GroupUnicastError) in
            try systemCall("bind(\(address))") { Glibc.bind(descriptor, pointer, length) }
        }
        let port = try localAddress.port
        state.withLock { $0.boundPort = port }
    }

    internal func descriptor() throws(GroupUnicastError) -> CInt {
        guard let descriptor = state.withLock({ $0.descriptor }) else { throw .socketClosed }
        return descriptor
    }

    /// The descriptor, backend and open `/dev/sendgroup` (when the backend is `.kernel`), for creating a
    /// kernel group; `register` runs under the same lock, so ``close()`` cannot miss the group.
    internal func withOpenDescriptor<R>(
        _ body: (CInt, GroupSendBackend, SendgroupDevice?) throws(GroupUnicastError) -> R
    ) throws(GroupUnicastError) -> R {
        try state.withLock { (state) throws(GroupUnicastError) -> R in
            guard let descriptor = state.descriptor else { throw .socketClosed }
            return try body(descriptor, state.backend, state.backend == .kernel ? state.device : nil)
        }
    }

    /// Lets ``close()`` close `group` too. Throws ``GroupUnicastError/socketClosed`` when the socket
    /// is already closed (the caller then closes the group itself).
    internal func register(_ group: MemberGroup) throws(GroupUnicastError) {
        try state.withLock { (state) throws(GroupUnicastError) in
            guard state.descriptor != nil else { throw .socketClosed }
            groups.withLock { $0[ObjectIdentifier(group)] = WeakGroup(group: group) }
        }
    }

    /// Forgets `group` (it was closed or released).
    internal func unregister(_ group: ObjectIdentifier) {
        groups.withLock { _ = $0.removeValue(forKey: group) }
    }

    // MARK: Group send

    /// Sends `prepend + payload + append` to every recipient, in one system call per chunk.
    ///
    /// Recipients whose datagram would exceed ``maxDatagramSize`` fail with `.messageTooLong`
    /// before any system call. Groups larger than the backend's limit (the module's
    /// `max_recipients`, or 1,024 for `sendmmsg`) are split into several calls. A recipient the
    /// kernel refuses (unreachable network, wrong address family, full buffer on a nonblocking
    /// socket) fails alone and the others are still sent; the result tells which.
    ///
    /// Throws only when nothing was sent: the socket is closed or the call itself was refused
    /// (for example `EBADF`, `ENOTSOCK`, or an `ioctl(SENDGROUP_IOC_SEND)` that returned -1).
    /// A call refused after earlier chunks went out marks the recipients it could not attempt
    /// with its errno instead, so the result still says exactly who got the datagram.
    ///
    /// The corresponding C calls are `ioctl(devfd, SENDGROUP_IOC_SEND, &args)` (`.kernel`),
    /// `sendmmsg(2)` (`.sendmmsg`) or one `sendmsg(2)` per recipient (`.sendmsgLoop`).
    public func send(_ payload: UnsafeRawBufferPointer, to recipients: [Recipient]) throws(GroupUnicastError) -> GroupSendResult {
        try send(payload, to: recipients, extraFlags: 0)
    }

    /// Sends `prepend + payload + append` to every recipient; see ``send(_:to:)-(UnsafeRawBufferPointer,_)``.
    ///
    /// The corresponding C calls are `ioctl(SENDGROUP_IOC_SEND)`, `sendmmsg(2)` or `sendmsg(2)`.
    public func send(_ payload: [UInt8], to recipients: [Recipient]) throws(GroupUnicastError) -> GroupSendResult {
        try payload.withUnsafeBytes { bytes in
            Result { () throws(GroupUnicastError) in try send(bytes, to: recipients, extraFlags: 0) }
        }.get()
    }

    /// Sends one datagram to one address and throws if it was not sent.
    ///
    /// The corresponding C function is `sendmsg(2)`.
    public func send(_ datagram: [UInt8], to address: SocketAddress) throws(GroupUnicastError) {
        let result = try send(datagram, to: [Recipient(address)])
        if let error = result.errors[0] {
            throw .systemCall(call: "sendmsg(\(address))", errno: error)
        }
    }

    /// The group send of every backend. `checksDatagramSize: false` (``MemberGroup``'s user-space
    /// implementation) leaves the per-recipient size limit to the UDP stack, as a kernel group does.
    internal func send(
        _ payload: UnsafeRawBufferPointer,
        to recipients: [Recipient],
        extraFlags: CInt,
        checksDatagramSize: Bool = true
    ) throws(GroupUnicastError) -> GroupSendResult {
        // The buffers point at the payload only for the duration of this call.
        let payload = PayloadReference(payload)
        return try sendBuffers.withLock { (buffers) throws(GroupUnicastError) -> GroupSendResult in
            let (descriptor, device, initialBackend) = try state.withLock { (state) throws(GroupUnicastError) in
                guard let descriptor = state.descriptor else { throw GroupUnicastError.socketClosed }
                return (descriptor, state.device, state.backend)
            }
            var backend = initialBackend
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

            let flags = CInt(MSG_NOSIGNAL) | extraFlags | (options.nonBlocking ? CInt(MSG_DONTWAIT) : 0)
            var sentSomething = false
            var start = pending.startIndex
            while start < pending.endIndex {
                let limit = backend == .kernel ? (device?.info.maxRecipients ?? 1) : Self.sendmmsgBatchLimit
                let chunk = pending[start..<min(start + limit, pending.endIndex)]
                buffers.prepare(recipients, chunk, payload: payload, family: family, backend: backend)
                let outcome: ChunkOutcome
                switch backend {
                case .kernel:
                    guard let device else { preconditionFailure("kernel backend without a device") }
                    outcome = try sendChunkThroughKernel(device, descriptor, payload, chunk, &buffers, flags, &errors)
                case .sendmmsg:
                    outcome = sendChunkWithSendmmsg(descriptor, chunk, &buffers, flags, &errors)
                case .sendmsgLoop, .automatic:
                    outcome = sendChunkWithSendmsgLoop(descriptor, chunk, &buffers, flags, &errors)
                }
                switch outcome {
                case .done(let sent):
                    sentSomething = sentSomething || sent
                    start = chunk.endIndex
                case .sendmmsgUnavailable:
                    // Seccomp or an old kernel: fall back for good, as `.automatic` promises.
                    logger.warning("sendmmsg unavailable (ENOSYS); falling back to sendmsg per recipient")
                    backend = .sendmsgLoop
                    state.withLock { $0.backend = .sendmsgLoop }
                case .refused(let call, let error):
                    guard sentSomething else { throw .systemCall(call: call, errno: error) }
                    for index in pending[start...] { errors[index] = error }
                    start = pending.endIndex
                }
            }
            buffers.trim()
            return GroupSendResult(backend: backend, errors: errors)
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

    private enum ChunkOutcome {
        /// Every recipient of the chunk was attempted; `sent` tells whether any datagram went out.
        case done(sent: Bool)
        /// `sendmmsg` answered ENOSYS before sending anything.
        case sendmmsgUnavailable
        /// The call itself failed before attempting any recipient of the chunk.
        case refused(call: String, errno: Errno)
    }

    /// Errors that concern the socket, not one recipient: the call could not attempt anyone.
    private static func isCallLevel(_ error: Errno) -> Bool {
        error == .badFileDescriptor || error == .notSocket || error == .brokenPipe
            || error == .notSupported || error == .noFunction
    }

    private func sendChunkThroughKernel(
        _ device: SendgroupDevice,
        _ descriptor: CInt,
        _ payload: PayloadReference,
        _ chunk: ArraySlice<Int>,
        _ buffers: inout SendBuffers,
        _ flags: CInt,
        _ errors: inout [Errno?]
    ) throws(GroupUnicastError) -> ChunkOutcome {
        guard let entries = buffers.entries, let results = buffers.results else {
            preconditionFailure("send buffers not prepared")
        }
        var arguments = sendgroup_send_args()
        arguments.size = UInt32(SENDGROUP_SEND_ARGS_SIZE_LATEST)
        arguments.fd = UInt32(descriptor)
        arguments.flags = 0
        arguments.msg_flags = UInt32(flags) & CGroupUnicast_SENDGROUP_MSG_FLAGS
        arguments.shared = UInt64(payload.address)
        arguments.shared_len = UInt32(payload.count)
        arguments.recipient_size = UInt32(MemoryLayout<sendgroup_recipient>.size)
        arguments.recipients = UInt64(UInt(bitPattern: entries))
        arguments.recipient_count = UInt32(chunk.count)
        arguments.reserved = 0
        arguments.results = UInt64(UInt(bitPattern: results))

        let call = "ioctl(SENDGROUP_IOC_SEND)"
        let sent: CInt
        switch retryingInterrupts(call, { CGroupUnicast_sendgroup_send(device.descriptor, &arguments) }) {
        case .success(let count):
            sent = count
        case .failure(let error):
            return .refused(call: call, errno: error)
        }
        var succeeded = 0
        for (slot, index) in chunk.enumerated() {
            let result = results[slot]
            if result == 0 {
                succeeded += 1
            } else if result < 0 {
                errors[index] = Errno(rawValue: -result)
            } else {
                throw .kernelResultInconsistent(reason: "results[\(slot)] was not written (returned \(sent))")
            }
        }
        guard succeeded == Int(sent) else {
            throw .kernelResultInconsistent(reason: "returned \(sent) but \(succeeded) results are 0")
        }
        return .done(sent: sent > 0)
    }

    private func sendChunkWithSendmmsg(
        _ descriptor: CInt,
        _ chunk: ArraySlice<Int>,
        _ buffers: inout SendBuffers,
        _ flags: CInt,
        _ errors: inout [Errno?]
    ) -> ChunkOutcome {
        guard let messages = buffers.messages else { preconditionFailure("send buffers not prepared") }
        // sendmmsg stops at the first message that fails and, having sent some, reports only their
        // count: the failing message is then first of the next call, which reports its errno.
        var slot = 0
        var sent = false
        while slot < chunk.count {
            let remaining = UInt32(chunk.count - slot)
            switch retryingInterrupts("sendmmsg", { CGroupUnicast_sendmmsg(descriptor, messages + slot, remaining, flags) }) {
            case .success(let count):
                precondition(count > 0, "sendmmsg sent no message of a non-empty vector")
                slot += Int(count)
                sent = true
            case .failure(let error):
                if Self.isCallLevel(error) {
                    if error == .noFunction && slot == 0 && requestedBackend == .automatic {
                        return .sendmmsgUnavailable
                    }
                    guard !sent else {
                        for index in chunk.dropFirst(slot) { errors[index] = error }
                        return .done(sent: true)
                    }
                    return .refused(call: "sendmmsg", errno: error)
                }
                errors[chunk[chunk.startIndex + slot]] = error
                slot += 1
            }
        }
        return .done(sent: sent)
    }

    private func sendChunkWithSendmsgLoop(
        _ descriptor: CInt,
        _ chunk: ArraySlice<Int>,
        _ buffers: inout SendBuffers,
        _ flags: CInt,
        _ errors: inout [Errno?]
    ) -> ChunkOutcome {
        guard let messages = buffers.messages else { preconditionFailure("send buffers not prepared") }
        var sent = false
        for (slot, index) in chunk.enumerated() {
            let result = withUnsafePointer(to: &messages[slot].msg_hdr) { header in
                retryingInterrupts("sendmsg") { Glibc.sendmsg(descriptor, header, flags) }
            }
            switch result {
            case .success:
                sent = true
            case .failure(let error):
                if Self.isCallLevel(error) {
                    guard !sent else {
                        for index in chunk.dropFirst(slot) { errors[index] = error }
                        return .done(sent: true)
                    }
                    return .refused(call: "sendmsg", errno: error)
                }
                errors[index] = error
            }
        }
        return .done(sent: sent)
    }

    // MARK: Receive

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
            let call = batched ? "recvmmsg" : "recvmsg"
            let result = retryingInterrupts(call) { () -> Int in
                if batched {
                    return Int(CGroupUnicast_recvmmsg(descriptor, messages, UInt32(count), flags, nil))
                }
                let length = Glibc.recvmsg(descriptor, &messages[0].msg_hdr, flags)
                if length >= 0 { messages[0].msg_len = UInt32(length) }
                return length >= 0 ? 1 : length
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
                throw .systemCall(call: call, errno: error)
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
        let ready = try systemCall("poll") { () -> CInt in
            // Recomputed on every EINTR retry, so an interrupted wait keeps its deadline.
            var milliseconds: CInt = -1
            if let deadline {
                let left = clock.now.duration(to: deadline)
                let (seconds, attoseconds) = left.components
                milliseconds = left <= .zero ? 0 : CInt(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            }
            return Glibc.poll(&entry, 1, milliseconds)
        }
        if isClosed || entry.revents & CShort(POLLNVAL) != 0 { throw .socketClosed }
        return ready > 0
    }
}
