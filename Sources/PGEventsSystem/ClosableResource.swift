/// A resource that is closed with an async `close()` (a connection, a server): the lowest layer's shared
/// ``closeAfter(_:)``, so that each type's `with…` helpers only say how to open it.
public protocol ClosableResource: Sendable {
    func close() async
}

extension ClosableResource {
    /// Runs `body` with this resource, then closes it — whether `body` returned or threw. For a resource opened
    /// elsewhere (`TemporaryDatabase.connect()`, a connect whose error is mapped by hand).
    @discardableResult
    public func closeAfter<T>(_ body: (Self) async throws -> T) async throws -> T {
        do {
            let value = try await body(self)
            await close()
            return value
        } catch {
            await close()
            throw error
        }
    }
}
