import CGroupUnicast
import SystemPackage

/// ``GroupSendBackend/sendgroup``: one `ioctl(SENDGROUP_IOC_SEND)` per up to the module's
/// `max_recipients`; the shared payload crosses into the kernel once per call.
internal struct SendgroupSender: ChunkSender {
    /// The open `/dev/sendgroup`.
    var device: SendgroupDevice

    var backend: GroupSendBackend { .sendgroup }
    var layout: SendBuffers.Layout { .sendgroupRecipients }
    var chunkLimit: Int { device.info.maxRecipients }

    func send(
        _ chunk: ArraySlice<Int>,
        _ buffers: borrowing SendBuffers,
        _ call: ChunkCall,
        _ errors: inout [Errno?]
    ) throws(GroupUnicastError) -> ChunkOutcome {
        guard let entries = buffers.entries, let results = buffers.results else {
            preconditionFailure("send buffers not prepared")
        }
        var arguments = sendgroup_send_args()
        arguments.size = UInt32(SENDGROUP_SEND_ARGS_SIZE_LATEST)
        arguments.fd = UInt32(call.descriptor)
        arguments.flags = 0
        arguments.msg_flags = UInt32(call.flags) & CGroupUnicast_SENDGROUP_MSG_FLAGS
        arguments.shared = UInt64(call.payload.address)
        arguments.shared_len = UInt32(call.payload.count)
        arguments.recipient_size = UInt32(MemoryLayout<sendgroup_recipient>.size)
        arguments.recipients = UInt64(UInt(bitPattern: entries))
        arguments.recipient_count = UInt32(chunk.count)
        arguments.reserved = 0
        arguments.results = UInt64(UInt(bitPattern: results))

        let outcome = withUnsafeMutablePointer(to: &arguments) { arguments in
            retryingInterrupts(.sendgroupSend(device: device.descriptor, arguments: arguments))
        }
        let sent: Int
        switch outcome {
        case .success(let count):
            sent = count
        case .failure(let error):
            return .refused(call: "ioctl(SENDGROUP_IOC_SEND)", errno: error)
        }
        // The module writes every result slot; SendBuffers pre-fills them with a value it never
        // writes, so a slot left alone or a count that disagrees is a module bug, not a guess.
        var succeeded = 0
        for (slot, index) in chunk.enumerated() {
            let result = results[slot]
            if result == 0 {
                succeeded += 1
            } else if result < 0 {
                errors[index] = Errno(rawValue: -result)
            } else {
                throw .kernelResultInconsistent(reason: "results[\(slot)] was not written (returned \(sent))")
            }
        }
        guard succeeded == sent else {
            throw .kernelResultInconsistent(reason: "returned \(sent) but \(succeeded) results are 0")
        }
        return .done(sent: sent > 0)
    }
}
