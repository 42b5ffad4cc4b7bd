#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGroupUnicast
import Synchronization
import SystemPackage

// MARK: - Members and results

/// One member of a ``MemberGroup``: a caller-chosen id, unique in its group, and the recipient
/// its datagrams go to with their private bytes.
///
/// Every payload a group sends reaches this member as `prepend + payload + append`.
/// The corresponding C type is `struct sendgroup_member`.
public struct GroupMember: Hashable, Sendable, Identifiable {
    /// The member's id; the group sends to its members in ascending id order.
    public var id: UInt64
    /// Where the member's datagrams go and the bytes around each payload
    /// (prepend + append at most ``MemberGroup/maxPrivateBytes``).
    public var recipient: Recipient

    /// Creates member `id` at `address` with optional private bytes around every payload.
    public init(id: UInt64, _ address: SocketAddress, prepend: [UInt8] = [], append: [UInt8] = []) {
        self.init(id: id, recipient: Recipient(address, prepend: prepend, append: append))
    }

    /// Creates member `id` that receives as `recipient`.
    public init(id: UInt64, recipient: Recipient) {
        self.id = id
        self.recipient = recipient
    }
}

/// A membership change of a ``MemberGroup``, as named in ``GroupUnicastError/membershipRefused(change:errno:)``.
public enum GroupMembershipChange: String, Hashable, Sendable, CustomStringConvertible {
    /// ``MemberGroup/add(_:)``: `SENDGROUP_GROUP_IOC_ADD` on a kernel group.
    case add
    /// ``MemberGroup/update(_:)``: `SENDGROUP_GROUP_IOC_UPDATE` on a kernel group.
    case update
    /// ``MemberGroup/remove(_:)``: `SENDGROUP_GROUP_IOC_REMOVE` on a kernel group.
    case remove

    /// `group add (SENDGROUP_GROUP_IOC_ADD)` and so on: the operation and the ioctl a kernel group uses.
    public var description: String {
        switch self {
        case .add: "group add (SENDGROUP_GROUP_IOC_ADD)"
        case .update: "group update (SENDGROUP_GROUP_IOC_UPDATE)"
        case .remove: "group remove (SENDGROUP_GROUP_IOC_REMOVE)"
        }
    }
}

/// A datagram of a ``MemberGroup`` send that was not sent: to whom, which payload, and why.
///
/// The corresponding C type is `struct sendgroup_failure` (`error` there is the negative errno).
public struct GroupSendFailure: Hashable, Sendable {
    /// The member the datagram was for.
    public var memberID: UInt64
    /// The index of the payload in the send call.
    public var payloadIndex: Int
    /// Why: what `sendmsg(2)` answers for this destination, such as `ENETUNREACH`, `EAFNOSUPPORT`,
    /// `EINVAL` (port 0), `EMSGSIZE` (datagram too large for the UDP stack) or `EAGAIN`.
    public var error: Errno

    /// Creates a failure record.
    public init(memberID: UInt64, payloadIndex: Int, error: Errno) {
        self.memberID = memberID
        self.payloadIndex = payloadIndex
        self.error = error
    }
}

/// What one ``MemberGroup`` send did.
///
/// Datagrams go out payload by payload, each payload to every member in ascending id order;
/// ``failures`` lists the failed ones in that order, up to the failure limit of the call.
public struct MemberGroupSendResult: Hashable, Sendable {
    /// The implementation that sent.
    public var implementation: MemberGroup.Implementation
    /// The payloads of the call.
    public var payloadCount: Int
    /// The datagrams handed to the UDP stack.
    public var sentCount: Int
    /// The datagrams that failed, including those beyond the failure limit.
    public var failureCount: Int
    /// The first failures, in send order (payload, then ascending member id), at most the call's
    /// `failureLimit`.
    public var failures: [GroupSendFailure]

    /// Creates a result.
    public init(
        implementation: MemberGroup.Implementation,
        payloadCount: Int,
        sentCount: Int,
        failureCount: Int,
        failures: [GroupSendFailure]
    ) {
        self.implementation = implementation
        self.payloadCount = payloadCount
        self.sentCount = sentCount
        self.failureCount = failureCount
        self.failures = failures
    }

    /// Whether every datagram was sent.
    public var allSent: Bool {
        failureCount == 0
    }

    /// Whether more datagrams failed than ``failures`` lists.
    public var failuresTruncated: Bool {
        failures.count < failureCount
    }
}

// MARK: - MemberGroup

/// A group of members bound to one ``GroupSocket``: the members are stored once, and a send passes
/// only the payloads, one or a batch of them (the audio and the video of one tick, say).
///
/// ```swift
/// let socket = try GroupSocket(bindingTo: try SocketAddress(parsing: "[::]:0"))
/// let group = try socket.makeGroup()      // in the kernel when the module offers groups
/// try group.add([GroupMember(id: 7, client, prepend: header)])
/// let result = try group.send([audio, video])
/// for failure in result.failures { print(failure.memberID, failure.payloadIndex, failure.error) }
/// try group.close()
/// ```
///
/// Two implementations, one behaviour (``implementation`` says which one a group uses):
/// - ``Implementation/kernel``: a group fd of the sendgroup module (`SENDGROUP_IOC_GROUP_CREATE`);
///   members live in the kernel, and a send is one `ioctl(SENDGROUP_GROUP_IOC_SEND)` per up to
///   64 payloads, with no recipient array copied from user space.
/// - ``Implementation/userSpace(_:)``: members live in this object, and a send is one group send
///   of the socket's backend per payload (`sendmmsg(2)`, a `sendmsg(2)` loop or the one-shot
///   `SENDGROUP_IOC_SEND`).
///
/// Both send each payload to every member in ascending id order with the same bytes on the
/// wire, report the same per-member errno for the same cause, and refuse the same membership
/// changes with the same ``GroupUnicastError/membershipRefused(change:errno:)``, as a whole.
/// The datagram size limit is the UDP stack's for both (65,507 bytes over IPv4, 65,527 over
/// IPv6, reported per member as `EMSGSIZE`); member prepend + append is at most 1,024 bytes.
///
/// Operations on one group are serialised. The group keeps its socket alive; ``close()``, the
/// socket's ``GroupSocket/close()``, or releasing the group closes it (a kernel group's fd).
public final class MemberGroup: Sendable {
    /// Where a group's members live.
    public enum Implementation: Hashable, Sendable, CustomStringConvertible {
        /// In the kernel, behind a group fd of the sendgroup module.
        case kernel
        /// In this process; sends go through the socket's backend, given here.
        case userSpace(GroupSendBackend)

        /// `kernel`, or `user space (sendmmsg)` and the like.
        public var description: String {
            switch self {
            case .kernel: "kernel"
            case .userSpace(let backend): "user space (\(backend))"
            }
        }
    }

    /// Which implementation ``GroupSocket/makeGroup(placement:)`` should use.
    public enum Placement: Hashable, Sendable {
        /// The kernel when the socket's backend is `.kernel` and the module reports
        /// `SENDGROUP_FEATURE_GROUPS`, else user space. Never an error.
        case automatic
        /// The kernel, or throw ``GroupUnicastError/kernelGroupsUnavailable(reason:)``.
        case kernel
        /// User space, whatever the module offers.
        case userSpace
    }

    /// The most members of a group (`SENDGROUP_MAX_MEMBERS`).
    public static let maxMembers = Int(SENDGROUP_MAX_MEMBERS)
    /// The most prepend + append bytes of one member (`SENDGROUP_MAX_MEMBER_PRIVATE`).
    public static let maxPrivateBytes = Int(SENDGROUP_MAX_MEMBER_PRIVATE)
    /// The most payloads one `SENDGROUP_GROUP_IOC_SEND` takes; larger batches are split, with the
    /// same send order.
    public static let maxPayloadsPerCall = Int(SENDGROUP_MAX_PAYLOADS)
    /// How many failures a send lists unless told otherwise.
    public static let defaultFailureLimit = 1024

    /// The implementation this group uses.
    public let implementation: Implementation
    /// The socket the group sends through.
    public let socket: GroupSocket

    /// `nil` once closed. Held for the whole of every operation: they are serialised, and
    /// ``close()`` waits for the one in progress.
    private let state: Mutex<Storage?>

    private enum Storage: Sendable {
        case kernel(KernelGroupDescriptor)
        case userSpace(UserSpaceMembers)
    }

    internal init(socket: GroupSocket, placement: Placement) throws(GroupUnicastError) {
        self.socket = socket
        let (backend, kernel) = try socket.withOpenDescriptor {
            (descriptor, backend, device) throws(GroupUnicastError) -> (GroupSendBackend, KernelGroupDescriptor?) in
            switch placement {
            case .userSpace:
                return (backend, nil)
            case .automatic:
                guard let device, device.info.supportsGroups else { return (backend, nil) }
                return (backend, try KernelGroupDescriptor.create(device: device, socket: descriptor))
            case .kernel:
                guard let device else {
                    throw .kernelGroupsUnavailable(reason: "the socket's backend is \(backend), not kernel")
                }
                guard device.info.supportsGroups else {
                    throw .kernelGroupsUnavailable(
                        reason: "the sendgroup module (ABI \(device.info.abiVersion)) does not report SENDGROUP_FEATURE_GROUPS")
                }
                return (backend, try KernelGroupDescriptor.create(device: device, socket: descriptor))
            }
        }
        if let kernel {
            implementation = .kernel
            state = Mutex(.kernel(kernel))
        } else {
            implementation = .userSpace(backend)
            state = Mutex(.userSpace(UserSpaceMembers()))
        }
        do {
            try socket.register(self)
        } catch {
            try? close()
            throw error
        }
    }

    deinit {
        // A kernel group's descriptor closes with its KernelGroupDescriptor.
        socket.unregister(ObjectIdentifier(self))
    }

    // MARK: Closing

    /// Closes the group now: a kernel group's fd is closed, which frees its members in the kernel
    /// and drops its reference to the socket. Later operations throw
    /// ``GroupUnicastError/groupClosed``; so does a second `close()`.
    ///
    /// The corresponding C call is `close(2)` on the group fd.
    public func close() throws(GroupUnicastError) {
        try state.withLock { (state) throws(GroupUnicastError) in
            guard let storage = state.take() else { throw .groupClosed }
            if case .kernel(let descriptor) = storage { try descriptor.close() }
        }
        socket.unregister(ObjectIdentifier(self))
    }

    /// Called by ``GroupSocket/close()``.
    internal func closeBecauseSocketClosed() {
        state.withLock { state in
            if case .kernel(let descriptor) = state.take() { try? descriptor.close() }
        }
    }

    /// Whether the group is closed.
    public var isClosed: Bool {
        state.withLock { $0 == nil }
    }

    // MARK: Membership

    /// Adds `members`, all or none.
    ///
    /// Throws ``GroupUnicastError/membershipRefused(change:errno:)`` with `EEXIST` when an id is
    /// already a member, and the other refusals listed there. An empty array changes nothing and
    /// makes no system call. On an IPv6 socket IPv4 addresses are stored IPv4-mapped.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_ADD, &args)` for a kernel group.
    public func add(_ members: [GroupMember]) throws(GroupUnicastError) {
        try change(.add, members)
    }

    /// Replaces the destination and private bytes of existing members, all or none; their next
    /// datagrams carry the new bytes.
    ///
    /// Throws ``GroupUnicastError/membershipRefused(change:errno:)`` with `ENOENT` when an id is
    /// not a member, and the other refusals listed there. An empty array changes nothing.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_UPDATE, &args)` for a kernel group.
    public func update(_ members: [GroupMember]) throws(GroupUnicastError) {
        try change(.update, members)
    }

    /// Removes the members with these ids, all or none. Once it returns, no send reaches them.
    ///
    /// Throws ``GroupUnicastError/membershipRefused(change:errno:)`` with `ENOENT` when an id is
    /// not a member, `EINVAL` when an id repeats, `E2BIG` past 65,536 ids. An empty array changes
    /// nothing.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_REMOVE, &args)` for a kernel group.
    public func remove(_ ids: [UInt64]) throws(GroupUnicastError) {
        guard !ids.isEmpty else { return }
        try withStorage { (storage) throws(GroupUnicastError) in
            switch storage {
            case .kernel(let group):
                try group.remove(ids)
            case .userSpace(let members):
                try members.remove(ids)
            }
        }
    }

    private func change(_ change: GroupMembershipChange, _ members: [GroupMember]) throws(GroupUnicastError) {
        guard !members.isEmpty else { return }
        let family = socket.family
        let members = family == .ipv6
            ? members.map { member in
                var member = member
                member.recipient.address = member.recipient.address.mappedToIPv6
                return member
            }
            : members
        try withStorage { (storage) throws(GroupUnicastError) in
            switch storage {
            case .kernel(let group):
                try group.change(change, members)
            case .userSpace(let userSpace):
                try userSpace.change(change, members)
            }
        }
    }

    /// The member ids, ascending.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_LIST, &args)` for a kernel group.
    public var memberIDs: [UInt64] {
        get throws(GroupUnicastError) {
            try withStorage { (storage) throws(GroupUnicastError) -> [UInt64] in
                switch storage {
                case .kernel(let group): try group.list()
                case .userSpace(let members): members.sortedIDs
                }
            }
        }
    }

    /// The number of members.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_LIST, &args)` with capacity 0
    /// for a kernel group.
    public var count: Int {
        get throws(GroupUnicastError) {
            try withStorage { (storage) throws(GroupUnicastError) -> Int in
                switch storage {
                case .kernel(let group): try group.count()
                case .userSpace(let members): members.count
                }
            }
        }
    }

    // MARK: Send

    /// Sends `payload` to every member; see ``send(_:failureLimit:)-([UnsafeRawBufferPointer],_)``.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_SEND, &args)` for a kernel group.
    public func send(_ payload: [UInt8], failureLimit: Int = MemberGroup.defaultFailureLimit) throws(GroupUnicastError) -> MemberGroupSendResult {
        try send([payload], failureLimit: failureLimit)
    }

    /// Sends each payload, in order, to every member in ascending id order;
    /// see ``send(_:failureLimit:)-([UnsafeRawBufferPointer],_)``.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_SEND, &args)` for a kernel group.
    public func send(_ payloads: [[UInt8]], failureLimit: Int = MemberGroup.defaultFailureLimit) throws(GroupUnicastError) -> MemberGroupSendResult {
        try withPinned(payloads[...], []) { (buffers) throws(GroupUnicastError) in
            try send(buffers, failureLimit: failureLimit)
        }
    }

    /// Sends each payload, in order, to every member in ascending id order: member `m` gets
    /// `m.prepend + payload + m.append` for every payload.
    ///
    /// A datagram the UDP stack refuses (unreachable destination, wrong address family, port 0,
    /// too large, full buffer on a nonblocking socket) fails alone; the send goes on and the result
    /// lists it as a ``GroupSendFailure``, up to `failureLimit` of them (the count is always exact).
    /// An empty group sends nothing and fails nothing; so does an empty `payloads`.
    ///
    /// Throws ``GroupUnicastError/groupPayloadTooLarge(index:size:)`` before any system call when a
    /// payload is over 65,507 bytes, ``GroupUnicastError/groupClosed`` after ``close()``, and
    /// ``GroupUnicastError/systemCall(call:errno:)`` when the call itself was refused before
    /// anything was sent. Batches of more than 64 payloads take several calls, in the same order.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_SEND, &args)` for a kernel
    /// group (its `struct sendgroup_failure` array holds the failures); for a user-space group, the
    /// socket's group send (`sendmmsg(2)`, `sendmsg(2)` or `ioctl(SENDGROUP_IOC_SEND)`) per payload.
    public func send(
        _ payloads: [UnsafeRawBufferPointer],
        failureLimit: Int = MemberGroup.defaultFailureLimit
    ) throws(GroupUnicastError) -> MemberGroupSendResult {
        precondition(failureLimit >= 0, "failureLimit must not be negative")
        for (index, payload) in payloads.enumerated() where payload.count > GroupSocket.maxDatagramSize {
            throw .groupPayloadTooLarge(index: index, size: payload.count)
        }
        let implementation = implementation
        let socket = socket
        return try withStorage { (storage) throws(GroupUnicastError) -> MemberGroupSendResult in
            var result = MemberGroupSendResult(
                implementation: implementation, payloadCount: payloads.count, sentCount: 0, failureCount: 0, failures: [])
            guard !payloads.isEmpty else { return result }
            switch storage {
            case .kernel(let group):
                try group.send(payloads, failureLimit: failureLimit, nonBlocking: socket.options.nonBlocking, into: &result)
            case .userSpace(let members):
                try members.send(payloads, through: socket, failureLimit: failureLimit, into: &result)
            }
            return result
        }
    }

    private func withStorage<R>(_ body: (Storage) throws(GroupUnicastError) -> R) throws(GroupUnicastError) -> R {
        try state.withLock { (state) throws(GroupUnicastError) -> R in
            guard let storage = state else { throw .groupClosed }
            return try body(storage)
        }
    }
}

/// Calls `body` with every array of `pending` pinned as a raw buffer (appended to `pinned`).
private func withPinned<R>(
    _ pending: ArraySlice<[UInt8]>,
    _ pinned: [UnsafeRawBufferPointer],
    _ body: ([UnsafeRawBufferPointer]) throws(GroupUnicastError) -> R
) throws(GroupUnicastError) -> R {
    guard let first = pending.first else { return try body(pinned) }
    return try first.withUnsafeBytes { bytes in
        Result { () throws(GroupUnicastError) in try withPinned(pending.dropFirst(), pinned + [bytes], body) }
    }.get()
}

extension GroupSocket {
    /// Creates a group of members bound to this socket, empty.
    ///
    /// With ``MemberGroup/Placement/automatic`` the group lives in the kernel when this socket's
    /// backend is `.kernel` and the module reports `SENDGROUP_FEATURE_GROUPS`, and in user space
    /// otherwise (read ``MemberGroup/implementation``).
    ///
    /// The corresponding C call is `ioctl(devfd, SENDGROUP_IOC_GROUP_CREATE, &args)` on
    /// `/dev/sendgroup` for a kernel group, which returns the group fd.
    public func makeGroup(placement: MemberGroup.Placement = .automatic) throws(GroupUnicastError) -> MemberGroup {
        try MemberGroup(socket: self, placement: placement)
    }
}

// MARK: - Kernel implementation

/// A group fd of the sendgroup module, closed when this object goes away.
///
/// `@unchecked Sendable`: only used inside ``MemberGroup``'s mutex.
private final class KernelGroupDescriptor: @unchecked Sendable {
    private var descriptor: CInt?
    /// Members in the group, tracked to size the failure array of a send.
    private var memberCount = 0
    private var payloadArguments: [sendgroup_payload] = []
    private var failureSlots: [sendgroup_failure] = []

    private init(descriptor: CInt) {
        self.descriptor = descriptor
    }

    static func create(device: SendgroupDevice, socket: CInt) throws(GroupUnicastError) -> KernelGroupDescriptor {
        var arguments = sendgroup_group_create_args()
        arguments.size = UInt32(SENDGROUP_GROUP_CREATE_ARGS_SIZE_VER0)
        arguments.fd = UInt32(bitPattern: socket)
        let descriptor = try systemCall("ioctl(SENDGROUP_IOC_GROUP_CREATE)") {
            CGroupUnicast_sendgroup_group_create(device.descriptor, &arguments)
        }
        return KernelGroupDescriptor(descriptor: descriptor)
    }

    private func open() -> CInt {
        guard let descriptor else { preconditionFailure("kernel group used after close") }
        return descriptor
    }

    func close() throws(GroupUnicastError) {
        guard let descriptor = descriptor.take() else { return }
        // As GroupSocket.close: close(2) is never retried.
        if Glibc.close(descriptor) == -1 {
            let error = Errno(rawValue: errno)
            if error != .interrupted { throw .systemCall(call: "close(group fd)", errno: error) }
        }
    }

    deinit {
        if let descriptor { _ = Glibc.close(descriptor) }
    }

    /// Errnos with which the kernel refuses a membership change as a whole.
    private static let refusals: Set<Errno> = [
        .fileExists, .noSuchFileOrDirectory, .invalidArgument, .noSpace, .messageTooLong, .argListTooLong,
    ]

    private func members(
        _ change: GroupMembershipChange,
        entries: UnsafeRawBufferPointer,
        count: Int,
        entrySize: Int
    ) throws(GroupUnicastError) {
        let descriptor = open()
        var arguments = sendgroup_members_args()
        arguments.size = UInt32(SENDGROUP_MEMBERS_ARGS_SIZE_VER0)
        arguments.members = UInt64(UInt(bitPattern: entries.baseAddress))
        // More than UInt32 can say is E2BIG like any count over the limit.
        arguments.count = UInt32(clamping: count)
        arguments.member_size = UInt32(entrySize)
        let (call, result) = switch change {
        case .add:
            ("ioctl(SENDGROUP_GROUP_IOC_ADD)", retryingInterrupts("ioctl(SENDGROUP_GROUP_IOC_ADD)") {
                CGroupUnicast_sendgroup_group_add(descriptor, &arguments)
            })
        case .update:
            ("ioctl(SENDGROUP_GROUP_IOC_UPDATE)", retryingInterrupts("ioctl(SENDGROUP_GROUP_IOC_UPDATE)") {
                CGroupUnicast_sendgroup_group_update(descriptor, &arguments)
            })
        case .remove:
            ("ioctl(SENDGROUP_GROUP_IOC_REMOVE)", retryingInterrupts("ioctl(SENDGROUP_GROUP_IOC_REMOVE)") {
                CGroupUnicast_sendgroup_group_remove(descriptor, &arguments)
            })
        }
        if case .failure(let error) = result {
            if Self.refusals.contains(error) { throw .membershipRefused(change: change, errno: error) }
            throw .systemCall(call: call, errno: error)
        }
    }

    func change(_ change: GroupMembershipChange, _ members: [GroupMember]) throws(GroupUnicastError) {
        // The kernel copies the private bytes in during the call: pin them in one arena meanwhile.
        let privateBytes = members.reduce(0) { $0 + $1.recipient.prepend.count + $1.recipient.append.count }
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(privateBytes, 1), alignment: 16)
        defer { arena.deallocate() }
        let entries = UnsafeMutableBufferPointer<sendgroup_member>.allocate(capacity: members.count)
        defer { entries.deallocate() }
        var offset = 0
        func place(_ bytes: [UInt8]) -> (UInt64, UInt32) {
            guard !bytes.isEmpty, let base = arena.baseAddress else { return (0, 0) }
            let start = base + offset
            bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            offset += bytes.count
            return (UInt64(UInt(bitPattern: start)), UInt32(bytes.count))
        }
        for (slot, member) in members.enumerated() {
            var entry = sendgroup_member()
            entry.id = member.id
            var storage = sockaddr_storage()
            _ = member.recipient.address.write(to: &storage)
            let status = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    CGroupUnicast_sendgroup_recipient_set_address(&entry.recipient, $0)
                }
            }
            precondition(status == 0, "SocketAddress wrote a family other than AF_INET/AF_INET6")
            (entry.recipient.prepend, entry.recipient.prepend_len) = place(member.recipient.prepend)
            (entry.recipient.append, entry.recipient.append_len) = place(member.recipient.append)
            entries[slot] = entry
        }
        try self.members(change, entries: UnsafeRawBufferPointer(entries), count: members.count,
                         entrySize: MemoryLayout<sendgroup_member>.size)
        if change == .add { memberCount += members.count }
    }

    func remove(_ ids: [UInt64]) throws(GroupUnicastError) {
        try ids.withUnsafeBytes { bytes in
            Result { () throws(GroupUnicastError) in
                try members(.remove, entries: bytes, count: ids.count, entrySize: MemoryLayout<UInt64>.size)
            }
        }.get()
        memberCount -= ids.count
    }

    /// The member count and up to `capacity` ids.
    private func list(capacity: Int) throws(GroupUnicastError) -> (count: Int, ids: [UInt64]) {
        let descriptor = open()
        var ids = [UInt64](repeating: 0, count: capacity)
        let (count, written) = try ids.withUnsafeMutableBufferPointer { (buffer) throws(GroupUnicastError) -> (Int, Int) in
            var arguments = sendgroup_list_args()
            arguments.size = UInt32(SENDGROUP_LIST_ARGS_SIZE_VER0)
            arguments.capacity = UInt32(clamping: buffer.count)
            arguments.ids = UInt64(UInt(bitPattern: buffer.baseAddress))
            let written = try systemCall("ioctl(SENDGROUP_GROUP_IOC_LIST)") {
                CGroupUnicast_sendgroup_group_list(descriptor, &arguments)
            }
            return (Int(arguments.count), Int(written))
        }
        return (count, Array(ids.prefix(written)))
    }

    func count() throws(GroupUnicastError) -> Int {
        try list(capacity: 0).count
    }

    func list() throws(GroupUnicastError) -> [UInt64] {
        var capacity = memberCount
        while true {
            let (count, ids) = try list(capacity: capacity)
            if count <= capacity { return ids }
            capacity = count
        }
    }

    func send(
        _ payloads: [UnsafeRawBufferPointer],
        failureLimit: Int,
        nonBlocking: Bool,
        into result: inout MemberGroupSendResult
    ) throws(GroupUnicastError) {
        let descriptor = open()
        let call = "ioctl(SENDGROUP_GROUP_IOC_SEND)"
        let flags = UInt32(MSG_NOSIGNAL) | (nonBlocking ? UInt32(MSG_DONTWAIT) : 0)
        var start = 0
        while start < payloads.count {
            let end = min(start + MemberGroup.maxPayloadsPerCall, payloads.count)
            payloadArguments.removeAll(keepingCapacity: true)
            for payload in payloads[start..<end] {
                var argument = sendgroup_payload()
                argument.data = UInt64(UInt(bitPattern: payload.baseAddress))
                argument.len = UInt32(payload.count)
                payloadArguments.append(argument)
            }
            // The kernel clears the whole failure array on every call: size it to what can fail.
            let capacity = min(failureLimit - result.failures.count, memberCount * (end - start))
            if failureSlots.count < capacity {
                failureSlots = [sendgroup_failure](repeating: sendgroup_failure(), count: capacity)
            }
            var arguments = sendgroup_group_send_args()
            arguments.size = UInt32(SENDGROUP_GROUP_SEND_ARGS_SIZE_VER0)
            arguments.msg_flags = flags & CGroupUnicast_SENDGROUP_MSG_FLAGS
            arguments.payload_count = UInt32(end - start)
            arguments.failure_capacity = UInt32(capacity)
            let outcome = payloadArguments.withUnsafeBufferPointer { payloadBuffer in
                failureSlots.withUnsafeMutableBufferPointer { failureBuffer in
                    arguments.payloads = UInt64(UInt(bitPattern: payloadBuffer.baseAddress))
                    arguments.failures = capacity > 0 ? UInt64(UInt(bitPattern: failureBuffer.baseAddress)) : 0
                    return retryingInterrupts(call) { CGroupUnicast_sendgroup_group_send(descriptor, &arguments) }
                }
            }
            let sent: Int
            switch outcome {
            case .success(let count):
                sent = Int(count)
            case .failure(let error):
                guard result.sentCount == 0 && result.failureCount == 0 else {
                    // An earlier call of this batch went out: the rest fails with this errno.
                    try recordUnattempted(start..<payloads.count, error, failureLimit, &result)
                    return
                }
                throw .systemCall(call: call, errno: error)
            }
            let failed = Int(arguments.failure_count)
            guard sent + failed == memberCount * (end - start) else {
                throw .kernelResultInconsistent(
                    reason: "\(call) sent \(sent) and failed \(failed) of \(memberCount) members × \(end - start) payloads")
            }
            for slot in failureSlots.prefix(min(failed, capacity)) {
                guard slot.error < 0 else {
                    throw .kernelResultInconsistent(reason: "\(call) wrote failure error \(slot.error)")
                }
                result.failures.append(GroupSendFailure(
                    memberID: slot.member_id, payloadIndex: start + Int(slot.payload_index), error: Errno(rawValue: -slot.error)))
            }
            result.sentCount += sent
            result.failureCount += failed
            start = end
        }
    }

    /// Marks every member for `payloads` as failed with `error` (a call refused mid-batch).
    private func recordUnattempted(
        _ payloads: Range<Int>,
        _ error: Errno,
        _ failureLimit: Int,
        _ result: inout MemberGroupSendResult
    ) throws(GroupUnicastError) {
        let ids = try list()
        for payload in payloads {
            for id in ids where result.failures.count < failureLimit {
                result.failures.append(GroupSendFailure(memberID: id, payloadIndex: payload, error: error))
            }
        }
        result.failureCount += ids.count * payloads.count
    }
}

// MARK: - User-space implementation

/// Members kept in this process, with the ascending-id order a send uses.
///
/// `@unchecked Sendable`: only used inside ``MemberGroup``'s mutex.
private final class UserSpaceMembers: @unchecked Sendable {
    private var members: [UInt64: Recipient] = [:]
    /// Ids and recipients in ascending id order; rebuilt on the first send after a change.
    private var order: (ids: [UInt64], recipients: [Recipient])?

    var count: Int {
        members.count
    }

    var sortedIDs: [UInt64] {
        members.keys.sorted()
    }

    /// The kernel's checks, in the kernel's order, before anything changes.
    private func validate(count: Int, privateSizes: some Sequence<Int>, ids: [UInt64]) throws(Errno) {
        if count > MemberGroup.maxMembers { throw .argListTooLong }
        for size in privateSizes where size > MemberGroup.maxPrivateBytes { throw .messageTooLong }
        if Set(ids).count != ids.count { throw .invalidArgument }
    }

    func change(_ change: GroupMembershipChange, _ newMembers: [GroupMember]) throws(GroupUnicastError) {
        let ids = newMembers.map(\.id)
        do throws(Errno) {
            try validate(count: newMembers.count,
                         privateSizes: newMembers.lazy.map { $0.recipient.prepend.count + $0.recipient.append.count },
                         ids: ids)
            switch change {
            case .add:
                if members.count + newMembers.count > MemberGroup.maxMembers { throw .noSpace }
                if ids.contains(where: { members[$0] != nil }) { throw .fileExists }
            case .update, .remove:
                if ids.contains(where: { members[$0] == nil }) { throw .noSuchFileOrDirectory }
            }
        } catch {
            throw .membershipRefused(change: change, errno: error)
        }
        for member in newMembers { members[member.id] = member.recipient }
        order = nil
    }

    func remove(_ ids: [UInt64]) throws(GroupUnicastError) {
        do throws(Errno) {
            try validate(count: ids.count, privateSizes: EmptyCollection(), ids: ids)
            if ids.contains(where: { members[$0] == nil }) { throw .noSuchFileOrDirectory }
        } catch {
            throw .membershipRefused(change: .remove, errno: error)
        }
        for id in ids { members[id] = nil }
        order = nil
    }

    func send(
        _ payloads: [UnsafeRawBufferPointer],
        through socket: GroupSocket,
        failureLimit: Int,
        into result: inout MemberGroupSendResult
    ) throws(GroupUnicastError) {
        let order = self.order ?? {
            let ids = members.keys.sorted()
            return (ids, ids.map { members[$0]! })
        }()
        self.order = order
        guard !order.ids.isEmpty else { return }
        func record(_ failure: GroupSendFailure) {
            if result.failures.count < failureLimit { result.failures.append(failure) }
            result.failureCount += 1
        }
        for (payloadIndex, payload) in payloads.enumerated() {
            let sent: GroupSendResult
            do {
                sent = try socket.send(payload, to: order.recipients, extraFlags: 0, checksDatagramSize: false)
            } catch {
                // The socket's send throws only when it sent nothing; after earlier payloads went
                // out, the rest of the batch fails per member with the call's errno.
                guard result.sentCount > 0 || result.failureCount > 0, let errno = error.errno else { throw error }
                for index in payloadIndex..<payloads.count {
                    for id in order.ids { record(GroupSendFailure(memberID: id, payloadIndex: index, error: errno)) }
                }
                return
            }
            for (slot, error) in sent.errors.enumerated() {
                if let error {
                    record(GroupSendFailure(memberID: order.ids[slot], payloadIndex: payloadIndex, error: error))
                } else {
                    result.sentCount += 1
                }
            }
        }
    }
}
