import CGroupUnicast
import Synchronization
import SystemPackage

/// A group of members bound to one ``GroupSocket``: the members are stored once, and a send passes
/// only the payloads, one or a batch of them (the audio and the video of one tick, say).
///
/// ```swift
/// let socket = try GroupSocket(bindingTo: try SocketAddress(parsing: "[::]:0"))
/// let group = try socket.makeGroup()      // in the kernel when the module offers groups
/// try group.add([GroupMember(id: 7, client, prepend: header)])
/// let result = try group.sendBatch([audio, video])
/// for failure in result.failures { print(failure.recipient, failure.payloadIndex, failure.error) }
/// try group.close()
/// ```
///
/// Two implementations, one behaviour (``backend`` says which one a group uses):
/// - ``GroupSendBackend/sendgroup``: a group fd of the sendgroup module
///   (`SENDGROUP_IOC_GROUP_CREATE`); members live in the kernel, and a send is one
///   `ioctl(SENDGROUP_GROUP_IOC_SEND)` per up to 64 payloads, with no recipient array copied from
///   user space.
/// - ``GroupSendBackend/sendmmsg`` or ``GroupSendBackend/socket``: members live in this object,
///   and a send is one group send of the socket with that backend per payload (`sendmmsg(2)` or
///   a `sendmsg(2)` loop).
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
    /// The most members of a group (`SENDGROUP_MAX_MEMBERS`).
    public static let maxMembers = Int(SENDGROUP_MAX_MEMBERS)
    /// The most prepend + append bytes of one member (`SENDGROUP_MAX_MEMBER_PRIVATE`).
    public static let maxPrivateBytes = Int(SENDGROUP_MAX_MEMBER_PRIVATE)
    /// The most payloads one `SENDGROUP_GROUP_IOC_SEND` takes; larger batches are split, with the
    /// same send order.
    public static let maxPayloadsPerCall = Int(SENDGROUP_MAX_PAYLOADS)
    /// How many failures a send lists unless told otherwise.
    public static let defaultFailureLimit = 1024

    /// The socket the group sends through.
    public let socket: GroupSocket

    /// How the group sends: ``GroupSendBackend/sendgroup`` for members kept in the kernel,
    /// ``GroupSendBackend/sendmmsg`` or ``GroupSendBackend/socket`` for members kept in this object.
    /// Never ``GroupSendBackend/automatic``.
    public var backend: GroupSendBackend {
        currentBackend.withLock { $0 }
    }

    /// Changes only when a `sendmmsg` group made with `.automatic` falls back to `socket` (ENOSYS).
    private let currentBackend: Mutex<GroupSendBackend>

    /// `nil` once closed. Held for the whole of every operation: they are serialised, and
    /// ``close()`` waits for the one in progress.
    private let state: Mutex<Storage?>

    private enum Storage: Sendable {
        case kernel(KernelGroupDescriptor)
        case userSpace(UserSpaceMembers)
    }

    internal init(socket: GroupSocket, backend requested: GroupSendBackend) throws(GroupUnicastError) {
        self.socket = socket
        let storage = try socket.withOpenDescriptor {
            (descriptor, socketBackend, device) throws(GroupUnicastError) -> Storage in
            // The user-space backend a group falls to: the socket's, unless that is sendgroup.
            let userSpace: GroupSendBackend = socketBackend == .socket ? .socket : .sendmmsg
            switch requested {
            case .socket, .sendmmsg:
                return .userSpace(UserSpaceMembers(backend: requested, fallsBack: false))
            case .automatic:
                guard let device, device.info.supportsGroups else {
                    return .userSpace(UserSpaceMembers(backend: userSpace, fallsBack: true))
                }
                return .kernel(try KernelGroupDescriptor.create(device: device, socket: descriptor))
            case .sendgroup:
                guard let device else {
                    throw .kernelGroupsUnavailable(reason: "the socket's backend is \(socketBackend), not sendgroup")
                }
                guard device.info.supportsGroups else {
                    throw .kernelGroupsUnavailable(
                        reason: "the sendgroup module (ABI \(device.info.abiVersion)) does not report SENDGROUP_FEATURE_GROUPS")
                }
                return .kernel(try KernelGroupDescriptor.create(device: device, socket: descriptor))
            }
        }
        switch storage {
        case .kernel: currentBackend = Mutex(.sendgroup)
        case .userSpace(let members): currentBackend = Mutex(members.backend)
        }
        state = Mutex(storage)
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

    /// Sends `payload` to every member: member `m` gets `m.prepend + payload + m.append`; see
    /// ``sendBatch(_:failureLimit:)``, of which this is the one-payload case.
    ///
    /// `payload` is any collection of bytes; contiguous ones are sent from their own storage.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_SEND, &args)` for a kernel group.
    public func send(
        _ payload: some Collection<UInt8>,
        failureLimit: Int = MemberGroup.defaultFailureLimit
    ) throws(GroupUnicastError) -> GroupSendResult<UInt64> {
        try withContiguousBytes(of: payload) { (bytes) throws(GroupUnicastError) in
            try send(buffers: [bytes], failureLimit: failureLimit)
        }
    }

    /// Sends each payload, in order, to every member in ascending id order: member `m` gets
    /// `m.prepend + payload + m.append` for every payload.
    ///
    /// A datagram the UDP stack refuses (unreachable destination, wrong address family, port 0,
    /// too large, full buffer on a nonblocking socket) fails alone; the send goes on and the result
    /// lists it as a ``GroupSendFailure`` naming the member id, up to `failureLimit` of them (the
    /// count is always exact). An empty group sends nothing and fails nothing; so does an empty
    /// `payloads`.
    ///
    /// Throws ``GroupUnicastError/groupPayloadTooLarge(index:size:)`` before any system call when a
    /// payload is over 65,507 bytes, ``GroupUnicastError/groupClosed`` after ``close()``, and
    /// ``GroupUnicastError/systemCall(call:errno:)`` when the call itself was refused before
    /// anything was sent. Batches of more than 64 payloads take several calls, in the same order.
    ///
    /// The corresponding C call is `ioctl(groupfd, SENDGROUP_GROUP_IOC_SEND, &args)` for a kernel
    /// group (its `struct sendgroup_failure` array holds the failures); for a user-space group,
    /// `sendmmsg(2)` or a `sendmsg(2)` loop per payload.
    public func sendBatch<Payload: Collection<UInt8>>(
        _ payloads: [Payload],
        failureLimit: Int = MemberGroup.defaultFailureLimit
    ) throws(GroupUnicastError) -> GroupSendResult<UInt64> {
        try withPinned(payloads[...], []) { (buffers) throws(GroupUnicastError) in
            try send(buffers: buffers, failureLimit: failureLimit)
        }
    }

    private func send(
        buffers payloads: [UnsafeRawBufferPointer],
        failureLimit: Int
    ) throws(GroupUnicastError) -> GroupSendResult<UInt64> {
        precondition(failureLimit >= 0, "failureLimit must not be negative")
        for (index, payload) in payloads.enumerated() where payload.count > GroupSocket.maxDatagramSize {
            throw .groupPayloadTooLarge(index: index, size: payload.count)
        }
        let socket = socket
        let result = try withStorage { (storage) throws(GroupUnicastError) -> GroupSendResult<UInt64> in
            var result = GroupSendResult<UInt64>(
                backend: backend, payloadCount: payloads.count, sentCount: 0, failureCount: 0, failures: [])
            guard !payloads.isEmpty else { return result }
            switch storage {
            case .kernel(let group):
                try group.send(payloads, failureLimit: failureLimit, nonBlocking: socket.options.nonBlocking, into: &result)
            case .userSpace(let members):
                try members.send(payloads, through: socket, failureLimit: failureLimit, into: &result)
            }
            return result
        }
        currentBackend.withLock { $0 = result.backend }
        return result
    }

    private func withStorage<R>(_ body: (Storage) throws(GroupUnicastError) -> R) throws(GroupUnicastError) -> R {
        try state.withLock { (state) throws(GroupUnicastError) -> R in
            guard let storage = state else { throw .groupClosed }
            return try body(storage)
        }
    }
}

/// Calls `body` with every payload of `pending` pinned as a raw buffer (appended to `pinned`).
private func withPinned<Payload: Collection<UInt8>, R>(
    _ pending: ArraySlice<Payload>,
    _ pinned: [UnsafeRawBufferPointer],
    _ body: ([UnsafeRawBufferPointer]) throws(GroupUnicastError) -> R
) throws(GroupUnicastError) -> R {
    guard let first = pending.first else { return try body(pinned) }
    return try withContiguousBytes(of: first) { (bytes) throws(GroupUnicastError) in
        try withPinned(pending.dropFirst(), pinned + [bytes], body)
    }
}

extension GroupSocket {
    /// Creates a group of members bound to this socket, empty.
    ///
    /// `backend` says how the group sends (read the choice back from ``MemberGroup/backend``):
    /// - ``GroupSendBackend/automatic``: members in the kernel (``GroupSendBackend/sendgroup``) when
    ///   this socket's backend is `sendgroup` and the module reports `SENDGROUP_FEATURE_GROUPS`,
    ///   else in user space over `sendmmsg` (`socket` on a `socket` socket). Never an error.
    /// - ``GroupSendBackend/sendgroup``: members in the kernel, or throw
    ///   ``GroupUnicastError/kernelGroupsUnavailable(reason:)``.
    /// - ``GroupSendBackend/sendmmsg``, ``GroupSendBackend/socket``: members in user space, sent
    ///   with that call whatever the socket's backend.
    ///
    /// The corresponding C call is `ioctl(devfd, SENDGROUP_IOC_GROUP_CREATE, &args)` on
    /// `/dev/sendgroup` for a kernel group, which returns the group fd.
    public func makeGroup(backend: GroupSendBackend = .automatic) throws(GroupUnicastError) -> MemberGroup {
        try MemberGroup(socket: self, backend: backend)
    }
}
