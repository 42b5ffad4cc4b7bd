import Foundation
import GroupcastProtocol
import GroupUnicast

/// A room file (JSON) declaring rooms, their capacity and their static participants: plain RTP
/// senders and receivers that cannot speak the control protocol. See Docs/protocol.md.
///
/// ```json
/// { "keepaliveTimeoutMs": 5000,
///   "rooms": [ { "name": "standup", "capacity": 16,
///                "participants": [ { "id": 100, "address": "10.0.0.5:5004", "ssrc": { "asq": 1001 },
///                                    "receive": ["asq"], "sources": { "7": ["asq", "vsq"] } } ] } ] }
/// ```
///
/// The version 1 form (`capacity` and `participants` at the top) declares the room `default`.
public struct RoomFile: Sendable {
    public var keepaliveTimeoutMilliseconds: Int?
    public var rooms: [Declaration]

    /// One declared room.
    public struct Declaration: Hashable, Sendable {
        public var name: String
        public var capacity: Int?
        public var participants: [StaticParticipant]

        public init(name: String, capacity: Int? = nil, participants: [StaticParticipant] = []) {
            self.name = name
            self.capacity = capacity
            self.participants = participants
        }
    }

    /// The declared room `default` (the version 1 form).
    public var capacity: Int? { rooms.first { $0.name == RoomName.defaultRoom }?.capacity }
    /// Every room's static participants.
    public var participants: [StaticParticipant] { rooms.flatMap(\.participants) }

    public struct StaticParticipant: Hashable, Sendable {
        public var id: UInt32
        public var address: SocketAddress
        public var ssrcs: StreamSSRCs
        public var receive: StreamSet
        public var perSource: [UInt32: StreamSet]

        public init(id: UInt32, address: SocketAddress, ssrcs: StreamSSRCs, receive: StreamSet, perSource: [UInt32: StreamSet] = [:]) {
            self.id = id
            self.address = address
            self.ssrcs = ssrcs
            self.receive = receive
            self.perSource = perSource
        }
    }

    /// Why a room file was refused: names the file and the field.
    public struct LoadError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "room file \(path): \(reason)" }
    }

    /// A room as written: in a room file's `rooms`, or in `groupcast sfu --config`'s (YAML).
    public struct RoomEntry: Decodable, Sendable {
        public var name: String
        public var capacity: Int?
        public var participants: [ParticipantEntry]?
        public enum CodingKeys: String, CodingKey, CaseIterable { case name, capacity, participants }
    }

    /// A static participant as written.
    public struct ParticipantEntry: Decodable, Sendable {
        public var id: UInt32
        public var address: String
        public var ssrc: [String: UInt32]?
        public var receive: [String]?
        public var sources: [String: [String]]?
        public enum CodingKeys: String, CodingKey, CaseIterable { case id, address, ssrc, receive, sources }
    }

    /// Why written rooms were refused: the reason, and which entry (index into the rooms given).
    public struct InvalidEntry: Error, CustomStringConvertible {
        public var room: Int?
        public var reason: String
        public var description: String { reason }
    }

    private struct Document: Decodable {
        var capacity: Int?
        var keepaliveTimeoutMs: Int?
        var participants: [ParticipantEntry]?
        var rooms: [RoomEntry]?
    }

    public init(keepaliveTimeoutMilliseconds: Int? = nil, rooms: [Declaration]) {
        self.keepaliveTimeoutMilliseconds = keepaliveTimeoutMilliseconds
        self.rooms = rooms
    }

    /// One room, `default` (the version 1 form).
    public init(capacity: Int? = nil, keepaliveTimeoutMilliseconds: Int? = nil, participants: [StaticParticipant]) {
        self.init(
            keepaliveTimeoutMilliseconds: keepaliveTimeoutMilliseconds,
            rooms: [Declaration(name: RoomName.defaultRoom, capacity: capacity, participants: participants)])
    }

    public static func load(path: String) throws(LoadError) -> RoomFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LoadError(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String = "<memory>") throws(LoadError) -> RoomFile {
        let document: Document
        do { document = try JSONDecoder().decode(Document.self, from: data) } catch {
            throw LoadError(path: path, reason: "not a room document: \(error)")
        }
        if let timeout = document.keepaliveTimeoutMs, timeout < 1 { throw LoadError(path: path, reason: "keepaliveTimeoutMs \(timeout) < 1") }
        if let rooms = document.rooms {
            guard document.capacity == nil, document.participants == nil else {
                throw LoadError(path: path, reason: "capacity and participants belong inside rooms when rooms is given")
            }
            do { return RoomFile(keepaliveTimeoutMilliseconds: document.keepaliveTimeoutMs, rooms: try declarations(rooms)) } catch {
                throw LoadError(path: path, reason: error.reason)
            }
        }
        if let capacity = document.capacity, capacity < 1 { throw LoadError(path: path, reason: "capacity \(capacity) < 1") }
        do {
            return RoomFile(
                capacity: document.capacity, keepaliveTimeoutMilliseconds: document.keepaliveTimeoutMs,
                participants: try participants(document.participants ?? []))
        } catch {
            throw LoadError(path: path, reason: error.reason)
        }
    }

    /// Written rooms checked and converted: valid names, each once, capacities of at least 1,
    /// static participants with valid addresses and stream types.
    public static func declarations(_ rooms: [RoomEntry]) throws(InvalidEntry) -> [Declaration] {
        var declarations: [Declaration] = []
        for (index, room) in rooms.enumerated() {
            func refuse(_ reason: String) -> InvalidEntry { InvalidEntry(room: index, reason: reason) }
            guard RoomName.isValid(room.name) else { throw refuse("room name \"\(room.name)\" is not 1-64 of A-Z a-z 0-9 . _ -") }
            guard !declarations.contains(where: { $0.name == room.name }) else { throw refuse("room \(room.name) declared twice") }
            if let capacity = room.capacity, capacity < 1 { throw refuse("room \(room.name): capacity \(capacity) < 1") }
            do {
                declarations.append(Declaration(name: room.name, capacity: room.capacity, participants: try participants(room.participants ?? [])))
            } catch {
                throw refuse("room \(room.name): \(error.reason)")
            }
        }
        return declarations
    }

    private static func participants(_ entries: [ParticipantEntry]) throws(InvalidEntry) -> [StaticParticipant] {
        func refuse(_ reason: String) -> InvalidEntry { InvalidEntry(room: nil, reason: reason) }
        func streams(_ names: [String], _ field: String) throws(InvalidEntry) -> StreamSet {
            var set: StreamSet = []
            for name in names {
                guard let type = StreamType(name: name) else { throw refuse("\(field): unknown stream type \"\(name)\"") }
                set.insert(StreamSet(type))
            }
            return set
        }
        var participants: [StaticParticipant] = []
        for entry in entries {
            let field = "participant \(entry.id)"
            let address: SocketAddress
            do { address = try SocketAddress(parsing: entry.address) } catch { throw refuse("\(field): address: \(error)") }
            var ssrcs = StreamSSRCs.none
            for (name, ssrc) in entry.ssrc ?? [:] {
                guard let type = StreamType(name: name) else { throw refuse("\(field): ssrc: unknown stream type \"\(name)\"") }
                guard ssrc != 0 else { throw refuse("\(field): ssrc \(name) is 0") }
                ssrcs[type] = ssrc
            }
            var perSource: [UInt32: StreamSet] = [:]
            for (key, names) in entry.sources ?? [:] {
                guard let source = UInt32(key) else { throw refuse("\(field): sources: \"\(key)\" is not a participant id") }
                perSource[source] = try streams(names, "\(field): sources.\(key)")
            }
            participants.append(StaticParticipant(
                id: entry.id, address: address, ssrcs: ssrcs, receive: try streams(entry.receive ?? [], "\(field): receive"),
                perSource: perSource))
        }
        return participants
    }
}
