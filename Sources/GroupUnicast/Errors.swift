import CGroupUnicast
import SystemPackage

/// An error thrown by a ``GroupSocket`` operation.
///
/// Errors of single recipients of a group send are not thrown: they are reported per recipient in
/// ``GroupSendResult/errors`` as an `Errno`, so a caller can drop or retry exactly those recipients.
public enum GroupUnicastError: Error, Hashable, Sendable {
    /// A system call failed.
    ///
    /// `call` names the C call (`"sendmmsg"`, `"ioctl(SENDGROUP_IOC_SEND)"`, …), `errno` says why.
    /// `EINTR` never appears here: the library retries interrupted calls.
    case systemCall(call: String, errno: Errno)

    /// The `.kernel` backend was requested, but `/dev/sendgroup` does not exist.
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

    /// The errno of a failed system call, or `nil` for the library's own errors.
    public var errno: Errno? {
        if case .systemCall(_, let errno) = self { return errno }
        return nil
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
