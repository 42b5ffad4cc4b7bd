import Foundation
import GroupcastProtocol
import GroupUnicast

/// A room file (JSON) declaring the room's settings and static participants: plain RTP senders
/// and receivers that cannot speak the control protocol. See Docs/protocol.md.
///
/// ```json
/// { "capacity": 16, "keepaliveTimeoutMs": 5000,
///   "participants": [ { "id": 100, "address": "10.0.0.5:5004",
///                       "ssrc": { "asq": 1001 }, "receive": ["asq"], "sources": { "7": ["asq", "vsq"] } } ] }
/// ```
public struct RoomFile: Sendable {
    public var capacity: Int?
    public var keepaliveTimeoutMilliseconds: Int?
    public var participants: [StaticParticipant]

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
        struct Entry: Decodable {
            var id: UInt32
            var address: String
            var ssrc: [String: UInt32]?
            var receive: [String]?
            var sources: [String: [String]]?
        }
    }

    public init(capacity: Int? = nil, keepaliveTimeoutMilliseconds: Int? = nil, participants: [StaticParticipant]) {
        self.capacity = capacity
        self.keepaliveTimeoutMilliseconds = keepaliveTimeoutMilliseconds
        self.participants = participants
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
        var participants: [StaticParticipant] = []
        for entry in document.participants ?? [] {
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
        if let capacity = document.capacity, capacity < 1 { throw LoadError(path: path, reason: "capacity \(capacity) < 1") }
        if let timeout = document.keepaliveTimeoutMs, timeout < 1 { throw LoadError(path: path, reason: "keepaliveTimeoutMs \(timeout) < 1") }
        return RoomFile(capacity: document.capacity, keepaliveTimeoutMilliseconds: document.keepaliveTimeoutMs, participants: participants)
    }
}
