import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

/// Keys whose slots are served by different primaries of a three-primary cluster (the harness gives each a third of
/// the slots, in order).
private let spreadKeys = ["jobs:a", "jobs:b", "{jobs}:c", "stream:d", "batches:e"]

/// The list `key` of a cluster, oldest first.
private func items(_ cluster: RedisCluster, _ key: String) async throws -> [String] {
    let reply = try await cluster.command(["LRANGE", RedisArgument(key), 0, -1], slot: RedisHashSlot.of(key))
    return (reply.array ?? []).reversed().compactMap(\.string)
}

@Suite("Redis Cluster: the harness's cluster, routing by slot, MOVED and ASK", .serialized)
struct RedisClusterClientTests {
    @Test("slots are computed as the cluster computes them, and every command reaches the primary of its key's slot")
    func routing() async throws {
        try await withTemporaryRedisCluster { cluster in
            #expect(cluster.nodes.count == 3)
            try await RedisCluster.withCluster(cluster.configuration) { client in
                #expect(try await client.primaries().count == 3)
                let oracle = try await cluster.nodes[0].connect()
                var keys =
                    spreadKeys + [
                        "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "é{ü}", "", "{", "}{",
                        "pgevents:seen:app:1:delivered:{jobs}",
                    ]
                keys += (0..<200).map { "key:\($0):\(UUID().uuidString)" }
                for key in keys {
                    let slot = try await oracle.command("CLUSTER", "KEYSLOT", RedisArgument(key)).integer
                    #expect(slot.map(Int.init) == RedisHashSlot.of(key), "\(key)")
                }
                await oracle.close()
                for key in spreadKeys { try await client.command(["LPUSH", RedisArgument(key), "x"], slot: RedisHashSlot.of(key)) }
                // Each key is on the node that serves its slot, and only there.
                for key in spreadKeys {
                    let owner = try await client.primary(forSlot: RedisHashSlot.of(key))
                    for node in cluster.nodes {
                        let holds = try await RedisConnection.withConnection(node.configuration) {
                            try await $0.command("CLUSTER", "COUNTKEYSINSLOT", RedisArgument(RedisHashSlot.of(key))).integer
                        }
                        #expect((holds == 1) == (node.port == owner.port), "\(key) on \(node.port), owner \(owner)")
                    }
                }
                #expect(Set(try await spreadKeys.asyncMapSerial { try await client.primary(forSlot: RedisHashSlot.of($0)) }).count == 3)
            }
        }
    }

    @Test("a slot being migrated is followed with ASKING; once moved, MOVED updates the map")
    func redirections() async throws {
        try await withTemporaryRedisCluster { cluster in
            try await RedisCluster.withCluster(cluster.configuration) { client in
                let key = "jobs:a"
                let slot = RedisHashSlot.of(key)
                let source = try await client.primary(forSlot: slot)
                let target = try #require(try await client.primaries().first { $0 != source })
                let from = try await RedisConnection.connect(try #require(cluster.node(at: source)).configuration)
                let to = try await RedisConnection.connect(try #require(cluster.node(at: target)).configuration)
                let targetID = try #require(try await to.command("CLUSTER", "MYID").string)
                let sourceID = try #require(try await from.command("CLUSTER", "MYID").string)
                try await to.command("CLUSTER", "SETSLOT", RedisArgument(slot), "IMPORTING", RedisArgument(sourceID))
                try await from.command("CLUSTER", "SETSLOT", RedisArgument(slot), "MIGRATING", RedisArgument(targetID))
                // The key does not exist on the source: it answers ASK, and the client asks the target.
                try await client.command(["LPUSH", RedisArgument(key), "during"], slot: slot)
                #expect(try await to.command("CLUSTER", "COUNTKEYSINSLOT", RedisArgument(slot)).integer == 1)
                #expect(try await from.command("CLUSTER", "COUNTKEYSINSLOT", RedisArgument(slot)).integer == 0)
                #expect(try await client.slotMap.primaries[slot] == source)
                // The migration ends: every node is told the slot's owner; the source answers MOVED.
                for node in cluster.nodes {
                    try await RedisConnection.withConnection(node.configuration) {
                        try await $0.command("CLUSTER", "SETSLOT", RedisArgument(slot), "NODE", RedisArgument(targetID))
                    }
                }
                try await client.command(["LPUSH", RedisArgument(key), "after"], slot: slot)
                #expect(try await items(client, key) == ["during", "after"])
                #expect(await client.slotMap.primaries[slot] == target)
                await from.close()
                await to.close()
            }
        }
    }

    @Test("a standalone server named as a cluster is refused, naming the fix")
    func notACluster() async throws {
        try await withTemporaryRedis { redis in
            var configuration = redis.configuration
            configuration.isCluster = true
            let error = await #expect(throws: RedisError.self) { try await RedisCluster.connect(configuration) }
            #expect(error?.message.contains("not a cluster node") == true, "\(String(describing: error))")
        }
    }
}

@Suite("The job writer on a Redis Cluster: one slot per script call, nothing twice", .serialized)
struct RedisClusterWriterTests {
    @Test("lists, streams, batches and dead letters in different slots; a replay writes nothing twice")
    func writesEachDestinationInItsSlot() async throws {
        try await withTemporaryRedisCluster { cluster in
            try await RedisCluster.withCluster(cluster.configuration) { client in
                let sink = RedisSink.cluster(client)
                let writer = RedisJobWriter()
                let batch = BatchDestination(
                    queue: "batches:e", sink: .list, streamMaxLength: nil, channel: "change", group: "{}", spec: BatchSpec(maxItems: 3))
                let events = (1...9).map { SourceEvent(seq: Int64($0), channel: "change", payload: "\($0)", createdAt: Date()) }
                var jobs: [Job] = []
                for event in events {
                    jobs.append(Job(event: event, index: 0, destination: .list("jobs:a"), body: "a\(event.seq)"))
                    jobs.append(Job(event: event, index: 1, destination: .stream("stream:d", maxLength: nil), body: "d\(event.seq)"))
                    jobs.append(Job(event: event, index: 2, destination: .list("{jobs}:c"), body: "c\(event.seq)"))
                    jobs.append(Job(event: event, index: 3, destination: .batch(batch), body: #"{"n":\#(event.seq)}"#))
                }
                let first = try await writer.write(jobs, consumer: "app:1", on: sink)
                #expect(first.written == 36 && first.duplicates == 0 && first.failures.isEmpty, "\(first)")
                #expect(first.batchesSent == 3)
                let again = try await writer.write(jobs, consumer: "app:1", on: sink)
                #expect(again.written == 0 && again.duplicates == 36, "\(again)")
                #expect(try await items(client, "jobs:a") == (1...9).map { "a\($0)" })
                #expect(try await items(client, "{jobs}:c") == (1...9).map { "c\($0)" })
                #expect(try await items(client, "batches:e").count == 3)
                let stream = try await client.command(["XLEN", "stream:d"], slot: RedisHashSlot.of("stream:d"))
                #expect(stream.integer == 9)

                // A batch left open is sent by a flush, which finds it through the tags that had batches.
                let tenth = SourceEvent(seq: 10, channel: "change", payload: "10", createdAt: Date())
                _ = try await writer.write([Job(event: tenth, destination: .batch(batch), body: #"{"n":10}"#)], consumer: "app:1", on: sink)
                #expect(try await writer.flushBatches(all: true, consumer: "app:1", on: sink).batchItemsSent == 1)
                #expect(try await items(client, "batches:e").count == 4)

                // A refused job's dead letter moves the refused destination's position, though it is in another slot.
                try await client.command(["SET", "jobs:b", "not a list"], slot: RedisHashSlot.of("jobs:b"))
                let refused = Job(event: tenth, destination: .list("jobs:b"), body: "b10")
                let outcome = try await writer.write([refused], consumer: "app:1", on: sink)
                let failure = try #require(outcome.failures.first)
                #expect(failure.message.hasPrefix("WRONGTYPE"))
                let letter = Job(
                    event: tenth, destination: .deadLetter(writer.deadLetterQueue, replacing: .init(refused.destination)),
                    body: #"{"reason":"refused"}"#)
                #expect(try await writer.write([letter], consumer: "app:1", on: sink).written == 1)
                try await client.command(["DEL", "jobs:b"], slot: RedisHashSlot.of("jobs:b"))
                let replay = try await writer.write([refused, letter], consumer: "app:1", on: sink)
                #expect(replay.duplicates == 2 && replay.written == 0, "\(replay)")
                #expect(try await items(client, "pgevents:dead").count == 1)

                // A batch Redis refuses goes whole to the dead-letter list of its own slot.
                try await client.command(["SET", "batches:f", "not a list"], slot: RedisHashSlot.of("batches:f"))
                let refusedBatch = BatchDestination(
                    queue: "batches:f", sink: .list, streamMaxLength: nil, channel: "change", group: "{}", spec: BatchSpec(maxItems: 2))
                let staged = try await writer.write(
                    events.prefix(2).map { Job(event: $0, destination: .batch(refusedBatch), body: "{}") }, consumer: "app:1", on: sink)
                #expect(staged.batchesDeadLettered == 1 && staged.failures.isEmpty, "\(staged)")
                let batchLetters = try await items(client, "pgevents:dead:{batches:f}")
                #expect(batchLetters.count == 1 && batchLetters.first?.contains("WRONGTYPE") == true)

                // A queue whose hashed part holds a '}' cannot share a slot with anything: a permanent failure.
                let untaggable = try await writer.write(
                    [Job(event: tenth, destination: .list("a}b"), body: "x")], consumer: "app:1", on: sink)
                #expect(untaggable.failures.first?.permanent == true && untaggable.failures.first?.message.contains("hash tag") == true)
            }
        }
    }
}

@Suite("WAIT on a Redis Cluster", .serialized)
struct RedisClusterWaitTests {
    @Test("wait: WAIT goes to the primaries a chunk wrote to: one whose replica is gone holds its own slots' chunks only")
    func waitsOnWrittenPrimariesOnly() async throws {
        try await withTemporaryRedisCluster(.init(replicasPerPrimary: 1)) { cluster in
            try await RedisCluster.withCluster(cluster.configuration) { client in
                let sink = RedisSink.cluster(client)
                let wait = RedisWait(replicas: 1, timeout: .milliseconds(500))
                let writer = RedisJobWriter()
                let held = try await client.primary(forSlot: RedisHashSlot.of("jobs:a"))
                // The replica of the primary of jobs:a stops.
                let replicaOfHeld = try #require(
                    try await cluster.nodes.asyncMapSerial { node -> (TemporaryRedis, String) in
                        let info = try await RedisConnection.withConnection(node.configuration) {
                            try await $0.command("INFO", "replication").string ?? ""
                        }
                        return (node, info)
                    }.first { $0.1.contains("role:slave") && $0.1.contains("master_port:\(held.port)") }?.0)
                await replicaOfHeld.stop(graceful: false)
                let event = SourceEvent(seq: 1, channel: "c", payload: "x", createdAt: Date())
                var other: String?
                for key in ["jobs:b", "{jobs}:c", "stream:d", "batches:e"]
                where try await client.primary(forSlot: RedisHashSlot.of(key)) != held {
                    other = key
                    break
                }
                let elsewhere = try #require(other)
                _ = try await writer.write([Job(event: event, destination: .list(elsewhere), body: "x")], consumer: "w:1", on: sink)
                try await wait.wait(on: sink)  // only the other primary was written: its replica answers
                _ = try await writer.write([Job(event: event, destination: .list("jobs:a"), body: "x")], consumer: "w:1", on: sink)
                let error = await #expect(throws: RedisError.self) { try await wait.wait(on: sink) }
                #expect(error?.code == .timeout && error?.message.contains("0 of 1 replica") == true, "\(String(describing: error))")
            }
        }
    }
}

@Suite("The processor on a Redis Cluster, through a primary's failure", .serialized)
struct RedisClusterProcessorTests {
    @Test(
        "jobs to three slots while the primary of one is killed: its replica takes over, delivery holds until the node is back as a replica (wait: {replicas: 1}), and nothing is lost or written twice"
    )
    func failover() async throws {
        let database = try await journalDatabase()
        let writer = try await database.connect()
        try await withTemporaryRedisCluster(.init(replicasPerPrimary: 1)) { cluster in
            var configuration = try ProcessorConfiguration(
                yaml: """
                    consumer: clustered
                    channels:
                      new_event:
                        decode: json
                        rule_mode: all_matches
                        rules:
                          - enqueue: {queue: "jobs:a", job: {body: "{{event.row.body}}"}}
                          - enqueue: {queue: "{jobs}:c", job: {body: "{{event.row.body}}"}}
                          - enqueue: {queue: "stream:d", sink: stream, job: {body: "{{event.row.body}}"}}
                    batch_size: 20
                    catch_up_interval: 0.2
                    listener: {heartbeat_interval: 0.5, heartbeat_timeout: 1}
                    retry: {initial: 0.05, maximum: 0.5}
                    """)
            configuration.redisWait = RedisWait(replicas: 1, timeout: .seconds(2))
            let logger = Logger(label: "test")
            try await RedisCluster.withCluster(cluster.configuration) { client in
                let victim = try #require(cluster.node(at: try await client.primary(forSlot: RedisHashSlot.of("jobs:a"))))
                try await withRunningProcessor(
                    EventProcessor(
                        configuration: configuration, postgres: database.configuration, redis: cluster.configuration, logger: logger)
                ) {
                    for index in 1...300 {
                        try await writer.query("INSERT INTO events (body) VALUES ($1)", ["\(index)"])
                        if index == 100 { await victim.stop(graceful: false) }
                        if index % 20 == 0 { try await Task.sleep(for: .milliseconds(20)) }
                    }
                    // The promoted replica has no replica of its own: WAIT 1 holds delivery until the killed node
                    // comes back (with no data: it is no one's primary now) and follows it.
                    try await cluster.waitUntilHealthy(timeoutSeconds: 60)
                    try await victim.restart()
                    try await cluster.waitUntilHealthy(timeoutSeconds: 90)
                    try await client.refreshSlots()
                    try await withTimeout(90) {
                        while true {
                            let a = try await items(client, "jobs:a").count
                            let c = try await items(client, "{jobs}:c").count
                            if a >= 300 && c >= 300 { break }
                            try await Task.sleep(for: .milliseconds(100))
                        }
                    }
                }
                try await client.refreshSlots()
                #expect(try await client.primary(forSlot: RedisHashSlot.of("jobs:a")).port != victim.port, "the replica took over")
                let expected = (1...300).map { #"{"body":"\#($0)"}"# }
                #expect(try await items(client, "jobs:a") == expected)
                #expect(try await items(client, "{jobs}:c") == expected)
                #expect(try await client.command(["XLEN", "stream:d"], slot: RedisHashSlot.of("stream:d")).integer == 300)

                // --check-config reaches every primary; one that may evict keys fails the check, named.
                let passing = await ConfigurationCheck.run(
                    configuration, postgres: database.configuration, redis: cluster.configuration, logger: logger)
                #expect(passing.allSatisfy { $0.passed }, "\(passing)")
                #expect(passing.contains { $0.subject == "redis" && $0.message.contains("a cluster of 3 primaries") }, "\(passing)")
                let evicting = try await client.primaries()[1]
                try await client.connection(to: evicting).command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
                let failing = await ConfigurationCheck.run(
                    configuration, postgres: database.configuration, redis: cluster.configuration, logger: logger)
                let eviction = try #require(failing.first { $0.subject == "redis eviction" })
                #expect(
                    !eviction.passed && eviction.message.contains("allkeys-lru") && eviction.message.contains(":\(evicting.port)"),
                    "\(eviction)")
            }
        }
        await writer.close()
    }
}

@Suite("pgevents process on a Redis Cluster, from the command line", .serialized)
struct RedisClusterCommandTests {
    @Test("REDIS_URL=redis+cluster://…: jobs reach the cluster, /readyz pings every primary, dead-letters list reads the cluster")
    func processOnACluster() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await journalDatabase()
        try await withTemporaryRedisCluster { cluster in
            let directory = try migrationDirectory(["processor.yml": ProcessHTTPTests.configuration])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let process = try HTTPProcess.start(
                executable, directory: directory, name: "cluster", databaseURL: database.url, redisURL: cluster.url)
            defer { process.stop() }
            try await process.waitUntil("/readyz", status: 200, containing: "leader: delivering")
            try await PostgresConnection.withConnection(database.configuration) { writer in
                try await writer.query("INSERT INTO events (body) VALUES ('through the cluster')")
            }
            try await RedisCluster.withCluster(cluster.configuration) { client in
                try await withTimeout(60) {
                    while try await items(client, "jobs").isEmpty { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(try await items(client, "jobs").count == 1)
            }
            var environment = ProcessInfo.processInfo.environment
            environment["REDIS_URL"] = cluster.url
            let listed = try await runChild(executable, ["dead-letters", "list"], environment: environment)
            #expect(listed.termination == .exited(0) && listed.output.contains("pgevents:dead: 0 dead letter(s)"), "\(listed)")
            // One primary gone (no replica to take over): /readyz says so.
            await cluster.nodes[2].stop(graceful: false)
            try await process.waitUntil("/readyz", status: 503, containing: "Redis does not answer")
        }
    }
}

extension Sequence {
    /// `transform` applied to each element in turn.
    fileprivate func asyncMapSerial<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
