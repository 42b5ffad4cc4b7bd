// Error paths no real kernel produces on demand, forced through the library's syscall table
// (Sources/GroupUnicast/Internals/Syscalls.swift): ENOSYS, EINTR, short counts, and a sendgroup
// module that answers inconsistently. Debug builds only (ENABLE_MOCKING), like the mock itself.
#if ENABLE_MOCKING
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGroupUnicast
import SystemPackage
import Testing
@testable import GroupUnicast

/// A pretend sendgroup module for the mock: `open("/dev/sendgroup")` gets a real descriptor of
/// /dev/null (so closing it is real too) and `SENDGROUP_IOC_INFO` these limits.
struct FakeModule {
    var maxRecipients: UInt32 = 2
    var abiVersion = UInt32(SENDGROUP_ABI_VERSION)
    var features = UInt64(SENDGROUP_FEATURE_SHARED_PAGES) | UInt64(SENDGROUP_FEATURE_GROUPS)

    /// The answer to `call` if it is the device's open or info ioctl, else `nil`.
    func answer(_ call: Syscall) -> Result<Int, Errno>? {
        switch call {
        case .open(let path, _) where path == SENDGROUP_DEVICE_PATH:
            return .success(Syscall.open(path: "/dev/null", flags: O_RDWR | O_CLOEXEC).perform())
        case .sendgroupInfo(_, let info):
            info.pointee.abi_version = abiVersion
            info.pointee.max_recipients = maxRecipients
            info.pointee.max_datagram = UInt32(SENDGROUP_MAX_DATAGRAM)
            info.pointee.recipient_size = UInt32(SENDGROUP_RECIPIENT_SIZE_LATEST)
            info.pointee.send_args_size = UInt32(SENDGROUP_SEND_ARGS_SIZE_LATEST)
            info.pointee.features = features
            return .success(0)
        default:
            return nil
        }
    }
}

/// `open("/dev/sendgroup")` fails with ENOENT: the module is not loaded, whatever the host has.
func moduleAbsent(_ call: Syscall) -> Result<Int, Errno>? {
    if case .open(let path, _) = call, path == SENDGROUP_DEVICE_PATH { return .failure(.noSuchFileOrDirectory) }
    return nil
}

/// The payload and per-recipient bytes of the mock tests' sends.
private let payload: [UInt8] = [0xAB, 0xCD]

/// Three recipients at `receivers`, each with its index as prepend.
private func recipients(_ receivers: Receivers) -> [Recipient] {
    receivers.addresses.enumerated().map { Recipient($0.element, prepend: [UInt8($0.offset)]) }
}

extension GroupUnicastTests {
    @Suite("System call error paths (mocked syscalls)")
    struct SyscallErrorPaths {
        // MARK: ENOSYS and a missing module

        @Test("module absent: .automatic is sendmmsg, .sendgroup says how to load it")
        func moduleAbsentFallsBack() throws {
            try withSyscallMock(moduleAbsent) { mock in
                let automatic = try GroupSocket(family: .ipv4)
                #expect(automatic.backend == .sendmmsg)
                #expect(mock.trace.first == "open(/dev/sendgroup)")
                #expect(throws: GroupUnicastError.kernelModuleNotLoaded) { try GroupSocket(family: .ipv4, backend: .sendgroup) }
            }
            // Any other open failure: .automatic still falls back, a forced backend names it.
            try withSyscallMock({ call in
                if case .open(let path, _) = call, path == SENDGROUP_DEVICE_PATH { return .failure(.permissionDenied) }
                return nil
            }) { (_) throws in
                #expect(try GroupSocket(family: .ipv6).backend == .sendmmsg)
                #expect(throws: GroupUnicastError.systemCall(call: "open(/dev/sendgroup)", errno: .permissionDenied)) {
                    try GroupSocket(family: .ipv6, backend: .sendgroup)
                }
            }
        }

        @Test("sendmmsg ENOSYS: .automatic falls back to a sendmsg loop for good and delivers everything")
        func sendmmsgUnavailableFallsBack() throws {
            let receivers = try Receivers(count: 3, family: .ipv4)
            let recipients = recipients(receivers)
            try withSyscallMock({ call in
                if case .sendmmsg = call { return .failure(.noFunction) }
                return moduleAbsent(call)
            }) { mock in
                let sender = try GroupSocket(family: .ipv4)
                #expect(sender.backend == .sendmmsg)
                let result = try sender.send(payload, to: recipients)
                #expect(result.allSent)
                #expect(result.backend == .socket)
                #expect(sender.backend == .socket, "the fallback is for good")
                #expect(mock.trace.filter { $0 == "sendmmsg" }.count == 1)
                #expect(mock.trace.filter { $0 == "sendmsg" }.count == 3)
                #expect(try sender.send(payload, to: recipients).allSent)
                #expect(mock.trace.filter { $0 == "sendmmsg" }.count == 1, "no second sendmmsg after the fallback")
            }
            #expect(try receivers.drainAll(expected: [2, 2, 2]) == (0..<3).map { [[UInt8($0)] + payload, [UInt8($0)] + payload] })
        }

        @Test("sendmmsg ENOSYS on a forced sendmmsg socket or group is an error, not a silent fallback")
        func sendmmsgUnavailableForced() throws {
            let receivers = try Receivers(count: 2, family: .ipv4)
            try withSyscallMock({ call in
                if case .sendmmsg = call { return .failure(.noFunction) }
                return nil
            }) { _ in
                let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg)
                #expect(throws: GroupUnicastError.systemCall(call: "sendmmsg", errno: .noFunction)) {
                    try sender.send(payload, to: recipients(receivers))
                }
                #expect(sender.backend == .sendmmsg)
                let group = try sender.makeGroup(backend: .sendmmsg)
                try group.add([GroupMember(id: 1, receivers.addresses[0])])
                #expect(throws: GroupUnicastError.systemCall(call: "sendmmsg", errno: .noFunction)) { try group.send(payload) }
            }
        }

        @Test("a user-space group made .automatic falls back with its socket's promise")
        func groupFallsBack() throws {
            let receivers = try Receivers(count: 2, family: .ipv6)
            try withSyscallMock({ call in
                if case .sendmmsg = call { return .failure(.noFunction) }
                return moduleAbsent(call)
            }) { _ in
                let group = try GroupSocket(family: .ipv6).makeGroup()
                #expect(group.backend == .sendmmsg)
                try group.add([GroupMember(id: 2, receivers.addresses[1]), GroupMember(id: 1, receivers.addresses[0])])
                let result = try group.send(payload)
                #expect(result.sentCount == 2)
                #expect(result.backend == .socket)
                #expect(group.backend == .socket)
            }
            #expect(try receivers.drainAll(expected: [1, 1]) == [[payload], [payload]])
        }

        // MARK: EINTR

        @Test("EINTR is retried on every call: sendmmsg, sendmsg, poll, recvmmsg, recvmsg, bind, ioctl")
        func interruptedCallsAreRetried() throws {
            let receivers = try Receivers(count: 2, family: .ipv4)
            var interrupted: Set<String> = []
            try withSyscallMock({ call in
                // The first call of each kind is interrupted, once.
                if case .close = call { return nil }
                if interrupted.insert(call.name).inserted { return .failure(.interrupted) }
                return moduleAbsent(call)
            }) { mock in
                let sender = try GroupSocket(bindingTo: loopback(.ipv4))
                #expect(try sender.send(payload, to: recipients(receivers)).allSent)
                let loop = try GroupSocket(family: .ipv4, backend: .socket)
                #expect(try loop.send(payload, to: recipients(receivers)).allSent)
                let senderAddress = try sender.localAddress
                try loop.send([1], to: senderAddress)
                try loop.send([2], to: senderAddress)
                #expect(try sender.waitForReadable(timeout: .seconds(2)))
                #expect(try sender.receive()?.bytes == [1])
                #expect(try sender.waitForReadable(timeout: .seconds(2)))
                #expect(try sender.receiveBatch().map(\.bytes) == [[2]])
                for name in ["socket", "bind", "sendmmsg", "sendmsg", "poll", "recvmsg", "recvmmsg"] {
                    #expect(mock.trace.filter { $0 == name }.count >= 2, "\(name) was not retried: \(mock.trace)")
                }
            }
            #expect(try receivers.drainAll(expected: [2, 2]) == (0..<2).map { [[UInt8($0)] + payload, [UInt8($0)] + payload] })
        }

        @Test("EINTR on the sendgroup ioctls is retried")
        func interruptedIoctlsAreRetried() throws {
            var interruptedOnce = false
            try withSyscallMock({ call in
                if let answer = FakeModule().answer(call) { return answer }
                if case .sendgroupSend(_, let arguments) = call {
                    if !interruptedOnce {
                        interruptedOnce = true
                        return .failure(.interrupted)
                    }
                    let results = UnsafeMutablePointer<Int32>(bitPattern: UInt(arguments.pointee.results))!
                    for slot in 0..<Int(arguments.pointee.recipient_count) { results[slot] = 0 }
                    return .success(Int(arguments.pointee.recipient_count))
                }
                return nil
            }) { mock in
                let sender = try GroupSocket(family: .ipv4, backend: .sendgroup)
                let result = try sender.send(payload, to: [Recipient(.ipv4Loopback(port: 9))])
                #expect(result.allSent)
                #expect(mock.trace.filter { $0 == "ioctl(SENDGROUP_IOC_SEND)" }.count == 2)
            }
        }

        // MARK: Short counts

        @Test("sendmmsg sending fewer than asked: the rest is sent by the next calls")
        func shortSendmmsgContinues() throws {
            let receivers = try Receivers(count: 5, family: .ipv4)
            try withSyscallMock({ call in
                // The kernel may stop early (a full socket buffer, a signal): at most 2 per call.
                if case .sendmmsg(let descriptor, let messages, let count, let flags) = call {
                    return .success(Syscall.sendmmsg(descriptor: descriptor, messages: messages, count: min(count, 2), flags: flags).perform())
                }
                return nil
            }) { mock in
                let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg)
                let result = try sender.send(payload, to: recipients(receivers))
                #expect(result.allSent)
                #expect(result.sentCount == 5)
                #expect(mock.trace.filter { $0 == "sendmmsg" }.count == 3)
            }
            #expect(try receivers.drainAll(expected: [1, 1, 1, 1, 1]) == (0..<5).map { [[UInt8($0)] + payload] })
        }

        @Test("a short sendmmsg, then a recipient error, then the rest: each recipient reported exactly")
        func shortSendmmsgThenRecipientError() throws {
            let receivers = try Receivers(count: 5, family: .ipv4)
            var calls = 0
            try withSyscallMock({ call in
                guard case .sendmmsg(let descriptor, let messages, let count, let flags) = call else { return nil }
                calls += 1
                switch calls {
                case 1: return .success(Syscall.sendmmsg(descriptor: descriptor, messages: messages, count: min(count, 2), flags: flags).perform())
                case 2: return .failure(.noBufferSpace)  // the third message's own error
                default: return nil
                }
            }) { _ in
                let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg)
                let result = try sender.send(payload, to: recipients(receivers))
                #expect(result.errors == [nil, nil, .noBufferSpace, nil, nil])
                #expect(result.failures == [GroupSendFailure(recipient: 2, error: .noBufferSpace)])
            }
            #expect(try receivers.drainAll(expected: [1, 1, 0, 1, 1]) == [[[0] + payload], [[1] + payload], [], [[3] + payload], [[4] + payload]])
        }

        @Test("a call-level error after a short sendmmsg marks only the unsent recipients, without throwing")
        func shortSendmmsgThenCallError() throws {
            let receivers = try Receivers(count: 4, family: .ipv6)
            var calls = 0
            try withSyscallMock({ call in
                guard case .sendmmsg(let descriptor, let messages, let count, let flags) = call else { return nil }
                calls += 1
                if calls == 1 {
                    return .success(Syscall.sendmmsg(descriptor: descriptor, messages: messages, count: min(count, 1), flags: flags).perform())
                }
                return .failure(.badFileDescriptor)
            }) { _ in
                let sender = try GroupSocket(family: .ipv6, backend: .sendmmsg)
                let result = try sender.send(payload, to: recipients(receivers))
                #expect(result.errors == [nil, .badFileDescriptor, .badFileDescriptor, .badFileDescriptor])
                #expect(result.sentCount == 1)
                // Nothing sent at all: the call is refused as a whole.
                #expect(throws: GroupUnicastError.systemCall(call: "sendmmsg", errno: .badFileDescriptor)) {
                    try sender.send(payload, to: recipients(receivers))
                }
            }
            #expect(try receivers.drainAll(expected: [1, 0, 0, 0]) == [[[0] + payload], [], [], []])
        }

        @Test("sendmmsg answering 0 or more than asked is a kernel inconsistency, not a hang or a skip",
              arguments: [0, 3])
        func sendmmsgImpossibleCount(count: Int) throws {
            try withSyscallMock({ call in
                if case .sendmmsg = call { return .success(count) }
                return nil
            }) { _ in
                let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg)
                #expect(throws: GroupUnicastError.kernelResultInconsistent(reason: "sendmmsg of 2 messages returned \(count)")) {
                    try sender.send(payload, to: [Recipient(.ipv4Loopback(port: 9)), Recipient(.ipv4Loopback(port: 10))])
                }
            }
        }

        // MARK: The sendgroup module's answers

        /// Runs a send of `count` recipients on a `.sendgroup` socket of a ``FakeModule`` whose
        /// SENDGROUP_IOC_SEND answers with `answer(results, recipientCount)`.
        static func kernelSend(
            count: Int,
            _ answer: @escaping (UnsafeMutablePointer<Int32>, Int) -> Result<Int, Errno>
        ) throws -> (result: GroupSendResult<Int>, ioctls: Int) {
            try withSyscallMock({ call in
                if let answer = FakeModule().answer(call) { return answer }
                if case .sendgroupSend(_, let arguments) = call {
                    let results = UnsafeMutablePointer<Int32>(bitPattern: UInt(arguments.pointee.results))!
                    return answer(results, Int(arguments.pointee.recipient_count))
                }
                return nil
            }) { mock in
                let sender = try GroupSocket(family: .ipv4, backend: .sendgroup)
                #expect(sender.kernelModuleInfo?.maxRecipients == 2)
                let recipients = (0..<count).map { Recipient(.ipv4Loopback(port: UInt16(9 + $0))) }
                let result = try sender.send(payload, to: recipients)
                return (result, mock.trace.filter { $0 == "ioctl(SENDGROUP_IOC_SEND)" }.count)
            }
        }

        @Test("consistent module answers: per-recipient errnos, chunks of max_recipients")
        func kernelResultsMapped() throws {
            let (result, ioctls) = try Self.kernelSend(count: 3) { results, count in
                // Every second recipient of a chunk fails with EAFNOSUPPORT.
                for slot in 0..<count { results[slot] = slot % 2 == 0 ? 0 : -Errno.addressFamilyNotSupported.rawValue }
                return .success((count + 1) / 2)
            }
            #expect(ioctls == 2)
            #expect(result.backend == .sendgroup)
            #expect(result.errors == [nil, .addressFamilyNotSupported, nil])
        }

        @Test("kernelResultInconsistent: a return value that disagrees with the results")
        func kernelCountDisagrees() throws {
            #expect(throws: GroupUnicastError.kernelResultInconsistent(reason: "returned 2 but 1 results are 0")) {
                _ = try Self.kernelSend(count: 2) { results, _ in
                    results[0] = 0
                    results[1] = -Errno.networkUnreachable.rawValue
                    return .success(2)
                }
            }
        }

        @Test("kernelResultInconsistent: a result slot the module did not write")
        func kernelResultUnwritten() throws {
            #expect(throws: GroupUnicastError.kernelResultInconsistent(reason: "results[1] was not written (returned 1)")) {
                _ = try Self.kernelSend(count: 2) { results, _ in
                    results[0] = 0
                    return .success(1)
                }
            }
        }

        @Test("an ioctl refused after an earlier chunk went out fails the rest per recipient")
        func kernelRefusedMidway() throws {
            var calls = 0
            let (result, ioctls) = try Self.kernelSend(count: 5) { results, count in
                calls += 1
                guard calls == 1 else { return .failure(.noMemory) }
                for slot in 0..<count { results[slot] = 0 }
                return .success(count)
            }
            #expect(ioctls == 2)
            #expect(result.errors == [nil, nil, .noMemory, .noMemory, .noMemory])
            #expect(throws: GroupUnicastError.systemCall(call: "ioctl(SENDGROUP_IOC_SEND)", errno: .inappropriateIOCTLForDevice)) {
                _ = try Self.kernelSend(count: 1) { _, _ in .failure(.inappropriateIOCTLForDevice) }
            }
        }

        @Test("a module with an older ABI or no recipients is refused by name", arguments: [
            (FakeModule(abiVersion: 1), "ABI version 1, need \(SENDGROUP_ABI_VERSION)"),
            (FakeModule(maxRecipients: 0), "max_recipients is 0"),
        ])
        func incompatibleModule(module: FakeModule, reason: String) throws {
            try withSyscallMock(module.answer) { (_) throws in
                #expect(throws: GroupUnicastError.kernelModuleIncompatible(reason: reason)) {
                    try GroupSocket(family: .ipv4, backend: .sendgroup)
                }
                #expect(try GroupSocket(family: .ipv4).backend == .sendmmsg, ".automatic falls back")
            }
        }

        @Test("kernel groups: counts that disagree, and a failure with a non-negative error, are inconsistencies")
        func kernelGroupInconsistent() throws {
            var sendAnswer: (UnsafeMutablePointer<sendgroup_group_send_args>) -> Result<Int, Errno> = { _ in .success(0) }
            try withSyscallMock({ call in
                if let answer = FakeModule().answer(call) { return answer }
                switch call {
                case .groupCreate:
                    return .success(Syscall.open(path: "/dev/null", flags: O_RDWR | O_CLOEXEC).perform())
                case .groupAdd:
                    return .success(0)
                case .groupSend(_, let arguments):
                    return sendAnswer(arguments)
                default:
                    return nil
                }
            }) { _ in
                let socket = try GroupSocket(family: .ipv4, backend: .sendgroup)
                let group = try socket.makeGroup()
                #expect(group.backend == .sendgroup)
                try group.add([GroupMember(id: 1, .ipv4Loopback(port: 9)), GroupMember(id: 2, .ipv4Loopback(port: 10))])

                // 2 members × 1 payload, but 1 sent and 0 failed.
                sendAnswer = { _ in .success(1) }
                #expect(throws: GroupUnicastError.kernelResultInconsistent(
                    reason: "ioctl(SENDGROUP_GROUP_IOC_SEND) sent 1 and failed 0 of 2 members × 1 payloads")) {
                    try group.send(payload)
                }

                /// Member 2 failed with `error` (as the kernel writes it), member 1 was sent.
                func memberTwoFailed(_ error: Int32) -> (UnsafeMutablePointer<sendgroup_group_send_args>) -> Result<Int, Errno> {
                    { arguments in
                        arguments.pointee.failure_count = 1
                        let failures = UnsafeMutablePointer<sendgroup_failure>(bitPattern: UInt(arguments.pointee.failures))!
                        failures[0] = sendgroup_failure(member_id: 2, payload_index: 0, error: error)
                        return .success(1)
                    }
                }

                // One failure reported with a positive "errno".
                sendAnswer = memberTwoFailed(5)
                #expect(throws: GroupUnicastError.kernelResultInconsistent(
                    reason: "ioctl(SENDGROUP_GROUP_IOC_SEND) wrote failure error 5")) {
                    try group.send(payload)
                }

                // A consistent answer is reported per member.
                sendAnswer = memberTwoFailed(-Errno.networkUnreachable.rawValue)
                let result = try group.send(payload)
                #expect(result.sentCount == 1)
                #expect(result.failures == [GroupSendFailure<UInt64>(recipient: 2, error: .networkUnreachable)])
            }
        }
    }
}
#endif
