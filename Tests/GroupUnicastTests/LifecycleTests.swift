import CGroupUnicast
import SystemPackage
import Testing
@testable import GroupUnicast

extension GroupUnicastTests {
    @Suite("Lifecycle, backends and errors")
    struct Lifecycle {
        @Test("10,000 sockets opened and closed leak no descriptor")
        func noDescriptorLeak() throws {
            let before = openNetworkDescriptors()
            // The detector sees an open socket (and the sendgroup device where it is used).
            let probe = try GroupSocket(family: .ipv4)
            #expect(leakedDescriptors(since: before).count == (probe.backend == .sendgroup ? 2 : 1))
            try probe.close()
            #expect(leakedDescriptors(since: before).isEmpty)

            for index in 0..<10_000 {
                let family: AddressFamily = index % 2 == 0 ? .ipv4 : .ipv6
                let socket = try GroupSocket(bindingTo: loopback(family), options: .init(nonBlocking: index % 3 == 0))
                if index % 4 == 0 {
                    _ = try socket.send([1], to: [Recipient(socket.localAddress)])
                    _ = try socket.receiveBatch(maxCount: 4, maxSize: 16)
                }
                // Half closed explicitly, half by deinit at the end of the iteration.
                if index % 2 == 0 { try socket.close() }
            }
            #expect(leakedDescriptors(since: before).isEmpty, "\(leakedDescriptors(since: before))")
        }

        @Test("a failed creation leaks no descriptor")
        func failedCreationDoesNotLeak() throws {
            let before = openNetworkDescriptors()
            for _ in 0..<100 {
                // 192.0.2.250 is no address of this host: bind fails with EADDRNOTAVAIL after socket().
                #expect(throws: GroupUnicastError.self) {
                    _ = try GroupSocket(bindingTo: .ipv4(IPv4Address(192, 0, 2, 250), port: 0))
                }
            }
            #expect(leakedDescriptors(since: before).isEmpty, "\(leakedDescriptors(since: before))")
        }

        @Test("operations after close throw socketClosed")
        func useAfterClose() throws {
            let socket = try GroupSocket(bindingTo: loopback(.ipv4))
            #expect(!socket.isClosed)
            try socket.close()
            #expect(socket.isClosed)
            #expect(throws: GroupUnicastError.socketClosed) { try socket.close() }
            #expect(throws: GroupUnicastError.socketClosed) { try socket.send([1], to: [Recipient(.ipv4Loopback(port: 9))]) }
            #expect(throws: GroupUnicastError.socketClosed) { try socket.receive() }
            #expect(throws: GroupUnicastError.socketClosed) { try socket.localAddress }
            #expect(throws: GroupUnicastError.socketClosed) { try socket.fileDescriptor }
            #expect(throws: GroupUnicastError.socketClosed) { try socket.waitForReadable(timeout: .zero) }
        }

        @Test("forced backends are used as asked", arguments: [GroupSendBackend.sendmmsg, .socket])
        func forcedBackend(backend: GroupSendBackend) throws {
            let socket = try GroupSocket(family: .ipv6, backend: backend)
            #expect(socket.backend == backend)
            #expect(socket.requestedBackend == backend)
            #expect(socket.kernelModuleInfo == nil)
        }

        @Test("without the module, .automatic is sendmmsg and not an error",
              .enabled(if: !GroupSocket.isKernelModuleLoaded, "the sendgroup module is loaded"))
        func automaticWithoutModule() throws {
            let socket = try GroupSocket(family: .ipv4)
            #expect(socket.requestedBackend == .automatic)
            #expect(socket.backend == .sendmmsg)
            #expect(socket.kernelModuleInfo == nil)
        }

        @Test("without the module, forcing .sendgroup says how to load it",
              .enabled(if: !GroupSocket.isKernelModuleLoaded, "the sendgroup module is loaded"))
        func kernelWithoutModule() throws {
            let before = openNetworkDescriptors()
            let error = #expect(throws: GroupUnicastError.kernelModuleNotLoaded) {
                try GroupSocket(family: .ipv4, backend: .sendgroup)
            }
            #expect(error?.description == "sendgroup module not loaded: /dev/sendgroup missing; load with modprobe sendgroup")
            #expect(leakedDescriptors(since: before).isEmpty, "\(leakedDescriptors(since: before))")
        }

        @Test("a failed system call names the call and the errno")
        func systemCallErrorNaming() throws {
            let socket = try GroupSocket(family: .ipv4)
            let error = #expect(throws: GroupUnicastError.self) {
                try socket.bind(to: .ipv4(IPv4Address(192, 0, 2, 250), port: 0))
            }
            #expect(error == .systemCall(call: "bind(192.0.2.250:0)", errno: .addressNotAvailable))
            #expect(error?.errno == .addressNotAvailable)
            #expect(error?.description == "bind(192.0.2.250:0) failed: EADDRNOTAVAIL (Cannot assign requested address)")
            #expect(Errno.messageTooLong.symbolicName == "EMSGSIZE")
            #expect(Errno.networkUnreachable.symbolicName == "ENETUNREACH")
            #expect(Errno(rawValue: 4242).symbolicName == "errno 4242")
        }

        #if ENABLE_MOCKING
        @Test("the choke point retries EINTR and reports other errnos")
        func chokePointRetriesInterrupts() throws {
            // Any call will do: the mock answers it without touching the (dummy) descriptor.
            var message = CGroupUnicast_mmsghdr()
            var attempts = 0
            let value = try withSyscallMock({ _ in
                attempts += 1
                return attempts < 3 ? .failure(.interrupted) : .success(7)
            }) { (_) throws(GroupUnicastError) in
                try withUnsafeMutablePointer(to: &message) { (message) throws(GroupUnicastError) in
                    try systemCall(.sendmmsg(descriptor: -1, messages: message, count: 1, flags: 0))
                }
            }
            #expect(value == 7)
            #expect(attempts == 3)

            let error = #expect(throws: GroupUnicastError.self) {
                try withSyscallMock({ _ in .failure(.messageTooLong) }) { (_) throws(GroupUnicastError) in
                    try withUnsafeMutablePointer(to: &message) { (message) throws(GroupUnicastError) in
                        try systemCall(.sendmmsg(descriptor: -1, messages: message, count: 1, flags: 0))
                    }
                }
            }
            #expect(error == .systemCall(call: "sendmmsg", errno: .messageTooLong))
            #expect(error?.description == "sendmmsg failed: EMSGSIZE (Message too long)")
        }
        #endif

        @Test("the descriptor is exposed for event loops")
        func exposedDescriptor() throws {
            let socket = try GroupSocket(bindingTo: loopback(.ipv6))
            let descriptor = try socket.fileDescriptor
            #expect(descriptor.rawValue >= 0)
            #expect(try socket.localAddress.family == .ipv6)
            #expect(try socket.localAddress.port != 0)
        }
    }
}


