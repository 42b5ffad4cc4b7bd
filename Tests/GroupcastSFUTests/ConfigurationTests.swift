import Foundation
import GroupcastConfiguration
import GroupcastProtocol
import GroupcastSFU
import GroupUnicast
import Testing

/// `groupcast sfu --config FILE` (Docs/operations.md, "Configuration file"): the YAML keys, the
/// refusals with their line, the precedence flags > file > defaults, what a reload may change.
@Suite struct ConfigurationTests {
    static let shippedExample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("packaging/groupcast/example.yaml").path

    @Test func theShippedExampleLoadsAsDocumented() throws {
        let file = try ConfigurationFile.load(path: Self.shippedExample)
        let settings = file.settings
        #expect(settings.control == SocketAddress("0.0.0.0:7000"))
        #expect(settings.media == SocketAddress("0.0.0.0:7002"))
        #expect(settings.backend == .sendmmsg)
        #expect(settings.metricsListen == SocketAddress("127.0.0.1:9464"))
        #expect(settings.statsInterval == .zero)
        guard case .declared(let rooms)? = settings.rooms else { Issue.record("no rooms declared: \(String(describing: settings.rooms))"); return }
        #expect(rooms.map(\.name) == ["default", "lobby"])
        #expect(rooms.map(\.capacity) == [64, 16])
        let effective = try EffectiveSettings(flags: SFUSettings(), file: file)
        let (configuration, _) = try effective.settings.serverConfiguration()
        #expect(configuration.room?.rooms.count == 2)
    }

    @Test func everyKeyIsAFlagAndParsesItsType() throws {
        let text = """
            control: 127.0.0.1:7000
            media: "[::1]:7002"
            capacity: 8
            max-participants: 1_000
            max-rooms: 3
            room-creation: false
            control-rate: 50.5
            control-burst: 100
            keepalive-timeout: 2500ms
            echo: false
            auth-key-env: KEY
            backend: socket
            batch: 32
            receive-buffer: 1048576
            send-buffer: 65536
            shed-vhq: 0.4
            shed-vsq: 0.6
            backlog: 16
            ring-queue: 1
            ring-mode: copy
            ring-size: 1024
            ring-frame-count: 4096
            ring-frame-size: 4096
            ring-busy-poll: 50us
            ring-coalesce: 200us
            stats-interval: 5s
            stats-file: /run/stats.json
            metrics-listen: 127.0.0.1:9464
            log-level: debug
            log-format: json
            rooms:
              - name: standup
                capacity: 4
                participants:
                  - { id: 100, address: "10.0.0.5:5004", ssrc: { asq: 1001 }, receive: [asq], sources: { "7": [asq, vsq] } }
            cluster: redis://127.0.0.1:6379
            node: sfu-1
            advertise: 10.0.0.1:7002
            """
        let file = try ConfigurationFile.parse(text)
        let s = file.settings
        #expect(s.control == SocketAddress("127.0.0.1:7000") && s.media == SocketAddress("[::1]:7002"))
        #expect(s.capacity == 8 && s.maxParticipants == 1000 && s.maxRooms == 3 && s.roomCreation == false)
        #expect(s.controlRate == 50.5 && s.controlBurst == 100 && s.keepaliveTimeout == .milliseconds(2500) && s.echo == false)
        #expect(s.authKeyEnv == "KEY" && s.backend == .socket && s.batch == 32 && s.receiveBuffer == 1 << 20 && s.sendBuffer == 65536)
        #expect(s.shedVhq == 0.4 && s.shedVsq == 0.6 && s.backlog == 16)
        #expect(s.ringQueue == 1 && s.ringMode == .copy && s.ringSize == 1024 && s.ringFrameCount == 4096 && s.ringFrameSize == 4096)
        #expect(s.ringBusyPoll == .microseconds(50) && s.ringCoalesce == .microseconds(200))
        #expect(s.forwarderConfiguration.ringBusyPoll == .microseconds(50) && s.forwarderConfiguration.ringCoalesce == .microseconds(200))
        #expect(s.statsInterval == .seconds(5) && s.statsFile == "/run/stats.json" && s.logLevel == .debug && s.logFormat == .json)
        guard case .declared(let rooms)? = s.rooms else { Issue.record("rooms: \(String(describing: s.rooms))"); return }
        let participant = try #require(rooms.first?.participants.first)
        #expect(participant.id == 100 && participant.address == SocketAddress("10.0.0.5:5004") && participant.ssrcs[.asq] == 1001)
        #expect(participant.perSource[7] == [.asq, .vsq])
        #expect(file.lines["rooms"] == 31 && file.lines["control"] == 1)
        // Every key given is one of the settings: none is silently dropped.
        #expect(s.cluster == "redis://127.0.0.1:6379" && s.node == "sfu-1" && s.advertise == SocketAddress("10.0.0.1:7002"))
        #expect(s.givenKeys.count == 34, "\(s.givenKeys)")
    }

    /// Each refusal names the line and the reason.
    @Test(arguments: [
        ("capacity: 8\nmax-rooms: [3\n", 3, "not YAML"),
        ("capacity: 8\ncapcity: 9\n", 2, "unknown key \"capcity\""),
        ("capacity: 8\nmax-participants: lots\n", 2, "max-participants: expected an integer, got \"lots\""),
        ("echo: yes please\n", 1, "echo: expected true or false"),
        ("keepalive-timeout: soon\n", 1, "expected a duration"),
        ("control: 127.0.0.1\n", 1, "control: \"127.0.0.1\""),
        ("backend: turbo\n", 1, "\"turbo\" is not one of socket, sendmmsg, sendgroup, xdp, ring"),
        ("capacity: 8\n\nmax-rooms: 0\n", 3, "max-rooms: 0 is below 1"),
        ("batch: 5000\n", 1, "batch: 5000 is not within 1...1024"),
        ("ring-queue: -1\n", 1, "ring-queue: -1 is out of range 0...4294967295"),
        ("ring-size: 1000\n", 1, "ring-size: 1000 is not a power of two"),
        ("shed-vhq: 1.5\n", 1, "shed-vhq: 1.5 is not within (0, 1]"),
        ("ring-busy-poll: 200ms\n", 1, "ring-busy-poll: 0.2 seconds is above 100 ms"),
        ("ring-coalesce: 1s\n", 1, "ring-coalesce: 1.0 seconds is above 100 ms"),
        ("capacity: 8\ncapacity: 9\n", 1, "capacity given twice"),
        ("- capacity\n", 1, "expected settings as `key: value` lines"),
        ("rooms:\n  - name: a\n    capacty: 3\n", 3, "unknown key \"capacty\" in a room"),
        ("rooms:\n  - name: a\n    capacity: x\n", 3, "room.capacity: expected an integer"),
        ("rooms:\n  - name: a\n  - capacity: 3\n", 3, "name is missing"),
        ("rooms:\n  - name: a\n  - name: a\n", 3, "room a declared twice"),
        ("rooms:\n  - name: a\n    participants:\n      - { id: 1, address: here }\n", 2, "room a: participant 1: address"),
        ("rooms:\n  - name: a\n    participants:\n      - { id: 1, adress: \"1.2.3.4:5\" }\n", 4, "unknown key \"adress\" in a participant"),
    ])
    func refusedWithLineAndReason(text: String, line: Int, reason: String) {
        do {
            _ = try ConfigurationFile.parse(text, path: "sfu.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.reason.contains(reason), "\(error)")
            #expect(error.description.hasPrefix("sfu.yaml:\(line): "), "\(error)")
        }
    }

    /// Precedence (Docs/operations.md): a flag given beats the file, the file beats the
    /// defaults; each flag overriding the file is a note; a refusal names its source.
    @Test func flagsBeatTheFileWhichBeatsTheDefaults() throws {
        let file = try ConfigurationFile.parse("capacity: 16\nmax-rooms: 5\nkeepalive-timeout: 3s\necho: false\n", path: "sfu.yaml")
        var flags = SFUSettings()
        flags.capacity = 8
        flags.echo = false
        let effective = try EffectiveSettings(flags: flags, file: file)
        let (configuration, _) = try effective.settings.serverConfiguration()
        #expect(configuration.capacity == 8)  // flag
        #expect(configuration.limits.maxRooms == 5)  // file
        #expect(configuration.keepaliveTimeout == .seconds(3))  // file
        #expect(configuration.limits.maxParticipants == SFUSettings.serverDefaults.limits.maxParticipants)  // default
        #expect(configuration.echo == false)
        #expect(effective.notes == ["capacity 8 (--capacity) overrides sfu.yaml's 16 (line 1)"], "\(effective.notes)")
        // The same keys, no file: the defaults.
        let bare = try EffectiveSettings(flags: SFUSettings(), file: nil).settings
        #expect(try bare.serverConfiguration().configuration.capacity == SFUSettings.serverDefaults.capacity)
        #expect(bare.forwarderConfiguration.batchSize == SFUSettings.forwarderDefaults.batchSize)

        // A rule broken by the merge names where the value came from.
        let shed = try ConfigurationFile.parse("backend: socket\nshed-vhq: 0.9\n", path: "sfu.yaml")
        #expect(throws: Never.self) { try EffectiveSettings(flags: { var f = SFUSettings(); f.shedVsq = 0.95; return f }(), file: shed) }
        do {
            _ = try EffectiveSettings(flags: SFUSettings(), file: shed)
            Issue.record("shed-vhq 0.9 over the default shed-vsq accepted")
        } catch {
            #expect(error.description.hasPrefix("sfu.yaml:2: shed-vhq: need shed-vhq (0.9) <= shed-vsq (0.75)"), "\(error)")
        }
        do {
            _ = try EffectiveSettings(flags: { var f = SFUSettings(); f.interfaces = ["eth1"]; return f }(), file: try ConfigurationFile.parse("backend: socket\n"))
            Issue.record("--interface with the socket backend accepted")
        } catch {
            #expect(error.description.hasPrefix("--interface: applies to the xdp and ring backends, not socket"), "\(error)")
        }
    }

    /// `xdp-ingress` (`--xdp-ingress`): xdp or tc, into the forwarder's configuration; default
    /// xdp; only for the xdp backend; another value refused with the choices.
    @Test func xdpIngressChoosesTheFastPathsFirstProgram() throws {
        let tc = try ConfigurationFile.parse("backend: xdp\nxdp-ingress: tc\n", path: "sfu.yaml")
        #expect(tc.settings.xdpIngress == .tc)
        let effective = try EffectiveSettings(flags: SFUSettings(), file: tc)
        #expect(effective.settings.forwarderConfiguration.xdpIngress == .tc)
        #expect(SFUSettings().forwarderConfiguration.xdpIngress == .xdp)
        var flags = SFUSettings()
        flags.xdpIngress = .xdp
        #expect(try EffectiveSettings(flags: flags, file: tc).settings.forwarderConfiguration.xdpIngress == .xdp)
        do {
            _ = try ConfigurationFile.parse("xdp-ingress: nic\n", path: "sfu.yaml")
            Issue.record("xdp-ingress: nic accepted")
        } catch {
            #expect(error.reason.contains("\"nic\" is not one of xdp, tc"), "\(error)")
        }
        do {
            _ = try EffectiveSettings(flags: SFUSettings(), file: try ConfigurationFile.parse("backend: socket\nxdp-ingress: tc\n", path: "sfu.yaml"))
            Issue.record("xdp-ingress with the socket backend accepted")
        } catch {
            #expect(error.description.hasPrefix("sfu.yaml:2: xdp-ingress: applies to the xdp backend, not socket"), "\(error)")
        }
    }

    /// A room file named by `rooms` (the `--room` flag's file) and the rooms in the file are the
    /// same setting: the flag's room file beats the file's rooms.
    @Test func roomsFromTheFileOrARoomFile() throws {
        let directory = NSTemporaryDirectory() + "groupcast-config-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let roomFile = directory + "/rooms.json"
        try #"{"keepaliveTimeoutMs": 5000, "rooms": [{"name": "json"}]}"#.write(toFile: roomFile, atomically: true, encoding: .utf8)
        let file = try ConfigurationFile.parse("rooms:\n  - name: yaml\n    capacity: 2\n")
        let inline = try EffectiveSettings(flags: SFUSettings(), file: file).settings.serverConfiguration().configuration
        #expect(inline.room?.rooms.map(\.name) == ["yaml"])
        var flags = SFUSettings()
        flags.rooms = .file(roomFile)
        let fromFlag = try EffectiveSettings(flags: flags, file: file).settings.serverConfiguration().configuration
        #expect(fromFlag.room?.rooms.map(\.name) == ["json"])
        #expect(try EffectiveSettings(flags: flags, file: file).notes == ["rooms \(roomFile) (--room) overrides <memory>'s rooms yaml (line 1)"])
        flags.rooms = .file(directory + "/missing.json")
        #expect(throws: SettingError.self) { try EffectiveSettings(flags: flags, file: file).settings.serverConfiguration() }
        #expect(fromFlag.keepaliveTimeout == .seconds(5))
        let named = try ConfigurationFile.parse("rooms: \(roomFile)\n")
        #expect(try EffectiveSettings(flags: SFUSettings(), file: named).settings.serverConfiguration().configuration.room?.rooms.map(\.name) == ["json"])
    }

    @Test func onlyTheControlPlanesLimitsAndRoomsReloadTheRestNeedsARestart() throws {
        let running = try ConfigurationFile.parse("backend: sendmmsg\ncapacity: 8\nmedia: 0.0.0.0:7002\n").settings
        let next = try ConfigurationFile.parse("backend: socket\ncapacity: 4\nmax-participants: 2\nmedia: 0.0.0.0:7004\nrooms:\n  - name: x\n").settings
        let restart = running.restartNeeded(comparedWith: next)
        #expect(restart.map(\.key) == ["media", "backend"])
        #expect(restart.first { $0.key == "backend" }.map { "\($0.running) -> \($0.configured)" } == "sendmmsg -> socket")
        // A default written out, or a written value taken out again, is no change.
        let defaults = SFUSettings.forwarderDefaults
        let implicit = try ConfigurationFile.parse("capacity: 8\n").settings
        let explicit = try ConfigurationFile.parse("backend: \(defaults.backend)\nbatch: \(defaults.batchSize)\nmedia: 0.0.0.0:7002\n").settings
        #expect(implicit.restartNeeded(comparedWith: explicit).isEmpty, "\(implicit.restartNeeded(comparedWith: explicit))")
        #expect(explicit.restartNeeded(comparedWith: implicit).isEmpty)
        #expect(implicit.restartNeeded(comparedWith: try ConfigurationFile.parse("batch: 32\n").settings).map(\.key) == ["batch"])
    }
}

/// ``SessionRegistry/reconfigure(limits:keepaliveTimeout:declaring:)``: a reload of rooms and limits.
@Suite struct RegistryReloadTests {
    static func join(_ registry: inout SessionRegistry, host: UInt8, room: String = RoomName.defaultRoom) throws -> Participant {
        let source = SocketAddress.ipv4(IPv4Address(127, 0, 0, host), port: 5000)
        return try registry.register(JoinRequest(source: source, room: room, receive: .all), now: 1)
    }

    static func participant(_ id: UInt32, port: UInt16) -> RoomFile.StaticParticipant {
        RoomFile.StaticParticipant(id: id, address: .ipv4(IPv4Address(10, 0, 0, 1), port: port), ssrcs: StreamSSRCs(asq: id * 10, vsq: 0, vhq: 0), receive: .all)
    }

    @Test func newLimitsApplyToNewJoinsWithoutRemovingAnyone() throws {
        var registry = SessionRegistry(limits: .init(), keepaliveTimeout: .seconds(10))
        try registry.addRoom(RoomName.defaultRoom)
        let first = try Self.join(&registry, host: 2), second = try Self.join(&registry, host: 3)
        var limits = SessionRegistry.Limits()
        limits.maxParticipants = 2
        try registry.reconfigure(limits: limits, keepaliveTimeout: .seconds(4), declaring: [])
        #expect(registry.participants.keys.sorted() == [first.id, second.id])
        #expect(registry.keepaliveTimeout == 4_000_000_000)
        #expect(throws: RegistryError(.serverFull, "the SFU holds 2 participants")) { _ = try Self.join(&registry, host: 4) }
        // A room's capacity lowered under its members: they stay, the next is refused.
        try registry.reconfigure(limits: .init(), keepaliveTimeout: .seconds(4), declaring: [.init(name: RoomName.defaultRoom, capacity: 1)])
        #expect(registry.count == 2 && registry.rooms[RoomName.defaultRoom]?.capacity == 1)
        #expect(throws: RegistryError.self) { _ = try Self.join(&registry, host: 4) }
    }

    @Test func declaredRoomsAndStaticParticipantsFollowTheNewDeclaration() throws {
        var registry = SessionRegistry(limits: .init(), keepaliveTimeout: .seconds(10))
        try registry.addRoom("a")
        try registry.addStatic(Self.participant(100, port: 5000), room: "a")
        try registry.addStatic(Self.participant(101, port: 5001), room: "a")
        let dynamic = try Self.join(&registry, host: 2, room: "a")
        // 100 stays as it was, 101 goes, 200 comes; room b is new; a stays declared.
        try registry.reconfigure(limits: .init(), keepaliveTimeout: .seconds(10), declaring: [
            .init(name: "a", capacity: 8, participants: [Self.participant(100, port: 5000), Self.participant(200, port: 5002)]),
            .init(name: "b"),
        ])
        #expect(registry.participants.keys.sorted() == [100, 200, dynamic.id].sorted())
        #expect(registry.rooms["a"]?.capacity == 8 && registry.rooms["a"]?.isConfigured == true)
        #expect(registry.rooms["b"]?.isConfigured == true)
        #expect(registry.routingTable(echo: true).routes.count == 5)  // the dynamic one sends three streams
        // a is no longer declared: its static participants go, the dynamic one stays and the room
        // becomes ordinary (it goes with its last participant).
        try registry.reconfigure(limits: .init(), keepaliveTimeout: .seconds(10), declaring: [.init(name: "b")])
        #expect(registry.participants.keys.sorted() == [dynamic.id])
        #expect(registry.rooms["a"]?.isConfigured == false)
    }

    @Test func aReloadThatCannotApplyChangesNothing() throws {
        var registry = SessionRegistry(limits: .init(), keepaliveTimeout: .seconds(10))
        try registry.addRoom(RoomName.defaultRoom, capacity: 4)
        _ = try Self.join(&registry, host: 2)
        _ = try Self.join(&registry, host: 3)
        let before = registry.participants
        // Two static participants into a room of capacity 3 that holds two dynamic ones: refused.
        #expect(throws: RegistryError.self) {
            try registry.reconfigure(limits: .init(), keepaliveTimeout: .seconds(1), declaring: [
                .init(name: RoomName.defaultRoom, capacity: 3, participants: [Self.participant(100, port: 5000), Self.participant(101, port: 5001)]),
            ])
        }
        #expect(registry.participants == before)
        #expect(registry.rooms[RoomName.defaultRoom]?.capacity == 4)
        #expect(registry.keepaliveTimeout == 10_000_000_000)
    }
}
