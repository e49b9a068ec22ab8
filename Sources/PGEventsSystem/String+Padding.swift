extension String {
    /// `self` with `pad` in front up to `width` characters: a zero-padded number, a right-aligned table cell.
    package func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
