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
/// for failure in result.failures { print(clients[failure.recipient].address, failure.error) }
/// ```
///
/// A group send goes through the backend in ``backend``: the `/dev/sendgroup` ioctl when the
/// sendgroup module is loaded, else `sendmmsg(2)`. Every backend gives the same observable
/// result: the same bytes on the wire and the same per-recipient errno for the same cause.
///
/// Every method is synchronous: receives and sends block unless the socket is nonblocking
/// (``Options/nonBlocking``). ``AsyncGroupSocket`` wraps a socket for async code: a separate
/// type, so the compiler never picks a blocking call where an async one was meant, or the reverse.
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

    internal let logger: Logger
    internal let state: Mutex<State>
    internal let sendBuffers = Mutex(SendBuffers())
    internal let receiveBuffers = Mutex(ReceiveBuffers())
    internal let readiness = ReadinessWaiters()
    /// The groups made by ``makeGroup(backend:)`` that are still alive: ``close()`` closes them.
    private let groups = Mutex<[ObjectIdentifier: WeakGroup]>([:])

    private struct WeakGroup: Sendable {
        weak var group: MemberGroup?
    }

    internal struct State {
        var descriptor: CInt?
        var device: SendgroupDevice?
        var backend: GroupSendBackend
        var boundPort: UInt16 = 0
    }

    // MARK: Creating and closing

    /// Creates an unbound UDP socket.
    ///
    /// With ``GroupSendBackend/automatic`` the socket uses the kernel module when `/dev/sendgroup`
    /// can be opened and `sendmmsg(2)` otherwise, without error. With ``GroupSendBackend/sendgroup``
    /// a missing module throws ``GroupUnicastError/kernelModuleNotLoaded``.
    ///
    /// The corresponding C calls are `socket(AF_INET or AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP)`,
    /// `setsockopt(2)` for the options, and `open("/dev/sendgroup")` plus `ioctl(SENDGROUP_IOC_INFO)`
    /// for the sendgroup backend.
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
        case .sendgroup:
            device = try SendgroupDevice.open()
            resolved = .sendgroup
        case .automatic:
            do {
                device = try SendgroupDevice.open()
                resolved = .sendgroup
            } catch .kernelModuleNotLoaded {
                logger.debug("sendgroup module not loaded; using sendmmsg")
                resolved = .sendmmsg
            } catch {
                logger.warning("cannot use \(SendgroupDevice.path), using sendmmsg: \(error)")
                resolved = .sendmmsg
            }
        case .sendmmsg, .socket:
            resolved = backend
        }

        let type = CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
            | (options.nonBlocking ? CInt(SOCK_NONBLOCK.rawValue) : 0)
        let descriptor = CInt(try systemCall(.socket(family: family.rawValue, type: type, protocol: CInt(IPPROTO_UDP))))
        do {
            try Self.apply(options, family: family, to: descriptor)
        } catch {
            try? closeDescriptor(descriptor)
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
        func set(_ level: CInt, _ option: CInt, _ value: CInt, _ name: String) throws(GroupUnicastError) {
            var value = value
            _ = try withUnsafeBytes(of: &value) { (value) throws(GroupUnicastError) in
                try systemCall(
                    .setsockopt(descriptor: descriptor, level: level, option: option, value: value.baseAddress!,
                                length: socklen_t(value.count)),
                    named: "setsockopt(\(name))")
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
            _ = try systemCall(.setReceivePacketInfo(descriptor: descriptor, family: family.rawValue, enable: 1))
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
        _ = Syscall.shutdown(descriptor: descriptor, how: CInt(SHUT_RDWR)).run()
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
        try closeDescriptor(descriptor)
    }

    deinit {
        // No other reference exists, so nothing else can use the descriptor.
        if let descriptor = state.withLock({ $0.descriptor }) {
            readiness.closeAll()
            try? closeDescriptor(descriptor)
        }
    }

    // MARK: Properties

    /// Whether ``close()`` has been called.
    public var isClosed: Bool {
        state.withLock { $0.descriptor == nil }
    }

    /// The backend group sends use now: ``GroupSendBackend/sendgroup``, ``GroupSendBackend/sendmmsg``
    /// or ``GroupSendBackend/socket``, never ``GroupSendBackend/automatic``.
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
                    try withUnsafeMutablePointer(to: &length) { (length) throws(GroupUnicastError) in
                        try systemCall(.getsockname(descriptor: descriptor, address: address, length: length))
                    }
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
            try systemCall(.bind(descriptor: descriptor, address: pointer, length: length), named: "bind(\(address))")
        }
        let port = try localAddress.port
        state.withLock { $0.boundPort = port }
    }

    internal func descriptor() throws(GroupUnicastError) -> CInt {
        guard let descriptor = state.withLock({ $0.descriptor }) else { throw .socketClosed }
        return descriptor
    }

    /// The descriptor, backend and open `/dev/sendgroup` (when the backend is `sendgroup`), for creating a
    /// kernel group; `register` runs under the same lock, so ``close()`` cannot miss the group.
    internal func withOpenDescriptor<R>(
        _ body: (CInt, GroupSendBackend, SendgroupDevice?) throws(GroupUnicastError) -> R
    ) throws(GroupUnicastError) -> R {
        try state.withLock { (state) throws(GroupUnicastError) -> R in
            guard let descriptor = state.descriptor else { throw .socketClosed }
            return try body(descriptor, state.backend, state.backend == .sendgroup ? state.device : nil)
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

}
