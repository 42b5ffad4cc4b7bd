// async-echo: echoes datagrams back to their sender, written as top-level code with
// `try await` on an AsyncGroupSocket — the async API needs no wrapper type or @main.
//
//   async-echo [COUNT]     echo COUNT datagrams (default: until 10 s pass without one), then exit
//
// Listens on 127.0.0.1 at a port the kernel picks and prints it first.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GroupUnicast

let count = CommandLine.arguments.dropFirst().first.flatMap { Int($0) }
let echo = try AsyncGroupSocket(bindingTo: .ipv4Loopback(port: 0))
print("async-echo: listening on \(try echo.socket.localAddress)")
fflush(nil)  // a reader on a pipe needs the address now, not at exit

var echoed = 0
do {
    while count.map({ echoed < $0 }) ?? true {
        // Top-level `try await` on the async type: suspends, with a timeout.
        let datagram = try await echo.receive(timeout: .seconds(10))
        try await echo.send(datagram.bytes, to: datagram.source)
        echoed += 1
    }
} catch GroupUnicastError.timedOut(let after) {
    print("async-echo: no datagram for \(after); stopping")
}
print("async-echo: echoed \(echoed) datagrams")
