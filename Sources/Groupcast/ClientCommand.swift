import ArgumentParser
import GroupcastCommandLine
import Dispatch
import Foundation
import GroupcastProtocol
import GroupcastClient
import GroupcastSFU
import GroupUnicast
import Logging

/// `groupcast client`: N participants sending ASQ/VSQ/VHQ and measuring echoes, loss and jitter.
struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Run NMP participants against an SFU and print round-trip, loss and jitter per stream."
    )

    @Option(help: "The SFU's control address.")
    var sfu: SocketAddress = .ipv4(.loopback, port: 7000)

    @Option(help: "The SFU's media address (default: the control address's host, port 7002).")
    var media: SocketAddress?

    @Option(help: "Local address of the participants' sockets (port 0: any). Default: any address of the SFU's family.")
    var local: SocketAddress?

    @Option(name: [.customShort("n"), .long], help: "Participants in this process.")
    var participants: Int = 1

    @Option(help: "Send interval per stream (e.g. 4ms).")
    var interval: DurationArgument = .init(.milliseconds(4))

    @Option(help: "RTP payload bytes per stream, e.g. asq=80,vsq=160,vhq=320.")
    var sizes: SizesArgument = .init([.asq: 80, .vsq: 160, .vhq: 320])

    @Option(help: "Stream types to send (asq,vsq,vhq | all | none).")
    var send: StreamSet = .all

    @Option(help: "Stream types to receive from every source (asq,vsq,vhq | all | none).")
    var receive: StreamSet = .all

    @Option(name: .customLong("subscribe"), help: "Per-source override SOURCE_ID:TYPES, e.g. 3:asq (repeatable).")
    var subscriptions: [String] = []

    @Option(help: "The room to join (default: the one the token names, or `default` on an open SFU).")
    var room: String = ""

    @Option(help: "Join tokens, one per line, one per participant in order (`groupcast token --count N`); needed when the SFU runs with --auth-key-file.")
    var tokenFile: String?

    @Option(help: "How long to send (e.g. 10s).")
    var duration: DurationArgument = .init(.seconds(5))

    @Option(help: "Write the report as JSON to this file.")
    var jsonOutput: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard participants >= 1 && participants <= 512 else { throw ValidationError("--participants must be 1...512") }
        guard interval.value > .zero else { throw ValidationError("--interval must be positive") }
        guard room.isEmpty || RoomName.isValid(room) else { throw ValidationError("--room: 1-64 of A-Z a-z 0-9 . _ -") }
        for item in subscriptions {
            let parts = item.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, UInt32(parts[0]) != nil, StreamSet(list: String(parts[1])) != nil else {
                throw ValidationError("--subscribe \(item): expected SOURCE_ID:TYPES such as 3:asq,vsq")
            }
        }
    }

    func run() throws {
        let logger = logging.bootstrap(label: "groupcast.client")
        var configuration = ConferenceClient.Configuration(control: sfu, media: media ?? sfu.withPort(7002), localAddress: local ?? (sfu.family == .ipv4 ? .ipv4(.any, port: 0) : .ipv6(.any, port: 0)))
        configuration.participants = participants
        configuration.interval = interval.value
        configuration.sizes.merge(sizes.sizes) { $1 }
        configuration.send = send
        configuration.receive = receive
        configuration.duration = duration.value
        configuration.room = room
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else { throw ValidationError("cannot read --token-file \(tokenFile)") }
            configuration.tokens = text.split(whereSeparator: \.isNewline).map { Array($0.trimmingCharacters(in: .whitespaces).utf8) }.filter { !$0.isEmpty }
            guard configuration.tokens.count >= participants else {
                throw ValidationError("--token-file \(tokenFile) has \(configuration.tokens.count) tokens for \(participants) participants (one each)")
            }
        }
        for item in subscriptions {
            let parts = item.split(separator: ":", maxSplits: 1)
            configuration.perSource[UInt32(parts[0])!] = StreamSet(list: String(parts[1]))!
        }
        let client = ConferenceClient(configuration: configuration, logger: logger)
        let stop = StopSignal()
        let watcher = Thread {
            while !stop.received { usleep(20_000) }
            client.stop()
        }
        watcher.start()
        let report: ClientReport
        do { report = try client.run() } catch {
            logger.critical("client failed: \(error)")
            throw ExitCode(1)
        }
        print(report.table())
        if let jsonOutput {
            do { try Data(report.json().utf8).write(to: URL(fileURLWithPath: jsonOutput)) } catch {
                logger.error("cannot write \(jsonOutput): \(error)")
                throw ExitCode(1)
            }
        }
    }
}
