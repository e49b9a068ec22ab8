import Foundation
public import Logging
import PGEvents
public import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import PGEventsSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `pgevents bench fanout`: the gateway (`pgevents serve`, a child process, so its resident size is its own)
/// fanning one stream out to N WebSocket clients held by this process (`FanoutClients`: real sockets, one epoll
/// thread). The processor (in this process) delivers the bench table's INSERTs to the stream; one writer commits
/// single rows on an open-loop schedule at each rate.
///
/// Per cell (clients × rate), `fanout/<clients>/<rate>`: commit acknowledged → message read by a client (the
/// k-th message every client reads is the k-th commit: one writer, one stream, order kept), p50…max over every
/// delivery; deliveries per second (every client's messages, from the first commit to the last read); the
/// gateway's resident size per idle client (VmRSS of the gateway with the clients connected and idle, less
/// before they connected, over their number). `fanout/<clients>/<rate>/slow`: the same cell with one client that
/// stops reading, run right after it: the others' p99 against the cell's (`p99_ratio`).
public struct FanoutBench: Sendable {
    /// What the fan-out runs with.
    public struct Options: Sendable {
        /// Connected clients per cell.
        public var clients: [Int] = [1, 100, 1_000, 10_000]
        /// Events per second broadcast to all, per cell.
        public var rates: [Double] = [10, 100]
        /// Seconds of events per cell.
        public var duration: Double = 5
        /// The cell repeated with one slow client (clients, rate); nil: none.
        public var slowCell: (clients: Int, rate: Double)? = (1_000, 100)
        /// The `pgevents` executable whose `serve` is measured.
        public var gatewayExecutable: String
        /// The journal migrations (`sql/pgevents`).
        public var sqlDirectory: String
        /// The HS256 secret the gateway checks tokens with, and a token signed with it (superuser, far expiry).
        public var secret: String
        public var token: String

        public init(gatewayExecutable: String, sqlDirectory: String, secret: String, token: String) {
            self.gatewayExecutable = gatewayExecutable
            self.sqlDirectory = sqlDirectory
            self.secret = secret
            self.token = token
        }
    }

    public var options: Options
    public var logger: Logger

    public init(options: Options, logger: Logger = TemporaryPostgres.defaultLogger) {
        self.options = options
        self.logger = logger
    }

    func invalid(_ message: String) -> HarnessError { HarnessError(code: .invalidInput, message: "pgevents bench fanout: \(message)") }

    /// Checks the options, and raises this process's open-file limit for the largest cell.
    func prepare() throws {
        if options.clients.isEmpty || options.clients.contains(where: { $0 < 1 || $0 > 50_000 }) {
            throw invalid("--clients must be counts in 1…50,000")
        }
        if options.rates.isEmpty || options.rates.contains(where: { !($0 > 0 && $0 <= 10_000) }) {
            throw invalid("--rates must be in 0…10,000 events/s")
        }
        if !(options.duration > 0 && options.duration <= 3_600) { throw invalid("--duration must be in 0…3,600 s") }
        let largest = max(options.clients.max() ?? 0, options.slowCell?.clients ?? 0)
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let needed = rlim_t(largest + 512)
        if limit.rlim_cur < needed {
            guard limit.rlim_max >= needed else {
                throw invalid(
                    "\(largest) clients need \(needed) open files; the hard limit is \(limit.rlim_max) (raise it: ulimit -Hn, or LimitNOFILE)"
                )
            }
            limit.rlim_cur = needed  // the gateway, a child, inherits it
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }

    /// Runs every cell (clients ascending, then rates), then the slow-client cell; `progress` hears each step.
    public func run(progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> [BenchResult] {
        try prepare()
        let migrations = try MigrationSet(directory: options.sqlDirectory)
        let servers = try await BenchServers.start(
            databaseURL: nil, redisURL: nil, migrations: migrations, setupSQL: ScenarioBench.setupSQL, logger: logger)
        do {
            let results = try await run(on: servers, progress: progress)
            await servers.shutdown()
            return results
        } catch {
            await servers.shutdown()
            throw error
        }
    }

    private func run(on servers: BenchServers, progress: @escaping @Sendable (String) -> Void) async throws -> [BenchResult] {
        let database = try await servers.makeDatabase()
        let stream = "\(servers.keyPrefix):fanout"
        let processor = EventProcessor(
            configuration: try ProcessorConfiguration(
                yaml: """
                    consumer: bench
                    channels: {new_event: {queue: "\(stream)", sink: stream, stream: {maxlen: 1000000}}}
                    batch_size: 1000
                    catch_up_interval: 1
                    key_prefix: "\(servers.keyPrefix):seen"
                    """, file: "fanout.yml"),
            postgres: database.configuration, redis: servers.redis, logger: logger)
        let gateway = try await FanoutGateway.start(
            executable: options.gatewayExecutable, stream: stream, database: database.configuration, redis: servers.redis,
            secret: options.secret, maxConnections: max(options.clients.max() ?? 0, options.slowCell?.clients ?? 0) + 100)
        do {
            let results = try await withThrowingTaskGroup(of: [BenchResult].self) { group in
                group.addTask {
                    try await processor.run()
                    return []
                }
                defer { group.cancelAll() }  // the processor
                let writer = try await database.connect()
                return try await writer.closeAfter { writer in
                    try await cells(gateway: gateway, writer: writer, servers: servers, progress: progress)
                }
            }
            await gateway.stop()
            try? await database.drop()
            return results
        } catch {
            await gateway.stop()
            try? await database.drop()
            throw error
        }
    }

    /// Every cell, then the slow client's.
    private func cells(
        gateway: FanoutGateway, writer: PostgresConnection, servers: BenchServers, progress: @escaping @Sendable (String) -> Void
    ) async throws -> [BenchResult] {
        var results: [BenchResult] = []
        for clients in options.clients.sorted() {
            for rate in options.rates.sorted() {
                progress("fanout/\(clients)/\(Self.rateName(rate)): connecting \(clients) clients")
                let cell = try await measure(
                    clients: clients, slow: 0, rate: rate, gateway: gateway, writer: writer, servers: servers, progress: progress)
                results.append(cell)
                if let slowCell = options.slowCell, slowCell.clients == clients, slowCell.rate == rate {
                    progress("fanout/\(clients)/\(Self.rateName(rate))/slow: the same with one slow client")
                    var slow = try await measure(
                        clients: clients, slow: 1, rate: rate, gateway: gateway, writer: writer, servers: servers,
                        progress: progress)
                    if let p99 = slow.latencyMicroseconds?.p99, let before = cell.latencyMicroseconds?.p99, before > 0 {
                        slow.extra["p99_ratio"] = p99 / before
                    }
                    results.append(slow)
                }
            }
        }
        if let slowCell = options.slowCell,
            !(options.clients.contains(slowCell.clients) && options.rates.contains(slowCell.rate))
        {
            progress("fanout/\(slowCell.clients)/\(Self.rateName(slowCell.rate))/slow")
            let cell = try await measure(
                clients: slowCell.clients, slow: 0, rate: slowCell.rate, gateway: gateway, writer: writer, servers: servers,
                progress: progress)
            var slow = try await measure(
                clients: slowCell.clients, slow: 1, rate: slowCell.rate, gateway: gateway, writer: writer, servers: servers,
                progress: progress)
            if let p99 = slow.latencyMicroseconds?.p99, let before = cell.latencyMicroseconds?.p99, before > 0 {
                slow.extra["p99_ratio"] = p99 / before
            }
            results += [cell, slow]
        }
        return results
    }

    static func rateName(_ rate: Double) -> String { rate == rate.rounded() ? String(Int(rate)) : String(rate) }

    /// One cell: connect, measure the idle size, commit at `rate` for the duration, wait for every delivery.
    private func measure(
        clients count: Int, slow: Int, rate: Double, gateway: FanoutGateway, writer: PostgresConnection, servers: BenchServers,
        progress: @escaping @Sendable (String) -> Void
    ) async throws -> BenchResult {
        let name = "fanout/\(count)/\(Self.rateName(rate))" + (slow > 0 ? "/slow" : "")
        let started = Date()
        let total = max(1, Int((rate * options.duration).rounded()))
        try await gateway.waitForConnections(0, within: 60)
        let rssBefore = gateway.residentKilobytes()
        let connectStart = ContinuousClock.now
        let clients = FanoutClients(
            port: gateway.port, path: "/broadcast?token=\(options.token)", count: count, slow: slow, expected: total)
        clients.start()
        var outcome: FanoutClients.Outcome?
        do {
            let connectDeadline = ContinuousClock.now + .seconds(60 + count / 100)
            while clients.connected.load(ordering: .relaxed) + clients.failed.load(ordering: .relaxed) < count {
                guard ContinuousClock.now < connectDeadline else {
                    throw invalid(
                        "\(name): \(clients.connected.load(ordering: .relaxed)) of \(count) clients connected within the deadline")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let failed = clients.failed.load(ordering: .relaxed)
            guard failed == 0 else { throw invalid("\(name): \(failed) of \(count) clients could not connect") }
            try await gateway.waitForConnections(count, within: 60)
            let connectSeconds = (ContinuousClock.now - connectStart).inSeconds
            try await Task.sleep(for: .milliseconds(500))  // idle: nothing sent, nothing read
            let rssIdle = gateway.residentKilobytes()
            progress("\(name): \(count) clients connected in \(String(format: "%.1f", connectSeconds)) s; \(total) events at \(rate)/s")

            // The writer: one connection, single-row commits on an open-loop schedule.
            var commits: [Int64] = []
            commits.reserveCapacity(total)
            let writeStart = ContinuousClock.now
            for index in 0..<total {
                try await Task.sleep(until: writeStart + .nanoseconds(Int64(Double(index) / rate * 1e9)), clock: .continuous)
                try await writer.execute("INSERT INTO public.events DEFAULT VALUES")
                commits.append(benchWallNanoseconds())
            }
            let expected = total * (count - slow)
            let drainDeadline = ContinuousClock.now + .seconds(120)
            while clients.messages.load(ordering: .relaxed) < expected, ContinuousClock.now < drainDeadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(200))  // anything beyond the expected would be a duplicate
            let metrics = await gateway.metrics()
            let finished = await clients.stop()
            outcome = finished

            var histogram = StageHistogram()
            var received = 0
            var missing = 0
            var extraMessages = 0
            var lastRead: Int64 = 0
            for times in finished.times {
                received += times.count
                if times.count < total { missing += total - times.count }
                if times.count > total { extraMessages += times.count - total }
                for (read, committed) in zip(times, commits) { histogram.record(from: committed, to: read) }
                lastRead = max(lastRead, times.last ?? 0)
            }
            let span = Double(max(lastRead - (commits.first ?? lastRead), 1)) / 1e9
            var extra: [String: Double] = [
                "clients": Double(count), "rate": rate, "deliveries": Double(received), "connect_s": connectSeconds,
                "gateway_rss_mb": Double(rssIdle ?? 0) / 1024,
                "clamped_intervals": Double(histogram.clamped),
            ]
            if let rssBefore, let rssIdle { extra["rss_kb_per_idle_client"] = Double(rssIdle - rssBefore) / Double(count) }
            if slow > 0 {
                extra["slow_client_messages"] = Double(finished.slowMessages.reduce(0, +))
                extra["slow_clients_dropped"] = Double(metrics["pgevents_serve_slow_clients_dropped_total"] ?? 0)
            }
            return BenchResult(
                scenario: name, events: total, durationSeconds: span, eventsPerSecond: Double(received) / span,
                latencyMicroseconds: histogram.latency, stages: histogram.latency.map { ["commit→client": $0] } ?? [:], lost: missing,
                duplicated: extraMessages, errors: 0, postgresVersion: servers.postgresVersion, redisVersion: servers.redisVersion,
                startedAt: started, extra: extra.filter { $0.value.isFinite },
                note:
                    "commit acknowledged → WebSocket message read by a client of pgevents serve (a child process); events_per_s are deliveries",
                settings: [
                    "clients": String(count), "rate": Self.rateName(rate), "duration_s": String(options.duration),
                    "slow_clients": String(slow),
                    "servers": "throwaway", "writers": "1",
                ],
                distribution: histogram.distribution)
        } catch {
            if outcome == nil { _ = await clients.stop() }
            throw error
        }
    }
}
