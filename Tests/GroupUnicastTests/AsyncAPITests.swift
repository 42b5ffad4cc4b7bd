// The async API is a separate type (AsyncGroupSocket), so the synchronous GroupSocket methods
// keep their meaning in async code. The first test is a compile-level check: with async
// overloads of the same names on GroupSocket (before the redesign) it did not compile.
// This file imports only GroupUnicast (no SystemPackage): Errno must come with it.
import GroupUnicast
import Testing

extension GroupUnicastTests {
    @Suite("Async API")
    struct AsyncAPI {
        @Test("inside an async function, try socket.send and if let ... = try socket.receive() are the sync calls")
        func syncCallsInAsyncFunction() async throws {
            let socket = try GroupSocket(bindingTo: loopback(.ipv4), options: .init(nonBlocking: true))
            // Nothing queued: the sync nonblocking receive answers nil at once.
            if let datagram = try socket.receive() { Issue.record("unexpected datagram \(datagram)") }
            let result: GroupSendResult<Int> = try socket.send([1, 2, 3], to: [Recipient(try socket.localAddress)])
            #expect(result.allSent)
            try socket.send([4], to: try socket.localAddress)
            #expect(try socket.waitForReadable(timeout: .seconds(2)))
            if let datagram = try socket.receive() {
                #expect(datagram.bytes == [1, 2, 3])
            } else {
                Issue.record("the datagram sent to itself was not received")
            }
            #expect(try socket.receiveBatch().map(\.bytes) == [[4]])
            // Errno is usable with `import GroupUnicast` alone.
            let error: Errno = .messageTooLong
            #expect(error.symbolicName == "EMSGSIZE")
        }

        @Test("datagrams() is an AsyncSequence of received datagrams that ends when the socket closes")
        func datagramSequence() async throws {
            let receiver = try AsyncGroupSocket(bindingTo: loopback(.ipv6))
            let target = try receiver.socket.localAddress
            let sender = AsyncGroupSocket(try GroupSocket(family: .ipv6, backend: .sendmmsg))
            let collector = Task {
                var received: [[UInt8]] = []
                for try await datagram in receiver.datagrams(maxCount: 2) { received.append(datagram.bytes) }
                return received
            }
            for index in 0..<5 { try await sender.send([UInt8(index)], to: target) }
            // Wait until all five are taken from the socket, then close it: the loop ends, no error.
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(5))
            while try receiver.socket.waitForReadable(timeout: .zero), clock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            try await Task.sleep(for: .milliseconds(50))
            try receiver.socket.close()
            #expect(try await collector.value == (0..<5).map { [UInt8($0)] })
        }

        @Test("a receive timeout throws timedOut; a datagram within it is returned")
        func receiveTimeout() async throws {
            let receiver = try AsyncGroupSocket(bindingTo: loopback(.ipv4))
            await #expect(throws: GroupUnicastError.timedOut(.milliseconds(30))) {
                try await receiver.receive(timeout: .milliseconds(30))
            }
            await #expect(throws: GroupUnicastError.timedOut(.zero)) {
                try await receiver.receiveBatch(timeout: .zero)
            }
            try receiver.socket.send([7], to: try receiver.socket.localAddress)
            #expect(try await receiver.receive(timeout: .seconds(5)).bytes == [7])
            #expect(GroupUnicastError.timedOut(.milliseconds(30)).description == "timed out after 0.03 seconds")
        }

        @Test("sendBatch and send(_:) of a MemberGroup: group.send([]) is one empty payload")
        func groupSendIsNotAmbiguous() throws {
            let receivers = try Receivers(count: 1, family: .ipv4)
            let group = try GroupSocket(family: .ipv4, backend: .sendmmsg).makeGroup()
            try group.add([GroupMember(id: 1, receivers.addresses[0], prepend: [9])])
            #expect(try group.send([]).sentCount == 1)
            #expect(try group.sendBatch([[UInt8]]()).sentCount == 0)
            #expect(try receivers.drain(0, expected: 1).map(\.bytes) == [[9]])
        }

        @Test("payloads of any byte collection: slices, ranges, raw buffers", arguments: [GroupSendBackend.sendmmsg, .socket])
        func anyByteCollection(backend: GroupSendBackend) throws {
            let receivers = try Receivers(count: 1, family: .ipv4)
            let socket = try GroupSocket(family: .ipv4, backend: backend)
            let bytes: [UInt8] = [0, 1, 2, 3, 4, 5]
            let recipient = [Recipient(receivers.addresses[0], prepend: [0xEE])]
            #expect(try socket.send(bytes[2...], to: recipient).allSent)           // contiguous slice
            #expect(try socket.send(UInt8(10)..<UInt8(13), to: recipient).allSent)  // not contiguous: copied
            #expect(try bytes.withUnsafeBytes { try socket.send($0, to: recipient) }.allSent)
            let group = try socket.makeGroup()
            try group.add([GroupMember(id: 1, recipient: recipient[0])])
            #expect(try group.sendBatch([bytes[..<2], bytes[4...]]).sentCount == 2)
            #expect(try receivers.drain(0, expected: 5).map(\.bytes) == [
                [0xEE, 2, 3, 4, 5], [0xEE, 10, 11, 12], [0xEE] + bytes, [0xEE, 0, 1], [0xEE, 4, 5],
            ])
        }
    }
}
