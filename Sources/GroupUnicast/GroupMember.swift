import SystemPackage

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
