import SystemPackage

// The user-space implementation of MemberGroup (GroupSendBackend.sendmmsg or .socket): members
// live in this process; each payload is one group send of the socket.

/// Members kept in this process, with the ascending-id order a send uses.
///
/// `@unchecked Sendable`: only used inside ``MemberGroup``'s mutex.
internal final class UserSpaceMembers: @unchecked Sendable {
    /// How a send reaches the kernel: ``GroupSendBackend/sendmmsg`` or ``GroupSendBackend/socket``.
    private(set) var backend: GroupSendBackend
    /// Whether `sendmmsg` answering `ENOSYS` switches the group to `socket` (a group made with
    /// ``GroupSendBackend/automatic``) rather than failing the send.
    private let fallsBack: Bool
    private var members: [UInt64: Recipient] = [:]
    /// Ids and recipients in ascending id order; rebuilt on the first send after a change.
    private var order: (ids: [UInt64], recipients: [Recipient])?

    init(backend: GroupSendBackend, fallsBack: Bool) {
        self.backend = backend
        self.fallsBack = fallsBack
    }

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
        into result: inout GroupSendResult<UInt64>
    ) throws(GroupUnicastError) {
        let order = self.order ?? {
            let ids = members.keys.sorted()
            return (ids, ids.map { members[$0]! })
        }()
        self.order = order
        guard !order.ids.isEmpty else { return }
        func record(_ failure: GroupSendFailure<UInt64>) {
            if result.failures.count < failureLimit { result.failures.append(failure) }
            result.failureCount += 1
        }
        for (payloadIndex, payload) in payloads.enumerated() {
            let sent: GroupSendResult<Int>
            do {
                sent = try socket.send(payload, to: order.recipients, backend: backend, fallsBack: fallsBack,
                                       extraFlags: 0, checksDatagramSize: false)
            } catch {
                // The socket's send throws only when it sent nothing; after earlier payloads went
                // out, the rest of the batch fails per member with the call's errno.
                guard result.sentCount > 0 || result.failureCount > 0, let errno = error.errno else { throw error }
                for index in payloadIndex..<payloads.count {
                    for id in order.ids { record(GroupSendFailure(recipient: id, payloadIndex: index, error: errno)) }
                }
                return
            }
            backend = sent.backend
            result.backend = sent.backend
            result.sentCount += sent.sentCount
            for failure in sent.failures {
                record(GroupSendFailure(recipient: order.ids[failure.recipient], payloadIndex: payloadIndex, error: failure.error))
            }
        }
    }
}
