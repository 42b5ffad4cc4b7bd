#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGroupUnicast
import SystemPackage

// The kernel-resident implementation of MemberGroup (GroupSendBackend.sendgroup): members live
// behind a group fd of the sendgroup module.

/// A group fd of the sendgroup module, closed when this object goes away.
///
/// `@unchecked Sendable`: only used inside ``MemberGroup``'s mutex.
internal final class KernelGroupDescriptor: @unchecked Sendable {
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
        let descriptor = try withUnsafeMutablePointer(to: &arguments) { (arguments) throws(GroupUnicastError) in
            try systemCall(.groupCreate(device: device.descriptor, arguments: arguments))
        }
        return KernelGroupDescriptor(descriptor: CInt(descriptor))
    }

    private func open() -> CInt {
        guard let descriptor else { preconditionFailure("kernel group used after close") }
        return descriptor
    }

    func close() throws(GroupUnicastError) {
        guard let descriptor = descriptor.take() else { return }
        try closeDescriptor(descriptor, named: "close(group fd)")
    }

    deinit {
        if let descriptor { try? closeDescriptor(descriptor) }
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
        let (call, result) = withUnsafeMutablePointer(to: &arguments) { arguments in
            let call: Syscall = switch change {
            case .add: .groupAdd(group: descriptor, arguments: arguments)
            case .update: .groupUpdate(group: descriptor, arguments: arguments)
            case .remove: .groupRemove(group: descriptor, arguments: arguments)
            }
            return (call.name, retryingInterrupts(call))
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
            let written = try withUnsafeMutablePointer(to: &arguments) { (arguments) throws(GroupUnicastError) in
                try systemCall(.groupList(group: descriptor, arguments: arguments))
            }
            return (Int(arguments.count), written)
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
        into result: inout GroupSendResult<UInt64>
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
                    return withUnsafeMutablePointer(to: &arguments) { arguments in
                        retryingInterrupts(.groupSend(group: descriptor, arguments: arguments))
                    }
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
                    recipient: slot.member_id, payloadIndex: start + Int(slot.payload_index), error: Errno(rawValue: -slot.error)))
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
        _ result: inout GroupSendResult<UInt64>
    ) throws(GroupUnicastError) {
        let ids = try list()
        for payload in payloads {
            for id in ids where result.failures.count < failureLimit {
                result.failures.append(GroupSendFailure(recipient: id, payloadIndex: payload, error: error))
            }
        }
        result.failureCount += ids.count * payloads.count
    }
}
