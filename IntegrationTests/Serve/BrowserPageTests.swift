import Foundation
import Logging
import PGEvents
import PGEventsHarness
import PGEventsPostgres
import Testing

@testable import PGEventsServe

@Suite("pgevents serve: the page at / in a real browser (headless chromium)")
struct BrowserPageTests {
    @Test(
        "the page connects with the token from its URL; a row inserted with SQL shows up in its relation's table, markup in a value shown as text"
    )
    func rowInsertedShowsOnPage() async throws {
        let (database, processorConfiguration) = try await exampleSetup("gc2-csv")
        var configuration = try ServeConfiguration(contentsOf: repositoryPath("sql/examples/gc2-csv/serve.yml"))
        configuration.port = 0
        configuration.auth.key = .environment("PGEVENTS_TEST_SECRET")
        try await PostgresConnection.withConnection(database.configuration) { db in
            try await db.execute(
                "DROP ROLE IF EXISTS page_viewer; CREATE ROLE page_viewer NOLOGIN; GRANT SELECT ON public.parcels TO page_viewer")
        }
        try await withTemporaryRedis { redis in
            let processor = EventProcessor(
                configuration: processorConfiguration, postgres: database.configuration, redis: redis.configuration,
                logger: Logger(label: "test"))
            try await withRunningProcessor(processor) {
                try await withGateway(configuration, databaseURL: database.url, redis: redis.configuration) { gateway in
                    let token = try await makeToken([
                        "database": .string(database.name), "uid": .string("page_viewer"), "superUser": .bool(false),
                    ])
                    let url = gateway.httpURL("/", ["token": token, "rel": "public.parcels"]).absoluteString
                    try await withHeadlessChromium { browser in
                        let page = try await DevToolsPage.open(browser, url: url)
                        let status = "document.getElementById('status')?.textContent"
                        try await page.waitUntil("the page to connect", "\(status) === 'connected'", show: status)
                        try await gateway.waitFor("the page's WebSocket") { $0.connections.load(ordering: .relaxed) == 1 }
                        try await PostgresConnection.withConnection(database.configuration) { db in
                            try await db.execute(
                                "INSERT INTO parcels (parcel_no, owner_name, address, area_m2) VALUES ('P-browser', '<b>Ada</b>', 'Quay 1', 12.5)"
                            )
                        }
                        let table = "(document.querySelector('table[data-relation=\"public.parcels\"]')?.innerText ?? '')"
                        try await page.waitUntil(
                            "the row in public.parcels", "\(table).includes('P-browser')", show: "document.body.innerText")
                        let rows = try await page.evaluate(
                            """
                            [...document.querySelectorAll('table[data-relation="public.parcels"] tr')].map(tr =>
                              [...tr.cells].map(c => c.textContent))
                            """)
                        guard case .array(let lines) = rows, lines.count == 2, case .array(let header) = lines[0],
                            case .array(let cells) = lines[1]
                        else {
                            Issue.record("the table: \(rows)")
                            return
                        }
                        let row = Dictionary(
                            zip(header.compactMap(\.string), cells.compactMap(\.string)), uniquingKeysWith: { first, _ in first })
                        #expect(row["op"] == "INSERT")
                        #expect(row["parcel_no"] == "P-browser")
                        #expect(row["owner_name"] == "<b>Ada</b>")  // as text: the page never parses a value as HTML
                        #expect(row["area_m2"]?.hasPrefix("12.5") == true)
                        #expect(try await page.evaluate("document.querySelectorAll('b').length") == .number(0))
                    }
                }
            }
        }
    }
}
