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
    public struct Declaration: Sendable {
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

    private struct Document: Decodable {
        var capacity: Int?
        var keepaliveTimeoutMs: Int?
        var participants: [Entry]?
        var rooms: [RoomEntry]?
        struct RoomEntry: Decodable {
            var name: String
            var capacity: Int?
            var participants: [Entry]?
        }
        struct Entry: Decodable {
            var id: UInt32
            var address: String
            var ssrc: [String: UInt32]?
            var receive: [String]?
            var sources: [String: [String]]?
        }
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
        func streams(_ names: [String], _ field: String) throws(LoadError) -> StreamSet {
            var set: StreamSet = []
            for name in names {
                guard let type = StreamType(name: name) else { throw LoadError(path: path, reason: "\(field): unknown stream type \"\(name)\"") }
                set.insert(StreamSet(type))
            }
            return set
        }
        func participants(_ entries: [Document.Entry]) throws(LoadError) -> [StaticParticipant] {
        var participants: [StaticParticipant] = []
        for entry in entries {
            let field = "participant \(entry.id)"
            let address: SocketAddress
            do { address = try SocketAddress(parsing: entry.address) } catch {
                throw LoadError(path: path, reason: "\(field): address: \(error)")
            }
            var ssrcs = StreamSSRCs.none
            for (name, ssrc) in entry.ssrc ?? [:] {
                guard let type = StreamType(name: name) else { throw LoadError(path: path, reason: "\(field): ssrc: unknown stream type \"\(name)\"") }
                guard ssrc != 0 else { throw LoadError(path: path, reason: "\(field): ssrc \(name) is 0") }
                ssrcs[type] = ssrc
            }
            var perSource: [UInt32: StreamSet] = [:]
            for (key, names) in entry.sources ?? [:] {
                guard let source = UInt32(key) else { throw LoadError(path: path, reason: "\(field): sources: \"\(key)\" is not a participant id") }
                perSource[source] = try streams(names, "\(field): sources.\(key)")
            }
            participants.append(StaticParticipant(
                id: entry.id, address: address, ssrcs: ssrcs, receive: try streams(entry.receive ?? [], "\(field): receive"),
                perSource: perSource))
        }
        return participants
        }
        if let timeout = document.keepaliveTimeoutMs, timeout < 1 { throw LoadError(path: path, reason: "keepaliveTimeoutMs \(timeout) < 1") }
        if let rooms = document.rooms {
            guard document.capacity == nil, document.participants == nil else {
                throw LoadError(path: path, reason: "capacity and participants belong inside rooms when rooms is given")
            }
            var declarations: [Declaration] = []
            for room in rooms {
                guard RoomName.isValid(room.name) else { throw LoadError(path: path, reason: "room name \"\(room.name)\" is not 1-64 of A-Z a-z 0-9 . _ -") }
                guard !declarations.contains(where: { $0.name == room.name }) else { throw LoadError(path: path, reason: "room \(room.name) declared twice") }
                if let capacity = room.capacity, capacity < 1 { throw LoadError(path: path, reason: "room \(room.name): capacity \(capacity) < 1") }
                declarations.append(Declaration(name: room.name, capacity: room.capacity, participants: try participants(room.participants ?? [])))
            }
            return RoomFile(keepaliveTimeoutMilliseconds: document.keepaliveTimeoutMs, rooms: declarations)
        }
        if let capacity = document.capacity, capacity < 1 { throw LoadError(path: path, reason: "capacity \(capacity) < 1") }
        return RoomFile(
            capacity: document.capacity, keepaliveTimeoutMilliseconds: document.keepaliveTimeoutMs,
            participants: try participants(document.participants ?? []))
    }
}
