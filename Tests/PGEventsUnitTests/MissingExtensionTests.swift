import PGEventsPostgres
import Testing

@testable import PGEventsCheck
@testable import PGEventsHarness

@Suite("A missing extension is told apart from a broken migration")
struct MissingExtensionTests {
    private func error(_ message: String, _ state: String) -> MigrationError {
        MigrationError(
            file: "/m/001.sql", line: 1, column: 1, message: message,
            postgresError: PostgresError(code: .server, message: message, sqlState: state))
    }

    @Test("PostgreSQL 15+ (0A000) and older servers (58P01) name the extension; anything else is a migration defect")
    func parsing() {
        #expect(MissingExtension(error(#"extension "uuid-ossp" is not available"#, "0A000"))?.name == "uuid-ossp")
        #expect(
            MissingExtension(
                error(
                    #"could not open extension control file "/usr/share/postgresql/13/extension/postgis.control": No such file or directory"#,
                    "58P01"))?.name == "postgis")
        #expect(MissingExtension(error(#"extension "uuid-ossp" is not available"#, "42601")) == nil)
        #expect(MissingExtension(error(#"type "geometry" does not exist"#, "42704")) == nil)
        #expect(MissingExtension(error(#"extension "" is not available"#, "0A000")) == nil)
        #expect(MissingExtension(MigrationError(file: "x", line: 1, column: 1, message: "unterminated string", postgresError: nil)) == nil)
    }
}
