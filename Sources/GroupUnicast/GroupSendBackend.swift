/// How datagrams of a group send reach the kernel: the same three names as the SFU's
/// `--backend` (`socket`, `sendmmsg`, `sendgroup`).
///
/// A ``GroupSocket`` sends with one backend (``GroupSocket/backend``), and so does a
/// ``MemberGroup`` (``MemberGroup/backend``: ``sendgroup`` there means its members live in the
/// kernel). Every backend gives the same observable result: the same bytes on the wire and the
/// same per-recipient errno for the same cause.
public enum GroupSendBackend: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The fastest backend that works here, never an error: ``sendgroup`` when `/dev/sendgroup`
    /// can be opened, else ``sendmmsg`` (else ``socket`` where `sendmmsg(2)` answers `ENOSYS`).
    case automatic
    /// One `sendmsg(2)` per recipient: the classic baseline, kept for benchmarks.
    case socket
    /// One `sendmmsg(2)` per up to 1,024 recipients, each datagram assembled from iovecs.
    case sendmmsg
    /// The sendgroup kernel module: one `ioctl(SENDGROUP_IOC_SEND)` per up to `max_recipients`
    /// recipients (the shared payload crosses into the kernel once per call), or, for a
    /// ``MemberGroup``, one `ioctl(SENDGROUP_GROUP_IOC_SEND)` to members kept in the kernel.
    case sendgroup

    /// The backend's name: `automatic`, `socket`, `sendmmsg` or `sendgroup`.
    public var description: String {
        rawValue
    }
}
