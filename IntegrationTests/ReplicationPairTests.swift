import Foundation
import PGEventsHarness
import PGEventsPostgres
import Testing

/// The event table on both sides; the subscriber also gets a trigger that notifies with the event id.
let replicatedTable = "CREATE TABLE public.event_json (event_id text PRIMARY KEY, json text NOT NULL)"
let subscriberTrigger = """
    CREATE FUNCTION notify_event_json() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('event_json', NEW.event_id); RETURN NULL; END $$;
    CREATE TRIGGER event_json_notify AFTER INSERT ON public.event_json FOR EACH ROW EXECUTE FUNCTION notify_event_json();
    """

/// Sets up the pair with the table published and subscribed; `trigger` is run on the subscriber first.
func withEventJSONPair(trigger: String, _ body: (ReplicationPair) async throws -> Void) async throws {
    try await withReplicationPair { pair in
        let publisher = try await pair.publisherDatabase.connect()
        try await publisher.execute(replicatedTable)
        await publisher.close()
        let subscriber = try await pair.subscriberDatabase.connect()
        try await subscriber.execute(replicatedTable + ";\n" + trigger)
        await subscriber.close()
        try await pair.publish("event_json_pub", tables: [.init(QualifiedName(schema: "public", name: "event_json"))])
        try await pair.subscribe("event_json_sub", to: "event_json_pub")
        try await body(pair)
    }
}

@Suite("ReplicationPair: publisher, subscriber, and the triggers that must fire on it")
struct ReplicationPairTests {
    @Test("an ordinary trigger does not fire for replicated rows; ENABLE ALWAYS fires once per row")
    func enableAlways() async throws {
        try await withEventJSONPair(trigger: subscriberTrigger) { pair in
            let listener = try await pair.subscriberDatabase.connect()
            try await listener.listen("event_json")
            var notifications = await listener.notifications().makeAsyncIterator()
            let publisher = try await pair.publisherDatabase.connect()
            let subscriber = try await pair.subscriberDatabase.connect()

            try await publisher.query("INSERT INTO event_json VALUES ('$quiet', '{}')")
            try await pair.waitForCatchUp()
            #expect(try await subscriber.query("SELECT count(*) FROM event_json").scalar(Int.self) == 1, "the row was replicated")
            // Nothing arrived for it: a fence from the subscriber itself comes first.
            try await subscriber.notify("event_json", payload: "fence")
            #expect(try await notifications.next()?.payload == "fence")

            try await subscriber.execute("ALTER TABLE event_json ENABLE ALWAYS TRIGGER event_json_notify")
            try await publisher.query("INSERT INTO event_json SELECT '$e' || g, '{}' FROM generate_series(1, 3) g")
            try await pair.waitForCatchUp()
            // Applied rows committed before this fence: their notifications come first, each once.
            try await subscriber.notify("event_json", payload: "fence")
            let received = try await collect(&notifications, until: "fence").map(\.payload)
            #expect(received == ["$e1", "$e2", "$e3"])
            for connection in [listener, publisher, subscriber] { await connection.close() }
        }
    }

    @Test("a row the subscriber's trigger cannot take stalls replication; the apply error is reported")
    func oversizedRowStalls() async throws {
        let fullRow = """
            CREATE FUNCTION notify_event_json() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('event_json', row_to_json(NEW)::text); RETURN NULL; END $$;
            CREATE TRIGGER event_json_notify AFTER INSERT ON public.event_json FOR EACH ROW EXECUTE FUNCTION notify_event_json();
            ALTER TABLE event_json ENABLE ALWAYS TRIGGER event_json_notify;
            """
        try await withEventJSONPair(trigger: fullRow) { pair in
            let publisher = try await pair.publisherDatabase.connect()
            try await publisher.query("INSERT INTO event_json VALUES ('$big', repeat('x', 9000))")
            try await publisher.query("INSERT INTO event_json VALUES ('$after', '{}')")
            let error = await #expect(throws: HarnessError.self) { try await pair.waitForCatchUp(timeoutSeconds: 3) }
            #expect(error?.message.contains("payload string too long") == true, "\(error?.message ?? "")")
            let subscriber = try await pair.subscriberDatabase.connect()
            #expect(try await subscriber.query("SELECT count(*) FROM event_json").scalar(Int.self) == 0, "the later row is stuck behind it")
            await subscriber.close()
            await publisher.close()
        }
    }

    @Test("subscription options the subscriber's version lacks are refused, naming the option and the version")
    func unsupportedOptions() async throws {
        try await withReplicationPair { pair in
            guard pair.subscriber.binaries.majorVersion < 16 else { return }
            var options = ReplicationPair.SubscriptionOptions()
            options.runAsOwner = true
            let error = await #expect(throws: HarnessError.self) { try await pair.subscribe("s", to: "p", options: options) }
            #expect(
                error?.message
                    == "subscription option run_as_owner needs PostgreSQL 16 or newer; the subscriber runs \(pair.subscriber.binaries.version)"
            )
            options = .init()
            options.origin = "none"
            let origin = await #expect(throws: HarnessError.self) { try await pair.subscribe("s", to: "p", options: options) }
            #expect(origin?.message.contains("origin needs PostgreSQL 16") == true)
        }
    }

    @Test("after shutdown both clusters are gone, and the slot was dropped before the publisher stopped")
    func cleanup() async throws {
        let pair = try await ReplicationPair.start()
        let publisher = try await pair.publisherDatabase.connect()
        try await publisher.execute(replicatedTable)
        let subscriber = try await pair.subscriberDatabase.connect()
        try await subscriber.execute(replicatedTable)
        await subscriber.close()
        try await pair.publish("p", tables: [.init(QualifiedName(schema: "public", name: "event_json"), columns: ["event_id", "json"])])
        try await pair.subscribe("s", to: "p")
        #expect(try await publisher.query("SELECT count(*) FROM pg_replication_slots").scalar(Int.self) == 1)
        try await pair.dropSubscriptions()
        #expect(try await publisher.query("SELECT count(*) FROM pg_replication_slots").scalar(Int.self) == 0)
        await publisher.close()
        let directories = [pair.publisher.directory, pair.subscriber.directory]
        await pair.shutdown()
        #expect(directories.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
    }
}
