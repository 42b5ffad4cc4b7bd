#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GroupUnicast
import Testing

extension GroupUnicastTests {
    @Suite("Receive")
    struct Receive {
        @Test("recvmmsg takes every queued datagram, in order, with its source", arguments: [AddressFamily.ipv4, .ipv6])
        func batchReceive(family: AddressFamily) throws {
            let receiver = try GroupSocket(bindingTo: loopback(family))
            let sender = try GroupSocket(bindingTo: loopback(family), backend: .socket)
            let target = try receiver.localAddress
            let datagrams = (0..<40).map { pattern(1 + $0 * 10, seed: $0) }
            for datagram in datagrams { try sender.send(datagram, to: target) }

            var received: [ReceivedDatagram] = []
            var calls = 0
            while received.count < datagrams.count, try receiver.waitForReadable(timeout: .seconds(2)) {
                received += try receiver.receiveBatch(maxCount: 64, maxSize: 1024)
                calls += 1
            }
            #expect(received.map(\.bytes) == datagrams)
            #expect(received.allSatisfy { $0.source == (try? sender.localAddress) })
            #expect(calls < datagrams.count, "recvmmsg returned one datagram per call")
        }

        @Test("maxCount bounds a batch")
        func batchBound() throws {
            let receiver = try GroupSocket(bindingTo: loopback(.ipv4), options: .init(nonBlocking: true))
            let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg)
            let target = try receiver.localAddress
            #expect(try sender.send([9], to: [Recipient](repeating: Recipient(target), count: 10)).allSent)
            #expect(try receiver.waitForReadable(timeout: .seconds(2)))
            #expect(try receiver.receiveBatch(maxCount: 3).count == 3)
        }

        @Test("a nonblocking socket with nothing queued returns nil and []")
        func nonblockingEmpty() throws {
            let receiver = try GroupSocket(bindingTo: loopback(.ipv4), options: .init(nonBlocking: true))
            #expect(try receiver.receive() == nil)
            #expect(try receiver.receiveBatch().isEmpty)
            #expect(try !receiver.waitForReadable(timeout: .milliseconds(10)))
            #expect(try receiver.waitForWritable(timeout: .zero))
            let flags = fcntl(try receiver.fileDescriptor.rawValue, F_GETFL)
            #expect(flags & O_NONBLOCK != 0)
        }

        @Test("a datagram longer than the buffer is cut and marked truncated")
        func truncation() throws {
            let receiver = try GroupSocket(bindingTo: loopback(.ipv6))
            let sender = try GroupSocket(family: .ipv6, backend: .socket)
            try sender.send(pattern(20, seed: 1), to: try receiver.localAddress)
            let datagram = try #require(try receiver.receive(maxSize: 8))
            #expect(datagram.bytes == Array(pattern(20, seed: 1).prefix(8)))
            #expect(datagram.isTruncated)
        }

        @Test("an empty datagram is received as empty, not as end of stream")
        func emptyDatagram() throws {
            let receiver = try GroupSocket(bindingTo: loopback(.ipv4))
            let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg)
            #expect(try sender.send([], to: [Recipient(receiver.localAddress)]).allSent)
            let datagram = try #require(try receiver.receive())
            #expect(datagram.bytes.isEmpty)
            #expect(!datagram.isTruncated)
        }

        @Test("IP_PKTINFO / IPV6_PKTINFO report the local destination", arguments: [AddressFamily.ipv4, .ipv6])
        func destinationAddress(family: AddressFamily) throws {
            let any: SocketAddress = family == .ipv4 ? .ipv4(.any, port: 0) : .ipv6(.any, port: 0)
            let receiver = try GroupSocket(bindingTo: any, options: .init(receivesDestinationAddress: true))
            let port = try receiver.localAddress.port
            let sender = try GroupSocket(family: family, backend: .socket)
            try sender.send([1], to: loopback(family, port: port))
            try sender.send([2, 3], to: loopback(family, port: port))
            #expect(try receiver.receive()?.destination == loopback(family, port: port))
            #expect(try receiver.waitForReadable(timeout: .seconds(2)))
            let batch = try receiver.receiveBatch()
            #expect(batch.map(\.destination) == [loopback(family, port: port)])
            #expect(batch.map(\.bytes) == [[2, 3]])
        }

        @Test("async receive suspends until a datagram arrives")
        func asyncReceive() async throws {
            let receiver = try AsyncGroupSocket(bindingTo: loopback(.ipv4))
            let target = try receiver.socket.localAddress
            async let datagram = receiver.receive(maxSize: 100)
            let sender = try GroupSocket(family: .ipv4, backend: .sendmmsg)
            try await Task.sleep(for: .milliseconds(20))
            try sender.send([1, 2, 3], to: target)
            #expect(try await datagram.bytes == [1, 2, 3])

            try sender.send([4], to: target)
            try sender.send([5], to: target)
            var batch: [ReceivedDatagram] = []
            while batch.count < 2 { batch += try await receiver.receiveBatch(maxCount: 8) }
            #expect(batch.map(\.bytes) == [[4], [5]])
        }

        @Test("async send delivers like sync send", arguments: [GroupSendBackend.sendmmsg, .socket])
        func asyncSend(backend: GroupSendBackend) async throws {
            let receivers = try Receivers(count: 4, family: .ipv6)
            let sender = AsyncGroupSocket(try GroupSocket(family: .ipv6, backend: backend))
            let recipients = variedRecipients(receivers.addresses) + [Recipient(.ipv6Loopback(port: 0))]
            let result = try await sender.send(pattern(100, seed: 2), to: recipients)
            #expect(result.errors == [nil, nil, nil, nil, .invalidArgument])
            for index in 0..<4 {
                #expect(try receivers.drain(index, expected: 1).map(\.bytes)
                        == [expectedDatagram(recipients[index], pattern(100, seed: 2))])
            }
        }

        @Test("a cancelled async wait throws CancellationError")
        func asyncCancel() async throws {
            let receiver = try AsyncGroupSocket(bindingTo: loopback(.ipv4))
            let waiter = Task { try await receiver.waitUntilReadable() }
            try await Task.sleep(for: .milliseconds(20))
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
        }

        @Test("close fails a pending async wait with socketClosed")
        func asyncClose() async throws {
            let receiver = try AsyncGroupSocket(bindingTo: loopback(.ipv4))
            let waiter = Task { try await receiver.receive() }
            try await Task.sleep(for: .milliseconds(20))
            try receiver.socket.close()
            await #expect(throws: GroupUnicastError.socketClosed) { try await waiter.value }
        }

        @Test("close wakes a receive blocked on another thread")
        func closeWakesBlockedReceive() async throws {
            let receiver = try GroupSocket(bindingTo: loopback(.ipv4))
            let blocked = Task.detached { try receiver.receive() }
            try await Task.sleep(for: .milliseconds(50))
            try receiver.close()
            await #expect(throws: GroupUnicastError.socketClosed) { try await blocked.value }
        }
    }
}
