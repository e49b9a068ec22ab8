import Dispatch
import Foundation
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem
import Synchronization
import Testing

/// `pgevents process --http`: each endpoint probed with `curl`, as a scraper or Kubernetes would, against real
/// processes on real servers, in every state — leader, standby, listener reconnecting, Redis down. Every wait has a
/// deadline; no assertion depends on how fast anything is.
@Suite("pgevents process --http: /metrics, /healthz, /readyz, /status with curl")
struct ProcessHTTPTests {
    static let configuration = """
        consumer: http
        channels: {new_event: {queue: jobs, decode: json}}
        catch_up_interval: 0.5
        listener: {heartbeat_interval: 0.5, heartbeat_timeout: 2}
        retry: {initial: 0.05, maximum: 0.5}
        """

    @Test(
        "databases: /healthz names each database's role, /readyz 503 naming a database that refuses connections and 200 once it is back, /status one object per database"
    )
    func databases() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let server = try await Shared.postgres()
        let a = try await journalDatabase()
        let b = try await journalDatabase()
        try await server.execute("ALTER DATABASE \(b.name) ALLOW_CONNECTIONS false")
        try await withTemporaryRedis { redis in
            let directory = try migrationDirectory(["processor.yml": Self.configuration + "\ndatabases: [\(a.name), \(b.name)]\n"])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let process = try HTTPProcess.start(executable, directory: directory, name: "multi", databaseURL: server.url(), redis: redis)
            defer { process.stop() }
            let base = try await process.baseURL()
            try await process.waitUntil("/healthz", status: 200, containing: "\(a.name) leader")
            let unready = try await process.waitUntil("/readyz", status: 503, containing: "\(b.name): ")
            #expect(!unready.body.contains("\(a.name): "), "\(unready)")
            #expect(try await curlFails(base + "/readyz") == true, "curl -f /readyz passed with a database refusing connections")
            try await server.execute("ALTER DATABASE \(b.name) ALLOW_CONNECTIONS true")
            try await process.waitUntil("/readyz", status: 200, containing: "2 database(s) ready")
            let status = try await process.waitForStatus { object in (object["ready"] as? Bool) == true }
            #expect(status["state"] as? String == "running")
            #expect(status["redis"] as? String == "ok")
            let databases = try #require(status["databases"] as? [String: [String: Any]], "\(status)")
            #expect(Set(databases.keys) == [a.name, b.name])
            #expect(databases[a.name]?["state"] as? String == "leader" && databases[b.name]?["state"] as? String == "leader")
            #expect(databases[a.name]?["consumer"] as? String == "http")
            // The delivery's metrics carry the database.
            try await PostgresConnection.withConnection(b.configuration) { writer in
                try await writer.query("INSERT INTO events (body) VALUES ('from b')")
            }
            let reader = try await redis.connect()
            try await waitForJobs(reader, count: 1)
            await reader.close()
            let metrics = try await curl(base + "/metrics")
            let samples = try parsePrometheusText(metrics.body)
            #expect(
                samples.contains {
                    $0.name == "pgevents_events_delivered_total" && $0.labels.contains(#"database="\#(b.name)""#) && $0.value == 1
                }, "\(metrics.body)")
        }
    }

    @Test(
        "leader and standby: /readyz 200 saying which, /healthz 200, /status with state, consumer, source, last delivered position, backlog and reconnects, /metrics parses and carries the processor's names, dead letters by reason"
    )
    func leaderAndStandby() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await journalDatabase()
        try await withTemporaryRedis { redis in
            let directory = try migrationDirectory(["processor.yml": Self.configuration])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let leader = try HTTPProcess.start(executable, directory: directory, name: "leader", database: database, redis: redis)
            defer { leader.stop() }
            let base = try await leader.baseURL()
            try await leader.waitUntil("/readyz", status: 200, containing: "leader: delivering")

            try await PostgresConnection.withConnection(database.configuration) { writer in
                try await writer.query("INSERT INTO events (body) VALUES ('probed')")
                try await writer.query("SELECT pgevents.emit('new_event', 'not json')")  // a dead letter, reason decode
            }
            let reader = try await redis.connect()
            try await waitForJobs(reader, count: 1)
            await reader.close()

            let health = try await curl(base + "/healthz")
            #expect(health.status == 200 && health.body == "ok: leader\n", "\(health)")
            #expect(try await curlFails(base + "/readyz") == false, "curl -f /readyz failed on a ready leader")

            // /status: wait until the backlog has been sampled after both events were delivered.
            let status = try await leader.waitForStatus { object in
                (object["backlog"] as? Int) == 0 && (object["delivered"] as? Int ?? 0) >= 1
                    && (object["backlog_sampled_at"] as? String).map { _ in true } == true
            }
            #expect(status["state"] as? String == "leader")
            #expect(status["ready"] as? Bool == true)
            #expect(status["consumer"] as? String == "http" && status["source"] as? String == "journal")
            #expect(status["reconnects"] as? Int == 0)
            #expect(status["redis"] as? String == "ok")
            let listener = try #require(status["listener"] as? [String: Any])
            #expect(listener["connected"] as? Bool == true, "\(listener)")
            let last = try #require(status["last_delivered"] as? [String: Any], "\(status)")
            #expect((last["seq"] as? Int ?? 0) >= 1 && last["at"] is String, "\(last)")

            // /metrics: every line is a comment or a sample that parses, and the README's names are there.
            let metrics = try await curl(base + "/metrics")
            #expect(metrics.status == 200)
            let samples = try parsePrometheusText(metrics.body)
            for name in [
                "pgevents_notifications_received_total", "pgevents_events_delivered_total", "pgevents_events_duplicate_total",
                "pgevents_listener_reconnects_total", "pgevents_listener_state", "pgevents_notify_queue_usage",
                "pgevents_commit_to_queued_seconds_bucket", "pgevents_commit_to_queued_seconds_count", "pgevents_delivery_retries_total",
                "pgevents_batched_jobs_total", "pgevents_journal_backlog_events", "pgevents_dead_letters_total",
            ] {
                #expect(samples.contains { $0.name == name }, "\(name) missing from /metrics:\n\(metrics.body)")
            }
            #expect(
                samples.contains { $0.name == "pgevents_dead_letters_total" && $0.labels.contains(#"reason="decode""#) && $0.value == 1 },
                "\(metrics.body)")
            #expect(samples.contains { $0.name == "pgevents_events_delivered_total" && $0.labels == #"consumer="http""# && $0.value >= 1 })
            #expect(samples.contains { $0.name == "pgevents_listener_state" && $0.value == 4 }, "listening is 4")

            // A second processor on the same consumer stands by, and says so.
            let standby = try HTTPProcess.start(executable, directory: directory, name: "standby", database: database, redis: redis)
            defer { standby.stop() }
            let standbyBase = try await standby.baseURL()
            let ready = try await standby.waitUntil("/readyz", status: 200, containing: "standby: healthy")
            #expect(ready.body.contains("held by pid"), "\(ready)")
            let standbyStatus = try await standby.waitForStatus { $0["state"] as? String == "standby" }
            #expect(standbyStatus["ready"] as? Bool == true && standbyStatus["leader_holder"] is String)
            #expect(try await curl(standbyBase + "/healthz").body == "ok: standby\n")
            #expect(try await curl(base + "/readyz").body == "leader: delivering\n")
            #expect(try await curl(base + "/nowhere").status == 404)

            #expect(await standby.terminate() == .exited(0), "\(standby.logTail())")
            #expect(await leader.terminate() == .exited(0), "\(leader.logTail())")
        }
    }

    @Test(
        "listener reconnecting (its backend terminated, the database refusing connections) and Redis down: /readyz 503 with the reason and curl -f fails, /healthz stays 200, /status says why; ready again once the listener is back"
    )
    func listenerReconnectingAndRedisDown() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await journalDatabase()
        try await withTemporaryRedis { redis in
            let directory = try migrationDirectory(["processor.yml": Self.configuration])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let process = try HTTPProcess.start(executable, directory: directory, name: "faults", database: database, redis: redis)
            defer { process.stop() }
            let base = try await process.baseURL()
            try await process.waitUntil("/readyz", status: 200, containing: "leader: delivering")

            // The listener loses its backend and cannot get another while the database refuses connections.
            let quoted = PostgresIdentifier.quote(database.name)
            try await database.server.execute("ALTER DATABASE \(quoted) WITH ALLOW_CONNECTIONS false")
            let terminated = try await database.server.terminateBackends(listeningOn: "new_event", database: database.name)
            #expect(terminated >= 1)
            let down = try await process.waitUntil("/readyz", status: 503, containing: "listener ")
            #expect(down.body.contains("reconnecting") || down.body.contains("connecting"), "\(down)")
            #expect(try await curlFails(base + "/readyz") == true, "curl -f /readyz succeeded while the listener was down")
            #expect(try await curl(base + "/healthz").status == 200)
            let reconnecting = try await process.waitForStatus { object in
                (object["listener"] as? [String: Any])?["connected"] as? Bool == false
            }
            #expect(reconnecting["ready"] as? Bool == false)
            try await database.server.execute("ALTER DATABASE \(quoted) WITH ALLOW_CONNECTIONS true")
            try await process.waitUntil("/readyz", status: 200, containing: "leader: delivering")
            let back = try await process.waitForStatus { ($0["reconnects"] as? Int ?? 0) >= 1 }
            #expect((back["listener"] as? [String: Any])?["connected"] as? Bool == true)

            // Redis stops: not ready, saying so; the process itself is healthy.
            await redis.shutdown()
            let noRedis = try await process.waitUntil("/readyz", status: 503, containing: "Redis does not answer")
            #expect(!noRedis.body.contains(redis.password), "the Redis password is in /readyz")
            #expect(try await curlFails(base + "/readyz") == true)
            #expect(try await curl(base + "/healthz").body == "ok: leader\n")
            let status = try await process.waitForStatus { ($0["redis"] as? String)?.hasPrefix("error") == true }
            #expect(status["ready"] as? Bool == false && (status["reason"] as? String)?.contains("Redis") == true)
            #expect(await process.terminate() == .exited(0), "\(process.logTail())")
        }
    }

    @Test(
        "notify-only mode: /healthz and /readyz say forwarding once listening, /status counts the jobs pushed, /readyz 503 while Redis is down and the pushes retry"
    )
    func notifyOnly() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let database = try await Shared.database()
        let sender = try await database.connect()
        let redis = try await TemporaryRedis.start()
        let directory = try migrationDirectory([
            "processor.yml": """
            source: notify
            channels: {chat: {queue: messages}}
            listener: {heartbeat_interval: 0.5, heartbeat_timeout: 2}
            retry: {initial: 0.05, maximum: 0.5}
            """
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = try HTTPProcess.start(executable, directory: directory, name: "notify", database: database, redis: redis)
        defer { process.stop() }
        try await process.waitUntil("/healthz", status: 200, containing: "ok: forwarding")
        try await process.waitUntil("/readyz", status: 200, containing: "forwarding: listening")
        try await sender.notify("chat", payload: "hello")
        let status = try await process.waitForStatus { ($0["delivered"] as? Int) == 1 }
        #expect(status["source"] as? String == "notify" && status["state"] as? String == "forwarding", "\(status)")
        #expect((status["listener"] as? [String: Any])?["connected"] as? Bool == true, "\(status)")

        await redis.stop()
        try await sender.notify("chat", payload: "while Redis is down")
        try await process.waitUntil("/readyz", status: 503, containing: "Redis does not answer")
        _ = try await process.waitForStatus { ($0["problem"] as? String)?.contains("pushing to Redis failed") == true }
        #expect(try await curl(try await process.baseURL() + "/healthz").status == 200)
        try await redis.restart()
        try await process.waitUntil("/readyz", status: 200, containing: "forwarding")
        _ = try await process.waitForStatus { ($0["delivered"] as? Int) == 2 }
        #expect(await process.terminate() == .exited(0), "\(process.logTail())")
        await sender.close()
        await redis.shutdown()
    }

    @Test("a bad --http or PGEVENTS_HTTP is refused with the option's name, before anything starts")
    func badAddress() async throws {
        let executable = try #require(pgeventsExecutable(), "pgevents executable not built")
        let directory = try migrationDirectory(["processor.yml": Self.configuration])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PGEVENTS_") }
        environment["REDIS_URL"] = "redis://127.0.0.1:1/0"
        let flag = try await runChild(
            executable, ["process", "--config", directory + "/processor.yml", "--http", "9464"], environment: environment)
        #expect(flag.termination != .exited(0) && flag.output.contains("--http must be HOST:PORT"), "\(flag.output)")
        environment["PGEVENTS_HTTP"] = "localhost:99999"
        let variable = try await runChild(executable, ["process", "--config", directory + "/processor.yml"], environment: environment)
        #expect(variable.termination != .exited(0) && variable.output.contains("PGEVENTS_HTTP must be HOST:PORT"), "\(variable.output)")
    }
}

/// A `pgevents process --http 127.0.0.1:0` child with JSON logs, and what its endpoints say.
final class HTTPProcess: Sendable {
    let child: ChildProcess
    let log: String

    private init(child: ChildProcess, log: String) {
        self.child = child
        self.log = log
    }

    static func start(_ executable: String, directory: String, name: String, database: TemporaryDatabase, redis: TemporaryRedis) throws
        -> HTTPProcess
    {
        try start(executable, directory: directory, name: name, databaseURL: database.url, redis: redis)
    }

    static func start(_ executable: String, directory: String, name: String, databaseURL: String, redis: TemporaryRedis) throws
        -> HTTPProcess
    {
        try start(executable, directory: directory, name: name, databaseURL: databaseURL, redisURL: redis.url)
    }

    static func start(_ executable: String, directory: String, name: String, databaseURL: String, redisURL: String) throws
        -> HTTPProcess
    {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PGEVENTS_") }
        environment["DATABASE_URL"] = databaseURL
        environment["REDIS_URL"] = redisURL
        environment["PGEVENTS_LOG_FORMAT"] = "json"
        environment["PGEVENTS_HTTP"] = "127.0.0.1:0"
        let log = directory + "/\(name).log"
        let child = try ChildProcess.spawn(
            executable, ["process", "--config", directory + "/processor.yml", "--shutdown-timeout", "10"], outputPath: log,
            environment: environment)
        return HTTPProcess(child: child, log: log)
    }

    /// `http://127.0.0.1:PORT`, from the log line that says where the server listens.
    func baseURL() async throws -> String {
        let log = log
        let port = try await withTimeout(60) {
            while true {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                for line in text.split(separator: "\n") where line.contains(#""message":"http listening""#) {
                    let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    if let port = (object?["port"] as? String).flatMap(Int.init) { return port }
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return "http://127.0.0.1:\(port)"
    }

    /// Asks `path` until it answers `status` with `text` in its body; fails with the last answer and the log after 60 s.
    @discardableResult
    func waitUntil(_ path: String, status: Int, containing text: String) async throws -> (status: Int, body: String) {
        let url = try await baseURL() + path
        let last = LastAnswer()
        do {
            return try await withTimeout(60) {
                while true {
                    let answer = try await curl(url)
                    last.set("\(answer)")
                    if answer.status == status && answer.body.contains(text) { return answer }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        } catch {
            Issue.record("\(path) never answered \(status) with '\(text)'; last: \(last.get())\nlog:\n\(logTail())")
            throw error
        }
    }

    /// `/status` as an object, asked until `accept` takes it (60 s at most).
    func waitForStatus(_ accept: @escaping @Sendable ([String: Any]) -> Bool) async throws -> [String: Any] {
        let url = try await baseURL() + "/status"
        let last = LastAnswer()
        do {
            let text = try await withTimeout(60) {
                while true {
                    let answer = try await curl(url)
                    last.set(answer.body)
                    if answer.status == 200, let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
                        accept(object)
                    {
                        return answer.body
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        } catch {
            Issue.record("/status never matched; last: \(last.get())\nlog:\n\(logTail())")
            throw error
        }
    }

    /// SIGTERM, then the process's end (it has its own shutdown deadline: 10 s + 5 s).
    func terminate() async -> ChildProcess.Termination {
        child.kill(SIGTERM)
        return await child.waitOffPool()
    }

    /// Kills it if it still runs (a failed test); the wait after SIGKILL is short.
    func stop() {
        child.kill(SIGKILL)
        _ = child.wait()
    }

    func logTail() -> String { tailOfFile(log, maxLines: 40) }
}

/// The last answer a wait saw, for its failure message.
private final class LastAnswer: Sendable {
    private let value = Mutex("nothing")
    func set(_ text: String) { value.withLock { $0 = text } }
    func get() -> String { value.withLock { $0 } }
}

/// `curl -s URL`: the HTTP status and the body (status 0 when nothing answered).
func curl(_ url: String) async throws -> (status: Int, body: String) {
    let result = try await runChild("/usr/bin/curl", ["-s", "--max-time", "10", "-w", "\n%{http_code}", url])
    var lines = result.output.components(separatedBy: "\n")
    let status = Int(lines.removeLast()) ?? 0
    return (status, lines.joined(separator: "\n"))
}

/// Whether `curl -f URL` fails, as a Kubernetes exec probe or a shell script sees it.
func curlFails(_ url: String) async throws -> Bool {
    try await runChild("/usr/bin/curl", ["-sf", "--max-time", "10", "-o", "/dev/null", url]).termination != .exited(0)
}

/// One sample of the Prometheus text format.
struct PrometheusSample {
    var name: String
    var labels: String
    var value: Double
}

/// Parses the Prometheus text format strictly enough to catch a malformed line: `# HELP`/`# TYPE` comments, and
/// `name{labels} value` or `name value` samples with a number (or +Inf, -Inf, NaN) as value.
func parsePrometheusText(_ text: String) throws -> [PrometheusSample] {
    struct Malformed: Error, CustomStringConvertible { var description: String }
    var samples: [PrometheusSample] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") { continue }
        guard let space = line.lastIndex(of: " ") else { throw Malformed(description: "no value: \(line)") }
        let series = line[..<space]
        let valueText = line[line.index(after: space)...]
        guard let value = Double(valueText) ?? ["+Inf": .infinity, "-Inf": -.infinity, "NaN": .nan][String(valueText)] else {
            throw Malformed(description: "not a number: \(line)")
        }
        let name: Substring
        var labels: Substring = ""
        if let brace = series.firstIndex(of: "{") {
            guard series.hasSuffix("}") else { throw Malformed(description: "unclosed labels: \(line)") }
            name = series[..<brace]
            labels = series[series.index(after: brace)..<series.index(before: series.endIndex)]
        } else {
            name = series
        }
        guard let first = name.unicodeScalars.first, first == "_" || first == ":" || first.properties.isAlphabetic,
            name.unicodeScalars.allSatisfy({
                $0 == "_" || $0 == ":" || ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0)
            })
        else { throw Malformed(description: "bad metric name: \(line)") }
        samples.append(PrometheusSample(name: String(name), labels: String(labels), value: value))
    }
    return samples
}
