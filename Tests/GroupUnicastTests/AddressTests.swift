import GroupUnicast
import Testing

extension GroupUnicastTests {
    @Suite("Socket addresses")
    struct AddressParsing {
        @Test("parses and prints IPv4 and IPv6 endpoints", arguments: [
            ("1.2.3.4:5", SocketAddress.ipv4(IPv4Address(1, 2, 3, 4), port: 5), "1.2.3.4:5"),
            ("127.0.0.1:65535", .ipv4(.loopback, port: 65535), "127.0.0.1:65535"),
            ("0.0.0.0:0", .ipv4(.any, port: 0), "0.0.0.0:0"),
            ("[::1]:5", .ipv6(.loopback, port: 5), "[::1]:5"),
            ("[::]:80", .ipv6(.any, port: 80), "[::]:80"),
            ("[2001:DB8:0:0:0:0:0:1]:443", .ipv6(IPv6Address("2001:db8::1")!, port: 443), "[2001:db8::1]:443"),
            ("[::ffff:192.0.2.1]:7", .ipv6(IPv6Address(ipv4Mapped: IPv4Address(192, 0, 2, 1)), port: 7), "[::ffff:192.0.2.1]:7"),
            ("[fe80::1%3]:9", .ipv6(IPv6Address("fe80::1")!, port: 9, scopeID: 3), "[fe80::1%3]:9"),
            ("[fe80::1%lo]:9", .ipv6(IPv6Address("fe80::1")!, port: 9, scopeID: 1), "[fe80::1%1]:9"),
        ])
        func parsesAndPrints(text: String, address: SocketAddress, printed: String) throws {
            #expect(try SocketAddress(parsing: text) == address)
            #expect(address.description == printed)
            #expect(try SocketAddress(parsing: printed) == address)
            #expect(SocketAddress(printed) == address)
        }

        @Test("rejects bad text with the reason", arguments: [
            ("", SocketAddress.ParseError.Reason.empty),
            ("1.2.3.4", .missingPort),
            ("1.2.3.4:", .missingPort),
            ("1.2.3.4:65536", .invalidPort("65536")),
            ("1.2.3.4:-1", .invalidPort("-1")),
            ("1.2.3.4:+5", .invalidPort("+5")),
            ("1.2.3.4:5x", .invalidPort("5x")),
            ("1.2.3:5", .invalidIPv4Address("1.2.3")),
            ("256.0.0.1:5", .invalidIPv4Address("256.0.0.1")),
            ("localhost:5", .invalidIPv4Address("localhost")),
            ("::1:5", .ipv6NeedsBrackets),
            ("[::1:5", .unterminatedBracket),
            ("[::1]", .missingPort),
            ("[::1]5", .unexpectedTextAfterBracket("5")),
            ("[1.2.3.4]:5", .invalidIPv6Address("1.2.3.4")),
            ("[::g]:5", .invalidIPv6Address("::g")),
            ("[fe80::1%]:5", .invalidScope("")),
            ("[fe80::1%no-such-interface0]:5", .invalidScope("no-such-interface0")),
        ])
        func rejects(text: String, reason: SocketAddress.ParseError.Reason) {
            #expect(throws: SocketAddress.ParseError(input: text, reason: reason)) {
                try SocketAddress(parsing: text)
            }
            #expect(SocketAddress(text) == nil)
        }

        @Test("parse errors read clearly")
        func errorDescription() {
            #expect(throws: SocketAddress.ParseError.self) { try SocketAddress(parsing: "localhost:80") }
            let error = SocketAddress.ParseError(input: "localhost:80", reason: .invalidIPv4Address("localhost"))
            #expect(error.description == """
                invalid socket address "localhost:80": "localhost" is not an IPv4 address \
                (host names are not resolved) (expected 1.2.3.4:5 or [::1]:5)
                """)
            let missing = SocketAddress.ParseError(input: "[::1]", reason: .missingPort)
            #expect(missing.description == #"invalid socket address "[::1]": missing :PORT (expected 1.2.3.4:5 or [::1]:5)"#)
        }

        @Test("address values")
        func addressValues() {
            #expect(IPv4Address.loopback.value == 0x7F00_0001)
            #expect(IPv4Address.loopback.bytes == [127, 0, 0, 1])
            #expect(IPv6Address.loopback.bytes == [UInt8](repeating: 0, count: 15) + [1])
            #expect(IPv6Address(bytes: IPv6Address("2001:db8::8:1")!.bytes) == IPv6Address("2001:db8::8:1"))
            #expect(IPv6Address("fe80::1")!.isLinkLocal)
            #expect(!IPv6Address.loopback.isLinkLocal)
            #expect(IPv6Address("::ffff:10.1.2.3")!.ipv4Mapped == IPv4Address(10, 1, 2, 3))
            #expect(SocketAddress.ipv4Loopback(port: 7).mappedToIPv6 == .ipv6(IPv6Address("::ffff:127.0.0.1")!, port: 7))
            #expect(SocketAddress.ipv6Loopback(port: 7).family == .ipv6)
            #expect(SocketAddress.ipv4Loopback(port: 7).port == 7)
        }
    }
}
