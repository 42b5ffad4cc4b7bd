import GroupcastSFU
import GroupUnicast
import Logging
import Synchronization
import SystemPackage

/// The sendgroup backend's kernel groups (``SendgroupMode/groups``): one ``MemberGroup`` in the
/// module per route with recipients, its members that route's ``Route/recipients`` (the origin
/// when the table echoes, then the subscribers, each with its prepend and append).
///
/// ``install(_:)`` runs on the control thread and brings every group in step with the new table:
/// removals first (`SENDGROUP_GROUP_IOC_REMOVE`), then changed private bytes (`_UPDATE`), then
/// newcomers (`_ADD`); groups of routes that disappear or lose their last recipient are closed.
/// It holds the lock under which the forwarder thread handles each batch (``forward(_:)``),
/// and leaves the table there for the next batch: so no packet is sent with a table whose
/// members are not in the kernel yet, and once ``install(_:)`` returns a removed subscriber gets
/// nothing more, by group send or by the one-shot sends of backlogs.
///
/// Member ids are dense per group (the module's xarray costs least so): a removed member's id is
/// given to the next newcomer.
final class RouteGroups: Sendable {
    /// A member as the kernel has it: its id and whether it is the route's origin (the echo).
    private struct Member: Sendable {
        var id: UInt64
        var recipient: Recipient
        var isEcho: Bool
    }

    /// A recipient's identity in a group: its address, and which occurrence of that address in
    /// the route's recipients (the control plane does not repeat an address; nothing breaks if it does).
    private struct MemberKey: Hashable, Sendable {
        var address: SocketAddress
        var occurrence: Int
    }

    private struct RouteGroup: Sendable {
        let group: MemberGroup
        /// The recipients the kernel group holds, as last installed (a table that repeats them
        /// needs no system call).
        var recipients: [Recipient] = []
        var echoes = false
        var members: [MemberKey: Member] = [:]
        var byID: [UInt64: Member] = [:]
        var freeIDs: [UInt64] = []
        var nextID: UInt64 = 0

        mutating func allocateID() -> UInt64 {
            if let id = freeIDs.popLast() { return id }
            defer { nextID += 1 }
            return nextID
        }
    }

    private struct State: Sendable {
        /// Route SSRC -> its kernel group.
        var groups: [UInt32: RouteGroup] = [:]
        /// The newest table, until the forwarder thread takes it (``forward(_:)``).
        var pendingTable: RoutingTable?
    }

    private let socket: GroupSocket
    private let logger: Logger
    private let state = Mutex(State())

    init(socket: GroupSocket, logger: Logger) {
        self.socket = socket
        self.logger = logger
    }

    /// Brings the kernel groups in step with `table`, then leaves it for the next batch.
    ///
    /// A route whose group cannot be created or changed (the fd limit, the memory cgroup) loses
    /// its group, logged: its packets then go out one-shot, with the same table.
    func install(_ table: RoutingTable) {
        state.withLock { state in
            for ssrc in Array(state.groups.keys) where table[ssrc].map({ $0.recipients.isEmpty }) ?? true {
                try? state.groups.removeValue(forKey: ssrc)?.group.close()
            }
            for (ssrc, route) in table.routes where !route.recipients.isEmpty {
                if let current = state.groups[ssrc], current.recipients == route.recipients, current.echoes == route.echoes { continue }
                do throws(GroupUnicastError) {
                    var routeGroup: RouteGroup
                    if let existing = state.groups.removeValue(forKey: ssrc) {
                        routeGroup = existing
                    } else {
                        routeGroup = RouteGroup(group: try socket.makeGroup(backend: .sendgroup))
                    }
                    do throws(GroupUnicastError) {
                        try Self.synchronize(&routeGroup, with: route)
                        state.groups[ssrc] = routeGroup
                    } catch {
                        // Members the kernel may still hold must not get packets of a table without them.
                        try? routeGroup.group.close()
                        throw error
                    }
                } catch {
                    logger.warning("route \(ssrc): kernel group not kept (\(error)); its packets go out one-shot")
                }
            }
            state.pendingTable = table
        }
    }

    /// Runs `body` (one batch of the forwarder thread) with ``install(_:)`` held off: `body` gets
    /// the table installed since the last call, if any, to apply first, and the group send.
    func forward<Result>(_ body: (RoutingTable?, ForwardingEngine.RouteSend) -> Result) -> Result {
        state.withLock { state in
            let table = state.pendingTable.take()
            let groups = state.groups
            return body(table) { route, payloads in
                groups[route.ssrc].map { Self.send(payloads, through: $0) }
            }
        }
    }

    /// REMOVE, UPDATE, ADD: the kernel group of `routeGroup` becomes `route.recipients`.
    private static func synchronize(_ routeGroup: inout RouteGroup, with route: Route) throws(GroupUnicastError) {
        var wanted: [MemberKey: (recipient: Recipient, isEcho: Bool)] = [:]
        var occurrences: [SocketAddress: Int] = [:]
        for (index, recipient) in route.recipients.enumerated() {
            let occurrence = occurrences[recipient.address, default: 0]
            occurrences[recipient.address] = occurrence + 1
            wanted[MemberKey(address: recipient.address, occurrence: occurrence)] = (recipient, route.echoes && index == 0)
        }
        let leaving = routeGroup.members.filter { wanted[$0.key] == nil }
        if !leaving.isEmpty {
            try routeGroup.group.remove(leaving.values.map(\.id))
            for (key, member) in leaving {
                routeGroup.members[key] = nil
                routeGroup.byID[member.id] = nil
                routeGroup.freeIDs.append(member.id)
            }
        }
        var changed: [MemberKey: Member] = [:]
        var arriving: [MemberKey: Member] = [:]
        for (key, want) in wanted {
            if var member = routeGroup.members[key] {
                let bytesChanged = member.recipient != want.recipient
                member.recipient = want.recipient
                member.isEcho = want.isEcho
                if bytesChanged {
                    changed[key] = member
                } else {
                    routeGroup.members[key] = member
                    routeGroup.byID[member.id] = member
                }
            } else {
                arriving[key] = Member(id: routeGroup.allocateID(), recipient: want.recipient, isEcho: want.isEcho)
            }
        }
        if !changed.isEmpty {
            do throws(GroupUnicastError) {
                try routeGroup.group.update(changed.values.map { GroupMember(id: $0.id, recipient: $0.recipient) })
            } catch {
                routeGroup.freeIDs.append(contentsOf: arriving.values.map(\.id))
                throw error
            }
            for (key, member) in changed {
                routeGroup.members[key] = member
                routeGroup.byID[member.id] = member
            }
        }
        if !arriving.isEmpty {
            do throws(GroupUnicastError) {
                try routeGroup.group.add(arriving.values.map { GroupMember(id: $0.id, recipient: $0.recipient) })
            } catch {
                routeGroup.freeIDs.append(contentsOf: arriving.values.map(\.id))
                throw error
            }
            for (key, member) in arriving {
                routeGroup.members[key] = member
                routeGroup.byID[member.id] = member
            }
        }
        routeGroup.recipients = route.recipients
        routeGroup.echoes = route.echoes
    }

    /// `payloads`, in order, to every member of `routeGroup` in one `SENDGROUP_GROUP_IOC_SEND`
    /// per 64 payloads. A call refused as a whole fails every copy with its errno.
    private static func send(_ payloads: [[UInt8]], through routeGroup: RouteGroup) -> RouteDelivery {
        let memberCount = routeGroup.byID.count
        do throws(GroupUnicastError) {
            let result = try routeGroup.group.sendBatch(payloads, failureLimit: memberCount * payloads.count)
            let failures = result.failures.compactMap { failure -> RouteDelivery.Failure? in
                guard let member = routeGroup.byID[failure.recipient] else { return nil }
                return RouteDelivery.Failure(
                    payloadIndex: failure.payloadIndex, address: member.recipient.address, isEcho: member.isEcho, error: failure.error)
            }
            return RouteDelivery(memberCount: memberCount, echoIsMember: routeGroup.echoes, failures: failures)
        } catch {
            let errno = error.errno ?? .badFileDescriptor
            var failures: [RouteDelivery.Failure] = []
            failures.reserveCapacity(memberCount * payloads.count)
            for index in payloads.indices {
                for member in routeGroup.byID.values {
                    failures.append(.init(payloadIndex: index, address: member.recipient.address, isEcho: member.isEcho, error: errno))
                }
            }
            return RouteDelivery(memberCount: memberCount, echoIsMember: routeGroup.echoes, failures: failures)
        }
    }

    /// Closes every group (the SFU's stop).
    func close() {
        state.withLock { state in
            for routeGroup in state.groups.values { try? routeGroup.group.close() }
            state.groups.removeAll()
        }
    }
}
