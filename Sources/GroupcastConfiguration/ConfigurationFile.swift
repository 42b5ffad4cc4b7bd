import Foundation
import GroupcastCommandLine
import GroupcastSFU
import GroupUnicast
import Yams

/// `groupcast sfu --config FILE`: the SFU's settings in YAML, one key per flag of the same name
/// (Docs/operations.md, "Configuration file"), the rooms under `rooms`:
///
/// ```yaml
/// control: 0.0.0.0:7000
/// media: 0.0.0.0:7002
/// backend: sendmmsg
/// max-participants: 4096
/// keepalive-timeout: 10s
/// rooms:
///   - name: default
///     capacity: 64
///   - name: lobby
///     capacity: 16
///     participants:
///       - { id: 100, address: "10.0.0.5:5004", ssrc: { asq: 1001 }, receive: [asq] }
/// ```
///
/// Refused with the line and the reason: a syntax error, a key that is not a setting (a typo
/// would otherwise leave a default in force silently), a value of the wrong type, a value out of
/// range.
public struct ConfigurationFile: Sendable {
    public var path: String
    public var settings: SFUSettings
    /// The line of each key given.
    public var lines: [String: Int]

    public static func load(path: String) throws(ConfigurationFileError) -> ConfigurationFile {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigurationFileError(path: path, line: nil, reason: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String = "<memory>") throws(ConfigurationFileError) -> ConfigurationFile {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let error as YamlError {
            throw ConfigurationFileError(path: path, yaml: error)
        } catch {
            throw ConfigurationFileError(path: path, line: nil, reason: "\(error)")
        }
        var file = ConfigurationFile(path: path, settings: SFUSettings(), lines: [:])
        guard let root else { return file }  // empty: every default
        guard case .mapping(let mapping) = root else {
            throw ConfigurationFileError(path: path, line: root.mark?.line, reason: "expected settings as `key: value` lines")
        }
        for (keyNode, value) in mapping {
            let line = keyNode.mark?.line
            guard let key = keyNode.string, let field = SFUSettings.field(named: key) else {
                throw ConfigurationFileError(path: path, line: line, reason: "unknown key \"\(keyNode.string ?? "?")\" (groupcast sfu --help lists them as flags)")
            }
            do { try field.parse(ConfigurationValue(node: value), &file.settings) } catch {
                throw ConfigurationFileError(path: path, line: error.line ?? value.mark?.line ?? line, reason: error.description)
            }
            file.lines[key] = line
        }
        do { try file.settings.checkValues() } catch {
            throw ConfigurationFileError(path: path, line: file.lines[error.key], reason: error.description)
        }
        return file
    }
}

/// Why a configuration was refused: where (`FILE:LINE:`, or the flag) and why.
public struct ConfigurationFileError: Error, Sendable, CustomStringConvertible {
    public var path: String?
    public var line: Int?
    public var reason: String

    public init(path: String?, line: Int?, reason: String) {
        self.path = path
        self.line = line
        self.reason = reason
    }

    init(path: String, yaml error: YamlError) {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            self.init(path: path, line: mark.line, reason: "not YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            self.init(path: path, line: context.mark.line, reason: "\(duplicates.joined(separator: ", ")) given twice")
        default:
            self.init(path: path, line: nil, reason: "not YAML: \(error)")
        }
    }

    public var description: String {
        switch (path, line) {
        case (let path?, let line?): "\(path):\(line): \(reason)"
        case (let path?, nil): "\(path): \(reason)"
        default: reason
        }
    }
}

/// A value in the file, read as the type its key needs; a wrong type names what was expected.
struct ConfigurationValue {
    let node: Node

    private func scalar(_ key: String, _ expected: String) throws(SettingError) -> String {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty || scalar.style != .plain else {
            throw SettingError(key, "expected \(expected), got \(shape)")
        }
        return scalar.string
    }

    private var shape: String {
        switch node {
        case .scalar(let scalar): scalar.string.isEmpty ? "nothing" : "\"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    func text(_ key: String) throws(SettingError) -> String { try scalar(key, "a string") }

    /// One string or a list of them.
    func texts(_ key: String) throws(SettingError) -> [String] {
        guard case .sequence(let sequence) = node else { return [try text(key)] }
        var values: [String] = []
        for item in sequence { values.append(try ConfigurationValue(node: item).text(key)) }
        return values
    }

    func integer<T: FixedWidthInteger>(_ key: String) throws(SettingError) -> T {
        let text = try scalar(key, "an integer")
        guard let value = T(text.replacingOccurrences(of: "_", with: "")) else {
            let wide = Int(text.replacingOccurrences(of: "_", with: ""))
            throw SettingError(key, wide == nil ? "expected an integer, got \"\(text)\"" : "\(text) is out of range \(T.min)...\(T.max)")
        }
        return value
    }

    func number(_ key: String) throws(SettingError) -> Double {
        let text = try scalar(key, "a number")
        guard let value = Double(text), value.isFinite else { throw SettingError(key, "expected a number, got \"\(text)\"") }
        return value
    }

    func boolean(_ key: String) throws(SettingError) -> Bool {
        let text = try scalar(key, "true or false")
        switch text {
        case "true": return true
        case "false": return false
        default: throw SettingError(key, "expected true or false, got \"\(text)\"")
        }
    }

    func duration(_ key: String) throws(SettingError) -> Duration {
        let text = try scalar(key, "a duration (10s, 500ms, 2m)")
        guard let value = DurationArgument(argument: text)?.value else {
            throw SettingError(key, "expected a duration (10s, 500ms, 2m), got \"\(text)\"")
        }
        return value
    }

    func address(_ key: String) throws(SettingError) -> SocketAddress {
        let text = try scalar(key, "an address (ADDRESS:PORT)")
        do { return try SocketAddress(parsing: text) } catch { throw SettingError(key, "\"\(text)\": \(error)") }
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, of type: T.Type) throws(SettingError) -> T where T.RawValue == String {
        let names = T.allCases.map(\.rawValue)
        let text = try scalar(key, "one of \(names.joined(separator: ", "))")
        guard let value = T(rawValue: text) else {
            throw SettingError(key, "\"\(text)\" is not one of \(names.joined(separator: ", "))")
        }
        return value
    }

    /// A room file's path, or the rooms themselves: a list of `name`, `capacity`, `participants`
    /// (the room file's fields, Docs/protocol.md), each error with its entry's line.
    func rooms() throws(SettingError) -> SFUSettings.Rooms {
        guard case .sequence(let sequence) = node else { return .file(try text("rooms")) }
        var entries: [RoomFile.RoomEntry] = []
        for item in sequence {
            try Self.rejectUnknownKeys(item, allowed: RoomFile.RoomEntry.CodingKeys.allCases.map(\.rawValue), what: "a room")
            if case .mapping(let room) = item, let participants = room["participants"], case .sequence(let list) = participants {
                for participant in list {
                    try Self.rejectUnknownKeys(participant, allowed: RoomFile.ParticipantEntry.CodingKeys.allCases.map(\.rawValue), what: "a participant")
                }
            }
            do { entries.append(try YAMLDecoder().decode(RoomFile.RoomEntry.self, from: Self.plainKeys(item))) } catch let error as DecodingError {
                throw Self.refusal(error, in: item)
            } catch {
                throw SettingError("rooms", "\(error)", line: item.mark?.line)
            }
        }
        do { return .declared(try RoomFile.declarations(entries)) } catch {
            throw SettingError("rooms", error.reason, line: error.room.flatMap { sequence[$0].mark?.line })
        }
    }

    /// `node` with every mapping key as a plain scalar: Yams's decoder finds a key by its
    /// implicit form, so a quoted `"7"` under `sources` would not be found as `7`.
    private static func plainKeys(_ node: Node) -> Node {
        switch node {
        case .mapping(var mapping):
            mapping = Node.Mapping(mapping.map { (Node($0.key.string ?? ""), plainKeys($0.value)) }, mapping.tag, mapping.style, mapping.mark)
            return .mapping(mapping)
        case .sequence(var sequence):
            sequence = Node.Sequence(sequence.map(plainKeys), sequence.tag, sequence.style, sequence.mark)
            return .sequence(sequence)
        case .scalar, .alias:
            return node
        }
    }

    private static func rejectUnknownKeys(_ node: Node, allowed: [String], what: String) throws(SettingError) {
        guard case .mapping(let mapping) = node else { throw SettingError("rooms", "expected \(what) as `key: value` lines", line: node.mark?.line) }
        for key in mapping.keys where !allowed.contains(key.string ?? "") {
            throw SettingError("rooms", "unknown key \"\(key.string ?? "?")\" in \(what) (\(allowed.joined(separator: ", ")))", line: key.mark?.line)
        }
    }

    /// A decoding error of a room entry at the line of the value it names.
    private static func refusal(_ error: DecodingError, in room: Node) -> SettingError {
        let (path, reason): ([CodingKey], String)
        switch error {
        case .typeMismatch(let type, let context): (path, reason) = (context.codingPath, "expected \(Self.name(of: type))")
        case .valueNotFound(let type, let context): (path, reason) = (context.codingPath, "expected \(Self.name(of: type)), got nothing")
        case .keyNotFound(let key, let context): (path, reason) = (context.codingPath, "\(key.stringValue) is missing")
        case .dataCorrupted(let context): (path, reason) = (context.codingPath, context.debugDescription)
        @unknown default: (path, reason) = ([], "\(error)")
        }
        var node: Node? = room
        for key in path {
            if let index = key.intValue, case .sequence(let sequence)? = node, index < sequence.count {
                node = sequence[index]
            } else if case .mapping(let mapping)? = node {
                node = mapping[key.stringValue]
            }
        }
        let where_ = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return SettingError("rooms", "room\(where_): \(reason)", line: (node ?? room).mark?.line ?? room.mark?.line)
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is UInt32.Type: "an integer"
        case is [Any].Type: "a list"
        default: "\(type)"
        }
    }
}
