// Fuzz entry points for the SFU's parsers (mediasoup keeps one fuzzer per parser too).
//
// Built by scripts/test-sfu with
//   swift build --product GroupcastFuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DGROUPCAST_LIBFUZZER \
//       -Xswiftc -parse-as-library
// SwiftPM links an executable's entry point as `GroupcastFuzz_main`; in fuzzing builds that entry
// hands control to libFuzzer (LLVMFuzzerRunDriver). GROUPCAST_FUZZ_TARGET=rtp|control picks the parser.
// A plain build replays files instead: `GroupcastFuzz rtp|control FILE...`.
import Foundation
import GroupcastProtocol

/// Runs one input through a parser and checks its invariants; traps on a violation.
func fuzzOne(_ target: String, _ bytes: UnsafeRawBufferPointer) {
    switch target {
    case "rtp":
        if let header = try? RTPHeader.parse(bytes) {
            precondition(header.payloadOffset >= RTPHeader.fixedSize && header.payloadOffset <= bytes.count, "payload offset out of bounds")
            precondition(header.payloadLength >= 0 && header.payloadOffset + header.payloadLength <= bytes.count, "payload length out of bounds")
            precondition(RTPHeader.ssrcIfRTP(bytes) == header.ssrc, "fast SSRC check disagrees with the parser")
        }
    default:
        if let message = try? ControlMessage.parse(bytes) {
            // Whatever parses must encode back to the same bytes and parse to the same message.
            let encoded = message.encoded()
            precondition(encoded == Array(bytes), "control message does not round-trip: \(message)")
            precondition((try? ControlMessage.parse(encoded)) == message, "re-parse differs")
        }
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
        guard let target = arguments.first, ["rtp", "control"].contains(target) else {
            FileHandle.standardError.write(Data("usage: GroupcastFuzz rtp|control FILE...\n".utf8))
            exit(2)
        }
        for path in arguments.dropFirst() {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            data.withUnsafeBytes { fuzzOne(target, $0) }
        }
    }
}
#endif
