import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import PGEventsRedis
import Testing

@testable import PGEventsServe

@Suite("pgevents serve: the gc2-csv example end to end")
struct GC2ExampleServeTests {
    @Test(
        "rows changed in parcels reach an authenticated WebSocket client as GC2 batches of 10 and 2 with their rows; sub-users without rel or grant are refused"
    )
    func gc2EndToEnd() async throws {
        let (database, processorConfiguration) = try await exampleSetup("gc2-csv")
        var configuration = try ServeConfiguration(contentsOf: repositoryPath("sql/examples/gc2-csv/serve.yml"))
        configuration.port = 0
        configuration.auth.key = .environment("PGEVENTS_TEST_SECRET")
        configuration.streams[0].database = database.name
        try await PostgresConnection.withConnection(database.configuration) { db in
            try await db.execute(
                """
                DROP ROLE IF EXISTS gc2_viewer; CREATE ROLE gc2_viewer NOLOGIN; GRANT SELECT ON public.parcels TO gc2_viewer;
                DROP ROLE IF EXISTS gc2_stranger; CREATE ROLE gc2_stranger NOLOGIN;
                """)
        }
        try await withTemporaryRedis { redis in
            let processor = EventProcessor(
                configuration: processorConfiguration, postgres: database.configuration, redis: redis.configuration,
                logger: Logger(label: "test"))
            try await withRunningProcessor(processor) {
                try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                    func token(_ uid: String) async throws -> String {
                        try await makeToken(["database": .string(database.name), "uid": .string(uid), "superUser": .bool(false)])
                    }
                    let viewer = try await token("gc2_viewer")
                    let noRel = try await RawWebSocket.run(
                        port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": viewer])
                    ) { try $0.transcript() }
                    #expect(noRel.json.first?["error"] == .string("missing_rel"))
                    let stranger = try await token("gc2_stranger")
                    let refused = try await RawWebSocket.run(
                        port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": stranger, "rel": "public.parcels"])
                    ) { try $0.transcript() }
                    #expect(refused.json.first?["error"] == .string("not_allowed"))

                    async let received = RawWebSocket.run(
                        port: gateway.port, pathAndQuery: gateway.pathAndQuery("/broadcast", ["token": viewer, "rel": "public.parcels"])
                    ) {
                        try $0.transcript { messages in
                            messages.compactMap(JSONValue.parse).reduce(0) { $0 + (Self.rows($1).count) } >= 12
                        }
                    }
                    try await gateway.waitFor("the viewer") { $0.connections.load(ordering: .relaxed) == 1 }
                    try await PostgresConnection.withConnection(database.configuration) { db in
                        try await db.execute(
                            """
                            INSERT INTO parcels (parcel_no, owner_name, address, area_m2)
                            SELECT 'P-' || i, 'Cy', 'Quay ' || i, 512.25 FROM generate_series(1, 12) AS i
                            """)
                    }
                    let batches = try await received.json
                    #expect(batches.map { $0["type"] } == [.string("batch"), .string("batch")])
                    #expect(batches.map { $0["db"] } == [.string(database.name), .string(database.name)])
                    #expect(batches.map { Self.rows($0).count } == [10, 2])
                    let inserts = batches.flatMap { message -> [JSONValue] in
                        guard case .array(let keys)? = message["batch"]?[database.name]?["public.parcels"]?["INSERT"] else { return [] }
                        return keys
                    }
                    #expect(inserts.count == 12)
                    #expect(inserts.first == .array([.string("gid"), .string("1")]))
                    #expect(batches.flatMap(Self.rows).compactMap { $0["parcel_no"]?.string } == (1...12).map { "P-\($0)" })
                }
            }
        }
    }

    /// The rows of a GC2 batch message (`full_data` of every table).
    static func rows(_ message: JSONValue) -> [JSONValue] {
        guard case .object(let databases)? = message["batch"] else { return [] }
        return databases.values.flatMap { tables -> [JSONValue] in
            guard case .object(let byTable) = tables else { return [] }
            return byTable.values.flatMap { table -> [JSONValue] in
                guard case .array(let rows)? = table["full_data"] else { return [] }
                return rows
            }
        }
    }
}
