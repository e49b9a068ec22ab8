import Testing

@testable import PGEventsCheck
@testable import PGEventsHarness

@Suite("Channels read from trigger functions")
struct ChannelSourceTests {
    @Test("TG_OP in a channel resolves to one channel per operation the trigger fires on")
    func operationChannels() {
        let source = NotifySourceScanner.classify("'mq.' || TG_TABLE_NAME || '.' || TG_OP")
        #expect(source == .concatenation([.literal("mq."), .tableName, .literal("."), .operation]))
        let table = QualifiedName(schema: "mq", name: "q_tasks")
        #expect(source.resolve(arguments: [], table: table) == nil)
        #expect(source.resolve(arguments: [], table: table, operation: .delete) == "mq.q_tasks.DELETE")
        let trigger = TriggerInfo(
            table: table, name: "t", function: "mq.f", timing: .after, operations: [.update, .insert], firesOnTruncate: false,
            forEachRow: true, enabled: "O", arguments: [], channelSources: [source])
        #expect(trigger.channels == ["mq.q_tasks.INSERT", "mq.q_tasks.UPDATE"])
        #expect(!trigger.hasUnresolvedChannel)
        // A variable is still known only by watching.
        let dynamic = TriggerInfo(
            table: table, name: "t", function: "mq.f", timing: .after, operations: [.insert], firesOnTruncate: false,
            forEachRow: true, enabled: "O", arguments: [], channelSources: [NotifySourceScanner.classify("'q_' || NEW.queue")])
        #expect(dynamic.hasUnresolvedChannel)
        #expect(dynamic.channels.isEmpty)
    }
}
