import PGEventsPostgres
import PGEventsRedis
import Testing

@testable import PGEvents

@Suite("Processor configuration files")
struct ProcessorConfigurationTests {
    @Test("a full file is read")
    func full() throws {
        let configuration = try ProcessorConfiguration(
            yaml: """
                consumer: tasks
                channels:
                  task_created: {queue: "tasks:created"}
                  task_updated:
                    queue: "tasks:updated"
                batch_size: 500
                from_start: false
                catch_up_interval: 2.5
                prune_interval: 0
                dedupe_ttl: 3600
                key_prefix: "seen"
                listener: {heartbeat_interval: 1, heartbeat_timeout: 2}
                retry: {initial: 0.2, maximum: 5}
                """)
        #expect(configuration.consumer == "tasks")
        #expect(
            configuration.channels == [
                .init(name: "task_created", queue: "tasks:created"), .init(name: "task_updated", queue: "tasks:updated"),
            ])
        #expect(configuration.batchSize == 500)
        #expect(!configuration.fromStart)
        #expect(configuration.catchUpInterval == 2.5)
        #expect(configuration.pruneInterval == 0)
        #expect(configuration.dedupeTTL == 3600)
        #expect(configuration.keyPrefix == "seen")
        #expect(configuration.heartbeatInterval == 1)
        #expect(configuration.heartbeatTimeout == 2)
        #expect(configuration.retryInitial == 0.2)
        #expect(configuration.retryMaximum == 5)
    }

    @Test("defaults apply to what the file leaves out")
    func defaults() throws {
        let configuration = try ProcessorConfiguration(yaml: "channels: {new_event: {queue: jobs}}")
        #expect(configuration.consumer == "pgevents")
        #expect(configuration.source == .journal)
        #expect(try ProcessorConfiguration(yaml: "source: notify\nchannels: {a: {queue: q}}").source == .notify)
        #expect(configuration.batchSize == 1_000)
        #expect(configuration.fromStart)
    }

    @Test(
        "every error names the file, line, column and key",
        arguments: [
            ("channels: {a: {queue: q}}\nbatch_sise: 10", "processor.yml:2:1: unknown key 'batch_sise'"),
            ("channels: {a: {queue: q}}\nbatch_size: ten", "processor.yml:2:13: batch_size: expected a whole number, found 'ten'"),
            ("channels: {a: {queue: q}}\nbatch_size: 0", "processor.yml:2:13: batch_size: 0 is out of range (1…100000)"),
            ("channels:\n  a:\n    queue: [x]", "processor.yml:3:12: channels.a.queue: expected a string, found a list"),
            ("channels:\n  a: {}", "processor.yml:2:6: channels.a: 'queue' is missing"),
            ("consumer: x", "processor.yml: 'channels' is missing"),
            (
                "channels: {a: {queue: q}}\nretry: {initial: 5, maximum: 1}",
                "processor.yml:2:8: retry: 'maximum' (1.0) is below 'initial' (5.0)"
            ),
            (
                "channels: {a: {queue: q}}\nlistener: {heartbeat_timeout: -1}",
                "processor.yml:2:31: listener.heartbeat_timeout: expected a positive number of seconds, found '-1'"
            ),
            ("channels: [a, b", "processor.yml:2:1: invalid YAML"),
            ("", "processor.yml: the file is empty"),
            (
                "source: kafka\nchannels: {a: {queue: q}}",
                "processor.yml:1:9: source: unknown source 'kafka' (expected journal, table, wal or notify)"
            ),
        ])
    func errors(yaml: String, expected: String) {
        let error = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: yaml) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.hasPrefix(expected) == true, "\(error?.message ?? "no error")")
    }

    @Test("a batch section is read; notify mode refuses pipeline features (batching among them)")
    func notifyRefusesPipeline() throws {
        let configuration = try ProcessorConfiguration(yaml: "channels:\n  a:\n    queue: q\n    batch: {max_items: 10, max_seconds: 2}\n")
        #expect(configuration.channels[0].pipeline.batch == BatchSpec(maxItems: 10, maxAge: .seconds(2)))
        let batched = #expect(throws: ProcessorError.self) {
            try ProcessorConfiguration(yaml: "source: notify\nchannels:\n  a: {queue: q, batch: {max_items: 3}}\n")
        }
        #expect(batched?.message.contains("source: notify pushes payloads as they are") == true, "\(batched?.message ?? "")")
        let notify = #expect(throws: ProcessorError.self) {
            try ProcessorConfiguration(yaml: "source: notify\nchannels:\n  a: {queue: q, decode: json}\n")
        }
        #expect(notify?.message.contains("source: notify pushes payloads as they are") == true, "\(notify?.message ?? "")")
    }

    // Found by fuzzing (FuzzTests, Benchmarks/Fuzz).
    @Test(
        "fuzz findings: keys equal as text, NUL bytes, durations out of range, control characters",
        arguments: [
            // Two channels named "1" passed, and the processors' Dictionary(uniqueKeysWithValues:) trapped on them.
            ("channels:\n  1: {queue: a}\n  \"1\": {queue: b}", "processor.yml:3:3: channels: duplicate key '1'"),
            ("channels: {a: {queue: q}}\nretry: {initial: 1, !x initial: 2}", "processor.yml:2:21: retry: duplicate key 'initial'"),
            // A NUL in a channel name passed, and only the listener refused it (without a file or line).
            ("channels:\n  \"a\\0b\": {queue: q}", "processor.yml:2:3: channels: a channel name cannot contain a NUL byte"),
            ("consumer: \"x\\0\"\nchannels: {a: {queue: q}}", "processor.yml:1:11: consumer: the consumer name contains a NUL byte"),
            (
                "source: table\ntable: {name: \"t\\0\", key: id}\nchannels: {a: {queue: q}}",
                "processor.yml:2:15: table.name: 'name' must have 1 to 63 bytes, none of them NUL"
            ),
            // 1e300 s passed, and listenerConfiguration(postgres:) trapped converting it to milliseconds; 0.0001 s
            // became 0 ms, which the listener refused at run time.
            (
                "channels: {a: {queue: q}}\nlistener: {heartbeat_interval: 1e300}",
                "processor.yml:2:32: listener.heartbeat_interval: 1e+300 seconds is out of range (0.001…31536000.0)"
            ),
            (
                "channels: {a: {queue: q}}\nlistener: {heartbeat_timeout: 0.0001}",
                "processor.yml:2:31: listener.heartbeat_timeout: 0.0001 seconds is out of range"
            ),
            ("channels: {a: {queue: q}}\ncatch_up_interval: 1e20", "processor.yml:2:20: catch_up_interval: 1e+20 seconds is out of range"),
            (
                "channels: {a: {queue: q}}\nretry: {initial: 0.1, maximum: 1e18}",
                "processor.yml:2:32: retry.maximum: 1e+18 seconds is out of range"
            ),
            // Keys quoted in a message were shown raw.
            ("channels: {a: {queue: q}}\n\"batch\\tsize\\x85\": 1", "processor.yml:2:1: unknown key 'batch\\tsize\\u{85}'"),
            // libyaml's reader errors had no line and column.
            ("channels: {a: {queue: q}}\n\u{01}", "processor.yml:2:1: invalid YAML: control characters are not allowed (U+0001)"),
        ])
    func fuzzFindings(yaml: String, expected: String) {
        let error = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: yaml) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.hasPrefix(expected) == true, "\(error?.message ?? "no error")")
    }

    // Found by fuzzing: Yams hashes each mapping's keys (aliases expanded) to find duplicates, so 462 bytes of
    // aliases of aliases used as a key took 26 s (release), and every level more ten times that; `? ? ? …`
    // nested 1,000 deep took 2 s (debug); and it sorts duplicate keys comparing them twice per level, so a
    // mapping key nested 30 deep, written twice, took longer than libFuzzer's 5 s timeout. How long the refusals
    // take is not asserted (speed belongs to benchmarks and ci/fuzz's timeout); the time limit is a hang guard.
    @Test(
        "aliases that expand without bound, keys that are mappings, and deep nesting are refused before Yams composes them",
        .timeLimit(.minutes(1)))
    func aliasBombs() {
        var levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...8 {
            levels.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]")
        }
        let bomb = #expect(throws: ProcessorError.self) {
            try ProcessorConfiguration(yaml: levels.joined(separator: "\n") + "\n? *a8\n: 1\n")
        }
        #expect(
            bomb?.message.hasPrefix("processor.yml:5:45: the aliases expand the document to more than 100000 values") == true,
            "\(bomb?.message ?? "no error")")
        let nestedKeys = String(repeating: "? ", count: 1_000) + "x"
        let deepKey = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: nestedKeys) }
        #expect(deepKey?.message == "processor.yml:1:3: keys must be strings, found a mapping")
        let twice = String(repeating: "? ", count: 30) + "x\n: 1\n" + String(repeating: "? ", count: 30) + "x\n: 2\n"
        let duplicateKeys = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: twice) }
        #expect(duplicateKeys?.message == "processor.yml:1:3: keys must be strings, found a mapping")
        let flowKey = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: "channels: {[a]: {queue: q}}") }
        #expect(flowKey?.message == "processor.yml:1:12: keys must be strings, found a list")
        let aliasKey = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: "a: &l [x]\n*l : 1") }
        #expect(aliasKey?.message == "processor.yml:2:1: keys must be strings, found an alias of a mapping or list")
        let deep = #expect(throws: ProcessorError.self) {
            try ProcessorConfiguration(yaml: "channels: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100))
        }
        #expect(deep?.message == "processor.yml:1:74: mappings and lists are nested more than 64 deep")
        // Aliases within bounds are fine.
        #expect(throws: Never.self) { try ProcessorConfiguration(yaml: "channels:\n  a: &q {queue: q}\n  b: *q\n") }
    }

    @Test("the longest and shortest durations a file may give build a valid listener")
    func durationBounds() throws {
        let configuration = try ProcessorConfiguration(
            yaml: """
                channels: {a: {queue: q}}
                catch_up_interval: 31536000
                listener: {heartbeat_interval: 0.001, heartbeat_timeout: 31536000}
                retry: {initial: 0.001, maximum: 31536000}
                """)
        let listener = configuration.listenerConfiguration(postgres: PostgresConfiguration(parameters: [:]))
        #expect(listener.heartbeatInterval == .milliseconds(1))
        #expect(listener.heartbeatTimeout == .seconds(31_536_000))
        try listener.validate()
        #expect(configuration.backoff.maximum == .seconds(31_536_000))
    }

    @Test("source: table needs a table and exactly one channel; 'table' is refused elsewhere")
    func tableSource() throws {
        let good = try ProcessorConfiguration(
            yaml: """
                source: table
                table: {schema: shop, name: orders, key: order_id}
                channels: {orders: {queue: q}}
                """)
        #expect(good.table == .init(schema: "shop", name: "orders", key: "order_id"))
        let cases: [(String, String)] = [
            ("source: table\nchannels: {a: {queue: q}}", "'table' is missing"),
            ("source: table\ntable: {name: t}\nchannels: {a: {queue: q}}", "'key' is missing"),
            ("source: table\ntable: {name: t, key: id}\nchannels: {a: {queue: q}, b: {queue: r}}", "exactly one channel"),
            ("table: {name: t, key: id}\nchannels: {a: {queue: q}}", "only read with source: table"),
            ("source: table\ntable: {name: t, key: id, colour: red}\nchannels: {a: {queue: q}}", "colour"),
        ]
        for (yaml, expected) in cases {
            let error = #expect(throws: ProcessorError.self) { try ProcessorConfiguration(yaml: yaml) }
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "no error") does not say \(expected)")
        }
    }
}

@Suite("What the delivery retries")
struct RetryClassificationTests {
    @Test(
        "lost connections and transient server errors are retried; the rest are not",
        arguments: [
            (PostgresError(code: .connectionLost, message: "gone"), true),
            (PostgresError(code: .connectionFailed, message: "refused"), true),
            (PostgresError(code: .server, message: "crash", sqlState: "57P02"), true),
            (PostgresError(code: .server, message: "shutdown", sqlState: "57P01"), true),
            (PostgresError(code: .server, message: "starting up", sqlState: "57P03"), true),
            (PostgresError(code: .server, message: "too many clients", sqlState: "53300"), true),
            (PostgresError(code: .server, message: "deadlock", sqlState: "40P01"), true),
            (PostgresError(code: .server, message: "no such function", sqlState: "42883"), false),
            (PostgresError(code: .decoding, message: "bad value"), false),
        ])
    func postgres(error: PostgresError, retryable: Bool) {
        #expect(EventDelivery.isRetryable(error) == retryable)
    }

    @Test("every Redis error is retried (LOADING after a restart, say); a missing journal is not")
    func others() {
        #expect(EventDelivery.isRetryable(RedisError(code: .connectionLost, message: "eof")))
        #expect(EventDelivery.isRetryable(RedisError(code: .timeout, message: "slow")))
        #expect(EventDelivery.isRetryable(RedisError(code: .server, message: "LOADING Redis is loading the dataset in memory")))
        #expect(!EventDelivery.isRetryable(ProcessorError(code: .journalMissing, message: "no journal")))
    }
}
