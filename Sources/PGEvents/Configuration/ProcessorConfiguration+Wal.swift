extension ProcessorConfiguration {
    /// The replication slot and publication of `source: wal`.
    public struct Wal: Sendable, Equatable {
        /// The logical replication slot (pgoutput) the processor streams; its confirmed position is the cursor.
        public var slot: String
        /// The publication whose tables' changes are decoded (it may be empty when only messages are used).
        public var publication: String
        /// Deliver `pgevents.emit_wal` messages too.
        public var messages: Bool
        /// At most one standby status update (the slot's confirmed position) per this interval (`status_interval`,
        /// seconds, default 0.1; 0.001 is about one per delivered chunk). One held back is sent with the next
        /// acknowledgement after the interval: at the latest the idle catch-up's (`catch_up_interval`), or the stop.
        public var statusInterval: Duration

        public init(slot: String, publication: String, messages: Bool = true, statusInterval: Duration = .milliseconds(100)) {
            self.slot = slot
            self.publication = publication
            self.messages = messages
            self.statusInterval = statusInterval
        }

        /// `pgevents_<consumer>`, lower-cased, with every character a slot name cannot hold replaced by `_`.
        public static func defaultName(consumer: String) -> String {
            let cleaned = consumer.lowercased().unicodeScalars.map { scalar -> Character in
                ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_" ? Character(scalar) : "_"
            }
            return String(("pgevents_" + String(cleaned)).prefix(63))
        }

        /// Whether `name` can name a slot: 1 to 63 lower-case letters, digits and underscores (PostgreSQL's rule for
        /// slots; pgevents applies it to publications too, so that neither needs quoting anywhere).
        static func isValidName(_ name: String) -> Bool {
            !name.isEmpty && name.utf8.count <= 63
                && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
        }
    }

    mutating func parseWal(_ node: ConfigurationNode?, file: String) throws {
        guard source == .wal else {
            if let node { throw node.error("'wal' is only read with source: wal") }
            return
        }
        let name = Wal.defaultName(consumer: consumer)
        var wal = Wal(slot: name, publication: name)
        if let node {
            let fields = try node.mapping(allowed: ["slot", "publication", "messages", "status_interval"])
            for (key, value) in [("slot", fields["slot"]), ("publication", fields["publication"])] {
                guard let value else { continue }
                let text = try value.string()
                guard Wal.isValidName(text) else {
                    throw value.error("'\(key)' must be 1 to 63 lower-case letters, digits and underscores, got '\(text)'")
                }
                if key == "slot" { wal.slot = text } else { wal.publication = text }
            }
            if let value = fields["messages"] { wal.messages = try value.bool() }
            if let value = fields["status_interval"] { wal.statusInterval = Self.duration(try value.seconds(in: 0.001...60)) }
        }
        self.wal = wal
    }
}
