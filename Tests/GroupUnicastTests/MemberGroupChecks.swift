import GroupUnicast
import SystemPackage
import Testing

/// Which ``MemberGroup`` implementation a check runs on.
enum GroupFlavor: Sendable, Hashable, CustomTestStringConvertible {
    /// A kernel-resident group (group fd) on a `.sendgroup` socket.
    case kernel
    /// A user-space group on a socket of this backend.
    case userSpace(GroupSendBackend)

    var testDescription: String {
        switch self {
        case .kernel: "kernel group"
        case .userSpace(let backend): "user-space group over \(backend)"
        }
    }

    var expectedBackend: GroupSendBackend {
        switch self {
        case .kernel: .sendgroup
        case .userSpace(let backend): backend
        }
    }

    /// A socket bound to loopback of `family` and an empty group of this flavor on it.
    func makeGroup(_ family: AddressFamily, options: GroupSocket.Options = .init()) throws -> (GroupSocket, MemberGroup) {
        let socket: GroupSocket
        let group: MemberGroup
        switch self {
        case .kernel:
            socket = try GroupSocket(bindingTo: loopback(family), backend: .sendgroup, options: options)
            group = try socket.makeGroup(backend: .sendgroup)
        case .userSpace(let backend):
            socket = try GroupSocket(bindingTo: loopback(family), backend: backend, options: options)
            group = try socket.makeGroup(backend: backend)
        }
        #expect(group.backend == expectedBackend)
        return (socket, group)
    }
}

/// The host backends a user-space group runs over.
let userSpaceFlavors: [GroupFlavor] = [.userSpace(.sendmmsg), .userSpace(.socket)]

/// What a group send produced, without the implementation: equal across implementations.
struct GroupOutcome: Hashable {
    var sentCount: Int
    var failureCount: Int
    var failures: [GroupSendFailure<UInt64>]

    init(_ result: GroupSendResult<UInt64>) {
        sentCount = result.sentCount
        failureCount = result.failureCount
        failures = result.failures
    }
}

/// Checks shared by the user-space suite and the kernel suite.
enum MemberGroupChecks {
    /// Member ids that are not in address order, so ascending-id order is visible.
    static func memberID(_ index: Int) -> UInt64 {
        UInt64((index * 7919) % 100_003) << 20 | UInt64(index)
    }

    /// `count` members, one per receiver, with varied private bytes, added in two calls out of
    /// id order; a batch of three payloads; every receiver gets the three datagrams, byte-exact,
    /// in payload order.
    static func byteExactDelivery(_ flavor: GroupFlavor, family: AddressFamily, members count: Int) throws {
        let receivers = try Receivers(count: count, family: family)
        let (socket, group) = try flavor.makeGroup(family)
        let senderAddress = try socket.localAddress
        let recipients = variedRecipients(receivers.addresses)
        let members = recipients.enumerated().map { GroupMember(id: memberID($0.offset), recipient: $0.element) }
        try group.add(Array(members[(count / 2)...]))
        try group.add(Array(members[..<(count / 2)]))
        #expect(try group.count == count)
        #expect(try group.memberIDs == members.map(\.id).sorted())

        let payloads = [pattern(1000, seed: count), [0x5A], pattern(300, seed: 2)]
        let result = try group.sendBatch(payloads)

        #expect(result.backend == flavor.expectedBackend)
        #expect(result.payloadCount == 3)
        #expect(result.sentCount == 3 * count)
        #expect(result.allSent, "failures: \(result.failures)")
        for index in 0..<count {
            let datagrams = try receivers.drain(index, expected: 3)
            #expect(datagrams.map(\.bytes) == payloads.map { expectedDatagram(recipients[index], $0) }, "receiver \(index)")
            #expect(datagrams.allSatisfy { $0.source == senderAddress })
        }
    }

    /// Members sharing one receiver: datagrams arrive payload by payload, in ascending member id
    /// order within a payload, also for batches larger than one kernel call (64 payloads).
    static func sendOrder(_ flavor: GroupFlavor, family: AddressFamily) throws {
        // One receiver holds all 210 datagrams: a large receive buffer, so loopback drops none.
        let receiver = try GroupSocket(bindingTo: loopback(family), backend: .socket,
                                       options: .init(nonBlocking: true, receiveBufferSize: 1 << 22))
        let (_, group) = try flavor.makeGroup(family)
        let ids: [UInt64] = [900, 3, 77]
        try group.add(ids.map { GroupMember(id: $0, try receiver.localAddress, prepend: withUnsafeBytes(of: $0.bigEndian, Array.init)) })
        let payloads = (0..<70).map { [UInt8(truncatingIfNeeded: $0)] }

        let result = try group.sendBatch(payloads)

        #expect(result.sentCount == 70 * ids.count)
        #expect(result.allSent)
        let expected = payloads.flatMap { payload in ids.sorted().map { withUnsafeBytes(of: $0.bigEndian, Array.init) + payload } }
        var received: [[UInt8]] = []
        while case let batch = try receiver.receiveBatch(maxCount: 64, maxSize: 64), !batch.isEmpty {
            received += batch.map(\.bytes)
        }
        #expect(received == expected)
    }

    /// Every membership refusal, each as a whole (the group is unchanged), in the kernel's order
    /// of precedence, and the limits exactly at their edge.
    static func membershipErrors(_ flavor: GroupFlavor) throws {
        let receivers = try Receivers(count: 1, family: .ipv4)
        let (_, group) = try flavor.makeGroup(.ipv4)
        let address = receivers.addresses[0]
        func member(_ id: UInt64, privateBytes: Int = 1) -> GroupMember {
            GroupMember(id: id, address, prepend: [UInt8(truncatingIfNeeded: id)],
                        append: [UInt8](repeating: 0xEE, count: privateBytes - 1))
        }
        func refused(_ change: GroupMembershipChange, _ errno: Errno) -> GroupUnicastError {
            .membershipRefused(change: change, errno: errno)
        }
        try group.add([member(1), member(2)])

        #expect(throws: refused(.add, .fileExists)) { try group.add([member(3), member(2)]) }
        #expect(throws: refused(.add, .invalidArgument)) { try group.add([member(3), member(3)]) }
        #expect(throws: refused(.add, .messageTooLong)) {
            try group.add([member(4), member(5, privateBytes: MemberGroup.maxPrivateBytes + 1)])
        }
        // Precedence: EMSGSIZE before EINVAL before EEXIST.
        #expect(throws: refused(.add, .messageTooLong)) {
            try group.add([member(1), member(1, privateBytes: MemberGroup.maxPrivateBytes + 1)])
        }
        #expect(throws: refused(.add, .invalidArgument)) { try group.add([member(1), member(1)]) }
        #expect(throws: refused(.update, .noSuchFileOrDirectory)) { try group.update([member(1), member(99)]) }
        #expect(throws: refused(.update, .invalidArgument)) { try group.update([member(1), member(1)]) }
        #expect(throws: refused(.update, .messageTooLong)) {
            try group.update([member(1, privateBytes: MemberGroup.maxPrivateBytes + 1)])
        }
        #expect(throws: refused(.remove, .noSuchFileOrDirectory)) { try group.remove([1, 99]) }
        #expect(throws: refused(.remove, .invalidArgument)) { try group.remove([1, 1]) }
        #expect(try group.memberIDs == [1, 2], "a refused change must change nothing")

        // Nothing of the refused calls reached the group: one datagram per member.
        let result = try group.send([0x42])
        #expect(result.sentCount == 2)
        #expect(try receivers.drain(0, expected: 2).map(\.bytes) == [[1, 0x42], [2, 0x42]])

        // Exactly at the limit is fine; empty changes are no-ops.
        try group.add([member(6, privateBytes: MemberGroup.maxPrivateBytes)])
        try group.add([])
        try group.update([])
        try group.remove([])
        #expect(try group.memberIDs == [1, 2, 6])

        // E2BIG past 65,536 in one call, ENOSPC past 65,536 in the group; then exactly full.
        let tooMany = (0...UInt64(MemberGroup.maxMembers)).map { GroupMember(id: 1000 + $0, address) }
        #expect(throws: refused(.add, .argListTooLong)) { try group.add(tooMany) }
        #expect(throws: refused(.remove, .argListTooLong)) { try group.remove(tooMany.map(\.id)) }
        let filling = Array(tooMany.prefix(MemberGroup.maxMembers - 3))
        try group.add(filling)
        #expect(try group.count == MemberGroup.maxMembers)
        #expect(throws: refused(.add, .noSpace)) { try group.add([member(7)]) }
        try group.remove(filling.map(\.id))
        #expect(try group.memberIDs == [1, 2, 6])
    }

    /// An update changes a member's bytes and destination for the next send; a removed member
    /// gets nothing more.
    static func updateAndRemoveTakeEffect(_ flavor: GroupFlavor, family: AddressFamily) throws {
        let receivers = try Receivers(count: 3, family: family)
        let (_, group) = try flavor.makeGroup(family)
        try group.add([
            GroupMember(id: 1, receivers.addresses[0], prepend: [1]),
            GroupMember(id: 2, receivers.addresses[1], prepend: [2], append: [0x22]),
            GroupMember(id: 3, receivers.addresses[2], prepend: [3]),
        ])
        #expect(try group.send([0xAA]).sentCount == 3)
        #expect(try receivers.drainAll(expected: [1, 1, 1]) == [[[1, 0xAA]], [[2, 0xAA, 0x22]], [[3, 0xAA]]])

        try group.update([GroupMember(id: 2, receivers.addresses[0], prepend: [9, 9], append: [])])
        try group.remove([3])
        #expect(try group.memberIDs == [1, 2])
        let result = try group.sendBatch([[0xBB], [0xCC]])
        #expect(result.sentCount == 4)
        #expect(result.allSent)
        #expect(try receivers.drain(0, expected: 4).map(\.bytes) == [[1, 0xBB], [9, 9, 0xBB], [1, 0xCC], [9, 9, 0xCC]])
        #expect(try receivers.drain(1, expected: 0, timeout: .milliseconds(50)).isEmpty)
        #expect(try receivers.drain(2, expected: 0, timeout: .milliseconds(50)).isEmpty)
    }

    /// Failures per (member, payload): IPv4 members of an IPv6-only socket (ENETUNREACH) and
    /// port 0 (EINVAL); the others are still delivered. The failure limit caps the list, not the count.
    static func failuresPerMember(_ flavor: GroupFlavor) throws -> [GroupOutcome] {
        let receivers = try Receivers(count: 2, family: .ipv6)
        let (_, group) = try flavor.makeGroup(.ipv6, options: .init(ipv6Only: true))
        try group.add([
            GroupMember(id: 10, receivers.addresses[0], prepend: [10]),
            GroupMember(id: 20, .ipv4Loopback(port: 9), prepend: [20]),
            GroupMember(id: 30, .ipv6Loopback(port: 0), prepend: [30]),
            GroupMember(id: 5, receivers.addresses[1], prepend: [5]),
        ])
        let result = try group.sendBatch([[0xA], [0xB]])
        #expect(result.sentCount == 4)
        #expect(result.failureCount == 4)
        #expect(!result.failuresTruncated)
        #expect(result.failures == [
            GroupSendFailure(recipient: 20, payloadIndex: 0, error: .networkUnreachable),
            GroupSendFailure(recipient: 30, payloadIndex: 0, error: .invalidArgument),
            GroupSendFailure(recipient: 20, payloadIndex: 1, error: .networkUnreachable),
            GroupSendFailure(recipient: 30, payloadIndex: 1, error: .invalidArgument),
        ])
        #expect(try receivers.drainAll(expected: [2, 2]) == [[[10, 0xA], [10, 0xB]], [[5, 0xA], [5, 0xB]]])

        let limited = try group.sendBatch([[0xC], [0xD]], failureLimit: 1)
        #expect(limited.sentCount == 4)
        #expect(limited.failureCount == 4)
        #expect(limited.failuresTruncated)
        #expect(limited.failures == [GroupSendFailure(recipient: 20, payloadIndex: 0, error: .networkUnreachable)])
        _ = try receivers.drainAll(expected: [2, 2])
        return [GroupOutcome(result), GroupOutcome(limited)]
    }

    /// An IPv6 member of an IPv4 socket fails with EAFNOSUPPORT; a datagram the UDP stack finds
    /// too large fails with EMSGSIZE (65,508 bytes over IPv4; 65,531 over IPv6), one of exactly
    /// 65,507 bytes is delivered.
    static func wrongFamilyAndTooLarge(_ flavor: GroupFlavor, family: AddressFamily) throws -> GroupOutcome {
        let receivers = try Receivers(count: 2, family: family)
        let (_, group) = try flavor.makeGroup(family, options: .init(sendBufferSize: 1 << 20))
        let payload = pattern(GroupSocket.maxDatagramSize - 1000, seed: 4)
        var members = [
            GroupMember(id: 1, receivers.addresses[0], prepend: [UInt8](repeating: 1, count: 1000)),
            GroupMember(id: 2, receivers.addresses[1], prepend: [UInt8](repeating: 2, count: 1000),
                        append: [UInt8](repeating: 3, count: MemberGroup.maxPrivateBytes - 1000)),
        ]
        if family == .ipv4 {
            members.append(GroupMember(id: 3, .ipv6Loopback(port: 9)))
            members[1].recipient.append = [3]  // 65,508 bytes
        }
        try group.add(members)
        let result = try group.send(payload)
        var expectedFailures = [GroupSendFailure<UInt64>(recipient: 2, payloadIndex: 0, error: .messageTooLong)]
        if family == .ipv4 {
            expectedFailures.append(GroupSendFailure(recipient: 3, payloadIndex: 0, error: .addressFamilyNotSupported))
        }
        #expect(result.failures == expectedFailures)
        #expect(result.sentCount == 1)
        #expect(try receivers.drain(0, expected: 1, maxSize: 65_535).map(\.bytes) == [members[0].recipient.prepend + payload])
        #expect(try receivers.drain(1, expected: 0, timeout: .milliseconds(50), maxSize: 65_535).isEmpty)

        #expect(throws: GroupUnicastError.groupPayloadTooLarge(index: 1, size: GroupSocket.maxDatagramSize + 1)) {
            try group.sendBatch([[1], [UInt8](repeating: 0, count: GroupSocket.maxDatagramSize + 1)])
        }
        #expect(try receivers.drain(0, expected: 0, timeout: .milliseconds(50)).isEmpty, "a refused batch sends nothing")
        return GroupOutcome(result)
    }

    /// Empty groups and empty batches send nothing; closing the group or its socket closes it.
    static func emptyAndClosed(_ flavor: GroupFlavor) throws {
        let (socket, group) = try flavor.makeGroup(.ipv4)
        let empty = try group.send([1, 2, 3])
        #expect(empty.sentCount == 0 && empty.failureCount == 0 && empty.payloadCount == 1)
        #expect(try group.sendBatch([[UInt8]]()).payloadCount == 0)
        #expect(try group.count == 0)
        #expect(try group.memberIDs.isEmpty)

        try group.close()
        #expect(group.isClosed)
        #expect(throws: GroupUnicastError.groupClosed) { try group.close() }
        #expect(throws: GroupUnicastError.groupClosed) { try group.send([1]) }
        #expect(throws: GroupUnicastError.groupClosed) { try group.add([GroupMember(id: 1, .ipv4Loopback(port: 9))]) }
        #expect(throws: GroupUnicastError.groupClosed) { try group.count }

        let second = try socket.makeGroup(backend: flavor.expectedBackend)
        try second.add([GroupMember(id: 1, .ipv4Loopback(port: 9))])
        try socket.close()
        #expect(second.isClosed, "closing the socket closes its groups")
        #expect(throws: GroupUnicastError.groupClosed) { try second.send([1]) }
        #expect(throws: GroupUnicastError.socketClosed) { try socket.makeGroup() }
    }

    /// 2,000 groups with members opened and closed (half explicitly, half by release, some by
    /// closing their socket) leave no descriptor behind.
    static func noDescriptorLeak(_ flavor: GroupFlavor) throws {
        let receivers = try Receivers(count: 1, family: .ipv4)
        let before = openNetworkDescriptors()
        do {
            let (socket, probe) = try flavor.makeGroup(.ipv4)
            let expected = flavor == .kernel ? 3 : 1  // socket, /dev/sendgroup, group fd
            #expect(leakedDescriptors(since: before).count == expected, "\(leakedDescriptors(since: before))")
            try probe.close()
            try socket.close()
        }
        #expect(leakedDescriptors(since: before).isEmpty)
        for index in 0..<2_000 {
            let (socket, group) = try flavor.makeGroup(.ipv4)
            try group.add((0..<UInt64(index % 8)).map { GroupMember(id: $0, receivers.addresses[0]) })
            if index % 16 == 0 { _ = try group.send([UInt8(index % 251)]) }
            switch index % 3 {
            case 0: try group.close()
            case 1: try socket.close()
            default: break  // released at the end of the iteration
            }
        }
        #expect(leakedDescriptors(since: before).isEmpty, "\(leakedDescriptors(since: before))")
        _ = try receivers.drain(0, expected: 0, timeout: .zero)
    }
}
