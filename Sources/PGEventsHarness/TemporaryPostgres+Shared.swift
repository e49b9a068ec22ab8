public import PGEventsPostgres
import Synchronization

extension TemporaryPostgres {
    /// One server for the whole test process: the first call starts it (with `configuration`; later calls' are
    /// ignored), every later call returns it, and it stops when the process exits. Take a database of your own from
    /// it in each test (`makeDatabase()`, a clone of the template in milliseconds), so tests running in parallel
    /// never meet; make your template once with ``sharedTemplate(named:_:)``.
    public static func shared(_ configuration: Configuration = Configuration()) async throws -> TemporaryPostgres {
        let startup = sharedServer.withLock { task in
            if let task { return task }
            let started = Task { try await TemporaryPostgres.start(configuration) }
            task = started
            return started
        }
        return try await startup.value
    }

    /// The template `name` on the shared server, made by `setup` once per process however many tests ask. Other
    /// templates (other suites' schemas) live beside it; the server's default template stays as it was.
    ///
    /// ```swift
    /// let template = try await TemporaryPostgres.sharedTemplate { db in try await db.execute(mySchemaSQL) }
    /// let database = try await template.makeDatabase()   // per test
    /// ```
    /// `configuration` starts the shared server if this is the first call (see ``shared(_:)``).
    public static func sharedTemplate(
        named name: String = "pgevents_template", configuration: Configuration = Configuration(),
        _ setup: @escaping @Sendable (PostgresConnection) async throws -> Void
    ) async throws -> Template {
        let server = try await shared(configuration)
        let making = sharedTemplates.withLock { templates in
            if let making = templates[name] { return making }
            let making = Task { try await server.makeTemplate(named: name, asDefault: false, setup) }
            templates[name] = making
            return making
        }
        try await making.value
        return Template(server: server, name: name)
    }

    /// A template database on a server: every test takes a fresh copy of it.
    public struct Template: Sendable {
        public let server: TemporaryPostgres
        public let name: String

        /// A fresh database cloned from this template.
        public func makeDatabase() async throws -> TemporaryDatabase {
            try await server.makeDatabase(template: name)
        }
    }

    private static let sharedServer = Mutex<Task<TemporaryPostgres, any Error>?>(nil)
    private static let sharedTemplates = Mutex<[String: Task<Void, any Error>]>([:])
}
