@testable import PGEvents
import Testing

@Suite("Batch accumulation")
struct BatchAccumulatorTests {
    typealias Accumulator = BatchAccumulator<Int>
    static let t0 = ContinuousClock.now

    static func at(_ seconds: Double) -> ContinuousClock.Instant {
        t0.advanced(by: .seconds(seconds))
    }

    @Test("the defaults are 10 items or 2 seconds")
    func defaults() {
        let accumulator = Accumulator()
        #expect(accumulator.maxItems == 10)
        #expect(accumulator.maxAge == .seconds(2))
        #expect(accumulator.isEmpty)
        #expect(accumulator.nextDeadline == nil)
    }

    @Test("a group is handed out when it is full, its items in order")
    func sizeFlush() {
        var accumulator = Accumulator(maxItems: 3)
        #expect(accumulator.add(1, key: "a", now: Self.at(0)).isEmpty)
        #expect(accumulator.add(2, key: "a", now: Self.at(0.1)).isEmpty)
        #expect(accumulator.count == 2)
        let batches = accumulator.add(3, key: "a", now: Self.at(0.2))
        #expect(batches == [.init(key: "a", items: [1, 2, 3], opened: Self.at(0), reason: .full)])
        #expect(accumulator.isEmpty)
        #expect(accumulator.nextDeadline == nil)
        // The next item opens a new group, with its own age.
        #expect(accumulator.add(4, key: "a", now: Self.at(5)).isEmpty)
        #expect(accumulator.nextDeadline == Self.at(7))
    }

    @Test("one item per batch: every add hands it out")
    func single() {
        var accumulator = Accumulator(maxItems: 1)
        #expect(accumulator.add(1, key: "a", now: Self.at(0)).map(\.items) == [[1]])
        #expect(accumulator.add(2, key: "b", now: Self.at(0)).map(\.items) == [[2]])
        #expect(accumulator.isEmpty)
    }

    @Test("a group is handed out when its oldest item has waited maxAge, not before")
    func timeFlush() {
        var accumulator = Accumulator(maxItems: 10, maxAge: .seconds(2))
        _ = accumulator.add(1, key: "a", now: Self.at(0))
        _ = accumulator.add(2, key: "a", now: Self.at(1))
        #expect(accumulator.nextDeadline == Self.at(2))
        #expect(accumulator.due(now: Self.at(1.999)).isEmpty)
        #expect(accumulator.count == 2)
        let batches = accumulator.due(now: Self.at(2))
        #expect(batches == [.init(key: "a", items: [1, 2], opened: Self.at(0), reason: .due)])
        #expect(accumulator.due(now: Self.at(10)).isEmpty)
        #expect(accumulator.nextDeadline == nil)
    }

    @Test("groups fill and age separately")
    func grouping() {
        var accumulator = Accumulator(maxItems: 2, maxAge: .seconds(2))
        #expect(accumulator.add(1, key: "public.parcels|INSERT", now: Self.at(0)).isEmpty)
        #expect(accumulator.add(2, key: "public.parcels|UPDATE", now: Self.at(0.5)).isEmpty)
        #expect(accumulator.add(3, key: "public.roads|INSERT", now: Self.at(1)).isEmpty)
        #expect(accumulator.groupCount == 3)
        let full = accumulator.add(4, key: "public.parcels|UPDATE", now: Self.at(1.5))
        #expect(full.map(\.key) == ["public.parcels|UPDATE"])
        #expect(full.map(\.items) == [[2, 4]])
        #expect(accumulator.groupCount == 2)
        #expect(accumulator.nextDeadline == Self.at(2))
        let due = accumulator.due(now: Self.at(2.5))
        #expect(due.map(\.key) == ["public.parcels|INSERT"])
        #expect(accumulator.nextDeadline == Self.at(3))
        #expect(accumulator.due(now: Self.at(3)).map(\.items) == [[3]])
    }

    @Test("batches handed out together come oldest first; groups opened at the same instant in the order they opened")
    func order() {
        var accumulator = Accumulator(maxItems: 100, maxAge: .seconds(1))
        for (item, key, time) in [(1, "c", 0.3), (2, "b", 0.1), (3, "a", 0.2), (4, "b", 0.4), (5, "z", 0.5), (6, "y", 0.5), (7, "x", 0.5)] {
            _ = accumulator.add(item, key: key, now: Self.at(time))
        }
        // Added out of time order on purpose: the opening instant decides, then the order of opening.
        let due = accumulator.due(now: Self.at(1.5))
        #expect(due.map(\.key) == ["b", "a", "c", "z", "y", "x"])
        #expect(due.map(\.items) == [[2, 4], [3], [1], [5], [6], [7]])
        #expect(due.allSatisfy { $0.reason == .due })
    }

    @Test("drainAll hands out everything, oldest first, whatever its size and age")
    func drain() {
        var accumulator = Accumulator(maxItems: 5, maxAge: .seconds(60))
        for item in 0..<7 {
            _ = accumulator.add(item, key: item.isMultiple(of: 2) ? "even" : "odd", now: Self.at(Double(item)))
        }
        let drained = accumulator.drainAll()
        #expect(drained.map(\.key) == ["even", "odd"])
        #expect(drained.map(\.items) == [[0, 2, 4, 6], [1, 3, 5]])
        #expect(drained.map(\.opened) == [Self.at(0), Self.at(1)])
        #expect(drained.allSatisfy { $0.reason == .drained })
        #expect(accumulator.isEmpty)
        #expect(accumulator.drainAll().isEmpty)
    }

    @Test("a zero maxAge makes every group due at once")
    func zeroAge() {
        var accumulator = BatchAccumulator<String>(maxItems: 10, maxAge: .zero)
        _ = accumulator.add("x", key: "k", now: Self.at(0))
        #expect(accumulator.nextDeadline == Self.at(0))
        #expect(accumulator.due(now: Self.at(0)).map(\.items) == [["x"]])
    }

    @Test("a simulated stream: every item is handed out once, in order within its group")
    func simulation() {
        var random = PipelineTestRandom(seed: 4)
        var accumulator = Accumulator(maxItems: 10, maxAge: .seconds(2))
        var handedOut: [String: [Int]] = [:]
        var time = 0.0
        let keys = ["parcels|INSERT", "parcels|UPDATE", "roads|DELETE"]
        for item in 0..<5_000 {
            time += Double.random(in: 0...0.3, using: &random)
            var batches = accumulator.due(now: Self.at(time))
            batches += accumulator.add(item, key: keys.randomElement(using: &random)!, now: Self.at(time))
            for batch in batches {
                #expect(batch.items.count <= 10)
                #expect(batch.reason == .full || Self.at(time) >= batch.opened.advanced(by: .seconds(2)))
                handedOut[batch.key, default: []] += batch.items
            }
        }
        for batch in accumulator.drainAll() { handedOut[batch.key, default: []] += batch.items }
        #expect(handedOut.values.map(\.count).reduce(0, +) == 5_000)
        #expect(handedOut.values.allSatisfy { $0 == $0.sorted() })
    }
}
