import SystemPackage

/// One receiver of a group send: where the datagram goes and the bytes around the shared payload.
///
/// The datagram this recipient gets is `prepend + payload + append`. The prepend and append bytes
/// map to `sendgroup_recipient.prepend`/`.append` on the `.kernel` backend and to iovecs of the
/// recipient's `struct msghdr` on `.sendmmsg` and `.sendmsgLoop`.
public struct Recipient: Hashable, Sendable {
    /// The destination.
    public var address: SocketAddress
    /// Bytes placed before the shared payload (a per-client header, say).
    public var prepend: [UInt8]
    /// Bytes placed after the shared payload (a per-client trailer or MAC, say).
    public var append: [UInt8]

    /// Creates a recipient at `address` with optional private bytes around the shared payload.
    public init(_ address: SocketAddress, prepend: [UInt8] = [], append: [UInt8] = []) {
        self.address = address
        self.prepend = prepend
        self.append = append
    }
}

/// What happened to each recipient of one ``GroupSocket/send(_:to:)``.
///
/// Slot `i` of ``errors`` belongs to recipient `i` of the call: `nil` when its datagram was handed
/// to the kernel's UDP stack, else the errno it failed with, the same on every backend for the same
/// cause (for example `.messageTooLong` for a datagram over 65,507 bytes, checked before any system
/// call, or `.networkUnreachable` from the routing lookup).
public struct GroupSendResult: Hashable, Sendable {
    /// The backend that carried the send.
    public var backend: GroupSendBackend
    /// One slot per recipient, in call order: `nil` if sent, else why not.
    public var errors: [Errno?]

    /// Creates a result; `errors` holds one slot per recipient.
    public init(backend: GroupSendBackend, errors: [Errno?]) {
        self.backend = backend
        self.errors = errors
    }

    /// The number of recipients whose datagram was sent.
    public var sentCount: Int {
        errors.count { $0 == nil }
    }

    /// The number of recipients in the call.
    public var recipientCount: Int {
        errors.count
    }

    /// Whether every recipient's datagram was sent.
    public var allSent: Bool {
        errors.allSatisfy { $0 == nil }
    }

    /// The recipients that failed, as (index in the call, errno), in call order.
    public var failures: [(index: Int, error: Errno)] {
        errors.enumerated().compactMap { index, error in error.map { (index, $0) } }
    }
}

/// How a ``GroupSocket`` sends a group.
public enum GroupSendBackend: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// `.kernel` when `/dev/sendgroup` can be opened, else `.sendmmsg`
    /// (else `.sendmsgLoop` where `sendmmsg(2)` is not available). Never an error.
    case automatic
    /// One `ioctl(SENDGROUP_IOC_SEND)` per up to `max_recipients` recipients: the shared payload
    /// crosses into the kernel once per call.
    case kernel
    /// One `sendmmsg(2)` per up to 1,024 recipients, each datagram assembled from iovecs.
    case sendmmsg
    /// One `sendmsg(2)` per recipient: the classic baseline, kept for benchmarks.
    case sendmsgLoop

    /// The backend's name: `automatic`, `kernel`, `sendmmsg` or `sendmsgLoop`.
    public var description: String {
        rawValue
    }
}
