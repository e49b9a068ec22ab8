import Foundation
import Testing

@testable import PGEventsCheck
@testable import PGEventsHarness

@Suite("check spec files (pgevents.yml)")
struct CheckSpecTests {
    @Test("a full file is read, with its paths resolved against the base directory")
    func full() throws {
        let spec = try CheckSpec(
            yaml: """
                migrations: sql/migrations
                postgres: [15, 18]
                channels:
                  new_event:
                    format: json
                    fields:
                      event_id: string
                      chain_id: integer
                      note: string?
                      amount: number
                      seen: boolean
                      meta: object
                      tags: array?
                    max_bytes: 7999
                    forbid: [password, secret, token]
                  audit:
                    format: csv
                    columns: [op, schema, table, key, value]
                    max_bytes: 1
                  log:
                    format: text
                tables:
                  public.events:
                    notify: {insert: new_event}
                    trigger: trigger_notify_new_event
                    values: {json: '{"type":"m.room.message"}', depth: 3, live: true, ratio: 0.5}
                  audit.entries:
                    notify:
                      insert: audit
                      update: audit
                      delete: undeclared_channel
                  quiet:
                    notify: {}
                replication:
                  publication: event_json_pub
                  tables: [public.event_json, archive.events]
                  subscriber_migrations: ../subscriber/./sql
                """, file: "pgevents.yml", baseDirectory: "/work/project")
        #expect(spec.file == nil)
        #expect(spec.migrations == "/work/project/sql/migrations")
        #expect(spec.postgres == [15, 18])
        #expect(spec.channels.count == 3)
        let newEvent = try #require(spec.channels["new_event"])
        #expect(
            newEvent
                == ChannelSpec(
                    name: "new_event",
                    format: .json,
                    fields: [
                        ("event_id", JSONFieldType(kind: .string)),
                        ("chain_id", JSONFieldType(kind: .integer)),
                        ("note", JSONFieldType(kind: .string, nullable: true)),
                        ("amount", JSONFieldType(kind: .number)),
                        ("seen", JSONFieldType(kind: .boolean)),
                        ("meta", JSONFieldType(kind: .object)),
                        ("tags", JSONFieldType(kind: .array, nullable: true)),
                    ],
                    maxBytes: 7999,
                    forbid: ["password", "secret", "token"]
                ))
        #expect(
            spec.channels["audit"]
                == ChannelSpec(name: "audit", format: .csv, columns: ["op", "schema", "table", "key", "value"], maxBytes: 1))
        #expect(spec.channels["log"] == ChannelSpec(name: "log", format: .text))
        #expect(spec.tables.count == 3)
        let events = QualifiedName(schema: "public", name: "events")
        #expect(
            spec.tables[events]
                == TableSpec(
                    table: events,
                    notify: [.insert: "new_event"],
                    trigger: "trigger_notify_new_event",
                    values: ["json": #"{"type":"m.room.message"}"#, "depth": "3", "live": "true", "ratio": "0.5"]
                ))
        let entries = QualifiedName(schema: "audit", name: "entries")
        #expect(
            spec.tables[entries] == TableSpec(table: entries, notify: [.insert: "audit", .update: "audit", .delete: "undeclared_channel"]))
        let quiet = QualifiedName(schema: "public", name: "quiet")
        #expect(spec.tables[quiet] == TableSpec(table: quiet, notify: [:]))
        #expect(
            spec.replication
                == ReplicationSpec(
                    publication: "event_json_pub",
                    tables: [QualifiedName(schema: "public", name: "event_json"), QualifiedName(schema: "archive", name: "events")],
                    subscriberMigrations: "/work/subscriber/sql"
                ))
    }

    @Test("fields keep the order of the file")
    func fieldOrder() throws {
        let names = ["zeta", "alpha", "mu", "beta", "omega", "gamma", "delta", "epsilon"]
        let yaml = "channels:\n  c:\n    format: json\n    fields:\n" + names.map { "      \($0): string\n" }.joined()
        let spec = try CheckSpec(yaml: yaml, file: "pgevents.yml", baseDirectory: "/p")
        #expect(spec.channels["c"]?.fields.map(\.name) == names)
    }

    @Test("defaults apply to what the file leaves out")
    func defaults() throws {
        let spec = try CheckSpec(yaml: "channels: {}", file: "pgevents.yml", baseDirectory: "/work/project/")
        #expect(spec == CheckSpec(migrations: "/work/project"))
        let channel = try #require(try CheckSpec(yaml: "channels: {c: {format: json}}", file: "f", baseDirectory: "/p").channels["c"])
        #expect(channel.fields.isEmpty)
        #expect(channel.columns == nil)
        #expect(channel.maxBytes == nil)
        #expect(channel.forbid.isEmpty)
        let table = try #require(
            try CheckSpec(yaml: "tables: {t: {notify: {}}}", file: "f", baseDirectory: "/p").tables[
                QualifiedName(schema: "public", name: "t")])
        #expect(table.trigger == nil)
        #expect(table.values.isEmpty)
        // One version without a list; repeated versions once.
        #expect(try CheckSpec(yaml: "postgres: 16", file: "f", baseDirectory: "/p").postgres == [16])
        #expect(try CheckSpec(yaml: "postgres: [18, 15, 18]", file: "f", baseDirectory: "/p").postgres == [18, 15])
        #expect(try CheckSpec(yaml: "postgres: []", file: "f", baseDirectory: "/p").postgres == [])
        // A null value is the same as leaving the key out.
        let nulls = try CheckSpec(
            yaml: "migrations:\npostgres: ~\nchannels:\n  c: {format: text, forbid: null, max_bytes: ~}\ntables:\nreplication:\n",
            file: "f", baseDirectory: "/p")
        #expect(nulls == CheckSpec(migrations: "/p", channels: ["c": ChannelSpec(name: "c", format: .text)]))
    }

    @Test("paths: absolute ones are kept, relative ones are resolved, all are normalised")
    func paths() throws {
        #expect(
            try CheckSpec(yaml: "migrations: /srv//db/./migrations/", file: "f", baseDirectory: "/p").migrations == "/srv/db/migrations")
        #expect(try CheckSpec(yaml: "migrations: ../db", file: "f", baseDirectory: "/work/project").migrations == "/work/db")
        #expect(try CheckSpec(yaml: "migrations: .", file: "f", baseDirectory: "/work/project").migrations == "/work/project")
        let cwd = FileManager.default.currentDirectoryPath
        let relativeBase = try CheckSpec(yaml: "migrations: sql", file: "f", baseDirectory: "project")
        #expect(relativeBase.migrations == URL(fileURLWithPath: cwd + "/project/sql").standardizedFileURL.path)
    }

    @Test(
        "names are measured in bytes: 63 is the most",
        arguments: [
            (String(repeating: "c", count: 63), true),
            (String(repeating: "c", count: 64), false),
            (String(repeating: "é", count: 31), true),  // 62 bytes
            (String(repeating: "é", count: 32), false),  // 64 bytes in 32 characters
        ])
    func nameLengths(name: String, valid: Bool) {
        let yamls = [
            "channels: {\(name): {format: text}}",
            "tables: {t: {notify: {insert: \(name)}}}",
            "tables: {t: {notify: {}, trigger: \(name)}}",
            "tables: {\(name): {notify: {}}}",
            "tables: {s.\(name): {notify: {}}}",
            "replication: {publication: \(name), tables: [t], subscriber_migrations: s}",
        ]
        for yaml in yamls {
            let result = Result { try CheckSpec(yaml: yaml, file: "f", baseDirectory: "/p") }
            if valid {
                #expect(throws: Never.self, "\(yaml)") { try result.get() }
            } else {
                let error = #expect(throws: HarnessError.self, "\(yaml)") { try result.get() }
                #expect(error?.message.contains("63") == true, "\(error?.message ?? "no error")")
            }
        }
    }

    static let long = String(repeating: "x", count: 64)

    @Test(
        "every error names the file, line, column and key",
        arguments: [
            // Unknown keys, at every level.
            (
                "colour: red",
                "pgevents.yml:1:1: unknown key 'colour' (expected one of: channels, migrations, postgres, replication, tables)"
            ),
            (
                "channels:\n  c:\n    format: json\n    feilds: {}",
                "pgevents.yml:4:5: channels.c: unknown key 'feilds' (expected one of: columns, fields, forbid, format, max_bytes)"
            ),
            (
                "tables:\n  t:\n    notify: {}\n    triggers: x",
                "pgevents.yml:4:5: tables.t: unknown key 'triggers' (expected one of: notify, once_per, publication, trigger, values)"
            ),
            (
                "replication:\n  publication: p\n  table: [t]",
                "pgevents.yml:3:3: replication: unknown key 'table' (expected one of: publication, subscriber_migrations, tables)"
            ),
            // The document.
            ("", "pgevents.yml: the file is empty"),
            ("# nothing but a comment\n", "pgevents.yml: the file is empty"),
            ("~", "pgevents.yml: the file is empty"),
            ("- a\n- b", "pgevents.yml:1:1: expected a mapping, found a list"),
            ("channels: [a, b", "pgevents.yml:2:1: invalid YAML"),
            ("channels:\n  c: {format: json}\n  c: {format: csv}", "pgevents.yml:2:3: invalid YAML: duplicate keys: c"),
            // migrations and postgres.
            ("migrations: ''", "pgevents.yml:1:13: migrations: the migrations directory is an empty string"),
            ("migrations: [a, b]", "pgevents.yml:1:13: migrations: expected a string, found a list"),
            (
                "postgres: 9",
                "pgevents.yml:1:11: postgres: 9 is not a PostgreSQL major version (expected a whole number from 10 to 99, e.g. 15 or 18)"
            ),
            ("postgres: [15, 100]", "pgevents.yml:1:16: postgres[1]: 100 is not a PostgreSQL major version"),
            ("postgres: [15, newest]", "pgevents.yml:1:16: postgres[1]: expected a whole number, found 'newest'"),
            ("postgres: 15.4", "pgevents.yml:1:11: postgres: expected a whole number, found '15.4'"),
            ("postgres: {major: 15}", "pgevents.yml:1:11: postgres: expected a whole number, found a mapping"),
            // Channels.
            ("channels: [a]", "pgevents.yml:1:11: channels: expected a mapping, found a list"),
            ("channels:\n  '': {format: text}", "pgevents.yml:2:3: channels: a channel name must have 1 to 63 bytes, '' has 0"),
            (
                "channels:\n  \(long): {format: text}",
                "pgevents.yml:2:3: channels: a channel name must have 1 to 63 bytes, '\(long)' has 64"
            ),
            (
                "channels:\n  c: {}",
                "pgevents.yml:2:6: channels.c: 'format' is missing: say how this channel's payloads are written (json, csv or text)"
            ),
            ("channels:\n  c:\n", "pgevents.yml:2:5: channels.c: 'format' is missing"),
            ("channels:\n  c: text", "pgevents.yml:2:6: channels.c: expected a mapping, found a scalar"),
            ("channels:\n  c:\n    format: xml", "pgevents.yml:3:13: channels.c.format: unknown format 'xml' (expected json, csv or text)"),
            (
                "channels:\n  c:\n    format: JSON",
                "pgevents.yml:3:13: channels.c.format: unknown format 'JSON' (expected json, csv or text)"
            ),
            ("channels:\n  c:\n    format: [json]", "pgevents.yml:3:13: channels.c.format: expected a string, found a list"),
            (
                "channels:\n  c:\n    format: json\n    fields:\n      id: int",
                "pgevents.yml:5:11: channels.c.fields.id: unknown field type 'int' (expected string, integer, number, boolean, object or array; add ? to allow null, e.g. string?)"
            ),
            (
                "channels:\n  c:\n    format: json\n    fields:\n      id: string??",
                "pgevents.yml:5:11: channels.c.fields.id: unknown field type 'string??'"
            ),
            (
                "channels:\n  c:\n    format: json\n    fields:\n      id: '?'",
                "pgevents.yml:5:11: channels.c.fields.id: unknown field type '?'"
            ),
            (
                "channels:\n  c:\n    format: json\n    fields: [id, name]",
                "pgevents.yml:4:13: channels.c.fields: expected a mapping, found a list"
            ),
            (
                "channels:\n  c:\n    format: csv\n    fields: {id: string}",
                "pgevents.yml:4:13: channels.c.fields: 'fields' is only read with format: json (this channel's format is csv)"
            ),
            (
                "channels:\n  c:\n    format: text\n    fields: {id: string}",
                "pgevents.yml:4:13: channels.c.fields: 'fields' is only read with format: json (this channel's format is text)"
            ),
            (
                "channels:\n  c:\n    format: json\n    columns: [a, b]",
                "pgevents.yml:4:14: channels.c.columns: 'columns' is only read with format: csv (this channel's format is json)"
            ),
            (
                "channels:\n  c:\n    format: text\n    columns: [a, b]",
                "pgevents.yml:4:14: channels.c.columns: 'columns' is only read with format: csv (this channel's format is text)"
            ),
            (
                "channels:\n  c:\n    format: csv\n    columns: []",
                "pgevents.yml:4:14: channels.c.columns: name at least one column (or leave 'columns' out)"
            ),
            ("channels:\n  c:\n    format: csv\n    columns: 5", "pgevents.yml:4:14: channels.c.columns: expected a list, found a scalar"),
            (
                "channels:\n  c:\n    format: csv\n    columns: [a, [b]]",
                "pgevents.yml:4:18: channels.c.columns[1]: expected a string, found a list"
            ),
            (
                "channels:\n  c:\n    format: text\n    max_bytes: 0",
                "pgevents.yml:4:16: channels.c.max_bytes: max_bytes must be from 1 to 7999 (the most a NOTIFY payload can have), found 0"
            ),
            (
                "channels:\n  c:\n    format: text\n    max_bytes: 8000",
                "pgevents.yml:4:16: channels.c.max_bytes: max_bytes must be from 1 to 7999 (the most a NOTIFY payload can have), found 8000"
            ),
            (
                "channels:\n  c:\n    format: text\n    max_bytes: 8kB",
                "pgevents.yml:4:16: channels.c.max_bytes: expected a whole number, found '8kB'"
            ),
            (
                "channels:\n  c:\n    format: text\n    forbid: password",
                "pgevents.yml:4:13: channels.c.forbid: expected a list, found a scalar"
            ),
            (
                "channels:\n  c:\n    format: text\n    forbid: [password, '']",
                "pgevents.yml:4:24: channels.c.forbid[1]: a forbidden word cannot be empty (it would match every payload)"
            ),
            // Tables.
            ("tables: [events]", "pgevents.yml:1:9: tables: expected a mapping, found a list"),
            (
                "tables:\n  a.b.c: {notify: {}}",
                "pgevents.yml:2:3: tables: bad table name 'a.b.c' (expected schema.table, or table for public.table)"
            ),
            (
                "tables:\n  .events: {notify: {}}",
                "pgevents.yml:2:3: tables: bad table name '.events' (expected schema.table, or table for public.table)"
            ),
            (
                "tables:\n  'public.': {notify: {}}",
                "pgevents.yml:2:3: tables: bad table name 'public.' (expected schema.table, or table for public.table)"
            ),
            (
                "tables:\n  '': {notify: {}}",
                "pgevents.yml:2:3: tables: bad table name '' (expected schema.table, or table for public.table)"
            ),
            (
                "tables:\n  s.\(long): {notify: {}}",
                "pgevents.yml:2:3: tables: bad table name 's.\(long)': '\(long)' has 64 bytes, PostgreSQL names have at most 63"
            ),
            (
                "tables:\n  events: {notify: {}}\n  public.events: {notify: {}}",
                "pgevents.yml:3:3: tables: public.events is given twice (as 'events' and as 'public.events')"
            ),
            (
                "tables:\n  events: {}",
                "pgevents.yml:2:11: tables.events: 'notify' is missing: map the operations that must notify to their channel, e.g. {insert: new_event}, or write {} if none may"
            ),
            ("tables:\n  events:\n", "pgevents.yml:2:10: tables.events: 'notify' is missing"),
            (
                "tables:\n  events:\n    notify:\n",
                "pgevents.yml:3:12: tables.events.notify: no value: map the operations that must notify to their channel"
            ),
            ("tables:\n  events:\n    notify: [insert]", "pgevents.yml:3:13: tables.events.notify: expected a mapping, found a list"),
            (
                "tables:\n  events:\n    notify:\n      upsert: new_event",
                "pgevents.yml:4:7: tables.events.notify: unknown operation 'upsert' (expected insert, update or delete)"
            ),
            (
                "tables:\n  events:\n    notify:\n      INSERT: new_event",
                "pgevents.yml:4:7: tables.events.notify: unknown operation 'INSERT' (expected insert, update or delete)"
            ),
            (
                "tables:\n  events:\n    notify:\n      insert: ''",
                "pgevents.yml:4:15: tables.events.notify.insert: a channel name must have 1 to 63 bytes, '' has 0"
            ),
            (
                "tables:\n  events:\n    notify:\n      insert: \(long)",
                "pgevents.yml:4:15: tables.events.notify.insert: a channel name must have 1 to 63 bytes, '\(long)' has 64"
            ),
            (
                "tables:\n  events:\n    notify:\n      insert: [a, b]",
                "pgevents.yml:4:15: tables.events.notify.insert: expected a string, found a list"
            ),
            (
                "tables:\n  events:\n    notify: {}\n    trigger: ''",
                "pgevents.yml:4:14: tables.events.trigger: a trigger name must have 1 to 63 bytes, '' has 0"
            ),
            (
                "tables:\n  events:\n    notify: {}\n    values: [a]",
                "pgevents.yml:4:13: tables.events.values: expected a mapping, found a list"
            ),
            (
                "tables:\n  events:\n    notify: {}\n    values:\n      data: {a: 1}",
                "pgevents.yml:5:13: tables.events.values.data: expected a string, found a mapping"
            ),
            (
                "tables:\n  events:\n    notify: {}\n    values:\n      '': x",
                "pgevents.yml:5:7: tables.events.values: a column name must have 1 to 63 bytes, '' has 0"
            ),
            // Replication.
            ("replication: yes", "pgevents.yml:1:14: replication: expected a mapping, found a scalar"),
            (
                "replication:\n  tables: [t]\n  subscriber_migrations: s",
                "pgevents.yml:2:3: replication: 'publication' is missing: the publication the subscriber subscribes to"
            ),
            (
                "replication:\n  publication: p\n  subscriber_migrations: s",
                "pgevents.yml:2:3: replication: 'tables' is missing: the replicated tables, e.g. [public.event_json]"
            ),
            (
                "replication:\n  publication: p\n  tables: [t]",
                "pgevents.yml:2:3: replication: 'subscriber_migrations' is missing: the directory of the subscriber's *.sql migrations"
            ),
            (
                "replication:\n  publication: ''\n  tables: [t]\n  subscriber_migrations: s",
                "pgevents.yml:2:16: replication.publication: a publication name must have 1 to 63 bytes, '' has 0"
            ),
            (
                "replication:\n  publication: p\n  tables: []\n  subscriber_migrations: s",
                "pgevents.yml:3:11: replication.tables: name at least one replicated table"
            ),
            (
                "replication:\n  publication: p\n  tables: t\n  subscriber_migrations: s",
                "pgevents.yml:3:11: replication.tables: expected a list, found a scalar"
            ),
            (
                "replication:\n  publication: p\n  tables: [t, a.b.c]\n  subscriber_migrations: s",
                "pgevents.yml:3:15: replication.tables[1]: bad table name 'a.b.c'"
            ),
            (
                "replication:\n  publication: p\n  tables: [t, public.t]\n  subscriber_migrations: s",
                "pgevents.yml:3:15: replication.tables[1]: public.t is listed twice"
            ),
            (
                "replication:\n  publication: p\n  tables: [t]\n  subscriber_migrations: ''",
                "pgevents.yml:4:26: replication.subscriber_migrations: the subscriber's migrations directory is an empty string"
            ),
        ])
    func errors(yaml: String, expected: String) {
        let error = #expect(throws: HarnessError.self) { try CheckSpec(yaml: yaml, file: "pgevents.yml", baseDirectory: "/p") }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.hasPrefix(expected) == true, "\(error?.message ?? "no error")")
    }

    @Test("a file is read with its own directory as the base, and its path is kept")
    func file() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/pgevents.yml"
        try "migrations: sql\nreplication: {publication: p, tables: [t], subscriber_migrations: ../sub}\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let spec = try CheckSpec(contentsOf: directory + "/./pgevents.yml")
        #expect(spec.file == path)
        #expect(spec.migrations == directory + "/sql")
        #expect(spec.replication?.subscriberMigrations == URL(fileURLWithPath: directory).deletingLastPathComponent().path + "/sub")
        // Errors name the file as it was given.
        try "channels: {c: {format: xml}}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: HarnessError.self) { try CheckSpec(contentsOf: path) }
        #expect(
            error?.message.hasPrefix("\(path):1:24: channels.c.format: unknown format 'xml'") == true, "\(error?.message ?? "no error")")
    }

    @Test("a missing, unreadable, empty or non-UTF-8 file is reported")
    func unreadable() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = #expect(throws: HarnessError.self) { try CheckSpec(contentsOf: directory + "/missing.yml") }
        #expect(missing?.code == .invalidInput)
        #expect(missing?.message == "cannot read \(directory)/missing.yml: there is no such file")
        let isDirectory = #expect(throws: HarnessError.self) { try CheckSpec(contentsOf: directory) }
        #expect(
            isDirectory?.message.hasPrefix("cannot read \(directory): it is a directory") == true, "\(isDirectory?.message ?? "no error")")
        let binary = directory + "/binary.yml"
        #expect(FileManager.default.createFile(atPath: binary, contents: Data([0x63, 0xFF, 0xFE, 0x0A])))
        let notText = #expect(throws: HarnessError.self) { try CheckSpec(contentsOf: binary) }
        #expect(notText?.message == "cannot read \(binary): it is not UTF-8 text")
        let empty = directory + "/empty.yml"
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        let emptyError = #expect(throws: HarnessError.self) { try CheckSpec(contentsOf: empty) }
        #expect(emptyError?.message == "\(empty): the file is empty")
    }

    // Found by fuzzing (FuzzTests, Benchmarks/Fuzz): each of these was accepted, or refused without a location.
    @Test(
        "fuzz findings: control characters, keys equal as text, NUL bytes in names",
        arguments: [
            // libyaml's reader refuses control characters: the error had no line and column, and spread over lines.
            ("channels:\n  c: {format: text}\u{0C}\n", "pgevents.yml:2:20: invalid YAML: control characters are not allowed (U+000C)"),
            ("\u{1B}[31m", "pgevents.yml:1:1: invalid YAML: control characters are not allowed (U+001B)"),
            // Lines counted as libyaml counts them: \r\n is one break, U+0085 (NEL) is one too.
            ("a: 1\r\nb: \u{85}\u{7F}", "pgevents.yml:3:1: invalid YAML: control characters are not allowed (U+007F)"),
            // YAML tells 1 from "1" (and true from "true"); the spec, which keys everything by text, silently kept one.
            ("channels:\n  1: {format: text}\n  \"1\": {format: csv}", "pgevents.yml:3:3: channels: duplicate key '1'"),
            (
                "channels:\n  c:\n    format: json\n    fields: {true: integer, 'true': string}",
                "pgevents.yml:4:29: channels.c.fields: duplicate key 'true'"
            ),
            ("tables:\n  t:\n    notify: {}\n    values: {1: a, !!str 1: b}", "pgevents.yml:4:20: tables.t.values: duplicate key '1'"),
            // PostgreSQL names cannot hold a NUL byte; the server would have refused them only when the check ran.
            (
                "channels:\n  \"a\\0b\": {format: text}",
                "pgevents.yml:2:3: channels: a channel name cannot contain a NUL byte, 'a\\u{0}b' does"
            ),
            ("tables:\n  \"t\\0\": {notify: {}}", "pgevents.yml:2:3: tables: a table name cannot contain a NUL byte"),
            (
                "tables:\n  t: {notify: {insert: \"c\\0\"}}",
                "pgevents.yml:2:24: tables.t.notify.insert: a channel name cannot contain a NUL byte"
            ),
            (
                "tables:\n  t: {notify: {}, trigger: \"x\\0\"}",
                "pgevents.yml:2:28: tables.t.trigger: a trigger name cannot contain a NUL byte"
            ),
            // Keys and values quoted in a message were shown raw: tabs, line separators, terminal escapes.
            ("\"chan\\tnels\\e[2J\": {}", "pgevents.yml:1:1: unknown key 'chan\\tnels\\u{1B}[2J' (expected one of"),
            (
                "channels:\n  \"a\\Pb\\nc\": {format: text}\n  x: {format: \"js\\Lon\"}",
                "pgevents.yml:3:15: channels.x.format: unknown format 'js\\u{2028}on'"
            ),
        ])
    func fuzzFindings(yaml: String, expected: String) {
        let error = #expect(throws: HarnessError.self) { try CheckSpec(yaml: yaml, file: "pgevents.yml", baseDirectory: "/p") }
        #expect(error?.message.hasPrefix(expected) == true, "\(error?.message ?? "no error")")
        #expect(error?.message.contains("\n") == false)
    }

    @Test("a spec whose aliases expand without bound is refused before Yams composes it (a fuzz finding)")
    func aliasBomb() {
        var levels = ["channels:", "  a0: &a0 {format: text, forbid: [x, x, x, x, x, x, x, x, x]}"]
        for level in 1...7 {
            levels.append("  a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ") + "]")
        }
        let error = #expect(throws: HarnessError.self) {
            try CheckSpec(
                yaml: levels.joined(separator: "\n") + "\ntables:\n  ? *a7\n  : {notify: {}}\n", file: "pgevents.yml", baseDirectory: "/p")
        }
        #expect(error?.message.hasPrefix("pgevents.yml:6:52: ") == true, "\(error?.message ?? "no error")")
        #expect(error?.message.contains("the aliases expand the document to more than 100000 values") == true)
    }

    private func temporaryDirectory() throws -> String {
        let path = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pgevents-spec-\(UUID().uuidString)")
            .standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
