import CGroupUnicast
import SystemPackage

/// An error thrown by a ``GroupSocket`` operation.
///
/// Errors of single recipients of a group send are not thrown: they are reported per recipient in
/// ``GroupSendResult/failures`` as an `Errno`, so a caller can drop or retry exactly those recipients.
public enum GroupUnicastError: Error, Hashable, Sendable {
    /// A system call failed.
    ///
    /// `call` names the C call (`"sendmmsg"`, `"ioctl(SENDGROUP_IOC_SEND)"`, …), `errno` says why.
    /// `EINTR` never appears here: the library retries interrupted calls.
    case systemCall(call: String, errno: Errno)

    /// The ``GroupSendBackend/sendgroup`` backend was requested, but `/dev/sendgroup` does not exist.
    ///
    /// ``GroupSendBackend/automatic`` never throws this; it falls back to `sendmmsg` instead.
    case kernelModuleNotLoaded

    /// `/dev/sendgroup` answered `SENDGROUP_IOC_INFO` with an ABI this library cannot use.
    case kernelModuleIncompatible(reason: String)

    /// The module's `SENDGROUP_IOC_SEND` return value disagrees with its per-recipient results
    /// (a module bug: the library does not guess which recipients were sent).
    case kernelResultInconsistent(reason: String)

    /// The socket was closed before or during the operation.
    case socketClosed

    /// The ``MemberGroup`` was closed (by ``MemberGroup/close()``, or by closing its socket).
    case groupClosed

    /// ``GroupSocket/makeGroup(backend:)`` was asked for ``GroupSendBackend/sendgroup`` but the
    /// socket cannot have a kernel-resident group; `reason` says why (its backend is not
    /// `sendgroup`, or the module lacks `SENDGROUP_FEATURE_GROUPS`).
    case kernelGroupsUnavailable(reason: String)

    /// A ``MemberGroup`` membership change was refused as a whole; the group is unchanged.
    ///
    /// `errno` is the same for both group implementations (it is what the kernel's
    /// `SENDGROUP_GROUP_IOC_ADD`, `_UPDATE` or `_REMOVE` answers):
    /// `E2BIG` more than 65,536 members in one call; `EMSGSIZE` a member's prepend + append over
    /// 1,024 bytes; `EINVAL` an id twice in the call; `ENOSPC` the group would exceed 65,536 members;
    /// `EEXIST` ``GroupMembershipChange/add`` of an id already in the group; `ENOENT`
    /// ``GroupMembershipChange/update`` or ``GroupMembershipChange/remove`` of an id not in it.
    /// When a call has several of these faults, the first in this order is reported.
    case membershipRefused(change: GroupMembershipChange, errno: Errno)

    /// An ``AsyncGroupSocket`` wait (for a datagram, or for room to send) took longer than the
    /// `timeout` it was given.
    case timedOut(Duration)

    /// Payload `index` of a ``MemberGroup`` send is larger than 65,507 bytes
    /// (`SENDGROUP_MAX_DATAGRAM`); nothing was sent.
    case groupPayloadTooLarge(index: Int, size: Int)

    /// The errno of a failed system call, or `nil` for the library's own errors.
    public var errno: Errno? {
        switch self {
        case .systemCall(_, let errno), .membershipRefused(_, let errno):
            return errno
        default:
            return nil
        }
    }
}

extension GroupUnicastError: CustomStringConvertible {
    /// The failed C call and the errno by name and text, such as
    /// `sendmmsg failed: EBADF (Bad file descriptor)`, or the library's own message.
    public var description: String {
        switch self {
        case .systemCall(let call, let errno):
            return "\(call) failed: \(errno.symbolicName) (\(errno))"
        case .kernelModuleNotLoaded:
            return "sendgroup module not loaded: \(SENDGROUP_DEVICE_PATH) missing; load with modprobe sendgroup"
        case .kernelModuleIncompatible(let reason):
            return "sendgroup module at \(SENDGROUP_DEVICE_PATH) is incompatible: \(reason)"
        case .kernelResultInconsistent(let reason):
            return "sendgroup module returned inconsistent results: \(reason)"
        case .socketClosed:
            return "the GroupSocket is closed"
        case .groupClosed:
            return "the MemberGroup is closed"
        case .kernelGroupsUnavailable(let reason):
            return "no kernel-resident group: \(reason)"
        case .membershipRefused(let change, let errno):
            return "\(change) refused: \(errno.symbolicName) (\(errno))"
        case .timedOut(let timeout):
            return "timed out after \(timeout)"
        case .groupPayloadTooLarge(let index, let size):
            return "group payload \(index) is \(size) bytes, over \(SENDGROUP_MAX_DATAGRAM)"
        }
    }
}

extension Errno {
    /// The C name of this errno value, such as `EMSGSIZE`, or `errno N` when the C library has none.
    ///
    /// The corresponding C function is `strerrorname_np(3)`.
    public var symbolicName: String {
        guard let name = CGroupUnicast_errno_name(rawValue) else { return "errno \(rawValue)" }
        return String(cString: name)
    }
}
