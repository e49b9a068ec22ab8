public import PGEventsPostgres
import Synchronization

extension TemporaryPostgres {
    /// One server for the whole test process: the first call starts it (with `configuration`; later calls' are
    /// ignored), every later call returns it, and it stops when the process exits. Take a database of your own from
    /// it in each test (`makeDatabase()`, a clone of the template in milliseconds), so tests running in parallel
    /// never meet; make the template once, where your migrations apply (``sharedTemplate(named:_:)``).
    public static func shared(_ configuration: Configuration = Configuration()) async throws -> TemporaryPostgres {
        let startup = sharedServer.withLock { task in
            if let task { return task }
            let started = Task { try await TemporaryPostgres.start(configuration) }
            task = started
            return started
        }
        return try await startup.value
    }

    /// The shared server with the template `name` made by `setup` — once per process, however many tests ask — as
    /// the default of its `makeDatabase()`.
    ///
    /// ```swift
    /// let server = try await TemporaryPostgres.sharedTemplate { db in try await db.execute(mySchemaSQL) }
    /// let database = try await server.makeDatabase()   // per test
    /// ```
    public static func sharedTemplate(
        named name: String = "pgevents_template", _ setup: @escaping @Sendable (PostgresConnection) async throws -> Void
    ) async throws -> TemporaryPostgres {
        let server = try await shared()
        let making = sharedTemplates.withLock { templates in
            if let making = templates[name] { return making }
            let making = Task { try await server.makeTemplate(named: name, setup) }
            templates[name] = making
            return making
        }
        try await making.value
        return server
    }

    private static let sharedServer = Mutex<Task<TemporaryPostgres, any Error>?>(nil)
    private static let sharedTemplates = Mutex<[String: Task<Void, any Error>]>([:])
}
