import PGEventsHarness

/// A migration that failed because the server has no such extension installed (`CREATE EXTENSION postgis` on a
/// server without PostGIS): a fact about the server, not a defect of the migration.
struct MissingExtension: Sendable, Hashable {
    /// The extension's name, e.g. `uuid-ossp`.
    var name: String

    /// The extension `error` says is missing: `extension "x" is not available` (SQLSTATE 0A000, PostgreSQL 15
    /// and later) or `could not open extension control file ".../x.control"` (58P01, before 15); nil otherwise.
    init?(_ error: MigrationError) {
        guard let state = error.sqlState, state == "0A000" || state == "58P01" else { return nil }
        let message = error.message
        if message.hasPrefix("extension \""), message.hasSuffix("\" is not available") {
            name = String(message.dropFirst("extension \"".count).dropLast("\" is not available".count))
        } else if message.hasPrefix("could not open extension control file \""),
            let file = message.split(separator: "\"").dropFirst().first,
            let last = file.split(separator: "/").last, last.hasSuffix(".control")
        {
            name = String(last.dropLast(".control".count))
        } else {
            return nil
        }
        guard !name.isEmpty else { return nil }
    }
}

/// A server version the check could not run on because it lacks an extension the migrations create: the run goes
/// on with the other versions, and the report lists it in `CheckReport.unavailable` (exit status 2).
struct ServerLacksExtension: Error, Sendable {
    /// `this server (PostgreSQL 18.6 at DIR) lacks extension postgis, which 001_postgis.sql:1 creates`.
    var message: String
    /// What to install, or where else to check.
    var hint: String
}
