/// Groups items by a key (`"public.parcels|INSERT"`) and hands each group out as a batch when it has `maxItems`
/// items, or when its oldest item has waited `maxAge` — whichever comes first (as GC2's listener batches its
/// notifications: 10 or 2 seconds).
///
/// Time is passed in, never read, so that it is tested without sleeping; the caller adds items as they come, and
/// calls ``due(now:)`` at ``nextDeadline`` (or on a timer). Items keep their order within a group; batches handed
/// out together come oldest group first.
public struct BatchAccumulator<Item> {
    public typealias Instant = ContinuousClock.Instant

    /// Why a batch was handed out.
    public enum Reason: Sendable, Hashable {
        /// It reached `maxItems`.
        case full
        /// Its oldest item waited `maxAge`.
        case due
        /// ``drainAll()`` (shutting down).
        case drained
    }

    public struct Batch {
        public var key: String
        /// In the order they were added.
        public var items: [Item]
        /// When its first item was added.
        public var opened: Instant
        public var reason: Reason

        public init(key: String, items: [Item], opened: Instant, reason: Reason) {
            self.key = key
            self.items = items
            self.opened = opened
            self.reason = reason
        }
    }

    fileprivate struct Group {
        var items: [Item]
        var opened: Instant
        /// Orders groups opened at the same instant.
        var sequence: UInt64
    }

    public let maxItems: Int
    public let maxAge: Duration
    private var groups: [String: Group] = [:]
    private var nextSequence: UInt64 = 0

    /// - Parameters:
    ///   - maxItems: a group is handed out when it has this many items (at least 1).
    ///   - maxAge: a group is handed out when its oldest item is this old (zero: at the next ``due(now:)``).
    public init(maxItems: Int = 10, maxAge: Duration = .seconds(2)) {
        precondition(maxItems >= 1, "a batch holds at least one item")
        precondition(maxAge >= .zero, "a batch's age cannot be negative")
        self.maxItems = maxItems
        self.maxAge = maxAge
    }

    /// Adds `item` to the group of `key`; returns that group's batch if it is now full (else nothing).
    public mutating func add(_ item: Item, key: String, now: Instant) -> [Batch] {
        if groups[key] == nil {
            groups[key] = Group(items: [], opened: now, sequence: nextSequence)
            nextSequence += 1
        }
        groups[key]!.items.append(item)
        guard groups[key]!.items.count >= maxItems, let group = groups.removeValue(forKey: key) else { return [] }
        return [Batch(key: key, items: group.items, opened: group.opened, reason: .full)]
    }

    /// The groups whose oldest item has waited `maxAge` at `now`, oldest first.
    public mutating func due(now: Instant) -> [Batch] {
        let keys = groups.filter { now >= $0.value.opened.advanced(by: maxAge) }.map(\.key)
        return take(keys, reason: .due)
    }

    /// Every group, oldest first, whatever its size and age.
    public mutating func drainAll() -> [Batch] {
        take(Array(groups.keys), reason: .drained)
    }

    /// When the oldest group becomes due; `nil` when nothing waits.
    public var nextDeadline: Instant? {
        groups.values.map(\.opened).min()?.advanced(by: maxAge)
    }

    /// How many items wait, in all groups.
    public var count: Int {
        groups.values.reduce(0) { $0 + $1.items.count }
    }

    public var isEmpty: Bool {
        groups.isEmpty
    }

    /// How many groups wait.
    public var groupCount: Int {
        groups.count
    }

    private mutating func take(_ keys: [String], reason: Reason) -> [Batch] {
        var batches: [(batch: Batch, sequence: UInt64)] = []
        for key in keys {
            guard let group = groups.removeValue(forKey: key) else { continue }
            batches.append((Batch(key: key, items: group.items, opened: group.opened, reason: reason), group.sequence))
        }
        batches.sort { ($0.batch.opened, $0.sequence) < ($1.batch.opened, $1.sequence) }
        return batches.map(\.batch)
    }
}

extension BatchAccumulator: Sendable where Item: Sendable {}
extension BatchAccumulator.Batch: Sendable where Item: Sendable {}
extension BatchAccumulator.Batch: Equatable where Item: Equatable {}
extension BatchAccumulator.Group: Sendable where Item: Sendable {}
