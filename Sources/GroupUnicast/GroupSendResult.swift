import SystemPackage

/// What one group send did: how many datagrams went out and which failed, and why.
///
/// The one result of ``GroupSocket/send(_:to:)-(_,[Recipient])`` and ``MemberGroup/send(_:failureLimit:)``.
/// `RecipientID` names a recipient in ``failures``: its index in the `recipients` array of a
/// ``GroupSocket`` send (`Int`), its member id in a ``MemberGroup`` send (`UInt64`).
///
/// Datagrams go out payload by payload, each payload to every recipient in order (call order for
/// a socket, ascending member id for a group); ``failures`` lists the failed ones in that order.
public struct GroupSendResult<RecipientID: Hashable & Sendable>: Hashable, Sendable {
    /// The backend that carried the send.
    public var backend: GroupSendBackend
    /// The payloads of the call (1 for a ``GroupSocket`` send).
    public var payloadCount: Int
    /// The datagrams handed to the UDP stack.
    public var sentCount: Int
    /// The datagrams that failed, including any beyond the failure limit of a group send.
    public var failureCount: Int
    /// The failed datagrams in send order; a ``MemberGroup`` send lists at most its
    /// `failureLimit`, a ``GroupSocket`` send every one.
    public var failures: [GroupSendFailure<RecipientID>]

    /// Creates a result.
    public init(
        backend: GroupSendBackend,
        payloadCount: Int,
        sentCount: Int,
        failureCount: Int,
        failures: [GroupSendFailure<RecipientID>]
    ) {
        self.backend = backend
        self.payloadCount = payloadCount
        self.sentCount = sentCount
        self.failureCount = failureCount
        self.failures = failures
    }

    /// Whether every datagram was sent.
    public var allSent: Bool {
        failureCount == 0
    }

    /// Whether more datagrams failed than ``failures`` lists.
    public var failuresTruncated: Bool {
        failures.count < failureCount
    }
}

extension GroupSendResult where RecipientID == Int {
    /// Creates the result of a one-payload send from one slot per recipient: `nil` if sent, else why not.
    public init(backend: GroupSendBackend, errors: [Errno?]) {
        var failures: [GroupSendFailure<Int>] = []
        for (index, error) in errors.enumerated() {
            if let error { failures.append(GroupSendFailure(recipient: index, payloadIndex: 0, error: error)) }
        }
        self.init(backend: backend, payloadCount: 1, sentCount: errors.count - failures.count,
                  failureCount: failures.count, failures: failures)
    }

    /// The number of recipients of a one-payload send.
    public var recipientCount: Int {
        sentCount + failureCount
    }

    /// One slot per recipient of a one-payload send, in call order: `nil` if sent, else why not.
    public var errors: [Errno?] {
        var errors = [Errno?](repeating: nil, count: recipientCount)
        for failure in failures where failure.recipient < errors.count { errors[failure.recipient] = failure.error }
        return errors
    }
}

/// A datagram of a group send that was not sent: to whom, which payload, and why.
///
/// The corresponding C types are the `results` array of `struct sendgroup_send_args` and
/// `struct sendgroup_failure` (`error` there is the negative errno).
public struct GroupSendFailure<RecipientID: Hashable & Sendable>: Hashable, Sendable {
    /// The recipient: its index in the call's `recipients` (``GroupSocket``), its member id (``MemberGroup``).
    public var recipient: RecipientID
    /// The index of the payload in the send call (0 for a ``GroupSocket`` send).
    public var payloadIndex: Int
    /// Why, the same on every backend for the same cause: `EMSGSIZE` for a datagram over the
    /// limit, `ENETUNREACH`, `EAFNOSUPPORT`, `EINVAL` (port 0), `EAGAIN` (nonblocking, buffer full).
    public var error: Errno

    /// Creates a failure record.
    public init(recipient: RecipientID, payloadIndex: Int = 0, error: Errno) {
        self.recipient = recipient
        self.payloadIndex = payloadIndex
        self.error = error
    }
}
