import Foundation
import Testing

@testable import PGEventsHarness

@Suite("flyway.conf and sqitch.conf")
struct MigrationToolConfigurationTests {
    @Test("Java properties: separators, comments, continuations")
    func properties() {
        let parsed = FlywayConfiguration.properties(
            """
            # a comment
            ! another
            flyway.locations=filesystem:a,\\
                filesystem:b
            flyway.placeholders.x : 1
            flyway.placeholders.y 2

            flyway.placeholders.z=a=b
            """)
        #expect(parsed.map(\.key) == ["flyway.locations", "flyway.placeholders.x", "flyway.placeholders.y", "flyway.placeholders.z"])
        #expect(parsed.map(\.value) == ["filesystem:a,filesystem:b", "1", "2", "a=b"])
        #expect(parsed.map(\.line) == [3, 5, 6, 8])
    }

    @Test("flyway.conf: locations resolved against the project, placeholders, replacement off; a missing location names the line")
    func flyway() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pgevents-flyway-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory + "/sql", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/src/main/resources/db/migration", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let parsed = try FlywayConfiguration.parse(
            "flyway.locations=filesystem:./sql/, classpath:db/migration\nflyway.placeholders.channel=c\nflyway.placeholderReplacement=false",
            file: "f.conf", directory: directory)
        #expect(parsed.locations == [directory + "/sql", directory + "/src/main/resources/db/migration"])
        #expect(parsed.placeholders == ["channel": "c"] && !parsed.replacePlaceholders)
        let error = #expect(throws: HarnessError.self) {
            try FlywayConfiguration.parse("# x\nflyway.locations=filesystem:sql,filesystem:nowhere", file: "f.conf", directory: directory)
        }
        #expect(
            error?.message.hasPrefix("f.conf:2: flyway.locations names filesystem:nowhere, which is not a directory here") == true,
            "\(String(describing: error))")
    }

    @Test("sqitch.conf: engine over core, deploy variables over core variables, Sqitch's defaults without a file")
    func sqitch() {
        let parsed = SqitchConfiguration.parse(
            """
            [core]
                engine = pg
                top_dir = db
                plan_file = db/other.plan
            [engine "pg"]
                deploy_dir = ./scripts/deploy/
            [core "variables"]
                schema = core_value
                Only = kept
            [deploy "variables"]
                schema = deploy_value
            """, file: "sqitch.conf", directory: "/p")
        #expect(parsed.planFile == "/p/db/other.plan" && parsed.deployDirectory == "/p/scripts/deploy")
        #expect(parsed.variables == ["schema": "deploy_value", "Only": "kept"])
        let defaults = SqitchConfiguration.parse("", file: "sqitch.conf", directory: "/p")
        #expect(defaults.planFile == "/p/sqitch.plan" && defaults.deployDirectory == "/p/deploy" && defaults.variables.isEmpty)
    }
}
