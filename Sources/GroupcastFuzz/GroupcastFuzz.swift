// Fuzz entry points for the SFU's parsers (mediasoup keeps one fuzzer per parser too).
//
// Built by scripts/test/sfu with
//   swift build --product GroupcastFuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DGROUPCAST_LIBFUZZER \
//       -Xswiftc -parse-as-library
// SwiftPM links an executable's entry point as `GroupcastFuzz_main`; in fuzzing builds that entry
// hands control to libFuzzer (LLVMFuzzerRunDriver). GROUPCAST_FUZZ_TARGET picks the parser:
//   rtp       RTPHeader.parse
//   control   ControlMessage.parse, any message, as request, reply and either
//   register  the body of a 1,024-byte version 2 REGISTER (the input after a valid header, padded):
//             room name, token field, cookies
//   token     JoinToken.decode (structure and claims) and JoinToken.verify with a fixed key
// A plain build replays files instead: `GroupcastFuzz TARGET FILE...`.
import Foundation
import GroupcastAuth
import GroupcastProtocol

let fuzzTargets = ["rtp", "control", "register", "token"]
let fuzzKey = try! TokenKey(text: "groupcast-fuzz-key-0123456789abcdef0123456789")

/// Every way the control parser can be asked agrees: a message parses as `.any` exactly when it
/// parses in its own direction, and never in the other; whatever parses encodes back to its bytes.
func checkControl(_ bytes: UnsafeRawBufferPointer) {
    let any = try? ControlMessage.parse(bytes)
    let request = try? ControlMessage.parse(bytes, expecting: .request)
    let reply = try? ControlMessage.parse(bytes, expecting: .reply)
    if let any {
        precondition(any.kind.isRequest ? (request == any && reply == nil) : (reply == any && request == nil), "directions disagree: \(any.kind)")
        let encoded = any.encoded()
        precondition(encoded == Array(bytes), "control message does not round-trip: \(any.kind)")
        precondition((try? ControlMessage.parse(encoded)) == any, "re-parse differs")
        if let size = any.kind.fixedSize { precondition(bytes.count == size, "\(any.kind) parsed at \(bytes.count) bytes") }
        if case .register(let registration) = any {
            precondition(registration.room.isEmpty || RoomName.isValid(registration.room), "invalid room name accepted")
            precondition(registration.token.count <= ControlMessage.maxTokenBytes, "token too long")
        }
    } else {
        precondition(request == nil && reply == nil, "a direction accepts what .any refuses")
    }
    // An ERROR cut to the request's size never exceeds it (the amplification rule).
    if bytes.count >= 12 {
        let error = ControlMessage.error(requestID: 1, code: .malformed, message: String(decoding: bytes, as: UTF8.self)).encoded(maxSize: bytes.count)
        precondition(error.count <= bytes.count, "ERROR of \(error.count) bytes for a \(bytes.count)-byte request")
    }
}

/// Runs one input through a parser and checks its invariants; traps on a violation.
func fuzzOne(_ target: String, _ bytes: UnsafeRawBufferPointer) {
    switch target {
    case "rtp":
        if let header = try? RTPHeader.parse(bytes) {
            precondition(header.payloadOffset >= RTPHeader.fixedSize && header.payloadOffset <= bytes.count, "payload offset out of bounds")
            precondition(header.payloadLength >= 0 && header.payloadOffset + header.payloadLength <= bytes.count, "payload length out of bounds")
            precondition(RTPHeader.ssrcIfRTP(bytes) == header.ssrc, "fast SSRC check disagrees with the parser")
        }
    case "register":
        var message = [ControlMessage.magic.0, ControlMessage.magic.1, ControlMessage.version, ControlMessage.Kind.register.rawValue, 0, 0, 0, 1]
        message += bytes.prefix(ControlMessage.registerSize - 8)
        message += [UInt8](repeating: 0, count: ControlMessage.registerSize - message.count)
        message.withUnsafeBytes { checkControl($0) }
    case "token":
        if let claims = try? JoinToken.decode(bytes) {
            precondition(RoomName.isValid(claims.room), "token with an invalid room decoded")
            precondition(!claims.identity.isEmpty && claims.identity.utf8.count <= JoinClaims.maxIdentityBytes, "token identity out of bounds")
        }
        if let claims = try? JoinToken.verify(bytes, key: fuzzKey, now: 0) {
            // Only a token this key signed verifies; minting its claims again gives a valid token too.
            let again = JoinToken.mint(claims, key: fuzzKey)
            precondition((try? JoinToken.verify(Array(again.utf8), key: fuzzKey, now: 0)) == claims, "re-minted token differs")
        }
    default:
        checkControl(bytes)
    }
}

#if GROUPCAST_LIBFUZZER
let fuzzTarget = ProcessInfo.processInfo.environment["GROUPCAST_FUZZ_TARGET"] ?? "rtp"

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(fuzzTarget, UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("GroupcastFuzz_main")
public func groupcastFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        fuzzOne(fuzzTarget, UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
#else
@main
struct GroupcastFuzzReplay {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let target = arguments.first, fuzzTargets.contains(target) else {
            FileHandle.standardError.write(Data("usage: GroupcastFuzz \(fuzzTargets.joined(separator: "|")) FILE...\n".utf8))
            exit(2)
        }
        for path in arguments.dropFirst() {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            data.withUnsafeBytes { fuzzOne(target, $0) }
        }
    }
}
#endif
