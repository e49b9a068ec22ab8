import PGEventsHarness
public import PGEventsPostgres

/// Reads the triggers of a database and finds which of them notify, and on which channel.
public enum Catalog {
    /// Every user trigger on every table (not the internal ones behind foreign keys), with its channels.
    public static func triggers(on connection: PostgresConnection) async throws -> [TriggerInfo] {
        let functions = try await notifyingFunctions(on: connection)
        let rows = try await connection.query(
            """
            SELECT n.nspname, c.relname, t.tgname, pn.nspname || '.' || p.proname, t.tgtype::int, t.tgenabled::text,
                   encode(t.tgargs, 'hex'), t.tgnargs::int, p.oid::int8, pg_get_triggerdef(t.oid), t.tgqual IS NOT NULL,
                   coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                              WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])), '{}')::text
              FROM pg_trigger t
              JOIN pg_class c ON c.oid = t.tgrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_proc p ON p.oid = t.tgfoid
              JOIN pg_namespace pn ON pn.oid = p.pronamespace
             WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             ORDER BY 1, 2, 3
            """)
        return try rows.map { row in
            let type = try row.decode(Int.self, at: 4)
            var operations = Set<TableOperation>()
            if type & 4 != 0 { operations.insert(.insert) }
            if type & 8 != 0 { operations.insert(.delete) }
            if type & 16 != 0 { operations.insert(.update) }
            let timing: TriggerInfo.Timing = type & 64 != 0 ? .insteadOf : (type & 2 != 0 ? .before : .after)
            let arguments = splitArguments(hex: try row.decode(String.self, at: 6), count: try row.decode(Int.self, at: 7))
            return TriggerInfo(
                table: QualifiedName(schema: try row.decode(String.self, at: 0), name: try row.decode(String.self, at: 1)),
                name: try row.decode(String.self, at: 2),
                function: try row.decode(String.self, at: 3),
                timing: timing, operations: operations, firesOnTruncate: type & 32 != 0, forEachRow: type & 1 != 0,
                enabled: try row.decode(String.self, at: 5).first ?? "O",
                arguments: arguments,
                channelSources: functions[try row.decode(Int64.self, at: 8)] ?? [],
                condition: try row.decode(Bool.self, at: 10)
                    ? TriggerCoverage.condition(inDefinition: try row.decode(String.self, at: 9)) : nil,
                updateColumns: parseTextArray(try row.decode(String.self, at: 11)))
        }
    }

    /// The user functions (by oid) whose source calls `pg_notify` or runs `NOTIFY` — directly, or by calling
    /// such a function (one level: a trigger function that calls `emit(TG_ARGV[0], …)`, whose `pg_notify` takes
    /// that parameter) — with where they send.
    static func notifyingFunctions(on connection: PostgresConnection) async throws -> [Int64: [ChannelSource]] {
        let rows = try await connection.query(
            """
            SELECT p.oid::int8, pn.nspname, p.proname, p.prosrc, coalesce(p.proargnames, '{}')::text[]
              FROM pg_proc p
              JOIN pg_namespace pn ON pn.oid = p.pronamespace
              JOIN pg_language l ON l.oid = p.prolang
             WHERE pn.nspname NOT IN ('pg_catalog', 'information_schema') AND l.lanname IN ('plpgsql', 'sql')
            """)
        struct Function {
            var oid: Int64
            var schema: String
            var name: String
            var source: String
            var parameters: [String]
        }
        let all = try rows.map { row in
            Function(
                oid: try row.decode(Int64.self, at: 0), schema: try row.decode(String.self, at: 1),
                name: try row.decode(String.self, at: 2),
                source: NotifySourceScanner.stripComments(try row.decode(String.self, at: 3)),
                parameters: parseTextArray(try row.decode(String.self, at: 4)))
        }
        var direct: [Int64: [ChannelSource]] = [:]
        for function in all {
            let sources = NotifySourceScanner.channels(in: function.source)
            if !sources.isEmpty { direct[function.oid] = sources }
        }
        // Helpers that notify on one of their parameters: map a call's argument to the trigger's context.
        var result = direct
        for function in all {
            for helper in all where helper.oid != function.oid {
                guard let helperSources = direct[helper.oid] else { continue }
                for call in NotifySourceScanner.calls(to: helper.name, schema: helper.schema, in: function.source) {
                    for source in helperSources {
                        var mapped = source
                        if case .dynamic(let expression) = source,
                            let index = helper.parameters.firstIndex(where: { $0.lowercased() == expression.lowercased() })
                                ?? NotifySourceScanner.positionalParameter(expression)
                        {
                            mapped = call.indices.contains(index) ? NotifySourceScanner.classify(call[index]) : .dynamic(expression)
                        }
                        if !(result[function.oid] ?? []).contains(mapped) { result[function.oid, default: []].append(mapped) }
                    }
                }
            }
        }
        return result
    }

    /// `tgargs` is the arguments, each followed by a NUL byte; read as hex to keep every byte.
    static func splitArguments(hex: String, count: Int) -> [String] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for character in hex.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            default: continue
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        let arguments = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        return Array(arguments.prefix(count))
    }

    /// A one-dimensional text array literal (`{a,"b c"}`) as strings.
    static func parseTextArray(_ literal: String) -> [String] {
        var items: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        var inQuotes = false
        for character in literal.dropFirst().dropLast() {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                inQuotes.toggle()
                quoted = true
            } else if character == "," && !inQuotes {
                items.append(current)
                current = ""
                quoted = false
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty || quoted { items.append(current) }
        return items
    }
}
